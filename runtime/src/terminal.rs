//! `process.terminal`: a pty made inside the container, whose master is handed to whoever
//! listens on `--console-socket` (SCM_RIGHTS, as runc and the runtime-tools docs describe).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags, UnixAddr};
use nix::sys::stat::Mode;
use oci_spec::runtime::Box as ConsoleSize;

use crate::error::{Context, Result, RuntimeError};

/// Connect to the console socket given on the command line.
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let stream = UnixStream::connect(path)
        .with_context(|| format!("connect to console socket {}", path.display()))?;
    Ok(OwnedFd::from(stream))
}

nix::ioctl_write_int_bad!(tiocsctty, libc::TIOCSCTTY);
nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, libc::winsize);
nix::ioctl_write_int_bad!(tiocgptpeer, libc::TIOCGPTPEER);

/// Make a pty inside the container (its /dev/ptmx), send the master to `console`, and
/// make the slave the calling process's controlling terminal and stdio.
pub fn setup(console: &impl AsFd, size: Option<&ConsoleSize>) -> Result<()> {
    let master_raw = open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("open /dev/ptmx in the container")?;
    // SAFETY: open just returned this descriptor and nothing else owns it.
    let master = unsafe { OwnedFd::from_raw_fd(master_raw) };
    // SAFETY: unlockpt only reads the descriptor number.
    if unsafe { libc::unlockpt(master.as_raw_fd()) } != 0 {
        return Err(std::io::Error::last_os_error()).context("unlockpt");
    }
    // TIOCGPTPEER opens the slave through the master, so no path lookup can be raced.
    // SAFETY: the ioctl takes open flags by value and returns a new descriptor.
    let slave_raw = unsafe { tiocgptpeer(master.as_raw_fd(), libc::O_RDWR | libc::O_NOCTTY) }
        .context("open pty slave")?;
    // SAFETY: the ioctl just returned this descriptor and nothing else owns it.
    let slave = unsafe { OwnedFd::from_raw_fd(slave_raw) };
    if let Some(size) = size {
        let winsize = libc::winsize {
            ws_row: size.height() as u16,
            ws_col: size.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize struct that lives across the call.
        unsafe { tiocswinsz(slave.as_raw_fd(), &winsize) }.context("set console size")?;
    }
    let name = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd()))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "/dev/pts/0".to_string());
    send_fd(console, &master, name.as_bytes())?;
    drop(master);
    // SAFETY: TIOCSCTTY takes an integer argument; the caller has just called setsid.
    unsafe { tiocsctty(slave.as_raw_fd(), 0) }.context("make pty the controlling terminal")?;
    for target in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), target).context("attach pty to stdio")?;
    }
    Ok(())
}

/// Send a descriptor with a payload over a unix socket.
pub fn send_fd(socket: &impl AsFd, fd: &impl AsFd, payload: &[u8]) -> Result<()> {
    let fds = [fd.as_fd().as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(payload)];
    sendmsg::<UnixAddr>(
        socket.as_fd().as_raw_fd(),
        &iov,
        &cmsg,
        MsgFlags::empty(),
        None,
    )
    .context("send pty master to console socket")?;
    Ok(())
}

/// Receive a descriptor sent with `send_fd`.
pub fn recv_fd(socket: &impl AsFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<UnixAddr>(
        socket.as_fd().as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("receive pty master")?;
    for cmsg in msg.cmsgs().context("read control message")? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(RuntimeError::Other(
        "console socket message carried no descriptor".into(),
    ))
}

/// Restores the terminal mode of stdin when dropped.
pub struct RawModeGuard {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawModeGuard {
    /// Put stdin (if a terminal) in raw mode.
    pub fn enter() -> Self {
        let stdin = std::io::stdin();
        let Ok(saved) = nix::sys::termios::tcgetattr(&stdin) else {
            return Self { saved: None };
        };
        let mut raw = saved.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &raw);
        Self { saved: Some(saved) }
    }
}

impl Drop for RawModeGuard {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
    }
}
