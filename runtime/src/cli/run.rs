//! `berth-runtime run [--detach] [--bundle DIR] [--console-socket PATH] [--pid-file PATH] ID`
//!
//! Create and start in one process. In the foreground it forwards signals to the
//! container, relays a pty to our own stdio when there is a terminal and no console
//! socket, waits, deletes the container and exits with its exit code.

use std::path::PathBuf;

use super::foreground::{self, Console};
use super::GlobalOptions;
use crate::container::{create, CreateOptions};
use crate::error::Result;
use crate::spec::load_bundle;

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
    /// Do not use pivot_root (for roots on ramfs); move the rootfs onto / instead.
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not give the container its own session keyring.
    #[arg(long)]
    pub no_new_keyring: bool,
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
    let mut console = Console::new(terminal, args.console_socket.as_deref(), args.detach)?;
    let held = if args.detach {
        None
    } else {
        Some(foreground::hold_signals()?)
    };
    let container = create(CreateOptions {
        root: &global.root,
        id: &args.id,
        bundle,
        console: console.socket.take(),
        pid_file: args.pid_file.as_deref(),
        preserve_fds: args.preserve_fds,
        systemd_cgroup: global.systemd_cgroup,
        no_pivot: args.no_pivot,
        no_new_keyring: args.no_new_keyring,
    })?;
    let master = console.take_master()?;
    if let Err(error) = container.start() {
        let _ = container.delete(true);
        return Err(error);
    }
    let Some(held) = held else { return Ok(0) };
    let code = foreground::wait(container.state.pid, held, master)?;
    container.delete(true)?;
    Ok(code)
}
