//! `berth-runtime run [--detach] [--bundle DIR] [--console-socket PATH] [--pid-file PATH] ID`
//!
//! Create and start in one process. In the foreground it forwards signals to the
//! container, relays a pty to our own stdio when there is a terminal and no console
//! socket, waits, deletes the container and exits with its exit code.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::GlobalOptions;
use crate::container::{create, kill::raw_kill, CreateOptions};
use crate::error::{Context, Result, RuntimeError};
use crate::spec::load_bundle;
use crate::terminal;

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The bundle directory (holding config.json).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is true.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Return once the container has started.
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the container init's PID to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Pass N extra descriptors (3 .. 3+N-1) to the container's process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    /// The container ID.
    pub id: String,
}

pub(super) fn run(global: &GlobalOptions, args: RunArgs) -> Result<i32> {
    let bundle = load_bundle(&args.bundle)?;
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let mut relay_socket: Option<OwnedFd> = None;
    let console = match (&args.console_socket, terminal) {
        (Some(path), true) => Some(terminal::connect(path)?),
        (None, true) if args.detach => {
            return Err(RuntimeError::InvalidConfig(
                "process.terminal is true and --detach is set: pass --console-socket to receive the pty".into(),
            ))
        }
        (None, true) => {
            let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
                .context("create console socketpair")?;
            relay_socket = Some(ours);
            Some(theirs)
        }
        (_, false) => None,
    };
    // Signals for the container are held from now on, so none is lost before the
    // forwarder runs; the init unblocks its own mask before exec (see below).
    let forwarded = forwarded_signals();
    if !args.detach {
        forwarded.thread_block().context("block signals")?;
    }
    let container = create(CreateOptions {
        root: &global.root,
        id: &args.id,
        bundle,
        console,
        pid_file: args.pid_file.as_deref(),
        preserve_fds: args.preserve_fds,
        systemd_cgroup: global.systemd_cgroup,
    })?;
    let _raw_mode = match relay_socket {
        Some(socket) => Some(terminal::proxy(terminal::recv_fd(&socket)?)?),
        None => None,
    };
    if let Err(error) = container.start() {
        let _ = container.delete(true);
        return Err(error);
    }
    if args.detach {
        return Ok(0);
    }
    let pid = container.state.pid;
    std::thread::spawn(move || loop {
        if let Ok(signal) = forwarded.wait() {
            let _ = raw_kill(pid, signal as i32);
        }
    });
    let code = loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => break code,
            Ok(WaitStatus::Signaled(_, signal, _)) => break 128 + signal as i32,
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).context("wait for container"),
        }
    };
    container.delete(true)?;
    Ok(code)
}

/// The signals `run` passes on to the container (everything a user or engine may send).
fn forwarded_signals() -> SigSet {
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
