//! The flags `berth run` and `berth create` share, as docker spells them, and how they
//! become the `/containers/create` body: the Engine API's typed
//! `ContainerCreateRequest` (berth-api), the same types berthd decodes, so a field
//! cannot be misspelt on either side. Values are taken as strings and checked here, so
//! that a bad one is reported as docker reports it (`invalid argument "x" for "-m,
//! --memory" flag: ...`, with the usage and exit 125).

use crate::client::{self, Client};
use crate::error::{Error, Result};
use crate::progress;
use berth_api::container::{
    Config, ContainerCreateRequest, CreateResponse, DeviceMapping, Empty, HealthConfig, HostConfig,
    LogConfig, PortBinding, PortMap, RestartPolicy, Ulimit,
};
use berth_api::mount::{BindOptions, Driver, Mount, TmpfsOptions, VolumeOptions};
use berth_api::network::{EndpointIpamConfig, EndpointSettings, NetworkingConfig};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::path::Path;

/// Flags shared by `run` and `create`. `-h` is `--hostname` here, as in docker, so the
/// commands that flatten this disable clap's `-h` help and keep `--help`.
#[derive(Debug, clap::Args)]
pub struct ContainerOptions {
    /// Attach to STDIN, STDOUT or STDERR.
    #[arg(short = 'a', long = "attach", value_name = "STREAM")]
    pub attach: Vec<String>,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Automatically remove the container and its anonymous volumes when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Container NIS domain name.
    #[arg(long)]
    pub domainname: Option<String>,
    /// Bind mount a volume (host-path:ctr-path[:ro], name:ctr-path, or ctr-path).
    #[arg(short = 'v', long = "volume", value_name = "VOLUME")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount (type=bind|volume|tmpfs,source=,target=,readonly).
    #[arg(long = "mount", value_name = "MOUNT")]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory (path[:options]).
    #[arg(long = "tmpfs", value_name = "PATH")]
    pub tmpfs: Vec<String>,
    /// Memory limit (bytes, or with a k, m or g suffix).
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap.
    #[arg(long = "memory-swap", allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Number of CPUs.
    #[arg(long, allow_negative_numbers = true)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares", allow_negative_numbers = true)]
    pub cpu_shares: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<String>,
    /// Ulimit options (name=soft[:hard]).
    #[arg(long = "ulimit", value_name = "ULIMIT")]
    pub ulimit: Vec<String>,
    /// Size of /dev/shm.
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Add Linux capabilities.
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Security Options (seccomp=unconfined|PROFILE.json, no-new-privileges, ...).
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Restart policy to apply when a container exits (no, always, on-failure[:N],
    /// unless-stopped).
    #[arg(long)]
    pub restart: Option<String>,
    /// Connect a container to a network (bridge, a user-defined one, none, host,
    /// container:NAME).
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Publish a container's port(s) to the host (`[ip:][hostPort:]containerPort[/proto]`).
    #[arg(short = 'p', long = "publish", value_name = "PORT")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Add network-scoped alias for the container.
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104).
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33).
    #[arg(long)]
    pub ip6: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33).
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Set custom DNS servers.
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains.
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options.
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set meta data on a container.
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels.
    #[arg(long = "label-file", value_name = "FILE")]
    pub label_file: Vec<String>,
    /// Signal to stop the container.
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long = "stop-timeout", allow_negative_numbers = true)]
    pub stop_timeout: Option<String>,
    /// Expose a port or a range of ports.
    #[arg(long = "expose", value_name = "PORT")]
    pub expose: Vec<String>,
    /// Command to run to check health.
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h).
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h).
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long = "health-retries", allow_negative_numbers = true)]
    pub health_retries: Option<String>,
    /// Start period for the container to initialize before starting health-retries
    /// countdown (ms|s|m|h).
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h).
    #[arg(long = "health-start-interval")]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Logging driver for the container.
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Log driver options.
    #[arg(long = "log-opt", value_name = "OPT")]
    pub log_opt: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub init: bool,
    /// Add a host device to the container (`/dev/x[:/dev/y][:rwm]`).
    #[arg(long = "device", value_name = "DEVICE")]
    pub device: Vec<String>,
    /// Mount volumes from the specified container(s) (`NAME[:ro|rw]`).
    #[arg(long = "volumes-from", value_name = "CONTAINER")]
    pub volumes_from: Vec<String>,
    /// PID namespace to use (`host`, `container:NAME`).
    #[arg(long = "pid")]
    pub pid: Option<String>,
    /// IPC mode to use (`none`, `private`, `shareable`, `host`, `container:NAME`).
    #[arg(long = "ipc")]
    pub ipc: Option<String>,
    /// UTS namespace to use (`host`).
    #[arg(long = "uts")]
    pub uts: Option<String>,
    /// User namespace to use (`host`).
    #[arg(long = "userns")]
    pub userns: Option<String>,
    /// Cgroup namespace to use (`host`, `private`).
    #[arg(long = "cgroupns")]
    pub cgroupns: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period (µs).
    #[arg(long = "cpu-period", allow_negative_numbers = true)]
    pub cpu_period: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota (µs).
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    pub cpu_quota: Option<String>,
    /// Limit CPU real-time period in microseconds.
    #[arg(long = "cpu-rt-period", allow_negative_numbers = true)]
    pub cpu_rt_period: Option<String>,
    /// Limit CPU real-time runtime in microseconds.
    #[arg(long = "cpu-rt-runtime", allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Disable OOM Killer.
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000).
    #[arg(long = "oom-score-adj", allow_negative_numbers = true)]
    pub oom_score_adj: Option<String>,
    /// Tune container memory swappiness (0 to 100).
    #[arg(long = "memory-swappiness", allow_negative_numbers = true)]
    pub memory_swappiness: Option<String>,
    /// Add additional groups to join.
    #[arg(long = "group-add", value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// Sysctl options (`net.ipv4.ip_forward=1`).
    #[arg(long = "sysctl", value_name = "KEY=VALUE")]
    pub sysctl: Vec<String>,
    /// Runtime to use for this container.
    #[arg(long)]
    pub runtime: Option<String>,
    /// Optional parent cgroup for the container.
    #[arg(long = "cgroup-parent")]
    pub cgroup_parent: Option<String>,
    /// Set platform if server is multi-platform capable (`linux/amd64`).
    #[arg(long)]
    pub platform: Option<String>,
    /// Pull image before running ("always", "missing", "never").
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Write the container ID to the file.
    #[arg(long)]
    pub cidfile: Option<String>,
    /// Suppress the pull output.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Print usage.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

