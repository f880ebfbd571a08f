//! The OCI runtime specs of a pod's pause container and of its containers, from the
//! kubelet's configs and the image's, as containerd's CRI plugin makes them: the pause
//! process holds new network (the pinned netns), IPC, UTS and (for a shared PID
//! namespace) PID namespaces; containers join them through the pause process's
//! `/proc/PID/ns/*`, get the pod's /etc/hosts, /etc/hostname, /etc/resolv.conf and
//! /dev/shm, and their security context (user, capabilities, seccomp, no-new-privs,
//! masked and read-only paths, read-only root), resources and mounts.

use super::store::Sandbox;
use super::{cri, Error, Result};
use crate::containers::spec as engine_spec;
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDevice,
    LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxResources, LinuxResourcesBuilder, LinuxSeccomp, Mount, Process,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

fn oci<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Error {
    move |e| Error::Internal(format!("building the OCI spec ({what}): {e}"))
}

/// The mode of a namespace option (POD when absent).
pub fn mode(
    ns: Option<&cri::NamespaceOption>,
    pick: fn(&cri::NamespaceOption) -> i32,
) -> cri::NamespaceMode {
    ns.map(pick)
        .and_then(|m| cri::NamespaceMode::try_from(m).ok())
        .unwrap_or(cri::NamespaceMode::Pod)
}

/// The sandbox's namespace options.
pub fn sandbox_ns(c: &cri::PodSandboxConfig) -> Option<&cri::NamespaceOption> {
    c.linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref())
}

/// True if the pod uses the host's network.
pub fn host_network(c: &cri::PodSandboxConfig) -> bool {
    mode(sandbox_ns(c), |n| n.network) == cri::NamespaceMode::Node
}

fn ns(typ: LinuxNamespaceType, path: Option<PathBuf>) -> Result<LinuxNamespace> {
    let b = LinuxNamespaceBuilder::default().typ(typ);
    match path {
        Some(p) => b.path(p).build(),
        None => b.build(),
    }
    .map_err(oci("namespace"))
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount> {
    engine_spec::mount(dest, typ, source, options).map_err(oci("mount"))
}

/// The mounts every container gets (as runc's and containerd's defaults).
fn default_mounts(privileged: bool) -> Result<Vec<Mount>> {
    let sys = if privileged {
        vec!["nosuid", "noexec", "nodev"]
    } else {
        vec!["nosuid", "noexec", "nodev", "ro"]
    };
    let cgroup = if privileged {
        vec!["nosuid", "noexec", "nodev", "relatime"]
    } else {
        vec!["nosuid", "noexec", "nodev", "relatime", "ro"]
    };
    engine_spec::kernel_mounts(&sys, &cgroup).map_err(oci("mount"))
}

/// The cgroup rules of an unprivileged container: nothing but the devices every
/// container has (as runc's defaults).
fn default_device_rules() -> Result<Vec<LinuxDeviceCgroup>> {
    let rule = |typ: Option<LinuxDeviceType>,
                major: Option<i64>,
                minor: Option<i64>,
                allow: bool,
                access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .access(access);
        if let Some(t) = typ {
            b = b.typ(t);
        }
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().map_err(oci("device rule"))
    };
    let c = Some(LinuxDeviceType::C);
    Ok(vec![
        rule(None, None, None, false, "rwm")?,
        rule(c, None, None, true, "m")?,
        rule(Some(LinuxDeviceType::B), None, None, true, "m")?,
        rule(c, Some(1), Some(3), true, "rwm")?,
        rule(c, Some(1), Some(8), true, "rwm")?,
        rule(c, Some(1), Some(7), true, "rwm")?,
        rule(c, Some(5), Some(0), true, "rwm")?,
        rule(c, Some(1), Some(5), true, "rwm")?,
        rule(c, Some(1), Some(9), true, "rwm")?,
        rule(c, Some(5), Some(1), true, "rwm")?,
        rule(c, Some(136), None, true, "rwm")?,
        rule(c, Some(5), Some(2), true, "rwm")?,
        rule(c, Some(10), Some(200), true, "rwm")?,
    ])
}

fn caps_set(names: &[String]) -> Result<HashSet<Capability>> {
    names
        .iter()
        .map(|n| {
            serde_json::from_value::<Capability>(serde_json::Value::String(n.clone()))
                .map_err(|_| Error::Invalid(format!("unknown capability {n:?}")))
        })
        .collect()
}

