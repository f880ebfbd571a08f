//! The supervisor calls the CRI makes, in its own namespace (`k8s.io`), so that `docker
//! ps` against berthd never lists pods. The shape follows the engine's container core
//! (one call per task operation, the engine's own types in and out, gRPC codes mapped
//! here once), over the same lazily reconnecting channel berthd uses.

use super::{Error, Result, NAMESPACE};
use berth_proto::v1 as pb;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// A process's standard streams: FIFO paths the shim opens (empty: none).
#[derive(Debug, Clone, Default)]
pub struct Stdio {
    /// stdin FIFO, if the process has one.
    pub stdin: Option<std::path::PathBuf>,
    /// stdout FIFO (the terminal's output with a terminal); None: /dev/null.
    pub stdout: Option<std::path::PathBuf>,
    /// stderr FIFO (unused with a terminal); None: /dev/null.
    pub stderr: Option<std::path::PathBuf>,
    /// Whether the process gets a pseudo-terminal.
    pub terminal: bool,
}

/// A process's state in the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcStatus {
    /// Created, not started.
    Created,
    /// Running (or paused).
    Running,
    /// Exited with this status (128+signal if killed).
    Stopped(u32, i64),
    /// Its shim cannot be reached.
    Unknown,
}

/// The supervisor, as the CRI uses it.
#[derive(Clone)]
pub struct Supervisor {
    channel: Channel,
}

fn map(what: &str) -> impl FnOnce(Status) -> Error + '_ {
    move |s| {
        let msg = format!("{what}: {}", s.message());
        match s.code() {
            Code::NotFound => Error::NotFound(msg),
            Code::InvalidArgument => Error::Invalid(msg),
            Code::AlreadyExists => Error::AlreadyExists(msg),
            Code::FailedPrecondition => Error::FailedPrecondition(msg),
            Code::Unavailable => Error::Unavailable(msg),
            Code::DeadlineExceeded => Error::DeadlineExceeded(msg),
            _ => Error::Internal(msg),
        }
    }
}

fn path(p: &Option<std::path::PathBuf>) -> String {
    p.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
}

fn ns(t: Option<&berth_proto::prost_types::Timestamp>) -> i64 {
    t.map(|t| t.seconds * 1_000_000_000 + i64::from(t.nanos)).unwrap_or(0)
}

impl Supervisor {
    /// Over berthd's channel to its supervisor.
    pub fn new(channel: Channel) -> Self {
        Self { channel }
    }

    fn tasks(&self) -> pb::tasks_client::TasksClient<Channel> {
        pb::tasks_client::TasksClient::new(self.channel.clone())
    }

    fn containers(&self) -> pb::containers_client::ContainersClient<Channel> {
        pb::containers_client::ContainersClient::new(self.channel.clone())
    }

