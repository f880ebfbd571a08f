//! The OCI runtime spec of a container, as dockerd makes it, built with oci-spec's
//! builders: Docker's default capabilities, masked and read-only /proc paths, devices,
//! /dev/shm, the bind-mounted /etc/hosts, /etc/hostname and /etc/resolv.conf, namespaced
//! sysctls, resources, and Docker's default seccomp profile
//! (`profiles/seccomp-default.json`, in moby's format, translated here to OCI's).

use super::users::User;
use berth_api::container::HostConfig;
use oci_spec::runtime::{
    Arch, Capabilities, Capability, LinuxBlockIoBuilder, LinuxBuilder, LinuxCapabilitiesBuilder,
    LinuxCpuBuilder, LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder,
    LinuxDeviceType, LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder, LinuxSeccomp, LinuxSeccompAction,
    LinuxSeccompArg, LinuxSeccompBuilder, LinuxSyscallBuilder, LinuxThrottleDevice,
    LinuxThrottleDeviceBuilder, LinuxWeightDevice, LinuxWeightDeviceBuilder, Mount, MountBuilder,
    PosixRlimitBuilder, PosixRlimitType, Process, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// A spec that cannot be built from a container's configuration.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// An unknown capability in CapAdd or CapDrop.
    #[error("invalid capability: {0}")]
    Capability(String),
    /// A seccomp profile that is not moby's format.
    #[error("Decoding seccomp profile failed: {0}")]
    Seccomp(String),
    /// A bad cgroup parent.
    #[error("{0}")]
    CgroupParent(String),
    /// A sysctl the container's namespaces do not isolate.
    #[error("{0}")]
    Sysctl(String),
    /// A ulimit with an unknown name.
    #[error("invalid ulimit: {0}")]
    Ulimit(String),
    /// `--init` without an init binary on berthd's PATH (dockerd's words).
    #[error("exec: \"docker-init\": executable file not found in $PATH")]
    NoInit,
    /// A `--device` that cannot be added (dockerd's words).
    #[error("error gathering device information while adding custom device {path:?}: {why}")]
    Device {
        /// The host path.
        path: String,
        /// Why.
        why: String,
    },
    /// A `--blkio-weight-device` or `--device-*-bps/iops` path that is not a device
    /// (dockerd stats it and fails the same way).
    #[error("{path}: {why}")]
    BlkioDevice {
        /// The host path.
        path: String,
        /// Why.
        why: String,
    },
    /// oci-spec refused a value.
    #[error("building the OCI spec: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
}

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

/// The capabilities in this process's bounding set (what `--privileged` can grant).
pub fn host_caps() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    berth_api::validate::CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(i, _)| bnd & (1u64 << i) != 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

use berth_api::validate::normalize_capability as normalize_cap;

/// The capability set from the defaults (or all the host's when privileged) with
/// CapAdd and CapDrop applied ("ALL" allowed in both). Unknown names are an error.
pub fn capabilities(
    privileged: bool,
    add: &[String],
    drop: &[String],
) -> Result<Vec<String>, SpecError> {
    let host = host_caps();
    if privileged {
        return Ok(host);
    }
    for c in add.iter().chain(drop) {
        let n = normalize_cap(c);
        if n != "ALL" && !berth_api::validate::CAPABILITIES.contains(&n.as_str()) {
            return Err(SpecError::Capability(c.clone()));
        }
    }
    let mut caps: Vec<String> = if drop.iter().any(|c| normalize_cap(c) == "ALL") {
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
        if n == "ALL" {
            caps = host.clone();
        } else if !caps.contains(&n) {
            caps.push(n);
        }
    }
    Ok(caps)
}

fn arch_names() -> (&'static str, Arch) {
    match std::env::consts::ARCH {
        "aarch64" => ("arm64", Arch::ScmpArchAarch64),
        _ => ("amd64", Arch::ScmpArchX86_64),
    }
}

