//! The shim v2 task service (`containerd.task.v2.Task`, also answered as v3): one
//! container's init process and its exec'd processes, driven through the runtime CLI.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use containerd_shim_protos::api::{
    CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest, CreateTaskResponse,
    DeleteRequest, DeleteResponse, Empty, ExecProcessRequest, KillRequest, PauseRequest,
    PidsRequest, PidsResponse, ProcessInfo, ResizePtyRequest, ResumeRequest, ShutdownRequest,
    StartRequest, StartResponse, StateRequest, StateResponse, StatsRequest, StatsResponse,
    Status as TaskStatus, UpdateTaskRequest, WaitRequest, WaitResponse,
};
use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::ttrpc::Code;

use crate::events::Publisher;
use crate::jsonlog::JsonLog;
use crate::oom::OomWatch;
use crate::output::Outputs;
use crate::process::{Process, State};
use crate::runtime::{self, Runtime, Stdio3};
use crate::{mounts, options, stdio, sys, timestamp};

/// An RPC failure: a gRPC code and a message naming the thing.
#[derive(Debug)]
pub struct RpcError {
    /// Code.
    pub code: Code,
    /// Message.
    pub msg: String,
}

fn err(code: Code, msg: impl Into<String>) -> RpcError {
    RpcError {
        code,
        msg: msg.into(),
    }
}

fn precondition(msg: String) -> RpcError {
    err(Code::FAILED_PRECONDITION, msg)
}

/// How a call is answered.
pub enum Reply {
    /// Now, with these response bytes.
    Now(Vec<u8>),
    /// When the process with this exec ID ("" for init) has exited (Wait).
    OnExit(String),
}

type R = Result<Reply, RpcError>;

fn now<M: Message>(m: M) -> R {
    Ok(Reply::Now(m.write_to_bytes().unwrap_or_default()))
}

fn parse<M: Message>(payload: &[u8]) -> Result<M, RpcError> {
    M::parse_from_bytes(payload)
        .map_err(|e| err(Code::INVALID_ARGUMENT, format!("bad request: {e}")))
}

/// The file in the bundle recording the init process's exit ("STATUS SECS NANOS").
pub const EXIT_FILE: &str = "init.exit";
/// The file in the bundle naming the runtime binary and root (for `delete`).
pub const RUNTIME_FILE: &str = "shim-runtime";

/// Everything the shim holds.
pub struct Shim {
    /// Container ID.
    pub id: String,
    /// Namespace.
    pub namespace: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    runtime: Option<Runtime>,
    init: Option<Process>,
    deleted: bool,
    execs: BTreeMap<String, Process>,
    /// Event sink.
    pub publisher: Publisher,
    /// OOM watch of the container's cgroup.
    pub oom: Option<OomWatch>,
    /// The container's OOM kills reported so far (TaskOOM published).
    oom_reported: bool,
    /// The init's output, when the shim logs it.
    pub outputs: Option<Outputs>,
    mounted: bool,
    /// Set by Shutdown once there is nothing left to hold.
    pub exit: bool,
}

impl Shim {
    /// A shim with no task yet.
    pub fn new(id: String, namespace: String, bundle: PathBuf, publisher: Publisher) -> Self {
        Self {
            id,
            namespace,
            bundle,
            runtime: None,
            init: None,
            deleted: false,
            execs: BTreeMap::new(),
            publisher,
            oom: None,
            oom_reported: false,
            outputs: None,
            mounted: false,
            exit: false,
        }
    }

