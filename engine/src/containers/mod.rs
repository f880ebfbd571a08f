//! Containers: records (config and state, one JSON file per container under
//! `<data-root>/containers/ID/`), their root filesystems (an overlay of the image's
//! snapshots with the container's own upper dir, mounted by the shim), their OCI specs,
//! and their life cycle through berth-supervisor: create, start, wait, stop, kill,
//! remove, exec, restart policies. Streams and logs are in `io`.

pub mod archive;
pub mod health;
pub mod io;
pub mod spec;
pub mod stats;
pub mod supervisor;
pub mod volumes;

use crate::images::ImageService;
use crate::snapshots::chain_ids;
use berth_api::detach;
use berth_proto::tonic::{Code, Status};
use berth_proto::v1 as pb;
use io::{Chunk, Fifos};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use supervisor::{Supervisor, NAMESPACE};
use tokio::net::unix::pipe;
use tokio::sync::{broadcast, watch};

/// Errors of container operations, with the status they deserve.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 400.
    #[error("{0}")]
    Invalid(String),
    /// 304 (already started / stopped).
    #[error("{0}")]
    NotModified(String),
    /// 500.
    #[error("{0}")]
    Internal(String),
}

/// Result of container operations.
pub type Result<T> = std::result::Result<T, Error>;

fn internal(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::Internal(format!("{what}: {e}"))
}

fn grpc(what: &str) -> impl FnOnce(Status) -> Error + '_ {
    move |s| match s.code() {
        Code::InvalidArgument => Error::Invalid(format!("{what}: {}", s.message())),
        Code::NotFound => Error::NotFound(format!("{what}: {}", s.message())),
        _ => Error::Internal(format!("{what}: {}", s.message())),
    }
}

/// A container's state, as inspect shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// created, running, exited, removing.
    pub status: String,
    /// Host PID of the init process while it runs.
    pub pid: u32,
    /// Last exit code.
    pub exit_code: i64,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    /// Why the last start failed.
    pub error: String,
    /// Health checks' status and last results, when the container has a check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<health::Health>,
}

/// What is stored of a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// 64 hex digits.
    pub id: String,
    /// Without the leading slash.
    pub name: String,
    /// RFC 3339.
    pub created: String,
    /// The image as asked for.
    pub image: String,
    /// Its ID (`sha256:...`).
    pub image_id: String,
    /// argv[0].
    pub path: String,
    /// The rest of argv.
    pub args: Vec<String>,
    /// The merged Config.
    pub config: Value,
    /// HostConfig as given.
    pub host_config: Value,
    /// State.
    pub state: State,
    /// How many times the restart policy restarted it.
    pub restart_count: u64,
    /// Stopped by a user (unless-stopped does not restart it).
    #[serde(default)]
    pub manual_stop: bool,
    /// The last spec it ran with.
    #[serde(default)]
    pub spec: Value,
    /// Mounts as inspect shows them (binds, volumes, tmpfs); `Anonymous` marks volumes
    /// made for this container.
    #[serde(default)]
    pub mounts: Vec<Value>,
}

/// What waiters watch.
#[derive(Debug, Clone, Default)]
pub struct Gen {
    /// Exits so far.
    pub exits: u64,
    /// Whether it runs.
    pub running: bool,
    /// Removed.
    pub removed: bool,
    /// Last exit code.
    pub exit_code: i64,
}

/// A container known to the daemon.
pub struct Entry {
    /// ID.
    pub id: String,
    /// The record.
    pub rec: Mutex<Record>,
    /// Changes, for waiters.
    pub gen: watch::Sender<Gen>,
    /// Output of the current run, for attached clients.
    pub out: broadcast::Sender<Chunk>,
    /// stdin of the current run (OpenStdin).
    pub stdin: tokio::sync::Mutex<Option<pipe::Sender>>,
    op: tokio::sync::Mutex<()>,
}

impl Entry {
    /// A copy of the record.
    pub fn record(&self) -> Record {
        self.rec.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    fn update<R>(&self, f: impl FnOnce(&mut Record) -> R) -> R {
        f(&mut self.rec.lock().unwrap_or_else(|p| p.into_inner()))
    }
    /// Whether the init process runs.
    pub fn running(&self) -> bool {
        self.gen.borrow().running
    }
}

/// An exec'd process.
pub struct Exec {
    /// Exec ID.
    pub id: String,
    /// Container ID.
    pub container: String,
    /// The exec config (Cmd, Env, Tty, ...).
    pub config: Value,
    /// (running, exit code, pid).
    pub state: Mutex<(bool, Option<i64>, u32)>,
    /// Output for the attached client.
    pub out: broadcast::Sender<Chunk>,
    /// stdin.
    pub stdin: tokio::sync::Mutex<Option<pipe::Sender>>,
    /// Set once it has exited.
    pub done: watch::Sender<bool>,
}

/// The container half of the engine.
pub struct ContainerService {
    images: Arc<ImageService>,
    /// Named volumes.
    pub volumes: volumes::Volumes,
    sv: Supervisor,
    data_root: PathBuf,
    exec_root: PathBuf,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    execs: Mutex<HashMap<String, Arc<Exec>>>,
    /// Container events (Docker's /events messages), live.
    pub events: broadcast::Sender<Value>,
    /// The last events, for `since`.
    pub recent: Mutex<std::collections::VecDeque<Value>>,
    /// Health check loops.
    health: health::Monitors,
    /// The OCI runtimes containers may name (HostConfig.Runtime).
    pub runtimes: crate::config::Runtimes,
    /// Where containers' cgroups go unless their HostConfig.CgroupParent says otherwise.
    cgroup_parent: String,
}

pub(crate) fn random_hex(n: usize) -> String {
    use std::io::Read;
    let mut b = vec![0u8; n];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    hex::encode(b)
}

const ADJECTIVES: &[&str] = &[
    "admiring", "bold", "brave", "busy", "calm", "clever", "cool", "dazzling", "eager", "ecstatic",
    "elegant", "fervent", "festive", "focused", "gallant", "happy", "hopeful", "jolly", "keen",
    "kind", "lucid", "merry", "modest", "nimble", "peaceful", "quirky", "relaxed", "serene",
    "sharp", "tender", "vibrant", "wizardly",
];
const NAMES: &[&str] = &[
    "babbage", "bohr", "boole", "cerf", "curie", "darwin", "dijkstra", "einstein", "euler",
    "faraday", "fermi", "galileo", "gauss", "hamilton", "hopper", "hypatia", "kepler", "knuth",
    "lamport", "liskov", "lovelace", "maxwell", "newton", "noether", "pascal", "ritchie",
    "shannon", "thompson", "turing", "volta", "wozniak", "yalow",
];

/// A docker-style name (`adjective_scientist`) that `taken` does not refuse: each try
/// draws fresh randomness, and after the first collisions a number is added, so even a
/// busy engine finds a free one instead of failing the create.
fn generated_name(taken: impl Fn(&str) -> bool) -> String {
    let mut candidate = String::new();
    for attempt in 0..64 {
        let r = random_hex(4);
        let b = u32::from_str_radix(&r, 16).unwrap_or(attempt) as usize;
        candidate = format!(
            "{}_{}",
            ADJECTIVES[b % ADJECTIVES.len()],
            NAMES[(b >> 8) % NAMES.len()]
        );
        if attempt > 0 {
            candidate += &((b >> 16) % 10_000).to_string();
        }
        if !taken(&candidate) {
            break;
        }
    }
    candidate
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && n.len() >= 2
        && n.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-'))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Writes a file only its owner (root) may read: records hold containers' environments.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}

/// dockerd's refusal of a second mount at the same place.
fn refuse_duplicate(mounts: &[Value], dst: &str) -> Result<()> {
    if mounts.iter().any(|m| m["Destination"] == dst) {
        return Err(Error::Invalid(format!("Duplicate mount point: {dst}")));
    }
    Ok(())
}

fn strs(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// `docker top` with ps arguments, as dockerd does it: the host's `ps ARGS`, its
/// header as the titles, and only the rows of the container's processes (the
/// thread rows after them, with `-` for a PID, too); the last column keeps spaces.
async fn ps_top(args: &str, pids: &[u32]) -> Result<Value> {
    let argv: Vec<String> = args.split_whitespace().map(String::from).collect();
    let out =
        tokio::task::spawn_blocking(move || std::process::Command::new("ps").args(&argv).output())
            .await
            .map_err(|e| Error::Internal(format!("running ps: {e}")))?
            .map_err(|e| Error::Internal(format!("Error running ps: {e}")))?;
    if !out.status.success() {
        return Err(Error::Internal(format!(
            "ps: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(String::from)
        .collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| Error::Internal("Couldn't find PID field in ps output".into()))?;
    let mut rows = Vec::new();
    let mut in_container = false;
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_col) else {
            continue;
        };
        let keep = if *pid == "-" {
            in_container
        } else {
            let p: u32 = pid
                .parse()
                .map_err(|e| Error::Internal(format!("Unexpected pid '{pid}': {e}")))?;
            in_container = pids.contains(&p);
            in_container
        };
        if keep {
            let last = titles.len().saturating_sub(1).min(fields.len());
            let mut row: Vec<String> = fields[..last].iter().map(|f| f.to_string()).collect();
            row.push(fields[last..].join(" "));
            rows.push(row);
        }
    }
    Ok(json!({"Titles": titles, "Processes": rows}))
}

/// Parses a signal name or number ("KILL", "SIGKILL", "9").
pub fn parse_signal(s: &str) -> Option<u32> {
    if let Ok(n) = s.parse::<u32>() {
        return (n > 0 && n < 65).then_some(n);
    }
    let u = s.to_ascii_uppercase();
    let name = if u.starts_with("SIG") {
        u
    } else {
        format!("SIG{u}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32 as u32)
}

/// Longest passwd or group file read from an image (a hostile one could be endless).
const MAX_ACCOUNT_FILE: u64 = 16 << 20;

/// Finds `user` (`name`, `uid`, `name:group`, `uid:gid`) in the passwd and group files
/// of a container's file system, read through `root` (resolved inside it: an image's
/// `/etc/passwd` that is a symlink to a host file names the image's own file).
fn lookup_user(root: Option<&berth_fs::Root>, user: &str) -> Result<(u32, u32, Vec<u32>)> {
    let read = |f: &str| -> String {
        let Some(root) = root else {
            return String::new();
        };
        match root.read_file(f, MAX_ACCOUNT_FILE) {
            Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(None) => String::new(),
            Err(e) => {
                tracing::warn!(file = f, error = %e, "unreadable account file in the image");
                String::new()
            }
        }
    };
    if user.is_empty() {
        return Ok((0, 0, Vec::new()));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read("/etc/passwd");
    let (uid, mut gid, uname) = if let Ok(n) = u.parse::<u32>() {
        let gid = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[2] == u)
            .and_then(|f| f[3].parse().ok())
            .unwrap_or(0);
        (n, gid, None)
    } else {
        let f = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[0] == u)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unable to find user {u}: no matching entries in passwd file"
                ))
            })?;
        (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            Some(u.to_string()),
        )
    };
    let group = read("/etc/group");
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 2 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    let mut gids = Vec::new();
    if let Some(name) = uname {
        for f in group.lines().map(|l| l.split(':').collect::<Vec<_>>()) {
            if f.len() > 3 && f[3].split(',').any(|m| m == name) {
                if let Ok(n) = f[2].parse::<u32>() {
                    if n != gid {
                        gids.push(n);
                    }
                }
            }
        }
    }
    Ok((uid, gid, gids))
}

