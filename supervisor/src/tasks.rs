//! Tasks: bundles, shims and the processes they hold. The bundle directory
//! (`<state>/tasks/<namespace>/<id>`) is the durable record of a task: config.json,
//! the shim's address and binary, and the shim's own files (init.exit, ...). After a
//! restart, `recover` walks these directories and reconnects to every shim.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_proto::v1::{self as pb, event::Kind};
use containerd_shim_protos::api as sh;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::shim::oci::Options;
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::events::{self, Bus};
use crate::shim::{Launch, ShimClient};
use crate::store::{ContainerRec, RuntimeRec, Store};

const CALL: Option<Duration> = Some(Duration::from_secs(30));
const SHIM_BINARY_FILE: &str = "shim-binary";
/// Marker in the bundle: the init exit was delivered to the event bus.
pub const EXIT_REPORTED: &str = "exit-reported";

/// Paths the supervisor runs with.
pub struct Paths {
    /// Volatile state (bundles, sockets).
    pub state: PathBuf,
    /// The gRPC socket.
    pub address: PathBuf,
    /// The ttrpc socket shims publish events to.
    pub events_address: PathBuf,
}

#[derive(Clone)]
struct Task {
    shim: ShimClient,
    bundle: PathBuf,
}

/// The task manager.
pub struct Tasks {
    paths: Arc<Paths>,
    store: Arc<Store>,
    bus: Bus,
    tasks: Mutex<HashMap<(String, String), Task>>,
    // Serializes Create/Delete of one container against each other.
    lifecycle: Mutex<()>,
}

/// The bundle directory of a task.
pub fn bundle_dir(state: &Path, ns: &str, id: &str) -> PathBuf {
    state.join("tasks").join(ns).join(id)
}

fn find_binary(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The shim binary for a runtime, and whether it is berth-shim.
fn shim_for(rt: &RuntimeRec) -> Result<(PathBuf, bool)> {
    if !rt.shim_binary.is_empty() {
        let p = find_binary(&rt.shim_binary).ok_or_else(|| {
            Error::FailedPrecondition(format!("shim binary {}: not found", rt.shim_binary))
        })?;
        let berth = p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("berth"));
        return Ok((p, berth));
    }
    let name = if rt.name.is_empty() {
        "io.containerd.berth.v2"
    } else {
        rt.name.as_str()
    };
    if name == "io.containerd.berth.v2" {
        return ["containerd-shim-berth-v2", "berth-shim"]
            .iter()
            .find_map(|n| find_binary(n))
            .map(|p| (p, true))
            .ok_or_else(|| Error::FailedPrecondition(format!("shim binary berth-shim for runtime {name}: not found beside berth-supervisor or in PATH")));
    }
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() != 4
        || parts[0] != "io"
        || parts[1] != "containerd"
        || !parts[3].starts_with('v')
    {
        return Err(Error::InvalidArgument(format!(
            "runtime name {name:?}: expected io.containerd.NAME.vN"
        )));
    }
    let bin = format!("containerd-shim-{}-{}", parts[2], parts[3]);
    find_binary(&bin).map(|p| (p, false)).ok_or_else(|| {
        Error::FailedPrecondition(format!(
            "shim binary {bin} for runtime {name}: not found in PATH"
        ))
    })
}

fn pb_status(s: sh::Status) -> pb::Status {
    match s {
        sh::Status::CREATED => pb::Status::Created,
        sh::Status::RUNNING => pb::Status::Running,
        sh::Status::STOPPED => pb::Status::Stopped,
        sh::Status::PAUSED => pb::Status::Paused,
        sh::Status::PAUSING => pb::Status::Pausing,
        _ => pb::Status::Unknown,
    }
}

fn tsp(
    t: Option<&containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp>,
) -> Option<berth_proto::prost_types::Timestamp> {
    t.map(|t| events::ts((t.seconds, t.nanos)))
}

impl Tasks {
    /// A manager over `store`, publishing to `bus`.
    pub fn new(paths: Arc<Paths>, store: Arc<Store>, bus: Bus) -> Self {
        Self {
            paths,
            store,
            bus,
            tasks: Mutex::new(HashMap::new()),
            lifecycle: Mutex::new(()),
        }
    }