/// A seccomp profile in moby's format.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MobyProfile {
    default_action: LinuxSeccompAction,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    arch_map: Vec<MobyArch>,
    #[serde(default)]
    syscalls: Vec<MobySyscall>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MobyArch {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Vec<Arch>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MobySyscall {
    #[serde(default)]
    names: Vec<String>,
    action: LinuxSeccompAction,
    #[serde(default)]
    args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    includes: MobyFilter,
    #[serde(default)]
    excludes: MobyFilter,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MobyFilter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
}

/// Translates a profile in moby's format (with `archMap`, `includes` and `excludes` by
/// capability and architecture) to an OCI `linux.seccomp` for `caps`.
pub fn seccomp_for(profile: &str, caps: &[String]) -> Result<LinuxSeccomp, SpecError> {
    let p: MobyProfile =
        serde_json::from_str(profile).map_err(|e| SpecError::Seccomp(e.to_string()))?;
    let (arch, scmp_arch) = arch_names();
    let mut architectures = vec![scmp_arch];
    for a in p.arch_map.iter().filter(|a| a.architecture == scmp_arch) {
        architectures.extend(a.sub_architectures.iter().copied());
    }
    let has_cap = |c: &String| caps.iter().any(|h| h == c);
    let mut syscalls = Vec::new();
    for s in p.syscalls {
        if let Some(need) = &s.includes.caps {
            if !need.iter().all(has_cap) {
                continue;
            }
        }
        if let Some(arches) = &s.includes.arches {
            if !arches.iter().any(|a| a == arch) {
                continue;
            }
        }
        if s.excludes
            .caps
            .as_ref()
            .is_some_and(|c| c.iter().any(has_cap))
        {
            continue;
        }
        if s.excludes
            .arches
            .as_ref()
            .is_some_and(|a| a.iter().any(|a| a == arch))
        {
            continue;
        }
        let mut rule = LinuxSyscallBuilder::default()
            .names(s.names)
            .action(s.action);
        if let Some(args) = s.args.filter(|a| !a.is_empty()) {
            rule = rule.args(args);
        }
        if let Some(e) = s.errno_ret {
            rule = rule.errno_ret(e);
        }
        syscalls.push(rule.build()?);
    }
    let mut out = LinuxSeccompBuilder::default()
        .default_action(p.default_action)
        .architectures(architectures)
        .syscalls(syscalls);
    if let Some(e) = p.default_errno_ret {
        out = out.default_errno_ret(e);
    }
    Ok(out.build()?)
}

/// What a spec is made from.
pub struct SpecInput<'a> {
    /// argv.
    pub args: Vec<String>,
    /// Environment, `K=V`.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// Who it runs as.
    pub user: User,
    /// Hostname.
    pub hostname: String,
    /// With a terminal.
    pub tty: bool,
    /// The container's HostConfig.
    pub host_config: &'a HostConfig,
    /// The container's directory (hosts, hostname, resolv.conf live there).
    pub dir: &'a Path,
    /// Container ID (for the cgroup path).
    pub id: &'a str,
    /// berthd's cgroup parent, for a container whose HostConfig names none.
    pub cgroup_parent: &'a str,
    /// Extra mounts (volumes, binds, tmpfs).
    pub mounts: Vec<Mount>,
    /// The network namespace to join (berthd's for a bridged container, or another
    /// container's); None: a new one the runtime makes (the host's with `host`).
    pub netns: Option<std::path::PathBuf>,
    /// Another container's namespaces it joins, and the shared memory it binds.
    pub joins: Joins,
}

/// What a container shares with another (`--pid container:NAME`, `--ipc
/// container:NAME`) or offers (`--ipc shareable`), as dockerd's spec gives it: the
/// namespaces of the other's init by path, and a host-side tmpfs at /dev/shm.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Joins {
    /// The PID namespace to join (`/proc/PID/ns/pid`).
    pub pid: Option<std::path::PathBuf>,
    /// The IPC namespace to join (`/proc/PID/ns/ipc`).
    pub ipc: Option<std::path::PathBuf>,
    /// The host directory bound at /dev/shm (a shareable container's tmpfs, its own or
    /// the one whose IPC it joins); None: a tmpfs of its own.
    pub shm: Option<std::path::PathBuf>,
}

fn cap_set(caps: &[String]) -> Capabilities {
    caps.iter()
        .filter_map(|c| serde_json::from_value::<Capability>(Value::String(c.clone())).ok())
        .collect()
}

/// The kernel file systems every container gets, as runc's defaults: /proc, /dev with
/// its ptys and message queues, and /sys and /sys/fs/cgroup with the caller's options
/// (dockerd's for berthd's containers, containerd's for the CRI's).
pub(crate) fn kernel_mounts(sys: &[&str], cgroup: &[&str]) -> Result<Vec<Mount>, SpecError> {
    Ok(vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount("/sys", "sysfs", "sysfs", sys)?,
        mount("/sys/fs/cgroup", "cgroup", "cgroup", cgroup)?,
    ])
}