impl ContainerService {
    /// Opens the container store and the supervisor connection; finds the containers of
    /// an earlier run again.
    pub async fn open(
        images: Arc<ImageService>,
        sv: Supervisor,
        data_root: &Path,
        exec_root: &Path,
        runtimes: crate::config::Runtimes,
        cgroup_parent: String,
    ) -> anyhow::Result<Arc<Self>> {
        let dir = data_root.join("containers");
        std::fs::create_dir_all(&dir)?;
        set_mode(&dir, 0o710)?;
        // Views that a crash left mounted between mount and unmount.
        berth_fs::view::sweep(&exec_root.join("views"));
        let s = Arc::new(Self {
            volumes: volumes::Volumes::open(data_root)?,
            images,
            sv,
            data_root: data_root.to_path_buf(),
            exec_root: exec_root.to_path_buf(),
            entries: Mutex::new(HashMap::new()),
            execs: Mutex::new(HashMap::new()),
            events: broadcast::channel(1024).0,
            recent: Mutex::new(std::collections::VecDeque::new()),
            health: health::Monitors::default(),
            runtimes,
            cgroup_parent,
        });
        let weak = Arc::downgrade(&s);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                match weak.upgrade() {
                    Some(s) => s.sv.revive(),
                    None => return,
                }
            }
        });
        for e in std::fs::read_dir(&dir)?.flatten() {
            let p = e.path().join("config.v2.json");
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            let Ok(rec) = serde_json::from_slice::<Record>(&bytes) else {
                tracing::warn!(path = %p.display(), "unreadable container record");
                continue;
            };
            let entry = s.insert(rec);
            s.restore(&entry).await;
        }
        Ok(s)
    }

    /// Records and publishes a container event (`start`, `die`, ...) with extra
    /// attributes.
    pub fn emit(&self, action: &str, rec: &Record, extra: &[(&str, String)]) {
        let mut attrs = serde_json::Map::new();
        if let Some(l) = rec.config["Labels"].as_object() {
            attrs.extend(l.clone());
        }
        attrs.insert("image".into(), json!(rec.image));
        attrs.insert("name".into(), json!(rec.name));
        for (k, v) in extra {
            attrs.insert(k.to_string(), json!(v));
        }
        let now = chrono::Utc::now();
        let nanos = now.timestamp_nanos_opt().unwrap_or(0);
        let ev = json!({
            "status": action, "id": rec.id, "from": rec.image,
            "Type": "container", "Action": action,
            "Actor": {"ID": rec.id, "Attributes": attrs},
            "scope": "local", "time": now.timestamp(), "timeNano": nanos,
        });
        let mut r = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        r.push_back(ev.clone());
        if r.len() > 1024 {
            r.pop_front();
        }
        drop(r);
        let _ = self.events.send(ev);
    }

    /// Image ID → a container using it.
    pub fn image_users(&self) -> HashMap<String, String> {
        self.lock()
            .values()
            .map(|e| {
                let r = e.record();
                (r.image_id, r.id)
            })
            .collect()
    }

    /// Stops the supervisor berthd started.
    pub fn shutdown(&self) {
        self.sv.stop();
    }

    fn insert(&self, rec: Record) -> Arc<Entry> {
        let (out, _) = broadcast::channel(1024);
        let entry = Arc::new(Entry {
            id: rec.id.clone(),
            gen: watch::Sender::new(Gen {
                exit_code: rec.state.exit_code,
                ..Default::default()
            }),
            rec: Mutex::new(rec),
            out,
            stdin: tokio::sync::Mutex::new(None),
            op: tokio::sync::Mutex::new(()),
        });
        self.lock().insert(entry.id.clone(), entry.clone());
        entry
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Entry>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A container that was running when berthd stopped: follow it again if its task
    /// still runs, else record its exit.
    async fn restore(self: &Arc<Self>, entry: &Arc<Entry>) {
        let rec = entry.record();
        if rec.state.status != "running" && rec.state.status != "paused" {
            return;
        }
        let got = self
            .sv
            .tasks()
            .get(pb::GetRequest {
                namespace: NAMESPACE.into(),
                container_id: rec.id.clone(),
                exec_id: String::new(),
            })
            .await;
        let running = got
            .as_ref()
            .ok()
            .and_then(|r| r.get_ref().process.as_ref())
            .is_some_and(|p| {
                p.status == pb::Status::Running as i32
                    || p.status == pb::Status::Paused as i32
                    || p.status == pb::Status::Pausing as i32
            });
        if running {
            let tty = rec.config["Tty"].as_bool().unwrap_or(false);
            let fifos = Fifos {
                stdin: None,
                stdout: self.fifo_dir(&rec.id).join("init-stdout"),
                stderr: self.fifo_dir(&rec.id).join("init-stderr"),
            };
            entry.gen.send_modify(|g| g.running = true);
            let log = self.open_log(&rec).ok();
            let (exited_tx, exited_rx) = watch::channel(false);
            let copiers = io::spawn_copiers(&fifos, tty, log, entry.out.clone(), exited_rx);
            self.spawn_monitor(entry.clone(), fifos, exited_tx, copiers);
            // Checks go on where they were; the status is kept, as dockerd keeps it.
            if let Some(probe) = Self::reset_health(entry, false) {
                let _ = self.save(&entry.record());
                self.watch_health(entry, probe);
            }
        } else {
            let code = got
                .ok()
                .and_then(|r| r.into_inner().process)
                .map(|p| p.exit_status as i64)
                .unwrap_or(255);
            self.cleanup_task(&rec.id).await;
            self.finish_exit(entry, code);
            // It exited while berthd was away: its restart policy applies now.
            let this = self.clone();
            let entry = entry.clone();
            tokio::spawn(async move { this.after_exit(entry, code).await });
        }
    }

    /// The directory of a container's records, logs and upper dir.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.data_root.join("containers").join(id)
    }

    fn fifo_dir(&self, id: &str) -> PathBuf {
        self.exec_root.join("containers").join(id)
    }

    fn open_log(&self, rec: &Record) -> std::io::Result<io::LogFile> {
        let c = &rec.host_config["LogConfig"]["Config"];
        let max_size = c["max-size"].as_str().and_then(io::parse_size).unwrap_or(0);
        let max_file = c["max-file"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        io::open_log(&self.log_path(&rec.id), max_size, max_file)
    }

    /// The json-file log.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir(id).join(format!("{id}-json.log"))
    }

    fn save(&self, rec: &Record) -> Result<()> {
        let dir = self.dir(&rec.id);
        let tmp = dir.join("config.v2.json.tmp");
        let bytes = serde_json::to_vec(rec).map_err(|e| Error::Internal(e.to_string()))?;
        write_private(&tmp, &bytes).map_err(internal("writing container record"))?;
        std::fs::rename(&tmp, dir.join("config.v2.json"))
            .map_err(internal("writing container record"))
    }

    /// Finds a container by full ID, name (with or without `/`) or unique ID prefix.
    pub fn get(&self, name: &str) -> Result<Arc<Entry>> {
        let map = self.lock();
        if let Some(e) = map.get(name) {
            return Ok(e.clone());
        }
        let n = name.strip_prefix('/').unwrap_or(name);
        if let Some(e) = map.values().find(|e| e.record().name == n) {
            return Ok(e.clone());
        }
        let matches: Vec<_> = map.values().filter(|e| e.id.starts_with(name)).collect();
        match matches.len() {
            1 => Ok(matches[0].clone()),
            0 => Err(Error::NotFound(format!("No such container: {name}"))),
            _ => Err(Error::NotFound(format!(
                "No such container: {name} (multiple IDs found with that prefix)"
            ))),
        }
    }

    /// Every container.
    pub fn all(&self) -> Vec<Arc<Entry>> {
        let mut v: Vec<_> = self.lock().values().cloned().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.record().created));
        v
    }

    /// POST /containers/create.
    pub fn create(&self, name: Option<&str>, body: &Value) -> Result<(String, Vec<String>)> {
        let image = body["Image"].as_str().unwrap_or("").to_string();
        if image.is_empty() {
            return Err(Error::Invalid("No image specified".into()));
        }
        let mut hc = if body["HostConfig"].is_object() {
            body["HostConfig"].clone()
        } else {
            json!({})
        };
        // As dockerd: no runtime means the default one, recorded by name; an unknown
        // one is refused before anything else is looked at.
        let runtime = match hc["Runtime"].as_str().filter(|r| !r.is_empty()) {
            None => self.runtimes.default.clone(),
            Some(r) if self.runtimes.paths.contains_key(r) => r.to_string(),
            Some(r) => return Err(Error::Invalid(format!("Unknown runtime specified {r}"))),
        };
        hc["Runtime"] = json!(runtime);
        match hc["NetworkMode"].as_str().unwrap_or("") {
            "none" | "host" => {}
            "" | "default" | "bridge" => {
                return Err(Error::Invalid(
                    "bridge networking is not supported by berthd yet: use --network none or --network host".into(),
                ))
            }
            other => {
                return Err(Error::NotFound(format!(
                    "network {other} not found (berthd supports only --network none and --network host)"
                )))
            }
        }
        match hc["LogConfig"]["Type"].as_str().unwrap_or("") {
            "" | "json-file" => {}
            other => {
                return Err(Error::Invalid(format!(
                    "logger: no log driver named '{other}' is registered (berthd has json-file)"
                )))
            }
        }
        let c = &hc["LogConfig"]["Config"];
        if let Some(v) = c["max-size"].as_str() {
            if io::parse_size(v).is_none() {
                return Err(Error::Invalid(format!("invalid max-size: {v}")));
            }
        }
        // As dockerd: a count of files, at least one (not silently one when unreadable).
        if let Some(v) = c["max-file"].as_str() {
            match v.parse::<i64>() {
                Ok(n) if n >= 1 => {}
                Ok(_) => return Err(Error::Invalid("max-file cannot be less than 1".into())),
                Err(_) => return Err(Error::Invalid(format!("invalid max-file: {v}"))),
            }
        }
        let caps = |k: &str| strs(&hc[k]);
        for (k, list) in [("CapAdd", caps("CapAdd")), ("CapDrop", caps("CapDrop"))] {
            if let Err(e) = spec::capabilities(false, &list, &[]) {
                let bad = e.trim_start_matches("invalid capability: ");
                return Err(Error::Invalid(format!(
                    "invalid {k}: unknown capability: \"{}\"",
                    spec::normalize_cap(bad)
                )));
            }
        }
        let rec = self.images.resolve(&image).map_err(|e| match e {
            crate::images::Error::NotFound(_) => {
                let shown = crate::images::reference::Reference::parse_with_default_tag(&image)
                    .map(|r| r.familiar())
                    .unwrap_or(image.clone());
                Error::NotFound(format!("No such image: {shown}"))
            }
            other => Error::Invalid(other.to_string()),
        })?;
        let icfg = self
            .images
            .config(&rec)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let ic = &icfg["config"];
        // Env: the image's, overridden key by key.
        let mut env = strs(&ic["Env"]);
        for e in strs(&body["Env"]) {
            let key = e.split('=').next().unwrap_or("").to_string();
            env.retain(|x| x.split('=').next() != Some(key.as_str()));
            env.push(e);
        }
        let given_entry = !body["Entrypoint"].is_null();
        let entrypoint = if given_entry {
            strs(&body["Entrypoint"])
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect()
        } else {
            strs(&ic["Entrypoint"])
        };
        let cmd = if !body["Cmd"].is_null() && !strs(&body["Cmd"]).is_empty() {
            strs(&body["Cmd"])
        } else if given_entry {
            Vec::new()
        } else {
            strs(&ic["Cmd"])
        };
        let argv: Vec<String> = entrypoint.iter().chain(cmd.iter()).cloned().collect();
        if argv.is_empty() {
            return Err(Error::Invalid("No command specified".into()));
        }
        let healthcheck = health::merge(&body["Healthcheck"], &ic["Healthcheck"]);
        health::validate(&healthcheck)?;
        let mut labels = ic["Labels"].as_object().cloned().unwrap_or_default();
        if let Some(l) = body["Labels"].as_object() {
            labels.extend(l.clone());
        }
        let pick = |k: &str| {
            body[k]
                .as_str()
                .filter(|s| !s.is_empty())
                .or_else(|| ic[k].as_str())
                .unwrap_or("")
                .to_string()
        };
        let id = random_hex(32);
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                if !valid_name(n) {
                    return Err(Error::Invalid(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                n.to_string()
            }
            None => {
                let entries = self.lock();
                generated_name(|n| entries.values().any(|e| e.record().name == n))
            }
        };
        // Before anything is made (volumes): a taken name fails cleanly.
        if let Some(other) = self.lock().values().find(|e| e.record().name == name) {
            return Err(Error::Conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.id
            )));
        }
        let hostname = body["Hostname"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(String::from)
            .unwrap_or_else(|| {
                if hc["NetworkMode"] == "host" {
                    nix::unistd::gethostname()
                        .map(|h| h.to_string_lossy().into_owned())
                        .unwrap_or_default()
                } else {
                    id[..12].to_string()
                }
            });
        let mut config = json!({
            "Hostname": hostname,
            "Domainname": body["Domainname"].as_str().unwrap_or(""),
            "User": pick("User"),
            "AttachStdin": body["AttachStdin"].as_bool().unwrap_or(false),
            "AttachStdout": body["AttachStdout"].as_bool().unwrap_or(false),
            "AttachStderr": body["AttachStderr"].as_bool().unwrap_or(false),
            "ExposedPorts": if body["ExposedPorts"].is_object() { body["ExposedPorts"].clone() } else { ic["ExposedPorts"].clone() },
            "Tty": body["Tty"].as_bool().unwrap_or(false),
            "OpenStdin": body["OpenStdin"].as_bool().unwrap_or(false),
            "StdinOnce": body["StdinOnce"].as_bool().unwrap_or(false),
            "Env": env,
            "Cmd": if cmd.is_empty() { Value::Null } else { json!(cmd) },
            "Healthcheck": healthcheck,
            "Image": image,
            "Volumes": if body["Volumes"].is_object() { body["Volumes"].clone() } else { ic["Volumes"].clone() },
            "WorkingDir": pick("WorkingDir"),
            "Entrypoint": if entrypoint.is_empty() { Value::Null } else { json!(entrypoint) },
            "OnBuild": Value::Null,
            "Labels": labels,
            "StopSignal": pick("StopSignal"),
            "StopTimeout": body["StopTimeout"],
        });
        // The shell of CMD-SHELL health checks (the image's SHELL unless given).
        if let Some(shell) = body["Shell"].as_array().or(ic["Shell"].as_array()) {
            config["Shell"] = json!(shell);
        }
        let layers: Vec<PathBuf> = chain_ids(&rec.diff_ids())
            .iter()
            .map(|c| self.images.snapshots.fs_path(c))
            .collect();
        let mounts = self.make_mounts(&hc, &config, &layers)?;
        let record = Record {
            mounts,
            id: id.clone(),
            name: name.clone(),
            created: now(),
            image: image.clone(),
            image_id: rec.id.to_string(),
            path: argv[0].clone(),
            args: argv[1..].to_vec(),
            config,
            host_config: hc,
            state: State {
                status: "created".into(),
                ..Default::default()
            },
            restart_count: 0,
            manual_stop: false,
            spec: Value::Null,
        };
        let mut map = self.lock();
        if let Some(other) = map.values().find(|e| e.record().name == name) {
            return Err(Error::Conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.id
            )));
        }
        let dir = self.dir(&id);
        std::fs::create_dir_all(dir.join("upper")).map_err(internal("container dir"))?;
        std::fs::create_dir_all(dir.join("work")).map_err(internal("container dir"))?;
        set_mode(&dir, 0o710).map_err(internal("container dir"))?;
        if let Err(e) = self.save(&record) {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        let (out, _) = broadcast::channel(1024);
        map.insert(
            id.clone(),
            Arc::new(Entry {
                id: id.clone(),
                rec: Mutex::new(record),
                gen: watch::Sender::new(Gen::default()),
                out,
                stdin: tokio::sync::Mutex::new(None),
                op: tokio::sync::Mutex::new(()),
            }),
        );
        let rec = map.get(&id).map(|e| e.record());
        drop(map);
        if let Some(rec) = rec {
            self.emit("create", &rec, &[]);
        }
        Ok((id, Vec::new()))
    }

    /// Where read-only views of containers' file systems are briefly mounted.
    fn views_dir(&self) -> PathBuf {
        self.exec_root.join("views")
    }

    /// The container's file system as it would start (its upper directory over the
    /// image's layers, `lowers` top first), read-only: what is read from a container
    /// before it runs goes through this root, never through a host path.
    fn fs_view(&self, rec: &Record, lowers: &[PathBuf]) -> Result<berth_fs::Root> {
        let mut layers = vec![self.dir(&rec.id).join("upper")];
        layers.extend(lowers.iter().cloned());
        berth_fs::view::open_layers(&layers, &self.views_dir())
            .map_err(|e| Error::Internal(format!("reading the container's file system: {e}")))
    }

    /// The uid, gid and extra groups of `user` in the container (root without a user).
    fn user_of(
        &self,
        rec: &Record,
        lowers: &[PathBuf],
        user: &str,
    ) -> Result<(u32, u32, Vec<u32>)> {
        if user.is_empty() {
            return Ok((0, 0, Vec::new()));
        }
        let root = self.fs_view(rec, lowers)?;
        lookup_user(Some(&root), user)
    }

    pub(crate) fn lowerdirs(&self, rec: &Record) -> Result<Vec<PathBuf>> {
        let img = self
            .images
            .resolve(&rec.image_id)
            .map_err(|_| Error::NotFound(format!("No such image: {}", rec.image_id)))?;
        let mut dirs: Vec<PathBuf> = chain_ids(&img.diff_ids())
            .iter()
            .map(|c| self.images.snapshots.fs_path(c))
            .collect();
        dirs.reverse();
        if dirs.is_empty() {
            let empty = self.dir(&rec.id).join("empty");
            std::fs::create_dir_all(&empty).map_err(internal("empty lowerdir"))?;
            dirs.push(empty);
        }
        Ok(dirs)
    }

    fn write_etc(&self, rec: &Record) -> Result<()> {
        let dir = self.dir(&rec.id);
        let hostname = rec.config["Hostname"].as_str().unwrap_or("");
        let host_net = rec.host_config["NetworkMode"] == "host";
        std::fs::write(dir.join("hostname"), format!("{hostname}\n"))
            .map_err(internal("writing hostname"))?;
        let hosts = if host_net {
            std::fs::read_to_string("/etc/hosts").unwrap_or_default()
        } else {
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n".to_string()
        };
        std::fs::write(dir.join("hosts"), hosts).map_err(internal("writing hosts"))?;
        let mut resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        if !host_net {
            // Loopback resolvers are unreachable from the container's own network.
            resolv = resolv
                .lines()
                .filter(|l| !(l.starts_with("nameserver 127.") || l.starts_with("nameserver ::1")))
                .map(|l| format!("{l}\n"))
                .collect();
        }
        std::fs::write(dir.join("resolv.conf"), resolv).map_err(internal("writing resolv.conf"))
    }

    /// Binds (`-v`), Mounts (`--mount`), Tmpfs, and an anonymous volume for every
    /// path of Config.Volumes (the image's VOLUME and `-v /path`) not mounted otherwise.
    /// Destinations are cleaned as dockerd cleans them (`/x/../data/` is `/data`) and a
    /// destination mounted twice is refused. `layers` are the image's, base first.
    fn make_mounts(&self, hc: &Value, config: &Value, layers: &[PathBuf]) -> Result<Vec<Value>> {
        let mut out: Vec<Value> = Vec::new();
        // The image's file system, opened once and only if a volume needs its content.
        let mut image_root: Option<berth_fs::Root> = None;
        let mut volume =
            |name: &str, dst: &str, rw: bool, anon: bool, nocopy: bool| -> Result<Value> {
                self.volumes.create(name, &Value::Null, &Value::Null)?;
                if !nocopy {
                    self.copy_up(&mut image_root, layers, dst, name)?;
                }
                Ok(
                    json!({"Type": "volume", "Name": name, "Source": self.volumes.data(name),
                "Destination": dst, "Driver": "local", "Mode": if rw { "" } else { "ro" },
                "RW": rw, "Propagation": "", "Anonymous": anon}),
                )
            };
        let destination = |path: &str, kind: &str| {
            berth_fs::clean::mount_destination(path, kind)
                .map_err(|e| Error::Invalid(e.to_string()))
        };
        for b in strs(&hc["Binds"]) {
            let parts: Vec<&str> = b.split(':').collect();
            if parts.len() < 2 || parts.len() > 3 || !parts[1].starts_with('/') {
                return Err(Error::Invalid(format!(
                    "invalid volume specification: '{b}'"
                )));
            }
            let mode = parts.get(2).copied().unwrap_or("");
            let rw = !mode.split(',').any(|o| o == "ro");
            let nocopy = mode.split(',').any(|o| o == "nocopy");
            let dst = berth_fs::clean::clean(parts[1]);
            refuse_duplicate(&out, &dst)?;
            if parts[0].starts_with('/') {
                out.push(
                    json!({"Type": "bind", "Source": parts[0], "Destination": dst,
                    "Mode": mode, "RW": rw, "Propagation": "rprivate", "Create": true}),
                );
            } else {
                out.push(volume(parts[0], &dst, rw, false, nocopy)?);
            }
        }
        for m in hc["Mounts"].as_array().into_iter().flatten() {
            let kind = m["Type"].as_str().unwrap_or("");
            let target = m["Target"].as_str().unwrap_or("");
            if !target.starts_with('/') {
                return Err(Error::Invalid(format!(
                    "invalid mount config: mount target must be an absolute path: {target:?}"
                )));
            }
            let dst = destination(target, kind)?;
            refuse_duplicate(&out, &dst)?;
            let rw = !m["ReadOnly"].as_bool().unwrap_or(false);
            let src = m["Source"].as_str().unwrap_or("");
            match kind {
                "bind" => {
                    if !Path::new(src).exists() {
                        return Err(Error::Invalid(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {src}"
                        )));
                    }
                    out.push(json!({"Type": "bind", "Source": src, "Destination": dst,
                        "Mode": "", "RW": rw, "Propagation": "rprivate"}));
                }
                "volume" => {
                    let (name, anon) = if src.is_empty() {
                        (random_hex(32), true)
                    } else {
                        (src.to_string(), false)
                    };
                    let nocopy = m["VolumeOptions"]["NoCopy"].as_bool().unwrap_or(false);
                    out.push(volume(&name, &dst, rw, anon, nocopy)?);
                }
                "tmpfs" => {
                    let mut opts = vec!["nosuid".to_string(), "nodev".into(), "noexec".into()];
                    if let Some(sz) = m["TmpfsOptions"]["SizeBytes"].as_u64() {
                        opts.push(format!("size={sz}"));
                    }
                    out.push(json!({"Type": "tmpfs", "Source": "", "Destination": dst,
                        "Mode": opts.join(","), "RW": rw, "Propagation": ""}));
                }
                other => {
                    return Err(Error::Invalid(format!(
                        "invalid mount config: mount type unknown: {other:?}"
                    )))
                }
            }
        }
        for (target, opts) in hc["Tmpfs"].as_object().into_iter().flatten() {
            let dst = destination(target, "tmpfs")?;
            refuse_duplicate(&out, &dst)?;
            let mut o = "nosuid,nodev,noexec".to_string();
            if let Some(extra) = opts.as_str().filter(|s| !s.is_empty()) {
                o = format!("{o},{extra}");
            }
            out.push(json!({"Type": "tmpfs", "Source": "", "Destination": dst,
                "Mode": o, "RW": true, "Propagation": ""}));
        }
        for target in config["Volumes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            let dst = destination(target, "volume")?;
            if !out.iter().any(|m| m["Destination"] == dst.as_str()) {
                out.push(volume(&random_hex(32), &dst, true, true, false)?);
            }
        }
        Ok(out)
    }

    /// As dockerd: a volume mounted where the image has a directory starts with that
    /// directory's content, if the volume is empty. `dst` is resolved inside the image's
    /// file system (a symlink there names the image's own path, never the host's) and the
    /// copy is made descriptor to descriptor into the volume. Volumes made with driver
    /// options (a tmpfs, a device) are mounted only while used and get no copy.
    fn copy_up(
        &self,
        image_root: &mut Option<berth_fs::Root>,
        layers: &[PathBuf],
        dst: &str,
        name: &str,
    ) -> Result<()> {
        if layers.is_empty() || self.volumes.options(name)?.is_some() {
            return Ok(());
        }
        let data = berth_fs::Root::open(&self.volumes.data(name))
            .map_err(|e| Error::Internal(format!("opening volume {name}: {e}")))?;
        let copying = |e: berth_fs::Error| {
            Error::Internal(format!("copying the image's {dst} into volume {name}: {e}"))
        };
        if !data.dir_is_empty(".").map_err(copying)? {
            return Ok(());
        }
        if image_root.is_none() {
            let top_first: Vec<PathBuf> = layers.iter().rev().cloned().collect();
            let root = berth_fs::view::open_layers(&top_first, &self.views_dir())
                .map_err(|e| Error::Internal(format!("reading the image's file system: {e}")))?;
            *image_root = Some(root);
        }
        let Some(root) = image_root.as_ref() else {
            return Ok(());
        };
        berth_fs::copy::copy_dir_contents(root, dst, &data).map_err(copying)?;
        Ok(())
    }

    /// Whether a container uses the named volume.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.lock()
            .values()
            .filter(|e| {
                e.record()
                    .mounts
                    .iter()
                    .any(|m| m["Type"] == "volume" && m["Name"] == name)
            })
            .map(|e| e.id.clone())
            .collect()
    }

    fn binds(&self, rec: &Record) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for m in &rec.mounts {
            if let Some(name) = m["Name"].as_str().filter(|_| m["Type"] == "volume") {
                // A volume made with options is mounted while a container uses it.
                self.volumes.activate(name)?;
            }
            let dst = m["Destination"].as_str().unwrap_or("");
            let src = m["Source"].as_str().unwrap_or("");
            let rw = m["RW"].as_bool().unwrap_or(true);
            if m["Type"] == "tmpfs" {
                let mut opts: Vec<&str> = m["Mode"]
                    .as_str()
                    .unwrap_or("")
                    .split(',')
                    .filter(|o| !o.is_empty())
                    .collect();
                if !rw {
                    opts.push("ro");
                }
                out.push(json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": opts}));
                continue;
            }
            if m["Create"] == true && !Path::new(src).exists() {
                std::fs::create_dir_all(src).map_err(internal(src))?;
            }
            let mut opts = vec!["rbind", "rprivate"];
            if !rw {
                opts.push("ro");
            }
            out.push(json!({"destination": dst, "type": "bind", "source": src, "options": opts}));
        }
        Ok(out)
    }

    /// POST /containers/{id}/start.
    pub async fn start(self: &Arc<Self>, name: &str) -> Result<()> {
        let entry = self.get(name)?;
        let _op = entry.op.lock().await;
        if entry.running() {
            return Err(Error::NotModified("container already started".into()));
        }
        entry.update(|r| r.manual_stop = false);
        let r = self.start_locked(&entry).await;
        if let Err(e) = &r {
            let msg = e.to_string();
            entry.update(|r| {
                r.state.error = msg;
                r.state.exit_code = 128;
            });
            let _ = self.save(&entry.record());
            drop(_op);
            if entry.record().host_config["AutoRemove"]
                .as_bool()
                .unwrap_or(false)
            {
                let _ = self.remove(&entry.id, true).await;
            }
        }
        r
    }

    async fn start_locked(self: &Arc<Self>, entry: &Arc<Entry>) -> Result<()> {
        // Phase times go to the debug log: where a start's time goes, for operators.
        let began = std::time::Instant::now();
        let rec = entry.record();
        let id = rec.id.clone();
        let dir = self.dir(&id);
        let lowers = self.lowerdirs(&rec)?;
        let user = self.user_of(&rec, &lowers, rec.config["User"].as_str().unwrap_or(""))?;
        self.write_etc(&rec)?;
        let tty = rec.config["Tty"].as_bool().unwrap_or(false);
        let open_stdin = rec.config["OpenStdin"].as_bool().unwrap_or(false);
        let mut args = vec![rec.path.clone()];
        args.extend(rec.args.iter().cloned());
        let cwd = rec.config["WorkingDir"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("/")
            .to_string();
        let spec = spec::build(&spec::SpecInput {
            args,
            env: strs(&rec.config["Env"]),
            cwd,
            user,
            hostname: rec.config["Hostname"].as_str().unwrap_or("").to_string(),
            tty,
            host_config: &rec.host_config,
            dir: &dir,
            id: &id,
            cgroup_parent: &self.cgroup_parent,
            mounts: self.binds(&rec)?,
        })
        .map_err(Error::Invalid)?;
        let lowerdir = lowers
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let prepared = began.elapsed();
        // A crash may have left the supervisor's record and task behind.
        self.cleanup_task(&id).await;
        let container = pb::Container {
            id: id.clone(),
            labels: Default::default(),
            spec: serde_json::to_vec(&spec).map_err(|e| Error::Internal(e.to_string()))?,
            rootfs: vec![pb::Mount {
                r#type: "overlay".into(),
                source: "overlay".into(),
                target: String::new(),
                options: vec![
                    format!("lowerdir={lowerdir}"),
                    format!("upperdir={}", dir.join("upper").display()),
                    format!("workdir={}", dir.join("work").display()),
                ],
            }],
            runtime: Some(self.runtime_for(&rec)?),
            created_at: None,
            updated_at: None,
        };
        self.sv
            .containers()
            .create(pb::CreateContainerRequest {
                namespace: NAMESPACE.into(),
                container: Some(container),
            })
            .await
            .map_err(grpc("creating container"))?;
        let recorded = began.elapsed();
        let fifos = Fifos::make(&self.fifo_dir(&id), "init", open_stdin)
            .map_err(internal("making FIFOs"))?;
        let log = self.open_log(&rec).map_err(internal("opening log"))?;
        let (exited_tx, exited_rx) = watch::channel(false);
        let copiers = io::spawn_copiers(&fifos, tty, Some(log), entry.out.clone(), exited_rx);
        let stdin = fifos.open_stdin().map_err(internal("opening stdin"))?;
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        let created = self
            .sv
            .tasks()
            .create(pb::CreateTaskRequest {
                namespace: NAMESPACE.into(),
                container_id: id.clone(),
                stdin: path(&fifos.stdin),
                stdout: fifos.stdout.display().to_string(),
                stderr: fifos.stderr.display().to_string(),
                terminal: tty,
            })
            .await;
        let task_created = began.elapsed();
        let started = match created {
            Ok(_) => self
                .sv
                .tasks()
                .start(pb::StartRequest {
                    namespace: NAMESPACE.into(),
                    container_id: id.clone(),
                    exec_id: String::new(),
                })
                .await
                .map(|r| r.into_inner().pid),
            Err(e) => Err(e),
        };
        let pid = match started {
            Ok(pid) => pid,
            Err(e) => {
                let _ = exited_tx.send(true);
                copiers.abort();
                self.cleanup_task(&id).await;
                fifos.remove();
                return Err(Error::Internal(format!(
                    "failed to create task for container: {}",
                    e.message()
                )));
            }
        };
        tracing::debug!(
            id = %id,
            prepare_ms = prepared.as_secs_f64() * 1e3,
            supervisor_record_ms = (recorded - prepared).as_secs_f64() * 1e3,
            task_create_ms = (task_created - recorded).as_secs_f64() * 1e3,
            task_start_ms = (began.elapsed() - task_created).as_secs_f64() * 1e3,
            "container started"
        );
        *entry.stdin.lock().await = stdin;
        entry.update(|r| {
            r.state.status = "running".into();
            r.state.pid = pid;
            r.state.started_at = now();
            // As dockerd: a running container has no exit code yet (FinishedAt keeps
            // the last run's end).
            r.state.exit_code = 0;
            r.state.error.clear();
            r.spec = spec;
        });
        let probe = Self::reset_health(entry, true);
        self.save(&entry.record())?;
        entry.gen.send_modify(|g| g.running = true);
        self.emit("start", &entry.record(), &[]);
        self.spawn_monitor(entry.clone(), fifos, exited_tx, copiers);
        if let Some(probe) = probe {
            self.watch_health(entry, probe);
        }
        Ok(())
    }

    /// The supervisor's runtime for a container: its HostConfig.Runtime (the default
    /// for records made before runtimes were recorded).
    fn runtime_for(&self, rec: &Record) -> Result<pb::Runtime> {
        let name = rec.host_config["Runtime"]
            .as_str()
            .filter(|r| !r.is_empty())
            .unwrap_or(&self.runtimes.default);
        let binary = self
            .runtimes
            .binary(name)
            .ok_or_else(|| Error::Invalid(format!("Unknown runtime specified {name}")))?;
        Ok(pb::Runtime {
            binary_name: binary.to_string(),
            ..Default::default()
        })
    }

    /// Deletes the supervisor's task and record of a container, if any.
    async fn cleanup_task(&self, id: &str) {
        let _ = self
            .sv
            .tasks()
            .delete(pb::DeleteTaskRequest {
                namespace: NAMESPACE.into(),
                container_id: id.into(),
            })
            .await;
        let _ = self
            .sv
            .containers()
            .delete(pb::DeleteContainerRequest {
                namespace: NAMESPACE.into(),
                id: id.into(),
            })
            .await;
    }

    fn spawn_monitor(
        self: &Arc<Self>,
        entry: Arc<Entry>,
        fifos: Fifos,
        exited: watch::Sender<bool>,
        copiers: tokio::task::JoinHandle<()>,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            let id = entry.id.clone();
            let code = loop {
                let r = this
                    .sv
                    .tasks()
                    .wait(pb::WaitRequest {
                        namespace: NAMESPACE.into(),
                        container_id: id.clone(),
                        exec_id: String::new(),
                    })
                    .await;
                match r {
                    Ok(r) => break r.into_inner().exit_status as i64,
                    Err(e) if e.code() == Code::NotFound => break 255,
                    Err(e) => {
                        tracing::debug!(%id, error = %e.message(), "wait failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            };
            let _ = exited.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(5), copiers).await;
            *entry.stdin.lock().await = None;
            this.cleanup_task(&id).await;
            fifos.remove();
            this.finish_exit(&entry, code);
            this.after_exit(entry, code).await;
        });
    }

    fn finish_exit(&self, entry: &Entry, code: i64) {
        entry.update(|r| {
            r.state.status = "exited".into();
            r.state.pid = 0;
            r.state.exit_code = code;
            r.state.finished_at = now();
        });
        health::mark_unhealthy(entry);
        let _ = self.save(&entry.record());
        entry.gen.send_modify(|g| {
            g.running = false;
            g.exits += 1;
            g.exit_code = code;
        });
        self.emit("die", &entry.record(), &[("exitCode", code.to_string())]);
        self.release_volumes(&entry.record());
    }

    /// Unmounts the option volumes of a stopped container that no running container
    /// still uses (dockerd's local driver counts its users the same way).
    fn release_volumes(&self, rec: &Record) {
        for m in rec.mounts.iter().filter(|m| m["Type"] == "volume") {
            let Some(name) = m["Name"].as_str() else {
                continue;
            };
            let in_use = self.lock().values().any(|e| {
                e.id != rec.id
                    && e.running()
                    && e.record()
                        .mounts
                        .iter()
                        .any(|m| m["Type"] == "volume" && m["Name"] == name)
            });
            if !in_use {
                if let Err(e) = self.volumes.deactivate(name) {
                    tracing::warn!(volume = name, error = %e, "unmounting volume");
                }
            }
        }
    }

    /// Restart policy, then AutoRemove.
    async fn after_exit(self: &Arc<Self>, entry: Arc<Entry>, code: i64) {
        let rec = entry.record();
        let policy = &rec.host_config["RestartPolicy"];
        let name = policy["Name"].as_str().unwrap_or("");
        let max = policy["MaximumRetryCount"].as_u64().unwrap_or(0);
        let restart = match name {
            "always" => !rec.manual_stop,
            "unless-stopped" => !rec.manual_stop,
            "on-failure" => code != 0 && !rec.manual_stop && (max == 0 || rec.restart_count < max),
            _ => false,
        };
        if restart && self.lock().contains_key(&rec.id) {
            let delay = Duration::from_millis(100u64 << rec.restart_count.min(6));
            tokio::time::sleep(delay).await;
            if entry.record().manual_stop || !self.lock().contains_key(&rec.id) {
                return;
            }
            entry.update(|r| r.restart_count += 1);
            if let Err(e) = self.start(&rec.id).await {
                tracing::warn!(id = %rec.id, error = %e, "restart failed");
            }
            return;
        }
        if rec.host_config["AutoRemove"].as_bool().unwrap_or(false) {
            if let Err(e) = self.remove(&rec.id, true).await {
                tracing::warn!(id = %rec.id, error = %e, "auto-remove failed");
            }
        }
    }

    /// POST /containers/{id}/kill.
    pub async fn kill(&self, name: &str, signal: Option<&str>) -> Result<()> {
        let entry = self.get(name)?;
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => {
                parse_signal(s).ok_or_else(|| Error::Invalid(format!("Invalid signal: {s}")))?
            }
            None => 9,
        };
        if !entry.running() {
            return Err(Error::Conflict(format!(
                "Cannot kill container: {name}: Container {} is not running",
                entry.id
            )));
        }
        if sig == 9 || sig == 15 {
            entry.update(|r| r.manual_stop = true);
        }
        self.signal(&entry.id, sig).await?;
        self.emit("kill", &entry.record(), &[("signal", sig.to_string())]);
        // As dockerd: a SIGKILL returns once the container has exited, so that what
        // the client does next (inspect, start, rm) sees it stopped.
        if sig == 9 && !self.wait_stopped(&entry, Duration::from_secs(30)).await {
            return Err(Error::Internal(format!(
                "container {} did not exit after SIGKILL",
                entry.id
            )));
        }
        Ok(())
    }

    async fn signal(&self, id: &str, sig: u32) -> Result<()> {
        // A frozen container gets no signal until thawed: SIGTERM or SIGKILL thaw it
        // first (as dockerd does for stop and rm -f).
        if sig == 9 || sig == 15 {
            if let Ok(e) = self.get(id) {
                if e.record().state.status == "paused" {
                    let _ = self.pause(id, false).await;
                }
            }
        }
        self.sv
            .tasks()
            .kill(pb::KillRequest {
                namespace: NAMESPACE.into(),
                container_id: id.into(),
                exec_id: String::new(),
                signal: sig,
                all: sig == 9,
            })
            .await
            .map_err(grpc("kill"))?;
        Ok(())
    }

    async fn wait_stopped(&self, entry: &Entry, timeout: Duration) -> bool {
        let mut rx = entry.gen.subscribe();
        let r = tokio::time::timeout(timeout, rx.wait_for(|g| !g.running))
            .await
            .is_ok();
        r
    }

    /// POST /containers/{id}/stop.
    pub async fn stop(&self, name: &str, timeout: Option<i64>, signal: Option<&str>) -> Result<()> {
        let entry = self.get(name)?;
        // Also when it is not running: a restart the policy has scheduled is cancelled.
        entry.update(|r| r.manual_stop = true);
        let _ = self.save(&entry.record());
        if !entry.running() {
            return Err(Error::NotModified("container already stopped".into()));
        }
        let rec = entry.record();
        let sig_name = signal
            .filter(|s| !s.is_empty())
            .map(String::from)
            .or_else(|| {
                rec.config["StopSignal"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(String::from)
            })
            .unwrap_or_else(|| "SIGTERM".into());
        let sig = parse_signal(&sig_name)
            .ok_or_else(|| Error::Invalid(format!("Invalid signal: {sig_name}")))?;
        let t = timeout
            .or_else(|| rec.config["StopTimeout"].as_i64())
            .unwrap_or(10);
        entry.update(|r| r.manual_stop = true);
        let _ = self.save(&entry.record());
        if t != 0 {
            let _ = self.signal(&entry.id, sig).await;
        }
        let wait = if t < 0 {
            Duration::from_secs(3600)
        } else {
            Duration::from_secs(t as u64)
        };
        if !self.wait_stopped(&entry, wait).await {
            let _ = self.signal(&entry.id, 9).await;
            if !self.wait_stopped(&entry, Duration::from_secs(30)).await {
                return Err(Error::Internal(format!(
                    "container {} did not stop after SIGKILL",
                    entry.id
                )));
            }
        }
        self.emit("stop", &entry.record(), &[]);
        Ok(())
    }

    /// POST /containers/{id}/restart: stop (with `signal` and `timeout` as stop takes
    /// them), then start.
    pub async fn restart(
        self: &Arc<Self>,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        match self.stop(name, timeout, signal).await {
            Ok(()) | Err(Error::NotModified(_)) => {}
            Err(e) => return Err(e),
        }
        let entry = self.get(name)?;
        entry.update(|r| r.manual_stop = false);
        self.start(name).await
    }

    /// DELETE /containers/{id}.
    pub async fn remove(&self, name: &str, force: bool) -> Result<()> {
        self.remove_with(name, force, false).await
    }

    /// DELETE /containers/{id}?v=: also its anonymous volumes when `volumes`.
    pub async fn remove_with(&self, name: &str, force: bool, volumes: bool) -> Result<()> {
        let entry = self.get(name)?;
        if entry.running() {
            if !force {
                return Err(Error::Conflict(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    entry.record().name
                )));
            }
            entry.update(|r| r.manual_stop = true);
            let _ = self.signal(&entry.id, 9).await;
            if !self.wait_stopped(&entry, Duration::from_secs(30)).await {
                return Err(Error::Internal(format!(
                    "container {} did not stop after SIGKILL",
                    entry.id
                )));
            }
        }
        let _op = entry.op.lock().await;
        if self.lock().remove(&entry.id).is_none() {
            return Ok(());
        }
        self.health.forget(&entry.id);
        self.cleanup_task(&entry.id).await;
        let _ = std::fs::remove_dir_all(self.fifo_dir(&entry.id));
        if let Err(e) = std::fs::remove_dir_all(self.dir(&entry.id)) {
            tracing::warn!(id = %entry.id, error = %e, "removing container directory");
        }
        let execs: Vec<String> = self
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, e)| e.container == entry.id)
            .map(|(k, _)| k.clone())
            .collect();
        for k in execs {
            self.execs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&k);
        }
        let rec = entry.record();
        if volumes || rec.host_config["AutoRemove"].as_bool().unwrap_or(false) {
            for m in rec.mounts.iter().filter(|m| m["Anonymous"] == true) {
                if let Some(n) = m["Name"].as_str() {
                    if self.volume_users(n).is_empty() {
                        let _ = self.volumes.remove(n);
                    }
                }
            }
        }
        entry.update(|r| r.state.status = "removing".into());
        self.emit("destroy", &entry.record(), &[]);
        entry.gen.send_modify(|g| g.removed = true);
        Ok(())
    }

    /// POST /containers/{id}/pause and unpause.
    pub async fn pause(&self, name: &str, pause: bool) -> Result<()> {
        let entry = self.get(name)?;
        if !entry.running() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                entry.id
            )));
        }
        let paused = entry.record().state.status == "paused";
        if pause && paused {
            return Err(Error::Conflict(format!(
                "Container {} is already paused",
                entry.id
            )));
        }
        if !pause && !paused {
            return Err(Error::Conflict(format!(
                "Container {} is not paused",
                entry.id
            )));
        }
        let mut t = self.sv.tasks();
        if pause {
            t.pause(pb::PauseTaskRequest {
                namespace: NAMESPACE.into(),
                container_id: entry.id.clone(),
            })
            .await
            .map_err(grpc("pause"))?;
        } else {
            t.resume(pb::ResumeTaskRequest {
                namespace: NAMESPACE.into(),
                container_id: entry.id.clone(),
            })
            .await
            .map_err(grpc("unpause"))?;
        }
        entry.update(|r| r.state.status = if pause { "paused" } else { "running" }.into());
        if pause {
            self.health_paused(&entry);
        }
        self.emit(
            if pause { "pause" } else { "unpause" },
            &entry.record(),
            &[],
        );
        self.save(&entry.record())
    }

    /// POST /containers/{id}/rename.
    pub fn rename(&self, name: &str, new: &str) -> Result<()> {
        let entry = self.get(name)?;
        let new = new.strip_prefix('/').unwrap_or(new);
        if !valid_name(new) {
            return Err(Error::Invalid(format!(
                "Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let map = self.lock();
        if let Some(other) = map.values().find(|e| e.record().name == new) {
            return Err(Error::Conflict(format!(
                "Conflict. The container name \"/{new}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.id
            )));
        }
        drop(map);
        let old = entry.record().name;
        entry.update(|r| r.name = new.to_string());
        self.emit("rename", &entry.record(), &[("oldName", format!("/{old}"))]);
        self.save(&entry.record())
    }

    /// GET /containers/{id}/top: the host's `ps` rows of the container's processes.
    pub async fn top(&self, name: &str, ps_args: Option<&str>) -> Result<Value> {
        let entry = self.get(name)?;
        if !entry.running() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                entry.id
            )));
        }
        let pids = self
            .sv
            .tasks()
            .list_pids(pb::ListPidsRequest {
                namespace: NAMESPACE.into(),
                container_id: entry.id.clone(),
            })
            .await
            .map_err(grpc("top"))?
            .into_inner()
            .pids;
        // Without ps_args dockerd runs `ps -ef` (UID PID PPID C STIME TTY TIME CMD).
        ps_top(ps_args.unwrap_or("-ef"), &pids).await
    }

    /// POST /containers/prune: every stopped container that `select` keeps for removal;
    /// returns their IDs and the bytes their upper dirs held (dockerd's SpaceReclaimed).
    pub async fn prune(&self, select: impl Fn(&Record) -> bool) -> (Vec<String>, u64) {
        let (mut gone, mut reclaimed) = (Vec::new(), 0);
        for e in self.all() {
            if e.running() || !select(&e.record()) {
                continue;
            }
            let size = self.size_rw(&e.id);
            if self.remove(&e.id, false).await.is_ok() {
                gone.push(e.id.clone());
                reclaimed += size;
            }
        }
        (gone, reclaimed)
    }

    /// The bytes a container wrote: the size of its overlay upper dir (SizeRw).
    pub fn size_rw(&self, id: &str) -> u64 {
        crate::disk_usage::disk_usage(&self.dir(id).join("upper"))
    }

    /// POST /containers/{id}/update: resources (applied to a running task) and the
    /// restart policy.
    pub async fn update(&self, name: &str, body: &Value) -> Result<()> {
        let entry = self.get(name)?;
        let mut hc = entry.record().host_config;
        for k in [
            "Memory",
            "MemorySwap",
            "NanoCpus",
            "CpuShares",
            "CpusetCpus",
            "PidsLimit",
            "RestartPolicy",
        ] {
            let v = &body[k];
            let set = match v {
                Value::Null => false,
                Value::Number(n) => n.as_i64() != Some(0),
                Value::String(s) => !s.is_empty(),
                Value::Object(o) => o
                    .get("Name")
                    .and_then(|n| n.as_str())
                    .is_some_and(|n| !n.is_empty()),
                _ => true,
            };
            if set {
                hc[k] = v.clone();
            }
        }
        if entry.running() {
            let spec = spec::build(&spec::SpecInput {
                args: Vec::new(),
                env: Vec::new(),
                cwd: "/".into(),
                user: (0, 0, Vec::new()),
                hostname: String::new(),
                tty: false,
                host_config: &hc,
                dir: &self.dir(&entry.id),
                id: &entry.id,
                cgroup_parent: &self.cgroup_parent,
                mounts: Vec::new(),
            })
            .map_err(Error::Invalid)?;
            let mut res = spec["linux"]["resources"].clone();
            if let Some(o) = res.as_object_mut() {
                o.remove("devices");
            }
            self.sv
                .tasks()
                .update(pb::UpdateTaskRequest {
                    namespace: NAMESPACE.into(),
                    container_id: entry.id.clone(),
                    resources: serde_json::to_vec(&res)
                        .map_err(|e| Error::Internal(e.to_string()))?,
                })
                .await
                .map_err(grpc("update"))?;
        }
        entry.update(|r| r.host_config = hc);
        self.save(&entry.record())
    }

    /// POST /containers/{id}/resize.
    pub async fn resize(&self, name: &str, exec_id: &str, w: u32, h: u32) -> Result<()> {
        let entry = self.get(name)?;
        if !entry.running() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                entry.id
            )));
        }
        self.sv
            .tasks()
            .resize_pty(pb::ResizePtyRequest {
                namespace: NAMESPACE.into(),
                container_id: entry.id.clone(),
                exec_id: exec_id.into(),
                width: w,
                height: h,
            })
            .await
            .map_err(grpc("resize"))?;
        Ok(())
    }

    /// Closes the running process's stdin (the attached client closed its side).
    pub async fn close_stdin(
        &self,
        id: &str,
        exec_id: &str,
        stdin: &tokio::sync::Mutex<Option<pipe::Sender>>,
    ) {
        *stdin.lock().await = None;
        let _ = self
            .sv
            .tasks()
            .close_io(pb::CloseIoRequest {
                namespace: NAMESPACE.into(),
                container_id: id.into(),
                exec_id: exec_id.into(),
                stdin: true,
            })
            .await;
    }

    /// POST /containers/{id}/exec.
    pub fn exec_create(&self, name: &str, body: &Value) -> Result<String> {
        let entry = self.get(name)?;
        if !entry.running() {
            return Err(Error::Conflict(format!(
                "container {} is not running",
                entry.id
            )));
        }
        if strs(&body["Cmd"]).is_empty() {
            return Err(Error::Invalid("No exec command specified".into()));
        }
        if let Some(k) = body["DetachKeys"].as_str().filter(|k| !k.is_empty()) {
            detach::parse(k)
                .map_err(|_| Error::Invalid(format!("Invalid escape keys ({k}) provided")))?;
        }
        let id = random_hex(32);
        let (out, _) = broadcast::channel(1024);
        let exec = Arc::new(Exec {
            id: id.clone(),
            container: entry.id.clone(),
            config: body.clone(),
            state: Mutex::new((false, None, 0)),
            out,
            stdin: tokio::sync::Mutex::new(None),
            done: watch::Sender::new(false),
        });
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), exec);
        self.emit(
            &format!("exec_create: {}", exec_command_text(body)),
            &entry.record(),
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    /// An exec by ID.
    pub fn exec(&self, id: &str) -> Result<Arc<Exec>> {
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("No such exec instance: {id}")))
    }

    /// Whether an exec can start: not run yet, and its container running (checked
    /// before exec start hijacks the connection, as dockerd does).
    pub fn exec_startable(&self, exec: &Exec) -> Result<Arc<Entry>> {
        {
            let st = exec.state.lock().unwrap_or_else(|p| p.into_inner());
            if st.0 || st.1.is_some() {
                return Err(Error::Conflict(format!(
                    "Error: Exec command {} has already run",
                    exec.id
                )));
            }
        }
        let entry = self.get(&exec.container)?;
        if !entry.running() {
            return Err(Error::Conflict(format!(
                "container {} is not running",
                entry.id
            )));
        }
        Ok(entry)
    }

    /// Starts an exec'd process; its output goes to `exec.out`.
    pub async fn exec_start(self: &Arc<Self>, exec: &Arc<Exec>, tty: bool) -> Result<()> {
        let entry = self.exec_startable(exec)?;
        let rec = entry.record();
        let c = &exec.config;
        // As dockerd: announced before the process is tried (health probes included).
        self.emit(
            &format!("exec_start: {}", exec_command_text(c)),
            &rec,
            &[("execID", exec.id.clone())],
        );
        let mut process = rec.spec["process"].clone();
        process["args"] = json!(strs(&c["Cmd"]));
        process["terminal"] = json!(tty);
        let mut env = strs(&process["env"]);
        for e in strs(&c["Env"]) {
            let key = e.split('=').next().unwrap_or("").to_string();
            env.retain(|x| x.split('=').next() != Some(key.as_str()));
            env.push(e);
        }
        process["env"] = json!(env);
        if let Some(w) = c["WorkingDir"].as_str().filter(|s| !s.is_empty()) {
            process["cwd"] = json!(w);
        }
        if let Some(u) = c["User"].as_str().filter(|s| !s.is_empty()) {
            let lowers = self.lowerdirs(&rec)?;
            let (uid, gid, gids) = self.user_of(&rec, &lowers, u)?;
            process["user"] = json!({"uid": uid, "gid": gid, "additionalGids": gids});
        }
        if c["Privileged"].as_bool().unwrap_or(false) {
            let caps = spec::host_caps();
            process["capabilities"] =
                json!({"bounding": caps, "effective": caps, "permitted": caps});
        }
        let open_stdin = c["AttachStdin"].as_bool().unwrap_or(false);
        let fifos = Fifos::make(
            &self.fifo_dir(&rec.id),
            &format!("exec-{}", &exec.id[..16]),
            open_stdin,
        )
        .map_err(internal("making FIFOs"))?;
        let (exited_tx, exited_rx) = watch::channel(false);
        let copiers = io::spawn_copiers(&fifos, tty, None, exec.out.clone(), exited_rx);
        let stdin = fifos.open_stdin().map_err(internal("opening stdin"))?;
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        let mut tasks = self.sv.tasks();
        let r = tasks
            .exec(pb::ExecProcessRequest {
                namespace: NAMESPACE.into(),
                container_id: rec.id.clone(),
                exec_id: exec.id.clone(),
                stdin: path(&fifos.stdin),
                stdout: fifos.stdout.display().to_string(),
                stderr: fifos.stderr.display().to_string(),
                terminal: tty,
                spec: serde_json::to_vec(&process).map_err(|e| Error::Internal(e.to_string()))?,
            })
            .await;
        let started = match r {
            Ok(_) => tasks
                .start(pb::StartRequest {
                    namespace: NAMESPACE.into(),
                    container_id: rec.id.clone(),
                    exec_id: exec.id.clone(),
                })
                .await
                .map(|r| r.into_inner().pid),
            Err(e) => Err(e),
        };
        let pid = match started {
            Ok(p) => p,
            Err(e) => {
                let _ = exited_tx.send(true);
                copiers.abort();
                let _ = tasks
                    .delete_process(pb::DeleteProcessRequest {
                        namespace: NAMESPACE.into(),
                        container_id: rec.id.clone(),
                        exec_id: exec.id.clone(),
                    })
                    .await;
                fifos.remove();
                let msg = e.message().to_string();
                let code = exec_start_code(&strs(&c["Cmd"]), &msg);
                *exec.state.lock().unwrap_or_else(|p| p.into_inner()) = (false, Some(code), 0);
                let _ = exec.out.send(Chunk::End);
                exec.done.send_replace(true);
                return Err(Error::Internal(format!("exec failed: {msg}")));
            }
        };
        *exec.stdin.lock().await = stdin;
        *exec.state.lock().unwrap_or_else(|p| p.into_inner()) = (true, None, pid);
        let exec = exec.clone();
        let this = self.clone();
        tokio::spawn(async move {
            let code = match tasks
                .wait(pb::WaitRequest {
                    namespace: NAMESPACE.into(),
                    container_id: exec.container.clone(),
                    exec_id: exec.id.clone(),
                })
                .await
            {
                Ok(r) => r.into_inner().exit_status as i64,
                Err(_) => 255,
            };
            // Recorded before the stream ends: the client inspects the exit code then.
            *exec.state.lock().unwrap_or_else(|p| p.into_inner()) = (false, Some(code), pid);
            this.emit(
                "exec_die",
                &rec,
                &[("execID", exec.id.clone()), ("exitCode", code.to_string())],
            );
            let _ = exited_tx.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(5), copiers).await;
            *exec.stdin.lock().await = None;
            let _ = tasks
                .delete_process(pb::DeleteProcessRequest {
                    namespace: NAMESPACE.into(),
                    container_id: exec.container.clone(),
                    exec_id: exec.id.clone(),
                })
                .await;
            fifos.remove();
            *exec.state.lock().unwrap_or_else(|p| p.into_inner()) = (false, Some(code), pid);
            exec.done.send_replace(true);
        });
        Ok(())
    }

    /// The detach keys of an exec (dockerd's default unless its config names others).
    pub fn exec_detach_keys(exec: &Exec) -> Vec<u8> {
        exec.config["DetachKeys"]
            .as_str()
            .filter(|k| !k.is_empty())
            .and_then(|k| detach::parse(k).ok())
            .unwrap_or_else(|| detach::DEFAULT.to_vec())
    }

    /// IDs of the running execs of a container.
    pub fn exec_ids(&self, id: &str) -> Vec<String> {
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|e| e.container == id && e.state.lock().map(|s| s.0).unwrap_or(false))
            .map(|e| e.id.clone())
            .collect()
    }
}

