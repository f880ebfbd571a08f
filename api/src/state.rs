//! A container's state and the transitions dockerd allows, as moby's
//! `container/state.go` keeps them: a few flags (running, paused, restarting, removal in
//! progress, dead, ever started) from which the status shown by inspect and list
//! follows, and the checks each verb makes before it acts, with dockerd's words and
//! status codes. Pure: the engine holds one [`State`] per container under its own lock
//! and calls these; the restart policy's decision and back-off are here too
//! ([`RestartManager`], moby's `restartmanager`).

use crate::container::{RestartKind, RestartPolicy};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A container's status, as dockerd names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, never started.
    Created,
    /// Exited, and its restart policy is about to start it again.
    Restarting,
    /// Its process runs.
    Running,
    /// Being removed.
    Removing,
    /// Frozen.
    Paused,
    /// Ran and stopped.
    Exited,
    /// Removal failed half-way.
    Dead,
}

impl Status {
    /// Every status, in dockerd's order.
    pub const ALL: [Status; 7] = [
        Status::Created,
        Status::Restarting,
        Status::Running,
        Status::Removing,
        Status::Paused,
        Status::Exited,
        Status::Dead,
    ];

    /// Docker's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Restarting => "restarting",
            Self::Running => "running",
            Self::Removing => "removing",
            Self::Paused => "paused",
            Self::Exited => "exited",
            Self::Dead => "dead",
        }
    }

    /// Parses Docker's name (the `status` filter's values).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether inspect shows `Running: true` (paused and restarting containers count
    /// as running in dockerd).
    pub fn is_running(self) -> bool {
        matches!(self, Self::Running | Self::Paused | Self::Restarting)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A health check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// In the start period, or no result yet.
    Starting,
    /// The last check passed.
    Healthy,
    /// Retries checks failed in a row.
    Unhealthy,
    /// No health check (the `health` filter's `none`).
    None,
}

impl HealthStatus {
    /// Docker's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::None => "none",
        }
    }
}

/// A verb refused in this state, with dockerd's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// `start` of a running container (304).
    #[error("Container is already started")]
    AlreadyStarted,
    /// `stop` of a stopped container (304).
    #[error("Container is already stopped")]
    AlreadyStopped,
    /// `start` of a paused container (409).
    #[error("cannot start a paused container, try unpause instead")]
    StartPaused,
    /// `start` of a container being removed or dead (409).
    #[error("container is marked for removal and cannot be started")]
    MarkedForRemoval,
    /// kill, pause, exec, ... of a container that does not run (409).
    #[error("Container {0} is not running")]
    NotRunning(String),
    /// `pause` of a paused container (409).
    #[error("Container {0} is already paused")]
    AlreadyPaused(String),
    /// `unpause` of a container that is not paused (dockerd: 500).
    #[error("Container {0} is not paused")]
    NotPaused(String),
    /// pause or exec while the restart policy restarts it (409).
    #[error("Container {0} is restarting, wait until the container is running")]
    Restarting(String),
    /// `exec` into a paused container (409; dockerd names it as the client did).
    #[error("Container {0} is paused, unpause the container before exec")]
    ExecPaused(String),
    /// `rm` without force of a running, paused or restarting container (409).
    #[error("You cannot remove a {state} container {id}. {procedure}")]
    RemoveRunning {
        /// `running`, `paused` or `restarting`.
        state: Status,
        /// The container's ID.
        id: String,
        /// What to do first.
        procedure: &'static str,
    },
    /// `rm` while another removal runs (409).
    #[error("removal of container {0} is already in progress")]
    RemovalInProgress(String),
}

impl TransitionError {
    /// The HTTP status dockerd answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::AlreadyStarted | Self::AlreadyStopped => 304,
            Self::NotPaused(_) => 500,
            _ => 409,
        }
    }
}

/// A container's state: dockerd's flags. The status shown follows from them
/// ([`State::status`]); the verbs' checks and the transitions are methods. A flag that is
/// absent reads as false (records written before a flag existed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Its process runs (also while paused, and while restarting).
    pub running: bool,
    /// Frozen.
    pub paused: bool,
    /// Waiting to be restarted by its policy.
    pub restarting: bool,
    /// Being removed (not kept across a daemon restart, as in dockerd).
    #[serde(skip)]
    pub removal_in_progress: bool,
    /// Removal failed half-way.
    pub dead: bool,
    /// Started at least once.
    pub started: bool,
}

impl State {
    /// A new container's state.
    pub fn created() -> Self {
        Self::default()
    }

