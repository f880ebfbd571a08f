//! Running the daemon: open the stores, bind the listeners, serve until a signal.

use crate::api::{self, AppState};
use crate::config::Config;
use crate::images::ImageService;
use crate::listen::Listeners;
use anyhow::Context;
use tower::Layer as _;

/// Creates `dir` if needed and sets its mode (also on a directory an older berthd made
/// with a wider one).
fn make_private_dir(dir: &std::path::Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
}

/// Runs berthd until SIGINT or SIGTERM.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let runtimes = cfg.runtimes()?;
    // First, as dockerd: a bad -H, TLS file or group stops berthd before it makes
    // anything, and the sockets are made before any other thread creates files (see
    // listen::unix). Unix sockets appear at their paths once the API is served.
    let listeners = Listeners::bind(&cfg).await?;
    berth_heap::trim_periodically(std::time::Duration::from_secs(10));
    // Private, as dockerd keeps them: containers' environments (secrets), logs and files
    // are no other local user's to read.
    make_private_dir(&cfg.data_root, 0o710)
        .with_context(|| format!("creating data root {}", cfg.data_root.display()))?;
    make_private_dir(&cfg.exec_root, 0o700)
        .with_context(|| format!("creating exec root {}", cfg.exec_root.display()))?;
    // The default socket lives in the exec root: its -G group may pass through (0710),
    // never list it; what is inside keeps its own modes.
    listeners
        .open_socket_dir(&cfg.exec_root)
        .with_context(|| format!("letting the socket group into {}", cfg.exec_root.display()))?;
    let images = ImageService::open(&cfg.data_root, cfg.insecure_registries.clone())
        .with_context(|| format!("opening image store in {}", cfg.data_root.display()))?;
    // Blobs and snapshots that a crash left unreferenced (a pull cut short) go now.
    match images.gc().await {
        Ok(0) => {}
        Ok(freed) => tracing::info!(freed, "collected leftovers of an interrupted run"),
        Err(e) => tracing::warn!(error = %e, "garbage collection at startup failed"),
    }
    let pid_file = cfg.exec_root.join("berthd.pid");
    std::fs::write(&pid_file, std::process::id().to_string())
        .with_context(|| format!("writing {}", pid_file.display()))?;
    let sv = crate::containers::supervisor::grpc::Grpc::start(
        cfg.supervisor.as_deref(),
        &cfg.data_root,
        &cfg.exec_root,
        &cfg.log_level,
    )
    .await
    .context("berth-supervisor")?;
    let containers = crate::containers::ContainerService::open(
        images.clone(),
        std::sync::Arc::new(sv),
        &cfg.data_root,
        &cfg.exec_root,
        crate::containers::Options {
            runtimes,
            cgroup_parent: cfg.cgroup_parent.clone(),
            restart_delay: std::time::Duration::from_millis(100),
        },
    )
    .await
    .context("opening containers")?;
    let weak = std::sync::Arc::downgrade(&containers);
    images.set_users(Box::new(move || {
        weak.upgrade().map(|c| c.image_users()).unwrap_or_default()
    }));
    let builds =
        crate::build::BuildService::new(images.clone(), containers.clone(), &cfg.exec_root);
    // No build survives a restart: the step containers a crash left go now.
    builds.sweep().await;
    let state = AppState {
        images,
        data_root: cfg.data_root.clone(),
        containers: containers.clone(),
        builds,
    };
    let app = axum::middleware::from_fn(api::negotiate).layer(api::router(state));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (mut servers, sockets) = listeners.serve(app, stop_rx).context("serving the API")?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        Some(r) = servers.join_next() => {
            r.context("server task")?.context("serving")?;
        }
    }
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    // Streams in flight (a pull) get a moment to finish, not forever.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while servers.join_next().await.is_some() {}
    })
    .await;
    drop(sockets);
    containers.shutdown().await;
    let _ = std::fs::remove_file(pid_file);
    Ok(())
}