/// The capabilities a container gets: the defaults (every capability this host has
/// when privileged) with the security context's additions and drops, "ALL" allowed.
pub fn capabilities(privileged: bool, caps: Option<&cri::Capability>) -> Result<Vec<String>> {
    let (add, drop) = caps
        .map(|c| (c.add_capabilities.clone(), c.drop_capabilities.clone()))
        .unwrap_or_default();
    let mut list = engine_spec::capabilities(privileged, &add, &drop)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    // Only what this host can grant: asking for more fails at exec.
    let host = engine_spec::host_caps();
    list.retain(|c| host.contains(c));
    Ok(list)
}

/// The seccomp filter of a container: None for unconfined (the default when the pod
/// names none, as containerd 1.6's) and for privileged containers; the default
/// profile for `RuntimeDefault`, `runtime/default` and `docker/default`; a profile
/// file for `Localhost` and `localhost/PATH`.
pub fn seccomp(
    sc: Option<&cri::LinuxContainerSecurityContext>,
    caps: &[String],
) -> Result<Option<LinuxSeccomp>> {
    let Some(sc) = sc else { return Ok(None) };
    if sc.privileged {
        return Ok(None);
    }
    let profile_text = match &sc.seccomp {
        Some(p) => match cri::security_profile::ProfileType::try_from(p.profile_type) {
            Ok(cri::security_profile::ProfileType::RuntimeDefault) => {
                Some(engine_spec::DEFAULT_SECCOMP.to_string())
            }
            Ok(cri::security_profile::ProfileType::Unconfined) => None,
            Ok(cri::security_profile::ProfileType::Localhost) => Some(read_profile(&p.localhost_ref)?),
            Err(_) => return Err(Error::Invalid(format!("unknown seccomp profile type {}", p.profile_type))),
        },
        // The deprecated field is what kubelets before 1.26 (and critest's checks of
        // it) send; it still has to work.
        #[allow(deprecated)]
        None => match sc.seccomp_profile_path.as_str() {
            "" | "unconfined" => None,
            "runtime/default" | "docker/default" => Some(engine_spec::DEFAULT_SECCOMP.to_string()),
            p => match p.strip_prefix("localhost/") {
                Some(path) => Some(read_profile(path)?),
                None => {
                    return Err(Error::Invalid(format!(
                        "unsupported seccomp profile {p:?}: expected unconfined, runtime/default, docker/default or localhost/PATH"
                    )))
                }
            },
        },
    };
    let Some(text) = profile_text else {
        return Ok(None);
    };
    engine_spec::seccomp_for(&text, caps)
        .map(Some)
        .map_err(|e| Error::Invalid(format!("seccomp profile: {e}")))
}

fn read_profile(path: &str) -> Result<String> {
    if !path.starts_with('/') {
        return Err(Error::Invalid(format!(
            "seccomp profile path {path:?} is not absolute"
        )));
    }
    std::fs::read_to_string(path)
        .map_err(|e| Error::Invalid(format!("reading seccomp profile {path}: {e}")))
}

/// The OCI resources for a container's CRI resources.
pub fn resources(
    r: Option<&cri::LinuxContainerResources>,
    privileged: bool,
) -> Result<LinuxResources> {
    let mut b = LinuxResourcesBuilder::default();
    if !privileged {
        b = b.devices(default_device_rules()?);
    } else {
        b = b.devices(vec![LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .access("rwm")
            .build()
            .map_err(oci("device rule"))?]);
    }
    if let Some(r) = r {
        let mut cpu = LinuxCpuBuilder::default();
        let mut any_cpu = false;
        if r.cpu_period > 0 {
            cpu = cpu.period(r.cpu_period as u64);
            any_cpu = true;
        }
        if r.cpu_quota > 0 {
            cpu = cpu.quota(r.cpu_quota);
            any_cpu = true;
        }
        if r.cpu_shares > 0 {
            cpu = cpu.shares(r.cpu_shares as u64);
            any_cpu = true;
        }
        if !r.cpuset_cpus.is_empty() {
            cpu = cpu.cpus(r.cpuset_cpus.clone());
            any_cpu = true;
        }
        if !r.cpuset_mems.is_empty() {
            cpu = cpu.mems(r.cpuset_mems.clone());
            any_cpu = true;
        }
        if any_cpu {
            b = b.cpu(cpu.build().map_err(oci("cpu"))?);
        }
        if r.memory_limit_in_bytes > 0 {
            let mut m = LinuxMemoryBuilder::default().limit(r.memory_limit_in_bytes);
            if r.memory_swap_limit_in_bytes > 0 {
                m = m.swap(r.memory_swap_limit_in_bytes);
            }
            b = b.memory(m.build().map_err(oci("memory"))?);
        }
        if !r.hugepage_limits.is_empty() {
            let limits = r
                .hugepage_limits
                .iter()
                .map(|h| {
                    LinuxHugepageLimitBuilder::default()
                        .page_size(h.page_size.clone())
                        .limit(h.limit as i64)
                        .build()
                        .map_err(oci("hugepages"))
                })
                .collect::<Result<Vec<_>>>()?;
            b = b.hugepage_limits(limits);
        }
        if !r.unified.is_empty() {
            b = b.unified(r.unified.clone());
        }
    }
    b.build().map_err(oci("resources"))
}

