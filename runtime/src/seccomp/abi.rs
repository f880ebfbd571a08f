//! The system call ABIs an x86_64 kernel runs, as the kernel tells them apart to a filter:
//! `seccomp_data.arch` is AUDIT_ARCH_X86_64 for x86_64 and for x32, whose numbers carry
//! `__X32_SYSCALL_BIT`, and AUDIT_ARCH_I386 for i386 (`int 0x80`, 32-bit programs).
//! Each has its own numbers for the same names; the tables are data generated from the
//! kernel's headers (gen-syscalls.sh).

use oci_spec::runtime::Arch;

use super::{syscalls_x32, syscalls_x86, syscalls_x86_64};

/// `EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE` (linux/audit.h).
pub const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// `EM_386 | __AUDIT_ARCH_LE`.
pub const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
/// Set in the number of every x32 system call (asm/unistd.h).
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// One system call ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Abi {
    /// x86_64, the native one.
    X86_64,
    /// i386 (SCMP_ARCH_X86).
    X86,
    /// x32 (SCMP_ARCH_X32): x86_64 with 32-bit pointers.
    X32,
}

impl Abi {
    /// The ABI a profile's architecture names on this host; None for architectures an
    /// x86_64 kernel never reports (a filter section for them could never run).
    pub fn from_oci(arch: Arch) -> Option<Self> {
        match arch {
            Arch::ScmpArchNative | Arch::ScmpArchX86_64 => Some(Abi::X86_64),
            Arch::ScmpArchX86 => Some(Abi::X86),
            Arch::ScmpArchX32 => Some(Abi::X32),
            _ => None,
        }
    }

    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Abi::X86_64 => syscalls_x86_64::SYSCALLS,
            Abi::X86 => syscalls_x86::SYSCALLS,
            Abi::X32 => syscalls_x32::SYSCALLS,
        }
    }

    /// Where each first letter's names start in the table (a table of 257 offsets), so
    /// that a lookup searches one letter's names: this runs for every name of a profile on
    /// every container start.
    fn by_first_byte(self) -> &'static [u16; 257] {
        static INDEX: std::sync::OnceLock<[[u16; 257]; 3]> = std::sync::OnceLock::new();
        let all = INDEX.get_or_init(|| {
            [Abi::X86_64, Abi::X86, Abi::X32].map(|abi| {
                let table = abi.table();
                let mut starts = [0u16; 257];
                for (byte, start) in starts.iter_mut().enumerate() {
                    // The tables have a few hundred entries: u16 holds any offset.
                    *start = table.partition_point(|(n, _)| {
                        usize::from(n.as_bytes().first().copied().unwrap_or(0)) < byte
                    }) as u16;
                }
                starts
            })
        });
        &all[self as usize]
    }

    /// The number a syscall has in this ABI, as `seccomp_data.nr` shows it (x32's with its
    /// bit); None if the ABI has no such call.
    pub fn number(self, name: &str) -> Option<u32> {
        let first = usize::from(*name.as_bytes().first()?);
        let starts = self.by_first_byte();
        let table = &self.table()[usize::from(starts[first])..usize::from(starts[first + 1])];
        let index = table.binary_search_by(|(n, _)| n.cmp(&name)).ok()?;
        let nr = table[index].1;
        Some(if self == Abi::X32 {
            nr | X32_SYSCALL_BIT
        } else {
            nr
        })
    }

    /// Whether arguments are 32 bits wide (compared on their low half, as libseccomp does
    /// for its 32-bit ABIs).
    pub fn narrow_args(self) -> bool {
        matches!(self, Abi::X86 | Abi::X32)
    }

    /// A call that i386 also reaches through a multiplexer (`socketcall` or `ipc`, whose
    /// first argument picks the call): the multiplexer's number and that argument.
    /// libseccomp filters both routes for such a name; so does this.
    pub fn multiplexed(self, name: &str) -> Option<(u32, u64)> {
        if self != Abi::X86 {
            return None;
        }
        let find = |table: &[(&str, u64)]| table.iter().find(|(n, _)| *n == name).map(|e| e.1);
        if let Some(call) = find(SOCKETCALL) {
            return Some((I386_SOCKETCALL, call));
        }
        find(IPC).map(|call| (I386_IPC, call))
    }
}

/// i386 `socketcall` and `ipc`.
const I386_SOCKETCALL: u32 = 102;
const I386_IPC: u32 = 117;

/// `socketcall`'s calls (linux/net.h, SYS_SOCKET ...).
const SOCKETCALL: &[(&str, u64)] = &[
    ("socket", 1),
    ("bind", 2),
    ("connect", 3),
    ("listen", 4),
    ("accept", 5),
    ("getsockname", 6),
    ("getpeername", 7),
    ("socketpair", 8),
    ("send", 9),
    ("recv", 10),
    ("sendto", 11),
    ("recvfrom", 12),
    ("shutdown", 13),
    ("setsockopt", 14),
    ("getsockopt", 15),
    ("sendmsg", 16),
    ("recvmsg", 17),
    ("accept4", 18),
    ("recvmmsg", 19),
    ("sendmmsg", 20),
];