/// A flag's value docker would refuse: `invalid argument "V" for "FLAG" flag: WHY`.
fn invalid(value: &str, flag: &str, why: impl std::fmt::Display) -> Error {
    Error::Flag(format!(
        "invalid argument \"{value}\" for \"{flag}\" flag: {why}"
    ))
}

/// Bytes as docker's `RAMInBytes` reads them: a number with an optional binary unit
/// (b, k, m, g, t, p; an optional trailing "b" or "ib"), case-insensitive.
pub fn parse_bytes(s: &str) -> std::result::Result<i64, String> {
    let bad = || format!("invalid size: '{s}'");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    let v = n * mult;
    if !v.is_finite() || v > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(v as i64)
}

/// `KEY=value` lines of an env or label file: blank lines and `#` comments skipped, a
/// bare `KEY` of an env file taken from our own environment (dropped if unset).
pub fn read_kv_file(path: &str, from_env: bool) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {path}"), e))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.contains('=') || !from_env {
            out.push(line.to_string());
        } else if let Ok(v) = std::env::var(line.trim_end()) {
            out.push(format!("{}={v}", line.trim_end()));
        }
    }
    Ok(out)
}

/// `-e` values: a bare `KEY` takes our own value (dropped if unset), as docker does.
pub fn env_list(env: &[String], files: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        out.extend(read_kv_file(f, true)?);
    }
    for e in env {
        if e.contains('=') {
            out.push(e.clone());
        } else if e.is_empty() {
            return Err(invalid(e, "-e, --env", "variable name is empty"));
        } else if let Ok(v) = std::env::var(e) {
            out.push(format!("{e}={v}"));
        }
    }
    Ok(out)
}

/// A `--restart` value as the API's RestartPolicy.
pub fn parse_restart(s: &str) -> Result<RestartPolicy> {
    let policy = |name: &str, n: i64| RestartPolicy {
        name: name.to_string(),
        maximum_retry_count: n,
    };
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    match (name, count) {
        ("" | "no", None) => Ok(policy("no", 0)),
        ("always" | "unless-stopped" | "on-failure", None) => Ok(policy(name, 0)),
        ("on-failure", Some(c)) => {
            let n: i64 = c.parse().map_err(|_| {
                invalid(
                    s,
                    "--restart",
                    format!("maximum retry count must be an integer: {c:?}"),
                )
            })?;
            Ok(policy(name, n))
        }
        ("always" | "unless-stopped" | "no", Some(_)) => Err(invalid(
            s,
            "--restart",
            format!("maximum retry count cannot be used with restart policy '{name}'"),
        )),
        _ => Err(invalid(
            s,
            "--restart",
            format!("invalid restart policy '{name}'"),
        )),
    }
}

