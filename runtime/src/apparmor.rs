//! `process.apparmorProfile`, applied as runc applies it: the process asks the kernel to
//! put it under the profile at its next exec (`exec PROFILE` written to its own
//! `attr/apparmor/exec`, or `attr/exec` on kernels older than 5.8). On a host where AppArmor
//! is not enabled the config is refused, naming the reason, rather than run unconfined.

use std::path::Path;

use crate::error::{Result, RuntimeError};

/// What the host offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    /// AppArmor is enabled (securityfs shows it and the module says `Y`), as runc decides.
    pub enabled: bool,
    /// The per-LSM `attr/apparmor/` directory exists (Linux 5.8 and later).
    pub per_lsm_attr: bool,
}

impl Host {
    /// Probe this host; done only for configs that name a profile.
    pub fn probe() -> Self {
        let enabled = Path::new("/sys/kernel/security/apparmor").exists()
            && std::fs::read("/sys/module/apparmor/parameters/enabled")
                .is_ok_and(|v| v.first() == Some(&b'Y'));
        Self {
            enabled,
            per_lsm_attr: Path::new("/proc/self/attr/apparmor").is_dir(),
        }
    }
}

/// The write that puts the process under its profile at exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The attribute file of the calling thread.
    pub attr: &'static str,
    /// What is written to it.
    pub value: String,
    /// The profile, for messages.
    pub profile: String,
}

/// Decide what a process's profile needs: nothing, a change at exec, or a refusal.
pub fn plan(profile: Option<&str>, host: Host) -> Result<Option<Change>> {
    let Some(profile) = profile.filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    if !host.enabled {
        // runc's words for a config it cannot honour, then why.
        return Err(RuntimeError::InvalidConfig(format!(
            "apparmor: config provided but apparmor not supported: process.apparmorProfile \
             is {profile:?} and AppArmor is not enabled on this host"
        )));
    }
    Ok(Some(Change {
        attr: if host.per_lsm_attr {
            "/proc/thread-self/attr/apparmor/exec"
        } else {
            "/proc/thread-self/attr/exec"
        },
        value: format!("exec {profile}"),
        profile: profile.to_string(),
    }))
}

/// The plan for a process on this host (probing the host only when a profile is named).
pub fn plan_here(profile: Option<&str>) -> Result<Option<Change>> {
    match profile {
        Some(p) if !p.is_empty() => plan(Some(p), Host::probe()),
        _ => Ok(None),
    }
}

/// Make the change; called in the container, just before the last steps before exec.
pub fn apply(change: &Change) -> Result<()> {
    std::fs::write(change.attr, &change.value).map_err(|e| {
        RuntimeError::Init(format!(
            "apparmor failed to apply profile {:?}: write {}: {e}",
            change.profile, change.attr
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENABLED: Host = Host {
        enabled: true,
        per_lsm_attr: true,
    };

    #[test]
    fn no_profile_needs_nothing_anywhere() {
        for enabled in [false, true] {
            let host = Host {
                enabled,
                per_lsm_attr: false,
            };
            assert_eq!(plan(None, host).unwrap(), None);
            assert_eq!(plan(Some(""), host).unwrap(), None);
        }
    }

    #[test]
    fn a_profile_on_a_host_without_apparmor_is_refused_naming_why() {
        let host = Host {
            enabled: false,
            per_lsm_attr: false,
        };
        let err = plan(Some("docker-default"), host).unwrap_err().to_string();
        assert!(
            err.contains("apparmor not supported")
                && err.contains("\"docker-default\"")
                && err.contains("AppArmor is not enabled on this host"),
            "{err}"
        );
        // "unconfined" is a profile name like any other to the kernel: runc refuses it too.
        assert!(plan(Some("unconfined"), host).is_err());
    }

    #[test]
    fn a_profile_is_changed_to_at_exec_through_the_right_attribute() {
        let change = plan(Some("docker-default"), ENABLED).unwrap().unwrap();
        assert_eq!(change.attr, "/proc/thread-self/attr/apparmor/exec");
        assert_eq!(change.value, "exec docker-default");
        let old_kernel = Host {
            enabled: true,
            per_lsm_attr: false,
        };
        let change = plan(Some("p"), old_kernel).unwrap().unwrap();
        assert_eq!(change.attr, "/proc/thread-self/attr/exec");
        assert_eq!(change.value, "exec p");
    }

    #[test]
    fn this_host_is_probed_as_runc_probes_it() {
        let host = Host::probe();
        let module = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .map(|v| v.starts_with('Y'))
            .unwrap_or(false);
        assert_eq!(
            host.enabled,
            module && Path::new("/sys/kernel/security/apparmor").exists()
        );
    }
}
