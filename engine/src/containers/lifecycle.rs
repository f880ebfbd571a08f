//! A container's life: start (prepared on the blocking pool, then the supervisor's
//! create and start), stop, kill, restart, pause, update, remove, and the `wait`
//! conditions. Exits are not waited for here: `monitor` records them from the
//! supervisor's events, and these operations watch the container's state for them.

use super::container::{Container, Phase, RunIo};
use super::io::{self, Fifos};
use super::record::Record;
use super::state::{has_task, Status};
use super::supervisor::{self, NewTask, RootfsMount, Stdio};
use super::users::{Accounts, User};
use super::{internal, parse_signal, spec, ContainerService, Error, Result};
use crate::snapshots::chain_ids;
use berth_api::container::UpdateConfig;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Longest a container may take to die after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(30);

/// What a start needs, made on the blocking pool.
struct Prepared {
    task: NewTask,
    process: Option<oci_spec::runtime::Process>,
    fifos: Fifos,
}

/// What `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Until it is not running (at once if it is not).
    NotRunning,
    /// Until its next exit.
    NextExit,
    /// Until it is removed.
    Removed,
}

impl WaitCondition {
    /// From the query's `condition` (dockerd's names; empty is `not-running`).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "" | "not-running" => Ok(Self::NotRunning),
            "next-exit" => Ok(Self::NextExit),
            "removed" => Ok(Self::Removed),
            other => Err(Error::Invalid(format!("invalid condition: \"{other}\""))),
        }
    }
}

impl ContainerService {
    /// The image's layer directories, top first (an empty one for an image without
    /// layers). Blocking.
    pub(crate) fn lowerdirs(&self, rec: &Record) -> Result<Vec<PathBuf>> {
        let img = self
            .images
            .resolve(&rec.image_id)
            .map_err(|_| Error::NotFound(format!("No such image: {}", rec.image_id)))?;
        let mut dirs: Vec<PathBuf> = chain_ids(&img.diff_ids())
            .iter()
            .map(|c| self.images.snapshots.fs_path(c))
            .collect();
        dirs.reverse();
        if dirs.is_empty() {
            let empty = self.dir(&rec.id).join("empty");
            std::fs::create_dir_all(&empty).map_err(internal("empty lowerdir"))?;
            dirs.push(empty);
        }
        Ok(dirs)
    }

    /// The container's file system as it would start (its upper directory over the
    /// image's layers, `lowers` top first), read-only: what is read from a container
    /// before it runs goes through this root, never through a host path. Blocking.
    pub(crate) fn fs_view(&self, rec: &Record, lowers: &[PathBuf]) -> Result<berth_fs::Root> {
        let mut layers = vec![self.dir(&rec.id).join("upper")];
        layers.extend(lowers.iter().cloned());
        berth_fs::view::open_layers(&layers, &self.views_dir())
            .map_err(|e| Error::Internal(format!("reading the container's file system: {e}")))
    }

    /// Who `user` (with `group_add`) is in the container. Root without extra groups
    /// needs no look-up (its home is `/root`, as runc has it). Blocking.
    pub(crate) fn user_in(
        &self,
        rec: &Record,
        lowers: &[PathBuf],
        user: &str,
        group_add: &[String],
    ) -> Result<User> {
        if user.is_empty() && group_add.is_empty() {
            return Ok(User {
                home: "/root".into(),
                ..User::default()
            });
        }
        let root = self.fs_view(rec, lowers)?;
        Accounts::read(&root)
            .user(user, group_add)
            .map_err(|e| Error::Internal(e.to_string()))
    }

    /// The json-file log the shim writes for a run (berthd only reads it), or None with
    /// the `none` driver.
    pub(crate) fn log_config(&self, rec: &Record) -> Option<supervisor::LogConfig> {
        let lc = &rec.host_config.log_config;
        if lc.kind == "none" {
            return None;
        }
        let c = lc.config.clone().unwrap_or_default();
        Some(supervisor::LogConfig {
            path: self.log_path(&rec.id),
            max_size: c
                .get("max-size")
                .and_then(|v| io::parse_size(v))
                .unwrap_or(0),
            max_file: c.get("max-file").and_then(|v| v.parse().ok()).unwrap_or(1),
        })
    }