    /// Dispatch one call by method name.
    pub fn call(&mut self, method: &str, payload: &[u8]) -> R {
        match method {
            "Create" => self.create(parse(payload)?),
            "Start" => self.start(parse(payload)?),
            "State" => self.state(parse(payload)?),
            "Delete" => self.delete(parse(payload)?),
            "Kill" => self.kill(parse(payload)?),
            "Exec" => self.exec(parse(payload)?),
            "ResizePty" => self.resize(parse(payload)?),
            "CloseIO" => self.close_io(parse(payload)?),
            "Wait" => self.wait(parse(payload)?),
            "Pids" => self.pids(parse(payload)?),
            "Pause" => self.pause(parse(payload)?),
            "Resume" => self.resume(parse(payload)?),
            "Update" => self.update(parse(payload)?),
            "Connect" => self.connect(parse(payload)?),
            "Shutdown" => self.shutdown(parse(payload)?),
            "Stats" => self.stats(parse(payload)?),
            "Checkpoint" => Err(err(
                Code::UNIMPLEMENTED,
                "Checkpoint: berth-shim has no CRIU support",
            )),
            other => Err(err(Code::UNIMPLEMENTED, format!("unknown method {other}"))),
        }
    }

    fn process(&self, exec_id: &str) -> Result<&Process, RpcError> {
        let p = if exec_id.is_empty() {
            self.init.as_ref().filter(|_| !self.deleted)
        } else {
            self.execs.get(exec_id)
        };
        p.ok_or_else(|| self.not_found(exec_id))
    }

    fn process_mut(&mut self, exec_id: &str) -> Result<&mut Process, RpcError> {
        let nf = self.not_found(exec_id);
        let p = if exec_id.is_empty() {
            self.init.as_mut().filter(|_| !self.deleted)
        } else {
            self.execs.get_mut(exec_id)
        };
        p.ok_or(nf)
    }

    fn not_found(&self, exec_id: &str) -> RpcError {
        if exec_id.is_empty() {
            err(Code::NOT_FOUND, format!("task {}: not found", self.id))
        } else {
            err(
                Code::NOT_FOUND,
                format!("exec {exec_id} of task {}: not found", self.id),
            )
        }
    }

    fn rt(&self) -> Result<&Runtime, RpcError> {
        self.runtime
            .as_ref()
            .ok_or_else(|| precondition(format!("task {}: not created", self.id)))
    }

    /// A socket path short enough for sun_path: in the bundle, or under /run/berth-shim.
    fn socket_path(&self, name: &str) -> PathBuf {
        crate::short_socket_path(&self.bundle, name)
    }

