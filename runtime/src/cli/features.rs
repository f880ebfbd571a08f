//! `berth-runtime features`: what this runtime supports, as the runtime spec's
//! features.md defines it. Truthful: what is refused (seccomp notify, checkpoints,
//! SELinux, idmapped mounts) says so. `apparmor.enabled` says the runtime applies
//! profiles (as runc's does), not that this host has AppArmor.

use serde_json::json;

use crate::error::Result;

/// Every mount option `MountOptions::parse` understands.
const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "remount",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "unbindable",
];

/// The features document.
pub fn document() -> serde_json::Value {
    let capabilities: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    let mut capabilities = capabilities;
    capabilities.sort();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": capabilities,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": cfg!(target_arch = "x86_64"),
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
            },
            "apparmor": {"enabled": true},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}},
        },
        "annotations": {
            "io.berth.runtime.version": env!("CARGO_PKG_VERSION"),
            "io.berth.runtime.checkpoint.enabled": "false",
        },
    })
}

pub(super) fn run() -> Result<()> {
    super::output::emit_line(serde_json::to_string_pretty(&document()).unwrap_or_default());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_truthful() {
        let doc = document();
        let actions = doc["linux"]["seccomp"]["actions"].as_array().unwrap();
        assert!(
            !actions.iter().any(|a| a == "SCMP_ACT_NOTIFY"),
            "notify is refused, so not listed"
        );
        assert_eq!(
            doc["annotations"]["io.berth.runtime.checkpoint.enabled"],
            "false"
        );
        for option in MOUNT_OPTIONS {
            let parsed = crate::rootfs::mount_options::MountOptions::parse(&[option.to_string()]);
            assert!(
                parsed.data.is_empty(),
                "{option} is listed but not understood"
            );
        }
        assert!(doc["linux"]["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "CAP_SYS_ADMIN"));
    }
}