    /// The supervisor's runtime binary for a container: its HostConfig.Runtime (the
    /// default for records made before runtimes were recorded).
    fn runtime_binary(&self, rec: &Record) -> Result<String> {
        let name = match rec.host_config.runtime.as_str() {
            "" => self.runtimes.default.as_str(),
            r => r,
        };
        self.runtimes
            .binary(name)
            .map(String::from)
            .ok_or_else(|| Error::Invalid(format!("Unknown runtime specified {name}")))
    }

    /// Everything a start makes before the supervisor is asked: the spec, the files it
    /// binds, the FIFOs, the log. Blocking.
    fn prepare(
        &self,
        rec: &Record,
        netns: Option<PathBuf>,
        joins: spec::Joins,
    ) -> Result<Prepared> {
        let id = rec.id.clone();
        self.mount_shm(rec)?;
        let dir = self.dir(&id);
        let lowers = self.lowerdirs(rec)?;
        let group_add = rec.host_config.group_add.clone().unwrap_or_default();
        let user = self.user_in(rec, &lowers, &rec.config.user, &group_add)?;
        super::network::write_etc(self.networks.as_ref(), rec, &dir)?;
        let tty = rec.tty();
        let open_stdin = rec.config.open_stdin;
        let mut args = vec![rec.path.clone()];
        args.extend(rec.args.iter().cloned());
        let cwd = match rec.config.working_dir.as_str() {
            "" => "/".to_string(),
            w => w.to_string(),
        };
        let spec = spec::build(&spec::SpecInput {
            args,
            env: rec.config.env.clone().unwrap_or_default(),
            cwd,
            user,
            hostname: rec.config.hostname.clone(),
            tty,
            host_config: &rec.host_config,
            dir: &dir,
            id: &id,
            cgroup_parent: &self.cgroup_parent,
            mounts: self.oci_mounts(rec)?,
            netns,
            joins,
        })
        .map_err(|e| Error::Invalid(e.to_string()))?;
        let lowerdir = lowers
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let fifos = Fifos::make(&self.fifo_dir(&id), "init", open_stdin)
            .map_err(internal("making FIFOs"))?;
        Ok(Prepared {
            process: spec.process().clone(),
            task: NewTask {
                id,
                spec,
                rootfs: vec![RootfsMount {
                    kind: "overlay".into(),
                    source: "overlay".into(),
                    options: vec![
                        format!("lowerdir={lowerdir}"),
                        format!("upperdir={}", dir.join("upper").display()),
                        format!("workdir={}", dir.join("work").display()),
                    ],
                }],
                runtime_binary: self.runtime_binary(rec)?,
                stdio: Stdio {
                    stdin: fifos.stdin.clone(),
                    stdout: fifos.stdout.clone(),
                    stderr: fifos.stderr.clone(),
                    terminal: tty,
                },
                log: self.log_config(rec),
            },
            fifos,
        })
    }

    /// POST /containers/{id}/start.
    pub async fn start(self: &Arc<Self>, name: &str) -> Result<()> {
        let c = self.get(name)?;
        self.start_container(&c, None).await
    }

    /// Starts a container: a user's start, or its restart policy's (`policy`: the run
    /// epoch it was scheduled in; it is called off if a stop, start or removal came
    /// since).
    pub(crate) async fn start_container(
        self: &Arc<Self>,
        c: &Arc<Container>,
        policy: Option<u64>,
    ) -> Result<()> {
        let op = c.op.lock().await;
        if let Some(epoch) = policy {
            let current = c.run(|r| r.epoch) == epoch;
            if !current || c.status() != Status::Restarting || c.read(|r| r.manual_stop) {
                return Ok(());
            }
        }
        if policy.is_none() {
            c.check(|s| s.check_start())?;
            c.update(|r| r.manual_stop = false);
            c.restarts(|m| m.reset_cancel());
        }
        let r = self.start_locked(c).await;
        if let Err(e) = &r {
            let msg = e.to_string();
            c.transition(|s| s.set_start_failed(msg));
            let _ = self.store.save(c).await;
            drop(op);
            if c.read(Record::auto_remove) {
                let _ = self.remove(&c.id, true).await;
            }
        }
        r
    }

