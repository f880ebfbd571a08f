//! The checks dockerd makes once a body is decoded, in its order and words: runconfig's
//! decode-time checks (network mode conflicts, isolation, QoS, real-time CPU) and
//! `verifyContainerSettings` (the container config, the host config, and
//! `verifyPlatformContainerResources` / `verifyPlatformContainerSettings` for Linux),
//! then `adaptContainerSettings`' defaults ([`adapt`]). The host's facts (CPU count,
//! which cgroup controllers work, ...) are passed in as [`HostFacts`]: the engine
//! gathers them once; nothing here reads the host.
//!
//! Where dockerd drops a setting the kernel cannot honour it warns and clears it
//! instead of refusing: these functions do the same, returning the warnings (create
//! answers them in `Warnings`).

use crate::container::{Config, HostConfig, Resources, RestartKind, RestartPolicy};
use crate::exec::ExecConfig;
use crate::mount::{self, MountError};
use crate::network::NetworkingConfig;
use crate::signal;
use std::collections::{BTreeMap, BTreeSet};

/// The least memory a limit may be: 6 MiB.
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// /dev/shm's size when none is given: 64 MiB.
pub const DEFAULT_SHM_SIZE: i64 = 64 * 1024 * 1024;

/// What the host can do, as dockerd's `sysinfo` finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// CPUs usable by the daemon.
    pub ncpu: u32,
    /// CPUs in the cpuset (`0-1`).
    pub cpus: String,
    /// Memory nodes (`0`).
    pub mems: String,
    /// Memory limits work.
    pub memory_limit: bool,
    /// Swap limits work.
    pub swap_limit: bool,
    /// Soft limits work.
    pub memory_reservation: bool,
    /// Swappiness can be set (cgroup v1).
    pub memory_swappiness: bool,
    /// Kernel memory limits work (cgroup v1, old kernels).
    pub kernel_memory: bool,
    /// The OOM killer can be disabled (cgroup v1).
    pub oom_kill_disable: bool,
    /// PIDs limits work.
    pub pids_limit: bool,
    /// CFS period and quota work.
    pub cpu_cfs: bool,
    /// CPU shares work.
    pub cpu_shares: bool,
    /// Real-time CPU limits work (cgroup v1 with CONFIG_RT_GROUP_SCHED).
    pub cpu_realtime: bool,
    /// cpusets work.
    pub cpuset: bool,
    /// Block IO weight works.
    pub blkio_weight: bool,
    /// Per-device weights work.
    pub blkio_weight_device: bool,
    /// Read bytes/s limits work.
    pub blkio_read_bps: bool,
    /// Write bytes/s limits work.
    pub blkio_write_bps: bool,
    /// Read IO/s limits work.
    pub blkio_read_iops: bool,
    /// Write IO/s limits work.
    pub blkio_write_iops: bool,
    /// Cgroup namespaces work.
    pub cgroup_namespaces: bool,
    /// The host runs cgroup v2 only (private cgroup namespaces by default).
    pub cgroup_v2: bool,
    /// Cgroups are managed through systemd (CgroupParent must be a slice).
    pub systemd_cgroups: bool,
}

impl HostFacts {
    /// A host where every controller works, with `ncpu` CPUs.
    pub fn capable(ncpu: u32) -> Self {
        Self {
            ncpu,
            cpus: if ncpu > 1 {
                format!("0-{}", ncpu - 1)
            } else {
                "0".into()
            },
            mems: "0".into(),
            memory_limit: true,
            swap_limit: true,
            memory_reservation: true,
            memory_swappiness: true,
            kernel_memory: true,
            oom_kill_disable: true,
            pids_limit: true,
            cpu_cfs: true,
            cpu_shares: true,
            cpu_realtime: true,
            cpuset: true,
            blkio_weight: true,
            blkio_weight_device: true,
            blkio_read_bps: true,
            blkio_write_bps: true,
            blkio_read_iops: true,
            blkio_write_iops: true,
            cgroup_namespaces: true,
            cgroup_v2: false,
            systemd_cgroups: false,
        }
    }
}

