//! Running the daemon: open the stores, bind the listeners, serve until a signal.

use crate::api::{self, AppState};
use crate::config::Config;
use crate::images::ImageService;
use anyhow::{bail, Context};
use axum::extract::Request;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use tower::Layer;

enum Listen {
    Unix(PathBuf),
    Tcp(String),
}

fn parse_host(h: &str) -> anyhow::Result<Listen> {
    if let Some(p) = h.strip_prefix("unix://") {
        if p.is_empty() {
            bail!("invalid host {h:?}: empty socket path");
        }
        return Ok(Listen::Unix(PathBuf::from(p)));
    }
    if let Some(a) = h.strip_prefix("tcp://") {
        return Ok(Listen::Tcp(a.to_string()));
    }
    if h.starts_with('/') {
        return Ok(Listen::Unix(PathBuf::from(h)));
    }
    bail!("invalid host {h:?}: expected unix://PATH or tcp://HOST:PORT")
}

/// Creates `dir` if needed and sets its mode (also on a directory an older berthd made
/// with a wider one).
fn make_private_dir(dir: &std::path::Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
}

/// Runs berthd until SIGINT or SIGTERM.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    berth_heap::trim_periodically(std::time::Duration::from_secs(10));
    let runtimes = cfg.runtimes()?;
    let listens = cfg
        .listen_addresses()
        .iter()
        .map(|h| parse_host(h))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Private, as dockerd keeps them: containers' environments (secrets), logs and files
    // are no other local user's to read.
    make_private_dir(&cfg.data_root, 0o710)
        .with_context(|| format!("creating data root {}", cfg.data_root.display()))?;
    make_private_dir(&cfg.exec_root, 0o700)
        .with_context(|| format!("creating exec root {}", cfg.exec_root.display()))?;
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
    let mut servers = tokio::task::JoinSet::new();
    let mut sockets = Vec::new();
    for l in listens {
        let app = app.clone();
        let mut stop = stop_rx.clone();
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        match l {
            Listen::Unix(path) => {
                if let Ok(m) = std::fs::symlink_metadata(&path) {
                    if !m.file_type().is_socket() {
                        bail!("{} exists and is not a socket", path.display());
                    }
                    std::fs::remove_file(&path)
                        .with_context(|| format!("removing stale socket {}", path.display()))?;
                }
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                let listener = tokio::net::UnixListener::bind(&path)
                    .with_context(|| format!("listening on {}", path.display()))?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))
                    .with_context(|| format!("chmod {}", path.display()))?;
                tracing::info!(socket = %path.display(), "API listening");
                sockets.push(path);
                servers.spawn(async move {
                    axum::serve(
                        listener,
                        axum::ServiceExt::<Request>::into_make_service(app),
                    )
                    .with_graceful_shutdown(shutdown)
                    .await
                });
            }
            Listen::Tcp(addr) => {
                let listener = tokio::net::TcpListener::bind(&addr)
                    .await
                    .with_context(|| format!("listening on tcp://{addr}"))?;
                tracing::warn!(%addr, "API listening on TCP without TLS");
                servers.spawn(async move {
                    axum::serve(
                        listener,
                        axum::ServiceExt::<Request>::into_make_service(app),
                    )
                    .with_graceful_shutdown(shutdown)
                    .await
                });
            }
        }
    }
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
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
    containers.shutdown().await;
    let _ = std::fs::remove_file(pid_file);
    Ok(())
}