/// An exec's command as dockerd's exec events name it: the program, a space, then its
/// arguments joined by spaces (so a command without arguments ends in a space).
fn exec_command_text(config: &Value) -> String {
    let cmd = strs(&config["Cmd"]);
    let (program, args) = cmd
        .split_first()
        .map_or(("", &[][..]), |(p, a)| (p.as_str(), a));
    format!("{program} {}", args.join(" "))
}

/// The exit code of an exec whose process could not start, as dockerd records it: 127
/// when the runtime says the program was not found, else 126.
fn exec_start_code(cmd: &[String], msg: &str) -> i64 {
    let m = msg.to_lowercase();
    let program = cmd.first().map(|c| c.to_lowercase()).unwrap_or_default();
    if m.contains(&program)
        && (m.contains("executable file not found") || m.contains("no such file or directory"))
    {
        127
    } else {
        126
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL"), Some(9));
        assert_eq!(parse_signal("SIGTERM"), Some(15));
        assert_eq!(parse_signal("10"), Some(10));
        assert_eq!(parse_signal("BOGUS"), None);
    }

    #[test]
    fn users() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(d.path().join("etc/group"), "root:x:0:\nwheel:x:10:nobody\n").unwrap();
        let root = berth_fs::Root::open(d.path()).unwrap();
        let roots = Some(&root);
        assert_eq!(lookup_user(roots, "").unwrap(), (0, 0, vec![]));
        assert_eq!(
            lookup_user(roots, "nobody").unwrap(),
            (65534, 65534, vec![10])
        );
        assert_eq!(
            lookup_user(roots, "1000:wheel").unwrap(),
            (1000, 10, vec![])
        );
        assert!(lookup_user(roots, "ghost").is_err());
    }

    #[test]
    fn names() {
        assert!(valid_name("web-1"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a b"));
    }

    #[test]
    fn exec_start_codes() {
        let cmd = |c: &str| vec![c.to_string()];
        let nf = r#"exec "nosuch": executable file not found in $PATH"#;
        assert_eq!(exec_start_code(&cmd("nosuch"), nf), 127);
        let gone = r#"exec "/nope": stat /nope: no such file or directory"#;
        assert_eq!(exec_start_code(&cmd("/nope"), gone), 127);
        let denied = r#"exec "/etc/passwd": permission denied"#;
        assert_eq!(exec_start_code(&cmd("/etc/passwd"), denied), 126);
        // A missing working directory is not a missing program.
        let cwd = r#"chdir to cwd ("/x") set in config.json failed: no such file or directory"#;
        assert_eq!(exec_start_code(&cmd("ls"), cwd), 126);
    }
}
