//! Tasks: bundles, shims and the processes they hold. The bundle directory (see
//! `bundle`) is the durable record of a task; the registry is the live view. Each task's
//! shim is watched through a pidfd (`dead_shim`): when it dies the supervisor cleans up
//! after it and the task stays, stopped, until Delete. After a restart `recover` walks
//! the bundles and finds every shim again.
//!
//! Create and Delete of one container, and the clean-up after its dead shim, hold that
//! container's lock (`locks`); other containers are never waited for.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_proto::v1::{self as pb, event::Kind};
use containerd_shim_protos::api as sh;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::shim::oci::Options;

use crate::bundle::{self, Exit};
use crate::error::{Error, Result};
use crate::events::{self, Bus};
use crate::locks::ContainerLocks;
pub use crate::registry::Registry;
pub(crate) use crate::registry::{shim_died_reason, ExecInfo, Life, Task};
use crate::shim::{Launch, ShimClient};
use crate::store::{RuntimeRec, Store};
use crate::sys::PidFd;

pub(crate) const CALL: Option<Duration> = Some(Duration::from_secs(30));
/// How long a caller waits for the clean-up after a dead shim (the runtime's delete is
/// bounded at 20 s, the cgroup kill at 10 s).
const CLEANUP_LIMIT: Duration = Duration::from_secs(60);

/// Paths the supervisor runs with.
pub struct Paths {
    /// Volatile state (bundles, sockets).
    pub state: PathBuf,
    /// The gRPC socket.
    pub address: PathBuf,
    /// The ttrpc socket shims publish events to.
    pub events_address: PathBuf,
}

/// The task manager.
pub struct Tasks {
    pub(crate) paths: Arc<Paths>,
    pub(crate) store: Arc<Store>,
    pub(crate) bus: Bus,
    pub(crate) registry: Arc<Registry>,
    pub(crate) locks: ContainerLocks,
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

/// The init's exit once the task's shim has died and been cleaned up after.
async fn dead(t: &Task) -> Option<Exit> {
    let mut rx = t.life.subscribe();
    let l = rx.wait_for(|l| matches!(l, Life::Dead(_))).await.ok()?;
    match &*l {
        Life::Dead(x) => Some(x.clone()),
        _ => None,
    }
}

/// Run blocking file-system work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The options berth-shim gets: containerd's runc options, and the log when asked for.
fn shim_options(runc: &Options, log: Option<&pb::LogConfig>, is_berth: bool) -> Result<Any> {
    let runc_bytes = runc
        .write_to_bytes()
        .map_err(|e| Error::Internal(format!("encode runtime options: {e}")))?;
    let mut any = Any::new();
    match log {
        None => {
            any.type_url = "containerd.runc.v1.Options".into();
            any.value = runc_bytes;
        }
        Some(_) if !is_berth => {
            return Err(Error::InvalidArgument(
                "log: only berth-shim writes a task's log; this runtime's shim does not".into(),
            ))
        }
        Some(l) => {
            if !Path::new(&l.path).is_absolute() {
                return Err(Error::InvalidArgument(format!(
                    "log: path {:?}: must be absolute",
                    l.path
                )));
            }
            use berth_proto::prost::Message as _;
            any.type_url = berth_proto::SHIM_OPTIONS_TYPE.into();
            any.value = berth_proto::shim_v1::Options {
                runc_options: runc_bytes,
                log: Some(berth_proto::shim_v1::LogConfig {
                    path: l.path.clone(),
                    max_size: l.max_size,
                    max_file: l.max_file,
                }),
            }
            .encode_to_vec();
        }
    }
    Ok(any)
}

impl Tasks {
    /// A manager over `store`, publishing to `bus`, with the tasks of `registry`.
    pub fn new(paths: Arc<Paths>, store: Arc<Store>, bus: Bus, registry: Arc<Registry>) -> Self {
        Self {
            paths,
            store,
            bus,
            registry,
            locks: ContainerLocks::default(),
        }
    }

    fn get(&self, ns: &str, id: &str) -> Result<Arc<Task>> {
        self.registry
            .get(ns, id)
            .ok_or_else(|| Error::NotFound(format!("task {id}: not found in namespace {ns}")))
    }

    /// Whether a container has a task (a stopped one included).
    pub fn has(&self, ns: &str, id: &str) -> bool {
        self.registry.get(ns, id).is_some()
    }

    pub(crate) fn launch<'a>(
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