    fn create(&mut self, r: CreateTaskRequest) -> R {
        if self.init.is_some() {
            return Err(err(
                Code::ALREADY_EXISTS,
                format!("task {}: already exists", r.id),
            ));
        }
        if !r.checkpoint.is_empty() {
            return Err(err(
                Code::UNIMPLEMENTED,
                "restore from checkpoint: not supported",
            ));
        }
        if !r.id.is_empty() {
            self.id = r.id.clone();
        }
        if !r.bundle.is_empty() {
            self.bundle = PathBuf::from(&r.bundle);
        }
        let task_opts = options::parse(r.options.as_ref())
            .map_err(|e| err(Code::INVALID_ARGUMENT, format!("runtime options: {e}")))?;
        let opts = task_opts.runc;
        let log = match task_opts.log {
            Some(cfg) => {
                let path = cfg.path.display().to_string();
                Some(
                    JsonLog::open(cfg)
                        .map_err(|e| err(Code::INVALID_ARGUMENT, format!("log {path}: {e}")))?,
                )
            }
            None => None,
        };
        let binary = if opts.binary_name.is_empty() {
            runtime::default_binary().ok_or_else(|| {
                precondition(
                    "runtime binary berth-runtime: not found beside the shim or in PATH".into(),
                )
            })?
        } else {
            runtime::resolve(&opts.binary_name).ok_or_else(|| {
                precondition(format!("runtime binary {}: not found", opts.binary_name))
            })?
        };
        let root_base = if opts.root.is_empty() {
            "/run/berth-runtime"
        } else {
            opts.root.as_str()
        };
        let root = Path::new(root_base).join(&self.namespace);
        std::fs::create_dir_all(&root).map_err(|e| {
            err(
                Code::INTERNAL,
                format!("runtime root {}: {e}", root.display()),
            )
        })?;
        let rt = Runtime {
            binary,
            root,
            log: self.bundle.join("log.json"),
            systemd_cgroup: opts.systemd_cgroup,
        };
        let _ = std::fs::write(
            self.bundle.join(RUNTIME_FILE),
            format!("{}\n{}\n", rt.binary.display(), rt.root.display()),
        );
        self.runtime = Some(rt);

        if !r.rootfs.is_empty() {
            let target = self.bundle.join("rootfs");
            let _ = std::fs::create_dir_all(&target);
            for m in &r.rootfs {
                if let Err(e) = mounts::mount(&m.type_, &m.source, &m.options, &target) {
                    mounts::unmount_all(&target);
                    return Err(err(Code::INVALID_ARGUMENT, e));
                }
            }
            self.mounted = true;
        }
        let mut p = Process::new("", &r.stdin, &r.stdout, &r.stderr, r.terminal);
        let pid_file = self.bundle.join("init.pid");
        let bundle = self.bundle.display().to_string();
        let id = self.id.clone();
        let mut outputs = log.map(Outputs::new);
        let res = self.run_with_stdio(&mut p, &pid_file, outputs.as_mut(), |pf, cs| {
            let mut a = vec![
                "create".to_string(),
                "--bundle".into(),
                bundle.clone(),
                "--pid-file".into(),
                pf,
            ];
            if let Some(cs) = cs {
                a.push("--console-socket".into());
                a.push(cs);
            }
            a.push(id.clone());
            a
        });
        if let Err(e) = res {
            if self.mounted {
                mounts::unmount_all(&self.bundle.join("rootfs"));
                self.mounted = false;
            }
            return Err(err(Code::INVALID_ARGUMENT, e));
        }
        p.state = State::Created;
        let pid = p.pid;
        self.init = Some(p);
        self.outputs = outputs;
        self.oom = OomWatch::new(pid);
        let mut ev = TaskCreate::new();
        ev.container_id = self.id.clone();
        ev.bundle = self.bundle.display().to_string();
        ev.rootfs = r.rootfs.clone();
        let mut io = TaskIO::new();
        io.stdin = r.stdin.clone();
        io.stdout = r.stdout.clone();
        io.stderr = r.stderr.clone();
        io.terminal = r.terminal;
        ev.io = MessageField::some(io);
        ev.pid = pid;
        self.publisher.publish("/tasks/create", "TaskCreate", &ev);
        let mut resp = CreateTaskResponse::new();
        resp.pid = pid;
        now(resp)
    }