/// A request dockerd refuses, in its words (each a 400 unless [`Invalid::http_status`]
/// says otherwise).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// `container:` without a name.
    #[error("Invalid network mode: invalid container format container:<name|id>")]
    NetContainerFormat,
    /// Hostname with a container's network.
    #[error("conflicting options: hostname and the network mode")]
    NetworkAndHostname,
    /// Links with a container's network.
    #[error("conflicting options: container type network can't be used with links. This would result in undefined behavior")]
    ContainerNetworkAndLinks,
    /// DNS with a container's network.
    #[error("conflicting options: dns and the network mode")]
    NetworkAndDns,
    /// Extra hosts with a container's network.
    #[error("conflicting options: custom host-to-IP mapping and the network mode")]
    NetworkAndHosts,
    /// A MAC address with host or container networking.
    #[error("conflicting options: mac-address and the network mode")]
    NetworkAndMac,
    /// Published ports with a container's network.
    #[error("conflicting options: port publishing and the container type network mode")]
    NetworkAndPublish,
    /// Exposed ports with a container's network.
    #[error("conflicting options: port exposing and the container type network mode")]
    NetworkAndExpose,
    /// Hostname with the host's UTS namespace.
    #[error("conflicting options: hostname and the UTS mode")]
    UtsAndHostname,
    /// Links with host networking.
    #[error("conflicting options: host type networking can't be used with links. This would result in undefined behavior")]
    HostNetworkAndLinks,
    /// Another isolation than default (dockerd: 500 at decode).
    #[error("Invalid isolation: \"{0}\" - linux only supports 'default'")]
    Isolation(String),
    /// IOMaximumBandwidth.
    #[error("Invalid QoS settings: linux does not support configuration of maximum bandwidth")]
    MaximumBandwidth,
    /// IOMaximumIOps.
    #[error("Invalid QoS settings: linux does not support configuration of maximum IOPs")]
    MaximumIops,
    /// Real-time limits without kernel support.
    #[error("Your kernel does not support CPU real-time scheduler")]
    NoRealtime,
    /// Real-time runtime above its period.
    #[error("cpu real-time runtime cannot be higher than cpu real-time period")]
    RealtimeRuntime,
    /// A relative WorkingDir.
    #[error("the working directory '{0}' is invalid, it needs to be an absolute path")]
    WorkingDir(String),
    /// A StopSignal dockerd cannot read.
    #[error(transparent)]
    StopSignal(#[from] signal::InvalidSignal),
    /// An Env entry without a name.
    #[error("invalid environment variable: {0}")]
    Env(String),
    /// A health check interval under 1 ms.
    #[error("Interval in Healthcheck cannot be less than 1ms")]
    HealthInterval,
    /// A health check timeout under 1 ms.
    #[error("Timeout in Healthcheck cannot be less than 1ms")]
    HealthTimeout,
    /// Negative retries.
    #[error("Retries in Healthcheck cannot be negative")]
    HealthRetries,
    /// A start period under 1 ms.
    #[error("StartPeriod in Healthcheck cannot be less than 1ms")]
    HealthStartPeriod,
    /// A start interval under 1 ms.
    #[error("StartInterval in Healthcheck cannot be less than 1ms")]
    HealthStartInterval,
    /// AutoRemove with a restart policy.
    #[error("can't create 'AutoRemove' container with restart policy")]
    AutoRemoveAndRestart,
    /// A mount dockerd refuses.
    #[error(transparent)]
    Mount(#[from] MountError),
    /// An ExtraHosts entry that is not `name:ip`.
    #[error("bad format for add-host: \"{0}\"")]
    ExtraHost(String),
    /// An ExtraHosts entry whose address is not one.
    #[error("invalid IP address in add-host: \"{0}\"")]
    ExtraHostAddress(String),
    /// A port that is not one.
    #[error("invalid port specification: \"{0}\"")]
    Port(String),
    /// A restart policy dockerd does not know.
    #[error("invalid restart policy '{0}'")]
    RestartPolicy(String),
    /// A retry count with a policy that takes none.
    #[error("maximum retry count cannot be used with restart policy '{0}'")]
    RetryCountNotAllowed(String),
    /// A negative retry count.
    #[error("maximum retry count cannot be negative")]
    RetryCountNegative,
    /// An unknown capability.
    #[error("invalid {field}: unknown capability: \"{cap}\"")]
    Capability {
        /// `CapAdd` or `CapDrop`.
        field: &'static str,
        /// The capability, normalised (`CAP_...`).
        cap: String,
    },
    /// An annotation without a key.
    #[error("invalid Annotations: the empty string is not permitted as an annotation key")]
    AnnotationKey,
    /// Memory under 6 MB (or negative).
    #[error("Minimum memory limit allowed is 6MB")]
    MemoryTooLow,
    /// Swap below memory.
    #[error("Minimum memoryswap limit should be larger than memory limit, see usage")]
    SwapBelowMemory,
    /// Swap without memory.
    #[error("You should always set the Memory limit when using Memoryswap limit, see usage")]
    SwapWithoutMemory,
    /// Swappiness out of range.
    #[error("Invalid value: {0}, valid memory swappiness range is 0-100")]
    Swappiness(i64),
    /// Reservation under 6 MB.
    #[error("Minimum memory reservation allowed is 6MB")]
    ReservationTooLow,
    /// Memory under the reservation.
    #[error("Minimum memory limit can not be less than memory reservation limit, see usage")]
    MemoryBelowReservation,
    /// Kernel memory under 6 MB.
    #[error("Minimum kernel memory limit allowed is 6MB")]
    KernelMemoryTooLow,
    /// NanoCpus with CpuPeriod.
    #[error("Conflicting options: Nano CPUs and CPU Period cannot both be set")]
    NanoCpusAndPeriod,
    /// NanoCpus with CpuQuota.
    #[error("Conflicting options: Nano CPUs and CPU Quota cannot both be set")]
    NanoCpusAndQuota,
    /// NanoCpus without CFS.
    #[error("NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted")]
    NanoCpusWithoutCfs,
    /// NanoCpus out of range.
    #[error("Range of CPUs is from 0.01 to {0}.00, as there are only {0} CPUs available")]
    NanoCpusRange(u32),
    /// A CFS period out of range.
    #[error(
        "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
    )]
    CpuPeriod,
    /// A CFS quota too small.
    #[error("CPU cfs quota can not be less than 1ms (i.e. 1000)")]
    CpuQuota,
    /// A cpuset that does not parse.
    #[error("Invalid value {value} for cpuset {what}: invalid format: {value}")]
    CpusetFormat {
        /// `cpus` or `mems`.
        what: &'static str,
        /// As given.
        value: String,
    },
    /// CPUs the host does not have.
    #[error("Requested CPUs are not available - requested {0}, available: {1}")]
    CpusUnavailable(String, String),
    /// Memory nodes the host does not have.
    #[error("Requested memory nodes are not available - requested {0}, available: {1}")]
    MemsUnavailable(String, String),
    /// A blkio weight out of range.
    #[error("Range of blkio weight is from 10 to 1000")]
    BlkioWeight,
    /// Windows QoS.
    #[error(
        "Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps"
    )]
    Qos,
    /// An IPC mode dockerd does not know.
    #[error("invalid IPC mode: {0}")]
    IpcMode(String),
    /// A PID mode dockerd does not know.
    #[error("invalid PID mode: {0}")]
    PidMode(String),
    /// A negative ShmSize.
    #[error("SHM size can not be less than 0")]
    ShmSize,
    /// A UTS mode dockerd does not know.
    #[error("invalid UTS mode: {0}")]
    UtsMode(String),
    /// OomScoreAdj out of range.
    #[error("Invalid value {0}, range for oom score adj is [-1000, 1000]")]
    OomScoreAdj(i64),
    /// A CgroupParent that is no systemd slice.
    #[error("cgroup-parent for systemd cgroup should be a valid slice named as \"xxx.slice\"")]
    SystemdSlice,
    /// A cgroup namespace mode dockerd does not know.
    #[error("invalid cgroup namespace mode: {0}")]
    CgroupnsMode(String),
    /// An endpoint address that is not one.
    #[error("invalid IPv4 address: {0}")]
    EndpointIpv4(String),
    /// An endpoint address that is not one.
    #[error("invalid IPv6 address: {0}")]
    EndpointIpv6(String),
    /// Networks given with a `null` setting.
    #[error("no EndpointSettings for {0}")]
    NoEndpointSettings(String),
    /// Several networks at create (API < 1.44).
    #[error("Container cannot be connected to network endpoints: {0}")]
    ManyEndpoints(String),
    /// A sysctl outside the container's namespaces (runc's words, at start).
    #[error("sysctl \"{0}\" is not in a separate kernel namespace")]
    SysctlNotNamespaced(String),
    /// A net.* sysctl with host networking (runc's words).
    #[error("sysctl \"{0}\" not allowed in host network namespace")]
    SysctlHostNetwork(String),
    /// An IPC sysctl with the host's IPC namespace (runc's words).
    #[error("sysctl \"{0}\" is not allowed in the hosts ipc namespace")]
    SysctlHostIpc(String),
    /// kernel.hostname as a sysctl (runc's words).
    #[error("sysctl \"{0}\" is not allowed as it conflicts with the OCI \"hostname\" field")]
    SysctlHostname(String),
    /// An exec without a command.
    #[error("No exec command specified")]
    NoExecCommand,
    /// Detach keys that do not parse.
    #[error("Invalid escape keys ({0}) provided")]
    DetachKeys(String),
}

