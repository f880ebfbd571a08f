//! `berth-runtime pause ID`: freeze every process of the container.

use super::GlobalOptions;
use crate::container::Container;
use crate::error::Result;

/// Arguments of `pause`.
#[derive(Debug, clap::Args)]
pub struct PauseArgs {
    /// The container ID.
    pub id: String,
}

pub(super) fn run(global: &GlobalOptions, args: PauseArgs) -> Result<()> {
    Container::load(&global.root, &args.id)?.pause()
}