    /// Run a runtime command that makes a process (create, exec) with the process's
    /// stdio; read its PID back from `pid_file`. With `outputs` (the init's log), the
    /// process writes to pipes (or its terminal) that `outputs` reads, logs and forwards
    /// to the paths given; else it gets those paths directly.
    fn run_with_stdio(
        &self,
        p: &mut Process,
        pid_file: &Path,
        mut outputs: Option<&mut Outputs>,
        args: impl FnOnce(String, Option<String>) -> Vec<String>,
    ) -> Result<(), String> {
        let rt = self.runtime.clone().ok_or("task not created")?;
        let _ = std::fs::remove_file(pid_file);
        let mut console = None;
        let io = if p.terminal {
            let path = self.socket_path(&format!(
                "c{}.sock",
                if p.exec_id.is_empty() {
                    "init"
                } else {
                    &p.exec_id
                }
            ));
            let _ = std::fs::remove_file(&path);
            let l = UnixListener::bind(&path)
                .map_err(|e| format!("console socket {}: {e}", path.display()))?;
            console = Some((l, path));
            Stdio3 {
                stdin: stdio::open_input("")?.0,
                stdout: stdio::open_output("")?,
                stderr: stdio::open_output("")?,
            }
        } else {
            let (stdin, closer) = stdio::open_input(&p.stdin)?;
            p.stdin_closer = closer;
            let (stdout, stderr) = match outputs.as_deref_mut() {
                Some(o) => {
                    let (out_r, out_w) = sys::pipe().map_err(|e| format!("pipe: {e}"))?;
                    let (err_r, err_w) = sys::pipe().map_err(|e| format!("pipe: {e}"))?;
                    o.add("stdout", out_r, &p.stdout)?;
                    o.add("stderr", err_r, &p.stderr)?;
                    (out_w, err_w)
                }
                None => (
                    stdio::open_output(&p.stdout)?,
                    stdio::open_output(&p.stderr)?,
                ),
            };
            Stdio3 {
                stdin,
                stdout,
                stderr,
            }
        };
        let argv = args(
            pid_file.display().to_string(),
            console.as_ref().map(|(_, p)| p.display().to_string()),
        );
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let res = rt.run(&argv, Some(io), None);
        if let Err(e) = res {
            if let Some(c) = &p.stdin_closer {
                c.close();
            }
            if let Some((_, path)) = console {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
        if let Some((l, path)) = console {
            let _ = std::fs::remove_file(&path);
            l.set_nonblocking(true).map_err(|e| e.to_string())?;
            let (conn, _) = l
                .accept()
                .map_err(|e| format!("runtime sent no terminal on the console socket: {e}"))?;
            conn.set_nonblocking(false).map_err(|e| e.to_string())?;
            let master = sys::recv_fd(conn.as_raw_fd()).map_err(|e| e.to_string())?;
            let copy = master.try_clone().map_err(|e| e.to_string())?;
            match outputs {
                // The terminal's output is the log's stdout.
                Some(o) => o.add("stdout", copy, &p.stdout)?,
                None => stdio::spawn_console_out(copy, stdio::open_output(&p.stdout)?)?,
            }
            if !p.stdin.is_empty() {
                let path = p.stdin.trim_start_matches("file://").to_string();
                let closer = stdio::StdinCloser::default();
                stdio::spawn_fifo_copy(
                    path,
                    master.try_clone().map_err(|e| e.to_string())?,
                    closer.clone(),
                )?;
                p.stdin_closer = Some(closer);
            }
            p.console = Some(master);
        }
        let text = std::fs::read_to_string(pid_file)
            .map_err(|e| format!("pid file {}: {e}", pid_file.display()))?;
        p.pid = text
            .trim()
            .parse()
            .map_err(|_| format!("pid file {}: bad content {text:?}", pid_file.display()))?;
        Ok(())
    }

    fn start(&mut self, r: StartRequest) -> R {
        if r.exec_id.is_empty() {
            self.process(&r.exec_id)?
                .require("start", &[State::Created])
                .map_err(precondition)?;
            let id = self.id.clone();
            self.rt()?
                .run(&["start", &id], None, None)
                .map_err(|e| err(Code::UNKNOWN, e))?;
            let p = self.process_mut("")?;
            p.state = State::Running;
            let pid = p.pid;
            let mut ev = TaskStart::new();
            ev.container_id = id;
            ev.pid = pid;
            self.publisher.publish("/tasks/start", "TaskStart", &ev);
            let mut resp = StartResponse::new();
            resp.pid = pid;
            return now(resp);
        }
        self.process(&r.exec_id)?
            .require("start", &[State::Registered])
            .map_err(precondition)?;
        let init_running = self
            .init
            .as_ref()
            .is_some_and(|p| p.state == State::Running);
        if !init_running {
            return Err(precondition(format!(
                "exec {} : task {} is not running",
                r.exec_id, self.id
            )));
        }
        let mut p = self
            .execs
            .remove(&r.exec_id)
            .ok_or_else(|| self.not_found(&r.exec_id))?;
        let spec_path = self.bundle.join(format!("exec-{}.json", r.exec_id));
        let pid_file = self.bundle.join(format!("exec-{}.pid", r.exec_id));
        let res = std::fs::write(&spec_path, &p.spec)
            .map_err(|e| format!("{}: {e}", spec_path.display()))
            .and_then(|_| {
                let spec = spec_path.display().to_string();
                let id = self.id.clone();
                self.run_with_stdio(&mut p, &pid_file, None, |pf, cs| {
                    let mut a = vec![
                        "exec".to_string(),
                        "--process".into(),
                        spec,
                        "--detach".into(),
                        "--pid-file".into(),
                        pf,
                    ];
                    if let Some(cs) = cs {
                        a.push("--console-socket".into());
                        a.push(cs);
                    }
                    a.push(id);
                    a
                })
            });
        let _ = std::fs::remove_file(&spec_path);
        let _ = std::fs::remove_file(&pid_file);
        if let Err(e) = res {
            self.execs.insert(r.exec_id.clone(), p);
            return Err(err(Code::UNKNOWN, e));
        }
        p.state = State::Running;
        let pid = p.pid;
        self.execs.insert(r.exec_id.clone(), p);
        let mut ev = TaskExecStarted::new();
        ev.container_id = self.id.clone();
        ev.exec_id = r.exec_id;
        ev.pid = pid;
        self.publisher
            .publish("/tasks/exec-started", "TaskExecStarted", &ev);
        let mut resp = StartResponse::new();
        resp.pid = pid;
        now(resp)
    }

    fn state(&mut self, r: StateRequest) -> R {
        let p = self.process(&r.exec_id)?;
        let mut s = StateResponse::new();
        s.id = if r.exec_id.is_empty() {
            self.id.clone()
        } else {
            r.exec_id.clone()
        };
        s.bundle = self.bundle.display().to_string();
        s.pid = p.pid;
        s.status = match p.state {
            State::Registered | State::Created => TaskStatus::CREATED,
            State::Running => TaskStatus::RUNNING,
            State::Paused => TaskStatus::PAUSED,
            State::Stopped => TaskStatus::STOPPED,
        }
        .into();
        s.stdin = p.stdin.clone();
        s.stdout = p.stdout.clone();
        s.stderr = p.stderr.clone();
        s.terminal = p.terminal;
        s.exit_status = p.exit_status;
        if let Some(t) = p.exited_at {
            s.exited_at = MessageField::some(timestamp(t));
        }
        s.exec_id = r.exec_id;
        now(s)
    }

    fn delete(&mut self, r: DeleteRequest) -> R {
        if !r.exec_id.is_empty() {
            self.process(&r.exec_id)?
                .require("delete", &[State::Registered, State::Stopped])
                .map_err(precondition)?;
            let p = self
                .execs
                .remove(&r.exec_id)
                .ok_or_else(|| self.not_found(&r.exec_id))?;
            return now(delete_response(&p));
        }
        let state = self.process("")?.state;
        self.process("")?
            .require("delete", &[State::Created, State::Stopped])
            .map_err(precondition)?;
        let id = self.id.clone();
        let args: &[&str] = if state == State::Created {
            &["delete", "--force", &id]
        } else {
            &["delete", &id]
        };
        if let Err(e) = self.rt()?.run(args, None, None) {
            // Already gone from the runtime's view is fine: it is what we want.
            let _ = self.rt()?.run(&["delete", "--force", &id], None, None);
            crate::log(&format!("delete {id}: {e}"));
        }
        // What the process wrote is logged and handed to the reader before the task
        // goes (after the runtime's delete: then nothing holds the pipes any more).
        if let Some(mut o) = self.outputs.take() {
            o.drain_to_end(std::time::Duration::from_secs(2));
        }
        if self.mounted {
            mounts::unmount_all(&self.bundle.join("rootfs"));
            self.mounted = false;
        }
        self.deleted = true;
        self.oom = None;
        let p = self.init.as_ref().ok_or_else(|| self.not_found(""))?;
        let resp = delete_response(p);
        let mut ev = TaskDelete::new();
        ev.container_id = id.clone();
        ev.id = id;
        ev.pid = resp.pid;
        ev.exit_status = resp.exit_status;
        ev.exited_at = resp.exited_at.clone();
        self.publisher.publish("/tasks/delete", "TaskDelete", &ev);
        now(resp)
    }

    fn kill(&mut self, r: KillRequest) -> R {
        let p = self.process(&r.exec_id)?;
        if p.state == State::Stopped {
            return Err(err(
                Code::NOT_FOUND,
                format!(
                    "process {}: already finished",
                    if r.exec_id.is_empty() {
                        &self.id
                    } else {
                        &r.exec_id
                    }
                ),
            ));
        }
        if !r.exec_id.is_empty() {
            if p.pid == 0 {
                return Err(precondition(format!("exec {}: not started", r.exec_id)));
            }
            sys::kill(p.pid as i32, r.signal as i32)
                .map_err(|e| err(Code::UNKNOWN, format!("kill exec {}: {e}", r.exec_id)))?;
            return now(Empty::new());
        }
        let sig = r.signal.to_string();
        let id = self.id.clone();
        let mut args = vec!["kill"];
        if r.all {
            args.push("--all");
        }
        args.push(&id);
        args.push(&sig);
        self.rt()?
            .run(&args, None, None)
            .map_err(|e| err(Code::UNKNOWN, e))?;
        now(Empty::new())
    }

    fn exec(&mut self, r: ExecProcessRequest) -> R {
        let init = self.process("")?;
        init.require("exec in", &[State::Created, State::Running])
            .map_err(precondition)?;
        if self.execs.contains_key(&r.exec_id) {
            return Err(err(
                Code::ALREADY_EXISTS,
                format!("exec {}: already exists", r.exec_id),
            ));
        }
        if r.exec_id.is_empty() {
            return Err(err(Code::INVALID_ARGUMENT, "exec: empty exec ID"));
        }
        let spec = r.spec.as_ref().map(|a| a.value.clone()).unwrap_or_default();
        if spec.is_empty() {
            return Err(err(
                Code::INVALID_ARGUMENT,
                format!("exec {}: no process spec", r.exec_id),
            ));
        }
        let mut p = Process::new(&r.exec_id, &r.stdin, &r.stdout, &r.stderr, r.terminal);
        p.spec = spec;
        self.execs.insert(r.exec_id.clone(), p);
        let mut ev = TaskExecAdded::new();
        ev.container_id = self.id.clone();
        ev.exec_id = r.exec_id;
        self.publisher
            .publish("/tasks/exec-added", "TaskExecAdded", &ev);
        now(Empty::new())
    }

    fn resize(&mut self, r: ResizePtyRequest) -> R {
        let p = self.process(&r.exec_id)?;
        let c = p.console.as_ref().ok_or_else(|| {
            precondition(format!(
                "process {}: has no terminal",
                if r.exec_id.is_empty() {
                    &self.id
                } else {
                    &r.exec_id
                }
            ))
        })?;
        sys::set_winsize(c.as_raw_fd(), r.width, r.height)
            .map_err(|e| err(Code::UNKNOWN, format!("resize: {e}")))?;
        now(Empty::new())
    }

    fn close_io(&mut self, r: CloseIORequest) -> R {
        let p = self.process(&r.exec_id)?;
        if r.stdin {
            if let Some(c) = &p.stdin_closer {
                c.close();
            }
        }
        now(Empty::new())
    }

    fn wait(&mut self, r: WaitRequest) -> R {
        let p = self.process(&r.exec_id)?;
        if p.state == State::Stopped {
            return now(wait_response(p));
        }
        Ok(Reply::OnExit(r.exec_id))
    }

    /// The answer to a pending Wait for `exec_id`.
    pub fn wait_answer(&self, exec_id: &str) -> Vec<u8> {
        let p = if exec_id.is_empty() {
            self.init.as_ref()
        } else {
            self.execs.get(exec_id)
        };
        p.map(|p| wait_response(p).write_to_bytes().unwrap_or_default())
            .unwrap_or_default()
    }

    fn pids(&mut self, _r: PidsRequest) -> R {
        let p = self.process("")?;
        let mut pids = cgroup_pids(p.pid);
        if pids.is_empty() && p.state != State::Stopped && p.pid != 0 {
            pids.push(p.pid);
        }
        let mut resp = PidsResponse::new();
        for pid in pids {
            let mut info = ProcessInfo::new();
            info.pid = pid;
            resp.processes.push(info);
        }
        now(resp)
    }

    fn stats(&mut self, _r: StatsRequest) -> R {
        let p = self.process("")?;
        if p.pid == 0 || p.state == State::Stopped {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!("container {} is not running", self.id),
            ));
        }
        let metrics = crate::stats::collect(p.pid).ok_or_else(|| {
            err(
                Code::UNAVAILABLE,
                format!("no cgroup figures for container {}", self.id),
            )
        })?;
        let mut resp = StatsResponse::new();
        resp.stats = MessageField::some(metrics);
        now(resp)
    }

