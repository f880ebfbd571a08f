//! A container's state and the transitions dockerd allows between its states (moby's
//! `container/state.go`): every change of status goes through one of these methods, and
//! one that the current status does not allow is an error naming both.

use serde::{Deserialize, Serialize};

/// A container's status, as `State.Status` names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, never started (or its start failed).
    #[default]
    Created,
    /// Its init process runs.
    Running,
    /// Frozen.
    Paused,
    /// Exited, and its restart policy will start it again after a delay.
    Restarting,
    /// Being removed.
    Removing,
    /// Exited (or stopped).
    Exited,
    /// Its removal failed half-way.
    Dead,
}

impl Status {
    /// The name inspect and list show.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// dockerd's `Running`: true while its process runs, paused or not, and while a
    /// restart is pending.
    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }

    /// Whether a task exists for it (a process to signal, exec into, pause).
    pub fn has_task(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change the current status does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {to} a container that is {from}")]
pub struct Transition {
    /// The status it was in.
    pub from: Status,
    /// What was asked.
    pub to: &'static str,
}

/// How a run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitStatus {
    /// The exit code (128+signal when killed by one).
    pub code: i64,
    /// Killed by the kernel for memory.
    pub oom_killed: bool,
    /// When, RFC 3339.
    pub at: String,
}

/// A container's state, as stored and as inspect shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// The status.
    pub status: Status,
    /// Host PID of the init process while it runs, else 0.
    pub pid: u32,
    /// Last exit code (0 while it runs).
    pub exit_code: i64,
    /// RFC 3339; empty if it never started.
    pub started_at: String,
    /// RFC 3339; empty if it never finished.
    pub finished_at: String,
    /// Why the last start failed.
    pub error: String,
    /// The last run was killed by the kernel for memory.
    #[serde(default)]
    pub oom_killed: bool,
    /// Health checks' status and last results, when the container has a check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::health::Health>,
}

impl State {
    fn refuse(&self, to: &'static str) -> Transition {
        Transition {
            from: self.status,
            to,
        }
    }

    /// Its init process started (`pid`): from created, exited or restarting.
    pub fn set_running(&mut self, pid: u32, now: &str) -> Result<(), Transition> {
        if !matches!(
            self.status,
            Status::Created | Status::Exited | Status::Restarting
        ) {
            return Err(self.refuse("start"));
        }
        self.status = Status::Running;
        self.pid = pid;
        self.exit_code = 0;
        self.error.clear();
        self.started_at = now.to_string();
        Ok(())
    }

    /// Its init process exited for good: from running, paused or restarting (a pending
    /// restart cancelled, which keeps the exit it had).
    pub fn set_stopped(&mut self, exit: &ExitStatus) -> Result<(), Transition> {
        if !self.status.is_running() {
            return Err(self.refuse("stop"));
        }
        if self.status != Status::Restarting {
            self.exit_code = exit.code;
            self.oom_killed = exit.oom_killed;
            self.finished_at = exit.at.clone();
        }
        self.status = Status::Exited;
        self.pid = 0;
        Ok(())
    }

    /// Its init process exited and its restart policy will start it again.
    pub fn set_restarting(&mut self, exit: &ExitStatus) -> Result<(), Transition> {
        if !self.status.has_task() {
            return Err(self.refuse("restart"));
        }
        self.status = Status::Restarting;
        self.pid = 0;
        self.exit_code = exit.code;
        self.oom_killed = exit.oom_killed;
        self.finished_at = exit.at.clone();
        Ok(())
    }

    /// Its start failed: the container stays as it was (created or exited), with the
    /// reason and dockerd's exit code for a start that never ran (128).
    pub fn set_start_failed(&mut self, error: String) {
        if self.status == Status::Restarting {
            self.status = Status::Exited;
        }
        self.error = error;
        self.exit_code = 128;
    }

    /// Frozen: from running.
    pub fn set_paused(&mut self) -> Result<(), Transition> {
        if self.status != Status::Running {
            return Err(self.refuse("pause"));
        }
        self.status = Status::Paused;
        Ok(())
    }

