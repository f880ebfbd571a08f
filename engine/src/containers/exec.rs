//! `docker exec`: processes added to a running container. An exec is created (checked
//! as dockerd checks it), started once (its process built from the container's init
//! process with the exec's command, user, environment and terminal), and its exit comes
//! from the supervisor's events, as a container's does. A process that cannot start
//! (no such program, no such user) ends the exec with code 126, as dockerd's.

use super::container::RunIo;
use super::io::{self, Chunk, Fifos};
use super::{internal, random_hex, ContainerService, Error, Result};
use berth_api::detach;
use berth_api::exec::ExecConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::unix::pipe;
use tokio::sync::{broadcast, watch};

/// The exit code of an exec whose process could not start (dockerd's).
pub const START_FAILED: i64 = 126;

/// Where an exec is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Created,
    Starting,
    Running(u32),
    Exiting(u32),
    Exited(i64, u32),
}

struct ExecRun {
    phase: Phase,
    /// An exit status that arrived while the start was under way.
    pending: Option<u32>,
    io: Option<RunIo>,
}

/// An exec'd process.
pub struct Exec {
    /// Exec ID.
    pub id: String,
    /// Container ID.
    pub container: String,
    /// The exec config (Cmd, Env, Tty, ...).
    pub config: ExecConfig,
    run: Mutex<ExecRun>,
    /// Output for the attached client.
    pub out: broadcast::Sender<Chunk>,
    /// stdin.
    pub stdin: tokio::sync::Mutex<Option<pipe::Sender>>,
    /// Set once it has exited (or failed to start).
    pub done: watch::Sender<bool>,
    /// Set once its process runs (or could not start).
    pub launched: watch::Sender<bool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Exec {
    /// (running, exit code once exited, pid).
    pub fn state(&self) -> (bool, Option<i64>, u32) {
        match lock(&self.run).phase {
            Phase::Created | Phase::Starting => (false, None, 0),
            Phase::Running(pid) | Phase::Exiting(pid) => (true, None, pid),
            Phase::Exited(code, pid) => (false, Some(code), pid),
        }
    }

    /// Whether its process has been started (or tried).
    pub fn started(&self) -> bool {
        lock(&self.run).phase != Phase::Created
    }

    /// With a terminal: from its create, whatever its start asks (as dockerd).
    pub fn tty(&self) -> bool {
        self.config.tty
    }

    /// The detach keys (dockerd's default unless its config names others).
    pub fn detach_keys(&self) -> Vec<u8> {
        Some(self.config.detach_keys.as_str())
            .filter(|k| !k.is_empty())
            .and_then(|k| detach::parse(k).ok())
            .unwrap_or_else(|| detach::DEFAULT.to_vec())
    }

    fn ended(&self, code: i64, pid: u32) {
        lock(&self.run).phase = Phase::Exited(code, pid);
        self.launched.send_replace(true);
    }
}

/// The execs the daemon knows, by ID.
#[derive(Default)]
pub struct Execs {
    map: Mutex<HashMap<String, Arc<Exec>>>,
}

impl Execs {
    fn insert(&self, e: Arc<Exec>) {
        lock(&self.map).insert(e.id.clone(), e);
    }

    fn get(&self, id: &str) -> Option<Arc<Exec>> {
        lock(&self.map).get(id).cloned()
    }

    /// Forgets one exec.
    pub fn remove(&self, id: &str) {
        lock(&self.map).remove(id);
    }

    /// Forgets the execs of a removed container.
    pub fn forget_container(&self, container: &str) {
        lock(&self.map).retain(|_, e| e.container != container);
    }

    /// IDs of the running execs of a container.
    pub fn running_of(&self, container: &str) -> Vec<String> {
        lock(&self.map)
            .values()
            .filter(|e| e.container == container && e.state().0)
            .map(|e| e.id.clone())
            .collect()
    }

