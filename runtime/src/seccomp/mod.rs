//! `linux.seccomp`: the OCI profile compiled into one classic-BPF filter and loaded with
//! seccomp(2), with runc's (libseccomp's) semantics on every system call ABI the profile
//! lists.
//!
//! The filter dispatches on `seccomp_data.arch`, then, for AUDIT_ARCH_X86_64, on the x32
//! bit of the number, into one section per ABI (x86_64 always, as libseccomp always adds
//! the native one; i386 and x32 when `architectures` lists them). Each section resolves
//! the profile's names with that ABI's own numbers (tables generated from the kernel's
//! headers) and finds the call in a binary search tree; a call's rules are tried most
//! restrictive action first, so the result is the action of the strongest rule that
//! matches, else the default. What no section covers is killed (libseccomp's "bad
//! architecture" action), except number -1, which tracers use to skip a call. A profile
//! too big for the kernel's 4096 instructions in one filter becomes one filter per ABI.
//!
//! Where runc agrees, so does this:
//! - an ABI's calls numbered above the highest number any rule of the profile names in
//!   that ABI get ENOSYS instead of the default action, when the default is not an allow
//!   action (allow, log, trace): libcs probe new calls and fall back on ENOSYS, not EPERM
//!   (runc's patchbpf "-ENOSYS stub");
//! - a rule whose action is the default action adds nothing; a rule with two conditions
//!   on the same argument matches if either does;
//! - i386's socket and SysV IPC calls are also filtered where they go through the
//!   `socketcall` and `ipc` multiplexers (their first argument names the call);
//! - arguments are compared on 64 bits for x86_64 and on their low 32 for i386 and x32;
//! - names an ABI does not know are skipped for that ABI.
//!
//! seccompiler compiles the argument conditions (`SeccompRule` → BPF); it cannot build
//! the rest: it targets one architecture per program, gives one action to all the rules
//! of a filter and tests calls one after the other (five instructions each), so three
//! ABIs of a Docker profile would not fit the kernel's 4096 instructions. What seccompiler
//! cannot express (SCMP_ACT_NOTIFY, a listener) is refused with an error, never allowed.

mod abi;
mod bpf;
mod syscalls_x32;
mod syscalls_x86;
mod syscalls_x86_64;

use std::collections::BTreeSet;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule,
};

use abi::Abi;
use abi::{AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use bpf::{Asm, Cond, Label};

use crate::error::{Result, RuntimeError};

fn invalid(msg: String) -> RuntimeError {
    RuntimeError::InvalidConfig(format!("seccomp: {msg}"))
}

fn action(action: LinuxSeccompAction, errno: Option<u32>) -> Result<SeccompAction> {
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        LinuxSeccompAction::ScmpActErrno => {
            SeccompAction::Errno(errno.unwrap_or(libc::EPERM as u32))
        }
        LinuxSeccompAction::ScmpActTrace => {
            SeccompAction::Trace(errno.unwrap_or(libc::EPERM as u32))
        }
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(invalid(
                "SCMP_ACT_NOTIFY is not supported by berth-runtime".into(),
            ))
        }
    })
}

/// The kernel's order among filter results (seccomp(2)): the lower, the stronger.
fn strength(action: &SeccompAction) -> u8 {
    match action {
        SeccompAction::KillProcess => 0,
        SeccompAction::KillThread => 1,
        SeccompAction::Trap => 2,
        SeccompAction::Errno(_) => 3,
        SeccompAction::Trace(_) => 4,
        SeccompAction::Log => 5,
        SeccompAction::Allow => 6,
    }
}

/// One argument condition of the profile, checked once.
#[derive(Debug, Clone, Copy)]
struct Compare {
    index: u8,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: u64,
}

impl Compare {
    fn new(arg: &LinuxSeccompArg) -> Result<Self> {
        let index = u8::try_from(arg.index())
            .ok()
            .filter(|i| *i < 6)
            .ok_or_else(|| invalid(format!("argument index {} out of range", arg.index())))?;
        Ok(Self {
            index,
            op: arg.op(),
            value: arg.value(),
            value_two: arg.value_two().unwrap_or(0),
        })
    }

    /// The condition for an ABI: 64-bit compares, or 32-bit ones on the low half.
    fn condition(&self, narrow: bool) -> Result<SeccompCondition> {
        let (len, fit) = if narrow {
            (SeccompCmpArgLen::Dword, u64::from(u32::MAX))
        } else {
            (SeccompCmpArgLen::Qword, u64::MAX)
        };
        let (op, value) = match self.op {
            LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, self.value),
            LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, self.value),
            LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, self.value),
            LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, self.value),
            LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, self.value),
            LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, self.value),
            // libseccomp: (arg & value) == valueTwo.
            LinuxSeccompOperator::ScmpCmpMaskedEq => {
                (SeccompCmpOp::MaskedEq(self.value & fit), self.value_two)
            }
        };
        SeccompCondition::new(self.index, len, op, value & fit)
            .map_err(|e| invalid(format!("argument {}: {e}", self.index)))
    }
}