    fn pause(&mut self, _r: PauseRequest) -> R {
        self.process("")?
            .require("pause", &[State::Running])
            .map_err(precondition)?;
        let id = self.id.clone();
        self.rt()?
            .run(&["pause", &id], None, None)
            .map_err(|e| err(Code::UNKNOWN, e))?;
        self.process_mut("")?.state = State::Paused;
        let mut ev = TaskPaused::new();
        ev.container_id = id;
        self.publisher.publish("/tasks/paused", "TaskPaused", &ev);
        now(Empty::new())
    }

    fn resume(&mut self, _r: ResumeRequest) -> R {
        self.process("")?
            .require("resume", &[State::Paused])
            .map_err(precondition)?;
        let id = self.id.clone();
        self.rt()?
            .run(&["resume", &id], None, None)
            .map_err(|e| err(Code::UNKNOWN, e))?;
        self.process_mut("")?.state = State::Running;
        let mut ev = TaskResumed::new();
        ev.container_id = id;
        self.publisher.publish("/tasks/resumed", "TaskResumed", &ev);
        now(Empty::new())
    }

    fn update(&mut self, r: UpdateTaskRequest) -> R {
        self.process("")?
            .require("update", &[State::Created, State::Running, State::Paused])
            .map_err(precondition)?;
        let json = r
            .resources
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        let id = self.id.clone();
        self.rt()?
            .run(&["update", "--resources", "-", &id], None, Some(&json))
            .map_err(|e| err(Code::UNKNOWN, e))?;
        now(Empty::new())
    }

