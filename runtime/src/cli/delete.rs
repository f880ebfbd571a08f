//! `berth-runtime delete [--force] ID`

use super::GlobalOptions;
use crate::container::Container;
use crate::error::{Result, RuntimeError};

/// Arguments of `delete`.
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// Kill a running container first; a missing container is not an error.
    #[arg(short, long)]
    pub force: bool,
    /// The container ID.
    pub id: String,
}

pub(super) fn run(global: &GlobalOptions, args: DeleteArgs) -> Result<()> {
    match Container::load(&global.root, &args.id) {
        Ok(container) => container.delete(args.force),
        Err(RuntimeError::NotFound(_)) if args.force => Ok(()),
        Err(e) => Err(e),
    }
}
