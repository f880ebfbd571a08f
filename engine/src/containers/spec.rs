//! The OCI runtime spec of a container, as dockerd makes it: Docker's default
//! capabilities, masked and read-only /proc paths, devices, /dev/shm, the bind-mounted
//! /etc/hosts, /etc/hostname and /etc/resolv.conf, and Docker's default seccomp profile
//! (`profiles/seccomp-default.json`, in moby's format, translated here to OCI's).

use serde_json::{json, Value};
use std::path::Path;

/// Docker's default seccomp profile, moby's `profiles/seccomp/default.json` format.
pub const DEFAULT_SECCOMP: &str = include_str!("../../profiles/seccomp-default.json");

/// The capabilities Docker grants by default.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

const CAP_NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capabilities in this process's bounding set (what `--privileged` can grant).
pub fn host_caps() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    CAP_NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| bnd & (1u64 << i) != 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

/// `NET_ADMIN`, `cap_net_admin` or `CAP_NET_ADMIN` → `CAP_NET_ADMIN`.
pub fn normalize_cap(c: &str) -> String {
    let u = c.to_ascii_uppercase();
    if u.starts_with("CAP_") {
        u
    } else {
        format!("CAP_{u}")
    }
}

/// The capability set from the defaults (or all the host's when privileged) with
/// CapAdd and CapDrop applied ("ALL" allowed in both). Unknown names are an error.
pub fn capabilities(
    privileged: bool,
    add: &[String],
    drop: &[String],
) -> Result<Vec<String>, String> {
    let host = host_caps();
    if privileged {
        return Ok(host);
    }
    for c in add.iter().chain(drop) {
        let n = normalize_cap(c);
        if n != "CAP_ALL" && !CAP_NAMES.contains(&n.as_str()) {
            return Err(format!("invalid capability: {c}"));
        }
    }
    let mut caps: Vec<String> = if drop.iter().any(|c| normalize_cap(c) == "CAP_ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drop.iter().any(|d| &normalize_cap(d) == c))
            .collect()
    };
    for a in add {
        let n = normalize_cap(a);
        if n == "CAP_ALL" {
            caps = host.clone();
        } else if !caps.contains(&n) {
            caps.push(n);
        }
    }
    Ok(caps)
}

fn arch_names() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "aarch64" => ("arm64", "SCMP_ARCH_AARCH64"),
        _ => ("amd64", "SCMP_ARCH_X86_64"),
    }
}

/// Translates a profile in moby's format (with `archMap`, `includes` and `excludes` by
/// capability and architecture) to an OCI `linux.seccomp` object for `caps`.
pub fn seccomp_for(profile: &Value, caps: &[String]) -> Value {
    let (arch, scmp_arch) = arch_names();
    let mut architectures = vec![json!(scmp_arch)];
    if let Some(m) = profile["archMap"].as_array() {
        for a in m {
            if a["architecture"] == scmp_arch {
                if let Some(subs) = a["subArchitectures"].as_array() {
                    architectures.extend(subs.iter().cloned());
                }
            }
        }
    }
    let has = |list: &Value, want: &dyn Fn(&str) -> bool| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|v| v.as_str().is_some_and(want)))
    };
    let mut syscalls = Vec::new();
    for s in profile["syscalls"].as_array().into_iter().flatten() {
        let inc = &s["includes"];
        let exc = &s["excludes"];
        if let Some(c) = inc["caps"].as_array() {
            if !c
                .iter()
                .all(|c| caps.iter().any(|h| Some(h.as_str()) == c.as_str()))
            {
                continue;
            }
        }
        if inc["arches"].is_array() && !has(&inc["arches"], &|a| a == arch) {
            continue;
        }
        if has(&exc["caps"], &|c| caps.iter().any(|h| h == c)) {
            continue;
        }
        if has(&exc["arches"], &|a| a == arch) {
            continue;
        }
        let mut rule = json!({ "names": s["names"], "action": s["action"] });
        if let Some(args) = s.get("args").filter(|a| a.is_array()) {
            rule["args"] = args.clone();
        }
        if let Some(e) = s.get("errnoRet").filter(|e| e.is_u64()) {
            rule["errnoRet"] = e.clone();
        }
        syscalls.push(rule);
    }
    let mut out = json!({
        "defaultAction": profile["defaultAction"],
        "architectures": architectures,
        "syscalls": syscalls,
    });
    if let Some(e) = profile.get("defaultErrnoRet").filter(|e| e.is_u64()) {
        out["defaultErrnoRet"] = e.clone();
    }
    out
}