    async fn start_locked(self: &Arc<Self>, c: &Arc<Container>) -> Result<()> {
        // Phase times go to the debug log: where a start's time goes, for operators.
        let began = std::time::Instant::now();
        let rec = c.record();
        let id = rec.id.clone();
        c.run(|r| {
            r.phase = Phase::Starting;
            r.pending = None;
            r.oom = false;
            r.epoch += 1;
        });
        // Another container's namespaces it joins: checked before anything is made.
        let joins = match self.joins(&rec) {
            Ok(j) => j,
            Err(e) => {
                c.run(|r| r.phase = Phase::Idle);
                return Err(e);
            }
        };
        // The network first: the spec joins the namespace berthd made and configured.
        let netns = match self.attach_network(&rec).await {
            Ok(p) => p,
            Err(e) => {
                self.release_run(c).await;
                c.run(|r| r.phase = Phase::Idle);
                return Err(e);
            }
        };
        let networked = began.elapsed();
        let this = self.clone();
        let prepared = super::blocking(move || this.prepare(&rec, netns, joins)).await;
        let Prepared {
            task,
            process,
            fifos,
        } = match prepared {
            Ok(p) => p,
            Err(e) => {
                self.release_run(c).await;
                c.run(|r| r.phase = Phase::Idle);
                return Err(e);
            }
        };
        let ready = began.elapsed();
        let (exited_tx, exited_rx) = watch::channel(false);
        // The FIFOs' readers are open before the task starts: the shim forwards output
        // only to a FIFO that has a reader (the rest goes to the log it writes).
        let copiers = match io::spawn_copiers(&fifos, task.stdio.terminal, c.out.clone(), exited_rx)
        {
            Ok(copiers) => copiers,
            Err(e) => {
                c.run(|r| r.phase = Phase::Idle);
                fifos_remove(&fifos).await;
                return Err(Error::Internal(format!("opening FIFOs: {e}")));
            }
        };
        let stdin = fifos.open_stdin().map_err(internal("opening stdin"));
        let started = match stdin {
            Ok(stdin) => {
                *c.stdin.lock().await = stdin;
                self.create_and_start(task).await
            }
            Err(e) => Err(e),
        };
        let pid = match started {
            Ok(pid) => pid,
            Err(e) => {
                let _ = exited_tx.send(true);
                copiers.abort();
                *c.stdin.lock().await = None;
                c.run(|r| r.phase = Phase::Idle);
                // A task the supervisor made (even started, its answer lost) goes too.
                self.reap_leftover_task(c).await;
                fifos_remove(&fifos).await;
                return Err(e);
            }
        };
        tracing::debug!(
            id = %id,
            network_ms = networked.as_secs_f64() * 1e3,
            prepare_ms = (ready - networked).as_secs_f64() * 1e3,
            supervisor_ms = (began.elapsed() - ready).as_secs_f64() * 1e3,
            "container started"
        );
        c.transition(|s| s.set_running(pid, &super::now()));
        c.update(|r| r.process = process);
        let probe = Self::reset_health(c, true);
        let pending = c.run(|r| {
            r.io = Some(RunIo {
                fifos,
                exited: exited_tx,
                copiers,
            });
            r.phase = Phase::Running(pid);
            r.pending.take()
        });
        self.store.save(c).await?;
        self.emit("start", &c.record(), &[]);
        if let Some(probe) = probe {
            self.watch_health(c, probe);
        }
        // It exited before its start was recorded: that exit is handled now.
        if let Some(exit) = pending {
            self.exit_seen(c, exit);
        }
        Ok(())
    }