/// A rule as the profile gives it: names, an action, and the alternatives of argument
/// conditions (each all-of; none at all means unconditional).
struct ProfileRule<'a> {
    names: &'a [String],
    action: SeccompAction,
    /// Which of the profile's distinct actions this is, in order of first appearance.
    group: u8,
    alternatives: Vec<Vec<Compare>>,
}

impl<'a> ProfileRule<'a> {
    fn new(syscall: &'a oci_spec::runtime::LinuxSyscall) -> Result<Self> {
        let compares = syscall
            .args()
            .iter()
            .flatten()
            .map(Compare::new)
            .collect::<Result<Vec<_>>>()?;
        let mut indexes: Vec<u8> = compares.iter().map(|c| c.index).collect();
        indexes.sort_unstable();
        indexes.dedup();
        // As runc: two conditions on one argument are alternatives, not both required.
        let alternatives = if indexes.len() < compares.len() {
            compares.into_iter().map(|c| vec![c]).collect()
        } else {
            vec![compares]
        };
        Ok(Self {
            names: syscall.names(),
            action: action(syscall.action(), syscall.errno_ret())?,
            group: 0,
            alternatives,
        })
    }
}

/// One rule for one call of one ABI.
#[derive(Clone)]
struct Rule {
    action: SeccompAction,
    /// The argument conditions; None: the rule always matches.
    when: Option<SeccompRule>,
}

impl Rule {
    fn new(action: &SeccompAction, conditions: Vec<SeccompCondition>) -> Result<Self> {
        let when = if conditions.is_empty() {
            None
        } else {
            Some(SeccompRule::new(conditions).map_err(|e| invalid(e.to_string()))?)
        };
        Ok(Self {
            action: action.clone(),
            when,
        })
    }
}

/// What one ABI's part of the filter decides.
struct Section {
    abi: Abi,
    /// (number, rule), sorted by number, then in the order the rules are tried.
    calls: Vec<(u32, Rule)>,
    /// Calls numbered above this get ENOSYS.
    enosys_above: Option<u32>,
}

impl Section {
    fn build(abi: Abi, rules: &[ProfileRule], default: &SeccompAction, stub: bool) -> Result<Self> {
        let narrow = abi.narrow_args();
        // (number, rule, the rule's action group).
        let mut calls: Vec<(u32, Rule, u8)> = Vec::with_capacity(rules.len() * 32);
        let mut highest = None;
        for rule in rules {
            for name in rule.names {
                let direct = abi.number(name);
                let multiplexed = abi.multiplexed(name);
                if multiplexed.is_none() {
                    // runc counts every rule, whatever its action; libseccomp has no
                    // number for i386's multiplexed names, so they do not count.
                    highest = highest.max(direct);
                }
                if direct.is_none() && multiplexed.is_none() {
                    tracing::debug!("seccomp: {abi:?} has no {name}");
                    continue;
                }
                if rule.action == *default {
                    continue;
                }
                for alternative in &rule.alternatives {
                    if let Some(nr) = direct {
                        let conditions = alternative
                            .iter()
                            .map(|c| c.condition(narrow))
                            .collect::<Result<_>>()?;
                        calls.push((nr, Rule::new(&rule.action, conditions)?, rule.group));
                    }
                    if let Some((nr, call)) = multiplexed {
                        // libseccomp's rewrite: the first argument selects the call.
                        let mut conditions = vec![SeccompCondition::new(
                            0,
                            SeccompCmpArgLen::Dword,
                            SeccompCmpOp::Eq,
                            call,
                        )
                        .map_err(|e| invalid(e.to_string()))?];
                        for c in alternative.iter().filter(|c| c.index != 0) {
                            conditions.push(c.condition(narrow)?);
                        }
                        calls.push((nr, Rule::new(&rule.action, conditions)?, rule.group));
                    }
                }
            }
        }
        // A call's rules are tried strongest action first (the kernel's order of
        // results), one action's rules together, and among them one that always matches
        // first: the first match is then the strongest. Profile order otherwise. One u64
        // per rule sorts fast (this runs on every container start): number, strength,
        // action group, conditional, position.
        if calls.len() >= 1 << 21 {
            return Err(invalid("too many rules".into()));
        }
        let mut keys: Vec<u64> = calls
            .iter()
            .enumerate()
            .map(|(i, (nr, rule, group))| {
                u64::from(*nr) << 33
                    | u64::from(strength(&rule.action)) << 30
                    | u64::from(*group) << 22
                    | u64::from(rule.when.is_some()) << 21
                    | i as u64
            })
            .collect();
        keys.sort_unstable();
        let mut slots: Vec<Option<(u32, Rule, u8)>> = calls.into_iter().map(Some).collect();
        let calls = keys
            .iter()
            .filter_map(|k| slots[(k & ((1 << 21) - 1)) as usize].take())
            .map(|(nr, rule, _)| (nr, rule))
            .collect();
        Ok(Self {
            abi,
            calls,
            enosys_above: if stub { highest } else { None },
        })
    }
}