    /// The status, as dockerd's `StateString`.
    pub fn status(&self) -> Status {
        if self.running {
            if self.paused {
                return Status::Paused;
            }
            if self.restarting {
                return Status::Restarting;
            }
            return Status::Running;
        }
        if self.removal_in_progress {
            return Status::Removing;
        }
        if self.dead {
            return Status::Dead;
        }
        if !self.started {
            return Status::Created;
        }
        Status::Exited
    }

    /// May it be started (by a user)?
    pub fn check_start(&self) -> Result<(), TransitionError> {
        if self.paused {
            return Err(TransitionError::StartPaused);
        }
        if self.running {
            return Err(TransitionError::AlreadyStarted);
        }
        if self.removal_in_progress || self.dead {
            return Err(TransitionError::MarkedForRemoval);
        }
        Ok(())
    }

    /// May it be stopped? (Stopping a stopped container is a 304.)
    pub fn check_stop(&self) -> Result<(), TransitionError> {
        if !self.running {
            return Err(TransitionError::AlreadyStopped);
        }
        Ok(())
    }

    /// May a signal be sent to it? A restarting container has no process to signal.
    pub fn check_kill(&self, id: &str) -> Result<(), TransitionError> {
        if !self.running || self.restarting {
            return Err(TransitionError::NotRunning(id.to_string()));
        }
        Ok(())
    }

    /// May it be paused?
    pub fn check_pause(&self, id: &str) -> Result<(), TransitionError> {
        if !self.running {
            return Err(TransitionError::NotRunning(id.to_string()));
        }
        if self.paused {
            return Err(TransitionError::AlreadyPaused(id.to_string()));
        }
        if self.restarting {
            return Err(TransitionError::Restarting(id.to_string()));
        }
        Ok(())
    }

    /// May it be unpaused?
    pub fn check_unpause(&self, id: &str) -> Result<(), TransitionError> {
        if !self.paused {
            return Err(TransitionError::NotPaused(id.to_string()));
        }
        Ok(())
    }

    /// May a process be exec'd in it? `name` is the container as the client named it
    /// (dockerd's paused message uses it).
    pub fn check_exec(&self, id: &str, name: &str) -> Result<(), TransitionError> {
        if !self.running {
            return Err(TransitionError::NotRunning(id.to_string()));
        }
        if self.paused {
            return Err(TransitionError::ExecPaused(name.to_string()));
        }
        if self.restarting {
            return Err(TransitionError::Restarting(id.to_string()));
        }
        Ok(())
    }

    /// May it be removed? A running (or paused, or restarting) one only with force;
    /// `name` is as the client named it.
    pub fn check_remove(&self, id: &str, name: &str, force: bool) -> Result<(), TransitionError> {
        if self.removal_in_progress {
            return Err(TransitionError::RemovalInProgress(name.to_string()));
        }
        if self.running && !force {
            let state = self.status();
            let procedure = if state == Status::Paused {
                "Unpause and then stop the container before attempting removal or force remove"
            } else {
                "Stop the container before attempting removal or force remove"
            };
            return Err(TransitionError::RemoveRunning {
                state,
                id: id.to_string(),
                procedure,
            });
        }
        Ok(())
    }

    /// Its process started (first start, restart by policy, or docker restart).
    pub fn set_running(&mut self) {
        self.running = true;
        self.paused = false;
        self.restarting = false;
        self.started = true;
    }

    /// Its process exited and it stays stopped.
    pub fn set_stopped(&mut self) {
        self.running = false;
        self.paused = false;
        self.restarting = false;
    }

    /// Its process exited and the restart policy will start it again: dockerd keeps it
    /// "running" and "restarting" meanwhile (so a plain `rm` is refused).
    pub fn set_restarting(&mut self) {
        self.running = true;
        self.restarting = true;
        self.paused = false;
    }

    /// Frozen.
    pub fn set_paused(&mut self) {
        self.paused = true;
    }

    /// Thawed.
    pub fn set_unpaused(&mut self) {
        self.paused = false;
    }

    /// Removal begins: false when one already runs (the caller must then refuse).
    pub fn set_removal_in_progress(&mut self) -> bool {
        if self.removal_in_progress {
            return false;
        }
        self.removal_in_progress = true;
        true
    }

    /// Removal stopped before the container went (it failed early).
    pub fn reset_removal_in_progress(&mut self) {
        self.removal_in_progress = false;
    }

    /// Removal failed after part of the container was gone.
    pub fn set_dead(&mut self) {
        self.dead = true;
    }
}

