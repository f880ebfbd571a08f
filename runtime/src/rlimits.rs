//! `process.rlimits`: resource limits set on the init before it executes.

use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

use crate::error::{Result, RuntimeError};

/// The kernel's resource number for an OCI rlimit type.
pub fn resource(kind: PosixRlimitType) -> libc::__rlimit_resource_t {
    match kind {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// Reject what can never work before any process exists: a soft limit above its hard one.
pub fn validate(limits: &[PosixRlimit]) -> Result<()> {
    for limit in limits {
        if limit.soft() > limit.hard() {
            return Err(RuntimeError::InvalidConfig(format!(
                "rlimit {:?}: soft limit {} is above hard limit {}",
                limit.typ(),
                limit.soft(),
                limit.hard()
            )));
        }
    }
    Ok(())
}

/// Apply the limits to the calling process.
pub fn apply(limits: &[PosixRlimit]) -> Result<()> {
    for limit in limits {
        let value = libc::rlimit {
            rlim_cur: limit.soft(),
            rlim_max: limit.hard(),
        };
        // SAFETY: setrlimit only reads the struct we pass by reference.
        if unsafe { libc::setrlimit(resource(limit.typ()), &value) } != 0 {
            let err = std::io::Error::last_os_error();
            let hint = if err.raw_os_error() == Some(libc::EPERM) {
                " (raising a hard limit needs CAP_SYS_RESOURCE)"
            } else {
                ""
            };
            return Err(RuntimeError::Init(format!(
                "set rlimit {:?} to {}:{}: {err}{hint}",
                limit.typ(),
                limit.soft(),
                limit.hard()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::PosixRlimitBuilder;

    #[test]
    fn soft_above_hard_is_rejected() {
        let bad = PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(10u64)
            .hard(5u64)
            .build()
            .unwrap();
        let err = validate(&[bad]).unwrap_err().to_string();
        assert!(err.contains("soft limit 10 is above hard limit 5"), "{err}");
    }

    #[test]
    fn types_map_to_kernel_resources() {
        assert_eq!(resource(PosixRlimitType::RlimitNofile), libc::RLIMIT_NOFILE);
        assert_eq!(resource(PosixRlimitType::RlimitCore), libc::RLIMIT_CORE);
    }
}