    /// After a shim call failed: if the shim died, wait until the supervisor has cleaned
    /// up after it and return the init's exit; else the error. A dropped connection
    /// alone is not a death: the shim's pidfd decides (its socket closes a moment before
    /// its exit is signalled, hence the short wait).
    async fn after_failure(&self, t: &Task, e: Error) -> Result<Exit> {
        if !matches!(e, Error::Unavailable(_)) {
            return Err(e);
        }
        let dying = !matches!(*t.life.borrow(), Life::Alive);
        let exited = match &t.pidfd {
            Some(p) => dying || p.exits_within(Duration::from_secs(2)).await,
            None => dying,
        };
        if !exited {
            return Err(e);
        }
        match tokio::time::timeout(CLEANUP_LIMIT, dead(t)).await {
            Ok(Some(x)) => Ok(x),
            _ => Err(e),
        }
    }

    /// Create a task; on any failure nothing is left behind.
    pub async fn create(
        self: &Arc<Self>,
        ns: &str,
        r: &pb::CreateTaskRequest,
    ) -> Result<pb::CreateTaskResponse> {
        let _guard = self.locks.lock(ns, &r.container_id).await;
        let store = self.store.clone();
        let (ns2, cid) = (ns.to_string(), r.container_id.clone());
        let c = blocking(move || store.container(&ns2, &cid)).await?;
        if self.has(ns, &c.id) {
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
        let mut opts = Options::new();
        opts.binary_name = runtime_bin
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        opts.root = if c.runtime.root.is_empty() {
            self.paths.state.join("runtime").display().to_string()
        } else {
            c.runtime.root.clone()
        };
        let options = shim_options(&opts, r.log.as_ref(), is_berth)?;
        let mut spec: serde_json::Value = serde_json::from_str(&c.spec)
            .map_err(|e| Error::InvalidArgument(format!("container {}: spec: {e}", c.id)))?;
        spec["process"]["terminal"] = serde_json::Value::Bool(r.terminal);
        if !c.rootfs.is_empty() {
            spec["root"]["path"] = serde_json::Value::String("rootfs".into());
        }
        let bundle = bundle::dir(&self.paths.state, ns, &c.id);
        let config = serde_json::to_vec_pretty(&spec)
            .map_err(|e| Error::Internal(format!("container {}: spec: {e}", c.id)))?;
        {
            let (bundle, shim_bin) = (bundle.clone(), shim_bin.clone());
            blocking(move || prepare_bundle(&bundle, &config, &shim_bin)).await?;
        }
        let res = async {
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
            let created = async {
                let pidfd = watch_pid(&shim, &c.id, &bundle).await?;
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
                req.options = MessageField::some(options);
                let resp: sh::CreateTaskResponse = shim
                    .call("Create", &req, Some(Duration::from_secs(60)))
                    .await?;
                Ok((pidfd, resp.pid))
            }
            .await;
            match created {
                Ok((pidfd, pid)) => Ok((shim, pidfd, pid)),
                Err(e) => {
                    shutdown_shim(&shim, &c.id).await;
                    launch.delete().await;
                    Err(e)
                }
            }
        }
        .await;
        match res {
            Ok((shim, pidfd, pid)) => {
                let (b, shim_pid) = (bundle.clone(), pidfd.pid());
                blocking(move || record_cgroups(&b, pid, shim_pid)).await;
                let t = Arc::new(Task::live(
                    ns,
                    &c.id,
                    &bundle,
                    shim,
                    Some(shim_bin),
                    pidfd,
                    pid,
                ));
                self.registry.insert(t.clone());
                self.watch_shim(t);
                Ok(pb::CreateTaskResponse {
                    container_id: c.id,
                    pid,
                })
            }
            Err(e) => {
                let b = bundle.clone();
                if let Err(re) = blocking(move || bundle::remove(&b)).await {
                    tracing::error!(error = %re, "leaving a bundle behind");
                }
                Err(e)
            }
        }
    }

    async fn state_of(&self, t: &Task, exec_id: &str) -> Result<sh::StateResponse> {
        let mut q = sh::StateRequest::new();
        q.id = t.id.clone();
        q.exec_id = exec_id.into();
        t.shim()?.call("State", &q, CALL).await
    }

    /// Start init or an exec'd process.
    pub async fn start(&self, ns: &str, id: &str, exec_id: &str) -> Result<u32> {
        let t = self.get(ns, id)?;
        let mut q = sh::StartRequest::new();
        q.id = id.into();
        q.exec_id = exec_id.into();
        match t
            .shim()?
            .call::<_, sh::StartResponse>("Start", &q, CALL)
            .await
        {
            Ok(r) => {
                if !exec_id.is_empty() {
                    t.execs().entry(exec_id.to_string()).or_default().pid = r.pid;
                }
                Ok(r.pid)
            }
            Err(e) => {
                self.after_failure(&t, e).await?;
                Err(t.gone())
            }
        }
    }

    /// The state of a process.
    pub async fn process(&self, ns: &str, id: &str, exec_id: &str) -> Result<pb::Process> {
        let t = self.get(ns, id)?;
        let dead = match t.dead() {
            Some(x) => x,
            None => match self.state_of(&t, exec_id).await {
                Ok(s) => {
                    let stopped = s.status.enum_value_or_default() == sh::Status::STOPPED;
                    let oom_killed = stopped && exec_id.is_empty() && {
                        let b = t.bundle.clone();
                        blocking(move || bundle::read_init_exit(&b).is_some_and(|x| x.2)).await
                    };
                    return Ok(pb::Process {
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
                        exit_reason: String::new(),
                        oom_killed,
                    });
                }
                Err(e) => self.after_failure(&t, e).await?,
            },
        };
        let x = t.exit_of(exec_id, &dead)?;
        Ok(pb::Process {
            container_id: id.into(),
            exec_id: exec_id.into(),
            pid: x.pid,
            status: pb::Status::Stopped as i32,
            exit_status: x.status,
            exited_at: Some(events::ts(x.at)),
            exit_reason: x.reason,
            oom_killed: exec_id.is_empty() && x.oom,
            ..Default::default()
        })
    }

    /// Every task of a namespace.
    pub async fn list(&self, ns: &str) -> Result<Vec<pb::Process>> {
        let mut out = Vec::new();
        for id in self.registry.ids(ns) {
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
        if !exec_id.is_empty() {
            return self.delete_exec(ns, id, exec_id).await;
        }
        // Twice at most: a shim that dies during the delete is first cleaned up after
        // (which needs the container's lock), then its stopped task deleted.
        for _ in 0..2 {
            let guard = self.locks.lock(ns, id).await;
            let t = self.get(ns, id)?;
            if let Some(x) = t.dead() {
                return self.delete_stopped(&t, x).await;
            }
            match self.delete_live(&t).await {
                Err(e @ Error::Unavailable(_)) => {
                    drop(guard);
                    self.after_failure(&t, e).await?;
                }
                other => return other,
            }
        }
        Err(Error::Internal(format!("task {id}: delete did not settle")))
    }

    async fn delete_live(&self, t: &Arc<Task>) -> Result<pb::DeleteResponse> {
        let s = self.state_of(t, "").await?;
        if matches!(
            s.status.enum_value_or_default(),
            sh::Status::RUNNING | sh::Status::PAUSED | sh::Status::PAUSING
        ) {
            return Err(Error::FailedPrecondition(format!(
                "task {}: is running; kill it before deleting",
                t.id
            )));
        }
        let mut q = sh::DeleteRequest::new();
        q.id = t.id.clone();
        let r: sh::DeleteResponse = t.shim()?.call("Delete", &q, CALL).await?;
        // From here the shim's exit is expected: unregister first, so that its watcher
        // (which needs our lock) finds nothing to clean up.
        self.registry.remove(t);
        shutdown_shim(t.shim()?, &t.id).await;
        let b = t.bundle.clone();
        if let Err(e) = blocking(move || bundle::remove(&b)).await {
            tracing::error!(namespace = %t.ns, id = %t.id, error = %e, "leaving a bundle behind");
        }
        Ok(pb::DeleteResponse {
            container_id: t.id.clone(),
            exec_id: String::new(),
            pid: r.pid,
            exit_status: r.exit_status,
            exited_at: tsp(r.exited_at.as_ref()),
            exit_reason: String::new(),
        })
    }

    /// Delete a task whose shim died: its tombstone goes, TaskDelete is published.
    async fn delete_stopped(&self, t: &Arc<Task>, x: Exit) -> Result<pb::DeleteResponse> {
        let b = t.bundle.clone();
        blocking(move || bundle::remove(&b))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.registry.remove(t);
        self.bus.publish(
            &t.ns,
            "/tasks/delete",
            Kind::TaskDelete(pb::TaskDelete {
                container_id: t.id.clone(),
                id: t.id.clone(),
                pid: x.pid,
                exit_status: x.status,
                exited_at: Some(events::ts(x.at)),
            }),
            None,
        );
        Ok(pb::DeleteResponse {
            container_id: t.id.clone(),
            exec_id: String::new(),
            pid: x.pid,
            exit_status: x.status,
            exited_at: Some(events::ts(x.at)),
            exit_reason: x.reason,
        })
    }

    async fn delete_exec(&self, ns: &str, id: &str, exec_id: &str) -> Result<pb::DeleteResponse> {
        let t = self.get(ns, id)?;
        let x = match t.dead() {
            Some(init) => t.exit_of(exec_id, &init)?,
            None => {
                let mut q = sh::DeleteRequest::new();
                q.id = id.into();
                q.exec_id = exec_id.into();
                match t
                    .shim()?
                    .call::<_, sh::DeleteResponse>("Delete", &q, CALL)
                    .await
                {
                    Ok(r) => Exit {
                        pid: r.pid,
                        status: r.exit_status,
                        at: r
                            .exited_at
                            .as_ref()
                            .map(|t| (t.seconds, t.nanos))
                            .unwrap_or_default(),
                        reason: String::new(),
                        oom: false,
                    },
                    Err(e) => {
                        let init = self.after_failure(&t, e).await?;
                        t.exit_of(exec_id, &init)?
                    }
                }
            }
        };
        t.execs().remove(exec_id);
        Ok(pb::DeleteResponse {
            container_id: id.into(),
            exec_id: exec_id.into(),
            pid: x.pid,
            exit_status: x.status,
            exited_at: Some(events::ts(x.at)),
            exit_reason: x.reason,
        })
    }

    /// Signal a process (or all with `all`).
    pub async fn kill(&self, ns: &str, r: &pb::KillRequest) -> Result<()> {
        let t = self.get(ns, &r.container_id)?;
        let finished = || {
            let who = if r.exec_id.is_empty() {
                &r.container_id
            } else {
                &r.exec_id
            };
            Error::NotFound(format!("Kill: process {who}: already finished"))
        };
        if let Some(init) = t.dead() {
            t.exit_of(&r.exec_id, &init)?;
            return Err(finished());
        }
        let mut q = sh::KillRequest::new();
        q.id = r.container_id.clone();
        q.exec_id = r.exec_id.clone();
        q.signal = if r.signal == 0 { 15 } else { r.signal };
        q.all = r.all;
        match t.shim()?.call::<_, sh::Empty>("Kill", &q, CALL).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let init = self.after_failure(&t, e).await?;
                t.exit_of(&r.exec_id, &init)?;
                Err(finished())
            }
        }
    }

