//! The flags `berth run` and `berth create` share, as docker spells them, and how they
//! become the `/containers/create` body (Config with HostConfig inside). Values are
//! taken as strings and checked here, so that a bad one is reported as docker reports
//! it (naming the flag) with docker's exit code 125 instead of clap's usage error.

use crate::client::{self, Client};
use crate::error::{Error, Result};
use crate::progress;
use futures_util::StreamExt;
use serde_json::{json, Map, Value};
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
    /// Connect a container to a network (none or host).
    #[arg(long, alias = "net")]
    pub network: Option<String>,
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
    Error::Usage(format!(
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
pub fn parse_restart(s: &str) -> Result<Value> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    match (name, count) {
        ("" | "no", None) => Ok(json!({"Name": "no", "MaximumRetryCount": 0})),
        ("always" | "unless-stopped", None) => Ok(json!({"Name": name, "MaximumRetryCount": 0})),
        ("on-failure", None) => Ok(json!({"Name": name, "MaximumRetryCount": 0})),
        ("on-failure", Some(c)) => {
            let n: i64 = c.parse().map_err(|_| {
                invalid(
                    s,
                    "--restart",
                    format!("maximum retry count must be an integer: {c:?}"),
                )
            })?;
            Ok(json!({"Name": name, "MaximumRetryCount": n}))
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
pub fn parse_ulimit(s: &str) -> Result<Value> {
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
    Ok(json!({"Name": name, "Soft": soft, "Hard": hard}))
}

/// A `--mount` CSV (type=,source=,target=,readonly,...) as the API's Mount.
pub fn parse_mount(s: &str) -> Result<Value> {
    let bad = |why: String| invalid(s, "--mount", why);
    let mut m = Map::new();
    let mut kind = "volume".to_string();
    let mut tmpfs = Map::new();
    let mut bind = Map::new();
    let mut vol = Map::new();
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
        match k.as_str() {
            "type" => kind = need()?.to_string(),
            "source" | "src" => {
                m.insert("Source".into(), json!(need()?));
            }
            "target" | "destination" | "dst" => {
                m.insert("Target".into(), json!(need()?));
            }
            "readonly" | "ro" => {
                m.insert("ReadOnly".into(), json!(flag(v)?));
            }
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(need()?));
            }
            "volume-nocopy" => {
                vol.insert("NoCopy".into(), json!(flag(v)?));
            }
            "tmpfs-size" => {
                let n = parse_bytes(need()?).map_err(bad)?;
                tmpfs.insert("SizeBytes".into(), json!(n));
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(need()?, 8)
                    .map_err(|_| bad(format!("invalid value for {k}: {}", v.unwrap_or(""))))?;
                tmpfs.insert("Mode".into(), json!(mode));
            }
            "consistency" => {}
            other => return Err(bad(format!("unexpected key '{other}' in '{field}'"))),
        }
    }
    if !["bind", "volume", "tmpfs"].contains(&kind.as_str()) {
        return Err(bad(format!(
            "invalid mount type {kind:?}: berthd supports bind, volume and tmpfs"
        )));
    }
    if !m.contains_key("Target") {
        return Err(bad("target is required".into()));
    }
    if kind == "bind" {
        let src = m.get("Source").and_then(Value::as_str).unwrap_or("");
        if src.is_empty() {
            return Err(bad("source is required when specifying bind mounts".into()));
        }
        // The daemon resolves paths on its side: a relative source means ours.
        let abs = absolute(src)?;
        m.insert("Source".into(), json!(abs));
    }
    if kind == "tmpfs" && m.contains_key("Source") {
        return Err(bad("source is not supported for tmpfs mounts".into()));
    }
    m.insert("Type".into(), json!(kind));
    if !tmpfs.is_empty() {
        m.insert("TmpfsOptions".into(), Value::Object(tmpfs));
    }
    if !bind.is_empty() {
        m.insert("BindOptions".into(), Value::Object(bind));
    }
    if !vol.is_empty() {
        m.insert("VolumeOptions".into(), Value::Object(vol));
    }
    Ok(Value::Object(m))
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
fn volumes(list: &[String]) -> Result<(Vec<String>, Map<String, Value>)> {
    let mut binds = Vec::new();
    let mut anon = Map::new();
    for v in list {
        let parts: Vec<&str> = v.split(':').collect();
        match parts.as_slice() {
            [dst] if dst.starts_with('/') => {
                anon.insert(dst.to_string(), json!({}));
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
                        if !["ro", "rw", "z", "Z", "shared", "rshared", "slave", "rslave", "private", "rprivate", "nocopy"]
                            .contains(&o)
                        {
                            return Err(Error::Usage(format!(
                                "invalid argument \"{v}\" for \"-v, --volume\" flag: invalid mode: {o}"
                            )));
                        }
                    }
                    spec.push(':');
                    spec.push_str(mode);
                }
                binds.push(spec);
            }
            _ => {
                return Err(Error::Usage(format!(
                    "invalid argument \"{v}\" for \"-v, --volume\" flag: invalid volume specification: '{v}'"
                )))
            }
        }
    }
    Ok((binds, anon))
}

