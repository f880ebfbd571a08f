//! `linux.seccomp`: the OCI profile compiled to BPF with seccompiler, loaded with seccomp(2).
//!
//! seccompiler builds filters with one action for matches and one for the rest, while an
//! OCI profile gives an action per rule. The profile becomes a stack of filters, which the
//! kernel runs together, keeping the highest-precedence result:
//! - a main filter: every syscall a rule names (with the rule's argument conditions) is
//!   allowed, everything else gets the default action;
//! - one filter per other action: its rules get that action, everything else is allowed.
//!
//! Since every non-allow action outranks "allow", each syscall ends with exactly the action
//! of the rule it matches, or the default. Syscall names unknown on this architecture are
//! skipped, as runc does; what seccompiler cannot express (SCMP_ACT_NOTIFY, a listener) is
//! refused with an error, never silently allowed.

#[cfg(target_arch = "x86_64")]
mod syscalls_x86_64;

use std::collections::BTreeMap;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::{Result, RuntimeError};

fn invalid(msg: String) -> RuntimeError {
    RuntimeError::InvalidConfig(format!("seccomp: {msg}"))
}

/// The number of a syscall on this architecture.
pub fn syscall_number(name: &str) -> Option<i64> {
    #[cfg(target_arch = "x86_64")]
    {
        let table = syscalls_x86_64::SYSCALLS;
        table
            .binary_search_by(|(n, _)| n.cmp(&name))
            .ok()
            .map(|i| table[i].1)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = name;
        None
    }
}

fn target_arch() -> Result<TargetArch> {
    if cfg!(target_arch = "x86_64") {
        Ok(TargetArch::x86_64)
    } else {
        Err(invalid(
            "profiles are supported on x86_64 only in this build".into(),
        ))
    }
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

fn condition(arg: &LinuxSeccompArg) -> Result<SeccompCondition> {
    let op = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => SeccompCmpOp::Ne,
        LinuxSeccompOperator::ScmpCmpLt => SeccompCmpOp::Lt,
        LinuxSeccompOperator::ScmpCmpLe => SeccompCmpOp::Le,
        LinuxSeccompOperator::ScmpCmpEq => SeccompCmpOp::Eq,
        LinuxSeccompOperator::ScmpCmpGe => SeccompCmpOp::Ge,
        LinuxSeccompOperator::ScmpCmpGt => SeccompCmpOp::Gt,
        // libseccomp: (arg & value) == valueTwo.
        LinuxSeccompOperator::ScmpCmpMaskedEq => SeccompCmpOp::MaskedEq(arg.value()),
    };
    let value = match arg.op() {
        LinuxSeccompOperator::ScmpCmpMaskedEq => arg.value_two().unwrap_or(0),
        _ => arg.value(),
    };
    let index = u8::try_from(arg.index())
        .map_err(|_| invalid(format!("argument index {} out of range", arg.index())))?;
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
        .map_err(|e| invalid(format!("argument {index}: {e}")))
}

/// Rules for one syscall: None means "unconditionally".
type Rules = BTreeMap<i64, Option<Vec<SeccompRule>>>;

fn add_rule(rules: &mut Rules, nr: i64, rule: Option<SeccompRule>) {
    let entry = rules.entry(nr).or_insert_with(|| Some(Vec::new()));
    match (entry.as_mut(), rule) {
        (Some(list), Some(rule)) => list.push(rule),
        // An unconditional rule covers every conditional one.
        (_, None) => *entry = None,
        (None, Some(_)) => {}
    }
}

fn finish(rules: Rules) -> BTreeMap<i64, Vec<SeccompRule>> {
    rules
        .into_iter()
        .map(|(nr, r)| (nr, r.unwrap_or_default()))
        .collect()
}