impl Invalid {
    /// The HTTP status dockerd answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Isolation(_) => 500,
            _ => 400,
        }
    }
}

/// Linux capabilities as dockerd knows them.
pub const CAPABILITIES: &[&str] = &[
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

/// `NET_ADMIN`, `cap_net_admin` or `CAP_NET_ADMIN` → `CAP_NET_ADMIN` (`ALL` stays).
pub fn normalize_capability(c: &str) -> String {
    let u = c.to_ascii_uppercase();
    if u == "ALL" || u.starts_with("CAP_") {
        u
    } else {
        format!("CAP_{u}")
    }
}

/// Checks a capability list (`CapAdd` or `CapDrop`) and returns it normalised.
pub fn capabilities(field: &'static str, caps: &[String]) -> Result<Vec<String>, Invalid> {
    caps.iter()
        .map(|c| {
            let n = normalize_capability(c);
            if n == "ALL" || CAPABILITIES.contains(&n.as_str()) {
                Ok(n)
            } else {
                Err(Invalid::Capability { field, cap: n })
            }
        })
        .collect()
}

/// runconfig's network-mode checks (made at decode time in dockerd).
fn network_mode(c: &Config, hc: &HostConfig) -> Result<(), Invalid> {
    let nm = &hc.network_mode;
    if let Some(name) = nm.container() {
        if name.is_empty() {
            return Err(Invalid::NetContainerFormat);
        }
        if !c.hostname.is_empty() {
            return Err(Invalid::NetworkAndHostname);
        }
        if hc.links.as_ref().is_some_and(|l| !l.is_empty()) {
            return Err(Invalid::ContainerNetworkAndLinks);
        }
        if hc.dns.as_ref().is_some_and(|l| !l.is_empty()) {
            return Err(Invalid::NetworkAndDns);
        }
        if hc.extra_hosts.as_ref().is_some_and(|l| !l.is_empty()) {
            return Err(Invalid::NetworkAndHosts);
        }
    } else if nm.as_str() == "container" {
        return Err(Invalid::NetContainerFormat);
    }
    if (nm.container().is_some() || nm.is_host()) && !c.mac_address.is_empty() {
        return Err(Invalid::NetworkAndMac);
    }
    if nm.container().is_some() {
        if hc.port_bindings.as_ref().is_some_and(|p| !p.is_empty()) || hc.publish_all_ports {
            return Err(Invalid::NetworkAndPublish);
        }
        if !c.exposed_ports.is_empty() {
            return Err(Invalid::NetworkAndExpose);
        }
    }
    if hc.uts_mode.is_host() && !c.hostname.is_empty() {
        return Err(Invalid::UtsAndHostname);
    }
    if nm.is_host() && hc.links.as_ref().is_some_and(|l| !l.is_empty()) {
        return Err(Invalid::HostNetworkAndLinks);
    }
    Ok(())
}

/// runconfig's decode-time checks of a create body's HostConfig.
pub fn decoded(c: &Config, hc: &HostConfig, facts: &HostFacts) -> Result<(), Invalid> {
    network_mode(c, hc)?;
    if !hc.isolation.is_default() {
        return Err(Invalid::Isolation(hc.isolation.0.clone()));
    }
    let r = &hc.resources;
    if r.io_maximum_bandwidth != 0 {
        return Err(Invalid::MaximumBandwidth);
    }
    if r.io_maximum_iops != 0 {
        return Err(Invalid::MaximumIops);
    }
    if (r.cpu_realtime_period != 0 || r.cpu_realtime_runtime != 0) && !facts.cpu_realtime {
        return Err(Invalid::NoRealtime);
    }
    if r.cpu_realtime_period != 0
        && r.cpu_realtime_runtime != 0
        && r.cpu_realtime_runtime > r.cpu_realtime_period
    {
        return Err(Invalid::RealtimeRuntime);
    }
    Ok(())
}

/// dockerd's `validateContainerConfig`.
pub fn container_config(c: &Config) -> Result<(), Invalid> {
    if !c.working_dir.is_empty() && !c.working_dir.starts_with('/') {
        return Err(Invalid::WorkingDir(c.working_dir.clone()));
    }
    if !c.stop_signal.is_empty() {
        signal::parse(&c.stop_signal)?;
    }
    for e in c.env.iter().flatten() {
        if e.split('=').next().unwrap_or("").is_empty() {
            return Err(Invalid::Env(e.clone()));
        }
    }
    if let Some(h) = &c.healthcheck {
        const MS: i64 = 1_000_000;
        if h.interval != 0 && h.interval < MS {
            return Err(Invalid::HealthInterval);
        }
        if h.timeout != 0 && h.timeout < MS {
            return Err(Invalid::HealthTimeout);
        }
        if h.retries < 0 {
            return Err(Invalid::HealthRetries);
        }
        if h.start_period != 0 && h.start_period < MS {
            return Err(Invalid::HealthStartPeriod);
        }
        if h.start_interval != 0 && h.start_interval < MS {
            return Err(Invalid::HealthStartInterval);
        }
    }
    Ok(())
}

/// dockerd's `validateRestartPolicy`.
pub fn restart_policy(p: &RestartPolicy) -> Result<(), Invalid> {
    match p.kind() {
        None => Err(Invalid::RestartPolicy(p.name.clone())),
        Some(RestartKind::OnFailure) if p.maximum_retry_count < 0 => {
            Err(Invalid::RetryCountNegative)
        }
        Some(RestartKind::OnFailure) => Ok(()),
        // `""` takes any count, as dockerd lets it.
        Some(_) if p.name.is_empty() => Ok(()),
        Some(_) if p.maximum_retry_count != 0 => Err(Invalid::RetryCountNotAllowed(p.name.clone())),
        Some(_) => Ok(()),
    }
}

/// `nat.SplitProtoPort`'s port half.
fn port_of(raw: &str) -> &str {
    let first = raw.split('/').next().unwrap_or("");
    if raw.is_empty() || first.is_empty() {
        ""
    } else {
        first
    }
}

/// `nat.ParsePortRange` of a non-empty range.
fn port_range_ok(p: &str) -> bool {
    match p.split_once('-') {
        None => p.parse::<u16>().is_ok(),
        Some((a, b)) => matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if b >= a),
    }
}

/// dockerd's `validatePortBindings`: container ports (`80/tcp`) and host ports (``,
/// `8080`, `8000-8010`).
pub fn port_bindings(hc: &HostConfig) -> Result<(), Invalid> {
    for (port, bindings) in hc.port_bindings.iter().flatten() {
        let p = port_of(port);
        if !p.is_empty() && p.parse::<u16>().is_err() {
            return Err(Invalid::Port(p.to_string()));
        }
        for b in bindings.iter().flatten() {
            let hp = port_of(&b.host_port);
            if !hp.is_empty() && !port_range_ok(hp) {
                return Err(Invalid::Port(b.host_port.clone()));
            }
        }
    }
    Ok(())
}