    fn connect(&mut self, _r: ConnectRequest) -> R {
        let mut resp = ConnectResponse::new();
        resp.shim_pid = std::process::id();
        resp.task_pid = self.init.as_ref().map(|p| p.pid).unwrap_or(0);
        resp.version = concat!("berth-shim ", env!("CARGO_PKG_VERSION")).into();
        now(resp)
    }

    fn shutdown(&mut self, _r: ShutdownRequest) -> R {
        if self.init.is_none() || self.deleted {
            self.exit = true;
        }
        now(Empty::new())
    }

    /// Reap every exited child; returns the exec IDs ("" for init) that stopped.
    pub fn reap(&mut self) -> Vec<String> {
        let mut stopped = Vec::new();
        while let Some((pid, status)) = sys::reap_one() {
            let code = sys::exit_status(status);
            let at = SystemTime::now();
            let id = self.id.clone();
            let procs = self.init.iter_mut().chain(self.execs.values_mut());
            for p in procs {
                if p.pid != pid as u32 || p.state == State::Stopped || p.pid == 0 {
                    continue;
                }
                p.state = State::Stopped;
                p.exit_status = code;
                p.exited_at = Some(at);
                let mut ev = TaskExit::new();
                ev.container_id = id.clone();
                ev.id = if p.exec_id.is_empty() {
                    id.clone()
                } else {
                    p.exec_id.clone()
                };
                ev.pid = p.pid;
                ev.exit_status = code;
                ev.exited_at = MessageField::some(timestamp(at));
                stopped.push((p.exec_id.clone(), ev));
            }
        }
        let mut out = Vec::new();
        for (exec_id, ev) in stopped {
            if exec_id.is_empty() {
                // Before the exit is known outside: what the process wrote is in the log,
                // and an OOM kill that ended it has been published.
                if let Some(o) = self.outputs.as_mut() {
                    o.drain_now();
                }
                self.check_oom();
                self.record_exit(
                    ev.exit_status,
                    ev.exited_at
                        .as_ref()
                        .map(|t| (t.seconds, t.nanos))
                        .unwrap_or_default(),
                );
            }
            self.publisher.publish("/tasks/exit", "TaskExit", &ev);
            out.push(exec_id);
        }
        out
    }