/// A compiled profile: its filter (or one per ABI when a profile is too big for one) and
/// the seccomp(2) flags to load them with.
#[derive(Debug, Clone)]
pub struct SeccompProgram {
    filters: Vec<BpfProgram>,
    flags: libc::c_ulong,
}

impl SeccompProgram {
    /// Compile a profile; None when it would allow everything.
    pub fn compile(profile: &LinuxSeccomp) -> Result<Option<Self>> {
        if profile.listener_path().is_some() {
            return Err(invalid(
                "listenerPath (seccomp notify) is not supported by berth-runtime".into(),
            ));
        }
        if !cfg!(target_arch = "x86_64") {
            return Err(invalid(
                "profiles are supported on x86_64 only in this build".into(),
            ));
        }
        let default = action(profile.default_action(), profile.default_errno_ret())?;
        let mut rules = profile
            .syscalls()
            .iter()
            .flatten()
            .map(ProfileRule::new)
            .collect::<Result<Vec<_>>>()?;
        let mut actions: Vec<SeccompAction> = Vec::new();
        for rule in &mut rules {
            let index = match actions.iter().position(|a| *a == rule.action) {
                Some(i) => i,
                None => {
                    actions.push(rule.action.clone());
                    actions.len() - 1
                }
            };
            rule.group = u8::try_from(index)
                .map_err(|_| invalid("more than 256 different actions".into()))?;
        }
        if default == SeccompAction::Allow && rules.iter().all(|r| r.action == default) {
            return Ok(None);
        }
        let mut abis = BTreeSet::from([Abi::X86_64]);
        abis.extend(
            profile
                .architectures()
                .iter()
                .flatten()
                .filter_map(|a| Abi::from_oci(*a)),
        );
        // runc's rule: allow-like defaults (allow, log, trace) keep their meaning for
        // unknown calls; the others answer ENOSYS above the profile's newest call.
        let stub = !matches!(
            default,
            SeccompAction::Allow | SeccompAction::Log | SeccompAction::Trace(_)
        );
        let sections = abis
            .iter()
            .map(|abi| Section::build(*abi, &rules, &default, stub))
            .collect::<Result<Vec<_>>>()?;
        let filters = emit_all(&sections, &abis, u32::from(default))?;
        let mut flags: libc::c_ulong = 0;
        for flag in profile.flags().iter().flatten() {
            flags |= match flag {
                LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
                LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
                LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                    libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
                }
                // Only meaningful for a notify listener, which is refused above.
                LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
            };
        }
        Ok(Some(Self { filters, flags }))
    }

    /// The filters, in the order they are loaded.
    pub fn filters(&self) -> &[BpfProgram] {
        &self.filters
    }

    /// Install the filters on the calling thread.
    pub fn load(&self) -> Result<()> {
        for filter in &self.filters {
            let program = libc::sock_fprog {
                // `emit_all` keeps each filter within the kernel's 4096 instructions.
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            // SAFETY: seccomp(2) reads `program`, which points into `filter`; both live
            // across the call. seccompiler's sock_filter has libc's layout.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    self.flags,
                    &program as *const libc::sock_fprog,
                )
            };
            if ret != 0 {
                let err = std::io::Error::last_os_error();
                return Err(RuntimeError::Init(format!("load seccomp filter: {err}")));
            }
        }
        Ok(())
    }
}

/// What a section's calls are searched by: a leaf tests its calls one by one.
const LEAF: usize = 6;