/// dockerd's `ValidateExtraHost`.
pub fn extra_host(val: &str) -> Result<(), Invalid> {
    let Some((name, ip)) = val.split_once(':').filter(|(n, _)| !n.is_empty()) else {
        return Err(Invalid::ExtraHost(val.to_string()));
    };
    let _ = name;
    let bare = ip.trim().trim_start_matches('[').trim_end_matches(']');
    if ip != "host-gateway" && bare.parse::<std::net::IpAddr>().is_err() {
        return Err(Invalid::ExtraHostAddress(ip.to_string()));
    }
    Ok(())
}

/// dockerd's `validateHostConfig`.
pub fn host_config(hc: &HostConfig) -> Result<(), Invalid> {
    if hc.auto_remove && !hc.restart_policy.is_none() {
        return Err(Invalid::AutoRemoveAndRestart);
    }
    for m in &hc.mounts {
        mount::parse_mount(m)?;
    }
    for h in hc.extra_hosts.iter().flatten() {
        extra_host(h)?;
    }
    port_bindings(hc)?;
    restart_policy(&hc.restart_policy)?;
    capabilities("CapAdd", hc.cap_add.as_deref().unwrap_or_default())?;
    capabilities("CapDrop", hc.cap_drop.as_deref().unwrap_or_default())?;
    if !hc.isolation.is_default() {
        return Err(Invalid::Isolation(hc.isolation.0.clone()));
    }
    if hc.annotations.contains_key("") {
        return Err(Invalid::AnnotationKey);
    }
    Ok(())
}

/// Parses a cpuset list (`0-2,4`), as dockerd's `parsers.ParseUintList`.
fn uint_list(s: &str) -> Option<BTreeSet<u32>> {
    let mut out = BTreeSet::new();
    for part in s.split(',') {
        match part.split_once('-') {
            None => {
                out.insert(part.parse().ok()?);
            }
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if b < a {
                    return None;
                }
                out.extend(a..=b);
            }
        }
    }
    Some(out)
}

/// Whether a requested cpuset is within what the host has.
fn cpuset_available(requested: &str, available: &str, what: &'static str) -> Result<bool, Invalid> {
    if requested.is_empty() {
        return Ok(true);
    }
    let req = uint_list(requested).ok_or_else(|| Invalid::CpusetFormat {
        what,
        value: requested.to_string(),
    })?;
    let have = uint_list(available).unwrap_or_default();
    Ok(req.is_subset(&have))
}

/// dockerd's `verifyPlatformContainerResources`: refuses what it refuses, and clears
/// (with a warning) what the host cannot do. `update` is true for `docker update`.
pub fn resources(
    r: &mut Resources,
    facts: &HostFacts,
    update: bool,
) -> Result<Vec<String>, Invalid> {
    let mut w = Vec::new();
    // fixMemorySwappiness: -1 means unset (old clients send it).
    if r.memory_swappiness == Some(-1) {
        r.memory_swappiness = None;
    }
    if r.memory != 0 && r.memory < MIN_MEMORY {
        return Err(Invalid::MemoryTooLow);
    }
    if r.memory > 0 && !facts.memory_limit {
        w.push("Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.".into());
        r.memory = 0;
        r.memory_swap = -1;
    }
    if r.memory > 0 && r.memory_swap != -1 && !facts.swap_limit {
        w.push("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.".into());
        r.memory_swap = -1;
    }
    if r.memory > 0 && r.memory_swap > 0 && r.memory_swap < r.memory {
        return Err(Invalid::SwapBelowMemory);
    }
    if r.memory == 0 && r.memory_swap > 0 && !update {
        return Err(Invalid::SwapWithoutMemory);
    }
    if r.memory_swappiness.is_some() && !facts.memory_swappiness {
        w.push("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.".into());
        r.memory_swappiness = None;
    }
    if let Some(s) = r.memory_swappiness {
        if !(0..=100).contains(&s) {
            return Err(Invalid::Swappiness(s));
        }
    }
    if r.memory_reservation > 0 && !facts.memory_reservation {
        w.push("Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.".into());
        r.memory_reservation = 0;
    }
    if r.memory_reservation > 0 && r.memory_reservation < MIN_MEMORY {
        return Err(Invalid::ReservationTooLow);
    }
    if r.memory > 0 && r.memory_reservation > 0 && r.memory < r.memory_reservation {
        return Err(Invalid::MemoryBelowReservation);
    }
    if r.kernel_memory > 0 {
        if !facts.kernel_memory {
            w.push("Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded.".into());
            r.kernel_memory = 0;
        }
        if r.kernel_memory > 0 && r.kernel_memory < MIN_MEMORY {
            return Err(Invalid::KernelMemoryTooLow);
        }
    }
    if r.oom_kill_disable.is_some() && !facts.oom_kill_disable {
        if r.oom_kill_disable == Some(true) {
            w.push("Your kernel does not support OomKillDisable. OomKillDisable discarded.".into());
        }
        r.oom_kill_disable = None;
    }
    if r.oom_kill_disable == Some(true) && r.memory == 0 {
        w.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".into());
    }
    if r.pids_limit.is_some() && !facts.pids_limit {
        if r.pids_limit.is_some_and(|p| p > 0) {
            w.push("Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.".into());
        }
        r.pids_limit = None;
    }
    if r.nano_cpus > 0 && r.cpu_period > 0 {
        return Err(Invalid::NanoCpusAndPeriod);
    }
    if r.nano_cpus > 0 && r.cpu_quota > 0 {
        return Err(Invalid::NanoCpusAndQuota);
    }
    if r.nano_cpus > 0 && !facts.cpu_cfs {
        return Err(Invalid::NanoCpusWithoutCfs);
    }
    if r.nano_cpus < 0 || r.nano_cpus > i64::from(facts.ncpu) * 1_000_000_000 {
        return Err(Invalid::NanoCpusRange(facts.ncpu));
    }
    if r.cpu_shares > 0 && !facts.cpu_shares {
        w.push("Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.".into());
        r.cpu_shares = 0;
    }
    if (r.cpu_period != 0 || r.cpu_quota != 0) && !facts.cpu_cfs {
        w.push(
            "Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.".into(),
        );
        r.cpu_period = 0;
        r.cpu_quota = 0;
    }
    if r.cpu_period != 0 && !(1000..=1_000_000).contains(&r.cpu_period) {
        return Err(Invalid::CpuPeriod);
    }
    if r.cpu_quota > 0 && r.cpu_quota < 1000 {
        return Err(Invalid::CpuQuota);
    }
    if r.cpu_percent > 0 {
        w.push("linux does not support CPU percent. Percent discarded.".into());
        r.cpu_percent = 0;
    }
    if (!r.cpuset_cpus.is_empty() || !r.cpuset_mems.is_empty()) && !facts.cpuset {
        w.push(
            "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded."
                .into(),
        );
        r.cpuset_cpus.clear();
        r.cpuset_mems.clear();
    }
    if !cpuset_available(&r.cpuset_cpus, &facts.cpus, "cpus")? {
        return Err(Invalid::CpusUnavailable(
            r.cpuset_cpus.clone(),
            facts.cpus.clone(),
        ));
    }
    if !cpuset_available(&r.cpuset_mems, &facts.mems, "mems")? {
        return Err(Invalid::MemsUnavailable(
            r.cpuset_mems.clone(),
            facts.mems.clone(),
        ));
    }
    if r.blkio_weight > 0 && !facts.blkio_weight {
        w.push("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.".into());
        r.blkio_weight = 0;
    }
    if r.blkio_weight > 0 && !(10..=1000).contains(&r.blkio_weight) {
        return Err(Invalid::BlkioWeight);
    }
    if r.io_maximum_bandwidth != 0 || r.io_maximum_iops != 0 {
        return Err(Invalid::Qos);
    }
    fn discard<T>(w: &mut Vec<String>, list: &mut Option<Vec<T>>, ok: bool, msg: &str) {
        if list.as_ref().is_some_and(|l| !l.is_empty()) && !ok {
            w.push(msg.to_string());
            *list = Some(Vec::new());
        }
    }
    discard(&mut w, &mut r.blkio_weight_device, facts.blkio_weight_device, "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.");
    discard(&mut w, &mut r.blkio_device_read_bps, facts.blkio_read_bps, "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded.");
    discard(&mut w, &mut r.blkio_device_write_bps, facts.blkio_write_bps, "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded.");
    discard(&mut w, &mut r.blkio_device_read_iops, facts.blkio_read_iops, "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded.");
    discard(&mut w, &mut r.blkio_device_write_iops, facts.blkio_write_iops, "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded.");
    Ok(w)
}