    /// Persist the init exit in the bundle (atomically), for whoever asks later: "STATUS
    /// SECS NANOS", and "oom" when the OOM killer struck the container.
    fn record_exit(&self, status: u32, (secs, nanos): (i64, i32)) {
        let tmp = self.bundle.join(format!("{EXIT_FILE}.tmp"));
        let oom = if self.oom_reported { " oom" } else { "" };
        let res = File::create(&tmp)
            .and_then(|mut f| {
                writeln!(f, "{status} {secs} {nanos}{oom}")?;
                f.sync_all()
            })
            .and_then(|_| std::fs::rename(&tmp, self.bundle.join(EXIT_FILE)));
        if let Err(e) = res {
            crate::log(&format!("record exit: {e}"));
        }
    }

    /// Check the OOM watch (woken up, or before an exit is published): a new OOM kill
    /// is published as TaskOOM.
    pub fn check_oom(&mut self) {
        let Some(w) = self.oom.as_mut() else { return };
        match w.check() {
            Some(true) => {
                self.oom_reported = true;
                let mut ev = TaskOOM::new();
                ev.container_id = self.id.clone();
                self.publisher.publish("/tasks/oom", "TaskOOM", &ev);
            }
            Some(false) => {}
            None => self.oom = None,
        }
    }
}