/// Lay out a filter: the architecture dispatch, then its sections. A profile too big for
/// one filter is loaded as one filter per ABI (see `compile`): an ABI that another filter
/// of the profile handles is allowed here (that filter decides; the kernel keeps the
/// strongest result), and only the filter with the native section kills the ABIs no
/// section handles.
fn emit(sections: &[&Section], listed: &BTreeSet<Abi>, default: u32) -> Result<BpfProgram> {
    const ALLOW: u32 = 0x7fff_0000;
    let bad_arch = u32::from(SeccompAction::KillProcess);
    let calls: usize = sections.iter().map(|s| s.calls.len()).sum();
    let mut asm = Asm::with_capacity(5 * calls + 64);
    let labels: Vec<Label> = sections.iter().map(|_| asm.label()).collect();
    let label_of = |abi: Abi| {
        sections
            .iter()
            .position(|s| s.abi == abi)
            .map(|i| labels[i])
    };
    let native_here = label_of(Abi::X86_64).is_some();
    // For an ABI without a section here: another filter's, or nobody's.
    let elsewhere = |abi: Abi| {
        if listed.contains(&abi) || !native_here {
            ALLOW
        } else {
            bad_arch
        }
    };

    asm.load(bpf::ARCH_OFFSET);
    let x86_64_arch = asm.label();
    asm.jump(Cond::Eq, AUDIT_ARCH_X86_64, Some(x86_64_arch), None);
    let other = asm.label();
    asm.jump(Cond::Eq, AUDIT_ARCH_I386, None, Some(other));
    match label_of(Abi::X86) {
        Some(x86) => asm.goto(x86),
        None => asm.ret(elsewhere(Abi::X86)),
    }
    asm.mark(other);
    asm.ret(if native_here { bad_arch } else { ALLOW });

    // x86_64 and x32 share AUDIT_ARCH_X86_64; x32's numbers carry the x32 bit.
    asm.mark(x86_64_arch);
    asm.load(bpf::NR_OFFSET);
    let native = asm.label();
    asm.jump(Cond::Set, X32_SYSCALL_BIT, None, Some(native));
    match label_of(Abi::X32) {
        Some(x32) => asm.goto(x32),
        None if listed.contains(&Abi::X32) || !native_here => asm.ret(ALLOW),
        None => {
            // As libseccomp: an x32 call without an x32 section is a bad architecture,
            // but -1 (a tracer skipping a call) is not.
            let bad = asm.label();
            asm.jump(Cond::Eq, u32::MAX, None, Some(bad));
            asm.ret(default);
            asm.mark(bad);
            asm.ret(bad_arch);
        }
    }
    asm.mark(native);
    if !native_here {
        asm.ret(ALLOW);
    }

    // The native section first: its code follows the dispatch above.
    let mut order: Vec<usize> = (0..sections.len()).collect();
    order.sort_by_key(|i| sections[*i].abi != Abi::X86_64);
    for (section, label) in order.into_iter().map(|i| (sections[i], labels[i])) {
        asm.mark(label);
        // x86_64 and x32 come with the number loaded by the dispatch.
        if section.abi == Abi::X86 {
            asm.load(bpf::NR_OFFSET);
        }
        if let Some(max) = section.enosys_above {
            let known = asm.label();
            asm.jump(Cond::Gt, max, None, Some(known));
            asm.ret(u32::from(SeccompAction::Errno(libc::ENOSYS as u32)));
            asm.mark(known);
        }
        let calls: Vec<&[(u32, Rule)]> = section.calls.chunk_by(|a, b| a.0 == b.0).collect();
        emit_tree(&mut asm, &calls, default);
    }
    asm.assemble()
        .map_err(|e| invalid(format!("building the filter: {e}")))
}

/// The filters to load for the sections: one, or one per ABI when they do not fit the
/// kernel's limit together.
fn emit_all(sections: &[Section], listed: &BTreeSet<Abi>, default: u32) -> Result<Vec<BpfProgram>> {
    let all: Vec<&Section> = sections.iter().collect();
    let one = emit(&all, listed, default)?;
    if one.len() <= bpf::MAX_INSNS {
        return Ok(vec![one]);
    }
    let mut filters = Vec::new();
    for section in sections {
        let filter = emit(&[section], listed, default)?;
        if filter.len() > bpf::MAX_INSNS {
            return Err(invalid(format!(
                "the profile needs {} BPF instructions for {:?} alone, more than the \
                 kernel's {}",
                filter.len(),
                section.abi,
                bpf::MAX_INSNS
            )));
        }
        filters.push(filter);
    }
    Ok(filters)
}

/// A binary search over the calls (sorted by number; the number is in A), each leaf
/// ending with the default action.
fn emit_tree(asm: &mut Asm, calls: &[&[(u32, Rule)]], default: u32) {
    if calls.len() <= LEAF {
        for rules in calls {
            emit_call(asm, rules, default);
        }
        asm.ret(default);
        return;
    }
    let (low, high) = calls.split_at(calls.len() / 2);
    let (low_label, high_label) = (asm.label(), asm.label());
    asm.jump(Cond::Gt, low[low.len() - 1][0].0, None, Some(low_label));
    asm.goto(high_label);
    asm.mark(low_label);
    emit_tree(asm, low, default);
    asm.mark(high_label);
    emit_tree(asm, high, default);
}

/// One call (a non-empty run of one number's rules): its rules in order, then the default
/// if none matched.
fn emit_call(asm: &mut Asm, rules: &[(u32, Rule)], default: u32) {
    let nr = rules[0].0;
    let next = asm.label();
    if let [(_, Rule { action, when: None }), ..] = rules {
        asm.jump(Cond::Eq, nr, None, Some(next));
        asm.ret(u32::from(action.clone()));
        asm.mark(next);
        return;
    }
    let body = asm.label();
    asm.jump(Cond::Eq, nr, Some(body), None);
    asm.goto(next);
    asm.mark(body);
    for (_, rule) in rules {
        match &rule.when {
            // seccompiler's rule code falls through when every condition holds and
            // otherwise skips the instruction after it: the rule's return.
            Some(conditions) => asm.fixed(BpfProgram::from(conditions.clone())),
            None => {
                // Always matches: the rules after it are never reached.
                asm.ret(u32::from(rule.action.clone()));
                asm.mark(next);
                return;
            }
        }
        asm.ret(u32::from(rule.action.clone()));
    }
    asm.ret(default);
    asm.mark(next);
}
#[cfg(test)]
mod tests {
    use super::bpf::interp::{run, Data};
    use super::*;