    async fn get(&self, ns: &str, id: &str) -> Result<Task> {
        self.tasks
            .lock()
            .await
            .get(&(ns.to_string(), id.to_string()))
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("task {id}: not found in namespace {ns}")))
    }

    /// Whether a container has a task.
    pub async fn has(&self, ns: &str, id: &str) -> bool {
        self.tasks
            .lock()
            .await
            .contains_key(&(ns.to_string(), id.to_string()))
    }

    fn launch<'a>(
        &'a self,
        binary: &'a Path,
        ns: &'a str,
        id: &'a str,
        bundle: &'a Path,
    ) -> Launch<'a> {
        Launch {
            binary,
            namespace: ns,
            id,
            bundle,
            address: &self.paths.address,
            events_address: &self.paths.events_address,
        }
    }

    /// Create a task; on any failure nothing is left behind.
    pub async fn create(
        &self,
        ns: &str,
        r: &pb::CreateTaskRequest,
    ) -> Result<pb::CreateTaskResponse> {
        let _guard = self.lifecycle.lock().await;
        let c = self.store.container(ns, &r.container_id)?;
        if self.has(ns, &c.id).await {
            return Err(Error::AlreadyExists(format!(
                "task {}: already exists in namespace {ns}",
                c.id
            )));
        }
        let (shim_bin, is_berth) = shim_for(&c.runtime)?;
        let runtime_bin = if !c.runtime.binary_name.is_empty() {
            Some(find_binary(&c.runtime.binary_name).ok_or_else(|| {
                Error::FailedPrecondition(format!(
                    "runtime binary {}: not found",
                    c.runtime.binary_name
                ))
            })?)
        } else if is_berth {
            Some(find_binary("berth-runtime").ok_or_else(|| {
                Error::FailedPrecondition(
                    "runtime binary berth-runtime: not found beside berth-supervisor or in PATH"
                        .into(),
                )
            })?)
        } else {
            None
        };
        let mut spec: serde_json::Value = serde_json::from_str(&c.spec)
            .map_err(|e| Error::InvalidArgument(format!("container {}: spec: {e}", c.id)))?;
        spec["process"]["terminal"] = serde_json::Value::Bool(r.terminal);
        if !c.rootfs.is_empty() {
            spec["root"]["path"] = serde_json::Value::String("rootfs".into());
        }
        let bundle = bundle_dir(&self.paths.state, ns, &c.id);
        if bundle.exists() {
            // Left by a task that never finished creating: its shim is gone (recover
            // reaps live ones), so the directory is garbage.
            let _ = std::fs::remove_dir_all(&bundle);
        }
        let io = |e: std::io::Error| Error::Internal(format!("bundle {}: {e}", bundle.display()));
        std::fs::create_dir_all(bundle.join("rootfs")).map_err(io)?;
        let res = async {
            std::fs::write(
                bundle.join("config.json"),
                serde_json::to_vec_pretty(&spec).unwrap_or_default(),
            )
            .map_err(io)?;
            std::fs::write(
                bundle.join(SHIM_BINARY_FILE),
                shim_bin.display().to_string(),
            )
            .map_err(io)?;
            follow_shim_log(&bundle, ns, &c.id)?;
            let launch = self.launch(&shim_bin, ns, &c.id, &bundle);
            let address = launch.start().await?;
            let shim = match ShimClient::connect(&address).await {
                Ok(s) => s,
                Err(e) => {
                    launch.delete().await;
                    return Err(e);
                }
            };
            let mut req = sh::CreateTaskRequest::new();
            req.id = c.id.clone();
            req.bundle = bundle.display().to_string();
            req.terminal = r.terminal;
            req.stdin = r.stdin.clone();
            req.stdout = r.stdout.clone();
            req.stderr = r.stderr.clone();
            for m in &c.rootfs {
                let mut sm = sh::Mount::new();
                sm.type_ = m.kind.clone();
                sm.source = m.source.clone();
                sm.target = m.target.clone();
                sm.options = m.options.clone();
                req.rootfs.push(sm);
            }
            let mut opts = Options::new();
            opts.binary_name = runtime_bin
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            opts.root = if c.runtime.root.is_empty() {
                self.paths.state.join("runtime").display().to_string()
            } else {
                c.runtime.root.clone()
            };
            let mut any = Any::new();
            any.type_url = "containerd.runc.v1.Options".into();
            any.value = opts.write_to_bytes().unwrap_or_default();
            req.options = MessageField::some(any);
            match shim
                .call::<_, sh::CreateTaskResponse>("Create", &req, Some(Duration::from_secs(60)))
                .await
            {
                Ok(resp) => Ok((shim, resp.pid)),
                Err(e) => {
                    shutdown_shim(&shim, &c.id).await;
                    launch.delete().await;
                    Err(e)
                }
            }
        }
        .await;
        match res {
            Ok((shim, pid)) => {
                self.tasks
                    .lock()
                    .await
                    .insert((ns.to_string(), c.id.clone()), Task { shim, bundle });
                Ok(pb::CreateTaskResponse {
                    container_id: c.id,
                    pid,
                })
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&bundle);
                Err(e)
            }
        }
    }

    async fn state_of(&self, t: &Task, id: &str, exec_id: &str) -> Result<sh::StateResponse> {
        let mut q = sh::StateRequest::new();
        q.id = id.into();
        q.exec_id = exec_id.into();
        t.shim.call("State", &q, CALL).await
    }

    /// Start init or an exec'd process.
    pub async fn start(&self, ns: &str, id: &str, exec_id: &str) -> Result<u32> {
        let t = self.get(ns, id).await?;
        let mut q = sh::StartRequest::new();
        q.id = id.into();
        q.exec_id = exec_id.into();
        let r: sh::StartResponse = t.shim.call("Start", &q, CALL).await?;
        Ok(r.pid)
    }

    /// The state of a process.
    pub async fn process(&self, ns: &str, id: &str, exec_id: &str) -> Result<pb::Process> {
        let t = self.get(ns, id).await?;
        let s = self.state_of(&t, id, exec_id).await?;
        Ok(pb::Process {
            container_id: id.into(),
            exec_id: exec_id.into(),
            pid: s.pid,
            status: pb_status(s.status.enum_value_or_default()) as i32,
            stdin: s.stdin,
            stdout: s.stdout,
            stderr: s.stderr,
            terminal: s.terminal,
            exit_status: s.exit_status,
            exited_at: tsp(s.exited_at.as_ref()),
        })
    }

    /// Every task of a namespace.
    pub async fn list(&self, ns: &str) -> Result<Vec<pb::Process>> {
        let mut ids: Vec<String> = self
            .tasks
            .lock()
            .await
            .keys()
            .filter(|(n, _)| n == ns)
            .map(|(_, i)| i.clone())
            .collect();
        ids.sort();
        let mut out = Vec::new();
        for id in ids {
            match self.process(ns, &id, "").await {
                Ok(p) => out.push(p),
                Err(_) => out.push(pb::Process {
                    container_id: id,
                    ..Default::default()
                }),
            }
        }
        Ok(out)
    }

    /// Delete a stopped task (or an exec'd process).
    pub async fn delete(&self, ns: &str, id: &str, exec_id: &str) -> Result<pb::DeleteResponse> {
        let _guard = if exec_id.is_empty() {
            Some(self.lifecycle.lock().await)
        } else {
            None
        };
        let t = self.get(ns, id).await?;
        if exec_id.is_empty() {
            let s = self.state_of(&t, id, "").await?;
            if matches!(
                s.status.enum_value_or_default(),
                sh::Status::RUNNING | sh::Status::PAUSED | sh::Status::PAUSING
            ) {
                return Err(Error::FailedPrecondition(format!(
                    "task {id}: is running; kill it before deleting"
                )));
            }
        }
        let mut q = sh::DeleteRequest::new();
        q.id = id.into();
        q.exec_id = exec_id.into();
        let r: sh::DeleteResponse = t.shim.call("Delete", &q, CALL).await?;
        if exec_id.is_empty() {
            shutdown_shim(&t.shim, id).await;
            let _ = std::fs::remove_dir_all(&t.bundle);
            self.tasks
                .lock()
                .await
                .remove(&(ns.to_string(), id.to_string()));
        }
        Ok(pb::DeleteResponse {
            container_id: id.into(),
            exec_id: exec_id.into(),
            pid: r.pid,
            exit_status: r.exit_status,
            exited_at: tsp(r.exited_at.as_ref()),
        })
    }

    /// Signal a process (or all with `all`).
    pub async fn kill(&self, ns: &str, r: &pb::KillRequest) -> Result<()> {
        let t = self.get(ns, &r.container_id).await?;
        let mut q = sh::KillRequest::new();
        q.id = r.container_id.clone();
        q.exec_id = r.exec_id.clone();
        q.signal = if r.signal == 0 { 15 } else { r.signal };
        q.all = r.all;
        t.shim
            .call::<_, sh::Empty>("Kill", &q, CALL)
            .await
            .map(drop)
    }

    /// Add an exec'd process.
    pub async fn exec(&self, ns: &str, r: &pb::ExecProcessRequest) -> Result<()> {
        crate::error::check_id("exec", &r.exec_id)?;
        let spec: serde_json::Value = serde_json::from_slice(&r.spec).map_err(|e| {
            Error::InvalidArgument(format!("exec {}: process spec: {e}", r.exec_id))
        })?;
        if spec["args"].as_array().is_none_or(|a| a.is_empty()) {
            return Err(Error::InvalidArgument(format!(
                "exec {}: process spec has no args",
                r.exec_id
            )));
        }
        let mut spec = spec;
        spec["terminal"] = serde_json::Value::Bool(r.terminal);
        let t = self.get(ns, &r.container_id).await?;
        let mut q = sh::ExecProcessRequest::new();
        q.id = r.container_id.clone();
        q.exec_id = r.exec_id.clone();
        q.terminal = r.terminal;
        q.stdin = r.stdin.clone();
        q.stdout = r.stdout.clone();
        q.stderr = r.stderr.clone();
        let mut any = Any::new();
        any.type_url = "types.containerd.io/opencontainers/runtime-spec/1/Process".into();
        any.value = serde_json::to_vec(&spec).unwrap_or_default();
        q.spec = MessageField::some(any);
        t.shim
            .call::<_, sh::Empty>("Exec", &q, CALL)
            .await
            .map(drop)
    }

    /// Resize a pty.
    pub async fn resize(&self, ns: &str, r: &pb::ResizePtyRequest) -> Result<()> {
        let t = self.get(ns, &r.container_id).await?;
        let mut q = sh::ResizePtyRequest::new();
        q.id = r.container_id.clone();
        q.exec_id = r.exec_id.clone();
        q.width = r.width;
        q.height = r.height;
        t.shim
            .call::<_, sh::Empty>("ResizePty", &q, CALL)
            .await
            .map(drop)
    }

    /// Close stdin.
    pub async fn close_io(&self, ns: &str, r: &pb::CloseIoRequest) -> Result<()> {
        let t = self.get(ns, &r.container_id).await?;
        let mut q = sh::CloseIORequest::new();
        q.id = r.container_id.clone();
        q.exec_id = r.exec_id.clone();
        q.stdin = r.stdin;
        t.shim
            .call::<_, sh::Empty>("CloseIO", &q, CALL)
            .await
            .map(drop)
    }

    /// Pause (true) or resume (false).
    pub async fn pause(&self, ns: &str, id: &str, pause: bool) -> Result<()> {
        let t = self.get(ns, id).await?;
        if pause {
            let mut q = sh::PauseRequest::new();
            q.id = id.into();
            t.shim
                .call::<_, sh::Empty>("Pause", &q, CALL)
                .await
                .map(drop)
        } else {
            let mut q = sh::ResumeRequest::new();
            q.id = id.into();
            t.shim
                .call::<_, sh::Empty>("Resume", &q, CALL)
                .await
                .map(drop)
        }
    }

    /// PIDs of the task.
    pub async fn pids(&self, ns: &str, id: &str) -> Result<Vec<u32>> {
        let t = self.get(ns, id).await?;
        let mut q = sh::PidsRequest::new();
        q.id = id.into();
        let r: sh::PidsResponse = t.shim.call("Pids", &q, CALL).await?;
        Ok(r.processes.iter().map(|p| p.pid).collect())
    }

    /// Update resources.
    pub async fn update(&self, ns: &str, id: &str, resources: &[u8]) -> Result<()> {
        serde_json::from_slice::<serde_json::Value>(resources)
            .map_err(|e| Error::InvalidArgument(format!("task {id}: resources: {e}")))?;
        let t = self.get(ns, id).await?;
        let mut q = sh::UpdateTaskRequest::new();
        q.id = id.into();
        let mut any = Any::new();
        any.type_url = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into();
        any.value = resources.to_vec();
        q.resources = MessageField::some(any);
        t.shim
            .call::<_, sh::Empty>("Update", &q, CALL)
            .await
            .map(drop)
    }

    /// Metrics from the shim.
    pub async fn stats(&self, ns: &str, id: &str) -> Result<berth_proto::prost_types::Any> {
        let t = self.get(ns, id).await?;
        let mut q = sh::StatsRequest::new();
        q.id = id.into();
        let r: sh::StatsResponse = t.shim.call("Stats", &q, CALL).await?;
        let a = r.stats.into_option().unwrap_or_default();
        Ok(berth_proto::prost_types::Any {
            type_url: a.type_url,
            value: a.value,
        })
    }

    /// Wait for a process to exit.
    pub async fn wait(&self, ns: &str, id: &str, exec_id: &str) -> Result<pb::WaitResponse> {
        let t = self.get(ns, id).await?;
        let mut q = sh::WaitRequest::new();
        q.id = id.into();
        q.exec_id = exec_id.into();
        let r: sh::WaitResponse = t.shim.call("Wait", &q, None).await?;
        Ok(pb::WaitResponse {
            exit_status: r.exit_status,
            exited_at: tsp(r.exited_at.as_ref()),
        })
    }

    /// After a restart: find every shim again. Live shims of known containers are
    /// tracked (and an exit that happened meanwhile is published); dead shims are
    /// cleaned up with their `delete` command (publishing their exit); shims of
    /// containers nobody has a record of are stopped and removed.
    pub async fn recover(&self) {
        let root = self.paths.state.join("tasks");
        let Ok(nss) = std::fs::read_dir(&root) else {
            return;
        };
        for ns_entry in nss.flatten() {
            let ns = ns_entry.file_name().to_string_lossy().into_owned();
            let Ok(ids) = std::fs::read_dir(ns_entry.path()) else {
                continue;
            };
            for id_entry in ids.flatten() {
                let id = id_entry.file_name().to_string_lossy().into_owned();
                self.recover_one(&ns, &id, &id_entry.path()).await;
            }
        }
    }

    async fn recover_one(&self, ns: &str, id: &str, bundle: &Path) {
        let known = self.store.container(ns, id).is_ok();
        let shim_bin = std::fs::read_to_string(bundle.join(SHIM_BINARY_FILE))
            .ok()
            .map(PathBuf::from);
        let address = std::fs::read_to_string(bundle.join("address")).ok();
        let client = match &address {
            Some(a) => ShimClient::connect(a.trim()).await.ok(),
            None => None,
        };
        let reported = bundle.join(EXIT_REPORTED).exists();
        let _ = follow_shim_log(bundle, ns, id);
        if let (true, Some(shim)) = (known, client.clone()) {
            let t = Task {
                shim,
                bundle: bundle.to_path_buf(),
            };
            if let Ok(s) = self.state_of(&t, id, "").await {
                tracing::info!(namespace = ns, id, status = ?s.status, "recovered task");
                if s.status.enum_value_or_default() == sh::Status::STOPPED && !reported {
                    self.publish_exit(
                        ns,
                        id,
                        s.pid,
                        s.exit_status,
                        s.exited_at.as_ref().map(|t| (t.seconds, t.nanos)),
                    );
                }
                self.tasks
                    .lock()
                    .await
                    .insert((ns.to_string(), id.to_string()), t);
                return;
            }
        }
        // The shim is gone, has no task, or nobody claims the container.
        if let Some(shim) = client {
            tracing::warn!(namespace = ns, id, known, "stopping a shim nobody claims");
            let mut k = sh::KillRequest::new();
            k.id = id.into();
            k.signal = 9;
            k.all = true;
            let _ = shim.call::<_, sh::Empty>("Kill", &k, CALL).await;
            let mut w = sh::WaitRequest::new();
            w.id = id.into();
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                shim.call::<_, sh::WaitResponse>("Wait", &w, None),
            )
            .await;
            let mut d = sh::DeleteRequest::new();
            d.id = id.into();
            let _ = shim.call::<_, sh::DeleteResponse>("Delete", &d, CALL).await;
            shutdown_shim(&shim, id).await;
        }
        if let Some(bin) = shim_bin {
            let exit = self.launch(&bin, ns, id, bundle).delete().await;
            if known {
                let (status, at) = exit.unwrap_or((137, events::now()));
                if !reported {
                    self.publish_exit(ns, id, 0, status, Some(at));
                }
                self.bus.publish(
                    ns,
                    "/tasks/delete",
                    Kind::TaskDelete(pb::TaskDelete {
                        container_id: id.into(),
                        id: id.into(),
                        pid: 0,
                        exit_status: status,
                        exited_at: Some(events::ts(at)),
                    }),
                    None,
                );
            }
        }
        tracing::info!(
            namespace = ns,
            id,
            "removed the bundle of a task whose shim is gone"
        );
        let _ = std::fs::remove_dir_all(bundle);
    }

    fn publish_exit(&self, ns: &str, id: &str, pid: u32, status: u32, at: Option<(i64, i32)>) {
        self.bus.publish(
            ns,
            "/tasks/exit",
            Kind::TaskExit(pb::TaskExit {
                container_id: id.into(),
                id: id.into(),
                pid,
                exit_status: status,
                exited_at: at.map(events::ts),
            }),
            None,
        );
    }
}