/// `--expose` values (80, 80/udp, 8000-8010) as Config.ExposedPorts keys.
fn exposed(list: &[String]) -> Result<Map<String, Value>> {
    let mut out = Map::new();
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
            out.insert(format!("{p}/{proto}"), json!({}));
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
    ) -> Result<Value> {
        let mut config = Map::new();
        let mut hc = Map::new();
        config.insert("Image".into(), json!(image));
        if !cmd.is_empty() {
            config.insert("Cmd".into(), json!(cmd));
        }
        if let Some(ep) = &self.entrypoint {
            // An empty --entrypoint clears the image's, as [""] tells the daemon.
            config.insert("Entrypoint".into(), json!([ep]));
        }
        config.insert("Tty".into(), json!(self.tty));
        config.insert("OpenStdin".into(), json!(self.interactive));
        config.insert("AttachStdin".into(), json!(attached.stdin));
        config.insert("AttachStdout".into(), json!(attached.stdout));
        config.insert("AttachStderr".into(), json!(attached.stderr));
        // Docker closes the container's stdin when the attached client's ends.
        config.insert(
            "StdinOnce".into(),
            json!(self.interactive && attached.stdin && !detach),
        );
        let env = env_list(&self.env, &self.env_file)?;
        if !env.is_empty() {
            config.insert("Env".into(), json!(env));
        }
        for (k, v) in [
            ("WorkingDir", &self.workdir),
            ("User", &self.user),
            ("Hostname", &self.hostname),
            ("Domainname", &self.domainname),
            ("StopSignal", &self.stop_signal),
        ] {
            if let Some(v) = v {
                config.insert(k.into(), json!(v));
            }
        }
        if let Some(w) = &self.workdir {
            if !w.starts_with('/') {
                return Err(Error::Usage(format!(
                    "the working directory '{w}' is invalid, it needs to be an absolute path"
                )));
            }
        }
        if let Some(t) = &self.stop_timeout {
            let n: i64 = t.parse().map_err(|_| {
                invalid(
                    t,
                    "--stop-timeout",
                    "strconv.ParseInt: parsing: invalid syntax",
                )
            })?;
            config.insert("StopTimeout".into(), json!(n));
        }
        let mut labels = Map::new();
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
            labels.insert(k.to_string(), json!(v));
        }
        if !labels.is_empty() {
            config.insert("Labels".into(), Value::Object(labels));
        }
        let ports = exposed(&self.expose)?;
        if !ports.is_empty() {
            config.insert("ExposedPorts".into(), Value::Object(ports));
        }
        if let Some(hcheck) = self.healthcheck()? {
            config.insert("Healthcheck".into(), hcheck);
        }
        // Mounts.
        let (binds, anon) = volumes(&self.volume)?;
        if !binds.is_empty() {
            hc.insert("Binds".into(), json!(binds));
        }
        if !anon.is_empty() {
            config.insert("Volumes".into(), Value::Object(anon));
        }
        let mounts = self
            .mount
            .iter()
            .map(|m| parse_mount(m))
            .collect::<Result<Vec<_>>>()?;
        if !mounts.is_empty() {
            hc.insert("Mounts".into(), json!(mounts));
        }
        let mut tmpfs = Map::new();
        for t in &self.tmpfs {
            let (path, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
            if !path.starts_with('/') {
                return Err(invalid(
                    t,
                    "--tmpfs",
                    "invalid mount path: must be absolute",
                ));
            }
            tmpfs.insert(path.to_string(), json!(opts));
        }
        if !tmpfs.is_empty() {
            hc.insert("Tmpfs".into(), Value::Object(tmpfs));
        }
        // Resources.
        let bytes = |v: &Option<String>, flag: &str| -> Result<Option<i64>> {
            v.as_deref()
                .map(|s| parse_bytes(s).map_err(|why| invalid(s, flag, why)))
                .transpose()
        };
        let memory = bytes(&self.memory, "-m, --memory")?;
        if let Some(m) = memory {
            hc.insert("Memory".into(), json!(m));
        }
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
            hc.insert("MemorySwap".into(), json!(v));
        }
        if let Some(r) = bytes(&self.memory_reservation, "--memory-reservation")? {
            hc.insert("MemoryReservation".into(), json!(r));
        }
        if let Some(s) = bytes(&self.shm_size, "--shm-size")? {
            hc.insert("ShmSize".into(), json!(s));
        }
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
            hc.insert("NanoCpus".into(), json!((n * 1e9).round() as i64));
        }
        if let Some(c) = &self.cpu_shares {
            let n: i64 = c.parse().map_err(|_| {
                invalid(
                    c,
                    "-c, --cpu-shares",
                    "strconv.ParseInt: parsing: invalid syntax",
                )
            })?;
            hc.insert("CpuShares".into(), json!(n));
        }
        if let Some(c) = &self.cpuset_cpus {
            hc.insert("CpusetCpus".into(), json!(c));
        }
        if let Some(p) = &self.pids_limit {
            let n: i64 = p.parse().map_err(|_| {
                invalid(
                    p,
                    "--pids-limit",
                    "strconv.ParseInt: parsing: invalid syntax",
                )
            })?;
            hc.insert("PidsLimit".into(), json!(n));
        }
        let ulimits = self
            .ulimit
            .iter()
            .map(|u| parse_ulimit(u))
            .collect::<Result<Vec<_>>>()?;
        if !ulimits.is_empty() {
            hc.insert("Ulimits".into(), json!(ulimits));
        }
        // Security.
        hc.insert("ReadonlyRootfs".into(), json!(self.read_only));
        hc.insert("Privileged".into(), json!(self.privileged));
        if !self.cap_add.is_empty() {
            hc.insert("CapAdd".into(), json!(self.cap_add));
        }
        if !self.cap_drop.is_empty() {
            hc.insert("CapDrop".into(), json!(self.cap_drop));
        }
        let sec = security_opts(&self.security_opt)?;
        if !sec.is_empty() {
            hc.insert("SecurityOpt".into(), json!(sec));
        }
        // Lifecycle.
        if let Some(r) = &self.restart {
            let policy = parse_restart(r)?;
            if self.rm && policy["Name"] != "no" {
                return Err(Error::Usage(
                    "Conflicting options: --restart and --rm".into(),
                ));
            }
            hc.insert("RestartPolicy".into(), policy);
        }
        hc.insert("AutoRemove".into(), json!(self.rm));
        // What docker's CLI sends when no --network is given; berthd answers for it.
        hc.insert(
            "NetworkMode".into(),
            json!(self.network.as_deref().unwrap_or("default")),
        );
        if self.log_driver.is_some() || !self.log_opt.is_empty() {
            let mut opts = BTreeMap::new();
            for o in &self.log_opt {
                let (k, v) = o
                    .split_once('=')
                    .ok_or_else(|| invalid(o, "--log-opt", "invalid key-value format"))?;
                opts.insert(k.to_string(), v.to_string());
            }
            hc.insert(
                "LogConfig".into(),
                json!({"Type": self.log_driver.as_deref().unwrap_or(""), "Config": opts}),
            );
        }
        config.insert("HostConfig".into(), Value::Object(hc));
        Ok(Value::Object(config))
    }

    /// Config.Healthcheck from the --health-* flags (durations in nanoseconds).
    fn healthcheck(&self) -> Result<Option<Value>> {
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
            return Ok(Some(json!({"Test": ["NONE"]})));
        }
        if !any {
            return Ok(None);
        }
        let mut h = Map::new();
        if let Some(c) = &self.health_cmd {
            h.insert("Test".into(), json!(["CMD-SHELL", c]));
        }
        for (key, flag, v) in [
            ("Interval", "--health-interval", &self.health_interval),
            ("Timeout", "--health-timeout", &self.health_timeout),
            (
                "StartPeriod",
                "--health-start-period",
                &self.health_start_period,
            ),
            (
                "StartInterval",
                "--health-start-interval",
                &self.health_start_interval,
            ),
        ] {
            if let Some(v) = v {
                let ns = berth_api::duration::parse(v)
                    .map_err(|why| invalid(v, flag, why.to_string()))?;
                if ns < 0 {
                    return Err(Error::Usage(format!("{flag} cannot be negative")));
                }
                h.insert(key.into(), json!(ns));
            }
        }
        if let Some(r) = &self.health_retries {
            let n: i64 = r.parse().map_err(|_| {
                invalid(
                    r,
                    "--health-retries",
                    "strconv.ParseInt: parsing: invalid syntax",
                )
            })?;
            if n < 0 {
                return Err(Error::Usage("--health-retries cannot be negative".into()));
            }
            h.insert("Retries".into(), json!(n));
        }
        Ok(Some(Value::Object(h)))
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
pub async fn pull(client: &Client, image: &str, quiet: bool) -> Result<()> {
    use std::io::IsTerminal;
    let (from, tag) = split_reference(image);
    let mut q = vec![("fromImage", from.clone())];
    if !tag.is_empty() {
        q.push(("tag", tag));
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
    body: &Value,
) -> Result<String> {
    let path = match &opts.name {
        Some(n) => format!("/containers/create{}", client::query(&[("name", n)])),
        None => "/containers/create".to_string(),
    };
    match opts.pull.as_str() {
        "always" => pull(client, image, opts.quiet).await?,
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
    for w in created["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str().filter(|w| !w.is_empty()) {
            eprintln!("WARNING: {w}");
        }
    }
    let id = created["Id"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| Error::BadResponse(format!("no Id in {created}")))?;
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
    body: &Value,
) -> Result<Value> {
    let created: Value = match client.post_json(path, Some(body)).await {
        Err(Error::Api {
            status: 404,
            message,
        }) if opts.pull == "missing" && message.starts_with("No such image") => {
            eprintln!("Unable to find image '{}' locally", tagged(image));
            pull(client, image, opts.quiet).await?;
            client.post_json(path, Some(body)).await?
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
            parse_restart("on-failure:3").ok(),
            Some(json!({"Name": "on-failure", "MaximumRetryCount": 3}))
        );
        assert!(parse_restart("always:2").is_err());
        assert!(parse_restart("sometimes").is_err());
        assert_eq!(
            parse_ulimit("nofile=100:200").ok(),
            Some(json!({"Name": "nofile", "Soft": 100, "Hard": 200}))
        );
        assert!(parse_ulimit("nofile=200:100").is_err());
        assert!(parse_ulimit("bogus=1").is_err());
        assert_eq!(
            parse_mount("type=tmpfs,target=/t,tmpfs-size=1m").ok(),
            Some(json!({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20}}))
        );
        assert_eq!(
            parse_mount("type=volume,source=v,target=/d,readonly").ok(),
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
}