/// dockerd's `verifyPlatformContainerSettings` (without the runtime's existence, which
/// the engine checks: it knows its runtimes).
pub fn platform(
    hc: &mut HostConfig,
    facts: &HostFacts,
    update: bool,
) -> Result<Vec<String>, Invalid> {
    let mut w = resources(&mut hc.resources, facts, update)?;
    if !hc.ipc_mode.valid() {
        return Err(Invalid::IpcMode(hc.ipc_mode.0.clone()));
    }
    if !hc.pid_mode.valid() {
        return Err(Invalid::PidMode(hc.pid_mode.0.clone()));
    }
    if hc.shm_size < 0 {
        return Err(Invalid::ShmSize);
    }
    if !hc.uts_mode.valid() {
        return Err(Invalid::UtsMode(hc.uts_mode.0.clone()));
    }
    if !(-1000..=1000).contains(&hc.oom_score_adj) {
        return Err(Invalid::OomScoreAdj(hc.oom_score_adj));
    }
    if hc.network_mode.is_host() && hc.port_bindings.as_ref().is_some_and(|p| !p.is_empty()) {
        w.push("Published ports are discarded when using host network mode".into());
    }
    let parent = &hc.resources.cgroup_parent;
    if !parent.is_empty()
        && facts.systemd_cgroups
        && (parent.len() <= 6 || !parent.ends_with(".slice"))
    {
        return Err(Invalid::SystemdSlice);
    }
    for dest in hc.tmpfs.keys() {
        mount::check_tmpfs_destination(dest)?;
    }
    if !hc.cgroupns_mode.valid() {
        return Err(Invalid::CgroupnsMode(hc.cgroupns_mode.0.clone()));
    }
    if hc.cgroupns_mode.is_private() && !facts.cgroup_namespaces {
        w.push(
            "Your kernel does not support cgroup namespaces.  Cgroup namespace setting discarded."
                .into(),
        );
    }
    Ok(w)
}

/// dockerd's `verifyNetworkingConfig` (API 1.43: one network at create).
pub fn networking_config(nc: Option<&NetworkingConfig>) -> Result<(), Invalid> {
    let Some(eps) = nc.and_then(|n| n.endpoints_config.as_ref()) else {
        return Ok(());
    };
    if eps.len() > 1 {
        let names: Vec<&str> = eps.keys().map(String::as_str).collect();
        return Err(Invalid::ManyEndpoints(names.join(", ")));
    }
    for ep in eps.values() {
        if let Some(ipam) = &ep.ipam_config {
            if !ipam.ipv4_address.is_empty()
                && ipam.ipv4_address.parse::<std::net::Ipv4Addr>().is_err()
            {
                return Err(Invalid::EndpointIpv4(ipam.ipv4_address.clone()));
            }
            if !ipam.ipv6_address.is_empty()
                && ipam.ipv6_address.parse::<std::net::Ipv6Addr>().is_err()
            {
                return Err(Invalid::EndpointIpv6(ipam.ipv6_address.clone()));
            }
        }
    }
    Ok(())
}

/// Everything dockerd checks of a create request before it looks at the image, in its
/// order: decode-time checks, the config, the host config, the platform's rules, the
/// networks. Unsupported limits are cleared with warnings; the warnings are returned
/// for the create answer.
pub fn create(
    config: &Config,
    hc: &mut HostConfig,
    nc: Option<&NetworkingConfig>,
    facts: &HostFacts,
) -> Result<Vec<String>, Invalid> {
    decoded(config, hc, facts)?;
    container_config(config)?;
    host_config(hc)?;
    let w = platform(hc, facts, false)?;
    networking_config(nc)?;
    Ok(w)
}

/// What `POST /containers/{id}/update` checks (dockerd's update path: the restart
/// policy and the limits, with `update` rules for swap).
pub fn update(
    u: &mut crate::container::UpdateConfig,
    facts: &HostFacts,
) -> Result<Vec<String>, Invalid> {
    restart_policy(&u.restart_policy)?;
    resources(&mut u.resources, facts, true)
}

/// The daemon's defaults applied to a created container (dockerd's
/// `adaptContainerSettings` and its log-config defaulting): inspect shows these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// The runtime when none is named.
    pub runtime: String,
    /// The log driver when none is named.
    pub log_driver: String,
    /// The IPC mode when none is named (`private`, dockerd's default).
    pub ipc_mode: String,
    /// /dev/shm's size when none is given.
    pub shm_size: i64,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            runtime: "runc".into(),
            log_driver: "json-file".into(),
            ipc_mode: "private".into(),
            shm_size: DEFAULT_SHM_SIZE,
        }
    }
}