/// `ipc`'s calls (linux/ipc.h, SEMOP ...).
const IPC: &[(&str, u64)] = &[
    ("semop", 1),
    ("semget", 2),
    ("semctl", 3),
    ("semtimedop", 4),
    ("msgsnd", 11),
    ("msgrcv", 12),
    ("msgget", 13),
    ("msgctl", 14),
    ("shmat", 21),
    ("shmdt", 22),
    ("shmget", 23),
    ("shmctl", 24),
];

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Abi; 3] = [Abi::X86_64, Abi::X86, Abi::X32];

    #[test]
    fn tables_are_sorted_and_unique_for_binary_search() {
        for abi in ALL {
            let table = abi.table();
            assert!(table.len() > 350, "{abi:?}");
            for pair in table.windows(2) {
                assert!(pair[0].0 < pair[1].0, "{abi:?}: {pair:?}");
            }
        }
    }

    #[test]
    fn each_abi_has_its_own_numbers() {
        // The x86_64 table agrees with the libc crate's constants.
        assert_eq!(Abi::X86_64.number("read"), Some(libc::SYS_read as u32));
        assert_eq!(Abi::X86_64.number("getpid"), Some(libc::SYS_getpid as u32));
        assert_eq!(
            Abi::X86_64.number("openat2"),
            Some(libc::SYS_openat2 as u32)
        );
        // i386: the historic numbering (asm/unistd_32.h).
        assert_eq!(Abi::X86.number("exit"), Some(1));
        assert_eq!(Abi::X86.number("getpid"), Some(20));
        assert_eq!(Abi::X86.number("getppid"), Some(64));
        assert_eq!(Abi::X86.number("socketcall"), Some(102));
        assert_eq!(Abi::X86.number("socket"), Some(359));
        assert_eq!(Abi::X86.number("clone3"), Some(435));
        assert_eq!(Abi::X86.number("arch_prctl"), Some(384));
        // x32: x86_64's numbers with the x32 bit, and its own calls from 512 up.
        assert_eq!(Abi::X32.number("getpid"), Some(39 | X32_SYSCALL_BIT));
        assert_eq!(Abi::X32.number("rt_sigaction"), Some(512 | X32_SYSCALL_BIT));
        assert_eq!(Abi::X32.number("clone3"), Some(435 | X32_SYSCALL_BIT));
        // Calls one ABI lacks.
        assert_eq!(Abi::X86_64.number("socketcall"), None);
        assert_eq!(Abi::X86.number("arch_prctl_nope"), None);
        assert_eq!(Abi::X32.number("uselib"), None);
        assert_eq!(Abi::X86_64.number("no_such_call"), None);
    }

    #[test]
    fn the_tables_know_the_calls_newer_than_the_headers() {
        // What bounds the ENOSYS rule; gen-syscalls.sh adds calls after Linux 6.1.
        for abi in ALL {
            let newest = abi.table().iter().map(|e| e.1).max().unwrap();
            assert_eq!(newest, if abi == Abi::X32 { 547 } else { 469 }, "{abi:?}");
            let plain = |name| abi.number(name).map(|n| n & !X32_SYSCALL_BIT);
            assert_eq!(
                plain("set_mempolicy_home_node"),
                Some(450),
                "from the headers"
            );
            assert_eq!(plain("cachestat"), Some(451), "{abi:?}");
            assert_eq!(plain("futex_requeue"), Some(456), "{abi:?}");
            assert_eq!(plain("file_setattr"), Some(469), "{abi:?}");
        }
        // The libc crate agrees where it has the constant.
        assert_eq!(
            Abi::X86_64.number("fchmodat2"),
            Some(libc::SYS_fchmodat2 as u32)
        );
        assert_eq!(Abi::X86_64.number("mseal"), Some(libc::SYS_mseal as u32));
    }

    #[test]
    fn only_i386_multiplexes_socket_and_ipc_calls() {
        assert_eq!(Abi::X86.multiplexed("socket"), Some((102, 1)));
        assert_eq!(Abi::X86.multiplexed("sendmmsg"), Some((102, 20)));
        assert_eq!(Abi::X86.multiplexed("shmctl"), Some((117, 24)));
        assert_eq!(Abi::X86.multiplexed("read"), None);
        assert_eq!(Abi::X86_64.multiplexed("socket"), None);
        assert_eq!(Abi::X32.multiplexed("socket"), None);
    }

    #[test]
    fn architectures_this_kernel_cannot_report_are_left_out() {
        assert_eq!(Abi::from_oci(Arch::ScmpArchNative), Some(Abi::X86_64));
        assert_eq!(Abi::from_oci(Arch::ScmpArchX86), Some(Abi::X86));
        assert_eq!(Abi::from_oci(Arch::ScmpArchX32), Some(Abi::X32));
        assert_eq!(Abi::from_oci(Arch::ScmpArchAarch64), None);
        assert_eq!(AUDIT_ARCH_X86_64, 0xc000_003e);
        assert_eq!(AUDIT_ARCH_I386, 0x4000_0003);
    }
}