    const ALLOW: u32 = 0x7fff_0000;
    const KILL_PROCESS: u32 = 0x8000_0000;
    const fn errno(e: u32) -> u32 {
        0x0005_0000 | e
    }

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    fn compile(json: &str) -> SeccompProgram {
        SeccompProgram::compile(&profile(json)).unwrap().unwrap()
    }

    /// What the kernel decides for a call (numbers as the kernel shows them): each
    /// filter runs and the strongest result wins (seccomp(2); ties go to the newest).
    fn decide(program: &SeccompProgram, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let data = Data { nr, arch, args };
        let strength = |ret: u32| (ret & 0xffff_0000) as i32;
        program
            .filters()
            .iter()
            .rev()
            .map(|f| run(f, &data).unwrap().0)
            .fold(ALLOW, |best, ret| {
                if strength(ret) < strength(best) {
                    ret
                } else {
                    best
                }
            })
    }

    fn call(program: &SeccompProgram, abi: Abi, name: &str, args: [u64; 6]) -> u32 {
        let nr = abi.number(name).unwrap();
        decide(program, arch_of(abi), nr, args)
    }

    fn arch_of(abi: Abi) -> u32 {
        if abi == Abi::X86 {
            AUDIT_ARCH_I386
        } else {
            AUDIT_ARCH_X86_64
        }
    }

    const ALL_ABIS: [Abi; 3] = [Abi::X86_64, Abi::X86, Abi::X32];

    /// In the style of Docker's profile: errno by default, an allow list, a conditional
    /// personality, clone3 answering ENOSYS, and all three x86 ABIs.
    const DOCKER_LIKE: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
          {"names": ["read", "write", "getpid", "exit_group", "socketcall", "waitpid", "not_a_call"],
           "action": "SCMP_ACT_ALLOW"},
          {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
           "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
          {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]}"#;

    #[test]
    fn allow_all_needs_no_filter() {
        let p = profile(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#);
        assert!(SeccompProgram::compile(&p).unwrap().is_none());
        let p = profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#,
        );
        assert!(SeccompProgram::compile(&p).unwrap().is_none());
    }