fn wait_response(p: &Process) -> WaitResponse {
    let mut w = WaitResponse::new();
    w.exit_status = p.exit_status;
    if let Some(t) = p.exited_at {
        w.exited_at = MessageField::some(timestamp(t));
    }
    w
}

fn delete_response(p: &Process) -> DeleteResponse {
    let mut d = DeleteResponse::new();
    d.pid = p.pid;
    d.exit_status = p.exit_status;
    d.exited_at = MessageField::some(timestamp(p.exited_at.unwrap_or_else(SystemTime::now)));
    d
}

/// The PIDs in the cgroup of `pid` (v1 pids/memory controller, or v2).
fn cgroup_pids(pid: u32) -> Vec<u32> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return Vec::new();
    };
    let mut dirs = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let path = path.trim_start_matches('/');
        for c in ["pids", "memory"] {
            if ctl.split(',').any(|x| x == c) {
                dirs.push(Path::new("/sys/fs/cgroup").join(c).join(path));
            }
        }
        if ctl.is_empty() {
            dirs.push(Path::new("/sys/fs/cgroup").join(path));
            dirs.push(Path::new("/sys/fs/cgroup/unified").join(path));
        }
    }
    for d in dirs {
        if let Ok(t) = std::fs::read_to_string(d.join("cgroup.procs")) {
            let v: Vec<u32> = t.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if !v.is_empty() {
                return v;
            }
        }
    }
    Vec::new()
}