    /// A call that needs a live shim: the task's shim, or why there is none.
    async fn call_live<A: Message>(&self, t: &Task, method: &str, req: &impl Message) -> Result<A> {
        if t.dead().is_some() {
            return Err(t.gone());
        }
        match t.shim()?.call(method, req, CALL).await {
            Ok(a) => Ok(a),
            Err(e) => {
                self.after_failure(t, e).await?;
                Err(t.gone())
            }
        }
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
        let t = self.get(ns, &r.container_id)?;
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
        self.call_live::<sh::Empty>(&t, "Exec", &q).await?;
        t.execs().insert(r.exec_id.clone(), ExecInfo::default());
        Ok(())
    }

    /// Resize a pty.
    pub async fn resize(&self, ns: &str, r: &pb::ResizePtyRequest) -> Result<()> {
        let t = self.get(ns, &r.container_id)?;
        let mut q = sh::ResizePtyRequest::new();
        q.id = r.container_id.clone();
        q.exec_id = r.exec_id.clone();
        q.width = r.width;
        q.height = r.height;
        self.call_live::<sh::Empty>(&t, "ResizePty", &q)
            .await
            .map(drop)
    }

    /// Close stdin.
    pub async fn close_io(&self, ns: &str, r: &pb::CloseIoRequest) -> Result<()> {
        let t = self.get(ns, &r.container_id)?;
        let mut q = sh::CloseIORequest::new();
        q.id = r.container_id.clone();
        q.exec_id = r.exec_id.clone();
        q.stdin = r.stdin;
        self.call_live::<sh::Empty>(&t, "CloseIO", &q)
            .await
            .map(drop)
    }