pub(crate) fn mount(
    dst: &str,
    kind: &str,
    source: &str,
    options: &[&str],
) -> Result<Mount, SpecError> {
    Ok(MountBuilder::default()
        .destination(dst)
        .typ(kind)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()?)
}

fn device(
    kind: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
) -> Result<LinuxDeviceCgroup, SpecError> {
    let mut d = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .access("rwm");
    if let Some(k) = kind {
        d = d.typ(k);
    }
    if let Some(m) = major {
        d = d.major(m);
    }
    if let Some(m) = minor {
        d = d.minor(m);
    }
    Ok(d.build()?)
}

/// The cgroup resources of a HostConfig (with its devices rules unless `devices` is
/// false: an update leaves them as they are).
pub fn resources(hc: &HostConfig, devices: bool) -> Result<LinuxResources, SpecError> {
    let privileged = hc.privileged;
    let res = &hc.resources;
    let mut r = LinuxResourcesBuilder::default();
    if devices {
        let rules = if privileged {
            vec![device(None, None, None)?]
        } else {
            use LinuxDeviceType::C;
            let mut v = vec![
                LinuxDeviceCgroupBuilder::default()
                    .allow(false)
                    .access("rwm")
                    .build()?,
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(C)
                    .access("m")
                    .build()?,
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(LinuxDeviceType::B)
                    .access("m")
                    .build()?,
            ];
            for (major, minor) in [
                (1, Some(3)),
                (1, Some(8)),
                (1, Some(7)),
                (5, Some(0)),
                (1, Some(5)),
                (1, Some(9)),
                (136, None),
                (5, Some(2)),
                (10, Some(200)),
            ] {
                v.push(device(Some(C), Some(major), minor)?);
            }
            v
        };
        r = r.devices(rules);
    }
    // Every limit the request sets, as dockerd's getMemoryResources/getCPUResources/
    // getBlkio* put them in the spec (what the kernel lacks was already cleared with a
    // warning at create, see `facts`).
    let mut m = LinuxMemoryBuilder::default();
    let mut any_memory = false;
    if res.memory > 0 {
        m = m.limit(res.memory);
        // As dockerd: a swap limit only when positive (the default, twice memory,
        // wraps below zero for a memory limit near 2^63; -1 is unlimited).
        if let Some(swap) = berth_api::validate::swap_limit(res) {
            m = m.swap(swap);
        }
        any_memory = true;
    }
    if res.memory_reservation > 0 {
        m = m.reservation(res.memory_reservation);
        any_memory = true;
    }
    // -1 is the CLI's "not given".
    if let Some(swappiness) = res.memory_swappiness.filter(|s| (0..=100).contains(s)) {
        m = m.swappiness(swappiness as u64);
        any_memory = true;
    }
    // Only a request to disable it is written: the kernel's default is enabled.
    if res.oom_kill_disable == Some(true) {
        m = m.disable_oom_killer(true);
        any_memory = true;
    }
    if res.kernel_memory > 0 {
        m = m.kernel(res.kernel_memory);
        any_memory = true;
    }
    if res.kernel_memory_tcp > 0 {
        m = m.kernel_tcp(res.kernel_memory_tcp);
        any_memory = true;
    }
    if any_memory {
        r = r.memory(m.build()?);
    }
    if let Some(io) = block_io(res)? {
        r = r.block_io(io);
    }
    let mut cpu = LinuxCpuBuilder::default();
    let mut any_cpu = false;
    if res.nano_cpus > 0 {
        cpu = cpu.period(100_000u64).quota(res.nano_cpus / 10_000);
        any_cpu = true;
    }
    if res.cpu_shares > 0 {
        cpu = cpu.shares(res.cpu_shares as u64);
        any_cpu = true;
    }
    if !res.cpuset_cpus.is_empty() {
        cpu = cpu.cpus(res.cpuset_cpus.as_str());
        any_cpu = true;
    }
    if !res.cpuset_mems.is_empty() {
        cpu = cpu.mems(res.cpuset_mems.as_str());
        any_cpu = true;
    }
    // --cpu-period and --cpu-quota (berth-api refuses them together with --cpus).
    if res.cpu_period > 0 {
        cpu = cpu.period(res.cpu_period as u64);
        any_cpu = true;
    }
    if res.cpu_quota != 0 {
        cpu = cpu.quota(res.cpu_quota);
        any_cpu = true;
    }
    if res.cpu_realtime_period > 0 {
        cpu = cpu.realtime_period(res.cpu_realtime_period as u64);
        any_cpu = true;
    }
    if res.cpu_realtime_runtime != 0 {
        cpu = cpu.realtime_runtime(res.cpu_realtime_runtime);
        any_cpu = true;
    }
    if any_cpu {
        r = r.cpu(cpu.build()?);
    }
    if let Some(p) = res.pids_limit.filter(|p| *p != 0) {
        r = r.pids(LinuxPidsBuilder::default().limit(p).build()?);
    }
    Ok(r.build()?)
}

