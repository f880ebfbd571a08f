//! The berth-supervisor berthd talks to: its own, started under the exec root and
//! stopped with berthd (its shims and containers live on), or one given by
//! `--supervisor unix://PATH`.

use anyhow::{bail, Context};
use berth_proto::tonic::transport::Channel;
use berth_proto::v1 as pb;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The gRPC namespace berthd keeps its containers in.
pub const NAMESPACE: &str = "berth";

/// A connection to the supervisor, and the child process when berthd owns it.
pub struct Supervisor {
    /// The gRPC channel (lazy; reconnects).
    pub channel: Channel,
    child: std::sync::Mutex<Option<std::process::Child>>,
    /// How to start it again: data root, exec root, socket, log level.
    respawn: Option<(PathBuf, PathBuf, PathBuf, String)>,
}

fn find_binary(name: &str) -> PathBuf {
    if let Ok(exe) = std::fs::canonicalize("/proc/self/exe") {
        if let Some(dir) = exe.parent() {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    PathBuf::from(name)
}

/// Starts berth-supervisor. It gets SIGTERM when berthd dies (even by SIGKILL): its
/// shims and containers live on, and the next berthd's supervisor finds them again.
/// Must run on a thread that lives as long as berthd (the main thread): the parent
/// death signal follows the forking thread.
fn spawn(
    data_root: &Path,
    exec_root: &Path,
    socket: &Path,
    log_level: &str,
) -> anyhow::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let _ = std::fs::remove_file(socket);
    let bin = find_binary("berth-supervisor");
    let mut cmd = std::process::Command::new(&bin);
    cmd.arg("--root")
        .arg(data_root.join("supervisor"))
        .arg("--state")
        .arg(exec_root.join("supervisor"))
        .arg("--address")
        .arg(socket)
        .arg("--log-level")
        .arg(log_level)
        .stdin(std::process::Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2),
    // which is async-signal-safe; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    tracing::info!(pid = child.id(), socket = %socket.display(), "started berth-supervisor");
    Ok(child)
}

impl Supervisor {
    /// Connects to `address` (`unix://PATH`), or starts berth-supervisor with its state
    /// under `data_root/supervisor` and `exec_root/supervisor`.
    pub async fn start(
        address: Option<&str>,
        data_root: &Path,
        exec_root: &Path,
        log_level: &str,
    ) -> anyhow::Result<Self> {
        let (socket, child) = match address {
            Some(a) => {
                let p = a.strip_prefix("unix://").unwrap_or(a);
                if p.is_empty() {
                    bail!("invalid --supervisor {a:?}: expected unix://PATH");
                }
                (PathBuf::from(p), None)
            }
            None => {
                let socket = exec_root.join("supervisor/supervisor.sock");
                let child = spawn(data_root, exec_root, &socket, log_level)?;
                (socket, Some(child))
            }
        };
        let respawn = child.as_ref().map(|_| {
            (
                data_root.to_path_buf(),
                exec_root.to_path_buf(),
                socket.clone(),
                log_level.to_string(),
            )
        });
        let s = Self {
            channel: berth_proto::unix_channel(&socket),
            child: std::sync::Mutex::new(child),
            respawn,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut ns = pb::namespaces_client::NamespacesClient::new(s.channel.clone());
            let req = pb::CreateNamespaceRequest {
                namespace: Some(pb::Namespace {
                    name: NAMESPACE.into(),
                    labels: Default::default(),
                }),
            };
            match ns.create(req).await {
                Ok(_) => break,
                Err(e) if e.code() == berth_proto::tonic::Code::AlreadyExists => break,
                Err(e) => {
                    if Instant::now() > deadline {
                        s.stop();
                        bail!("berth-supervisor at {}: {}", socket.display(), e.message());
                    }
                    {
                        let mut g = s.child.lock().unwrap_or_else(|p| p.into_inner());
                        if let Some(c) = g.as_mut() {
                            if let Ok(Some(st)) = c.try_wait() {
                                // The previous one (of a berthd killed a moment ago) may
                                // still hold its store: try again until the deadline.
                                tracing::warn!(%st, "berth-supervisor exited at start; again");
                                *g = Some(spawn(data_root, exec_root, &socket, log_level)?);
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        Ok(s)
    }

    /// Starts the supervisor again if berthd owns it and it has died (a crash, a kill
    /// -9): the new one finds the shims, and berthd's waits reconnect. Called
    /// periodically.
    pub fn revive(&self) {
        let Some((data_root, exec_root, socket, level)) = &self.respawn else {
            return;
        };
        let mut g = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let Some(c) = g.as_mut() else {
            return; // stopped on purpose
        };
        if let Ok(Some(st)) = c.try_wait() {
            tracing::warn!(%st, "berth-supervisor died; starting it again");
            match spawn(data_root, exec_root, socket, level) {
                Ok(c) => *g = Some(c),
                Err(e) => tracing::error!(error = %e, "restarting berth-supervisor"),
            }
        }
    }

    /// The tasks client.
    pub fn tasks(&self) -> pb::tasks_client::TasksClient<Channel> {
        pb::tasks_client::TasksClient::new(self.channel.clone())
    }

    /// The containers client.
    pub fn containers(&self) -> pb::containers_client::ContainersClient<Channel> {
        pb::containers_client::ContainersClient::new(self.channel.clone())
    }

    /// Stops the supervisor berthd started (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(&self) {
        let Some(mut c) = self.child.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}