/// A `--ulimit name=soft[:hard]` as the API's Ulimit.
pub fn parse_ulimit(s: &str) -> Result<Ulimit> {
    let bad = |why: &str| invalid(s, "--ulimit", why);
    let (name, vals) = s
        .split_once('=')
        .ok_or_else(|| bad("invalid ulimit argument"))?;
    const NAMES: [&str; 16] = [
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
        "as",
    ];
    if !NAMES.contains(&name) {
        return Err(bad(&format!("invalid ulimit type: {name}")));
    }
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (a, b),
        None => (vals, vals),
    };
    let num = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| bad(&format!("invalid ulimit value: {v:?}")))
    };
    let (soft, hard) = (num(soft)?, num(hard)?);
    if soft > hard {
        return Err(bad(&format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// A `--mount` CSV (type=,source=,target=,readonly,volume-opt=,...) as the API's Mount.
pub fn parse_mount(s: &str) -> Result<Mount> {
    let bad = |why: String| invalid(s, "--mount", why);
    let mut m = Mount {
        kind: "volume".into(),
        ..Default::default()
    };
    let mut tmpfs = TmpfsOptions::default();
    let mut bind = BindOptions::default();
    let mut vol = VolumeOptions::default();
    let mut driver = Driver::default();
    for field in s.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let flag = |v: Option<&str>| -> Result<bool> {
            match v.map(|x| x.to_ascii_lowercase()) {
                None => Ok(true),
                Some(x) if ["1", "true"].contains(&x.as_str()) => Ok(true),
                Some(x) if ["0", "false"].contains(&x.as_str()) => Ok(false),
                Some(x) => Err(bad(format!("invalid value for {k}: {x}"))),
            }
        };
        let need =
            || v.ok_or_else(|| bad(format!("invalid field '{field}' must be a key=value pair")));
        let pair = |what: &str| -> Result<(String, String)> {
            let kv = need()?;
            let (a, b) = kv.split_once('=').unwrap_or((kv, ""));
            if a.is_empty() {
                return Err(bad(format!("invalid {what} '{kv}'")));
            }
            Ok((a.to_string(), b.to_string()))
        };
        match k.as_str() {
            "type" => m.kind = need()?.to_string(),
            "source" | "src" => m.source = need()?.to_string(),
            "target" | "destination" | "dst" => m.target = need()?.to_string(),
            "readonly" | "ro" => m.read_only = flag(v)?,
            "bind-propagation" => bind.propagation = need()?.to_string(),
            "bind-nonrecursive" => bind.non_recursive = flag(v)?,
            "volume-nocopy" => vol.no_copy = flag(v)?,
            "volume-driver" => driver.name = need()?.to_string(),
            "volume-opt" => {
                let (a, b) = pair("volume-opt")?;
                driver.options.insert(a, b);
            }
            "volume-label" => {
                let (a, b) = pair("volume-label")?;
                vol.labels.insert(a, b);
            }
            "tmpfs-size" => tmpfs.size_bytes = parse_bytes(need()?).map_err(bad)?,
            "tmpfs-mode" => {
                tmpfs.mode = u32::from_str_radix(need()?, 8)
                    .map_err(|_| bad(format!("invalid value for {k}: {}", v.unwrap_or(""))))?;
            }
            "consistency" => m.consistency = need()?.to_string(),
            other => return Err(bad(format!("unexpected key '{other}' in '{field}'"))),
        }
    }
    if !["bind", "volume", "tmpfs"].contains(&m.kind.as_str()) {
        return Err(bad(format!(
            "invalid mount type {:?}: berthd supports bind, volume and tmpfs",
            m.kind
        )));
    }
    if m.target.is_empty() {
        return Err(bad("target is required".into()));
    }
    let has_volume_opts = vol != VolumeOptions::default() || driver != Driver::default();
    if m.kind != "volume" && has_volume_opts {
        return Err(bad(format!(
            "cannot mix 'volume-*' options with mount type '{}'",
            m.kind
        )));
    }
    if m.kind != "bind" && bind != BindOptions::default() {
        return Err(bad(format!(
            "cannot mix 'bind-*' options with mount type '{}'",
            m.kind
        )));
    }
    if m.kind != "tmpfs" && tmpfs != TmpfsOptions::default() {
        return Err(bad(format!(
            "cannot mix 'tmpfs-*' options with mount type '{}'",
            m.kind
        )));
    }
    match m.kind.as_str() {
        "bind" => {
            if m.source.is_empty() {
                return Err(bad("source is required when specifying bind mounts".into()));
            }
            // The daemon resolves paths on its side: a relative source means ours.
            m.source = absolute(&m.source)?;
            if bind != BindOptions::default() {
                m.bind_options = Some(bind);
            }
        }
        "tmpfs" => {
            if !m.source.is_empty() {
                return Err(bad("source is not supported for tmpfs mounts".into()));
            }
            if tmpfs != TmpfsOptions::default() {
                m.tmpfs_options = Some(tmpfs);
            }
        }
        _ => {
            if driver != Driver::default() {
                vol.driver_config = Some(driver);
            }
            if vol != VolumeOptions::default() {
                m.volume_options = Some(vol);
            }
        }
    }
    Ok(m)
}

/// A `--device` (`/dev/x[:/dev/y][:rwm]`) as the API's DeviceMapping, checked as
/// docker's CLI checks it once the command line is parsed (its `validateLinuxPath`:
/// `bad format for path`, `bad mode specified`, `X is not an absolute path`, exit 125
/// without the usage line).
pub fn parse_device(s: &str) -> Result<DeviceMapping> {
    let bad = |why: String| Error::Usage(why);
    // Each of r, w, m at most once.
    let valid_mode = |m: &str| {
        !m.is_empty() && {
            let mut seen = Vec::new();
            m.chars().all(|c| {
                let ok = "rwm".contains(c) && !seen.contains(&c);
                seen.push(c);
                ok
            })
        }
    };
    if s.matches(':').count() > 2 || s.starts_with(':') || s.is_empty() {
        return Err(bad(format!("bad format for path: {s}")));
    }
    let parts: Vec<&str> = s.split(':').collect();
    let (src, dst, perm) = match parts.as_slice() {
        [src] => (*src, *src, "rwm"),
        [src, x] if valid_mode(x) => (*src, *src, *x),
        [src, dst] => (*src, *dst, "rwm"),
        [src, dst, perm] => {
            if !valid_mode(perm) {
                return Err(bad(format!("bad mode specified: {perm}")));
            }
            (*src, *dst, *perm)
        }
        _ => return Err(bad(format!("invalid device specification: {s}"))),
    };
    if !dst.starts_with('/') {
        return Err(bad(format!("{dst} is not an absolute path")));
    }
    Ok(DeviceMapping {
        path_on_host: src.to_string(),
        path_in_container: dst.to_string(),
        cgroup_permissions: perm.to_string(),
    })
}

/// A local path made absolute (against our working directory), as docker's CLI does
/// for relative bind sources.
fn absolute(p: &str) -> Result<String> {
    std::path::absolute(Path::new(p))
        .map(|a| a.display().to_string())
        .map_err(|e| Error::io(format!("resolving {p}"), e))
}

/// `-v` values: bind mounts and named volumes go to HostConfig.Binds, a bare container
/// path (an anonymous volume) to Config.Volumes.
fn volumes(list: &[String]) -> Result<(Vec<String>, BTreeMap<String, Empty>)> {
    let mut binds = Vec::new();
    let mut anon = BTreeMap::new();
    for v in list {
        let parts: Vec<&str> = v.split(':').collect();
        match parts.as_slice() {
            [dst] if dst.starts_with('/') => {
                anon.insert(dst.to_string(), Empty {});
            }
            [src, dst, rest @ ..] if rest.len() <= 1 && dst.starts_with('/') && !src.is_empty() => {
                let src = if src.starts_with('.') || src.starts_with('~') {
                    absolute(src)?
                } else {
                    src.to_string()
                };
                let mut spec = format!("{src}:{dst}");
                if let Some(mode) = rest.first() {
                    for o in mode.split(',') {
                        if ![
                            "ro", "rw", "z", "Z", "shared", "rshared", "slave", "rslave",
                            "private", "rprivate", "nocopy",
                        ]
                        .contains(&o)
                        {
                            return Err(invalid(v, "-v, --volume", format!("invalid mode: {o}")));
                        }
                    }
                    spec.push(':');
                    spec.push_str(mode);
                }
                binds.push(spec);
            }
            _ => {
                return Err(invalid(
                    v,
                    "-v, --volume",
                    format!("invalid volume specification: '{v}'"),
                ))
            }
        }
    }
    Ok((binds, anon))
}

/// `-p` values as docker's CLI reads them (`[ip:][hostPort:]containerPort[/proto]`,
/// ranges on both sides): (PortBindings, the container ports to expose).
pub fn publish(list: &[String]) -> Result<(PortMap, Vec<String>)> {
    let mut bindings = PortMap::new();
    let mut exposed = Vec::new();
    for raw in list {
        let bad = |why: &str| invalid(raw, "-p, --publish", why.to_string());
        let (spec, proto) = raw.rsplit_once('/').unwrap_or((raw.as_str(), "tcp"));
        if !["tcp", "udp", "sctp"].contains(&proto) {
            return Err(bad(&format!("invalid proto: {proto}")));
        }
        let parts: Vec<&str> = spec.split(':').collect();
        let (ip, host, container) = match parts.as_slice() {
            [c] => ("", "", *c),
            [h, c] => ("", *h, *c),
            [ip, h, c] => (*ip, *h, *c),
            _ => return Err(bad("invalid port format")),
        };
        let range = |s: &str, what: &str| -> Result<(u16, u16)> {
            let one = |x: &str| {
                x.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| Error::Usage(format!("invalid {what}: {s}")))
            };
            match s.split_once('-') {
                Some((a, b)) => Ok((one(a)?, one(b)?)),
                None => Ok((one(s)?, one(s)?)),
            }
        };
        let (clo, chi) = range(container, "containerPort")?;
        let host_range = if host.is_empty() {
            None
        } else {
            Some(range(host, "hostPort")?)
        };
        for (i, cp) in (clo..=chi).enumerate() {
            let host_port = match host_range {
                None => String::new(),
                // One container port, a host range: berthd picks one of the range.
                Some((lo, hi)) if clo == chi && lo != hi => format!("{lo}-{hi}"),
                Some((lo, hi)) => {
                    if hi - lo != chi - clo {
                        return Err(Error::Usage(format!(
                            "invalid ranges specified for container and host Ports: {container} and {host}"
                        )));
                    }
                    (lo + i as u16).to_string()
                }
            };
            let key = format!("{cp}/{proto}");
            exposed.push(key.clone());
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: ip.trim_matches(|c| c == '[' || c == ']').to_string(),
                    host_port,
                });
        }
    }
    Ok((bindings, exposed))
}