    /// The supervisor's create (again after removing what a crash left) and start.
    async fn create_and_start(&self, task: NewTask) -> Result<u32> {
        let id = task.id.clone();
        match self.sv.create(task.clone()).await {
            Ok(()) => {}
            Err(supervisor::Error::Conflict(_)) => {
                // A crash may have left the supervisor's record and task behind.
                let _ = self.sv.delete(&id).await;
                self.sv.create(task).await.map_err(start_failed)?;
            }
            Err(e) => return Err(start_failed(e)),
        }
        match self.sv.start(&id, "").await {
            Ok(pid) => Ok(pid),
            Err(e) => {
                let _ = self.sv.delete(&id).await;
                Err(start_failed(e))
            }
        }
    }

    /// Waits (bounded) until the container has no running process; whether it stopped.
    pub(crate) async fn wait_stopped(&self, c: &Container, timeout: Duration) -> bool {
        let mut rx = c.gen.subscribe();
        let stopped = tokio::time::timeout(timeout, async {
            rx.wait_for(|g| !has_task(g.status) || g.removed)
                .await
                .is_ok()
        })
        .await;
        stopped.is_ok()
    }

    /// Sends a signal to a container's processes. A frozen container gets no signal
    /// until thawed: SIGTERM and SIGKILL thaw it first (as dockerd does for stop and
    /// rm -f).
    async fn signal(&self, c: &Container, sig: u32) -> Result<()> {
        if (sig == 9 || sig == 15) && c.status() == Status::Paused {
            let _ = self.sv.resume(&c.id).await;
        }
        self.sv.kill(&c.id, "", sig, sig == 9).await?;
        Ok(())
    }

    /// A pending restart is called off: the container stays exited. Whether there was
    /// one.
    async fn cancel_restart(&self, c: &Container) -> bool {
        let exit = super::state::ExitStatus::default();
        if c.status() != Status::Restarting {
            return false;
        }
        c.transition(|s| s.set_stopped(&exit));
        c.run(|r| {
            r.epoch += 1;
            if let Some(m) = r.restarts.as_mut() {
                m.cancel();
            }
        });
        let _ = self.store.save(c).await;
        true
    }

