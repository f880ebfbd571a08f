//! `delete`: remove a stopped (or, with force, any) container: its processes, cgroup and
//! state, then run poststop hooks.

use std::time::{Duration, Instant};

use super::kill::raw_kill;
use super::{process_start_time, Container, Status};
use crate::error::{Context, Result, RuntimeError};
use crate::hooks::{self, HookKind};

impl Container {
    /// Delete the container. `created` containers are deleted like runc does (their init
    /// never ran user code); running or paused ones need `force`.
    pub fn delete(&self, force: bool) -> Result<()> {
        let status = self.status();
        match status {
            Status::Stopped => {}
            Status::Created => self.kill_all_and_wait()?,
            Status::Running | Status::Paused | Status::Creating if force => {
                self.kill_all_and_wait()?
            }
            _ => {
                return Err(RuntimeError::WrongStatus {
                    id: self.state.id.clone(),
                    status: status.to_string(),
                    action: "delete",
                    wanted: "stopped (use --force to kill it first)".into(),
                })
            }
        }
        let state = self.state.to_oci(Status::Stopped);
        match self.state.cgroup().and_then(|cgroup| cgroup.remove()) {
            Ok(()) => {}
            Err(error) => tracing::warn!("{error}"),
        }
        std::fs::remove_dir_all(self.dir())
            .with_context(|| format!("remove {}", self.dir().display()))?;
        // The spec: a failing poststop hook is a warning, the other hooks still run and
        // deletion goes on.
        hooks::run_all_warn(
            HookKind::Poststop,
            &HookKind::Poststop.of(&self.state.spec),
            &state,
        );
        Ok(())
    }

    fn kill_all_and_wait(&self) -> Result<()> {
        let cgroup = self.state.cgroup()?;
        if self.status() == Status::Paused {
            // Frozen tasks cannot act on SIGKILL until thawed.
            let _ = cgroup.set_frozen(false);
        }
        let _ = raw_kill(self.state.pid, libc::SIGKILL);
        for pid in cgroup.pids().unwrap_or_default() {
            let _ = raw_kill(pid, libc::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while process_start_time(self.state.pid) == Some(self.state.pid_start_time) {
            if Instant::now() > deadline {
                return Err(RuntimeError::Other(format!(
                    "container {:?}: init did not die after SIGKILL",
                    self.state.id
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }
}