/// `--expose` values (80, 80/udp, 8000-8010) as Config.ExposedPorts keys.
fn exposed(list: &[String]) -> Result<BTreeMap<String, Empty>> {
    let mut out = BTreeMap::new();
    for e in list {
        let (ports, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        let bad = || {
            invalid(
                e,
                "--expose",
                format!("invalid range format for --expose: {e}"),
            )
        };
        let (lo, hi) = match ports.split_once('-') {
            Some((a, b)) => (a.parse::<u16>(), b.parse::<u16>()),
            None => (ports.parse::<u16>(), ports.parse::<u16>()),
        };
        let (lo, hi) = (lo.map_err(|_| bad())?, hi.map_err(|_| bad())?);
        if lo > hi || !["tcp", "udp", "sctp"].contains(&proto) {
            return Err(bad());
        }
        for p in lo..=hi {
            out.insert(format!("{p}/{proto}"), Empty {});
        }
    }
    Ok(out)
}

/// `--security-opt`: a `seccomp=FILE` profile is read here and sent inline, as docker's
/// CLI does (the daemon cannot read our files).
fn security_opts(list: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for o in list {
        let (k, v) = match o.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (o.as_str(), None),
        };
        match (k, v) {
            ("seccomp", Some(v)) if v != "unconfined" && v != "builtin" => {
                let text = std::fs::read_to_string(v)
                    .map_err(|e| Error::io(format!("opening seccomp profile ({v}) failed"), e))?;
                out.push(format!("seccomp={text}"));
            }
            ("seccomp" | "apparmor" | "label" | "systempaths" | "no-new-privileges", _) => {
                out.push(o.clone())
            }
            _ => {
                return Err(invalid(
                    o,
                    "--security-opt",
                    format!("Invalid --security-opt: {o:?}"),
                ))
            }
        }
    }
    Ok(out)
}

/// Which streams are attached (`-a`, or docker's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attached {
    /// Local stdin goes to the container.
    pub stdin: bool,
    /// The container's stdout is printed.
    pub stdout: bool,
    /// The container's stderr is printed.
    pub stderr: bool,
}

impl ContainerOptions {
    /// The streams attached, as docker decides: `-a` if given, else stdout and stderr
    /// (and stdin with `-i`) unless detached.
    pub fn attached(&self, detach: bool) -> Result<Attached> {
        if detach {
            if !self.attach.is_empty() {
                return Err(Error::Usage("Conflicting options: -a and -d".into()));
            }
            return Ok(Attached {
                stdin: false,
                stdout: false,
                stderr: false,
            });
        }
        if self.attach.is_empty() {
            return Ok(Attached {
                stdin: self.interactive,
                stdout: true,
                stderr: true,
            });
        }
        let mut a = Attached {
            stdin: false,
            stdout: false,
            stderr: false,
        };
        for s in &self.attach {
            match s.to_ascii_lowercase().as_str() {
                "stdin" => a.stdin = true,
                "stdout" => a.stdout = true,
                "stderr" => a.stderr = true,
                _ => {
                    return Err(invalid(
                        s,
                        "-a, --attach",
                        "valid streams are STDIN, STDOUT and STDERR",
                    ))
                }
            }
        }
        Ok(a)
    }

