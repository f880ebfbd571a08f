//! `kill`: send a signal to the init, or with `--all` to every process of the container.

use super::{Container, Status};
use crate::error::{Context, Result, RuntimeError};

impl Container {
    /// Signal the container. The init of a stopped container cannot be signalled (its PID
    /// may belong to another process by now); `--all` still reaches whatever is left in
    /// its cgroup, as with runc.
    pub fn kill(&self, signal: i32, all: bool) -> Result<()> {
        let status = self.status();
        if status == Status::Stopped {
            if all {
                return self.kill_leftovers(signal);
            }
            // runc's words, which containerd's runc shim and other wrappers match to
            // treat the kill as already done.
            return Err(RuntimeError::NotRunning);
        }
        let thaw_after = status == Status::Paused && signal == libc::SIGKILL;
        let result = self.send(signal, all);
        if thaw_after {
            // On cgroup v1 a frozen task acts on SIGKILL only once thawed (as runc does).
            self.state.cgroup()?.set_frozen(false)?;
        }
        result
    }

    /// Processes that outlived the init (a container without its own PID namespace);
    /// none, or no cgroup any more, is not an error.
    fn kill_leftovers(&self, signal: i32) -> Result<()> {
        let pids = self
            .state
            .cgroup()
            .and_then(|cgroup| cgroup.pids())
            .unwrap_or_default();
        for pid in pids {
            let _ = raw_kill(pid, signal);
        }
        Ok(())
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
