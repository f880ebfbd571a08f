//! `start`: release the init blocked on the exec FIFO, then run poststart hooks.

use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use super::{Container, Status};
use crate::error::{Context, Result, RuntimeError};
use crate::hooks::{self, HookKind};

impl Container {
    /// Start a created container.
    pub fn start(&self) -> Result<()> {
        let status = self.status();
        if status != Status::Created {
            return Err(RuntimeError::WrongStatus {
                id: self.state.id.clone(),
                status: status.to_string(),
                action: "start",
                wanted: "created",
            });
        }
        let fifo_path = self.exec_fifo();
        // Non-blocking open, then poll: a plain blocking open would hang forever if the
        // init died after `create`.
        let raw = open(
            &fifo_path,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .context("open exec fifo")?;
        // SAFETY: open just returned this descriptor and nothing else owns it.
        let fifo = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        loop {
            let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
            let ready = poll(&mut fds, PollTimeout::from(100u16)).context("wait on exec fifo")?;
            if ready > 0 {
                break;
            }
            if super::process_start_time(self.state.pid) != Some(self.state.pid_start_time) {
                return Err(RuntimeError::Init(format!(
                    "container {:?} init died before start",
                    self.state.id
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut byte = [0u8; 1];
        let n = nix::unistd::read(fifo.as_raw_fd(), &mut byte).context("read exec fifo")?;
        if n != 1 {
            return Err(RuntimeError::Init(format!(
                "container {:?} init exited instead of starting",
                self.state.id
            )));
        }
        std::fs::remove_file(&fifo_path).context("remove exec fifo")?;

        let state = self.state.to_oci(Status::Running);
        if let Err(error) = hooks::run_all(
            HookKind::Poststart,
            &HookKind::Poststart.of(&self.state.spec),
            &state,
        ) {
            // The spec: a failing poststart hook is a warning; the container keeps running.
            tracing::warn!("{error}");
        }
        Ok(())
    }
}

use std::os::fd::FromRawFd;
