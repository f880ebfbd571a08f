//! `berth-runtime kill [--all] ID [SIGNAL]`

use super::GlobalOptions;
use crate::container::Container;
use crate::error::Result;

/// Arguments of `kill`.
#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// Signal every process in the container, not only its init.
    #[arg(short, long)]
    pub all: bool,
    /// The container ID.
    pub id: String,
    /// Signal name or number (KILL, SIGKILL, 9).
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

pub(super) fn run(global: &GlobalOptions, args: KillArgs) -> Result<()> {
    let signal = crate::signal::parse(&args.signal)?;
    Container::load(&global.root, &args.id)?.kill(signal, args.all)
}