    #[test]
    fn every_listed_abi_gets_the_profile_with_its_own_numbers() {
        let program = compile(DOCKER_LIKE);
        for abi in ALL_ABIS {
            assert_eq!(call(&program, abi, "getpid", [0; 6]), ALLOW, "{abi:?}");
            assert_eq!(call(&program, abi, "read", [0; 6]), ALLOW, "{abi:?}");
            assert_eq!(call(&program, abi, "mkdir", [0; 6]), errno(1), "{abi:?}");
            assert_eq!(call(&program, abi, "clone3", [0; 6]), errno(38), "{abi:?}");
            assert_eq!(
                call(&program, abi, "personality", [8, 0, 0, 0, 0, 0]),
                ALLOW
            );
            assert_eq!(
                call(&program, abi, "personality", [9, 0, 0, 0, 0, 0]),
                errno(1)
            );
        }
        // i386-only calls exist only there.
        assert_eq!(
            call(&program, Abi::X86, "socketcall", [1, 0, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(call(&program, Abi::X86, "waitpid", [0; 6]), ALLOW);
        // The same number means another call in another ABI: i386's 20 is getpid,
        // x86_64's 20 is writev (not allowed).
        assert_eq!(decide(&program, AUDIT_ARCH_I386, 20, [0; 6]), ALLOW);
        assert_eq!(decide(&program, AUDIT_ARCH_X86_64, 20, [0; 6]), errno(1));
    }

    #[test]
    fn arguments_are_64_bits_on_x86_64_and_32_on_the_others() {
        let program = compile(DOCKER_LIKE);
        let high_garbage = [0xffff_ffff_0000_0008, 0, 0, 0, 0, 0];
        assert_eq!(
            call(&program, Abi::X86_64, "personality", high_garbage),
            errno(1)
        );
        assert_eq!(call(&program, Abi::X86, "personality", high_garbage), ALLOW);
        assert_eq!(call(&program, Abi::X32, "personality", high_garbage), ALLOW);
    }

    #[test]
    fn calls_above_the_profiles_newest_get_enosys_per_abi() {
        let program = compile(DOCKER_LIKE);
        // The newest call the profile names is clone3 (435) in every ABI here.
        for abi in ALL_ABIS {
            let bit = if abi == Abi::X32 { X32_SYSCALL_BIT } else { 0 };
            let arch = arch_of(abi);
            for nr in [436, 451, 456, 1000, 0x3fff_ffff] {
                assert_eq!(
                    decide(&program, arch, nr | bit, [0; 6]),
                    errno(38),
                    "{abi:?} {nr}"
                );
            }
            // Below it, an unnamed call (or a hole in the table) gets the default.
            for nr in [300, 400, 434] {
                assert_eq!(
                    decide(&program, arch, nr | bit, [0; 6]),
                    errno(1),
                    "{abi:?} {nr}"
                );
            }
        }
        // -1 carries the x32 bit: with x32 in the profile it is above x32's newest call,
        // as with runc.
        assert_eq!(
            decide(&program, AUDIT_ARCH_X86_64, u32::MAX, [0; 6]),
            errno(38)
        );
    }

    #[test]
    fn the_enosys_bound_is_what_the_profile_names_not_the_whole_table() {
        // runc's rule: every rule counts, whatever its action, in each ABI's own numbers.
        let program = compile(
            r#"{"defaultAction": "SCMP_ACT_KILL_PROCESS", "architectures": ["SCMP_ARCH_X86"],
                "syscalls": [
                  {"names": ["read", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                  {"names": ["getrandom"], "action": "SCMP_ACT_KILL_PROCESS"}
                ]}"#,
        );
        // x86_64: getrandom is 318; i386: getrandom is 355.
        assert_eq!(
            decide(&program, AUDIT_ARCH_X86_64, 318, [0; 6]),
            KILL_PROCESS
        );
        assert_eq!(decide(&program, AUDIT_ARCH_X86_64, 319, [0; 6]), errno(38));
        assert_eq!(decide(&program, AUDIT_ARCH_I386, 355, [0; 6]), KILL_PROCESS);
        assert_eq!(decide(&program, AUDIT_ARCH_I386, 356, [0; 6]), errno(38));
        assert_eq!(decide(&program, AUDIT_ARCH_I386, 3, [0; 6]), ALLOW);
    }

    #[test]
    fn allow_like_defaults_get_no_enosys() {
        for default in ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"] {
            let program = compile(&format!(
                r#"{{"defaultAction": "{default}", "architectures": ["SCMP_ARCH_X86_64"],
                    "syscalls": [{{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}}]}}"#
            ));
            let out = decide(&program, AUDIT_ARCH_X86_64, 1000, [0; 6]);
            assert_ne!(out, errno(38), "{default}");
            assert_eq!(call(&program, Abi::X86_64, "mkdir", [0; 6]), errno(1));
        }
    }

    #[test]
    fn abis_the_profile_does_not_list_are_killed_as_libseccomp_does() {
        let program = compile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}"#,
        );
        assert_eq!(call(&program, Abi::X86_64, "getpid", [0; 6]), ALLOW);
        assert_eq!(call(&program, Abi::X86, "getpid", [0; 6]), KILL_PROCESS);
        assert_eq!(call(&program, Abi::X32, "getpid", [0; 6]), KILL_PROCESS);
        // A tracer's -1 is not an x32 call.
        assert_eq!(
            decide(&program, AUDIT_ARCH_X86_64, u32::MAX, [0; 6]),
            errno(1)
        );
        // Architectures this kernel never reports: killed whatever the profile says.
        const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
        assert_eq!(
            decide(&program, AUDIT_ARCH_AARCH64, 172, [0; 6]),
            KILL_PROCESS
        );
        let listed = compile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
                "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}"#,
        );
        assert_eq!(
            decide(&listed, AUDIT_ARCH_AARCH64, 172, [0; 6]),
            KILL_PROCESS
        );
    }

    #[test]
    fn i386_socket_and_ipc_calls_are_filtered_through_their_multiplexers_too() {
        let program = compile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                "syscalls": [
                  {"names": ["socket", "shmget"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                  {"names": ["connect"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                   "args": [{"index": 2, "value": 16, "op": "SCMP_CMP_GT"}]}
                ]}"#,
        );
        let socketcall =
            |sub: u64, a2: u64| decide(&program, AUDIT_ARCH_I386, 102, [sub, 0, a2, 0, 0, 0]);
        assert_eq!(call(&program, Abi::X86, "socket", [0; 6]), errno(13));
        assert_eq!(socketcall(1, 0), errno(13), "socketcall(SYS_SOCKET)");
        assert_eq!(socketcall(2, 0), ALLOW, "socketcall(SYS_BIND)");
        // The rule's other conditions stay; its first argument becomes the call.
        assert_eq!(socketcall(3, 17), errno(13));
        assert_eq!(socketcall(3, 16), ALLOW);
        assert_eq!(
            decide(&program, AUDIT_ARCH_I386, 117, [23, 0, 0, 0, 0, 0]),
            errno(13)
        );
        assert_eq!(
            decide(&program, AUDIT_ARCH_I386, 117, [21, 0, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(call(&program, Abi::X86_64, "socket", [0; 6]), errno(13));
        assert_eq!(call(&program, Abi::X86_64, "socketpair", [0; 6]), ALLOW);
    }

    #[test]
    fn the_strongest_matching_rule_wins_and_default_rules_add_nothing() {
        let program = compile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                  {"names": ["getppid", "mkdir", "ptrace"], "action": "SCMP_ACT_ALLOW"},
                  {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
                  {"names": ["mkdir"], "action": "SCMP_ACT_KILL_PROCESS",
                   "args": [{"index": 1, "value": 511, "op": "SCMP_CMP_EQ"}]},
                  {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO"}
                ]}"#,
        );
        assert_eq!(call(&program, Abi::X86_64, "getppid", [0; 6]), errno(18));
        assert_eq!(
            call(&program, Abi::X86_64, "mkdir", [0, 511, 0, 0, 0, 0]),
            KILL_PROCESS
        );
        assert_eq!(
            call(&program, Abi::X86_64, "mkdir", [0, 493, 0, 0, 0, 0]),
            ALLOW
        );
        // A rule with the default action is dropped (as runc): ptrace stays allowed.
        assert_eq!(call(&program, Abi::X86_64, "ptrace", [0; 6]), ALLOW);
    }

    #[test]
    fn conditions_on_one_argument_are_alternatives_and_on_several_all_hold() {
        let program = compile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                  {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                            {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                  {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_GT"},
                            {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]},
                  {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}
                ]}"#,
        );
        let p = |a0| call(&program, Abi::X86_64, "personality", [a0, 0, 0, 0, 0, 0]);
        assert_eq!((p(0), p(8), p(9)), (ALLOW, ALLOW, errno(1)));
        let k = |a0, a1| call(&program, Abi::X86_64, "kill", [a0, a1, 0, 0, 0, 0]);
        assert_eq!((k(5, 0), k(5, 9), k(1, 0)), (ALLOW, errno(1), errno(1)));
        let c = |flags| call(&program, Abi::X86_64, "clone", [flags, 0, 0, 0, 0, 0]);
        assert_eq!(c(0x0001_0f00), ALLOW, "thread flags");
        assert_eq!(c(0x0002_0000), errno(1), "CLONE_NEWNS");
    }

    #[test]
    fn a_profile_naming_every_call_of_every_abi_fits_and_stays_quick() {
        let mut names: Vec<&str> = [
            syscalls_x86_64::SYSCALLS,
            syscalls_x86::SYSCALLS,
            syscalls_x32::SYSCALLS,
        ]
        .iter()
        .flat_map(|t| t.iter().map(|e| e.0))
        .collect();
        names.sort_unstable();
        names.dedup();
        let json = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": names, "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
            ]
        });
        let program = compile(&json.to_string());
        assert_eq!(program.filters().len(), 1, "one filter for all three ABIs");
        let len = program.filters()[0].len();
        assert!(len < bpf::MAX_INSNS, "{len} instructions");
        // Every call of every ABI is found, each in a few dozen steps.
        let mut worst = 0;
        for abi in ALL_ABIS {
            for (name, _) in abi_table(abi) {
                let nr = abi.number(name).unwrap();
                let (out, steps) = run(
                    &program.filters()[0],
                    &Data {
                        nr,
                        arch: arch_of(abi),
                        args: [0; 6],
                    },
                )
                .unwrap();
                assert_eq!(out, ALLOW, "{abi:?} {name}");
                worst = worst.max(steps);
            }
        }
        assert!(worst < 40, "{worst} steps");
    }

    /// A profile with hundreds of conditional rules: too big for one filter on three ABIs,
    /// so one per ABI, which together decide as one would.
    fn big_profile() -> SeccompProgram {
        let names: Vec<&str> = syscalls_x86::SYSCALLS.iter().map(|e| e.0).collect();
        let mut rules = vec![serde_json::json!({"names": names, "action": "SCMP_ACT_ALLOW"})];
        for name in names.iter().filter(|n| !n.contains("getpid")).take(250) {
            rules.push(serde_json::json!({
                "names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": 7,
                "args": [{"index": 1, "value": 77, "op": "SCMP_CMP_EQ"},
                         {"index": 2, "value": 7, "op": "SCMP_CMP_GE"}]
            }));
        }
        let json = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": rules
        });
        compile(&json.to_string())
    }

    #[test]
    fn a_profile_too_big_for_one_filter_is_split_by_abi_and_decides_the_same() {
        let program = big_profile();
        assert_eq!(program.filters().len(), 3);
        assert!(program.filters().iter().all(|f| f.len() <= bpf::MAX_INSNS));
        for abi in ALL_ABIS {
            assert_eq!(call(&program, abi, "getpid", [0; 6]), ALLOW, "{abi:?}");
            assert_eq!(call(&program, abi, "close", [0; 6]), ALLOW, "{abi:?}");
            assert_eq!(
                call(&program, abi, "close", [0, 77, 9, 0, 0, 0]),
                errno(7),
                "{abi:?}"
            );
            assert_eq!(
                call(&program, abi, "close", [0, 77, 6, 0, 0, 0]),
                ALLOW,
                "{abi:?}"
            );
            let bit = if abi == Abi::X32 { X32_SYSCALL_BIT } else { 0 };
            assert_eq!(
                decide(&program, arch_of(abi), 1000 | bit, [0; 6]),
                errno(38)
            );
        }
        assert_eq!(decide(&program, 0xc000_00b7, 172, [0; 6]), KILL_PROCESS);
        // Without x32 in the profile, the native filter kills x32 calls (but not -1).
        let json = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]
        });
        let small = compile(&json.to_string());
        let syscall = small_rule();
        let rules = [ProfileRule::new(&syscall).unwrap()];
        let sections: Vec<Section> = [Abi::X86_64, Abi::X86]
            .into_iter()
            .map(|abi| Section::build(abi, &rules, &SeccompAction::Errno(1), true).unwrap())
            .collect();
        let listed = BTreeSet::from([Abi::X86_64, Abi::X86]);
        let split = SeccompProgram {
            filters: sections
                .iter()
                .map(|s| emit(&[s], &listed, errno(1)).unwrap())
                .collect(),
            flags: 0,
        };
        for program in [&small, &split] {
            assert_eq!(call(program, Abi::X86, "getpid", [0; 6]), ALLOW);
            assert_eq!(call(program, Abi::X86_64, "getpid", [0; 6]), ALLOW);
            assert_eq!(call(program, Abi::X32, "getpid", [0; 6]), KILL_PROCESS);
            assert_eq!(
                decide(program, AUDIT_ARCH_X86_64, u32::MAX, [0; 6]),
                errno(1)
            );
            assert_eq!(decide(program, 0xc000_00b7, 172, [0; 6]), KILL_PROCESS);
        }
    }

    #[test]
    fn a_profile_too_big_for_the_kernel_is_refused_clearly() {
        let rules: Vec<serde_json::Value> = (0..1000)
            .map(|v| {
                serde_json::json!({"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 1, "value": v, "op": "SCMP_CMP_EQ"}]})
            })
            .collect();
        let json = serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules});
        let err = SeccompProgram::compile(&profile(&json.to_string()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than the kernel's 4096"), "{err}");
    }

    fn small_rule() -> oci_spec::runtime::LinuxSyscall {
        serde_json::from_str(r#"{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}"#).unwrap()
    }

    fn abi_table(abi: Abi) -> &'static [(&'static str, u32)] {
        match abi {
            Abi::X86_64 => syscalls_x86_64::SYSCALLS,
            Abi::X86 => syscalls_x86::SYSCALLS,
            Abi::X32 => syscalls_x32::SYSCALLS,
        }
    }

    #[test]
    fn notify_is_refused_not_ignored() {
        let p = profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        );
        let err = SeccompProgram::compile(&p).unwrap_err().to_string();
        assert!(err.contains("SCMP_ACT_NOTIFY is not supported"), "{err}");
        let p = profile(r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock"}"#);
        assert!(SeccompProgram::compile(&p)
            .unwrap_err()
            .to_string()
            .contains("listenerPath"));
    }

    /// An i386 system call from this 64-bit process, through `int 0x80`.
    fn int80(nr: u32) -> i64 {
        let ret: u32;
        // SAFETY: the calls used here take no pointers; int 0x80 clobbers only eax (the
        // result) among the registers the compiler may hold values in.
        unsafe {
            std::arch::asm!("int 0x80", inlateout("eax") nr => ret, options(nostack));
        }
        i64::from(ret as i32)
    }

    fn native(nr: u32) -> i64 {
        // SAFETY: the calls used here take no arguments.
        let ret = unsafe { libc::syscall(libc::c_long::from(nr)) };
        if ret < 0 {
            -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            ret
        }
    }

    #[test]
    fn the_kernel_runs_the_filter_on_every_abi() {
        // Loaded in a forked child (filters cannot be removed), then real calls.
        let program = compile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [
                  {"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                  {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}
                ]}"#,
        );
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("blocked");
        // SAFETY: the child only makes syscalls and exits with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let _ = nix::sys::prctl::set_no_new_privs();
                let pid = i64::from(std::process::id());
                let ok = program.load().is_ok()
                    && std::fs::create_dir(&target).map_err(|e| e.raw_os_error())
                        == Err(Some(libc::EPERM))
                    && native(libc::SYS_getppid as u32) == -18
                    && int80(64) == -18
                    && int80(20) == pid
                    && native(libc::SYS_getpid as u32) == pid;
                // SAFETY: leave the forked test process without running its destructors.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
                assert!(!target.exists());
            }
        }
    }

    #[test]
    fn the_kernel_runs_a_split_profile_on_every_abi() {
        let program = big_profile();
        assert_eq!(program.filters().len(), 3);
        // SAFETY: the child only makes syscalls and exits with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let _ = nix::sys::prctl::set_no_new_privs();
                let pid = i64::from(std::process::id());
                let ok = program.load().is_ok()
                    && native(libc::SYS_getpid as u32) == pid
                    && int80(20) == pid
                    && native(1000) == -38
                    && int80(1000) == -38;
                // SAFETY: leave the forked test process without running its destructors.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }

    #[test]
    fn the_kernel_answers_enosys_above_the_profile_on_x86_64_and_i386() {
        let program = compile(DOCKER_LIKE.replace(r#""read","#, r#""read", "getppid", "mkdir", "brk", "mmap", "munmap", "rt_sigprocmask", "exit","#).as_str());
        // SAFETY: the child only makes syscalls and exits with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let _ = nix::sys::prctl::set_no_new_privs();
                let pid = i64::from(std::process::id());
                let ok = program.load().is_ok()
                    && native(libc::SYS_getpid as u32) == pid
                    && int80(20) == pid
                    && native(451) == -38
                    && int80(451) == -38
                    && native(400) == -1
                    && native(libc::SYS_clone3 as u32) == -38;
                // SAFETY: leave the forked test process without running its destructors.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