    /// (container, exec ID) of every running exec.
    pub fn running(&self) -> Vec<(String, String)> {
        lock(&self.map)
            .values()
            .filter(|e| e.state().0)
            .map(|e| (e.container.clone(), e.id.clone()))
            .collect()
    }
}

/// An exec's command as dockerd's exec events name it: the program, a space, then its
/// arguments joined by spaces (so a command without arguments ends in a space).
fn command_text(config: &ExecConfig) -> String {
    let cmd = config.cmd.clone().unwrap_or_default();
    let (program, args) = cmd
        .split_first()
        .map_or(("", &[][..]), |(p, a)| (p.as_str(), a));
    format!("{program} {}", args.join(" "))
}

impl ContainerService {
    /// POST /containers/{id}/exec.
    pub fn exec_create(&self, name: &str, body: &ExecConfig) -> Result<String> {
        let c = self.get(name)?;
        c.check(|s| s.check_exec(&c.id, name))?;
        if body.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(Error::Invalid("No exec command specified".into()));
        }
        let k = &body.detach_keys;
        if !k.is_empty() {
            detach::parse(k)
                .map_err(|_| Error::Invalid(format!("Invalid escape keys ({k}) provided")))?;
        }
        let id = random_hex(32);
        self.execs.insert(Arc::new(Exec {
            id: id.clone(),
            container: c.id.clone(),
            config: body.clone(),
            run: Mutex::new(ExecRun {
                phase: Phase::Created,
                pending: None,
                io: None,
            }),
            out: broadcast::channel(1024).0,
            stdin: tokio::sync::Mutex::new(None),
            done: watch::Sender::new(false),
            launched: watch::Sender::new(false),
        }));
        self.emit(
            &format!("exec_create: {}", command_text(body)),
            &c.record(),
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    /// An exec by ID.
    pub fn exec(&self, id: &str) -> Result<Arc<Exec>> {
        self.execs
            .get(id)
            .ok_or_else(|| Error::NotFound(format!("No such exec instance: {id}")))
    }

    /// IDs of the running execs of a container.
    pub fn exec_ids(&self, container: &str) -> Vec<String> {
        self.execs.running_of(container)
    }

    /// Whether an exec can start: not run yet, and its container running (checked
    /// before exec start hijacks the connection, as dockerd does).
    pub fn exec_startable(&self, exec: &Exec) -> Result<()> {
        if exec.started() {
            return Err(Error::Conflict(format!(
                "Error: Exec command {} has already run",
                exec.id
            )));
        }
        let c = self.get(&exec.container)?;
        c.check(|s| s.check_exec(&c.id, &exec.container))?;
        Ok(())
    }

    /// The process of an exec: the container's init process with the exec's command,
    /// terminal, environment, working directory, user and privileges. Blocking (a user
    /// is looked up in the container's files).
    fn exec_process(&self, exec: &Exec) -> Result<oci_spec::runtime::Process> {
        let c = self.get(&exec.container)?;
        let rec = c.record();
        let conf = &exec.config;
        let mut p = rec.process.clone().ok_or_else(|| {
            Error::Conflict(format!("container {} has no process to exec from", rec.id))
        })?;
        p.set_args(conf.cmd.clone());
        p.set_terminal(Some(exec.tty()));
        let mut env = p.env().clone().unwrap_or_default();
        let set_env = |env: &mut Vec<String>, e: String| {
            let key = e.split('=').next().unwrap_or("").to_string();
            env.retain(|x| x.split('=').next() != Some(key.as_str()));
            env.push(e);
        };
        if !conf.user.is_empty() {
            let u = conf.user.as_str();
            let lowers = self.lowerdirs(&rec)?;
            let group_add = rec.host_config.group_add.clone().unwrap_or_default();
            let who = self.user_in(&rec, &lowers, u, &group_add)?;
            let mut spec_user = p.user().clone();
            spec_user.set_uid(who.uid);
            spec_user.set_gid(who.gid);
            spec_user.set_additional_gids(Some(who.additional_gids));
            p.set_user(spec_user);
            // HOME is the exec user's, unless the container's config sets one.
            if !rec
                .config
                .env
                .iter()
                .flatten()
                .any(|e| e.starts_with("HOME="))
            {
                set_env(&mut env, format!("HOME={}", who.home));
            }
        }
        for e in conf.env.iter().flatten() {
            set_env(&mut env, e.clone());
        }
        if exec.tty() && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        p.set_env(Some(env));
        if !conf.working_dir.is_empty() {
            p.set_cwd(conf.working_dir.as_str().into());
        }
        if conf.privileged {
            let caps: oci_spec::runtime::Capabilities = super::spec::host_caps()
                .iter()
                .filter_map(|c| serde_json::from_value(serde_json::Value::String(c.clone())).ok())
                .collect();
            let mut pc = p.capabilities().clone().unwrap_or_default();
            pc.set_bounding(Some(caps.clone()));
            pc.set_effective(Some(caps.clone()));
            pc.set_permitted(Some(caps));
            p.set_capabilities(Some(pc));
        }
        Ok(p)
    }

    /// Starts an exec'd process; its output goes to `exec.out`. A process that cannot
    /// start ends the exec with code 126 and the reason.
    pub async fn exec_start(self: &Arc<Self>, exec: &Arc<Exec>) -> Result<()> {
        self.exec_startable(exec)?;
        {
            let mut run = lock(&exec.run);
            if run.phase != Phase::Created {
                return Err(Error::Conflict(format!(
                    "Error: Exec command {} has already run",
                    exec.id
                )));
            }
            run.phase = Phase::Starting;
        }
        let rec = self.get(&exec.container)?.record();
        // As dockerd: announced before the process is tried (health probes included).
        self.emit(
            &format!("exec_start: {}", command_text(&exec.config)),
            &rec,
            &[("execID", exec.id.clone())],
        );
        match self.exec_launch(exec).await {
            Ok(()) => Ok(()),
            Err(e) => {
                exec.ended(START_FAILED, 0);
                let _ = exec.out.send(Chunk::End);
                exec.done.send_replace(true);
                Err(e)
            }
        }
    }

    async fn exec_launch(self: &Arc<Self>, exec: &Arc<Exec>) -> Result<()> {
        let tty = exec.tty();
        let open_stdin = exec.config.attach_stdin;
        let (this, ex) = (self.clone(), exec.clone());
        let fifo_dir = self.fifo_dir(&exec.container);
        let (process, fifos) = super::blocking(move || {
            let p = this.exec_process(&ex)?;
            let fifos = Fifos::make(&fifo_dir, &format!("exec-{}", &ex.id[..16]), open_stdin)
                .map_err(internal("making FIFOs"))?;
            Ok((p, fifos))
        })
        .await?;
        let (exited_tx, exited_rx) = watch::channel(false);
        let copiers = match io::spawn_copiers(&fifos, tty, exec.out.clone(), exited_rx) {
            Ok(copiers) => copiers,
            Err(e) => {
                let _ = tokio::task::spawn_blocking(move || fifos.remove()).await;
                return Err(Error::Internal(format!("opening FIFOs: {e}")));
            }
        };
        let stdio = super::supervisor::Stdio {
            stdin: fifos.stdin.clone(),
            stdout: fifos.stdout.clone(),
            stderr: fifos.stderr.clone(),
            terminal: tty,
        };
        let started = match fifos.open_stdin() {
            Ok(stdin) => {
                *exec.stdin.lock().await = stdin;
                match self
                    .sv
                    .exec(&exec.container, &exec.id, &process, &stdio)
                    .await
                {
                    Ok(()) => self.sv.start(&exec.container, &exec.id).await,
                    Err(e) => Err(e),
                }
                .map_err(|e| Error::Internal(format!("exec failed: {e}")))
            }
            Err(e) => Err(internal("opening stdin")(e)),
        };
        let pid = match started {
            Ok(pid) => pid,
            Err(e) => {
                let _ = exited_tx.send(true);
                copiers.abort();
                *exec.stdin.lock().await = None;
                let _ = self.sv.delete_process(&exec.container, &exec.id).await;
                let _ = tokio::task::spawn_blocking(move || fifos.remove()).await;
                return Err(e);
            }
        };
        let pending = {
            let mut run = lock(&exec.run);
            run.io = Some(RunIo {
                fifos,
                exited: exited_tx,
                copiers,
            });
            run.phase = Phase::Running(pid);
            run.pending.take()
        };
        exec.launched.send_replace(true);
        if let Some(status) = pending {
            self.exec_exit_seen(&exec.id, status);
        }
        Ok(())
    }

    /// An exec'd process exited (an event or a re-sync): recorded once.
    pub(crate) fn exec_exit_seen(self: &Arc<Self>, exec_id: &str, status: u32) {
        let Some(exec) = self.execs.get(exec_id) else {
            return;
        };
        let claimed = {
            let mut run = lock(&exec.run);
            match run.phase {
                Phase::Starting => {
                    run.pending = Some(status);
                    None
                }
                Phase::Running(pid) => {
                    run.phase = Phase::Exiting(pid);
                    Some((pid, run.io.take()))
                }
                _ => None,
            }
        };
        let Some((pid, io)) = claimed else {
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            let code = i64::from(status);
            // Recorded before the stream ends: the client inspects the exit code then.
            exec.ended(code, pid);
            if let Ok(c) = this.get(&exec.container) {
                this.emit(
                    "exec_die",
                    &c.record(),
                    &[("execID", exec.id.clone()), ("exitCode", code.to_string())],
                );
            }
            if let Some(io) = io {
                let _ = io.exited.send(true);
                let _ = tokio::time::timeout(Duration::from_secs(5), io.copiers).await;
                let fifos = io.fifos;
                let _ = tokio::task::spawn_blocking(move || fifos.remove()).await;
            }
            *exec.stdin.lock().await = None;
            let _ = this.sv.delete_process(&exec.container, &exec.id).await;
            exec.done.send_replace(true);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_texts() {
        let cmd = |c: &[&str]| ExecConfig {
            cmd: Some(c.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        assert_eq!(command_text(&cmd(&["ls", "-l"])), "ls -l");
        assert_eq!(command_text(&cmd(&["true"])), "true ");
    }
}

#[cfg(test)]
mod flows {
    use super::super::supervisor::fake::Outcome;

    pub(crate) fn cfg(v: serde_json::Value) -> ExecConfig {
        serde_json::from_value(v).unwrap()
    }
    use super::super::testing::Harness;
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_exec_that_cannot_start_ends_with_126() {
        let h = Harness::new().await;
        h.create("ex", serde_json::json!({})).await;
        h.svc.start("ex").await.unwrap();
        h.fake
            .on_exec(|_| Outcome::Fail("exec: \"nope\": executable file not found".into()));
        let id = h
            .svc
            .exec_create("ex", &cfg(serde_json::json!({"Cmd": ["nope"]})))
            .unwrap();
        let exec = h.svc.exec(&id).unwrap();
        let e = h.svc.exec_start(&exec).await.unwrap_err().to_string();
        assert!(e.contains("executable file not found"), "{e}");
        assert_eq!(exec.state(), (false, Some(START_FAILED), 0));
        assert!(*exec.done.borrow());
        // Once tried, never again.
        assert!(h.svc.exec_startable(&exec).is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_exec_exit_comes_from_events() {
        let h = Harness::new().await;
        h.create("ex2", serde_json::json!({})).await;
        h.svc.start("ex2").await.unwrap();
        h.fake.on_exec(|_| Outcome::Exit(4));
        let body = cfg(serde_json::json!({"Cmd": ["sh"], "Tty": true, "Env": ["A=1"]}));
        let id = h.svc.exec_create("ex2", &body).unwrap();
        let exec = h.svc.exec(&id).unwrap();
        let mut done = exec.done.subscribe();
        h.svc.exec_start(&exec).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), done.wait_for(|d| *d))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(exec.state().1, Some(4));
        assert!(h
            .fake
            .called(&format!("delete_process {} {id}", exec.container)));
        let c = h.svc.get("ex2").unwrap();
        assert!(h.actions(&c).iter().any(|a| a == "exec_die"));
    }
}