/// OOM score adjustment, never below `floor` when berthd may not lower scores.
pub fn oom_score(want: i64, floor: Option<i32>) -> i32 {
    let want = want.clamp(-1000, 1000) as i32;
    match floor {
        Some(f) => want.max(f),
        None => want,
    }
}

/// The cgroups path of a pod's pause container or of one of its containers.
pub fn cgroups_path(driver: super::CgroupDriver, parent: &str, id: &str) -> String {
    match driver {
        super::CgroupDriver::Cgroupfs => format!("{}/{id}", parent.trim_end_matches('/')),
        super::CgroupDriver::Systemd => {
            let slice = if parent.is_empty() {
                "system.slice"
            } else {
                parent
            };
            format!("{slice}:cri-berth:{id}")
        }
    }
}

/// What the pause container's spec is made from.
pub struct SandboxInput<'a> {
    /// The sandbox.
    pub sandbox: &'a Sandbox,
    /// Its pod directory (hostname, hosts, resolv.conf).
    pub dir: &'a Path,
    /// OOM score floor (see `Cri::oom_floor`).
    pub oom_floor: Option<i32>,
}

/// The pause container's spec.
pub fn sandbox_spec(i: &SandboxInput<'_>) -> Result<Spec> {
    let c = &i.sandbox.config;
    let nso = sandbox_ns(c);
    let linux_cfg = c.linux.as_ref();
    let sc = linux_cfg.and_then(|l| l.security_context.as_ref());
    let mut namespaces = vec![ns(LinuxNamespaceType::Mount, None)?];
    let host_net = mode(nso, |n| n.network) == cri::NamespaceMode::Node;
    if !host_net {
        namespaces.push(ns(LinuxNamespaceType::Network, i.sandbox.netns.clone())?);
        namespaces.push(ns(LinuxNamespaceType::Uts, None)?);
    }
    if mode(nso, |n| n.ipc) != cri::NamespaceMode::Node {
        namespaces.push(ns(LinuxNamespaceType::Ipc, None)?);
    }
    if mode(nso, |n| n.pid) != cri::NamespaceMode::Node {
        namespaces.push(ns(LinuxNamespaceType::Pid, None)?);
    }
    let caps = caps_set(
        &engine_spec::DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    )?;
    let user = UserBuilder::default()
        .uid(65535u32)
        .gid(65535u32)
        .build()
        .map_err(oci("user"))?;
    let process = ProcessBuilder::default()
        .args(vec!["/pause".to_string()])
        .env(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        ])
        .cwd("/")
        .user(user)
        .no_new_privileges(true)
        .oom_score_adj(oom_score(-998, i.oom_floor))
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(caps.clone())
                .effective(HashSet::new())
                .permitted(HashSet::new())
                .inheritable(HashSet::new())
                .ambient(HashSet::new())
                .build()
                .map_err(oci("capabilities"))?,
        )
        .build()
        .map_err(oci("process"))?;
    let mut mounts = default_mounts(false)?;
    if i.sandbox.own_shm {
        mounts.push(mount(
            "/dev/shm",
            "bind",
            &i.dir.join("shm").display().to_string(),
            &["rbind", "ro"],
        )?);
    }
    let sysctls: HashMap<String, String> = linux_cfg.map(|l| l.sysctls.clone()).unwrap_or_default();
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(&i.sandbox.cgroups_path))
        .resources(resources(None, false)?)
        .masked_paths(engine_masked())
        .readonly_paths(engine_readonly());
    if !sysctls.is_empty() {
        linux = linux.sysctl(sysctls);
    }
    let _ = sc;
    let spec = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(true)
                .build()
                .map_err(oci("root"))?,
        )
        .process(process)
        .mounts(mounts)
        .linux(linux.build().map_err(oci("linux"))?);
    let mut spec = spec.build().map_err(oci("spec"))?;
    // oci-spec's defaults name a hostname ("youki"): only a UTS namespace of its own
    // may have one.
    spec.set_hostname((!host_net).then(|| pod_hostname(c)));
    Ok(spec)
}

