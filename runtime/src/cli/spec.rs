//! `berth-runtime spec [--bundle DIR] [--rootless]`: write a starting config.json.

use std::path::PathBuf;

use crate::error::{Result, RuntimeError};

/// Arguments of `spec`.
#[derive(Debug, clap::Args)]
pub struct SpecArgs {
    /// Where to write config.json.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// A config for running without root (user namespace mapping the current user).
    #[arg(long)]
    pub rootless: bool,
}

pub(super) fn run(args: SpecArgs) -> Result<()> {
    let path = args.bundle.join("config.json");
    if path.exists() {
        return Err(RuntimeError::Other(format!(
            "{} already exists: remove it first",
            path.display()
        )));
    }
    let spec = crate::spec::default_spec(args.rootless)?;
    spec.save(&path)
        .map_err(|e| RuntimeError::Other(format!("write {}: {e}", path.display())))
}