/// The major and minor numbers of the device at the host path `path`.
fn device_numbers(path: &str) -> Result<(i64, i64), SpecError> {
    let why = |why: String| SpecError::BlkioDevice {
        path: path.to_string(),
        why,
    };
    let st = nix::sys::stat::stat(path).map_err(|e| why(e.desc().to_lowercase()))?;
    let kind = st.st_mode & libc::S_IFMT;
    if kind != libc::S_IFBLK && kind != libc::S_IFCHR {
        return Err(why("not a device node".into()));
    }
    Ok((
        libc::major(st.st_rdev) as i64,
        libc::minor(st.st_rdev) as i64,
    ))
}

/// `--blkio-weight`, `--blkio-weight-device` and the `--device-{read,write}-{bps,iops}`
/// throttles, with each device path turned into its numbers (as dockerd stats them).
fn block_io(
    res: &berth_api::container::Resources,
) -> Result<Option<oci_spec::runtime::LinuxBlockIo>, SpecError> {
    let throttles = |list: &Option<Vec<berth_api::container::ThrottleDevice>>| {
        list.iter()
            .flatten()
            .map(|t| {
                let (major, minor) = device_numbers(&t.path)?;
                Ok(LinuxThrottleDeviceBuilder::default()
                    .major(major)
                    .minor(minor)
                    .rate(t.rate)
                    .build()?)
            })
            .collect::<Result<Vec<LinuxThrottleDevice>, SpecError>>()
    };
    let weights = res
        .blkio_weight_device
        .iter()
        .flatten()
        .map(|w| {
            let (major, minor) = device_numbers(&w.path)?;
            Ok(LinuxWeightDeviceBuilder::default()
                .major(major)
                .minor(minor)
                .weight(w.weight)
                .build()?)
        })
        .collect::<Result<Vec<LinuxWeightDevice>, SpecError>>()?;
    let read_bps = throttles(&res.blkio_device_read_bps)?;
    let write_bps = throttles(&res.blkio_device_write_bps)?;
    let read_iops = throttles(&res.blkio_device_read_iops)?;
    let write_iops = throttles(&res.blkio_device_write_iops)?;
    if res.blkio_weight == 0
        && weights.is_empty()
        && read_bps.is_empty()
        && write_bps.is_empty()
        && read_iops.is_empty()
        && write_iops.is_empty()
    {
        return Ok(None);
    }
    let mut b = LinuxBlockIoBuilder::default();
    if res.blkio_weight > 0 {
        b = b.weight(res.blkio_weight);
    }
    if !weights.is_empty() {
        b = b.weight_device(weights);
    }
    if !read_bps.is_empty() {
        b = b.throttle_read_bps_device(read_bps);
    }
    if !write_bps.is_empty() {
        b = b.throttle_write_bps_device(write_bps);
    }
    if !read_iops.is_empty() {
        b = b.throttle_read_iops_device(read_iops);
    }
    if !write_iops.is_empty() {
        b = b.throttle_write_iops_device(write_iops);
    }
    Ok(Some(b.build()?))
}

