//! The one fork of the runtime: clone(2) with the container's new namespaces.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;

use crate::error::{Context, Result};

/// Where a clone returned.
pub enum Forked {
    /// In the parent, with the child's PID.
    Parent(i32),
    /// In the child.
    Child,
}

/// Fork into new namespaces in one step. No re-exec of the runtime binary is needed: the
/// child is a copy of this process and goes on to set up the container, then executes the
/// user's program, so /proc/self/exe of the container never is the runtime binary.
pub fn clone_with(flags: CloneFlags) -> Result<Forked> {
    let flags = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: clone with a null stack behaves as fork: the child gets a copy-on-write copy
    // of the address space and continues from here. The runtime is single-threaded at this
    // point (no threads have been started), so no lock can be held by another thread.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        -1 => Err(std::io::Error::last_os_error()).context("clone the container's init"),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

/// `CLONE_INTO_CGROUP` (Linux 5.7): the child starts in the cgroup2 directory given.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3's arguments up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// As [`clone_with`], the child starting in the cgroup2 directory `cgroup`, so that no
/// PID is written into it later (see cgroups/v1.rs). Returns whether that was done: a
/// kernel without clone3 or `CLONE_INTO_CGROUP` gets a plain clone, and the caller
/// puts the child in its cgroup itself.
pub fn clone_into_cgroup(flags: CloneFlags, cgroup: BorrowedFd<'_>) -> Result<(Forked, bool)> {
    let args = CloneArgs {
        flags: flags.bits() as u32 as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: clone3 with no stack behaves as fork, as clone_with's clone does (same
    // single-threaded caller); `args` is a live, initialized clone_args of the size given.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => match Errno::last() {
            // No clone3, no CLONE_INTO_CGROUP in it, or a cgroup it will not start in.
            Errno::ENOSYS | Errno::E2BIG | Errno::EINVAL | Errno::EBADF | Errno::EOPNOTSUPP => {
                clone_with(flags).map(|f| (f, false))
            }
            e => Err(std::io::Error::from(e)).context("clone the container's init into its cgroup"),
        },
        0 => Ok((Forked::Child, true)),
        pid => Ok((Forked::Parent(pid as i32), true)),
    }
}