/// Make the bundle's `log` FIFO (as containerd does) and copy what the shim writes
/// there into our log, line by line, until every writer is gone.
fn follow_shim_log(bundle: &Path, ns: &str, id: &str) -> Result<()> {
    let path = bundle.join("log");
    if !path.exists() {
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(|e| Error::Internal(format!("shim log {}: {e}", path.display())))?;
    }
    let rx = tokio::net::unix::pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(&path)
        .map_err(|e| Error::Internal(format!("shim log {}: {e}", path.display())))?;
    let (ns, id, bundle) = (ns.to_string(), id.to_string(), bundle.to_path_buf());
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(rx).lines();
        // We hold a write end too (so no EOF between shim writers): stop once the
        // bundle is gone.
        loop {
            match tokio::time::timeout(Duration::from_secs(2), lines.next_line()).await {
                Ok(Ok(Some(line))) => tracing::info!(namespace = %ns, id = %id, "shim: {line}"),
                Ok(_) => break,
                Err(_) if !bundle.exists() => break,
                Err(_) => {}
            }
        }
    });
    Ok(())
}

async fn shutdown_shim(shim: &ShimClient, id: &str) {
    let mut q = sh::ShutdownRequest::new();
    q.id = id.into();
    // The shim exits while answering: a closed connection is the expected outcome.
    let _ = shim
        .call::<_, sh::Empty>("Shutdown", &q, Some(Duration::from_secs(5)))
        .await;
}