/// The environment of a process: PATH and HOSTNAME when missing, TERM with a terminal,
/// and HOME from the user's passwd entry when neither image nor user set one (runc
/// reads passwd for it; berth-runtime does not, so the engine does).
pub fn environment(env: &[String], hostname: &str, tty: bool, home: &str) -> Vec<String> {
    let mut env = env.to_vec();
    let has = |env: &[String], k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
    if !has(&env, "PATH") {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    if !has(&env, "HOSTNAME") {
        env.insert(1.min(env.len()), format!("HOSTNAME={hostname}"));
    }
    if tty && !has(&env, "TERM") {
        env.push("TERM=xterm".into());
    }
    if !has(&env, "HOME") {
        env.push(format!("HOME={home}"));
    }
    env
}

/// The process part of a spec.
pub fn process(
    input: &SpecInput<'_>,
    caps: &[String],
    no_new_privileges: bool,
) -> Result<Process, SpecError> {
    let hc = input.host_config;
    let caps = cap_set(caps);
    let mut rlimits = Vec::new();
    for u in hc.resources.ulimits.iter().flatten() {
        let name = u.name.as_str();
        let typ: PosixRlimitType = serde_json::from_value(Value::String(format!(
            "RLIMIT_{}",
            name.to_ascii_uppercase()
        )))
        .map_err(|_| SpecError::Ulimit(name.to_string()))?;
        rlimits.push(
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(u.soft.max(0) as u64)
                .hard(u.hard.max(0) as u64)
                .build()?,
        );
    }
    let user = UserBuilder::default()
        .uid(input.user.uid)
        .gid(input.user.gid)
        .additional_gids(input.user.additional_gids.clone())
        .build()?;
    let mut p = ProcessBuilder::default()
        .terminal(input.tty)
        .user(user)
        .args(input.args.clone())
        .env(environment(
            &input.env,
            &input.hostname,
            input.tty,
            &input.user.home,
        ))
        .cwd(input.cwd.as_str())
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(caps.clone())
                .effective(caps.clone())
                .permitted(caps)
                .inheritable(Capabilities::new())
                .ambient(Capabilities::new())
                .build()?,
        )
        .no_new_privileges(no_new_privileges)
        .rlimits(rlimits);
    if hc.oom_score_adj != 0 {
        p = p.oom_score_adj(hc.oom_score_adj as i32);
    }
    Ok(p.build()?)
}

/// Where the container's init (`--init`) is mounted, as dockerd mounts docker-init.
pub const CONTAINER_INIT_PATH: &str = "/sbin/docker-init";

/// The init binary for `--init`: dockerd's `docker-init` on PATH, else Debian's
/// `tini-static` or `tini` (docker-init is tini; the static build runs in any image).
fn init_binary() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["docker-init", "tini-static", "tini"]
        .iter()
        .find_map(|name| {
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
}

/// The host devices of `--device` (HostConfig.Devices): each a device node in the
/// container with its cgroup rule, as dockerd's `DevicesFromPath` (a directory is not
/// walked here: refused as not a device node).
fn host_devices(hc: &HostConfig) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>), SpecError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut nodes = Vec::new();
    let mut rules = Vec::new();
    for d in hc.resources.devices.iter().flatten() {
        let bad = |why: String| SpecError::Device {
            path: d.path_on_host.clone(),
            why,
        };
        let md = std::fs::metadata(&d.path_on_host).map_err(|e| {
            bad(match e.kind() {
                std::io::ErrorKind::NotFound => "no such file or directory".into(),
                _ => e.to_string(),
            })
        })?;
        let ft = md.file_type();
        let typ = if ft.is_char_device() {
            LinuxDeviceType::C
        } else if ft.is_block_device() {
            LinuxDeviceType::B
        } else {
            return Err(bad("not a device node".into()));
        };
        let (major, minor) = (
            i64::from(libc::major(md.rdev())),
            i64::from(libc::minor(md.rdev())),
        );
        let dst = if d.path_in_container.is_empty() {
            d.path_on_host.as_str()
        } else {
            d.path_in_container.as_str()
        };
        nodes.push(
            LinuxDeviceBuilder::default()
                .path(dst)
                .typ(typ)
                .major(major)
                .minor(minor)
                .file_mode(md.mode() & 0o7777)
                .uid(md.uid())
                .gid(md.gid())
                .build()?,
        );
        let access = if d.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            d.cgroup_permissions.as_str()
        };
        rules.push(
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(typ)
                .major(major)
                .minor(minor)
                .access(access)
                .build()?,
        );
    }
    Ok((nodes, rules))
}

/// The size of a container's /dev/shm: its ShmSize, or dockerd's default.
pub fn shm_size(hc: &HostConfig) -> i64 {
    if hc.shm_size > 0 {
        hc.shm_size
    } else {
        berth_api::validate::DEFAULT_SHM_SIZE
    }
}