    /// The `/containers/create` body for IMAGE and COMMAND.
    pub fn create_body(
        &self,
        image: &str,
        cmd: &[String],
        attached: Attached,
        detach: bool,
    ) -> Result<ContainerCreateRequest> {
        let int = |v: &Option<String>, flag: &str| -> Result<Option<i64>> {
            v.as_deref()
                .map(|s| crate::args::go_int(s).map_err(|why| invalid(s, flag, why)))
                .transpose()
        };
        let bytes = |v: &Option<String>, flag: &str| -> Result<Option<i64>> {
            v.as_deref()
                .map(|s| parse_bytes(s).map_err(|why| invalid(s, flag, why)))
                .transpose()
        };
        let mut config = Config {
            image: image.to_string(),
            cmd: (!cmd.is_empty()).then(|| cmd.to_vec()),
            // An empty --entrypoint clears the image's, as [""] tells the daemon.
            entrypoint: self.entrypoint.as_ref().map(|ep| vec![ep.clone()]),
            tty: self.tty,
            open_stdin: self.interactive,
            attach_stdin: attached.stdin,
            attach_stdout: attached.stdout,
            attach_stderr: attached.stderr,
            // Docker closes the container's stdin when the attached client's ends.
            stdin_once: self.interactive && attached.stdin && !detach,
            working_dir: self.workdir.clone().unwrap_or_default(),
            user: self.user.clone().unwrap_or_default(),
            hostname: self.hostname.clone().unwrap_or_default(),
            domainname: self.domainname.clone().unwrap_or_default(),
            stop_signal: self.stop_signal.clone().unwrap_or_default(),
            stop_timeout: int(&self.stop_timeout, "--stop-timeout")?,
            healthcheck: self.healthcheck()?,
            ..Default::default()
        };
        let env = env_list(&self.env, &self.env_file)?;
        config.env = (!env.is_empty()).then_some(env);
        config.mac_address = self.mac_address.clone().unwrap_or_default();
        if let Some(w) = &self.workdir {
            if !w.starts_with('/') {
                return Err(Error::Usage(format!(
                    "the working directory '{w}' is invalid, it needs to be an absolute path"
                )));
            }
        }
        let mut labels = BTreeMap::new();
        let mut label_lines = Vec::new();
        for f in &self.label_file {
            label_lines.extend(read_kv_file(f, false)?);
        }
        label_lines.extend(self.label.iter().cloned());
        for l in label_lines {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            if k.is_empty() {
                return Err(invalid(&l, "-l, --label", "label name is empty"));
            }
            labels.insert(k.to_string(), v.to_string());
        }
        config.labels = (!labels.is_empty()).then_some(labels);
        config.exposed_ports = exposed(&self.expose)?;
        let (bindings, published) = publish(&self.publish)?;
        for p in published {
            config.exposed_ports.insert(p, Empty {});
        }

        let mut hc = HostConfig {
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            publish_all_ports: self.publish_all,
            ..Default::default()
        };
        let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        hc.dns = list(&self.dns);
        hc.dns_search = list(&self.dns_search);
        hc.dns_options = list(&self.dns_option);
        hc.extra_hosts = list(&self.add_host);
        // Mounts.
        let (binds, anon) = volumes(&self.volume)?;
        hc.binds = (!binds.is_empty()).then_some(binds);
        config.volumes = (!anon.is_empty()).then_some(anon);
        hc.mounts = self
            .mount
            .iter()
            .map(|m| parse_mount(m))
            .collect::<Result<Vec<_>>>()?;
        for t in &self.tmpfs {
            let (path, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
            if !path.starts_with('/') {
                return Err(invalid(
                    t,
                    "--tmpfs",
                    "invalid mount path: must be absolute",
                ));
            }
            hc.tmpfs.insert(path.to_string(), opts.to_string());
        }
        if !self.volumes_from.is_empty() {
            hc.volumes_from = Some(self.volumes_from.clone());
        }
        // Resources.
        let r = &mut hc.resources;
        let memory = bytes(&self.memory, "-m, --memory")?;
        r.memory = memory.unwrap_or(0);
        if let Some(s) = &self.memory_swap {
            let v = if s == "-1" {
                -1
            } else {
                parse_bytes(s).map_err(|why| invalid(s, "--memory-swap", why))?
            };
            if v > 0 && memory.is_some_and(|m| v < m) {
                return Err(Error::Usage(
                    "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
                ));
            }
            if memory.is_none() && v > 0 {
                return Err(Error::Usage(
                    "You should always set the Memory limit when using Memoryswap limit, see usage"
                        .into(),
                ));
            }
            r.memory_swap = v;
        }
        r.memory_reservation =
            bytes(&self.memory_reservation, "--memory-reservation")?.unwrap_or(0);
        if let Some(c) = &self.cpus {
            let n: f64 = c
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| {
                    invalid(
                        c,
                        "--cpus",
                        format!("failed to parse {c} as a rational number"),
                    )
                })?;
            r.nano_cpus = (n * 1e9).round() as i64;
        }
        r.cpu_shares = int(&self.cpu_shares, "-c, --cpu-shares")?.unwrap_or(0);
        r.cpu_period = int(&self.cpu_period, "--cpu-period")?.unwrap_or(0);
        r.cpu_quota = int(&self.cpu_quota, "--cpu-quota")?.unwrap_or(0);
        r.cpu_realtime_period = int(&self.cpu_rt_period, "--cpu-rt-period")?.unwrap_or(0);
        r.cpu_realtime_runtime = int(&self.cpu_rt_runtime, "--cpu-rt-runtime")?.unwrap_or(0);
        r.cpuset_cpus = self.cpuset_cpus.clone().unwrap_or_default();
        r.cpuset_mems = self.cpuset_mems.clone().unwrap_or_default();
        r.pids_limit = int(&self.pids_limit, "--pids-limit")?;
        r.oom_kill_disable = Some(self.oom_kill_disable);
        if let Some(s) = int(&self.memory_swappiness, "--memory-swappiness")? {
            r.memory_swappiness = Some(s);
        }
        r.cgroup_parent = self.cgroup_parent.clone().unwrap_or_default();
        let ulimits = self
            .ulimit
            .iter()
            .map(|u| parse_ulimit(u))
            .collect::<Result<Vec<_>>>()?;
        r.ulimits = (!ulimits.is_empty()).then_some(ulimits);
        let devices = self
            .device
            .iter()
            .map(|d| parse_device(d))
            .collect::<Result<Vec<_>>>()?;
        r.devices = (!devices.is_empty()).then_some(devices);
        hc.shm_size = bytes(&self.shm_size, "--shm-size")?.unwrap_or(0);
        // Its range is berthd's to check, as dockerd checks it for the docker CLI.
        if let Some(adj) = int(&self.oom_score_adj, "--oom-score-adj")? {
            hc.oom_score_adj = adj;
        }
        // Namespaces, checked as docker's CLI checks them (the IPC mode is the daemon's
        // to refuse, as for docker).
        hc.pid_mode = self.pid.as_deref().unwrap_or("").into();
        if !hc.pid_mode.valid() {
            return Err(Error::Usage("--pid: invalid PID mode".into()));
        }
        hc.ipc_mode = self.ipc.as_deref().unwrap_or("").into();
        hc.uts_mode = self.uts.as_deref().unwrap_or("").into();
        if !hc.uts_mode.valid() {
            return Err(Error::Usage("--uts: invalid UTS mode".into()));
        }
        hc.userns_mode = self.userns.as_deref().unwrap_or("").into();
        if !hc.userns_mode.valid() {
            return Err(Error::Usage("--userns: invalid USER mode".into()));
        }
        hc.cgroupns_mode = self.cgroupns.as_deref().unwrap_or("").into();
        if !hc.cgroupns_mode.valid() {
            return Err(Error::Usage("--cgroupns: invalid CGROUP mode".into()));
        }
        // Security.
        hc.readonly_rootfs = self.read_only;
        hc.privileged = self.privileged;
        hc.cap_add = (!self.cap_add.is_empty()).then(|| self.cap_add.clone());
        hc.cap_drop = (!self.cap_drop.is_empty()).then(|| self.cap_drop.clone());
        let sec = security_opts(&self.security_opt)?;
        hc.security_opt = (!sec.is_empty()).then_some(sec);
        hc.group_add = (!self.group_add.is_empty()).then(|| self.group_add.clone());
        for kv in &self.sysctl {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                invalid(kv, "--sysctl", format!("{kv} is not a valid sysctl value"))
            })?;
            hc.sysctls.insert(k.to_string(), v.to_string());
        }
        hc.runtime = self.runtime.clone().unwrap_or_default();
        // Only when given, as docker's CLI: berthd's default applies otherwise.
        hc.init = self.init.then_some(true);
        // Lifecycle.
        hc.restart_policy = match &self.restart {
            Some(r) => {
                let policy = parse_restart(r)?;
                if self.rm && !policy.is_none() {
                    return Err(Error::Usage(
                        "conflicting options: cannot specify both --restart and --rm".into(),
                    ));
                }
                policy
            }
            None => RestartPolicy {
                name: "no".into(),
                maximum_retry_count: 0,
            },
        };
        hc.auto_remove = self.rm;
        // What docker's CLI sends when no --network is given; berthd answers for it.
        hc.network_mode = self.network.as_deref().unwrap_or("default").into();
        let mode = hc.network_mode.0.as_str();
        if !self.network_alias.is_empty() || self.ip.is_some() || self.ip6.is_some() {
            let builtin = ["default", "bridge", "none", "host"].contains(&mode)
                || mode.starts_with("container:");
            if builtin {
                return Err(Error::Usage(
                    "network-scoped aliases and --ip are supported only for user-defined networks"
                        .into(),
                ));
            }
        }
        let networking_config = (!["default", "none", "host"].contains(&mode)
            && !mode.starts_with("container:"))
        .then(|| {
            let endpoint = EndpointSettings {
                aliases: Some(self.network_alias.clone()),
                ipam_config: (self.ip.is_some() || self.ip6.is_some()).then(|| {
                    EndpointIpamConfig {
                        ipv4_address: self.ip.clone().unwrap_or_default(),
                        ipv6_address: self.ip6.clone().unwrap_or_default(),
                        ..Default::default()
                    }
                }),
                ..Default::default()
            };
            NetworkingConfig {
                endpoints_config: Some(BTreeMap::from([(mode.to_string(), endpoint)])),
            }
        });
        if self.log_driver.is_some() || !self.log_opt.is_empty() {
            let mut opts = BTreeMap::new();
            for o in &self.log_opt {
                let (k, v) = o
                    .split_once('=')
                    .ok_or_else(|| invalid(o, "--log-opt", "invalid key-value format"))?;
                opts.insert(k.to_string(), v.to_string());
            }
            hc.log_config = LogConfig {
                kind: self.log_driver.clone().unwrap_or_default(),
                config: Some(opts),
            };
        }
        Ok(ContainerCreateRequest {
            config,
            host_config: Some(hc),
            networking_config,
        })
    }

    /// Config.Healthcheck from the --health-* flags (durations in nanoseconds).
    fn healthcheck(&self) -> Result<Option<HealthConfig>> {
        let any = self.health_cmd.is_some()
            || self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_retries.is_some()
            || self.health_start_period.is_some()
            || self.health_start_interval.is_some();
        if self.no_healthcheck {
            if any {
                return Err(Error::Usage(
                    "--no-healthcheck conflicts with --health-* options".into(),
                ));
            }
            return Ok(Some(HealthConfig {
                test: vec!["NONE".into()],
                ..Default::default()
            }));
        }
        if !any {
            return Ok(None);
        }
        let mut h = HealthConfig::default();
        if let Some(c) = &self.health_cmd {
            h.test = vec!["CMD-SHELL".into(), c.clone()];
        }
        let duration = |v: &Option<String>, flag: &str| -> Result<i64> {
            let Some(v) = v else { return Ok(0) };
            let ns =
                berth_api::duration::parse(v).map_err(|why| invalid(v, flag, why.to_string()))?;
            if ns < 0 {
                return Err(Error::Usage(format!("{flag} cannot be negative")));
            }
            Ok(ns)
        };
        h.interval = duration(&self.health_interval, "--health-interval")?;
        h.timeout = duration(&self.health_timeout, "--health-timeout")?;
        h.start_period = duration(&self.health_start_period, "--health-start-period")?;
        h.start_interval = duration(&self.health_start_interval, "--health-start-interval")?;
        if let Some(r) = &self.health_retries {
            let n = crate::args::go_int(r).map_err(|why| invalid(r, "--health-retries", why))?;
            if n < 0 {
                return Err(Error::Usage("--health-retries cannot be negative".into()));
            }
            h.retries = n;
        }
        Ok(Some(h))
    }
}