/// The hostname of a pod: its config's, else the host's (host network).
pub fn pod_hostname(c: &cri::PodSandboxConfig) -> String {
    if !c.hostname.is_empty() {
        return c.hostname.clone();
    }
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

fn engine_masked() -> Vec<String> {
    [
        "/proc/acpi",
        "/proc/asound",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn engine_readonly() -> Vec<String> {
    [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The image settings a container's spec takes.
#[derive(Debug, Default, Clone)]
pub struct ImageSettings {
    /// Entrypoint.
    pub entrypoint: Vec<String>,
    /// Cmd.
    pub cmd: Vec<String>,
    /// Env (`K=V`).
    pub env: Vec<String>,
    /// WorkingDir.
    pub working_dir: String,
    /// User.
    pub user: String,
    /// StopSignal.
    pub stop_signal: String,
}

/// What a container's spec is made from.
pub struct ContainerInput<'a> {
    /// The container's ID.
    pub id: &'a str,
    /// What the kubelet asked for.
    pub config: &'a cri::ContainerConfig,
    /// Its pod.
    pub sandbox: &'a Sandbox,
    /// The pod's directory (hostname, hosts, resolv.conf, shm).
    pub sandbox_dir: &'a Path,
    /// Its image's settings.
    pub image: &'a ImageSettings,
    /// uid, gid, groups.
    pub user: (u32, u32, Vec<u32>),
    /// Its cgroups path.
    pub cgroups_path: &'a str,
    /// OOM score floor.
    pub oom_floor: Option<i32>,
}

/// argv: the kubelet's command and args over the image's entrypoint and cmd.
pub fn process_args(config: &cri::ContainerConfig, image: &ImageSettings) -> Vec<String> {
    let (mut command, mut args) = (config.command.clone(), config.args.clone());
    if command.is_empty() {
        if args.is_empty() {
            args = image.cmd.clone();
        }
        command = image.entrypoint.clone();
    }
    command.extend(args);
    command
}

/// The environment: the image's, then the kubelet's (which wins), and HOSTNAME.
fn environment(
    config: &cri::ContainerConfig,
    image: &ImageSettings,
    hostname: &str,
) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    let mut set = |kv: String| {
        let key = kv.split('=').next().unwrap_or("").to_string();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(kv);
    };
    if !image.env.iter().any(|e| e.starts_with("PATH=")) {
        set("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    set(format!("HOSTNAME={hostname}"));
    for e in &image.env {
        set(e.clone());
    }
    for kv in &config.envs {
        set(format!("{}={}", kv.key, kv.value));
    }
    env
}

/// The host path of a CRI mount: created as a directory when missing (as the kubelet
/// expects of its runtime), symlinks resolved.
pub fn host_path(p: &str) -> Result<PathBuf> {
    if !p.starts_with('/') {
        return Err(Error::Invalid(format!(
            "mount host path {p:?} is not absolute"
        )));
    }
    let path = Path::new(p);
    if std::fs::symlink_metadata(path).is_err() {
        std::fs::create_dir_all(path)
            .map_err(|e| Error::Internal(format!("creating host path {p}: {e}")))?;
    }
    std::fs::canonicalize(path)
        .map_err(|e| Error::Internal(format!("resolving host path {p}: {e}")))
}

/// The container's spec.
pub fn container_spec(i: &ContainerInput<'_>) -> Result<Spec> {
    let c = i.config;
    let lc = c.linux.as_ref();
    let sc = lc.and_then(|l| l.security_context.as_ref());
    let privileged = sc.is_some_and(|s| s.privileged);
    let sb = i.sandbox;
    let sb_nso = sandbox_ns(&sb.config);
    let host_net = mode(sb_nso, |n| n.network) == cri::NamespaceMode::Node;
    let host_ipc = mode(sb_nso, |n| n.ipc) == cri::NamespaceMode::Node;
    let pid_mode = mode(sc.and_then(|s| s.namespace_options.as_ref()), |n| n.pid);
    let proc_ns = |t: &str| PathBuf::from(format!("/proc/{}/ns/{t}", sb.pid));
    let mut namespaces = vec![ns(LinuxNamespaceType::Mount, None)?];
    if !host_net {
        let path = sb.netns.clone().unwrap_or_else(|| proc_ns("net"));
        namespaces.push(ns(LinuxNamespaceType::Network, Some(path))?);
        namespaces.push(ns(LinuxNamespaceType::Uts, Some(proc_ns("uts")))?);
    }
    if !host_ipc {
        namespaces.push(ns(LinuxNamespaceType::Ipc, Some(proc_ns("ipc")))?);
    }
    match pid_mode {
        cri::NamespaceMode::Node => {}
        cri::NamespaceMode::Pod => {
            namespaces.push(ns(LinuxNamespaceType::Pid, Some(proc_ns("pid")))?)
        }
        cri::NamespaceMode::Target => {
            return Err(Error::Unimplemented(
                "PID namespace mode TARGET is not supported".into(),
            ))
        }
        cri::NamespaceMode::Container => namespaces.push(ns(LinuxNamespaceType::Pid, None)?),
    }
    let caps = capabilities(privileged, sc.and_then(|s| s.capabilities.as_ref()))?;
    let cap_set = caps_set(&caps)?;
    let (uid, gid, groups) = i.user.clone();
    // Capabilities are kept by a non-root user only through the ambient set, which
    // the kubelet asks for explicitly; otherwise root's sets, as runc gives them.
    let effective = if uid == 0 {
        cap_set.clone()
    } else {
        HashSet::new()
    };
    let hostname = pod_hostname(&sb.config);
    let cwd = if !c.working_dir.is_empty() {
        c.working_dir.clone()
    } else if !i.image.working_dir.is_empty() {
        i.image.working_dir.clone()
    } else {
        "/".into()
    };
    let args = process_args(c, i.image);
    if args.is_empty() {
        return Err(Error::Invalid(
            "no command specified: neither the container nor its image has one".into(),
        ));
    }
    let oom = lc
        .and_then(|l| l.resources.as_ref())
        .map(|r| r.oom_score_adj)
        .unwrap_or(0);
    let process: Process = ProcessBuilder::default()
        .terminal(c.tty)
        .args(args)
        .env(environment(c, i.image, &hostname))
        .cwd(cwd)
        .user(
            UserBuilder::default()
                .uid(uid)
                .gid(gid)
                .additional_gids(groups)
                .build()
                .map_err(oci("user"))?,
        )
        .no_new_privileges(sc.is_some_and(|s| s.no_new_privs))
        .oom_score_adj(oom_score(oom, i.oom_floor))
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(cap_set.clone())
                .permitted(effective.clone())
                .effective(effective)
                .inheritable(HashSet::new())
                .ambient(HashSet::new())
                .build()
                .map_err(oci("capabilities"))?,
        )
        .build()
        .map_err(oci("process"))?;

    // Mounts: the defaults, the pod's files, then the kubelet's (which replace any
    // default at the same destination), parents before children.
    let readonly_root = sc.is_some_and(|s| s.readonly_rootfs);
    let mut mounts = default_mounts(privileged)?;
    let file_opts: &[&str] = if readonly_root {
        &["rbind", "rprivate", "ro"]
    } else {
        &["rbind", "rprivate", "rw"]
    };
    for (dest, file) in [
        ("/etc/hosts", "hosts"),
        ("/etc/hostname", "hostname"),
        ("/etc/resolv.conf", "resolv.conf"),
    ] {
        mounts.push(mount(
            dest,
            "bind",
            &i.sandbox_dir.join(file).display().to_string(),
            file_opts,
        )?);
    }
    if host_ipc {
        mounts.push(mount(
            "/dev/shm",
            "bind",
            "/dev/shm",
            &["rbind", "rprivate", "rw"],
        )?);
    } else if sb.own_shm {
        mounts.push(mount(
            "/dev/shm",
            "bind",
            &i.sandbox_dir.join("shm").display().to_string(),
            &["rbind", "rprivate", "rw"],
        )?);
    }
    let mut rootfs_propagation: Option<&str> = None;
    let mut user_mounts = Vec::new();
    for m in &c.mounts {
        if m.container_path.is_empty() || !m.container_path.starts_with('/') {
            return Err(Error::Invalid(format!(
                "mount container path {:?} is not absolute",
                m.container_path
            )));
        }
        let dest = berth_fs::clean::clean(&m.container_path);
        let src = host_path(&m.host_path)?;
        let prop = match cri::MountPropagation::try_from(m.propagation)
            .unwrap_or(cri::MountPropagation::PropagationPrivate)
        {
            cri::MountPropagation::PropagationPrivate => "rprivate",
            cri::MountPropagation::PropagationHostToContainer => {
                if rootfs_propagation.is_none() {
                    rootfs_propagation = Some("rslave");
                }
                "rslave"
            }
            cri::MountPropagation::PropagationBidirectional => {
                rootfs_propagation = Some("rshared");
                "rshared"
            }
        };
        let rw = if m.readonly { "ro" } else { "rw" };
        let src = src.display().to_string();
        user_mounts.push(mount(&dest, "bind", &src, &["rbind", prop, rw])?);
    }
    mounts.retain(|d| {
        !user_mounts
            .iter()
            .any(|u| u.destination() == d.destination())
    });
    user_mounts.sort_by_key(|m| m.destination().components().count());
    mounts.extend(user_mounts);

    let mut devices: Vec<LinuxDevice> = Vec::new();
    let mut device_rules = Vec::new();
    for d in &c.devices {
        let (dev, rule) = device(d)?;
        devices.push(dev);
        device_rules.push(rule);
    }
    let mut res = resources(lc.and_then(|l| l.resources.as_ref()), privileged)?;
    if !device_rules.is_empty() && !privileged {
        let mut rules = res.devices().clone().unwrap_or_default();
        rules.extend(device_rules);
        res.set_devices(Some(rules));
    }
    let masked = match sc {
        _ if privileged => Vec::new(),
        Some(s) if !s.masked_paths.is_empty() => s.masked_paths.clone(),
        _ => engine_masked(),
    };
    let readonly = match sc {
        _ if privileged => Vec::new(),
        Some(s) if !s.readonly_paths.is_empty() => s.readonly_paths.clone(),
        _ => engine_readonly(),
    };
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(i.cgroups_path))
        .resources(res)
        .masked_paths(masked)
        .readonly_paths(readonly);
    if !devices.is_empty() {
        linux = linux.devices(devices);
    }
    if let Some(p) = rootfs_propagation {
        linux = linux.rootfs_propagation(p);
    }
    if let Some(s) = seccomp(sc, &caps)? {
        linux = linux.seccomp(s);
    }
    let spec = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(readonly_root)
                .build()
                .map_err(oci("root"))?,
        )
        .process(process)
        .mounts(mounts)
        .linux(linux.build().map_err(oci("linux"))?);
    let mut spec = spec.build().map_err(oci("spec"))?;
    // Containers of a pod with its own network share the pause process's UTS
    // namespace (its hostname); on the host's network they have the host's.
    spec.set_hostname(None);
    Ok(spec)
}

/// A host device for a container, and the cgroup rule allowing it.
fn device(d: &cri::Device) -> Result<(LinuxDevice, LinuxDeviceCgroup)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(&d.host_path)
        .map_err(|e| Error::Invalid(format!("device {}: {e}", d.host_path)))?;
    let ft = meta.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return Err(Error::Invalid(format!("{} is not a device", d.host_path)));
    };
    let rdev = meta.rdev();
    let (major, minor) = (
        nix::sys::stat::major(rdev) as i64,
        nix::sys::stat::minor(rdev) as i64,
    );
    let dest = if d.container_path.is_empty() {
        d.host_path.clone()
    } else {
        d.container_path.clone()
    };
    let perms = if d.permissions.is_empty() {
        "rwm".to_string()
    } else {
        d.permissions.clone()
    };
    if perms.chars().any(|c| !"rwm".contains(c)) {
        return Err(Error::Invalid(format!(
            "invalid device permissions {perms:?}"
        )));
    }
    let dev = LinuxDeviceBuilder::default()
        .path(dest)
        .typ(typ)
        .major(major)
        .minor(minor)
        .file_mode(meta.mode() & 0o777)
        .uid(0u32)
        .gid(0u32)
        .build()
        .map_err(oci("device"))?;
    let rule = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(typ)
        .major(major)
        .minor(minor)
        .access(perms)
        .build()
        .map_err(oci("device rule"))?;
    Ok((dev, rule))
}