    /// Pause (true) or resume (false).
    pub async fn pause(&self, ns: &str, id: &str, pause: bool) -> Result<()> {
        let t = self.get(ns, id)?;
        if pause {
            let mut q = sh::PauseRequest::new();
            q.id = id.into();
            self.call_live::<sh::Empty>(&t, "Pause", &q).await.map(drop)
        } else {
            let mut q = sh::ResumeRequest::new();
            q.id = id.into();
            self.call_live::<sh::Empty>(&t, "Resume", &q)
                .await
                .map(drop)
        }
    }

    /// PIDs of the task (none once its shim died: everything was killed).
    pub async fn pids(&self, ns: &str, id: &str) -> Result<Vec<u32>> {
        let t = self.get(ns, id)?;
        let mut q = sh::PidsRequest::new();
        q.id = id.into();
        match self.call_live::<sh::PidsResponse>(&t, "Pids", &q).await {
            Ok(r) => Ok(r.processes.iter().map(|p| p.pid).collect()),
            Err(_) if t.dead().is_some() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Update resources.
    pub async fn update(&self, ns: &str, id: &str, resources: &[u8]) -> Result<()> {
        serde_json::from_slice::<serde_json::Value>(resources)
            .map_err(|e| Error::InvalidArgument(format!("task {id}: resources: {e}")))?;
        let t = self.get(ns, id)?;
        let mut q = sh::UpdateTaskRequest::new();
        q.id = id.into();
        let mut any = Any::new();
        any.type_url = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into();
        any.value = resources.to_vec();
        q.resources = MessageField::some(any);
        self.call_live::<sh::Empty>(&t, "Update", &q)
            .await
            .map(drop)
    }

    /// Metrics from the shim.
    pub async fn stats(&self, ns: &str, id: &str) -> Result<berth_proto::prost_types::Any> {
        let t = self.get(ns, id)?;
        let mut q = sh::StatsRequest::new();
        q.id = id.into();
        let r: sh::StatsResponse = self.call_live(&t, "Stats", &q).await?;
        let a = r.stats.into_option().unwrap_or_default();
        Ok(berth_proto::prost_types::Any {
            type_url: a.type_url,
            value: a.value,
        })
    }

    /// Wait for a process to exit (or for its shim to die and be cleaned up after).
    pub async fn wait(&self, ns: &str, id: &str, exec_id: &str) -> Result<pb::WaitResponse> {
        let t = self.get(ns, id)?;
        let answer = |x: Exit| pb::WaitResponse {
            exit_status: x.status,
            exited_at: Some(events::ts(x.at)),
            exit_reason: x.reason,
        };
        if let Some(init) = t.dead() {
            return Ok(answer(t.exit_of(exec_id, &init)?));
        }
        let mut q = sh::WaitRequest::new();
        q.id = id.into();
        q.exec_id = exec_id.into();
        let shim = t.shim()?;
        tokio::select! {
            r = shim.call::<_, sh::WaitResponse>("Wait", &q, None) => match r {
                Ok(r) => Ok(pb::WaitResponse {
                    exit_status: r.exit_status,
                    exited_at: tsp(r.exited_at.as_ref()),
                    exit_reason: String::new(),
                }),
                Err(e) => {
                    let init = self.after_failure(&t, e).await?;
                    Ok(answer(t.exit_of(exec_id, &init)?))
                }
            },
            init = dead(&t) => match init {
                Some(init) => Ok(answer(t.exit_of(exec_id, &init)?)),
                None => Err(Error::Internal(format!("task {id}: wait ended"))),
            },
        }
    }

    /// Publish a process's exit (one the supervisor learnt itself).
    pub(crate) fn publish_exit(&self, ns: &str, id: &str, exec_id: &str, x: &Exit) {
        self.bus.publish(
            ns,
            "/tasks/exit",
            Kind::TaskExit(pb::TaskExit {
                container_id: id.into(),
                id: if exec_id.is_empty() {
                    id.into()
                } else {
                    exec_id.into()
                },
                pid: x.pid,
                exit_status: x.status,
                exited_at: Some(events::ts(x.at)),
                exec_id: exec_id.into(),
                exit_reason: x.reason.clone(),
            }),
            None,
        );
    }

    /// Publish an OOM kill (one the shim recorded while nobody listened).
    pub(crate) fn publish_oom(&self, ns: &str, id: &str) {
        self.bus.publish(
            ns,
            "/tasks/oom",
            Kind::TaskOom(pb::TaskOom {
                container_id: id.into(),
            }),
            None,
        );
    }
}

/// A fresh bundle: config.json, the rootfs mount point and the shim binary's name. A
/// bundle left by a task that never finished creating (its shim is gone: recovery
/// reaps live ones, and a stopped task is registered) is garbage and goes first.
fn prepare_bundle(bundle: &Path, config: &[u8], shim_bin: &Path) -> Result<()> {
    bundle::remove(bundle).map_err(|e| Error::Internal(e.to_string()))?;
    let io = |e: std::io::Error| Error::Internal(format!("bundle {}: {e}", bundle.display()));
    std::fs::create_dir_all(bundle.join("rootfs")).map_err(io)?;
    std::fs::write(bundle.join("config.json"), config).map_err(io)?;
    std::fs::write(
        bundle.join(bundle::SHIM_BINARY),
        shim_bin.display().to_string(),
    )
    .map_err(io)?;
    Ok(())
}

/// Record the container's own cgroups (what a dead shim leaves to kill) in the bundle.
pub(crate) fn record_cgroups(bundle: &Path, init_pid: u32, shim_pid: u32) {
    let dirs = crate::cgroups::record(init_pid, shim_pid);
    if let Err(e) = bundle::write_cgroups(bundle, &dirs) {
        tracing::warn!(bundle = %bundle.display(), error = %e, "recording the container's cgroups");
    }
}

/// The shim's PID (its Connect answer), recorded in the bundle, as a pidfd.
pub(crate) async fn watch_pid(shim: &ShimClient, id: &str, bundle: &Path) -> Result<PidFd> {
    let mut q = sh::ConnectRequest::new();
    q.id = id.into();
    let r: sh::ConnectResponse = shim.call("Connect", &q, CALL).await?;
    let pidfd = PidFd::open(r.shim_pid)
        .map_err(|e| Error::Unavailable(format!("shim of task {id} (pid {}): {e}", r.shim_pid)))?;
    let _ = std::fs::write(bundle.join(bundle::SHIM_PID), r.shim_pid.to_string());
    Ok(pidfd)
}

/// Make the bundle's `log` FIFO (as containerd does) and copy what the shim writes
/// there into our log, line by line, until the FIFO is removed with the bundle.
pub(crate) fn follow_shim_log(bundle: &Path, ns: &str, id: &str) -> Result<()> {
    let path = bundle.join(bundle::LOG_FIFO);
    if !path.exists() {
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(|e| Error::Internal(format!("shim log {}: {e}", path.display())))?;
    }
    let rx = tokio::net::unix::pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(&path)
        .map_err(|e| Error::Internal(format!("shim log {}: {e}", path.display())))?;
    let (ns, id) = (ns.to_string(), id.to_string());
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(rx).lines();
        // We hold a write end too (so no EOF between shim writers): stop once the FIFO
        // is gone (the bundle removed or emptied).
        loop {
            match tokio::time::timeout(Duration::from_secs(2), lines.next_line()).await {
                Ok(Ok(Some(line))) => tracing::info!(namespace = %ns, id = %id, "shim: {line}"),
                Ok(_) => break,
                Err(_) if !path.exists() => break,
                Err(_) => {}
            }
        }
    });
    Ok(())
}

pub(crate) async fn shutdown_shim(shim: &ShimClient, id: &str) {
    let mut q = sh::ShutdownRequest::new();
    q.id = id.into();
    // The shim exits while answering: a closed connection is the expected outcome.
    let _ = shim
        .call::<_, sh::Empty>("Shutdown", &q, Some(Duration::from_secs(5)))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn berth_options_carry_the_log_and_others_refuse_it() {
        let mut runc = Options::new();
        runc.binary_name = "/usr/sbin/runc".into();
        let plain = shim_options(&runc, None, true).unwrap();
        assert_eq!(plain.type_url, "containerd.runc.v1.Options");
        assert_eq!(
            Options::parse_from_bytes(&plain.value).unwrap().binary_name,
            "/usr/sbin/runc"
        );
        let log = pb::LogConfig {
            path: "/var/lib/berth/c/c-json.log".into(),
            max_size: 1024,
            max_file: 3,
        };
        let any = shim_options(&runc, Some(&log), true).unwrap();
        assert_eq!(any.type_url, berth_proto::SHIM_OPTIONS_TYPE);
        use berth_proto::prost::Message as _;
        let o = berth_proto::shim_v1::Options::decode(any.value.as_slice()).unwrap();
        assert_eq!(
            Options::parse_from_bytes(&o.runc_options)
                .unwrap()
                .binary_name,
            "/usr/sbin/runc"
        );
        assert_eq!(o.log.unwrap().max_file, 3);
        let e = shim_options(&runc, Some(&log), false).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        let relative = pb::LogConfig {
            path: "c-json.log".into(),
            ..log
        };
        assert!(shim_options(&runc, Some(&relative), true).is_err());
    }
}
