//! `berth-runtime resume ID`: thaw a paused container.

use super::GlobalOptions;
use crate::container::Container;
use crate::error::Result;

/// Arguments of `resume`.
#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// The container ID.
    pub id: String,
}

pub(super) fn run(global: &GlobalOptions, args: ResumeArgs) -> Result<()> {
    Container::load(&global.root, &args.id)?.resume()
}
