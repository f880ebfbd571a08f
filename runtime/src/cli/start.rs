//! `berth-runtime start ID`

use super::GlobalOptions;
use crate::container::Container;
use crate::error::Result;

/// Arguments of `start`.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The container ID.
    pub id: String,
}

pub(super) fn run(global: &GlobalOptions, args: StartArgs) -> Result<()> {
    Container::load(&global.root, &args.id)?.start()
}