/// dockerd's restart back-off: the first restart waits 100 ms, each next one twice as
/// long, up to a minute; a run of 10 s or more starts over.
const DEFAULT_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);

/// The restart policy's decisions for one container (moby's `RestartManager`, without
/// its timer: the engine sleeps the returned delay, and a `stop` or `rm` calls
/// [`RestartManager::cancel`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RestartManager {
    /// The policy.
    pub policy: RestartPolicy,
    /// Restarts so far (inspect's `RestartCount`).
    pub restart_count: i64,
    delay: Duration,
    canceled: bool,
}

impl RestartManager {
    /// A manager for `policy`, with `restart_count` restarts already made.
    pub fn new(policy: RestartPolicy, restart_count: i64) -> Self {
        Self {
            policy,
            restart_count,
            delay: Duration::ZERO,
            canceled: false,
        }
    }

    /// A user stopped or removed the container: no more restarts.
    pub fn cancel(&mut self) {
        self.canceled = true;
    }

    /// A user started it again: restarts are allowed again.
    pub fn reset_cancel(&mut self) {
        self.canceled = false;
    }

    /// After an exit with `exit_code`, once the process ran for `ran_for`: how long to
    /// wait before restarting it, or `None` to leave it stopped. `manually_stopped`
    /// is true when a user stopped it (or the daemon is shutting down).
    pub fn should_restart(
        &mut self,
        exit_code: i64,
        manually_stopped: bool,
        ran_for: Duration,
    ) -> Option<Duration> {
        let kind = self.policy.kind()?;
        if kind == RestartKind::No || self.canceled {
            return None;
        }
        if ran_for >= Duration::from_secs(10) {
            self.delay = Duration::ZERO;
        }
        self.delay = if self.delay.is_zero() {
            DEFAULT_DELAY
        } else if self.delay < MAX_DELAY {
            self.delay * 2
        } else {
            self.delay
        };
        self.delay = self.delay.min(MAX_DELAY);
        let restart = match kind {
            RestartKind::Always => true,
            RestartKind::UnlessStopped => !manually_stopped,
            RestartKind::OnFailure => {
                let max = self.policy.maximum_retry_count;
                (max == 0 || self.restart_count < max) && exit_code != 0
            }
            RestartKind::No => false,
        };
        if !restart {
            return None;
        }
        self.restart_count += 1;
        Some(self.delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_flags_as_in_dockerd() {
        let mut s = State::created();
        assert_eq!(s.status(), Status::Created);
        s.set_running();
        assert_eq!(s.status(), Status::Running);
        s.set_paused();
        assert_eq!(s.status(), Status::Paused);
        s.set_unpaused();
        s.set_restarting();
        assert_eq!(s.status(), Status::Restarting);
        assert!(s.status().is_running());
        s.set_stopped();
        assert_eq!(s.status(), Status::Exited);
        assert!(s.set_removal_in_progress());
        assert!(!s.set_removal_in_progress());
        assert_eq!(s.status(), Status::Removing);
        s.reset_removal_in_progress();
        s.set_dead();
        assert_eq!(s.status(), Status::Dead);
        for st in Status::ALL {
            assert_eq!(Status::parse(st.as_str()), Some(st));
            assert_eq!(serde_json::to_value(st).unwrap(), st.as_str());
        }
        assert_eq!(Status::parse("up"), None);
    }

    #[test]
    fn verbs_are_refused_with_dockerds_words() {
        let id = "abc";
        let created = State::created();
        let mut running = State::created();
        running.set_running();
        let mut paused = running;
        paused.set_paused();
        let mut restarting = running;
        restarting.set_restarting();
        let mut exited = running;
        exited.set_stopped();
        let mut removing = exited;
        removing.set_removal_in_progress();
        let mut dead = exited;
        dead.set_dead();

        let e = |r: Result<(), TransitionError>| r.unwrap_err().to_string();
        assert!(created.check_start().is_ok() && exited.check_start().is_ok());
        assert_eq!(e(running.check_start()), "Container is already started");
        assert_eq!(running.check_start().unwrap_err().http_status(), 304);
        assert_eq!(
            e(paused.check_start()),
            "cannot start a paused container, try unpause instead"
        );
        assert_eq!(
            e(dead.check_start()),
            "container is marked for removal and cannot be started"
        );
        assert_eq!(
            e(removing.check_start()),
            "container is marked for removal and cannot be started"
        );
        assert_eq!(e(exited.check_stop()), "Container is already stopped");
        assert!(paused.check_stop().is_ok() && restarting.check_stop().is_ok());
        assert_eq!(e(exited.check_kill(id)), "Container abc is not running");
        assert_eq!(e(restarting.check_kill(id)), "Container abc is not running");
        assert!(paused.check_kill(id).is_ok());
        assert_eq!(e(created.check_pause(id)), "Container abc is not running");
        assert_eq!(e(paused.check_pause(id)), "Container abc is already paused");
        assert_eq!(
            e(restarting.check_pause(id)),
            "Container abc is restarting, wait until the container is running"
        );
        assert_eq!(e(running.check_unpause(id)), "Container abc is not paused");
        assert_eq!(running.check_unpause(id).unwrap_err().http_status(), 500);
        assert_eq!(
            e(paused.check_exec(id, "web")),
            "Container web is paused, unpause the container before exec"
        );
        assert_eq!(
            e(exited.check_exec(id, "web")),
            "Container abc is not running"
        );
        assert_eq!(
            e(restarting.check_exec(id, "web")),
            "Container abc is restarting, wait until the container is running"
        );
        assert!(running.check_exec(id, "web").is_ok());
        assert_eq!(
            e(running.check_remove(id, "web", false)),
            "You cannot remove a running container abc. Stop the container before attempting removal or force remove"
        );
        assert_eq!(
            e(paused.check_remove(id, "web", false)),
            "You cannot remove a paused container abc. Unpause and then stop the container before attempting removal or force remove"
        );
        assert_eq!(
            e(restarting.check_remove(id, "web", false)),
            "You cannot remove a restarting container abc. Stop the container before attempting removal or force remove"
        );
        assert_eq!(
            restarting
                .check_remove(id, "web", false)
                .unwrap_err()
                .http_status(),
            409
        );
        assert!(running.check_remove(id, "web", true).is_ok());
        assert_eq!(
            e(removing.check_remove(id, "web", true)),
            "removal of container web is already in progress"
        );
        assert!(exited.check_remove(id, "web", false).is_ok());
        assert!(dead.check_remove(id, "web", false).is_ok());
    }

    #[test]
    fn removal_in_progress_is_not_persisted() {
        let mut s = State::created();
        s.set_running();
        s.set_stopped();
        s.set_removal_in_progress();
        let back: State = serde_json::from_value(serde_json::to_value(s).unwrap()).unwrap();
        assert_eq!(back.status(), Status::Exited);
    }

    fn policy(name: &str, max: i64) -> RestartPolicy {
        RestartPolicy {
            name: name.into(),
            maximum_retry_count: max,
        }
    }

    #[test]
    fn restart_policies_decide_as_dockerd() {
        let quick = Duration::from_millis(50);
        let mut no = RestartManager::new(policy("no", 0), 0);
        assert_eq!(no.should_restart(1, false, quick), None);
        let mut always = RestartManager::new(policy("always", 0), 0);
        assert_eq!(
            always.should_restart(0, true, quick),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            always.should_restart(0, false, quick),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            always.should_restart(0, false, quick),
            Some(Duration::from_millis(400))
        );
        // A long run starts the back-off over.
        assert_eq!(
            always.should_restart(0, false, Duration::from_secs(10)),
            Some(Duration::from_millis(100))
        );
        assert_eq!(always.restart_count, 4);
        always.cancel();
        assert_eq!(always.should_restart(1, false, quick), None);
        let mut unless = RestartManager::new(policy("unless-stopped", 0), 0);
        assert_eq!(unless.should_restart(0, true, quick), None);
        assert!(unless.should_restart(0, false, quick).is_some());
        let mut on_failure = RestartManager::new(policy("on-failure", 2), 0);
        assert_eq!(on_failure.should_restart(0, false, quick), None);
        assert!(on_failure.should_restart(3, false, quick).is_some());
        assert!(on_failure.should_restart(3, false, quick).is_some());
        assert_eq!(on_failure.should_restart(3, false, quick), None);
        assert_eq!(on_failure.restart_count, 2);
        let mut unlimited = RestartManager::new(policy("on-failure", 0), 100);
        assert!(unlimited.should_restart(1, false, quick).is_some());
        // The delay never passes a minute.
        let mut m = RestartManager::new(policy("always", 0), 0);
        let mut last = Duration::ZERO;
        for _ in 0..20 {
            last = m.should_restart(1, false, quick).unwrap();
        }
        assert_eq!(last, Duration::from_secs(60));
    }
}
