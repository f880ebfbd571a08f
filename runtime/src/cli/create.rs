//! `berth-runtime create [--bundle DIR] [--console-socket PATH] [--pid-file PATH] ID`

use std::path::PathBuf;

use super::GlobalOptions;
use crate::container::{create, CreateOptions};
use crate::error::Result;
use crate::spec::load_bundle;
use crate::terminal;

/// Arguments of `create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The bundle directory (holding config.json).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is true.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
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

pub(super) fn run(global: &GlobalOptions, args: CreateArgs) -> Result<()> {
    let bundle = load_bundle(&args.bundle)?;
    let console = args
        .console_socket
        .as_deref()
        .map(terminal::connect)
        .transpose()?;
    create(CreateOptions {
        root: &global.root,
        id: &args.id,
        bundle,
        console,
        pid_file: args.pid_file.as_deref(),
        preserve_fds: args.preserve_fds,
        systemd_cgroup: global.systemd_cgroup,
        no_pivot: args.no_pivot,
        no_new_keyring: args.no_new_keyring,
    })?;
    Ok(())
}