/// What a spec is made from.
pub struct SpecInput<'a> {
    /// argv.
    pub args: Vec<String>,
    /// Environment, `K=V`.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// uid, gid, additional gids.
    pub user: (u32, u32, Vec<u32>),
    /// Hostname.
    pub hostname: String,
    /// With a terminal.
    pub tty: bool,
    /// The container's HostConfig.
    pub host_config: &'a Value,
    /// The network namespace to join (made by berthd, or another container's); None:
    /// a new one (or the host's with NetworkMode host).
    pub netns: Option<std::path::PathBuf>,
    /// The container's directory (hosts, hostname, resolv.conf live there).
    pub dir: &'a Path,
    /// Container ID (for the cgroup path).
    pub id: &'a str,
    /// berthd's cgroup parent, for a container whose HostConfig names none.
    pub cgroup_parent: &'a str,
    /// Extra mounts (volumes, binds), OCI objects.
    pub mounts: Vec<Value>,
}

/// Builds the OCI spec.
pub fn build(input: &SpecInput<'_>) -> Result<Value, String> {
    let hc = input.host_config;
    let privileged = hc["Privileged"].as_bool().unwrap_or(false);
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let caps = capabilities(privileged, &strs(&hc["CapAdd"]), &strs(&hc["CapDrop"]))?;
    let net = hc["NetworkMode"].as_str().unwrap_or("");
    let host_net = net == "host";
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match &input.netns {
        Some(p) => namespaces.push(json!({"type": "network", "path": p})),
        None if !host_net => namespaces.push(json!({"type": "network"})),
        None => {}
    }
    let shm_size = hc["ShmSize"]
        .as_u64()
        .filter(|s| *s > 0)
        .unwrap_or(64 << 20);
    let sys_opts = if privileged {
        json!(["nosuid", "noexec", "nodev"])
    } else {
        json!(["nosuid", "noexec", "nodev", "ro"])
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm_size}")]}),
    ];
    for (dest, file) in [
        ("/etc/resolv.conf", "resolv.conf"),
        ("/etc/hostname", "hostname"),
        ("/etc/hosts", "hosts"),
    ] {
        mounts.push(json!({
            "destination": dest, "type": "bind",
            "source": input.dir.join(file).display().to_string(),
            "options": ["rbind", "rprivate"],
        }));
    }
    mounts.extend(input.mounts.iter().cloned());
    let mut resources = json!({
        "devices": if privileged {
            json!([{"allow": true, "access": "rwm"}])
        } else {
            json!([
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "access": "m"},
                {"allow": true, "type": "b", "access": "m"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
                {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
                {"allow": true, "type": "c", "major": 136, "access": "rwm"},
                {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
                {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
            ])
        },
    });
    if let Some(m) = hc["Memory"].as_i64().filter(|m| *m > 0) {
        let swap = hc["MemorySwap"]
            .as_i64()
            .filter(|s| *s != 0)
            .unwrap_or(m * 2);
        resources["memory"] = json!({"limit": m, "swap": swap});
    }
    if let Some(n) = hc["NanoCpus"].as_i64().filter(|n| *n > 0) {
        resources["cpu"] = json!({"period": 100_000u64, "quota": n / 10_000});
    }
    if let Some(s) = hc["CpuShares"].as_u64().filter(|s| *s > 0) {
        resources["cpu"]["shares"] = json!(s);
    }
    if let Some(c) = hc["CpusetCpus"].as_str().filter(|c| !c.is_empty()) {
        resources["cpu"]["cpus"] = json!(c);
    }
    if let Some(p) = hc["PidsLimit"].as_i64().filter(|p| *p != 0) {
        resources["pids"] = json!({"limit": p});
    }
    let no_new_privs = strs(&hc["SecurityOpt"]).iter().any(|o| {
        o == "no-new-privileges" || o == "no-new-privileges:true" || o == "no-new-privileges=true"
    });
    let parent = match hc["CgroupParent"].as_str().filter(|p| !p.is_empty()) {
        Some(p) => crate::config::parse_cgroup_parent(p)?,
        None => input.cgroup_parent.to_string(),
    };
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": format!("{}/{}", parent.trim_end_matches('/'), input.id),
    });
    if !privileged {
        linux["maskedPaths"] = json!(MASKED);
        linux["readonlyPaths"] = json!(READONLY);
        let mut seccomp = Some(DEFAULT_SECCOMP.to_string());
        for o in strs(&hc["SecurityOpt"]) {
            if let Some(p) = o
                .strip_prefix("seccomp=")
                .or_else(|| o.strip_prefix("seccomp:"))
            {
                if p == "unconfined" {
                    seccomp = None;
                } else {
                    // The CLI sends a profile file's content, not its path.
                    seccomp = Some(p.to_string());
                }
            }
        }
        if let Some(text) = seccomp {
            let profile: Value = serde_json::from_str(&text)
                .map_err(|e| format!("Decoding seccomp profile failed: {e}"))?;
            linux["seccomp"] = seccomp_for(&profile, &caps);
        }
    }
    let mut env = input.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.insert(1, format!("HOSTNAME={}", input.hostname));
    }
    if input.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let rlimits: Vec<Value> = hc["Ulimits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| {
            let name = u["Name"].as_str()?;
            Some(json!({
                "type": format!("RLIMIT_{}", name.to_ascii_uppercase()),
                "soft": u["Soft"].as_u64()?,
                "hard": u["Hard"].as_u64()?,
            }))
        })
        .collect();
    let (uid, gid, ref gids) = input.user;
    Ok(json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": input.tty,
            "user": {"uid": uid, "gid": gid, "additionalGids": gids},
            "args": input.args,
            "env": env,
            "cwd": input.cwd,
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps,
            },
            "noNewPrivileges": no_new_privs,
            "rlimits": rlimits,
        },
        "root": {"path": "rootfs", "readonly": hc["ReadonlyRootfs"].as_bool().unwrap_or(false)},
        "hostname": input.hostname,
        "mounts": mounts,
        "linux": linux,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_translates() {
        let p: Value = serde_json::from_str(DEFAULT_SECCOMP).unwrap();
        let caps: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
        let s = seccomp_for(&p, &caps);
        assert_eq!(s["defaultAction"], "SCMP_ACT_ERRNO");
        let names: Vec<&str> = s["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r["names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap())
            })
            .collect();
        assert!(names.contains(&"read"));
        // unshare and mount need CAP_SYS_ADMIN, which the default set lacks.
        assert!(!names.contains(&"unshare"));
        assert!(!names.contains(&"mount"));
        let caps = vec!["CAP_SYS_ADMIN".to_string()];
        let s = seccomp_for(&p, &caps);
        assert!(s.to_string().contains("\"unshare\""));
    }

    #[test]
    fn cap_add_drop() {
        let c = capabilities(false, &["NET_ADMIN".into()], &["chown".into()]).unwrap();
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_CHOWN".to_string()));
        let c = capabilities(false, &[], &["ALL".into()]).unwrap();
        assert!(c.is_empty());
        assert!(capabilities(false, &["BOGUS".into()], &[]).is_err());
    }
}
