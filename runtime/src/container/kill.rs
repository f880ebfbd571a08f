//! `kill`: send a signal to the init, or with `--all` to every process of the container.

use super::{Container, Status};
use crate::error::{Context, Result};

impl Container {
    /// Signal the container. A stopped container cannot be signalled.
    pub fn kill(&self, signal: i32, all: bool) -> Result<()> {
        let status = self.require("kill", &[Status::Created, Status::Running, Status::Paused])?;
        let thaw_after = status == Status::Paused && signal == libc::SIGKILL;
        let result = self.send(signal, all);
        if thaw_after {
            // On cgroup v1 a frozen task acts on SIGKILL only once thawed (as runc does).
            self.state.cgroup()?.set_frozen(false)?;
        }
        result
    }

    fn send(&self, signal: i32, all: bool) -> Result<()> {
        if all {
            for pid in self.state.cgroup()?.pids()? {
                // A process may exit between listing and signalling: not an error.
                let _ = raw_kill(pid, signal);
            }
            return Ok(());
        }
        raw_kill(self.state.pid, signal)
            .with_context(|| format!("send signal {signal} to pid {}", self.state.pid))
    }
}

/// kill(2) with a raw signal number, real-time signals included (nix's enum lacks them).
pub fn raw_kill(pid: i32, signal: i32) -> nix::Result<()> {
    // SAFETY: kill(2) takes no pointers.
    nix::errno::Errno::result(unsafe { libc::kill(pid, signal) }).map(drop)
}