/// Builds the OCI spec.
pub fn build(input: &SpecInput<'_>) -> Result<Spec, SpecError> {
    let hc = input.host_config;
    let privileged = hc.privileged;
    let caps = capabilities(
        privileged,
        hc.cap_add.as_deref().unwrap_or_default(),
        hc.cap_drop.as_deref().unwrap_or_default(),
    )?;
    let host_net = hc.network_mode.is_host();
    let mut namespaces = Vec::new();
    // `--pid host`, `--ipc host`, `--uts host`: the host's namespace is kept (no entry);
    // `container:NAME`: the other container's, by path.
    let joins = &input.joins;
    for (t, private, joined) in [
        (LinuxNamespaceType::Pid, !hc.pid_mode.is_host(), &joins.pid),
        (LinuxNamespaceType::Ipc, !hc.ipc_mode.is_host(), &joins.ipc),
        (LinuxNamespaceType::Uts, !hc.uts_mode.is_host(), &None),
        (LinuxNamespaceType::Mount, true, &None),
    ] {
        match joined {
            Some(path) => namespaces.push(
                LinuxNamespaceBuilder::default()
                    .typ(t)
                    .path(path.clone())
                    .build()?,
            ),
            None if private => namespaces.push(LinuxNamespaceBuilder::default().typ(t).build()?),
            None => {}
        }
    }
    match &input.netns {
        Some(path) => namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .path(path.clone())
                .build()?,
        ),
        None if !host_net => namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .build()?,
        ),
        None => {}
    }
    let shm = format!("size={}", shm_size(hc));
    let sys_opts: &[&str] = if privileged {
        &["nosuid", "noexec", "nodev"]
    } else {
        &["nosuid", "noexec", "nodev", "ro"]
    };
    let mut mounts = kernel_mounts(sys_opts, &["ro", "nosuid", "noexec", "nodev"])?;
    let shared_shm = if hc.ipc_mode.is_host() {
        // The host's shared memory, as dockerd gives `--ipc host`.
        Some("/dev/shm".to_string())
    } else {
        joins.shm.as_ref().map(|p| p.display().to_string())
    };
    mounts.push(if let Some(source) = shared_shm {
        mount(
            "/dev/shm",
            "bind",
            &source,
            &["rbind", "nosuid", "noexec", "nodev"],
        )?
    } else {
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm],
        )?
    });
    for (dest, file) in [
        ("/etc/resolv.conf", "resolv.conf"),
        ("/etc/hostname", "hostname"),
        ("/etc/hosts", "hosts"),
    ] {
        let source = input.dir.join(file).display().to_string();
        mounts.push(mount(dest, "bind", &source, &["rbind", "rprivate"])?);
    }
    mounts.extend(input.mounts.iter().cloned());
    let security_opt = hc.security_opt.clone().unwrap_or_default();
    let no_new_privs = security_opt.iter().any(|o| {
        o == "no-new-privileges" || o == "no-new-privileges:true" || o == "no-new-privileges=true"
    });
    let parent = match hc.resources.cgroup_parent.as_str() {
        "" => input.cgroup_parent.to_string(),
        p => crate::config::parse_cgroup_parent(p).map_err(SpecError::CgroupParent)?,
    };
    berth_api::validate::sysctls(&hc.sysctls, berth_api::validate::Namespaces::of(hc))
        .map_err(|e| SpecError::Sysctl(e.to_string()))?;
    let sysctl: HashMap<String, String> = hc.sysctls.clone().into_iter().collect();
    // --device: the nodes, and their rules after the default ones.
    let (device_nodes, device_rules) = host_devices(hc)?;
    let mut res = resources(hc, true)?;
    if !device_rules.is_empty() {
        let mut all = res.devices().clone().unwrap_or_default();
        all.extend(device_rules);
        res.set_devices(Some(all));
    }
    // --init: docker-init (tini) as PID 1, bound read-only, the command after `--`.
    let mut proc = process(input, &caps, no_new_privs)?;
    if hc.init == Some(true) {
        let init = init_binary().ok_or(SpecError::NoInit)?;
        mounts.push(mount(
            CONTAINER_INIT_PATH,
            "bind",
            &init.display().to_string(),
            &["bind", "ro"],
        )?);
        let mut args = vec![CONTAINER_INIT_PATH.to_string(), "--".to_string()];
        args.extend(proc.args().clone().unwrap_or_default());
        proc.set_args(Some(args));
    }
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(res)
        .cgroups_path(format!("{}/{}", parent.trim_end_matches('/'), input.id))
        .sysctl(sysctl)
        .masked_paths(Vec::<String>::new())
        .readonly_paths(Vec::<String>::new());
    if !privileged {
        linux = linux
            .masked_paths(MASKED.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .readonly_paths(READONLY.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let mut seccomp = Some(DEFAULT_SECCOMP.to_string());
        for o in &security_opt {
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
            linux = linux.seccomp(seccomp_for(&text, &caps)?);
        }
    }
    let mut spec = SpecBuilder::default()
        .version("1.0.2")
        .process(proc)
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(hc.readonly_rootfs)
                .build()?,
        )
        .hostname(input.hostname.as_str())
        .mounts(mounts)
        .linux(if device_nodes.is_empty() {
            linux.build()?
        } else {
            linux.devices(device_nodes).build()?
        })
        .build()?;
    if hc.uts_mode.is_host() {
        // runc refuses a hostname without a UTS namespace of the container's own.
        spec.set_hostname(None);
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_profile_translates() {
        let caps: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
        let s = seccomp_for(DEFAULT_SECCOMP, &caps).unwrap();
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(1));
        let names: Vec<&str> = s
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .flat_map(|r| r.names().iter().map(String::as_str))
            .collect();
        assert!(names.contains(&"read"));
        // unshare and mount need CAP_SYS_ADMIN, which the default set lacks.
        assert!(!names.contains(&"unshare"));
        assert!(!names.contains(&"mount"));
        let s = seccomp_for(DEFAULT_SECCOMP, &["CAP_SYS_ADMIN".to_string()]).unwrap();
        assert!(serde_json::to_string(&s).unwrap().contains("\"unshare\""));
        assert!(s.architectures().as_ref().unwrap().len() > 1);
        assert!(matches!(
            seccomp_for("{", &caps),
            Err(SpecError::Seccomp(_))
        ));
    }

    #[test]
    fn cap_add_drop() {
        let c = capabilities(false, &["NET_ADMIN".into()], &["chown".into()]).unwrap();
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_CHOWN".to_string()));
        let c = capabilities(false, &[], &["ALL".into()]).unwrap();
        assert!(c.is_empty());
        assert!(capabilities(false, &["BOGUS".into()], &[]).is_err());
        assert_eq!(cap_set(&["CAP_NET_ADMIN".into()]).len(), 1);
    }

    fn input<'a>(hc: &'a HostConfig, dir: &'a Path) -> SpecInput<'a> {
        SpecInput {
            args: vec!["sh".into()],
            env: vec!["A=1".into()],
            cwd: "/".into(),
            user: User {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![2000],
                home: "/home/u".into(),
            },
            hostname: "h".into(),
            tty: false,
            host_config: hc,
            dir,
            id: "abc",
            cgroup_parent: "/berth",
            mounts: Vec::new(),
            netns: None,
            joins: Joins::default(),
        }
    }

    fn hc(v: Value) -> HostConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn network_namespace_new_joined_or_the_hosts() {
        let net = |hc: &HostConfig, netns: Option<&str>| {
            let dir = Path::new("/c");
            let mut i = input(hc, dir);
            i.netns = netns.map(std::path::PathBuf::from);
            let v = serde_json::to_value(build(&i).unwrap()).unwrap();
            v["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["type"] == "network")
                .cloned()
        };
        let bridged = hc(json!({"NetworkMode": "default"}));
        assert_eq!(
            net(&bridged, Some("/run/berth/network/netns/abc")),
            Some(json!({"type": "network", "path": "/run/berth/network/netns/abc"}))
        );
        assert_eq!(
            net(&hc(json!({"NetworkMode": "none"})), None),
            Some(json!({"type": "network"}))
        );
        assert_eq!(net(&hc(json!({"NetworkMode": "host"})), None), None);
    }

    /// The mount of a spec (as JSON) at `destination`.
    fn mount_at(spec: &Value, destination: &str) -> Value {
        spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == destination)
            .unwrap()
            .clone()
    }

    #[test]
    fn host_pid_ipc_and_uts_keep_the_hosts_namespaces() {
        let of = |v: Value| {
            let hc = hc(v);
            let dir = Path::new("/c");
            serde_json::to_value(build(&input(&hc, dir)).unwrap()).unwrap()
        };
        let kinds = |spec: &Value| -> Vec<String> {
            spec["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["type"].as_str().unwrap().to_string())
                .collect()
        };
        let private = of(json!({"NetworkMode": "none"}));
        assert_eq!(kinds(&private), ["pid", "ipc", "uts", "mount", "network"]);
        assert_eq!(private["hostname"], "h");
        let host = of(
            json!({"NetworkMode": "none", "PidMode": "host", "IpcMode": "host", "UTSMode": "host"}),
        );
        assert_eq!(kinds(&host), ["mount", "network"]);
        assert!(host.get("hostname").is_none(), "{host}");
        let shm = mount_at(&host, "/dev/shm");
        assert_eq!(shm["source"], "/dev/shm");
        assert_eq!(shm["type"], "bind");
    }

    #[test]
    fn joined_pid_and_ipc_namespaces_and_shared_memory_are_the_other_containers() {
        let hc =
            hc(json!({"NetworkMode": "none", "PidMode": "container:a", "IpcMode": "container:a"}));
        let dir = Path::new("/c");
        let mut i = input(&hc, dir);
        i.joins = Joins {
            pid: Some("/proc/42/ns/pid".into()),
            ipc: Some("/proc/42/ns/ipc".into()),
            shm: Some("/data/containers/a/mounts/shm".into()),
        };
        let v = serde_json::to_value(build(&i).unwrap()).unwrap();
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        assert_eq!(ns[0], json!({"type": "pid", "path": "/proc/42/ns/pid"}));
        assert_eq!(ns[1], json!({"type": "ipc", "path": "/proc/42/ns/ipc"}));
        let shm = mount_at(&v, "/dev/shm");
        assert_eq!(
            (shm["type"].as_str(), shm["source"].as_str()),
            (Some("bind"), Some("/data/containers/a/mounts/shm"))
        );
    }

    #[test]
    fn spec_as_dockerd_makes_it() {
        let given = hc(json!({
            "Memory": 64 << 20, "MemorySwap": 128 << 20, "NanoCpus": 1_500_000_000i64, "PidsLimit": 10,
            "CpuRealtimePeriod": 1000, "CpuRealtimeRuntime": 500, "OomScoreAdj": 300,
            "Sysctls": {"net.core.somaxconn": "1024"}, "ShmSize": 1 << 20,
            "Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 20}],
        }));
        let dir = Path::new("/c");
        let s = build(&input(&given, dir)).unwrap();
        let v = serde_json::to_value(&s).unwrap();
        let p = &v["process"];
        assert_eq!(
            p["user"],
            json!({"uid": 1000, "gid": 1000, "additionalGids": [2000]})
        );
        let env: Vec<&str> = p["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        assert!(
            env.contains(&"HOME=/home/u") && env.contains(&"A=1"),
            "{env:?}"
        );
        assert!(env.iter().any(|e| e.starts_with("PATH=")));
        assert_eq!(p["oomScoreAdj"], 300);
        assert_eq!(
            p["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}])
        );
        assert_eq!(p["capabilities"]["inheritable"], json!([]));
        assert_eq!(p["noNewPrivileges"], false);
        let r = &v["linux"]["resources"];
        assert_eq!(r["memory"], json!({"limit": 64 << 20, "swap": 128 << 20}));
        assert_eq!(r["cpu"]["quota"], 150_000);
        assert_eq!(r["cpu"]["realtimePeriod"], 1000);
        assert_eq!(r["cpu"]["realtimeRuntime"], 500);
        assert_eq!(r["pids"]["limit"], 10);
        assert_eq!(v["linux"]["sysctl"]["net.core.somaxconn"], "1024");
        assert_eq!(v["linux"]["cgroupsPath"], "/berth/abc");
        assert!(v["linux"]["seccomp"].is_object());
        assert!(v.to_string().contains("size=1048576"));
        assert_eq!(v["root"], json!({"path": "rootfs", "readonly": false}));
        // A swap limit that wrapped (dockerd's default for a memory limit near 2^63) is
        // not written; a sysctl of the host's: no spec.
        let big = hc(json!({"Memory": i64::MAX, "MemorySwap": -2}));
        let v = serde_json::to_value(build(&input(&big, dir)).unwrap()).unwrap();
        assert_eq!(
            v["linux"]["resources"]["memory"],
            json!({"limit": i64::MAX})
        );
        let host = hc(json!({"NetworkMode": "host", "Sysctls": {"net.ipv4.ip_forward": "1"}}));
        assert_eq!(
            build(&input(&host, dir)).unwrap_err().to_string(),
            "sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace"
        );
        let other = hc(json!({"Sysctls": {"vm.swappiness": "1"}}));
        assert!(matches!(
            build(&input(&other, dir)),
            Err(SpecError::Sysctl(_))
        ));
    }

    #[test]
    fn privileged_has_the_hosts_caps_and_no_masks() {
        let given = hc(json!({"Privileged": true}));
        let s = build(&input(&given, Path::new("/c"))).unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["linux"]["maskedPaths"], json!([]));
        assert!(v["linux"]["seccomp"].is_null());
        assert_eq!(
            v["linux"]["resources"]["devices"],
            json!([{"allow": true, "access": "rwm"}])
        );
    }
}