/// Fills in what the client left to the daemon, as dockerd does after the checks:
/// MemorySwap (twice Memory, wrapping as Go's int64 does: a Memory near 2^63 gives a
/// negative swap, which must then not be written to the cgroup, see
/// [`swap_limit`]), ShmSize, IpcMode, the cgroup namespace, OomKillDisable, the log
/// driver and the runtime.
pub fn adapt(hc: &mut HostConfig, facts: &HostFacts, d: &Defaults) {
    let r = &mut hc.resources;
    if r.memory > 0 && r.memory_swap == 0 {
        r.memory_swap = r.memory.wrapping_mul(2);
    }
    if r.oom_kill_disable.is_none() {
        r.oom_kill_disable = Some(false);
    }
    if hc.shm_size == 0 {
        hc.shm_size = d.shm_size;
    }
    if hc.ipc_mode.is_empty() {
        hc.ipc_mode = d.ipc_mode.as_str().into();
    }
    if hc.cgroupns_mode.is_empty() {
        hc.cgroupns_mode = if facts.cgroup_v2 { "private" } else { "host" }.into();
    }
    if hc.log_config.kind.is_empty() {
        hc.log_config.kind = d.log_driver.clone();
    }
    if hc.log_config.config.is_none() {
        hc.log_config.config = Some(BTreeMap::new());
    }
    if hc.runtime.is_empty() {
        hc.runtime = d.runtime.clone();
    }
}

/// The swap limit to write to the cgroup: dockerd writes one only when positive
/// (-1 is unlimited; a wrapped, negative default is no limit at all).
pub fn swap_limit(r: &Resources) -> Option<i64> {
    (r.memory_swap > 0).then_some(r.memory_swap)
}

/// Which namespaces a container has of its own, for [`sysctls`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Namespaces {
    /// A network namespace other than the host's.
    pub net: bool,
    /// An IPC namespace other than the host's.
    pub ipc: bool,
    /// A UTS namespace other than the host's.
    pub uts: bool,
}

impl Namespaces {
    /// The namespaces a HostConfig gives the container.
    pub fn of(hc: &HostConfig) -> Self {
        Self {
            net: !hc.network_mode.is_host(),
            ipc: !hc.ipc_mode.is_host(),
            uts: !hc.uts_mode.is_host(),
        }
    }
}

const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The rules for `--sysctl` (runc's, which refuse at start in dockerd's stack): IPC
/// sysctls need a private IPC namespace, `net.*` a network namespace other than the
/// host's, `kernel.domainname` a private UTS namespace, and nothing else is
/// namespaced.
pub fn sysctls(s: &BTreeMap<String, String>, ns: Namespaces) -> Result<(), Invalid> {
    for k in s.keys() {
        if IPC_SYSCTLS.contains(&k.as_str()) || k.starts_with("fs.mqueue.") {
            if ns.ipc {
                continue;
            }
            return Err(Invalid::SysctlHostIpc(k.clone()));
        }
        if k.starts_with("net.") {
            if ns.net {
                continue;
            }
            return Err(Invalid::SysctlHostNetwork(k.clone()));
        }
        if ns.uts {
            match k.as_str() {
                "kernel.domainname" => continue,
                "kernel.hostname" => return Err(Invalid::SysctlHostname(k.clone())),
                _ => {}
            }
        }
        return Err(Invalid::SysctlNotNamespaced(k.clone()));
    }
    Ok(())
}

