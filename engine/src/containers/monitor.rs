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

/// Whether a restart policy restarts a container that exited with `code`, as dockerd's
/// restart manager decides.
pub fn restarts(policy: &serde_json::Value, code: i64, manual_stop: bool, count: u64) -> bool {
    let max = policy["MaximumRetryCount"].as_u64().unwrap_or(0);
    match policy["Name"].as_str().unwrap_or("") {
        "always" | "unless-stopped" => !manual_stop,
        "on-failure" => code != 0 && !manual_stop && (max == 0 || count < max),
        _ => false,
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
        tokio::spawn(self.events(stream));
    }

    async fn events(self: Arc<Self>, mut stream: Option<EventStream>) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let mut s = match stream.take() {
                Some(s) => s,
                None => {
                    self.sv.reconnect().await;
                    match self.sv.subscribe().await {
                        Ok(s) => {
                            backoff = Duration::from_millis(50);
                            tracing::info!("following the supervisor's events again");
                            self.resync().await;
                            s
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "subscribing to the supervisor's events");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                            continue;
                        }
                    }
                }
            };
            while let Some(item) = s.next().await {
                match item {
                    Ok(ev) => self.handle(ev),
                    Err(supervisor::Error::Lost(m)) => {
                        tracing::warn!(error = %m, "supervisor events lost; re-syncing");
                        self.resync().await;
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
        let changed = if paused {
            c.transition(|s| s.set_paused()).is_ok()
        } else {
            c.transition(|s| s.set_unpaused()).is_ok()
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
        if let Err(e) = self.sv.delete(&c.id).await {
            tracing::warn!(id = %c.id, error = %e, "deleting the task of an exited container");
        }
        let code = i64::from(exit.exit_status);
        let status = ExitStatus {
            code,
            // Read after the task's deletion: the OOM event, published just after the
            // exit, has arrived by then.
            oom_killed: c.run(|r| r.oom),
            at: rfc3339(exit.exited_at),
        };
        let restart = c.read(|r| {
            restarts(
                &r.host_config["RestartPolicy"],
                code,
                r.manual_stop,
                r.restart_count,
            )
        });
        let epoch = c.run(|r| {
            r.phase = Phase::Idle;
            r.epoch
        });
        let recorded = if restart {
            c.update(|r| r.restart_count += 1);
            c.transition(|s| s.set_restarting(&status))
        } else {
            c.transition(|s| s.set_stopped(&status))
        };
        if let Err(e) = recorded {
            tracing::warn!(id = %c.id, error = %e, "recording an exit");
        }
        super::health::mark_unhealthy(&c);
        if let Err(e) = self.store.save(&c).await {
            tracing::warn!(id = %c.id, error = %e, "saving container state");
        }
        c.exited();
        let rec = c.record();
        self.emit("die", &rec, &[("exitCode", code.to_string())]);
        let this = self.clone();
        let stopped = rec.clone();
        let _ = tokio::task::spawn_blocking(move || this.release_volumes(&stopped)).await;
        if restart {
            let delay = self.restart_delay * (1u32 << rec.restart_count.saturating_sub(1).min(6));
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
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Err(e) = this.start_container(&c, Some(epoch)).await {
                tracing::warn!(id = %c.id, error = %e, "restart failed");
            }
        });
    }

    /// A container that was running when berthd stopped: follow it again if its task
    /// still runs, else record its exit (and apply its restart policy).
    async fn restore(self: &Arc<Self>, c: &Arc<Container>) {
        let rec = c.record();
        match rec.state.status {
            Status::Running | Status::Paused => {}
            Status::Restarting => {
                // berthd stopped during the restart delay: the restart is due now.
                let epoch = c.run(|r| r.epoch);
                self.schedule_restart(c.clone(), epoch, Duration::ZERO);
                return;
            }
            _ => return,
        }
        let st = self.sv.state(&rec.id, "").await;
        let live = match &st {
            Ok(s) => !matches!(s.status, supervisor::Status::Stopped),
            Err(_) => false,
        };
        if !live {
            let (pid, exit_status, exited_at) = match st {
                Ok(s) => (s.pid, s.exit_status, s.exited_at),
                Err(_) => (rec.state.pid, 255, None),
            };
            c.run(|r| r.phase = Phase::Running(pid));
            self.exit_seen(
                c,
                Exit {
                    container_id: rec.id.clone(),
                    exec_id: None,
                    pid,
                    exit_status,
                    exited_at,
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

    /// Reads the output of a running container that berthd finds again: its FIFOs (the
    /// shim kept writing them) into its log and to attached clients.
    async fn reattach(self: &Arc<Self>, c: &Arc<Container>, rec: &Record) {
        let fifos = super::io::Fifos {
            stdin: None,
            stdout: self.fifo_dir(&rec.id).join("init-stdout"),
            stderr: self.fifo_dir(&rec.id).join("init-stderr"),
        };
        let this = self.clone();
        let stopped = rec.clone();
        let log = super::blocking(move || this.open_log(&stopped))
            .await
            .ok()
            .flatten();
        let (exited, exited_rx) = tokio::sync::watch::channel(false);
        let copiers = super::io::spawn_copiers(&fifos, rec.tty(), log, c.out.clone(), exited_rx);
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
        for c in self.store.all() {
            let Phase::Running(pid) = c.run(|r| r.phase) else {
                continue;
            };
            match self.sv.state(&c.id, "").await {
                Ok(s) if s.status == supervisor::Status::Stopped => self.exit_seen(
                    &c,
                    Exit {
                        container_id: c.id.clone(),
                        exec_id: None,
                        pid,
                        exit_status: s.exit_status,
                        exited_at: s.exited_at,
                    },
                ),
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
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn restart_policies() {
        let p = |name: &str, max: u64| json!({"Name": name, "MaximumRetryCount": max});
        assert!(restarts(&p("always", 0), 0, false, 100));
        assert!(!restarts(&p("always", 0), 0, true, 0));
        assert!(restarts(&p("unless-stopped", 0), 1, false, 0));
        assert!(!restarts(&p("unless-stopped", 0), 1, true, 0));
        assert!(!restarts(&p("on-failure", 0), 0, false, 0));
        assert!(restarts(&p("on-failure", 0), 1, false, 50));
        assert!(restarts(&p("on-failure", 2), 1, false, 1));
        assert!(!restarts(&p("on-failure", 2), 1, false, 2));
        assert!(!restarts(&p("no", 0), 1, false, 0));
        assert!(!restarts(&serde_json::Value::Null, 1, false, 0));
    }
}