/// An image reference split as `/images/create` wants it: (fromImage, tag), a missing
/// tag being `latest` (a digest reference keeps its digest in fromImage).
pub fn split_reference(image: &str) -> (String, String) {
    if image.contains('@') {
        return (image.to_string(), String::new());
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) => {
            let repo = &image[..image.len() - tag.len() - 1];
            (repo.to_string(), tag.to_string())
        }
        None => (image.to_string(), "latest".to_string()),
    }
}

/// The reference as docker names it in "Unable to find image 'X' locally": with a tag.
pub fn tagged(image: &str) -> String {
    let (repo, tag) = split_reference(image);
    if tag.is_empty() {
        repo
    } else {
        format!("{repo}:{tag}")
    }
}

/// Pulls `image` through berthd (POST /images/create, with any saved login), its
/// progress on stderr as docker's run shows it; an error in the stream fails the pull.
pub async fn pull(client: &Client, image: &str, platform: Option<&str>, quiet: bool) -> Result<()> {
    use std::io::IsTerminal;
    let (from, tag) = split_reference(image);
    let mut q = vec![("fromImage", from.clone())];
    if !tag.is_empty() {
        q.push(("tag", tag));
    }
    if let Some(p) = platform.filter(|p| !p.is_empty()) {
        q.push(("platform", p.to_string()));
    }
    let resp = client
        .post_for_registry(&format!("/images/create{}", client::query(&q)), &from)
        .await?;
    let mode = if quiet {
        progress::Mode::Quiet
    } else if std::io::stderr().is_terminal() {
        progress::Mode::Terminal
    } else {
        progress::Mode::Plain
    };
    let mut r = progress::Renderer::new(mode, std::io::stderr());
    let mut stream = std::pin::pin!(client::json_stream(resp));
    while let Some(msg) = stream.next().await {
        let handled = msg.and_then(|m| r.handle(&m));
        if handled.is_err() {
            r.finish();
            return handled;
        }
    }
    r.finish();
    Ok(())
}

/// Creates the container as docker's run/create do: pulls first with `--pull always`;
/// with `missing` pulls when berthd knows no such image, then creates again. Returns
/// the ID; warnings go to stderr.
pub async fn create_container(
    client: &Client,
    opts: &ContainerOptions,
    image: &str,
    body: &ContainerCreateRequest,
) -> Result<String> {
    let mut q: Vec<(&str, &str)> = Vec::new();
    if let Some(n) = &opts.name {
        q.push(("name", n));
    }
    if let Some(p) = opts.platform.as_deref().filter(|p| !p.is_empty()) {
        q.push(("platform", p));
    }
    let path = format!("/containers/create{}", client::query(&q));
    match opts.pull.as_str() {
        "always" => pull(client, image, opts.platform.as_deref(), opts.quiet).await?,
        "missing" | "never" => {}
        other => {
            return Err(Error::Usage(format!(
            "invalid pull option: '{other}': must be one of \"always\", \"missing\" or \"never\""
        )))
        }
    }
    // As docker: an existing cidfile is refused before anything is created.
    let mut cidfile = match &opts.cidfile {
        Some(f) => Some(
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(f)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists => Error::Usage(format!(
                        "container ID file found, make sure the other container isn't running or delete {f}"
                    )),
                    _ => Error::io(format!("failed to create the container ID file {f}"), e),
                })?,
        ),
        None => None,
    };
    let created = create_or_pull(client, opts, image, &path, body).await;
    let created = match created {
        Ok(c) => c,
        Err(e) => {
            // Nothing was created: no ID file either.
            if let (Some(f), Some(_)) = (&opts.cidfile, cidfile.take()) {
                let _ = std::fs::remove_file(f);
            }
            return Err(e);
        }
    };
    for w in created.warnings.iter().filter(|w| !w.is_empty()) {
        eprintln!("WARNING: {w}");
    }
    let id = created.id;
    if id.is_empty() {
        return Err(Error::BadResponse("no Id in the create answer".into()));
    }
    if let (Some(f), Some(file)) = (&opts.cidfile, cidfile.as_mut()) {
        use std::io::Write;
        file.write_all(id.as_bytes())
            .map_err(|e| Error::io(format!("writing the container ID file {f}"), e))?;
    }
    Ok(id)
}