    /// POST /containers/{id}/kill.
    pub async fn kill(&self, name: &str, signal: Option<&str>) -> Result<()> {
        let c = self.get(name)?;
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => {
                parse_signal(s).ok_or_else(|| Error::Invalid(format!("Invalid signal: {s}")))?
            }
            None => 9,
        };
        if c.status() == Status::Restarting {
            // As dockerd: nothing runs to signal; the restart is called off.
            c.update(|r| r.manual_stop = true);
            self.cancel_restart(&c).await;
            return Ok(());
        }
        if !c.running() {
            return Err(Error::Conflict(format!(
                "Cannot kill container: {name}: Container {} is not running",
                c.id
            )));
        }
        if sig == 9 || sig == 15 {
            c.update(|r| r.manual_stop = true);
        }
        self.signal(&c, sig).await?;
        self.emit("kill", &c.record(), &[("signal", sig.to_string())]);
        // As dockerd: a SIGKILL returns once the container has exited, so that what
        // the client does next (inspect, start, rm) sees it stopped.
        if sig == 9 && !self.wait_stopped(&c, KILL_TIMEOUT).await {
            return Err(Error::Internal(format!(
                "container {} did not exit after SIGKILL",
                c.id
            )));
        }
        Ok(())
    }

    /// POST /containers/{id}/stop.
    pub async fn stop(&self, name: &str, timeout: Option<i64>, signal: Option<&str>) -> Result<()> {
        let c = self.get(name)?;
        // No start (a restart policy's) comes between the decision and the stop.
        let _op = c.op.lock().await;
        // Also when it is not running: a restart the policy has scheduled is cancelled.
        c.update(|r| r.manual_stop = true);
        c.restarts(|m| m.cancel());
        if self.cancel_restart(&c).await {
            self.emit("stop", &c.record(), &[]);
            return Ok(());
        }
        if !c.running() {
            let _ = self.store.save(&c).await;
            return Err(Error::NotModified("container already stopped".into()));
        }
        let (stop_signal, stop_timeout) = c.read(|r| {
            (
                Some(r.config.stop_signal.clone()).filter(|s| !s.is_empty()),
                r.config.stop_timeout,
            )
        });
        let sig_name = signal
            .filter(|s| !s.is_empty())
            .map(String::from)
            .or(stop_signal)
            .unwrap_or_else(|| "SIGTERM".into());
        let sig = parse_signal(&sig_name)
            .ok_or_else(|| Error::Invalid(format!("Invalid signal: {sig_name}")))?;
        let t = timeout.or(stop_timeout).unwrap_or(10);
        let _ = self.store.save(&c).await;
        if t != 0 {
            let _ = self.signal(&c, sig).await;
        }
        let wait = if t < 0 {
            Duration::from_secs(3600)
        } else {
            Duration::from_secs(t as u64)
        };
        if !self.wait_stopped(&c, wait).await {
            let _ = self.signal(&c, 9).await;
            if !self.wait_stopped(&c, KILL_TIMEOUT).await {
                return Err(Error::Internal(format!(
                    "container {} did not stop after SIGKILL",
                    c.id
                )));
            }
        }
        self.emit("stop", &c.record(), &[]);
        Ok(())
    }

    /// POST /containers/{id}/restart: stop (with `signal` and `timeout` as stop takes
    /// them), then start.
    pub async fn restart(
        self: &Arc<Self>,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        match self.stop(name, timeout, signal).await {
            Ok(()) | Err(Error::NotModified(_)) => {}
            Err(e) => return Err(e),
        }
        let c = self.get(name)?;
        self.start_container(&c, None).await
    }

    /// DELETE /containers/{id}.
    pub async fn remove(self: &Arc<Self>, name: &str, force: bool) -> Result<()> {
        self.remove_with(name, force, false).await
    }

    /// DELETE /containers/{id}?v=: also its anonymous volumes when `volumes`.
    pub async fn remove_with(
        self: &Arc<Self>,
        name: &str,
        force: bool,
        volumes: bool,
    ) -> Result<()> {
        let c = self.get(name)?;
        // No start (a restart policy's) comes between the decision and the removal.
        let _op = c.op.lock().await;
        let status = c.status();
        if status.is_running() && !force {
            let n = c.name();
            return Err(Error::Conflict(match status {
                Status::Paused => format!(
                    "cannot remove container \"/{n}\": container is paused and must be unpaused first"
                ),
                other => format!(
                    "cannot remove container \"/{n}\": container is {other}: stop the container before removing or force remove"
                ),
            }));
        }
        if status.is_running() {
            c.update(|r| r.manual_stop = true);
            c.restarts(|m| m.cancel());
            if !self.cancel_restart(&c).await {
                let _ = self.signal(&c, 9).await;
                if !self.wait_stopped(&c, KILL_TIMEOUT).await {
                    return Err(Error::Internal(format!(
                        "container {} did not stop after SIGKILL",
                        c.id
                    )));
                }
            }
        }
        let mut began = false;
        c.transition(|s| began = s.flags.set_removal_in_progress());
        if !began {
            return Err(Error::Conflict(format!(
                "removal of container {name} is already in progress"
            )));
        }
        c.run(|r| r.epoch += 1);
        self.store.remove(&c.id);
        self.health.forget(&c.id);
        // Its task is gone with its exit; one a crash left behind is reaped here.
        self.reap_leftover_task(&c).await;
        self.execs.forget_container(&c.id);
        let rec = c.record();
        let (fifo_dir, dir) = (self.fifo_dir(&c.id), self.dir(&c.id));
        let trash = self.store.removing(&c.id);
        let anonymous = volumes || rec.auto_remove();
        let (this, gone) = (self.clone(), rec.clone());
        // The directories (and anonymous volumes that nothing else uses) go on the
        // blocking pool.
        let removed = tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_dir_all(fifo_dir);
            // Renamed first: a crash inside the removal leaves no container half there.
            let r = std::fs::rename(&dir, &trash).and_then(|()| std::fs::remove_dir_all(&trash));
            if anonymous {
                this.remove_anonymous_volumes(&gone);
            }
            r
        })
        .await;
        if let Ok(Err(e)) = removed {
            tracing::warn!(id = %c.id, error = %e, "removing container directory");
        }
        self.emit("destroy", &rec, &[]);
        c.gen.send_modify(|g| g.removed = true);
        Ok(())
    }

    /// The link `parent/alias` (a name as dockerd registers links): the parent and the
    /// position of the link in its HostConfig.Links, and the linked container's name.
    fn find_link(&self, name: &str) -> Result<(Arc<Container>, usize, String)> {
        let missing = || Error::NotFound(format!("No such container: {name}"));
        let (parent, alias) = name
            .trim_start_matches('/')
            .rsplit_once('/')
            .ok_or_else(missing)?;
        let c = self.get(parent).map_err(|_| missing())?;
        let suffix = format!(":/{}/{alias}", c.name());
        c.read(|r| {
            r.host_config
                .links
                .iter()
                .flatten()
                .enumerate()
                .find_map(|(i, l)| {
                    l.strip_suffix(&suffix)
                        .map(|t| (i, t.trim_start_matches('/').to_string()))
                })
        })
        .map(|(i, target)| (c.clone(), i, target))
        .ok_or_else(missing)
    }

    /// The container a link name (`parent/alias`) names.
    pub fn linked(&self, name: &str) -> Result<String> {
        let (_, _, target) = self.find_link(name)?;
        Ok(self.get(&target)?.id.clone())
    }

    /// DELETE /containers/{name}?link=1: removes a link, as dockerd's `rmLink`.
    pub async fn remove_link(&self, name: &str) -> Result<()> {
        if !name.trim_start_matches('/').contains('/') {
            // The container's own name is no link to remove.
            self.get(name)?;
            return Err(Error::Internal(
                "Conflict, cannot remove the default link name of the container".into(),
            ));
        }
        let (c, i, _) = self.find_link(name)?;
        c.update(|r| {
            if let Some(links) = r.host_config.links.as_mut() {
                if i < links.len() {
                    links.remove(i);
                }
            }
        });
        self.store.save(&c).await
    }

    /// POST /containers/{id}/pause and unpause.
    pub async fn pause(self: &Arc<Self>, name: &str, pause: bool) -> Result<()> {
        let c = self.get(name)?;
        if pause {
            c.check(|s| s.check_pause(&c.id))?;
        } else {
            c.check(|s| s.check_unpause(&c.id))?;
        }
        // The supervisor's Paused or Resumed event may record the change first.
        if pause {
            self.sv.pause(&c.id).await?;
            self.paused(&c, true);
        } else {
            self.sv.resume(&c.id).await?;
            self.paused(&c, false);
        }
        self.emit(if pause { "pause" } else { "unpause" }, &c.record(), &[]);
        self.store.save(&c).await
    }

    /// GET /containers/{id}/top: the host's `ps` rows of the container's processes.
    pub async fn top(&self, name: &str, ps_args: Option<&str>) -> Result<Value> {
        let c = self.get(name)?;
        if !c.running() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let pids = self.sv.pids(&c.id).await?;
        // Without ps_args dockerd runs `ps -ef` (UID PID PPID C STIME TTY TIME CMD).
        ps_top(ps_args.unwrap_or("-ef"), &pids).await
    }

    /// POST /containers/prune: every stopped container that `select` keeps for removal;
    /// returns their IDs and the bytes their upper dirs held (dockerd's SpaceReclaimed).
    pub async fn prune(self: &Arc<Self>, select: impl Fn(&Record) -> bool) -> (Vec<String>, u64) {
        let (mut gone, mut reclaimed) = (Vec::new(), 0);
        for c in self.all() {
            if c.status().is_running() || !c.read(&select) {
                continue;
            }
            let size = self.size_rw(&c.id).await;
            if self.remove(&c.id, false).await.is_ok() {
                gone.push(c.id.clone());
                reclaimed += size;
            }
        }
        (gone, reclaimed)
    }

    /// POST /containers/{id}/update: resources (applied to a running task) and the
    /// restart policy; its warnings. What the request sets (non-zero) replaces what the
    /// container had, as dockerd's update.
    pub async fn update(&self, name: &str, mut u: UpdateConfig) -> Result<Vec<String>> {
        let c = self.get(name)?;
        let warnings =
            berth_api::validate::update(&mut u, &self.facts).map_err(super::create::invalid)?;
        let mut hc = c.read(|r| r.host_config.clone());
        let (new, r) = (&u.resources, &mut hc.resources);
        // --cpus sets the period and quota itself: once one way is set, the other cannot
        // be updated (dockerd's words and status).
        for (conflict, what) in [
            (
                new.nano_cpus > 0 && r.cpu_period > 0,
                "Nano CPUs cannot be updated as CPU Period has already been set",
            ),
            (
                new.nano_cpus > 0 && r.cpu_quota > 0,
                "Nano CPUs cannot be updated as CPU Quota has already been set",
            ),
            (
                new.cpu_period > 0 && r.nano_cpus > 0,
                "CPU Period cannot be updated as NanoCPUs has already been set",
            ),
            (
                new.cpu_quota > 0 && r.nano_cpus > 0,
                "CPU Quota cannot be updated as NanoCPUs has already been set",
            ),
        ] {
            if conflict {
                return Err(Error::Conflict(format!("Conflicting options: {what}")));
            }
        }
        if new.blkio_weight != 0 {
            r.blkio_weight = new.blkio_weight;
        }
        if new.cpu_period != 0 {
            r.cpu_period = new.cpu_period;
        }
        if new.cpu_quota != 0 {
            r.cpu_quota = new.cpu_quota;
        }
        if !new.cpuset_mems.is_empty() {
            r.cpuset_mems = new.cpuset_mems.clone();
        }
        if new.memory_reservation != 0 {
            r.memory_reservation = new.memory_reservation;
        }
        if new.kernel_memory != 0 {
            r.kernel_memory = new.kernel_memory;
        }
        if new.memory != 0 {
            r.memory = new.memory;
        }
        if new.memory_swap != 0 {
            r.memory_swap = new.memory_swap;
        }
        if new.nano_cpus != 0 {
            r.nano_cpus = new.nano_cpus;
        }
        if new.cpu_shares != 0 {
            r.cpu_shares = new.cpu_shares;
        }
        if !new.cpuset_cpus.is_empty() {
            r.cpuset_cpus = new.cpuset_cpus.clone();
        }
        if new.pids_limit.is_some_and(|p| p != 0) {
            r.pids_limit = new.pids_limit;
        }
        if new.cpu_realtime_period != 0 {
            r.cpu_realtime_period = new.cpu_realtime_period;
        }
        if new.cpu_realtime_runtime != 0 {
            r.cpu_realtime_runtime = new.cpu_realtime_runtime;
        }
        if r.memory > 0 && r.memory_swap > 0 && r.memory_swap < r.memory {
            return Err(Error::Invalid(
                berth_api::validate::Invalid::SwapBelowMemory.to_string(),
            ));
        }
        let policy_changed = !u.restart_policy.name.is_empty();
        if policy_changed {
            if hc.auto_remove && !u.restart_policy.is_none() {
                return Err(Error::Invalid(
                    berth_api::validate::Invalid::AutoRemoveAndRestart.to_string(),
                ));
            }
            hc.restart_policy = u.restart_policy.clone();
        }
        if c.running() {
            let res = spec::resources(&hc, false).map_err(|e| Error::Invalid(e.to_string()))?;
            self.sv.update(&c.id, &res).await?;
        }
        c.update(|r| r.host_config = hc);
        if policy_changed {
            c.run(|r| r.restarts = None);
        }
        self.store.save(&c).await?;
        Ok(warnings)
    }

    /// POST /containers/{id}/resize and /exec/{id}/resize.
    pub async fn resize(&self, name: &str, exec_id: &str, w: u32, h: u32) -> Result<()> {
        let c = self.get(name)?;
        if !c.running() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        self.sv.resize(&c.id, exec_id, w, h).await?;
        Ok(())
    }

    /// Closes the running process's stdin (the attached client closed its side).
    pub async fn close_stdin(
        &self,
        id: &str,
        exec_id: &str,
        stdin: &tokio::sync::Mutex<Option<tokio::net::unix::pipe::Sender>>,
    ) {
        *stdin.lock().await = None;
        let _ = self.sv.close_stdin(id, exec_id).await;
    }

    /// Waits for `cond` (the container as found now); its exit code then.
    pub async fn wait(&self, c: &Container, cond: WaitCondition) -> i64 {
        let mut rx = c.gen.subscribe();
        let start = rx.borrow().clone();
        let g = match cond {
            WaitCondition::NextExit => rx.wait_for(|g| g.exits > start.exits || g.removed).await,
            WaitCondition::Removed => rx.wait_for(|g| g.removed).await,
            // As dockerd: a container that is not running answers at once; a created one
            // waits for the end of its first run.
            WaitCondition::NotRunning
                if !start.status.is_running() && start.status != Status::Created =>
            {
                return start.exit_code
            }
            WaitCondition::NotRunning => rx.wait_for(|g| g.exits > start.exits || g.removed).await,
        };
        g.map(|g| g.exit_code).unwrap_or(0)
    }
}

