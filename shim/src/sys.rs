//! The shim's few system calls that std does not offer, each a small safe wrapper.
//! Every `unsafe` block of the crate lives here.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Become the child subreaper: orphaned descendants (the container's init once the
/// runtime exits) are re-parented to us, so we can reap them and learn their status.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes one integer argument and touches no
    // memory of ours.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(drop)
}

/// Keep malloc to one arena: the shim is mostly single-threaded and tiny.
pub fn limit_malloc_arenas() {
    // SAFETY: mallopt only changes allocator tuning; M_ARENA_MAX=1 is always valid.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Reap one exited child without blocking: `Some((pid, wait status))`, or None.
pub fn reap_one() -> Option<(i32, i32)> {
    let mut status = 0;
    // SAFETY: waitpid writes one int through the valid pointer we pass.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    (pid > 0).then_some((pid, status))
}

/// The exit status as a shell reports it: the code, or 128+signal.
pub fn exit_status(status: i32) -> u32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status) as u32
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status) as u32
    } else {
        255
    }
}

/// Send a signal to a process.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill takes plain integers.
    check(unsafe { libc::kill(pid, sig) }).map(drop)
}

static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(_: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is one valid byte. A full
        // pipe (EAGAIN) is fine: a wake-up is already pending.
        unsafe {
            libc::write(fd, (&b as *const u8).cast(), 1);
        }
    }
}

/// A self-pipe that becomes readable whenever SIGCHLD arrives. Returns the read end.
pub fn sigchld_pipe() -> io::Result<OwnedFd> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
    // SAFETY: both fds were just created and are owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    SIGNAL_PIPE.store(w.as_raw_fd(), Ordering::Relaxed);
    std::mem::forget(w); // the handler writes to it for the life of the process
                         // SAFETY: a zeroed sigaction is a valid starting value; we set a handler of the
                         // right signature and SA_RESTART|SA_NOCLDSTOP flags.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        sa.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
        libc::sigemptyset(&mut sa.sa_mask);
        check(libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut()))?;
        // A client that goes away must not kill us on write.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    Ok(r)
}

/// poll(2) over `fds` (events already set); returns the count ready. EINTR is 0.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: the slice is valid for its length; poll writes only revents.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(0)
        } else {
            Err(e)
        };
    }
    Ok(n as usize)
}

/// mount(2).
pub fn mount(source: &str, target: &Path, fstype: &str, flags: u64, data: &str) -> io::Result<()> {
    let src = CString::new(source).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let fst = CString::new(fstype).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let dat = CString::new(data).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let tgt = cstr(target)?;
    let data_ptr = if data.is_empty() {
        std::ptr::null()
    } else {
        dat.as_ptr().cast()
    };
    // SAFETY: every pointer is a NUL-terminated string alive for the call (or null data).
    check(unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fst.as_ptr(),
            flags as libc::c_ulong,
            data_ptr,
        )
    })
    .map(drop)
}

/// Detach-unmount `target` once; Err(EINVAL) when nothing is mounted there.
pub fn umount_detach(target: &Path) -> io::Result<()> {
    let tgt = cstr(target)?;
    // SAFETY: tgt is a valid NUL-terminated path.
    check(unsafe { libc::umount2(tgt.as_ptr(), libc::MNT_DETACH) }).map(drop)
}

/// A new eventfd.
pub fn eventfd() -> io::Result<File> {
    // SAFETY: eventfd takes plain integers and returns a new fd we then own.
    let fd = check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
    // SAFETY: fd is fresh and owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// An inotify descriptor (non-blocking) watching `path` for modifications.
pub fn inotify_modify(path: &Path) -> io::Result<File> {
    let p = cstr(path)?;
    // SAFETY: inotify_init1 takes flags and returns a new fd we then own.
    let fd = check(unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) })?;
    // SAFETY: fd is fresh and owned by nobody else.
    let f = unsafe { File::from_raw_fd(fd) };
    // SAFETY: a valid inotify fd and a NUL-terminated path; returns a watch descriptor.
    check(unsafe { libc::inotify_add_watch(f.as_raw_fd(), p.as_ptr(), libc::IN_MODIFY) })?;
    Ok(f)
}

/// Receive one file descriptor passed with SCM_RIGHTS (the runtime's console socket).
pub fn recv_fd(sock: RawFd) -> io::Result<File> {
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for one control message carrying one int, generously aligned.
    let mut cbuf = [0u64; 16];
    // SAFETY: a zeroed msghdr is valid; we point it at buffers we own for the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    // SAFETY: msg points at valid buffers for the duration of the call.
    check(unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) } as libc::c_int)?;
    // SAFETY: CMSG_FIRSTHDR/CMSG_DATA walk the control buffer the kernel just filled,
    // bounded by msg_controllen; we read one int only if the header says SCM_RIGHTS.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if !cmsg.is_null()
            && (*cmsg).cmsg_level == libc::SOL_SOCKET
            && (*cmsg).cmsg_type == libc::SCM_RIGHTS
        {
            let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
            return Ok(File::from_raw_fd(fd));
        }
    }
    Err(io::Error::other(
        "console socket: no file descriptor received",
    ))
}

/// Set a terminal's window size.
pub fn set_winsize(fd: RawFd, width: u32, height: u32) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: height as u16,
        ws_col: width as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the valid pointer.
    check(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) }).map(drop)
}

/// A pipe: (read end, write end), both close-on-exec.
pub fn pipe() -> io::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both fds are fresh and owned by nobody else.
    Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

/// For the daemon child of `start`: new session, and the listening socket moved to fd 3.
/// Called between fork and exec, so it only makes async-signal-safe calls.
pub fn daemon_pre_exec(listener: RawFd) -> io::Result<()> {
    // SAFETY: setsid and dup2 are async-signal-safe and take plain integers; dup2 also
    // clears FD_CLOEXEC on the new fd 3, which the exec'd daemon inherits.
    unsafe {
        check(libc::setsid())?;
        if listener == 3 {
            let flags = check(libc::fcntl(3, libc::F_GETFD))?;
            check(libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC))?;
        } else {
            check(libc::dup2(listener, 3))?;
        }
    }
    Ok(())
}

/// Adopt fd 3 (passed by `start`) as the listening socket.
pub fn inherited_listener() -> std::os::unix::net::UnixListener {
    // SAFETY: `start` placed the listening socket at fd 3 for us and nothing else in
    // this process owns fd 3.
    let l = unsafe { std::os::unix::net::UnixListener::from_raw_fd(3) };
    // SAFETY: F_SETFD on the fd we now own.
    unsafe {
        libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC);
    }
    l
}
