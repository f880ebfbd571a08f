//! Following the supervisor: its event stream tells berthd that a process exited (a
//! container's init, or an exec'd one), that the kernel's OOM killer struck, that a
//! task was paused or resumed. Nothing is polled. The stream is subscribed to before
//! the tasks' states are read (at start-up, and after every reconnection), so that an
//! exit in between is seen either way; when it breaks (the supervisor died: berthd
//! starts its own again) or reports lost events, berthd re-syncs from the tasks' states.
//!
//! An exit is recorded once per run: the run is claimed (`Phase::Running` → `Exiting`)
//! by whoever sees the exit first, and one that comes while the start is still being
//! recorded waits for it. Then the run's streams are drained, its task deleted, the
//! container's state set to exited or restarting (restart policy), waiters woken, and a
//! restart scheduled or an auto-removal made.

use super::container::{Container, Phase};
use super::state::{ExitStatus, Status};
use super::supervisor::{self, Event, EventStream, Exit};
use super::{ContainerService, Record};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Longest a run's output may take to drain once it has exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait between two attempts to subscribe again.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

fn rfc3339(t: Option<SystemTime>) -> String {
    match t {
        Some(t) => chrono::DateTime::<chrono::Utc>::from(t)
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        None => super::now(),
    }
}

impl ContainerService {
    /// Subscribes to the supervisor's events, finds the containers of an earlier run
    /// again, then follows the events for good.
    pub(crate) async fn follow(self: Arc<Self>) {
        let stream = match self.sv.subscribe().await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot follow the supervisor's events yet");
                None
            }
        };
        for c in self.store.all() {
            self.restore(&c).await;
        }
        tokio::spawn(Self::events(Arc::downgrade(&self), stream));
    }

    /// The event loop. It holds the service only while it handles something, so that
    /// the service can go (a test's, or at shutdown).
    async fn events(weak: std::sync::Weak<Self>, mut stream: Option<EventStream>) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let Some(this) = weak.upgrade() else {
                return;
            };
            let mut s = match stream.take() {
                Some(s) => s,
                None => {
                    this.sv.reconnect().await;
                    match this.sv.subscribe().await {
                        Ok(s) => {
                            backoff = Duration::from_millis(50);
                            tracing::info!("following the supervisor's events again");
                            this.resync().await;
                            s
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "subscribing to the supervisor's events");
                            drop(this);
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                            continue;
                        }
                    }
                }
            };
            drop(this);
            while let Some(item) = s.next().await {
                let Some(this) = weak.upgrade() else {
                    return;
                };
                match item {
                    Ok(ev) => this.handle(ev),
                    Err(supervisor::Error::Lost(m)) => {
                        tracing::warn!(error = %m, "supervisor events lost; re-syncing");
                        this.resync().await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the supervisor's events");
                        break;
                    }
                }
            }
        }
    }

    /// One event.
    fn handle(self: &Arc<Self>, ev: Event) {
        match ev {
            Event::Exit(exit) => match exit.exec_id.clone() {
                Some(exec_id) => self.exec_exit_seen(&exec_id, exit.exit_status),
                None => {
                    if let Ok(c) = self.store.find(&exit.container_id) {
                        self.exit_seen(&c, exit);
                    }
                }
            },
            Event::Oom { container_id } => {
                let Ok(c) = self.store.find(&container_id) else {
                    return;
                };
                let during_run = c.run(|r| {
                    let live = r.phase != Phase::Idle;
                    r.oom |= live;
                    live
                });
                if during_run {
                    self.emit("oom", &c.record(), &[]);
                }
            }
            Event::Paused { container_id } => {
                if let Ok(c) = self.store.find(&container_id) {
                    self.paused(&c, true);
                }
            }
            Event::Resumed { container_id } => {
                if let Ok(c) = self.store.find(&container_id) {
                    self.paused(&c, false);
                }
            }
        }
    }

    /// The task was frozen or thawed (by berthd or behind its back): the state follows,
    /// and a frozen container's health is `unhealthy` until a probe after the thaw.
    /// Whether it changed.
    pub(crate) fn paused(self: &Arc<Self>, c: &Arc<Container>, paused: bool) -> bool {
        let changed = {
            let mut changed = false;
            c.transition(|s| {
                let now = s.status();
                if paused && now == Status::Running {
                    s.flags.set_paused();
                    changed = true;
                } else if !paused && now == Status::Paused {
                    s.flags.set_unpaused();
                    changed = true;
                }
            });
            changed
        };
        if changed {
            if paused {
                self.health_paused(c);
            }
            let (this, c) = (self.clone(), c.clone());
            tokio::spawn(async move {
                if let Err(e) = this.store.save(&c).await {
                    tracing::warn!(id = %c.id, error = %e, "saving container state");
                }
            });
        }
        changed
    }

    /// An exit of a container's init process, from an event or a re-sync: recorded
    /// once, by whoever claims the run.
    pub(crate) fn exit_seen(self: &Arc<Self>, c: &Arc<Container>, exit: Exit) {
        let claimed = c.run(|r| match r.phase {
            Phase::Starting => {
                r.pending = Some(exit.clone());
                false
            }
            Phase::Running(pid) if pid == exit.pid || exit.pid == 0 || pid == 0 => {
                r.phase = Phase::Exiting;
                true
            }
            _ => false,
        });
        if claimed {
            tokio::spawn(self.clone().finish_run(c.clone(), exit));
        }
    }

    /// Records the end of a run; then its restart, or its removal.
    async fn finish_run(self: Arc<Self>, c: Arc<Container>, exit: Exit) {
        if let Some(io) = c.run(|r| r.io.take()) {
            let _ = io.exited.send(true);
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, io.copiers).await;
            let fifos = io.fifos;
            let _ = tokio::task::spawn_blocking(move || fifos.remove()).await;
        }
        *c.stdin.lock().await = None;
        let code = i64::from(exit.exit_status);
        let exit_status = |oom_killed| ExitStatus {
            code,
            oom_killed,
            at: rfc3339(exit.exited_at),
            reason: exit.reason.clone(),
        };
        let (manual, started_at) = c.read(|r| (r.manual_stop, r.state.started_at.clone()));
        let ran_for = chrono::DateTime::parse_from_rfc3339(&started_at)
            .ok()
            .and_then(|t| {
                (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                    .to_std()
                    .ok()
            })
            .unwrap_or_default();
        // The restart policy's decision (berth-api's restart manager: dockerd's rules
        // and back-off), its delay scaled to the service's first delay.
        let (delay, count) =
            c.restarts(|m| (m.should_restart(code, manual, ran_for), m.restart_count));
        let delay = delay.map(|d| d.mul_f64(self.restart_delay.as_secs_f64() / 0.1));
        let end = |s: &mut super::state::State, status: &ExitStatus| {
            if delay.is_some() {
                s.set_restarting(status);
            } else {
                s.set_stopped(status);
            }
        };
        // The exit is on disk before the task (which holds it too) goes: a berthd killed
        // in between comes back to the container's own exit code, not to a task it
        // cannot find. Waiters wake only below, once the task and network are gone, so
        // that what they do next (start, rm) finds nothing of this run. Not for a
        // container removed once it exits (`run --rm`): its exit code goes with it, and
        // two fsyncs less are on the path its client waits on.
        if !c.read(Record::auto_remove) {
            let preliminary = exit_status(c.run(|r| r.oom));
            let saved = self
                .store
                .save_with(&c, |r| {
                    if delay.is_some() {
                        r.restart_count = count;
                    }
                    end(&mut r.state, &preliminary);
                })
                .await;
            if let Err(e) = saved {
                tracing::warn!(id = %c.id, error = %e, "saving an exit");
            }
        }
        if let Err(e) = self.sv.delete(&c.id).await {
            tracing::warn!(id = %c.id, error = %e, "deleting the task of an exited container");
        }
        // Its task is gone: so go its veths, addresses, ports, names and namespace.
        self.release_run(&c).await;
        // Read after the task's deletion: the OOM event, published just after the exit,
        // has arrived by then.
        let status = exit_status(c.run(|r| r.oom));
        let epoch = c.run(|r| {
            r.phase = Phase::Idle;
            r.epoch
        });
        if delay.is_some() {
            c.update(|r| r.restart_count = count);
        }
        c.transition(|s| end(s, &status));
        super::health::mark_unhealthy(&c);
        if let Err(e) = self.store.save(&c).await {
            // A removal that waited for this exit (`rm -f`) may have taken the
            // directory already: nothing is lost then.
            if c.read(|r| r.state.flags.removal_in_progress) {
                tracing::debug!(id = %c.id, error = %e, "container removed before its exit was saved");
            } else {
                tracing::warn!(id = %c.id, error = %e, "saving container state");
            }
        }
        c.exited();
        let rec = c.record();
        self.emit("die", &rec, &[("exitCode", code.to_string())]);
        let this = self.clone();
        let stopped = rec.clone();
        let _ = tokio::task::spawn_blocking(move || this.release_volumes(&stopped)).await;
        if let Some(delay) = delay {
            self.schedule_restart(c, epoch, delay);
        } else if rec.auto_remove() {
            match self.remove(&rec.id, true).await {
                // Removed by a user meanwhile.
                Ok(()) | Err(super::Error::NotFound(_)) => {}
                Err(e) => tracing::warn!(id = %rec.id, error = %e, "auto-remove failed"),
            }
        }
    }

    /// Starts a restarting container after `delay`, unless a start, stop or removal
    /// came first.
    fn schedule_restart(self: &Arc<Self>, c: Arc<Container>, epoch: u64, delay: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(this) = weak.upgrade() else {
                return;
            };
            if let Err(e) = this.start_container(&c, Some(epoch)).await {
                tracing::warn!(id = %c.id, error = %e, "restart failed");
            }
        });
    }

    /// A record that is not running has no task. One found is left by a daemon killed
    /// inside an operation: a berthd killed inside a start (the task made, the record
    /// not yet saved as running) or between an exit and the task's deletion, or a
    /// supervisor killed inside a start (the task made, berthd told it failed). Its
    /// processes are killed and the task deleted (its mounts and cgroups with it), so
    /// nothing runs behind a container berthd shows stopped and `docker rm` leaves
    /// nothing. Without a leftover this is one delete that finds nothing.
    pub(crate) async fn reap_leftover_task(&self, c: &Container) {
        let id = c.id.as_str();
        // The supervisor's record may be there without a task (made, then the crash):
        // the delete removes either. It refuses a live task (Conflict): that one is
        // killed first.
        match self.sv.delete(id).await {
            Ok(()) => {}
            Err(supervisor::Error::Conflict(_)) => {
                tracing::info!(
                    id,
                    "killing the live task a crash left behind a stopped container"
                );
                let _ = self.sv.kill(id, "", 9, true).await;
                // Bounded: SIGKILL ends it at once unless the kernel is stuck.
                for _ in 0..50 {
                    match self.sv.state(id, "").await {
                        Ok(s) if s.status != supervisor::Status::Stopped => {
                            tokio::time::sleep(Duration::from_millis(100)).await
                        }
                        _ => break,
                    }
                }
                if let Err(e) = self.sv.delete(id).await {
                    tracing::warn!(id, error = %e, "deleting a task a crash left");
                }
            }
            Err(e) => tracing::warn!(id, error = %e, "deleting a task a crash left"),
        }
        self.release_run(c).await;
    }

    /// After the supervisor came back: a task it still has behind a container that is
    /// not running (a start it died inside of) is reaped, each under its container's
    /// operation lock so that no start of berthd's own is mistaken for one.
    fn reap_after_supervisor_restart(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move {
            for c in this.store.all() {
                let _op = c.op.lock().await;
                let idle = c.run(|r| r.phase == Phase::Idle);
                if idle && !c.running() && c.status() != Status::Restarting {
                    this.reap_leftover_task(&c).await;
                }
            }
        });
    }

    /// A container that was running when berthd stopped: follow it again if its task
    /// still runs, else record its exit (and apply its restart policy).
    async fn restore(self: &Arc<Self>, c: &Arc<Container>) {
        let rec = c.record();
        match rec.state.status() {
            Status::Running | Status::Paused => {}
            Status::Restarting => {
                // berthd stopped during the restart delay (or between the exit's
                // record and its task's deletion): the restart is due now.
                self.reap_leftover_task(c).await;
                let epoch = c.run(|r| r.epoch);
                self.schedule_restart(c.clone(), epoch, Duration::ZERO);
                return;
            }
            _ => {
                self.reap_leftover_task(c).await;
                return;
            }
        }
        let st = self.sv.state(&rec.id, "").await;
        let live = match &st {
            Ok(s) => !matches!(s.status, supervisor::Status::Stopped),
            Err(_) => false,
        };
        if !live {
            let (pid, exit_status, exited_at, oom, reason) = match st {
                Ok(s) => (
                    s.pid,
                    s.exit_status,
                    s.exited_at,
                    s.oom_killed,
                    s.exit_reason,
                ),
                Err(_) => (rec.state.pid, 255, None, false, String::new()),
            };
            // An OOM kill while berthd was down: the shim recorded it.
            c.run(|r| {
                r.phase = Phase::Running(pid);
                r.oom |= oom;
            });
            self.exit_seen(
                c,
                Exit {
                    container_id: rec.id.clone(),
                    exec_id: None,
                    pid,
                    exit_status,
                    exited_at,
                    reason,
                },
            );
            return;
        }
        if let Ok(s) = &st {
            match s.status {
                supervisor::Status::Paused => {
                    self.paused(c, true);
                }
                supervisor::Status::Running => {
                    self.paused(c, false);
                }
                _ => {}
            }
        }
        self.reattach(c, &rec).await;
    }

    /// Reads the output of a running container that berthd finds again: its FIFOs, for
    /// attached clients (the shim kept writing the log meanwhile, and forwards to the
    /// FIFOs again from its next chunk on).
    async fn reattach(self: &Arc<Self>, c: &Arc<Container>, rec: &Record) {
        let fifos = super::io::Fifos {
            stdin: None,
            stdout: self.fifo_dir(&rec.id).join("init-stdout"),
            stderr: self.fifo_dir(&rec.id).join("init-stderr"),
        };
        let (exited, exited_rx) = tokio::sync::watch::channel(false);
        let copiers = match super::io::spawn_copiers(&fifos, rec.tty(), c.out.clone(), exited_rx) {
            Ok(copiers) => copiers,
            Err(e) => {
                // Attached clients get no output; the log is still written by the shim.
                tracing::warn!(id = %rec.id, error = %e, "reopening the output FIFOs");
                tokio::spawn(async {})
            }
        };
        c.run(|r| {
            r.io = Some(super::container::RunIo {
                fifos,
                exited,
                copiers,
            });
            r.phase = Phase::Running(rec.state.pid);
        });
        // Checks go on where they were; the status is kept, as dockerd keeps it.
        if let Some(probe) = Self::reset_health(c, false) {
            let _ = self.store.save(c).await;
            self.watch_health(c, probe);
        }
    }

    /// After events were lost: what the supervisor says of every run berthd believes
    /// alive is what happened.
    async fn resync(self: &Arc<Self>) {
        self.reap_after_supervisor_restart();
        for c in self.store.all() {
            let Phase::Running(pid) = c.run(|r| r.phase) else {
                continue;
            };
            match self.sv.state(&c.id, "").await {
                Ok(s) if s.status == supervisor::Status::Stopped => {
                    c.run(|r| r.oom |= s.oom_killed);
                    self.exit_seen(
                        &c,
                        Exit {
                            container_id: c.id.clone(),
                            exec_id: None,
                            pid,
                            exit_status: s.exit_status,
                            exited_at: s.exited_at,
                            reason: s.exit_reason,
                        },
                    );
                }
                Ok(s) if s.status == supervisor::Status::Paused => {
                    self.paused(&c, true);
                }
                Ok(s) if s.status == supervisor::Status::Running => {
                    self.paused(&c, false);
                }
                Ok(_) => {}
                Err(supervisor::Error::NotFound(_)) => self.exit_seen(
                    &c,
                    Exit {
                        container_id: c.id.clone(),
                        exec_id: None,
                        pid,
                        exit_status: 255,
                        exited_at: None,
                        reason: String::new(),
                    },
                ),
                Err(e) => tracing::warn!(id = %c.id, error = %e, "re-sync of a container"),
            }
        }
        for (container, exec_id) in self.execs.running() {
            match self.sv.state(&container, &exec_id).await {
                Ok(s) if s.status == supervisor::Status::Stopped => {
                    self.exec_exit_seen(&exec_id, s.exit_status)
                }
                Err(supervisor::Error::NotFound(_)) => self.exec_exit_seen(&exec_id, 255),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod flows {
    fn cmd() -> berth_api::exec::ExecConfig {
        berth_api::exec::ExecConfig {
            cmd: Some(vec!["true".into()]),
            ..Default::default()
        }
    }

    use super::super::lifecycle::WaitCondition;
    use super::super::supervisor::fake::Fake;
    use super::super::supervisor::Supervisor as _;
    use super::super::testing::Harness;
    use super::*;
    use serde_json::json;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_exit_is_recorded_once_and_wakes_waiters() {
        let h = Harness::new().await;
        let c = h.create("one", json!({})).await;
        assert_eq!(c.status(), Status::Created);
        h.svc.start("one").await.unwrap();
        assert_eq!(c.status(), Status::Running);
        let pid = c.read(|r| r.state.pid);
        assert!(pid > 0);
        let (svc, waited) = (h.svc.clone(), c.clone());
        let waiter =
            tokio::spawn(async move { svc.wait(&waited, WaitCondition::NotRunning).await });
        h.fake.exit(&c.id, 3);
        assert_eq!(waiter.await.unwrap(), 3);
        let st = c.read(|r| r.state.clone());
        assert_eq!(
            (st.status(), st.exit_code, st.pid, st.oom_killed),
            (Status::Exited, 3, 0, false)
        );
        h.until("die", || h.actions(&c).len() == 3).await;
        assert!(h.fake.called(&format!("delete {}", c.id)));
        // The same exit seen again (a re-sync) changes nothing.
        h.svc.exit_seen(
            &c,
            Exit {
                container_id: c.id.clone(),
                exec_id: None,
                pid,
                exit_status: 9,
                exited_at: None,
                reason: String::new(),
            },
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(c.read(|r| r.state.exit_code), 3);
        let actions = h.actions(&c);
        assert_eq!(actions, ["create", "start", "die"]);
        // Stored: a new service over the same directories reads the exit back.
        let fake = Arc::new(Fake::default());
        let h = h.reopen(fake).await;
        let c = h.svc.get("one").unwrap();
        assert_eq!(
            (c.status(), c.read(|r| r.state.exit_code)),
            (Status::Exited, 3)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn oom_killed_when_the_kernel_says_so() {
        let h = Harness::new().await;
        let c = h.create("oom", json!({})).await;
        h.svc.start("oom").await.unwrap();
        h.fake.oom(&c.id);
        h.until("die", || h.actions(&c).len() == 4).await;
        assert_eq!(h.actions(&c), ["create", "start", "oom", "die"]);
        let st = c.read(|r| r.state.clone());
        assert_eq!(
            (st.status(), st.exit_code, st.oom_killed),
            (Status::Exited, 137, true)
        );
        // A run that was not killed for memory clears it.
        h.svc.start("oom").await.unwrap();
        assert!(c.read(|r| r.state.oom_killed));
        h.fake.exit(&c.id, 0);
        h.until("exit", || !c.read(|r| r.state.oom_killed)).await;
        h.status(&c, Status::Exited).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_exit_before_the_start_is_recorded_waits_for_it() {
        let h = Harness::new().await;
        let c = h.create("quick", json!({})).await;
        *h.fake.exit_on_start.lock().unwrap() = Some(5);
        h.svc.start("quick").await.unwrap();
        h.status(&c, Status::Exited).await;
        assert_eq!(c.read(|r| r.state.exit_code), 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_failure_restarts_up_to_its_count() {
        let h = Harness::new().await;
        let c = h
            .create(
                "flaky",
                json!({"HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}}}),
            )
            .await;
        h.svc.start("flaky").await.unwrap();
        for n in 1..=2 {
            let pid = c.read(|r| r.state.pid);
            h.fake.exit(&c.id, 1);
            h.until("restarted", || {
                c.status() == Status::Running && c.read(|r| r.state.pid) != pid
            })
            .await;
            assert_eq!(c.read(|r| r.restart_count), n);
        }
        h.fake.exit(&c.id, 1);
        h.status(&c, Status::Exited).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(c.status(), Status::Exited);
        assert_eq!(c.read(|r| r.restart_count), 2);
        // A success is not restarted by on-failure.
        let c = h
            .create(
                "fine",
                json!({"HostConfig": {"RestartPolicy": {"Name": "on-failure"}}}),
            )
            .await;
        h.svc.start("fine").await.unwrap();
        h.fake.exit(&c.id, 0);
        h.status(&c, Status::Exited).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn restarting_after_wait_until_stopped() {
        // A long delay: the container stays restarting while the test looks at it.
        let h = Harness::with_delay(Duration::from_secs(600)).await;
        let c = h
            .create(
                "always",
                json!({"HostConfig": {"RestartPolicy": {"Name": "always"}}}),
            )
            .await;
        h.svc.start("always").await.unwrap();
        let (svc, waited) = (h.svc.clone(), c.clone());
        let waiter =
            tokio::spawn(async move { svc.wait(&waited, WaitCondition::NotRunning).await });
        h.fake.exit(&c.id, 3);
        assert_eq!(waiter.await.unwrap(), 3);
        // Restarting as soon as the waiter knows: a plain rm is refused.
        assert_eq!(c.status(), Status::Restarting);
        let st = c.read(|r| r.state.clone());
        assert_eq!((st.exit_code, st.pid), (3, 0));
        assert!(st.status().is_running());
        let e = h.svc.remove("always", false).await.unwrap_err().to_string();
        assert_eq!(
            e,
            "cannot remove container \"/always\": container is restarting: stop the container before removing or force remove"
        );
        // Exec and pause wait for it to run.
        assert!(h.svc.exec_create("always", &cmd()).is_err());
        assert!(h.svc.pause("always", true).await.is_err());
        // A stop calls the restart off.
        h.svc.stop("always", None, None).await.unwrap();
        assert_eq!(c.status(), Status::Exited);
        assert_eq!(c.read(|r| r.state.exit_code), 3);
        h.svc.remove("always", false).await.unwrap();
        assert!(h.svc.get("always").is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unless_stopped_stays_stopped() {
        let h = Harness::new().await;
        let c = h
            .create(
                "us",
                json!({"HostConfig": {"RestartPolicy": {"Name": "unless-stopped"}}}),
            )
            .await;
        h.svc.start("us").await.unwrap();
        h.svc.stop("us", Some(1), None).await.unwrap();
        assert_eq!(c.status(), Status::Exited);
        assert_eq!(c.read(|r| r.state.exit_code), 128 + 15);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(c.status(), Status::Exited);
        assert!(c.read(|r| r.manual_stop));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_stream_is_followed_by_a_resync() {
        let h = Harness::new().await;
        let c = h.create("lost", json!({})).await;
        h.svc.start("lost").await.unwrap();
        // The supervisor goes away; the exit happens while nobody listens.
        h.fake.exit_unseen(&c.id, 7);
        h.fake.disconnect();
        h.status(&c, Status::Exited).await;
        assert_eq!(c.read(|r| r.state.exit_code), 7);
        assert!(*h.fake.reconnects.lock().unwrap() >= 1);
        // And events flow again after it.
        h.svc.start("lost").await.unwrap();
        h.fake.exit(&c.id, 2);
        h.until("second exit", || c.read(|r| r.state.exit_code) == 2)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_exit_is_on_disk_before_its_task_is_deleted() {
        let h = Harness::new().await;
        let c = h.create("saved", json!({})).await;
        h.svc.start("saved").await.unwrap();
        // What a berthd killed at the task's deletion would find on restart.
        let record = h
            .dir
            .path()
            .join("data/containers")
            .join(&c.id)
            .join("config.v2.json");
        let seen = Arc::new(std::sync::Mutex::new(None));
        let seen_by_hook = seen.clone();
        *h.fake.on_delete.lock().unwrap() = Some(Box::new(move |_| {
            let bytes = std::fs::read(&record).unwrap();
            let rec: Record = serde_json::from_slice(&bytes).unwrap();
            *seen_by_hook.lock().unwrap() = Some((rec.state.status(), rec.state.exit_code));
        }));
        h.fake.exit(&c.id, 3);
        h.status(&c, Status::Exited).await;
        assert_eq!(*seen.lock().unwrap(), Some((Status::Exited, 3)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_task_left_behind_a_stopped_container_is_reaped_when_the_supervisor_returns() {
        let h = Harness::new().await;
        let c = h.create("orphan", json!({})).await;
        // The supervisor died inside this container's start: berthd was told the start
        // failed, but the task was made and runs.
        h.fake.seed(&c.id, 6161, None);
        h.fake.disconnect();
        h.until("the live task reaped", || {
            h.fake.status(&c.id, "").is_none()
        })
        .await;
        assert!(h.fake.called(&format!("kill {}  9", c.id)));
        assert_eq!(c.status(), Status::Created);
        // And it starts as any created container does.
        h.svc.start("orphan").await.unwrap();
        assert_eq!(c.status(), Status::Running);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pauses_behind_berthds_back_are_followed() {
        let h = Harness::new().await;
        let c = h.create("pz", json!({})).await;
        h.svc.start("pz").await.unwrap();
        h.fake.pause(&c.id).await.unwrap();
        h.status(&c, Status::Paused).await;
        assert_eq!(
            h.svc.exec_create("pz", &cmd()).unwrap_err().to_string(),
            "Container pz is paused, unpause the container before exec"
        );
        h.fake.resume(&c.id).await.unwrap();
        h.status(&c, Status::Running).await;
        // Through the API too, whichever of the answer and the event comes first.
        h.svc.pause("pz", true).await.unwrap();
        assert_eq!(c.status(), Status::Paused);
        h.svc.pause("pz", false).await.unwrap();
        assert_eq!(c.status(), Status::Running);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn restore_after_a_berthd_restart() {
        let h = Harness::new().await;
        let live = h.create("live", json!({})).await;
        let gone = h
            .create(
                "gone",
                json!({"HostConfig": {"RestartPolicy": {"Name": "always"}}}),
            )
            .await;
        let ended = h.create("ended", json!({})).await;
        for n in ["live", "gone", "ended"] {
            h.svc.start(n).await.unwrap();
        }
        let (live_id, gone_id, ended_id) = (live.id.clone(), gone.id.clone(), ended.id.clone());
        let live_pid = live.read(|r| r.state.pid);
        // berthd is away: `live` still runs, `gone` exited (its policy restarts it),
        // `ended` exited (no policy).
        let fake = Arc::new(Fake::default());
        fake.seed(&live_id, live_pid, None);
        fake.seed(&gone_id, 4242, Some(4));
        fake.seed(&ended_id, 4343, Some(6));
        let h = h.reopen(fake.clone()).await;
        let live = h.svc.get("live").unwrap();
        let gone = h.svc.get("gone").unwrap();
        let ended = h.svc.get("ended").unwrap();
        assert_eq!(live.status(), Status::Running);
        h.status(&ended, Status::Exited).await;
        assert_eq!(ended.read(|r| r.state.exit_code), 6);
        h.until("restarted by its policy", || {
            gone.status() == Status::Running && gone.read(|r| r.restart_count) == 1
        })
        .await;
        // The live one is followed: its exit comes as an event.
        fake.exit(&live_id, 0);
        h.status(&live, Status::Exited).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_task_left_behind_a_stopped_container_is_removed_at_restore() {
        let h = Harness::new().await;
        let created = h.create("created", json!({})).await;
        let exited = h.create("exited", json!({})).await;
        h.svc.start("exited").await.unwrap();
        h.fake.exit(&exited.id, 3);
        h.status(&exited, Status::Exited).await;
        // berthd was killed inside a start of `created` (its task made and running) and
        // between the exit of `exited` and its task's deletion.
        let fake = Arc::new(Fake::default());
        fake.seed(&created.id, 5151, None);
        fake.seed(&exited.id, 5252, Some(3));
        let h = h.reopen(fake.clone()).await;
        assert_eq!(fake.status(&created.id, ""), None, "the live task is gone");
        assert_eq!(
            fake.status(&exited.id, ""),
            None,
            "the stopped task is gone"
        );
        let created = h.svc.get("created").unwrap();
        let exited = h.svc.get("exited").unwrap();
        assert_eq!(created.status(), Status::Created);
        assert_eq!(exited.status(), Status::Exited);
        assert_eq!(exited.read(|r| r.state.exit_code), 3);
        // The killed task's exit is no exit of a later run.
        h.svc.start("created").await.unwrap();
        assert_eq!(created.status(), Status::Running);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restart_due_when_berthd_stopped_happens() {
        let h = Harness::with_delay(Duration::from_secs(600)).await;
        let c = h
            .create(
                "due",
                json!({"HostConfig": {"RestartPolicy": {"Name": "always"}}}),
            )
            .await;
        h.svc.start("due").await.unwrap();
        h.fake.exit(&c.id, 1);
        h.status(&c, Status::Restarting).await;
        let h = h.reopen(Arc::new(Fake::default())).await;
        let c = h.svc.get("due").unwrap();
        h.status(&c, Status::Running).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_start_leaves_the_container_as_it_was() {
        let h = Harness::new().await;
        let c = h.create("bad", json!({})).await;
        *h.fake.fail_create.lock().unwrap() = Some("no such runtime".into());
        let e = h.svc.start("bad").await.unwrap_err().to_string();
        assert!(e.contains("no such runtime"), "{e}");
        let st = c.read(|r| r.state.clone());
        assert_eq!((st.status(), st.exit_code), (Status::Created, 128));
        assert!(st.error.contains("no such runtime"));
        *h.fake.fail_create.lock().unwrap() = None;
        h.svc.start("bad").await.unwrap();
        assert!(c.read(|r| r.state.error.is_empty()));
    }
}
