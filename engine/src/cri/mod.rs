//! The Kubernetes Container Runtime Interface (CRI v1): berthd as a kubelet's runtime,
//! as containerd's CRI plugin is. `runtime.v1.RuntimeService` and `ImageService` are
//! served on their own unix socket (`--cri-socket`), as a thin adapter over the
//! engine's image store and over berth-supervisor, where pods and their containers
//! live in their own supervisor namespace (`k8s.io`), apart from berthd's.
//!
//! - `server`: the gRPC services, one line per RPC into the modules below;
//! - `sandbox`, `container`, `exec`, `stats`, `image`, `runtime_info`: one per RPC group;
//! - `store`: the records of pods and containers (crash-safe files, rebuilt at start and
//!   reconciled with the supervisor's tasks);
//! - `spec`: the OCI specs of pause and pod containers; `user`: accounts in images;
//! - `cni` and `netns`: pod networks through CNI plugins in pinned network namespaces;
//! - `io`: container output in the CRI log format, attach, stdin;
//! - `pause`: the internal sandbox image made from the embedded berth-pause binary;
//! - `supervisor`: the supervisor calls the CRI makes, in its namespace;
//! - `uds`: the fix-up of `:authority` that lets unix-socket gRPC clients (the kubelet,
//!   crictl) talk to tonic;
//! - `streaming/`: the HTTP server behind Exec, Attach and PortForward URLs (SPDY/3.1,
//!   the `channel.k8s.io` and `portforward.k8s.io` protocols).

pub mod cni;
pub mod container;
pub mod exec;
pub mod image;
pub mod io;
pub mod netns;
pub mod pause;
pub mod runtime_info;
pub mod sandbox;
pub mod server;
pub mod spec;
pub mod stats;
pub mod store;
pub mod streaming;
pub mod supervisor;
pub mod uds;
pub mod user;

use crate::config::Runtimes;
use crate::images::ImageService;
use k8s_cri::v1 as cri;
use std::path::PathBuf;
use std::sync::Arc;

/// The supervisor namespace of pods and their containers (as containerd's `k8s.io`).
pub const NAMESPACE: &str = "k8s.io";

/// The runtime's name in `Version`.
pub const RUNTIME_NAME: &str = "berth";

/// The CRI version served.
pub const CRI_VERSION: &str = "v1";

/// Errors of CRI calls, by the gRPC code the kubelet gets; each message names the step
/// that failed and the object it failed on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such pod, container or image.
    #[error("{0}")]
    NotFound(String),
    /// A malformed request (a missing field, a bad value).
    #[error("{0}")]
    Invalid(String),
    /// A name already taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// Not in the state the request needs (a container that is not running).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A timeout the request set has passed.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// Not supported by this runtime.
    #[error("{0}")]
    Unimplemented(String),
    /// The supervisor cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: the host, the supervisor or a plugin failed.
    #[error("{0}")]
    Internal(String),
}

/// Result of CRI operations.
pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::NotFound(_) => tonic::Status::not_found(msg),
            Error::Invalid(_) => tonic::Status::invalid_argument(msg),
            Error::AlreadyExists(_) => tonic::Status::already_exists(msg),
            Error::FailedPrecondition(_) => tonic::Status::failed_precondition(msg),
            Error::DeadlineExceeded(_) => tonic::Status::deadline_exceeded(msg),
            Error::Unimplemented(_) => tonic::Status::unimplemented(msg),
            Error::Unavailable(_) => tonic::Status::unavailable(msg),
            Error::Internal(_) => tonic::Status::internal(msg),
        }
    }
}

/// `what: error` as an internal error (host I/O that failed).
pub(crate) fn internal<E: std::fmt::Display>(what: impl Into<String>) -> impl FnOnce(E) -> Error {
    let what = what.into();
    move |e| Error::Internal(format!("{what}: {e}"))
}

/// The cgroup driver the kubelet is configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupDriver {
    /// Paths in the cgroupfs hierarchies (`/kubepods/burstable/podUID/ID`).
    Cgroupfs,
    /// systemd slices (`kubepods-burstable-podUID.slice:cri-berth:ID`).
    Systemd,
}

impl std::str::FromStr for CgroupDriver {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cgroupfs" => Ok(Self::Cgroupfs),
            "systemd" => Ok(Self::Systemd),
            other => Err(format!(
                "invalid cgroup driver {other:?}: expected cgroupfs or systemd"
            )),
        }
    }
}

/// How the CRI is set up (from berthd's flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// The unix socket served (mode 0600).
    pub socket: PathBuf,
    /// Persistent state: records, pod files (`DATA_ROOT/cri`).
    pub data_dir: PathBuf,
    /// Runtime state: FIFOs, network namespaces, shm mounts (`EXEC_ROOT/cri`).
    pub state_dir: PathBuf,
    /// Where the streaming server listens (`127.0.0.1:0`: a free port on loopback).
    pub stream_address: String,
    /// CNI network configurations (the first, by file name, is used).
    pub cni_conf_dir: PathBuf,
    /// Directories searched for CNI plugin binaries.
    pub cni_bin_dirs: Vec<PathBuf>,
    /// The cgroup driver.
    pub cgroup_driver: CgroupDriver,
    /// The sandbox image; None: the internal image of the embedded berth-pause.
    pub sandbox_image: Option<String>,
    /// The OCI runtimes, by handler name (RunPodSandbox's runtime_handler).
    pub runtimes: Runtimes,
}

