//! `berth-runtime state ID`: the runtime spec's state JSON.

use super::GlobalOptions;
use crate::container::Container;
use crate::error::{Result, RuntimeError};

/// Arguments of `state`.
#[derive(Debug, clap::Args)]
pub struct StateArgs {
    /// The container ID.
    pub id: String,
}

pub(super) fn run(global: &GlobalOptions, args: StateArgs) -> Result<()> {
    let container = Container::load(&global.root, &args.id)?;
    let json = serde_json::to_string_pretty(&container.oci_state())
        .map_err(|e| RuntimeError::Other(format!("serialize state: {e}")))?;
    super::output::emit_line(json);
    Ok(())
}