    /// Makes the `k8s.io` namespace (fine if it exists).
    pub async fn ensure_namespace(&self) -> Result<()> {
        let mut c = pb::namespaces_client::NamespacesClient::new(self.channel.clone());
        let req = pb::CreateNamespaceRequest {
            namespace: Some(pb::Namespace {
                name: NAMESPACE.into(),
                labels: Default::default(),
            }),
        };
        match c.create(req).await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Code::AlreadyExists => Ok(()),
            Err(e) => Err(map("creating the supervisor namespace")(e)),
        }
    }

    /// Records a container (its spec and the overlay of its root filesystem); nothing
    /// runs yet.
    pub async fn create(
        &self,
        id: &str,
        spec: &oci_spec::runtime::Spec,
        rootfs_options: Vec<String>,
        runtime_binary: &str,
    ) -> Result<()> {
        let spec = serde_json::to_vec(spec).map_err(super::internal("encoding the OCI spec"))?;
        let container = pb::Container {
            id: id.into(),
            labels: Default::default(),
            spec,
            rootfs: vec![pb::Mount {
                r#type: "overlay".into(),
                source: "overlay".into(),
                target: String::new(),
                options: rootfs_options,
            }],
            runtime: Some(pb::Runtime {
                binary_name: runtime_binary.into(),
                ..Default::default()
            }),
            created_at: None,
            updated_at: None,
        };
        self.containers()
            .create(pb::CreateContainerRequest {
                namespace: NAMESPACE.into(),
                container: Some(container),
            })
            .await
            .map(|_| ())
            .map_err(map("recording the container in the supervisor"))
    }

    /// Creates the container's task (its init process, not started); its host PID.
    pub async fn create_task(&self, id: &str, stdio: &Stdio) -> Result<u32> {
        self.tasks()
            .create(pb::CreateTaskRequest {
                namespace: NAMESPACE.into(),
                container_id: id.into(),
                stdin: path(&stdio.stdin),
                stdout: path(&stdio.stdout),
                stderr: path(&stdio.stderr),
                terminal: stdio.terminal,
            })
            .await
            .map(|r| r.into_inner().pid)
            .map_err(map("creating the task"))
    }

    /// Starts the init process (empty `exec_id`) or an exec'd one; its host PID.
    pub async fn start(&self, id: &str, exec_id: &str) -> Result<u32> {
        self.tasks()
            .start(pb::StartRequest {
                namespace: NAMESPACE.into(),
                container_id: id.into(),
                exec_id: exec_id.into(),
            })
            .await
            .map(|r| r.into_inner().pid)
            .map_err(map("starting"))
    }

    /// Deletes the task (if any, once stopped) and the record (if any).
    pub async fn delete(&self, id: &str) -> Result<()> {
        self.delete_task(id).await?;
        match self
            .containers()
            .delete(pb::DeleteContainerRequest {
                namespace: NAMESPACE.into(),
                id: id.into(),
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Code::NotFound => Ok(()),
            Err(e) => Err(map("deleting the supervisor's record")(e)),
        }
    }

    /// Deletes a stopped task (fine if there is none).
    pub async fn delete_task(&self, id: &str) -> Result<()> {
        match self
            .tasks()
            .delete(pb::DeleteTaskRequest {
                namespace: NAMESPACE.into(),
                container_id: id.into(),
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Code::NotFound => Ok(()),
            Err(e) => Err(map("deleting the task")(e)),
        }
    }

    /// Adds a process to a running task (started with `start`).
    pub async fn exec(
        &self,
        id: &str,
        exec_id: &str,
        process: &oci_spec::runtime::Process,
        stdio: &Stdio,
    ) -> Result<()> {
        let spec = serde_json::to_vec(process).map_err(super::internal("encoding the process"))?;
        self.tasks()
            .exec(pb::ExecProcessRequest {
                namespace: NAMESPACE.into(),
                container_id: id.into(),
                exec_id: exec_id.into(),
                stdin: path(&stdio.stdin),
                stdout: path(&stdio.stdout),
                stderr: path(&stdio.stderr),
                terminal: stdio.terminal,
                spec,
            })
            .await
            .map(|_| ())
            .map_err(map("adding the exec process"))
    }

    /// Forgets a stopped exec'd process (fine if it is gone).
    pub async fn delete_process(&self, id: &str, exec_id: &str) {
        let _ = self
            .tasks()
            .delete_process(pb::DeleteProcessRequest {
                namespace: NAMESPACE.into(),
                container_id: id.into(),
                exec_id: exec_id.into(),
            })
            .await;
    }

    /// Signals a process, or with `all` every process of the container.
    pub async fn kill(&self, id: &str, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        self.tasks()
            .kill(pb::KillRequest {
                namespace: NAMESPACE.into(),
                container_id: id.into(),
                exec_id: exec_id.into(),
                signal,
                all,
            })
            .await
            .map(|_| ())
            .map_err(map("signalling"))
    }

    /// A process's state; NotFound when there is no task.
    pub async fn state(&self, id: &str, exec_id: &str) -> Result<(u32, ProcStatus)> {
        let p = self
            .tasks()
            .get(pb::GetRequest {
                namespace: NAMESPACE.into(),
                container_id: id.into(),
                exec_id: exec_id.into(),
            })
            .await
            .map_err(map("reading the task's state"))?
            .into_inner()
            .process
            .unwrap_or_default();
        let st = match pb::Status::try_from(p.status).unwrap_or(pb::Status::Unknown) {
            pb::Status::Created => ProcStatus::Created,
            pb::Status::Running | pb::Status::Paused | pb::Status::Pausing => ProcStatus::Running,
            pb::Status::Stopped => ProcStatus::Stopped(p.exit_status, ns(p.exited_at.as_ref())),
            pb::Status::Unknown => ProcStatus::Unknown,
        };
        Ok((p.pid, st))
    }

    /// Waits for a process to exit: its exit status and when (ns since the epoch).
    pub async fn wait(&self, id: &str, exec_id: &str) -> Result<(u32, i64)> {
        self.tasks()
            .wait(pb::WaitRequest {
                namespace: NAMESPACE.into(),
                container_id: id.into(),
                exec_id: exec_id.into(),
            })
            .await
            .map(|r| {
                let r = r.into_inner();
                (r.exit_status, ns(r.exited_at.as_ref()))
            })
            .map_err(map("waiting for the exit"))
    }

    /// Changes a running task's resource limits.
    pub async fn update(&self, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        let resources =
            serde_json::to_vec(resources).map_err(super::internal("encoding resources"))?;
        self.tasks()
            .update(pb::UpdateTaskRequest {
                namespace: NAMESPACE.into(),
                container_id: id.into(),
                resources,
            })
            .await
            .map(|_| ())
            .map_err(map("updating the resources"))
    }

    /// Resizes a process's terminal.
    pub async fn resize(&self, id: &str, exec_id: &str, width: u32, height: u32) -> Result<()> {
        self.tasks()
            .resize_pty(pb::ResizePtyRequest {
                namespace: NAMESPACE.into(),
                container_id: id.into(),
                exec_id: exec_id.into(),
                width,
                height,
            })
            .await
            .map(|_| ())
            .map_err(map("resizing the terminal"))
    }

    /// Closes a process's stdin (it reads end-of-file).
    pub async fn close_stdin(&self, id: &str, exec_id: &str) -> Result<()> {
        self.tasks()
            .close_io(pb::CloseIoRequest {
                namespace: NAMESPACE.into(),
                container_id: id.into(),
                exec_id: exec_id.into(),
                stdin: true,
            })
            .await
            .map(|_| ())
            .map_err(map("closing stdin"))
    }

    /// The host PIDs of the task's processes.
    pub async fn pids(&self, id: &str) -> Result<Vec<u32>> {
        self.tasks()
            .list_pids(pb::ListPidsRequest {
                namespace: NAMESPACE.into(),
                container_id: id.into(),
            })
            .await
            .map(|r| r.into_inner().pids)
            .map_err(map("listing the processes"))
    }
}