/// POST /containers/create; with `--pull missing`, a missing image is pulled and the
/// create tried again, as docker does.
async fn create_or_pull(
    client: &Client,
    opts: &ContainerOptions,
    image: &str,
    path: &str,
    body: &ContainerCreateRequest,
) -> Result<CreateResponse> {
    let created: CreateResponse = match client.post_typed(path, body).await {
        Err(Error::Api {
            status: 404,
            message,
        }) if opts.pull == "missing" && message.starts_with("No such image") => {
            eprintln!("Unable to find image '{}' locally", tagged(image));
            pull(client, image, opts.platform.as_deref(), opts.quiet).await?;
            client.post_typed(path, body).await?
        }
        r => r?,
    };
    Ok(created)
}

/// The exit code docker's CLI gives when a container cannot start: 127 when the
/// command is not found, 126 when it cannot be invoked, else 125.
pub fn start_failure_code(message: &str) -> i32 {
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
    {
        127
    } else if message.contains("permission denied") || message.contains("is a directory") {
        126
    } else {
        125
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn wire<T: serde::Serialize>(v: T) -> Value {
        serde_json::to_value(v).expect("serializes")
    }

    /// The flags alone, as `run`/`create` flatten them.
    #[derive(Debug, clap::Parser)]
    #[command(disable_help_flag = true)]
    struct Flags {
        #[command(flatten)]
        o: ContainerOptions,
    }

    fn body(args: &[&str]) -> Result<Value> {
        use clap::Parser;
        let f = Flags::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .map_err(|e| Error::Usage(e.to_string()))?;
        let a = f.o.attached(false)?;
        f.o.create_body("img", &["sh".to_string()], a, false)
            .map(wire)
    }

    #[test]
    fn flags_become_config_and_host_config() {
        let b = body(&[
            "-i",
            "-t",
            "-e",
            "A=1",
            "-h",
            "hn",
            "-u",
            "nobody",
            "-w",
            "/w",
            "-v",
            "/a:/b:ro",
            "-v",
            "vol:/v",
            "-v",
            "/anon",
            "--tmpfs",
            "/t:size=1m",
            "-m",
            "1g",
            "--memory-swap",
            "-1",
            "--cpus",
            "1.5",
            "--pids-limit",
            "10",
            "--ulimit",
            "nofile=5:6",
            "--read-only",
            "--cap-drop",
            "ALL",
            "--privileged",
            "--restart",
            "on-failure:3",
            "--network",
            "none",
            "--entrypoint",
            "",
            "-l",
            "k=v",
            "--expose",
            "80",
            "--stop-timeout",
            "4",
            "--health-cmd",
            "true",
            "--security-opt",
            "no-new-privileges",
        ])
        .unwrap();
        assert_eq!(b["Image"], "img");
        assert_eq!(b["Cmd"], json!(["sh"]));
        assert_eq!(b["Entrypoint"], json!([""]));
        assert_eq!(
            (b["Tty"].clone(), b["OpenStdin"].clone()),
            (json!(true), json!(true))
        );
        assert_eq!(
            (b["AttachStdin"].clone(), b["StdinOnce"].clone()),
            (json!(true), json!(true))
        );
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!(
            (b["Hostname"].clone(), b["User"].clone()),
            (json!("hn"), json!("nobody"))
        );
        assert_eq!(b["WorkingDir"], "/w");
        assert_eq!(b["Volumes"], json!({"/anon": {}}));
        assert_eq!(b["Labels"], json!({"k": "v"}));
        assert_eq!(b["ExposedPorts"], json!({"80/tcp": {}}));
        assert_eq!(b["StopTimeout"], 4);
        assert_eq!(b["Healthcheck"], json!({"Test": ["CMD-SHELL", "true"]}));
        let hc = &b["HostConfig"];
        assert_eq!(hc["Binds"], json!(["/a:/b:ro", "vol:/v"]));
        assert_eq!(hc["Tmpfs"], json!({"/t": "size=1m"}));
        assert_eq!(hc["Memory"], 1i64 << 30);
        assert_eq!(hc["MemorySwap"], -1);
        assert_eq!(hc["NanoCpus"], 1_500_000_000i64);
        assert_eq!(hc["PidsLimit"], 10);
        assert_eq!(
            hc["Ulimits"],
            json!([{"Name": "nofile", "Soft": 5, "Hard": 6}])
        );
        assert_eq!(
            (hc["ReadonlyRootfs"].clone(), hc["Privileged"].clone()),
            (json!(true), json!(true))
        );
        assert_eq!(hc["CapDrop"], json!(["ALL"]));
        assert_eq!(
            hc["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(hc["NetworkMode"], "none");
        assert_eq!(hc["SecurityOpt"], json!(["no-new-privileges"]));
        // No --network: what docker's CLI sends, for berthd to answer.
        assert_eq!(body(&[]).unwrap()["HostConfig"]["NetworkMode"], "default");
    }

    #[test]
    fn bad_values_name_their_flag() {
        for (args, flag) in [
            (&["-m", "x"][..], "\"-m, --memory\""),
            (&["--cpus", "-1"][..], "\"--cpus\""),
            (&["-v", "relative"][..], "\"-v, --volume\""),
            (&["--restart", "always:3"][..], "\"--restart\""),
            (&["--expose", "99999"][..], "\"--expose\""),
            (&["-a", "stdfoo"][..], "\"-a, --attach\""),
        ] {
            let e = body(args).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains(flag), "{args:?}: {e}");
        }
        assert!(body(&["--rm", "--restart", "always"]).is_err());
        assert!(body(&["-w", "relative"]).is_err());
    }

    #[test]
    fn new_flags_reach_the_body() {
        let b = body(&[
            "--init",
            "--device",
            "/dev/null:/dev/n0:r",
            "--device",
            "/dev/zero",
            "--volumes-from",
            "other:ro",
            "--pid",
            "host",
            "--ipc",
            "container:x",
            "--uts",
            "host",
            "--cpu-period",
            "100000",
            "--cpu-quota",
            "50000",
            "--cpuset-mems",
            "0",
            "--oom-kill-disable",
            "--oom-score-adj",
            "-500",
            "--mount",
            "type=volume,target=/d,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-label=a=b",
        ])
        .unwrap();
        let hc = &b["HostConfig"];
        assert_eq!(hc["Init"], true);
        assert_eq!(
            hc["Devices"],
            json!([
                {"PathOnHost": "/dev/null", "PathInContainer": "/dev/n0", "CgroupPermissions": "r"},
                {"PathOnHost": "/dev/zero", "PathInContainer": "/dev/zero", "CgroupPermissions": "rwm"}
            ])
        );
        assert_eq!(hc["VolumesFrom"], json!(["other:ro"]));
        assert_eq!(
            (
                hc["PidMode"].clone(),
                hc["IpcMode"].clone(),
                hc["UTSMode"].clone()
            ),
            (json!("host"), json!("container:x"), json!("host"))
        );
        assert_eq!(
            (hc["CpuPeriod"].clone(), hc["CpuQuota"].clone()),
            (json!(100000), json!(50000))
        );
        assert_eq!(hc["CpusetMems"], "0");
        assert_eq!(
            (hc["OomKillDisable"].clone(), hc["OomScoreAdj"].clone()),
            (json!(true), json!(-500))
        );
        assert_eq!(
            hc["Mounts"][0]["VolumeOptions"],
            json!({"Labels": {"a": "b"}, "DriverConfig": {"Options": {"type": "tmpfs", "device": "tmpfs"}}})
        );
        // Not given: absent, so berthd's defaults apply.
        let plain = body(&[]).unwrap();
        assert!(plain["HostConfig"].get("Init").is_none());
        assert_eq!(plain["HostConfig"]["RestartPolicy"]["Name"], "no");
        for (args, why) in [
            (&["--pid", "bogus"][..], "--pid: invalid PID mode"),
            (&["--uts", "container:x"][..], "--uts: invalid UTS mode"),
            (
                &["--device", "/dev/null:rel"][..],
                "rel is not an absolute path",
            ),
            (
                &["--device", "/dev/null:/dev/x:rwz"][..],
                "bad mode specified: rwz",
            ),
            (
                &["--cpu-quota", "x"][..],
                "strconv.ParseInt: parsing \"x\": invalid syntax",
            ),
            (
                &["--mount", "type=bind,source=/x,target=/y,volume-opt=a=b"][..],
                "cannot mix 'volume-*' options",
            ),
        ] {
            let e = body(args).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains(why), "{args:?}: {e}");
        }
    }

    #[test]
    fn sizes_read_as_docker_reads_them() {
        assert_eq!(parse_bytes("64m"), Ok(64 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_bytes("1GB"), Ok(1 << 30));
        assert_eq!(parse_bytes("512k"), Ok(512 << 10));
        assert_eq!(parse_bytes("100000"), Ok(100_000));
        assert_eq!(parse_bytes("1.5m"), Ok(3 << 19));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("12x").is_err());
        assert!(parse_bytes("").is_err());
    }

    #[test]
    fn restart_ulimit_mount_and_references() {
        assert_eq!(
            parse_restart("on-failure:3").ok().map(wire),
            Some(json!({"Name": "on-failure", "MaximumRetryCount": 3}))
        );
        assert!(parse_restart("always:2").is_err());
        assert!(parse_restart("sometimes").is_err());
        assert_eq!(
            parse_ulimit("nofile=100:200").ok().map(wire),
            Some(json!({"Name": "nofile", "Soft": 100, "Hard": 200}))
        );
        assert!(parse_ulimit("nofile=200:100").is_err());
        assert!(parse_ulimit("bogus=1").is_err());
        assert_eq!(
            parse_mount("type=tmpfs,target=/t,tmpfs-size=1m")
                .ok()
                .map(wire),
            Some(json!({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20}}))
        );
        assert_eq!(
            parse_mount("type=volume,source=v,target=/d,readonly")
                .ok()
                .map(wire),
            Some(json!({"Type": "volume", "Source": "v", "Target": "/d", "ReadOnly": true}))
        );
        assert!(parse_mount("type=bind,target=/x").is_err());
        assert!(parse_mount("type=npipe,target=/x").is_err());
        assert_eq!(
            split_reference("busybox"),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            split_reference("localhost:5000/a/b:1"),
            ("localhost:5000/a/b".into(), "1".into())
        );
        assert_eq!(tagged("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(
            start_failure_code("exec \"x\": executable file not found in $PATH"),
            127
        );
        assert_eq!(start_failure_code("exec: permission denied"), 126);
        assert_eq!(start_failure_code("no such image"), 125);
    }

    #[test]
    fn publish_flags_become_port_bindings_as_docker_sends_them() {
        let (b, exposed) = publish(&[
            "8080:80".into(),
            "127.0.0.1::53/udp".into(),
            "9000-9001:90-91".into(),
            "7000-7010:70".into(),
        ])
        .unwrap();
        let one = |ip: &str, port: &str| {
            Some(vec![PortBinding {
                host_ip: ip.into(),
                host_port: port.into(),
            }])
        };
        assert_eq!(b["80/tcp"], one("", "8080"));
        assert_eq!(b["53/udp"], one("127.0.0.1", ""));
        assert_eq!(b["91/tcp"], one("", "9001"));
        assert_eq!(b["70/tcp"], one("", "7000-7010"));
        assert_eq!(exposed.len(), 5);
        for bad in ["70000:80", "80/icmp", "1:2:3:4", "9000-9002:90-91", "x"] {
            assert!(publish(&[bad.into()]).is_err(), "{bad}");
        }
        let b = body(&["-p", "80", "--network", "appnet", "--network-alias", "web"]).unwrap();
        assert_eq!(
            b["NetworkingConfig"]["EndpointsConfig"]["appnet"]["Aliases"],
            json!(["web"])
        );
        assert_eq!(b["ExposedPorts"]["80/tcp"], json!({}));
        assert!(body(&["--ip", "10.0.0.2"]).is_err());
    }
}
