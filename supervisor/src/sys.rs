//! The few system calls the supervisor makes that neither std nor nix wrap: pidfds, to
//! learn when a shim (which is not our child) dies and to signal exactly that process.
//! Every `unsafe` block of the crate lives here.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd;

/// A pidfd: refers to one process for as long as it is held, whatever happens to its
/// PID. Readable once the process has exited.
pub struct PidFd {
    fd: AsyncFd<OwnedFd>,
    pid: u32,
}

impl PidFd {
    /// Open a pidfd for `pid`. ESRCH when there is no such process (it has exited and
    /// been reaped).
    pub fn open(pid: u32) -> io::Result<Self> {
        if pid == 0 || pid > i32::MAX as u32 {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor, which we
        // own from here on; no memory is passed.
        let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0u32) };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this fd to us and nobody else holds it.
        let fd = unsafe { OwnedFd::from_raw_fd(ret as i32) };
        // SAFETY: the AsyncFd owns the OwnedFd, which stays open and is the same
        // descriptor for as long as the AsyncFd lives (OwnedFd::as_raw_fd never changes).
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(Self { fd, pid })
    }

    /// The PID it was opened for.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Wait until the process has exited.
    pub async fn exited(&self) {
        // Readiness never clears: the process stays exited.
        let _ = self.fd.readable().await;
    }

    /// Whether the process exits within `within` (false at once for zero if it runs).
    pub async fn exits_within(&self, within: Duration) -> bool {
        if self.has_exited() {
            return true;
        }
        tokio::time::timeout(within, self.exited()).await.is_ok()
    }

    /// Whether the process has exited, without waiting.
    pub fn has_exited(&self) -> bool {
        let mut p = libc::pollfd {
            fd: self.fd.get_ref().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout; poll only writes revents.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n > 0 && p.revents & libc::POLLIN != 0
    }

    /// Send `signal` to exactly this process (never to another one that reused its PID).
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        // SAFETY: pidfd_send_signal takes our valid pidfd, a signal number, a null
        // siginfo (the kernel fills in a kill(2)-like one) and no flags.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.get_ref().as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0u32,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pidfd_sees_a_child_exit_and_signals_it() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let fd = PidFd::open(child.id()).unwrap();
        assert!(!fd.exits_within(Duration::from_millis(50)).await);
        fd.signal(libc::SIGKILL).unwrap();
        // Not reaped yet: a zombie counts as exited for a pidfd.
        assert!(fd.exits_within(Duration::from_secs(10)).await);
        assert!(fd.has_exited());
        let _ = child.wait();
        assert_eq!(
            PidFd::open(0).err().and_then(|e| e.raw_os_error()),
            Some(libc::ESRCH)
        );
    }
}
