//! The gRPC client of a real berth-supervisor: its own, started under the exec root and
//! stopped with berthd (its shims and containers live on), or one given by
//! `--supervisor unix://PATH`. gRPC codes are mapped to the engine's errors here, once.

use super::NAMESPACE;
use super::{Error, Event, EventStream, Exit, NewTask, ProcessState, Result, Status, Stdio};
use anyhow::{bail, Context};
use berth_proto::tonic::transport::Channel;
use berth_proto::tonic::{Code, Status as GrpcStatus};
use berth_proto::v1 as pb;
use futures_util::StreamExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// A connection to the supervisor, and the child process when berthd owns it.
pub struct Grpc {
    /// The gRPC channel (lazy; reconnects).
    channel: Channel,
    /// The supervisor namespace every call is made in (berthd's `berth`, the CRI's
    /// `k8s.io`).
    namespace: String,
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

impl Grpc {
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
            namespace: NAMESPACE.into(),
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

    /// The same supervisor, over the same channel, in another namespace (made if it
    /// does not exist): the CRI keeps pods in `k8s.io`, apart from berthd's containers.
    /// It neither restarts nor stops the supervisor; this one does.
    pub async fn in_namespace(&self, namespace: &str) -> Result<Self> {
        let mut ns = pb::namespaces_client::NamespacesClient::new(self.channel.clone());
        let req = pb::CreateNamespaceRequest {
            namespace: Some(pb::Namespace {
                name: namespace.into(),
                labels: Default::default(),
            }),
        };
        match ns.create(req).await {
            Ok(_) => {}
            Err(e) if e.code() == Code::AlreadyExists => {}
            Err(e) => return Err(error("creating the supervisor namespace")(e)),
        }
        Ok(Self {
            channel: self.channel.clone(),
            namespace: namespace.into(),
            child: std::sync::Mutex::new(None),
            respawn: None,
        })
    }

    fn tasks(&self) -> pb::tasks_client::TasksClient<Channel> {
        pb::tasks_client::TasksClient::new(self.channel.clone())
    }

    fn containers(&self) -> pb::containers_client::ContainersClient<Channel> {
        pb::containers_client::ContainersClient::new(self.channel.clone())
    }

    /// Stops the supervisor berthd started (SIGTERM, then SIGKILL after 10 s); blocks.
    fn stop(&self) {
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

/// The engine's error for a gRPC status, naming what failed (nothing for the runtime's
/// own errors of start and exec, which name it themselves).
fn error(what: &str) -> impl FnOnce(GrpcStatus) -> Error + '_ {
    move |s| {
        let msg = if what.is_empty() {
            s.message().to_string()
        } else {
            format!("{what}: {}", s.message())
        };
        match s.code() {
            Code::NotFound => Error::NotFound(msg),
            Code::InvalidArgument => Error::Invalid(msg),
            Code::FailedPrecondition | Code::AlreadyExists => Error::Conflict(msg),
            Code::Unavailable => Error::Unavailable(msg),
            Code::DataLoss => Error::Lost(msg),
            _ => Error::Failed(msg),
        }
    }
}

fn path(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn time(t: Option<&berth_proto::prost_types::Timestamp>) -> Option<SystemTime> {
    let t = t?;
    let secs = u64::try_from(t.seconds).ok()?;
    let nanos = u32::try_from(t.nanos).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::Invalid(format!("encoding the spec: {e}")))
}

/// An event of the supervisor's stream, if it is one berthd follows.
fn event(env: pb::Envelope) -> Option<Event> {
    use pb::event::Kind;
    Some(match env.event?.kind? {
        Kind::TaskExit(e) => Event::Exit(Exit {
            // exec_id is the contract's; `id` (containerd's spelling) for older ones.
            exec_id: if !e.exec_id.is_empty() {
                Some(e.exec_id)
            } else {
                (!e.id.is_empty() && e.id != e.container_id).then_some(e.id)
            },
            container_id: e.container_id,
            pid: e.pid,
            exit_status: e.exit_status,
            exited_at: time(e.exited_at.as_ref()),
            reason: e.exit_reason,
        }),
        Kind::TaskOom(e) => Event::Oom {
            container_id: e.container_id,
        },
        Kind::TaskPaused(e) => Event::Paused {
            container_id: e.container_id,
        },
        Kind::TaskResumed(e) => Event::Resumed {
            container_id: e.container_id,
        },
        _ => return None,
    })
}

#[async_trait::async_trait]
impl super::Supervisor for Grpc {
    async fn create(&self, task: NewTask) -> Result<()> {
        let container = pb::Container {
            id: task.id.clone(),
            labels: Default::default(),
            spec: json(&task.spec)?,
            rootfs: task
                .rootfs
                .into_iter()
                .map(|m| pb::Mount {
                    r#type: m.kind,
                    source: m.source,
                    target: String::new(),
                    options: m.options,
                })
                .collect(),
            runtime: Some(pb::Runtime {
                binary_name: task.runtime_binary,
                ..Default::default()
            }),
            created_at: None,
            updated_at: None,
        };
        self.containers()
            .create(pb::CreateContainerRequest {
                namespace: self.namespace.clone(),
                container: Some(container),
            })
            .await
            .map_err(error("creating container"))?;
        let created = self
            .tasks()
            .create(pb::CreateTaskRequest {
                namespace: self.namespace.clone(),
                container_id: task.id.clone(),
                stdin: path(&task.stdio.stdin),
                stdout: task.stdio.stdout.display().to_string(),
                stderr: task.stdio.stderr.display().to_string(),
                terminal: task.stdio.terminal,
                log: task.log.map(|l| pb::LogConfig {
                    path: l.path.display().to_string(),
                    max_size: l.max_size,
                    max_file: l.max_file,
                }),
            })
            .await;
        if let Err(e) = created {
            // Nothing half-made: the record goes with the task that failed.
            let _ = self.delete(&task.id).await;
            return Err(error("failed to create task for container")(e));
        }
        Ok(())
    }

