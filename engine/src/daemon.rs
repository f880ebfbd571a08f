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
    let net_cfg = cfg.network();
    if let Some(b) = &net_cfg.bridge {
        if b.is_empty() || b.len() > 15 {
            anyhow::bail!("invalid --bridge {b:?}: a link name of 1 to 15 characters");
        }
    }
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
    let registry = crate::registry::RegistryClient::new(cfg.insecure_registries.clone())
        .with_mirrors(cfg.mirrors()?)?;
    let images = ImageService::open_with(&cfg.data_root, registry)
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
    // The CRI's pods live in a supervisor namespace of their own, apart from berthd's.
    let cri_sv = match &cfg.cri_socket {
        Some(_) => Some(
            sv.in_namespace(crate::cri::NAMESPACE)
                .await
                .context("supervisor namespace for the CRI")?,
        ),
        None => None,
    };
    let networks = crate::networks::NetworkService::open(net_cfg)
        .await
        .context("opening networks")?;
    let containers = crate::containers::ContainerService::open(
        images.clone(),
        std::sync::Arc::new(sv),
        &cfg.data_root,
        &cfg.exec_root,
        crate::containers::Options {
            runtimes,
            cgroup_parent: cfg.cgroup_parent.clone(),
            restart_delay: std::time::Duration::from_millis(100),
            networks: Some(networks.clone()),
        },
    )
    .await
    .context("opening containers")?;
    // The CRI (off unless --cri-socket): pods in the supervisor's `k8s.io` namespace.
    let cri = match (&cfg.cri_socket, cri_sv) {
        (Some(socket), Some(cri_sv)) => {
            let opts = crate::cri::Options {
                socket: socket.clone(),
                data_dir: cfg.data_root.join("cri"),
                state_dir: cfg.exec_root.join("cri"),
                stream_address: cfg.cri_stream_address.clone(),
                cni_conf_dir: cfg.cni_conf_dir.clone(),
                cni_bin_dirs: cfg.cni_bin_dirs(),
                cgroup_driver: cfg.cri_cgroup_driver,
                sandbox_image: cfg.cri_sandbox_image.clone(),
                runtimes: cfg.runtimes()?,
            };
            let cri = crate::cri::Cri::open(opts, images.clone(), std::sync::Arc::new(cri_sv))
                .await
                .context("opening the CRI")?;
            Some(cri)
        }
        _ => None,
    };
    let weak = std::sync::Arc::downgrade(&containers);
    let weak_cri = cri.as_ref().map(std::sync::Arc::downgrade);
    images.set_users(Box::new(move || {
        let mut users = weak.upgrade().map(|c| c.image_users()).unwrap_or_default();
        if let Some(cri) = weak_cri.as_ref().and_then(|w| w.upgrade()) {
            users.extend(cri.image_users());
        }
        users
    }));
    let builds =
        crate::build::BuildService::new(images.clone(), containers.clone(), &cfg.exec_root);
    // No build survives a restart: the step containers a crash left go now.
    builds.sweep().await;
    let state = AppState {
        images,
        data_root: cfg.data_root.clone(),
        containers: containers.clone(),
        networks: networks.clone(),
        builds,
    };
    let app = axum::middleware::from_fn(api::negotiate).layer(api::router(state));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (mut servers, sockets) = listeners
        .serve(app, stop_rx.clone())
        .context("serving the API")?;
    if let Some(cri) = cri {
        servers.spawn(async move {
            cri.serve(stop_rx)
                .await
                .map_err(|e| std::io::Error::other(format!("{e:#}")))
        });
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
    drop(sockets);
    containers.shutdown().await;
    let anything_running = containers.all().iter().any(|c| c.running());
    networks.shutdown(anything_running).await;
    let _ = std::fs::remove_file(pid_file);
    Ok(())
}