/// What `POST /containers/{id}/exec` checks of its body before anything else.
pub fn exec(e: &ExecConfig) -> Result<(), Invalid> {
    if e.cmd.as_ref().is_none_or(|c| c.is_empty()) {
        return Err(Invalid::NoExecCommand);
    }
    if !e.detach_keys.is_empty() && crate::detach::parse(&e.detach_keys).is_err() {
        return Err(Invalid::DetachKeys(e.detach_keys.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{HealthConfig, PortBinding};

    fn facts() -> HostFacts {
        HostFacts::capable(2)
    }

    fn hc_with(f: impl FnOnce(&mut HostConfig)) -> HostConfig {
        let mut hc = HostConfig::default();
        f(&mut hc);
        hc
    }

    fn refuse(f: impl FnOnce(&mut HostConfig)) -> String {
        let mut hc = hc_with(f);
        create(&Config::default(), &mut hc, None, &facts())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn memory_rules_and_words() {
        assert_eq!(
            refuse(|h| h.resources.memory = 3 << 20),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            refuse(|h| h.resources.memory = -5),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            refuse(|h| h.resources.memory_swap = 10_000_000),
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        );
        assert_eq!(
            refuse(|h| {
                h.resources.memory = 10_000_000;
                h.resources.memory_swap = 9_000_000;
            }),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        assert_eq!(
            refuse(|h| h.resources.memory_reservation = 100),
            "Minimum memory reservation allowed is 6MB"
        );
        assert_eq!(
            refuse(|h| h.resources.memory_swappiness = Some(101)),
            "Invalid value: 101, valid memory swappiness range is 0-100"
        );
        assert_eq!(
            refuse(|h| h.resources.kernel_memory = 100),
            "Minimum kernel memory limit allowed is 6MB"
        );
        // -1 swappiness is "unset", as old clients send it.
        let mut hc = hc_with(|h| h.resources.memory_swappiness = Some(-1));
        create(&Config::default(), &mut hc, None, &facts()).unwrap();
        assert_eq!(hc.resources.memory_swappiness, None);
        // Near 2^63 dockerd accepts, and its default swap wraps (inspect shows -2);
        // no swap limit is written then.
        let mut hc = hc_with(|h| h.resources.memory = i64::MAX);
        create(&Config::default(), &mut hc, None, &facts()).unwrap();
        adapt(&mut hc, &facts(), &Defaults::default());
        assert_eq!(hc.resources.memory_swap, -2);
        assert_eq!(swap_limit(&hc.resources), None);
        let mut hc = hc_with(|h| h.resources.memory = 64 << 20);
        adapt(&mut hc, &facts(), &Defaults::default());
        assert_eq!(swap_limit(&hc.resources), Some(128 << 20));
    }

    #[test]
    fn cpu_rules_use_the_hosts_facts() {
        assert_eq!(
            refuse(|h| h.resources.nano_cpus = 5_000_000_000),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
        assert_eq!(
            refuse(|h| h.resources.nano_cpus = -1),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
        let mut hc = hc_with(|h| h.resources.nano_cpus = 3_000_000_000);
        let mut four = facts();
        four.ncpu = 4;
        assert!(create(&Config::default(), &mut hc, None, &four).is_ok());
        assert_eq!(
            refuse(|h| {
                h.resources.nano_cpus = 1;
                h.resources.cpu_period = 1000
            }),
            "Conflicting options: Nano CPUs and CPU Period cannot both be set"
        );
        assert_eq!(
            refuse(|h| h.resources.cpu_period = 10),
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        );
        assert_eq!(
            refuse(|h| h.resources.cpu_quota = 10),
            "CPU cfs quota can not be less than 1ms (i.e. 1000)"
        );
        assert_eq!(
            refuse(|h| h.resources.cpuset_cpus = "abc".into()),
            "Invalid value abc for cpuset cpus: invalid format: abc"
        );
        assert_eq!(
            refuse(|h| h.resources.cpuset_cpus = "7".into()),
            "Requested CPUs are not available - requested 7, available: 0-1"
        );
        assert_eq!(
            refuse(|h| {
                h.resources.cpu_realtime_period = 1000;
                h.resources.cpu_realtime_runtime = 2000;
            }),
            "cpu real-time runtime cannot be higher than cpu real-time period"
        );
        let mut no_rt = facts();
        no_rt.cpu_realtime = false;
        let mut hc = hc_with(|h| h.resources.cpu_realtime_runtime = 1000);
        assert_eq!(
            create(&Config::default(), &mut hc, None, &no_rt)
                .unwrap_err()
                .to_string(),
            "Your kernel does not support CPU real-time scheduler"
        );
        assert_eq!(
            refuse(|h| h.resources.blkio_weight = 5),
            "Range of blkio weight is from 10 to 1000"
        );
    }

    #[test]
    fn missing_controllers_warn_and_discard() {
        let mut weak = facts();
        weak.blkio_weight = false;
        weak.memory_swappiness = false;
        let mut hc = hc_with(|h| {
            h.resources.blkio_weight = 5;
            h.resources.memory_swappiness = Some(10);
        });
        let w = create(&Config::default(), &mut hc, None, &weak).unwrap();
        assert_eq!(w.len(), 2);
        assert!(w[1].starts_with("Your kernel does not support Block I/O weight"));
        assert_eq!(hc.resources.blkio_weight, 0);
        assert_eq!(hc.resources.memory_swappiness, None);
    }

    #[test]
    fn host_config_rules() {
        assert_eq!(
            refuse(|h| h.shm_size = -1),
            "SHM size can not be less than 0"
        );
        assert_eq!(
            refuse(|h| h.oom_score_adj = 1001),
            "Invalid value 1001, range for oom score adj is [-1000, 1000]"
        );
        assert!(refuse(|h| h.oom_score_adj = -1001).contains("-1001"));
        assert_eq!(
            refuse(|h| h.ipc_mode = "bogus".into()),
            "invalid IPC mode: bogus"
        );
        assert_eq!(
            refuse(|h| h.pid_mode = "container:".into()),
            "invalid PID mode: container:"
        );
        assert_eq!(
            refuse(|h| h.uts_mode = "bogus".into()),
            "invalid UTS mode: bogus"
        );
        assert_eq!(
            refuse(|h| h.cgroupns_mode = "bogus".into()),
            "invalid cgroup namespace mode: bogus"
        );
        assert_eq!(
            refuse(|h| h.isolation = "hyperv".into()),
            "Invalid isolation: \"hyperv\" - linux only supports 'default'"
        );
        assert_eq!(
            refuse(|h| h
                .annotations
                .insert(String::new(), "x".into())
                .map(drop)
                .unwrap_or(())),
            "invalid Annotations: the empty string is not permitted as an annotation key"
        );
        assert_eq!(
            refuse(|h| h.extra_hosts = Some(vec!["bad".into()])),
            "bad format for add-host: \"bad\""
        );
        assert_eq!(
            refuse(|h| h.extra_hosts = Some(vec!["h:999.1.1.1".into()])),
            "invalid IP address in add-host: \"999.1.1.1\""
        );
        let mut ok =
            hc_with(|h| h.extra_hosts = Some(vec!["h:host-gateway".into(), "v6:::1".into()]));
        assert!(create(&Config::default(), &mut ok, None, &facts()).is_ok());
        assert_eq!(
            refuse(|h| h.cap_add = Some(vec!["BOGUS".into()])),
            "invalid CapAdd: unknown capability: \"CAP_BOGUS\""
        );
        assert_eq!(
            refuse(|h| h.cap_drop = Some(vec!["cap_nope".into()])),
            "invalid CapDrop: unknown capability: \"CAP_NOPE\""
        );
        assert_eq!(
            capabilities("CapAdd", &["net_admin".into(), "all".into()]).unwrap(),
            ["CAP_NET_ADMIN", "ALL"]
        );
        assert_eq!(
            refuse(|h| h
                .tmpfs
                .insert("rel".into(), String::new())
                .map(drop)
                .unwrap_or(())),
            "invalid mount path: 'rel' mount path must be absolute"
        );
        let mut sd = facts();
        sd.systemd_cgroups = true;
        let mut hc = hc_with(|h| h.resources.cgroup_parent = "/berth".into());
        assert_eq!(
            create(&Config::default(), &mut hc, None, &sd)
                .unwrap_err()
                .to_string(),
            "cgroup-parent for systemd cgroup should be a valid slice named as \"xxx.slice\""
        );
    }

    #[test]
    fn restart_policies() {
        let p = |name: &str, n: i64| {
            refuse(|h| {
                h.restart_policy = RestartPolicy {
                    name: name.into(),
                    maximum_retry_count: n,
                }
            })
        };
        assert_eq!(p("bogus", 0), "invalid restart policy 'bogus'");
        assert_eq!(
            p("always", 2),
            "maximum retry count cannot be used with restart policy 'always'"
        );
        assert_eq!(
            p("no", 1),
            "maximum retry count cannot be used with restart policy 'no'"
        );
        assert_eq!(
            p("on-failure", -1),
            "maximum retry count cannot be negative"
        );
        assert_eq!(
            refuse(|h| {
                h.auto_remove = true;
                h.restart_policy.name = "always".into();
            }),
            "can't create 'AutoRemove' container with restart policy"
        );
        assert!(restart_policy(&RestartPolicy {
            name: "on-failure".into(),
            maximum_retry_count: 3
        })
        .is_ok());
        assert!(restart_policy(&RestartPolicy::default()).is_ok());
    }

    #[test]
    fn ports() {
        let bind = |c: &str, h: &str| {
            refuse(|hc| {
                let mut m = BTreeMap::new();
                m.insert(
                    c.to_string(),
                    Some(vec![PortBinding {
                        host_ip: String::new(),
                        host_port: h.into(),
                    }]),
                );
                hc.port_bindings = Some(m);
            })
        };
        assert_eq!(bind("abc/tcp", ""), "invalid port specification: \"abc\"");
        assert_eq!(bind("80/tcp", "xyz"), "invalid port specification: \"xyz\"");
        assert_eq!(
            bind("70000/tcp", ""),
            "invalid port specification: \"70000\""
        );
        assert_eq!(bind("80/tcp", "9-8"), "invalid port specification: \"9-8\"");
        let mut ok = hc_with(|hc| {
            let mut m = BTreeMap::new();
            m.insert(
                "80/tcp".into(),
                Some(vec![PortBinding {
                    host_ip: "127.0.0.1".into(),
                    host_port: "8000-8010".into(),
                }]),
            );
            m.insert("53/udp".into(), None);
            hc.port_bindings = Some(m);
        });
        assert!(create(&Config::default(), &mut ok, None, &facts()).is_ok());
    }

    #[test]
    fn network_mode_conflicts() {
        let c = Config {
            hostname: "h".into(),
            ..Default::default()
        };
        let mut hc = hc_with(|h| h.network_mode = "container:x".into());
        assert_eq!(
            create(&c, &mut hc, None, &facts()).unwrap_err().to_string(),
            "conflicting options: hostname and the network mode"
        );
        let mut hc = hc_with(|h| h.uts_mode = "host".into());
        assert_eq!(
            create(&c, &mut hc, None, &facts()).unwrap_err().to_string(),
            "conflicting options: hostname and the UTS mode"
        );
        assert_eq!(
            refuse(|h| h.network_mode = "container:".into()),
            "Invalid network mode: invalid container format container:<name|id>"
        );
        assert_eq!(
            refuse(|h| {
                h.network_mode = "host".into();
                h.links = Some(vec!["a:b".into()]);
            }),
            "conflicting options: host type networking can't be used with links. This would result in undefined behavior"
        );
    }

    #[test]
    fn container_config_rules() {
        let check = |f: &dyn Fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            container_config(&c).map_err(|e| e.to_string())
        };
        assert_eq!(
            check(&|c| c.working_dir = "rel".into()).unwrap_err(),
            "the working directory 'rel' is invalid, it needs to be an absolute path"
        );
        assert_eq!(
            check(&|c| c.stop_signal = "SIGNOPE".into()).unwrap_err(),
            "Invalid signal: SIGNOPE"
        );
        assert!(check(&|c| c.stop_signal = "usr1".into()).is_ok());
        assert_eq!(
            check(&|c| c.env = Some(vec!["=x".into()])).unwrap_err(),
            "invalid environment variable: =x"
        );
        assert!(check(&|c| c.env = Some(vec!["A".into(), "B=".into()])).is_ok());
        let hc = |h: HealthConfig| move |c: &mut Config| c.healthcheck = Some(h.clone());
        assert_eq!(
            check(&hc(HealthConfig {
                interval: 10,
                ..Default::default()
            }))
            .unwrap_err(),
            "Interval in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(
            check(&hc(HealthConfig {
                timeout: 999_999,
                ..Default::default()
            }))
            .unwrap_err(),
            "Timeout in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(
            check(&hc(HealthConfig {
                retries: -1,
                ..Default::default()
            }))
            .unwrap_err(),
            "Retries in Healthcheck cannot be negative"
        );
        assert_eq!(
            check(&hc(HealthConfig {
                start_period: 1,
                ..Default::default()
            }))
            .unwrap_err(),
            "StartPeriod in Healthcheck cannot be less than 1ms"
        );
    }

    #[test]
    fn sysctl_namespacing() {
        let s = |k: &str| BTreeMap::from([(k.to_string(), "1".to_string())]);
        let private = Namespaces {
            net: true,
            ipc: true,
            uts: true,
        };
        for k in [
            "net.ipv4.ip_forward",
            "kernel.shmmax",
            "fs.mqueue.msg_max",
            "kernel.domainname",
        ] {
            assert!(sysctls(&s(k), private).is_ok(), "{k}");
        }
        let e = |k: &str, ns| sysctls(&s(k), ns).unwrap_err().to_string();
        assert_eq!(
            e("vm.swappiness", private),
            "sysctl \"vm.swappiness\" is not in a separate kernel namespace"
        );
        assert_eq!(
            e("kernel.foo", private),
            "sysctl \"kernel.foo\" is not in a separate kernel namespace"
        );
        let host_net = Namespaces {
            net: false,
            ..private
        };
        assert_eq!(
            e("net.ipv4.ip_forward", host_net),
            "sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace"
        );
        let host_ipc = Namespaces {
            ipc: false,
            ..private
        };
        assert_eq!(
            e("kernel.shmmax", host_ipc),
            "sysctl \"kernel.shmmax\" is not allowed in the hosts ipc namespace"
        );
        let host_uts = Namespaces {
            uts: false,
            ..private
        };
        assert_eq!(
            e("kernel.domainname", host_uts),
            "sysctl \"kernel.domainname\" is not in a separate kernel namespace"
        );
        let hc = hc_with(|h| h.network_mode = "host".into());
        assert!(!Namespaces::of(&hc).net);
    }

    #[test]
    fn adapt_fills_in_dockerds_defaults() {
        let mut hc = HostConfig::default();
        adapt(&mut hc, &facts(), &Defaults::default());
        assert_eq!(hc.shm_size, 64 << 20);
        assert_eq!(hc.ipc_mode.as_str(), "private");
        assert_eq!(hc.cgroupns_mode.as_str(), "host");
        assert_eq!(hc.log_config.kind, "json-file");
        assert_eq!(hc.log_config.config, Some(BTreeMap::new()));
        assert_eq!(hc.runtime, "runc");
        assert_eq!(hc.resources.oom_kill_disable, Some(false));
        let mut v2 = facts();
        v2.cgroup_v2 = true;
        let mut hc = HostConfig::default();
        adapt(&mut hc, &v2, &Defaults::default());
        assert_eq!(hc.cgroupns_mode.as_str(), "private");
    }

    #[test]
    fn exec_bodies() {
        let mut e = ExecConfig::default();
        assert_eq!(
            exec(&e).unwrap_err().to_string(),
            "No exec command specified"
        );
        e.cmd = Some(vec!["true".into()]);
        assert!(exec(&e).is_ok());
        e.detach_keys = "ctrl-".into();
        assert_eq!(
            exec(&e).unwrap_err().to_string(),
            "Invalid escape keys (ctrl-) provided"
        );
    }

    #[test]
    fn networking_configs() {
        use crate::network::{EndpointIpamConfig, EndpointSettings};
        let nc = |ip: &str| NetworkingConfig {
            endpoints_config: Some(BTreeMap::from([(
                "n".to_string(),
                EndpointSettings {
                    ipam_config: Some(EndpointIpamConfig {
                        ipv4_address: ip.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )])),
        };
        assert!(networking_config(Some(&nc("10.1.2.3"))).is_ok());
        assert_eq!(
            networking_config(Some(&nc("10.1.2")))
                .unwrap_err()
                .to_string(),
            "invalid IPv4 address: 10.1.2"
        );
    }
}