/// The error of a start the supervisor refused, as dockerd words it.
fn start_failed(e: supervisor::Error) -> Error {
    let msg = e.to_string();
    let msg = msg
        .strip_prefix("failed to create task for container: ")
        .or_else(|| msg.strip_prefix("start: "))
        .unwrap_or(&msg);
    Error::Internal(format!("failed to create task for container: {msg}"))
}

async fn fifos_remove(f: &Fifos) {
    if let Some(i) = &f.stdin {
        let _ = tokio::fs::remove_file(i).await;
    }
    let _ = tokio::fs::remove_file(&f.stdout).await;
    let _ = tokio::fs::remove_file(&f.stderr).await;
}

/// `docker top` with ps arguments, as dockerd does it: the host's `ps ARGS`, its
/// header as the titles, and only the rows of the container's processes (the
/// thread rows after them, with `-` for a PID, too); the last column keeps spaces.
async fn ps_top(args: &str, pids: &[u32]) -> Result<Value> {
    let argv: Vec<String> = args.split_whitespace().map(String::from).collect();
    let out =
        tokio::task::spawn_blocking(move || std::process::Command::new("ps").args(&argv).output())
            .await
            .map_err(|e| Error::Internal(format!("running ps: {e}")))?
            .map_err(|e| Error::Internal(format!("Error running ps: {e}")))?;
    if !out.status.success() {
        return Err(Error::Internal(format!(
            "ps: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(String::from)
        .collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| Error::Internal("Couldn't find PID field in ps output".into()))?;
    let mut rows = Vec::new();
    let mut in_container = false;
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_col) else {
            continue;
        };
        let keep = if *pid == "-" {
            in_container
        } else {
            let p: u32 = pid
                .parse()
                .map_err(|e| Error::Internal(format!("Unexpected pid '{pid}': {e}")))?;
            in_container = pids.contains(&p);
            in_container
        };
        if keep {
            let last = titles.len().saturating_sub(1).min(fields.len());
            let mut row: Vec<String> = fields[..last].iter().map(|f| f.to_string()).collect();
            row.push(fields[last..].join(" "));
            rows.push(row);
        }
    }
    Ok(serde_json::json!({"Titles": titles, "Processes": rows}))
}
