//! `start`: release the init blocked on the exec FIFO, then run poststart hooks.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use super::{process_start_time, Container, Status};
use crate::error::{Context, Result, RuntimeError};
use crate::hooks::{self, HookKind};

impl Container {
    /// Start a created container.
    pub fn start(&self) -> Result<()> {
        self.require("start", &[Status::Created])?;
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
        let fifo = unsafe { OwnedFd::from_raw_fd(raw) };
        // First the init's byte (it is released), then end of file (its exec closed the
        // write end): only then is the user's program running.
        let mut released = false;
        loop {
            let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
            let ready = poll(&mut fds, PollTimeout::from(100u16)).context("wait on exec fifo")?;
            if ready > 0 {
                let mut byte = [0u8; 1];
                match nix::unistd::read(fifo.as_raw_fd(), &mut byte) {
                    Ok(1) => {
                        if !released {
                            released = true;
                            // From here on the container counts as running.
                            std::fs::remove_file(&fifo_path).context("remove exec fifo")?;
                        }
                        continue;
                    }
                    Ok(_) if released => break,
                    Ok(_) => {
                        return Err(RuntimeError::Init(format!(
                            "container {:?} init exited instead of starting",
                            self.state.id
                        )))
                    }
                    Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => continue,
                    Err(e) => return Err(e).context("read exec fifo"),
                }
            }
            if process_start_time(self.state.pid) != Some(self.state.pid_start_time) {
                if released {
                    break;
                }
                return Err(RuntimeError::Init(format!(
                    "container {:?} init died before start",
                    self.state.id
                )));
            }
        }

        let state = self.state.to_oci(Status::Running);
        // The spec: a failing poststart hook is a warning, the other hooks still run and
        // the container keeps running.
        hooks::run_all_warn(
            HookKind::Poststart,
            &HookKind::Poststart.of(&self.state.spec),
            &state,
        );
        Ok(())
    }
}
