//! Containers: their records (`store`), made by `create`, run through berth-supervisor
//! (`supervisor`, a trait) by `lifecycle` (start, stop, kill, pause, remove...), followed
//! by `monitor` (the supervisor's events: exits, OOM kills, pauses; restart policies;
//! restore after a berthd restart), with `exec`'d processes, `health` checks, `mounts`
//! (binds, volumes, tmpfs), OCI `spec`s, streams and logs (`io`), `docker cp`
//! (`archive`) and `stats`. `ContainerService` ties them together; each concern is its
//! own module with its own part of the service.

pub mod archive;
pub mod container;
pub mod create;
pub mod events;
pub mod exec;
pub mod facts;
pub mod health;
pub mod io;
pub mod lifecycle;
pub mod monitor;
pub mod mounts;
pub mod network;
pub mod record;
pub mod sharing;
pub mod spec;
pub mod state;
pub mod stats;
pub mod store;
pub mod supervisor;
pub mod users;
pub mod view;
pub mod volumes;

pub use container::Container;
pub use exec::Exec;
pub use record::Record;

use crate::images::ImageService;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use supervisor::Supervisor;

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
    /// 403 (networks: not allowed in this state).
    #[error("{0}")]
    Forbidden(String),
    /// 304 (already started / stopped).
    #[error("{0}")]
    NotModified(String),
    /// 500.
    #[error("{0}")]
    Internal(String),
}

/// Result of container operations.
pub type Result<T> = std::result::Result<T, Error>;

impl From<state::TransitionError> for Error {
    fn from(t: state::TransitionError) -> Self {
        match t.http_status() {
            304 => Error::NotModified(t.to_string()),
            409 => Error::Conflict(t.to_string()),
            _ => Error::Internal(t.to_string()),
        }
    }
}

impl From<supervisor::Error> for Error {
    fn from(e: supervisor::Error) -> Self {
        match e {
            supervisor::Error::NotFound(m) => Error::NotFound(m),
            supervisor::Error::Invalid(m) => Error::Invalid(m),
            supervisor::Error::Conflict(m) => Error::Conflict(m),
            other => Error::Internal(other.to_string()),
        }
    }
}

fn internal(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::Internal(format!("{what}: {e}"))
}

/// Runs blocking work (file systems, mounts) on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("blocking task: {e}")))?
}

/// How the service runs; the defaults are dockerd's.
#[derive(Debug, Clone)]
pub struct Options {
    /// The OCI runtimes containers may name (HostConfig.Runtime).
    pub runtimes: crate::config::Runtimes,
    /// Where containers' cgroups go unless their HostConfig.CgroupParent says otherwise.
    pub cgroup_parent: String,
    /// The first delay before a restart policy restarts a container (dockerd's 100 ms;
    /// the later ones, doubled at each restart in a row, scale with it).
    pub restart_delay: Duration,
    /// Networking (bridges, addresses, ports, names); None: containers may only have
    /// `none`, `host` or another container's network (the unit tests' fake setup).
    pub networks: Option<Arc<crate::networks::NetworkService>>,
}

/// The container half of the engine.
pub struct ContainerService {
    images: Arc<ImageService>,
    /// Named volumes.
    pub volumes: volumes::Volumes,
    sv: Arc<dyn Supervisor>,
    store: store::Store,
    execs: exec::Execs,
    /// Container events (Docker's /events messages).
    pub events: events::Events,
    /// Health check loops.
    health: health::Monitors,
    /// The OCI runtimes containers may name (HostConfig.Runtime).
    pub runtimes: crate::config::Runtimes,
    cgroup_parent: String,
    restart_delay: Duration,
    networks: Option<Arc<crate::networks::NetworkService>>,
    exec_root: PathBuf,
    /// What the host can do (CPUs, cgroup controllers), for berth-api's checks.
    facts: berth_api::validate::HostFacts,
}

