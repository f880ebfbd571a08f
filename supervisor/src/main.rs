//! berth-supervisor: the layer between the engine and the shims (as containerd is).
//! It owns container records and namespaces (a crash-safe redb store under `--root`),
//! task bundles under `--state`, the shims it starts (berth-shim or
//! containerd-shim-runc-v2), watching each through a pidfd and cleaning up after a dead
//! one (`dead_shim`), and the event fan-out. It serves berth.supervisor.v1 over gRPC on
//! a 0600 unix socket, with gRPC reflection and health. It never runs an OCI runtime
//! itself: shims do (a dead shim's `delete` command included).

mod api;
mod bundle;
mod cgroups;
mod dead_shim;
mod error;
mod events;
mod locks;
mod records;
mod recover;
mod registry;
mod shim;
mod store;
mod sys;
mod tasks;

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use berth_proto::v1 as pb;
use clap::Parser;

/// berth-supervisor: containers, tasks, namespaces and events over gRPC.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Persistent data (the metadata store).
    #[arg(long, default_value = "/var/lib/berth-supervisor")]
    root: PathBuf,
    /// Volatile state (task bundles, shim and event sockets).
    #[arg(long, default_value = "/run/berth-supervisor")]
    state: PathBuf,
    /// The gRPC socket (unix path).
    #[arg(
        long,
        short = 'a',
        default_value = "/run/berth-supervisor/supervisor.sock"
    )]
    address: PathBuf,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, short = 'l', default_value = "info")]
    log_level: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{},h2=warn,tower=warn,hyper=warn",
        args.log_level
    ))
    .with_context(|| format!("--log-level {}", args.log_level))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    berth_heap::limit_arenas();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    berth_heap::trim_periodically(std::time::Duration::from_secs(10));
    let address = args
        .address
        .strip_prefix("unix://")
        .map(PathBuf::from)
        .unwrap_or(args.address.clone());
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&args.root)
        .with_context(|| format!("--root {}", args.root.display()))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(&args.state)
        .with_context(|| format!("--state {}", args.state.display()))?;
    if let Some(dir) = address.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(dir)?;
    }
    let store =
        Arc::new(store::Store::open(&args.root.join("meta.redb")).context("metadata store")?);
    let events_address = PathBuf::from(format!("{}.ttrpc", address.display()));
    let paths = Arc::new(tasks::Paths {
        state: args.state.clone(),
        address: address.clone(),
        events_address: events_address.clone(),
    });
    let registry = Arc::new(tasks::Registry::new(args.state.clone()));
    let bus = events::Bus::new(registry.exit_hook());

    // Shims publish here; serve it before recovering so that they can.
    let _ = std::fs::remove_file(&events_address);
    let events_socket = OwnedSocket::new(&events_address);
    let mut ttrpc_server = containerd_shim_protos::ttrpc::asynchronous::Server::new()
        .bind(&format!("unix://{}", events_address.display()))
        .with_context(|| format!("events socket {}", events_address.display()))?
        .register_service(containerd_shim_protos::shim_async::create_events(Arc::new(
            events::Forwarder(bus.clone()),
        )));
    ttrpc_server.start().await.context("events server")?;
    std::fs::set_permissions(&events_address, std::fs::Permissions::from_mode(0o600))?;
    let events_socket = events_socket.bound();

    let tasks = Arc::new(tasks::Tasks::new(
        paths,
        store.clone(),
        bus.clone(),
        registry,
    ));
    tasks.recover().await;

    let state = api::State { store, tasks, bus };
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<pb::tasks_server::TasksServer<api::State>>()
        .await;
    health
        .set_serving::<pb::containers_server::ContainersServer<api::State>>()
        .await;
    health
        .set_serving::<pb::events_server::EventsServer<api::State>>()
        .await;
    health
        .set_serving::<pb::namespaces_server::NamespacesServer<api::State>>()
        .await;
    health
        .set_serving::<pb::version_server::VersionServer<api::State>>()
        .await;
    // Both reflection versions: grpcurl asks v1 first, grpcio's reflection helper and
    // older tools only speak v1alpha.
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection = reflection_builder().build_v1().context("reflection")?;
    let reflection_v1alpha = reflection_builder()
        .build_v1alpha()
        .context("reflection v1alpha")?;

    let _ = std::fs::remove_file(&address);
    let listener = tokio::net::UnixListener::bind(&address)
        .with_context(|| format!("--address {}", address.display()))?;
    let api_socket = OwnedSocket::new(&address).bound();
    std::fs::set_permissions(&address, std::fs::Permissions::from_mode(0o600))?;
    tracing::info!(address = %address.display(), "serving berth.supervisor.v1");

    let server = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(pb::namespaces_server::NamespacesServer::new(state.clone()))
        .add_service(pb::containers_server::ContainersServer::new(state.clone()))
        .add_service(pb::tasks_server::TasksServer::new(state.clone()))
        .add_service(pb::events_server::EventsServer::new(state.clone()))
        .add_service(pb::version_server::VersionServer::new(state))
        .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener));

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = server => r.context("gRPC server")?,
        _ = term.recv() => tracing::info!("SIGTERM: exiting; shims keep running"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: exiting; shims keep running"),
    }
    api_socket.remove();
    events_socket.remove();
    Ok(())
}

/// A socket file we bound, removed at exit only if it is still ours: a supervisor that
/// is being replaced (berthd restarting it) must not delete its successor's sockets.
struct OwnedSocket {
    path: PathBuf,
    inode: Option<(u64, u64)>,
}

impl OwnedSocket {
    fn new(path: &std::path::Path) -> Self {
        Self {
            path: path.to_path_buf(),
            inode: None,
        }
    }

    fn id(path: &std::path::Path) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(path)
            .ok()
            .map(|m| (m.dev(), m.ino()))
    }

    /// Note the file just bound.
    fn bound(mut self) -> Self {
        self.inode = Self::id(&self.path);
        self
    }

    fn remove(&self) {
        if self.inode.is_some() && Self::id(&self.path) == self.inode {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