    async fn start(&self, id: &str, exec_id: &str) -> Result<u32> {
        Ok(self
            .tasks()
            .start(pb::StartRequest {
                namespace: self.namespace.clone(),
                container_id: id.into(),
                exec_id: exec_id.into(),
            })
            .await
            .map_err(error(""))?
            .into_inner()
            .pid)
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let task = self
            .tasks()
            .delete(pb::DeleteTaskRequest {
                namespace: self.namespace.clone(),
                container_id: id.into(),
            })
            .await;
        match task.map_err(error("deleting task")) {
            Ok(_) | Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let record = self
            .containers()
            .delete(pb::DeleteContainerRequest {
                namespace: self.namespace.clone(),
                id: id.into(),
            })
            .await;
        match record.map_err(error("deleting container")) {
            Ok(_) | Err(Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn exec(
        &self,
        id: &str,
        exec_id: &str,
        process: &oci_spec::runtime::Process,
        stdio: &Stdio,
    ) -> Result<()> {
        self.tasks()
            .exec(pb::ExecProcessRequest {
                namespace: self.namespace.clone(),
                container_id: id.into(),
                exec_id: exec_id.into(),
                stdin: path(&stdio.stdin),
                stdout: stdio.stdout.display().to_string(),
                stderr: stdio.stderr.display().to_string(),
                terminal: stdio.terminal,
                spec: json(process)?,
            })
            .await
            .map_err(error(""))?;
        Ok(())
    }

    async fn delete_process(&self, id: &str, exec_id: &str) -> Result<()> {
        self.tasks()
            .delete_process(pb::DeleteProcessRequest {
                namespace: self.namespace.clone(),
                container_id: id.into(),
                exec_id: exec_id.into(),
            })
            .await
            .map_err(error("deleting process"))?;
        Ok(())
    }

    async fn kill(&self, id: &str, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        self.tasks()
            .kill(pb::KillRequest {
                namespace: self.namespace.clone(),
                container_id: id.into(),
                exec_id: exec_id.into(),
                signal,
                all,
            })
            .await
            .map_err(error("kill"))?;
        Ok(())
    }

    async fn pause(&self, id: &str) -> Result<()> {
        self.tasks()
            .pause(pb::PauseTaskRequest {
                namespace: self.namespace.clone(),
                container_id: id.into(),
            })
            .await
            .map_err(error("pause"))?;
        Ok(())
    }

    async fn resume(&self, id: &str) -> Result<()> {
        self.tasks()
            .resume(pb::ResumeTaskRequest {
                namespace: self.namespace.clone(),
                container_id: id.into(),
            })
            .await
            .map_err(error("unpause"))?;
        Ok(())
    }

    async fn resize(&self, id: &str, exec_id: &str, width: u32, height: u32) -> Result<()> {
        self.tasks()
            .resize_pty(pb::ResizePtyRequest {
                namespace: self.namespace.clone(),
                container_id: id.into(),
                exec_id: exec_id.into(),
                width,
                height,
            })
            .await
            .map_err(error("resize"))?;
        Ok(())
    }

    async fn close_stdin(&self, id: &str, exec_id: &str) -> Result<()> {
        self.tasks()
            .close_io(pb::CloseIoRequest {
                namespace: self.namespace.clone(),
                container_id: id.into(),
                exec_id: exec_id.into(),
                stdin: true,
            })
            .await
            .map_err(error("closing stdin"))?;
        Ok(())
    }

    async fn pids(&self, id: &str) -> Result<Vec<u32>> {
        Ok(self
            .tasks()
            .list_pids(pb::ListPidsRequest {
                namespace: self.namespace.clone(),
                container_id: id.into(),
            })
            .await
            .map_err(error("top"))?
            .into_inner()
            .pids)
    }

    async fn update(&self, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        self.tasks()
            .update(pb::UpdateTaskRequest {
                namespace: self.namespace.clone(),
                container_id: id.into(),
                resources: json(resources)?,
            })
            .await
            .map_err(error("update"))?;
        Ok(())
    }

    async fn state(&self, id: &str, exec_id: &str) -> Result<ProcessState> {
        let p = self
            .tasks()
            .get(pb::GetRequest {
                namespace: self.namespace.clone(),
                container_id: id.into(),
                exec_id: exec_id.into(),
            })
            .await
            .map_err(error("task state"))?
            .into_inner()
            .process
            .ok_or_else(|| Error::NotFound(format!("task state: no process {id} {exec_id}")))?;
        let status = match pb::Status::try_from(p.status).unwrap_or(pb::Status::Unknown) {
            pb::Status::Created => Status::Created,
            pb::Status::Running => Status::Running,
            pb::Status::Paused | pb::Status::Pausing => Status::Paused,
            pb::Status::Stopped => Status::Stopped,
            pb::Status::Unknown => Status::Unknown,
        };
        Ok(ProcessState {
            pid: p.pid,
            status,
            exit_status: p.exit_status,
            exited_at: time(p.exited_at.as_ref()),
            oom_killed: p.oom_killed,
            exit_reason: p.exit_reason,
        })
    }

    async fn subscribe(&self) -> Result<EventStream> {
        let stream = pb::events_client::EventsClient::new(self.channel.clone())
            .subscribe(pb::SubscribeRequest {
                topics: vec![
                    "/tasks/exit".into(),
                    "/tasks/oom".into(),
                    "/tasks/paused".into(),
                    "/tasks/resumed".into(),
                ],
                namespace: self.namespace.clone(),
                container_id: String::new(),
            })
            .await
            .map_err(error("subscribing to events"))?
            .into_inner();
        Ok(Box::pin(stream.filter_map(|item| async move {
            match item {
                Ok(env) => event(env).map(Ok),
                Err(s) => Some(Err(error("events")(s))),
            }
        })))
    }

    async fn reconnect(&self) {
        let Some((data_root, exec_root, socket, level)) = &self.respawn else {
            return;
        };
        let mut g = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let Some(c) = g.as_mut() else {
            return; // stopped on purpose
        };
        // Spawned here, on a runtime worker (they live as long as berthd), never on a
        // blocking-pool thread: the supervisor's parent-death signal follows the thread
        // that forked it, and blocking threads exit when idle.
        if let Ok(Some(st)) = c.try_wait() {
            tracing::warn!(%st, "berth-supervisor died; starting it again");
            match spawn(data_root, exec_root, socket, level) {
                Ok(c) => *g = Some(c),
                Err(e) => tracing::error!(error = %e, "restarting berth-supervisor"),
            }
        }
    }

    async fn shutdown(&self) {
        let child = self.child.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(child) = child else {
            return;
        };
        let stopping = Self {
            channel: self.channel.clone(),
            namespace: self.namespace.clone(),
            child: std::sync::Mutex::new(Some(child)),
            respawn: None,
        };
        let _ = tokio::task::spawn_blocking(move || stopping.stop()).await;
    }
}