    /// Thawed: from paused.
    pub fn set_unpaused(&mut self) -> Result<(), Transition> {
        if self.status != Status::Paused {
            return Err(self.refuse("unpause"));
        }
        self.status = Status::Running;
        Ok(())
    }

    /// Its removal begins: from any state without a process (a second removal, or one
    /// of a running container, is refused).
    pub fn set_removing(&mut self) -> Result<(), Transition> {
        if self.status.is_running() || self.status == Status::Removing {
            return Err(self.refuse("remove"));
        }
        self.status = Status::Removing;
        Ok(())
    }

    /// Its removal failed half-way.
    pub fn set_dead(&mut self) {
        self.status = Status::Dead;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: i64) -> ExitStatus {
        ExitStatus {
            code,
            oom_killed: code == 137,
            at: "t1".into(),
        }
    }

    #[test]
    fn a_run_and_its_exit() {
        let mut s = State::default();
        assert_eq!(s.status, Status::Created);
        s.set_running(42, "t0").unwrap();
        assert_eq!(
            (s.status, s.pid, s.started_at.as_str()),
            (Status::Running, 42, "t0")
        );
        assert!(s.status.is_running());
        s.set_stopped(&exit(137)).unwrap();
        assert_eq!(s.status, Status::Exited);
        assert_eq!((s.pid, s.exit_code, s.oom_killed), (0, 137, true));
        // A new run clears the exit code, keeps the OOM flag of the last exit (dockerd).
        s.set_running(43, "t2").unwrap();
        assert_eq!((s.exit_code, s.oom_killed), (0, true));
        s.set_stopped(&exit(0)).unwrap();
        assert!(!s.oom_killed);
    }

    #[test]
    fn restarting_is_running_without_a_task() {
        let mut s = State::default();
        assert!(s.set_restarting(&exit(3)).is_err());
        s.set_running(1, "t0").unwrap();
        s.set_restarting(&exit(3)).unwrap();
        assert_eq!(s.status.as_str(), "restarting");
        assert!(s.status.is_running() && !s.status.has_task());
        assert_eq!((s.pid, s.exit_code), (0, 3));
        // A removal waits for a stop; a stop keeps the exit it had.
        assert_eq!(
            s.set_removing().unwrap_err().to_string(),
            "cannot remove a container that is restarting"
        );
        s.set_stopped(&exit(9)).unwrap();
        assert_eq!((s.status, s.exit_code), (Status::Exited, 3));
        s.set_removing().unwrap();
        assert!(s.set_removing().is_err());
    }

    #[test]
    fn pause_only_what_runs() {
        let mut s = State::default();
        assert_eq!(
            s.set_paused().unwrap_err(),
            Transition {
                from: Status::Created,
                to: "pause"
            }
        );
        s.set_running(1, "t").unwrap();
        s.set_paused().unwrap();
        assert!(s.set_paused().is_err());
        assert!(s.set_running(2, "t").is_err());
        s.set_unpaused().unwrap();
        assert!(s.set_unpaused().is_err());
        // A paused container that exits (killed) stops.
        s.set_paused().unwrap();
        s.set_stopped(&exit(137)).unwrap();
        assert_eq!(s.status, Status::Exited);
    }

    #[test]
    fn failed_start() {
        let mut s = State::default();
        s.set_start_failed("no such file".into());
        assert_eq!((s.status, s.exit_code), (Status::Created, 128));
        assert_eq!(s.error, "no such file");
        s.set_running(5, "t").unwrap();
        assert!(s.error.is_empty());
    }

    #[test]
    fn stored_names_read_back() {
        let s: State = serde_json::from_str(
            r#"{"status":"running","pid":1,"exit_code":0,"started_at":"","finished_at":"","error":""}"#,
        )
        .unwrap();
        assert_eq!(s.status, Status::Running);
        assert!(!s.oom_killed);
    }
}
