//! What `run` and `exec` do when they stay in the foreground: relay a pty to our stdio
//! when there is no console socket, forward signals, wait, and turn the ending into an
//! exit code.
//!
//! All of it is one poll loop over a signalfd, a pidfd and the pty, with no threads: after
//! joining a container's PID namespace the kernel refuses to create threads (EINVAL).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::container::kill::raw_kill;
use crate::error::{Context, Result, RuntimeError};
use crate::terminal;

/// Where a process's pty master goes.
pub struct Console {
    /// The descriptor the container side sends the master to.
    pub socket: Option<OwnedFd>,
    /// Our end, when we relay the pty ourselves.
    relay: Option<OwnedFd>,
}

impl Console {
    /// Decide from the flags: a console socket if given; otherwise, in the foreground, an
    /// internal socket whose pty we relay; detached without a socket is an error.
    pub fn new(terminal: bool, console_socket: Option<&Path>, detach: bool) -> Result<Self> {
        match (terminal, console_socket) {
            (false, _) => Ok(Self {
                socket: None,
                relay: None,
            }),
            (true, Some(path)) => Ok(Self {
                socket: Some(terminal::connect(path)?),
                relay: None,
            }),
            (true, None) if detach => Err(RuntimeError::InvalidConfig(
                "a terminal was asked for with --detach: pass --console-socket to receive the pty"
                    .into(),
            )),
            (true, None) => {
                let (ours, theirs) = socketpair(
                    AddressFamily::Unix,
                    SockType::Stream,
                    None,
                    SockFlag::SOCK_CLOEXEC,
                )
                .context("create console socketpair")?;
                Ok(Self {
                    socket: Some(theirs),
                    relay: Some(ours),
                })
            }
        }
    }

    /// The pty master to relay, once the container side has sent it.
    pub fn take_master(&mut self) -> Result<Option<OwnedFd>> {
        match self.relay.take() {
            Some(socket) => Ok(Some(terminal::recv_fd(&socket)?)),
            None => Ok(None),
        }
    }
}

/// The signals passed on to the container (everything a user or engine may send).
pub fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in Signal::iterator() {
        if !matches!(
            signal,
            Signal::SIGCHLD
                | Signal::SIGKILL
                | Signal::SIGSTOP
                | Signal::SIGSEGV
                | Signal::SIGBUS
                | Signal::SIGILL
                | Signal::SIGFPE
                | Signal::SIGPIPE
        ) {
            set.add(signal);
        }
    }
    set
}

/// Block the forwarded signals now, so none is lost before `wait` forwards them. The
/// container's process resets its mask before exec.
pub fn hold_signals() -> Result<SigSet> {
    let set = forwarded_signals();
    set.thread_block().context("block signals")?;
    Ok(set)
}

fn pidfd_open(pid: i32) -> Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("pidfd_open");
    }
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Copy what is readable from `from` to `to`; false at end of file or error.
fn pump(from: BorrowedFd, to: BorrowedFd) -> bool {
    let mut buf = [0u8; 16 * 1024];
    match nix::unistd::read(from.as_raw_fd(), &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                match nix::unistd::write(to, rest) {
                    Ok(written) => rest = &rest[written..],
                    Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => continue,
                    Err(_) => return false,
                }
            }
            true
        }
    }
}

nix::ioctl_read_bad!(get_winsize, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);

/// Give the pty the size of our own terminal.
fn copy_window_size(master: &OwnedFd) {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: both ioctls read or write a winsize struct that lives across the calls.
    unsafe {
        if get_winsize(libc::STDIN_FILENO, &mut size).is_ok() {
            let _ = set_winsize(master.as_raw_fd(), &size);
        }
    }
}

/// Forward held signals to `pid`, relay the pty if any, and wait for the process; returns
/// its exit code (128+N for a signal, as shells do).
pub fn wait(pid: i32, held: SigSet, master: Option<OwnedFd>) -> Result<i32> {
    let _raw_mode = master.as_ref().map(|_| terminal::RawModeGuard::enter());
    if let Some(master) = &master {
        copy_window_size(master);
    }
    let signals = SignalFd::with_flags(&held, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("signalfd")?;
    let pidfd = pidfd_open(pid)?;
    // SAFETY: stdin and stdout stay open for the whole process.
    let (stdin, stdout) = unsafe { (BorrowedFd::borrow_raw(0), BorrowedFd::borrow_raw(1)) };
    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    loop {
        let mut fds = vec![
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        if let (true, Some(m)) = (master_open, &master) {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).context("poll"),
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
        drop(fds);
        if ready[0] {
            while let Ok(Some(info)) = signals.read_signal() {
                let signo = info.ssi_signo as i32;
                match (&master, signo) {
                    (Some(m), libc::SIGWINCH) => copy_window_size(m),
                    _ => {
                        let _ = raw_kill(pid, signo);
                    }
                }
            }
        }
        let mut index = 2;
        if let (true, Some(m)) = (master_open, &master) {
            if ready[index] && !pump(m.as_fd(), stdout) {
                master_open = false;
            }
            index += 1;
        }
        if stdin_open {
            if let (true, Some(m)) = (ready[index], &master) {
                if !pump(stdin, m.as_fd()) {
                    stdin_open = false;
                }
            }
        }
        if ready[1] {
            break;
        }
    }
    if let Some(m) = &master {
        // Output the process wrote just before exiting.
        let _ = nix::fcntl::fcntl(
            m.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        while pump(m.as_fd(), stdout) {}
    }
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(128 + signal as i32),
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).context("wait for the container's process"),
        }
    }
}
