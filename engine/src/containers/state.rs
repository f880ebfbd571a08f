//! A container's stored state: berth-api's state machine (dockerd's flags, from which
//! the status follows, and the checks each verb makes, in dockerd's words) with what a
//! run leaves behind (PID, exit code, times, the OOM kill, health). Every change of
//! status goes through these methods, called from `Container::transition`.

use berth_api::container::Health;
pub use berth_api::state::{Status, TransitionError};
use serde::{Deserialize, Serialize};

/// Whether a task exists for a container in this status (a process to signal, exec
/// into, pause).
pub fn has_task(s: Status) -> bool {
    matches!(s, Status::Running | Status::Paused)
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
    /// Why it ended when not by itself (its shim died): shown as State.Error; empty
    /// leaves the state's error as it was (dockerd's SetStopped keeps it).
    pub reason: String,
}

/// A container's state, as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// dockerd's flags (running, paused, restarting, dead, started).
    #[serde(flatten)]
    pub flags: berth_api::state::State,
    /// Host PID of the init process while it runs, else 0.
    #[serde(default)]
    pub pid: u32,
    /// Last exit code (0 while it runs).
    #[serde(default)]
    pub exit_code: i64,
    /// RFC 3339; empty if it never started.
    #[serde(default)]
    pub started_at: String,
    /// RFC 3339; empty if it never finished.
    #[serde(default)]
    pub finished_at: String,
    /// Why the last start failed.
    #[serde(default)]
    pub error: String,
    /// The last run was killed by the kernel for memory.
    #[serde(default)]
    pub oom_killed: bool,
    /// Health checks' status and last results, when the container has a check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// The status as records of an older berthd named it (read, never written).
    #[serde(default, rename = "status", skip_serializing)]
    legacy_status: Option<String>,
}

impl State {
    /// The status.
    pub fn status(&self) -> Status {
        self.flags.status()
    }

    /// Sets the flags from the status an older berthd stored.
    pub fn upgrade(&mut self) {
        let Some(s) = self.legacy_status.take() else {
            return;
        };
        let f = &mut self.flags;
        match Status::parse(&s) {
            Some(Status::Running) => f.set_running(),
            Some(Status::Paused) => {
                f.set_running();
                f.set_paused();
            }
            Some(Status::Restarting) => {
                f.set_running();
                f.set_restarting();
            }
            Some(Status::Exited) => {
                f.set_running();
                f.set_stopped();
            }
            Some(Status::Dead) => {
                f.started = true;
                f.set_dead();
            }
            // A removal cut short by a crash leaves an exited container.
            Some(Status::Removing) => {
                f.started = true;
            }
            Some(Status::Created) | None => {}
        }
    }

    /// Its init process started (`pid`).
    pub fn set_running(&mut self, pid: u32, now: &str) {
        self.flags.set_running();
        self.pid = pid;
        self.exit_code = 0;
        self.error.clear();
        self.started_at = now.to_string();
    }

    /// Its init process exited for good, or a pending restart was called off (which
    /// keeps the exit it had).
    pub fn set_stopped(&mut self, exit: &ExitStatus) {
        if !self.flags.restarting {
            self.record_exit(exit);
        }
        self.flags.set_stopped();
        self.pid = 0;
    }

    /// Its init process exited and its restart policy will start it again.
    pub fn set_restarting(&mut self, exit: &ExitStatus) {
        self.flags.set_restarting();
        self.pid = 0;
        self.record_exit(exit);
    }

    /// What an exit leaves in the state: its code, OOM kill, time, and a reason if it
    /// has one (none keeps the error as it was, as dockerd's SetStopped does).
    fn record_exit(&mut self, exit: &ExitStatus) {
        self.exit_code = exit.code;
        self.oom_killed = exit.oom_killed;
        self.finished_at = exit.at.clone();
        if !exit.reason.is_empty() {
            self.error = exit.reason.clone();
        }
    }

    /// Its start failed: it stays as it was (a pending restart ends), with the reason
    /// and dockerd's exit code for a start that never ran (128).
    pub fn set_start_failed(&mut self, error: String) {
        if self.flags.restarting {
            self.flags.set_stopped();
        }
        self.error = error;
        self.exit_code = 128;
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
            reason: String::new(),
        }
    }

    #[test]
    fn a_run_and_its_exit() {
        let mut s = State::default();
        assert_eq!(s.status(), Status::Created);
        s.set_running(42, "t0");
        assert_eq!(
            (s.status(), s.pid, s.started_at.as_str()),
            (Status::Running, 42, "t0")
        );
        s.set_stopped(&exit(137));
        assert_eq!(s.status(), Status::Exited);
        assert_eq!((s.pid, s.exit_code, s.oom_killed), (0, 137, true));
        // A new run clears the exit code and keeps the OOM flag of the last exit
        // (dockerd's SetRunning leaves it).
        s.set_running(43, "t2");
        assert_eq!((s.exit_code, s.oom_killed), (0, true));
        s.set_stopped(&exit(0));
        assert!(!s.oom_killed);
    }

    #[test]
    fn restarting_is_running_without_a_task() {
        let mut s = State::default();
        s.set_running(1, "t0");
        s.set_restarting(&exit(3));
        assert_eq!(s.status(), Status::Restarting);
        assert!(s.status().is_running() && !has_task(s.status()));
        assert_eq!((s.pid, s.exit_code), (0, 3));
        // A stop calls the restart off and keeps the exit it had.
        s.set_stopped(&exit(9));
        assert_eq!((s.status(), s.exit_code), (Status::Exited, 3));
    }

    #[test]
    fn failed_start() {
        let mut s = State::default();
        s.set_start_failed("no such file".into());
        assert_eq!((s.status(), s.exit_code), (Status::Created, 128));
        s.set_running(5, "t");
        assert!(s.error.is_empty());
    }

    #[test]
    fn records_of_an_older_berthd_read_back() {
        for (old, want) in [
            ("running", Status::Running),
            ("paused", Status::Paused),
            ("exited", Status::Exited),
            ("created", Status::Created),
            ("removing", Status::Exited),
        ] {
            let mut s: State = serde_json::from_str(&format!(
                r#"{{"status":"{old}","pid":1,"exit_code":0,"started_at":"","finished_at":"","error":""}}"#
            ))
            .unwrap();
            s.upgrade();
            assert_eq!(s.status(), want, "{old}");
        }
        let s = State::default();
        let v = serde_json::to_value(&s).unwrap();
        assert!(v.get("status").is_none(), "{v}");
        assert_eq!(v["running"], false);
    }
}