/// The image settings from an image config (JSON, as stored).
pub fn image_settings(config: &oci_spec::image::ImageConfiguration) -> ImageSettings {
    let Some(c) = config.config() else {
        return ImageSettings::default();
    };
    ImageSettings {
        entrypoint: c.entrypoint().clone().unwrap_or_default(),
        cmd: c.cmd().clone().unwrap_or_default(),
        env: c.env().clone().unwrap_or_default(),
        working_dir: c.working_dir().clone().unwrap_or_default(),
        user: c.user().clone().unwrap_or_default(),
        stop_signal: c.stop_signal().clone().unwrap_or_default(),
    }
}

/// A signal name or number (`SIGTERM`, `TERM`, `15`) as its number.
pub fn signal_number(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<u32>() {
        return Some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_follow_the_kubelet_rules() {
        let img = ImageSettings {
            entrypoint: vec!["/ep".into()],
            cmd: vec!["c1".into()],
            ..Default::default()
        };
        let mut c = cri::ContainerConfig::default();
        assert_eq!(process_args(&c, &img), vec!["/ep", "c1"]);
        c.args = vec!["a".into()];
        assert_eq!(process_args(&c, &img), vec!["/ep", "a"]);
        c.command = vec!["/cmd".into()];
        assert_eq!(process_args(&c, &img), vec!["/cmd", "a"]);
        c.args.clear();
        assert_eq!(process_args(&c, &img), vec!["/cmd"]);
    }

    #[test]
    #[allow(deprecated)]
    fn seccomp_profiles_by_name() {
        let caps = vec!["CAP_CHOWN".to_string()];
        let sc = |p: &str| cri::LinuxContainerSecurityContext {
            seccomp_profile_path: p.into(),
            ..Default::default()
        };
        assert!(seccomp(Some(&sc("")), &caps).unwrap().is_none());
        assert!(seccomp(Some(&sc("unconfined")), &caps).unwrap().is_none());
        assert!(seccomp(Some(&sc("runtime/default")), &caps)
            .unwrap()
            .is_some());
        assert!(seccomp(Some(&sc("docker/default")), &caps)
            .unwrap()
            .is_some());
        assert!(matches!(
            seccomp(Some(&sc("/x.json")), &caps),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            seccomp(Some(&sc("localhost/nope.json")), &caps),
            Err(Error::Invalid(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.json");
        std::fs::write(&p, r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["sethostname"],"action":"SCMP_ACT_ERRNO"}]}"#).unwrap();
        let s = seccomp(Some(&sc(&format!("localhost/{}", p.display()))), &caps)
            .unwrap()
            .unwrap();
        assert_eq!(s.syscalls().as_ref().unwrap().len(), 1);
        let mut priv_sc = sc("runtime/default");
        priv_sc.privileged = true;
        assert!(seccomp(Some(&priv_sc), &caps).unwrap().is_none());
    }

    #[test]
    fn oom_scores_keep_the_floor() {
        assert_eq!(oom_score(-998, None), -998);
        assert_eq!(oom_score(-998, Some(0)), 0);
        assert_eq!(oom_score(500, Some(0)), 500);
        assert_eq!(oom_score(5000, None), 1000);
    }

    #[test]
    fn signals_by_name() {
        assert_eq!(signal_number("SIGTERM"), Some(15));
        assert_eq!(signal_number("winch"), Some(28));
        assert_eq!(signal_number("9"), Some(9));
        assert_eq!(signal_number("BOGUS"), None);
    }

    #[test]
    fn cgroup_paths_per_driver() {
        assert_eq!(
            cgroups_path(super::super::CgroupDriver::Cgroupfs, "/kubepods/pod1/", "c"),
            "/kubepods/pod1/c"
        );
        assert_eq!(
            cgroups_path(
                super::super::CgroupDriver::Systemd,
                "kubepods-pod1.slice",
                "c"
            ),
            "kubepods-pod1.slice:cri-berth:c"
        );
    }
}