pub(crate) fn random_hex(n: usize) -> String {
    use std::io::Read;
    let mut b = vec![0u8; n];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    hex::encode(b)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
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

impl ContainerService {
    /// Opens the container store, follows the supervisor's events and finds the
    /// containers of an earlier run again.
    pub async fn open(
        images: Arc<ImageService>,
        sv: Arc<dyn Supervisor>,
        data_root: &Path,
        exec_root: &Path,
        options: Options,
    ) -> anyhow::Result<Arc<Self>> {
        let (data, exec) = (data_root.to_path_buf(), exec_root.to_path_buf());
        let (store, volumes, facts) = tokio::task::spawn_blocking(move || {
            // Views that a crash left mounted between mount and unmount.
            berth_fs::view::sweep(&exec.join("views"));
            let store = store::Store::open(&data.join("containers"))?;
            let volumes = volumes::Volumes::open(&data)?;
            Ok::<_, std::io::Error>((store, volumes, facts::gather()))
        })
        .await??;
        let s = Arc::new(Self {
            volumes,
            images,
            sv,
            store,
            execs: exec::Execs::default(),
            events: events::Events::default(),
            health: health::Monitors::default(),
            runtimes: options.runtimes,
            cgroup_parent: options.cgroup_parent,
            restart_delay: options.restart_delay,
            networks: options.networks,
            exec_root: exec_root.to_path_buf(),
            facts,
        });
        if let Some(n) = &s.networks {
            // What the containers that were running use is kept (the supervisor's
            // events and the restore below tear down those whose task is gone);
            // every leftover of the others goes.
            let running: std::collections::HashSet<String> = s
                .store
                .all()
                .iter()
                .filter(|c| state::has_task(c.status()))
                .map(|c| c.id.clone())
                .collect();
            n.reconcile(&running).await?;
        }
        s.clone().follow().await;
        Ok(s)
    }

    /// Finds a container by full ID, name (with or without `/`) or unique ID prefix.
    pub fn get(&self, name: &str) -> Result<Arc<Container>> {
        self.store.find(name)
    }

    /// Every container, newest first.
    pub fn all(&self) -> Vec<Arc<Container>> {
        let mut v: Vec<_> = self
            .store
            .all()
            .into_iter()
            .map(|c| (c.read(|r| r.created.clone()), c))
            .collect();
        v.sort_by(|a, b| b.0.cmp(&a.0));
        v.into_iter().map(|(_, c)| c).collect()
    }

    /// Image ID → a container using it.
    pub fn image_users(&self) -> std::collections::HashMap<String, String> {
        self.store
            .all()
            .iter()
            .map(|c| (c.read(|r| r.image_id.clone()), c.id.clone()))
            .collect()
    }

    /// Records and publishes a container event.
    pub fn emit(&self, action: &str, rec: &Record, extra: &[(&str, String)]) {
        self.events.emit(action, rec, extra);
    }

    /// Stops the supervisor berthd started.
    pub async fn shutdown(&self) {
        self.sv.shutdown().await;
    }

    /// The directory of a container's records, logs and upper dir.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.store.dir(id)
    }

    /// Where a container's FIFOs live.
    fn fifo_dir(&self, id: &str) -> PathBuf {
        self.exec_root.join("containers").join(id)
    }

    /// Where read-only views of containers' file systems are briefly mounted.
    fn views_dir(&self) -> PathBuf {
        self.exec_root.join("views")
    }

    /// The json-file log.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir(id).join(format!("{id}-json.log"))
    }

    /// The bytes a container wrote: the size of its overlay upper dir (SizeRw); walks it.
    pub async fn size_rw(&self, id: &str) -> u64 {
        let upper = self.dir(id).join("upper");
        tokio::task::spawn_blocking(move || crate::disk_usage::disk_usage(&upper))
            .await
            .unwrap_or(0)
    }
}

#[cfg(test)]
pub(crate) mod testing;

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
}