/// A compiled profile: filters to install in order, and the seccomp(2) flags.
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
        let arch = target_arch()?;
        let default = action(profile.default_action(), profile.default_errno_ret())?;
        let mut allow_listed = Rules::new();
        let mut by_action: Vec<(SeccompAction, Rules)> = Vec::new();
        for syscall in profile.syscalls().iter().flatten() {
            let act = action(syscall.action(), syscall.errno_ret())?;
            let conditions = syscall
                .args()
                .iter()
                .flatten()
                .map(condition)
                .collect::<Result<Vec<_>>>()?;
            let rule = || -> Result<Option<SeccompRule>> {
                if conditions.is_empty() {
                    Ok(None)
                } else {
                    SeccompRule::new(conditions.clone())
                        .map(Some)
                        .map_err(|e| invalid(e.to_string()))
                }
            };
            for name in syscall.names() {
                let Some(nr) = syscall_number(name) else {
                    tracing::debug!("seccomp: skipping unknown syscall {name}");
                    continue;
                };
                add_rule(&mut allow_listed, nr, rule()?);
                if act != SeccompAction::Allow {
                    let index = match by_action.iter().position(|(a, _)| *a == act) {
                        Some(i) => i,
                        None => {
                            by_action.push((act.clone(), Rules::new()));
                            by_action.len() - 1
                        }
                    };
                    add_rule(&mut by_action[index].1, nr, rule()?);
                }
            }
        }

        let compile = |rules: Rules,
                       mismatch: SeccompAction,
                       on_match: SeccompAction|
         -> Result<BpfProgram> {
            let filter = SeccompFilter::new(finish(rules), mismatch, on_match, arch)
                .map_err(|e| invalid(e.to_string()))?;
            filter
                .try_into()
                .map_err(|e: seccompiler::BackendError| invalid(e.to_string()))
        };
        let mut filters = Vec::new();
        if default != SeccompAction::Allow {
            filters.push(compile(allow_listed, default, SeccompAction::Allow)?);
        }
        for (act, rules) in by_action {
            filters.push(compile(rules, SeccompAction::Allow, act)?);
        }
        if filters.is_empty() {
            return Ok(None);
        }
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

    /// How many BPF filters the profile became.
    pub fn filter_count(&self) -> usize {
        self.filters.len()
    }

    /// Install the filters on the calling thread.
    pub fn load(&self) -> Result<()> {
        for filter in &self.filters {
            let program = libc::sock_fprog {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn names_resolve_on_this_architecture() {
        assert_eq!(syscall_number("read"), Some(libc::SYS_read));
        assert_eq!(syscall_number("openat2"), Some(libc::SYS_openat2));
        assert_eq!(syscall_number("no_such_call"), None);
    }

    #[test]
    fn allow_all_needs_no_filter() {
        let p = profile(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#);
        assert!(SeccompProgram::compile(&p).unwrap().is_none());
    }

    #[test]
    fn a_profile_becomes_one_filter_per_action() {
        let p = profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [
                  {"names": ["read", "write", "exit_group", "not_a_syscall"], "action": "SCMP_ACT_ALLOW"},
                  {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                  {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                  {"names": ["mkdir"], "action": "SCMP_ACT_KILL_PROCESS"}
                ]}"#,
        );
        let program = SeccompProgram::compile(&p).unwrap().unwrap();
        assert_eq!(program.filter_count(), 3);
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

    #[test]
    fn the_filter_really_blocks_in_a_child() {
        // Load in a forked child (filters cannot be removed), then try the calls.
        let p = profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                  {"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                  {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
               ]}"#,
        );
        let program = SeccompProgram::compile(&p).unwrap().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("blocked");
        // SAFETY: the child only makes syscalls and exits with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let _ = nix::sys::prctl::set_no_new_privs();
                let ok = program.load().is_ok()
                    && std::fs::create_dir(&target).map_err(|e| e.raw_os_error()) == Err(Some(libc::EPERM))
                    // SAFETY: getppid takes no arguments.
                    && unsafe { libc::syscall(libc::SYS_getppid) } == -1
                    && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS);
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
}