/// The CRI's state: the engine's images, the supervisor, the records, the network.
pub struct Cri {
    pub(crate) images: Arc<ImageService>,
    pub(crate) sv: supervisor::Supervisor,
    pub(crate) store: store::Store,
    pub(crate) opts: Options,
    pub(crate) cni: cni::Cni,
    pub(crate) streams: streaming::Registry,
    /// Whether oom_score_adj may be lowered (CAP_SYS_RESOURCE); without it, scores
    /// are never set below berthd's own, as containerd's restrict_oom_score_adj.
    pub(crate) oom_floor: Option<i32>,
    /// The streams of running containers, by container ID.
    pub(crate) ios: std::sync::Mutex<std::collections::HashMap<String, Arc<io::ContainerIo>>>,
}

/// The current time in nanoseconds since the epoch, as the CRI's timestamps.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A new random 64-hex-digit ID, as containerd's.
pub(crate) fn new_id() -> String {
    let mut b = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    hex::encode(b)
}

/// True if every `key=value` of `selector` is among `labels`.
pub(crate) fn labels_match(
    labels: &std::collections::HashMap<String, String>,
    selector: &std::collections::HashMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Whether this process may lower its OOM score (CAP_SYS_RESOURCE in its effective
/// set); if not, the floor it may not go below (its own score).
fn oom_floor() -> Option<i32> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    const CAP_SYS_RESOURCE: u64 = 24;
    if eff & (1 << CAP_SYS_RESOURCE) != 0 {
        return None;
    }
    let own = std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    Some(own)
}

impl Cri {
    /// Opens the CRI's state (records, CNI configuration, the streaming server), makes
    /// the supervisor namespace and reconciles the records with the supervisor.
    pub async fn open(
        opts: Options,
        images: Arc<ImageService>,
        sv: Arc<dyn crate::containers::supervisor::Supervisor>,
    ) -> anyhow::Result<Arc<Self>> {
        use anyhow::Context;
        for dir in [&opts.data_dir, &opts.state_dir] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::set_permissions(
                dir,
                <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o700),
            )
            .with_context(|| format!("chmod {}", dir.display()))?;
        }
        let sv = supervisor::Supervisor::new(sv);
        let store = store::Store::open(&opts.data_dir).context("opening CRI records")?;
        let cni = cni::Cni::new(
            opts.cni_conf_dir.clone(),
            opts.cni_bin_dirs.clone(),
            opts.state_dir.join("cni-cache"),
        );
        let streams = streaming::Registry::new();
        let floor = oom_floor();
        if let Some(f) = floor {
            tracing::info!(
                floor = f,
                "no CAP_SYS_RESOURCE: OOM scores of pods are kept at or above berthd's own"
            );
        }
        let this = Arc::new(Self {
            images,
            sv,
            store,
            opts,
            cni,
            streams,
            oom_floor: floor,
            ios: Default::default(),
        });
        this.recover().await;
        Ok(this)
    }

    /// After a restart (or a crash): sandboxes and containers are matched with their
    /// tasks in the supervisor; running ones get their output copied to their logs
    /// again and are watched for their exit, the others are marked as they are.
    async fn recover(self: &Arc<Self>) {
        for sb in self.store.sandboxes() {
            self.recover_sandbox(&sb).await;
        }
        for c in self.store.containers() {
            self.recover_container(&c).await;
        }
    }

    /// Serves the CRI on its socket (0600) and the streaming server, until `stop`.
    pub async fn serve(
        self: Arc<Self>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        use anyhow::Context;
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let path = self.opts.socket.clone();
        if let Ok(m) = std::fs::symlink_metadata(&path) {
            if !m.file_type().is_socket() {
                anyhow::bail!("{} exists and is not a socket", path.display());
            }
            std::fs::remove_file(&path)
                .with_context(|| format!("removing stale socket {}", path.display()))?;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        // The socket is made private before anyone can connect: bound under a umask
        // that leaves only the owner's bits.
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
        let bound = tokio::net::UnixListener::bind(&path);
        nix::sys::stat::umask(old);
        let listener = bound.with_context(|| format!("listening on {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("chmod {}", path.display()))?;
        let stream_addr = streaming::serve(self.clone(), &self.opts.stream_address, stop.clone())
            .await
            .context("CRI streaming server")?;
        tracing::info!(socket = %path.display(), streaming = %stream_addr, "CRI listening");
        let result = tonic::transport::Server::builder()
            .add_service(cri::runtime_service_server::RuntimeServiceServer::new(
                server::Runtime(self.clone()),
            ))
            .add_service(cri::image_service_server::ImageServiceServer::new(
                server::Images(self.clone()),
            ))
            .serve_with_incoming_shutdown(uds::incoming(listener), async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        let _ = std::fs::remove_file(&path);
        result.context("serving the CRI")
    }
}