/// Container record helpers shared with the API layer.
pub fn rec_from_pb(c: &pb::Container) -> ContainerRec {
    ContainerRec {
        id: c.id.clone(),
        labels: c.labels.clone().into_iter().collect(),
        spec: String::from_utf8_lossy(&c.spec).into_owned(),
        rootfs: c
            .rootfs
            .iter()
            .map(|m| crate::store::MountRec {
                kind: m.r#type.clone(),
                source: m.source.clone(),
                target: m.target.clone(),
                options: m.options.clone(),
            })
            .collect(),
        runtime: c
            .runtime
            .as_ref()
            .map(|r| RuntimeRec {
                name: r.name.clone(),
                binary_name: r.binary_name.clone(),
                shim_binary: r.shim_binary.clone(),
                root: r.root.clone(),
            })
            .unwrap_or_default(),
        created_at: (0, 0),
        updated_at: (0, 0),
    }
}

/// A record as the API returns it.
pub fn rec_to_pb(c: &ContainerRec) -> pb::Container {
    pb::Container {
        id: c.id.clone(),
        labels: c.labels.clone().into_iter().collect(),
        spec: c.spec.clone().into_bytes(),
        rootfs: c
            .rootfs
            .iter()
            .map(|m| pb::Mount {
                r#type: m.kind.clone(),
                source: m.source.clone(),
                target: m.target.clone(),
                options: m.options.clone(),
            })
            .collect(),
        runtime: Some(pb::Runtime {
            name: c.runtime.name.clone(),
            binary_name: c.runtime.binary_name.clone(),
            shim_binary: c.runtime.shim_binary.clone(),
            root: c.runtime.root.clone(),
        }),
        created_at: Some(events::ts(c.created_at)),
        updated_at: Some(events::ts(c.updated_at)),
    }
}

/// Validate a spec: a JSON object with "process" and "root" objects.
pub fn check_spec(id: &str, spec: &[u8]) -> Result<()> {
    let v: serde_json::Value = serde_json::from_slice(spec)
        .map_err(|e| Error::InvalidArgument(format!("container {id}: spec is not JSON: {e}")))?;
    for field in ["process", "root"] {
        if !v[field].is_object() {
            return Err(Error::InvalidArgument(format!(
                "container {id}: spec is not an OCI runtime spec: no \"{field}\" object"
            )));
        }
    }
    if v["process"]["args"].as_array().is_none_or(|a| a.is_empty()) {
        return Err(Error::InvalidArgument(format!(
            "container {id}: spec: process.args is empty"
        )));
    }
    Ok(())
}

#[allow(dead_code)]
fn _assert_send(t: &Tasks) -> impl std::future::Future<Output = ()> + Send + '_ {
    t.recover()
}
