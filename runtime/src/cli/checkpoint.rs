//! `berth-runtime checkpoint` and `restore`: not supported (no CRIU integration); they say
//! so clearly instead of pretending, and `features` agrees.

use crate::error::{Result, RuntimeError};

/// Arguments of `checkpoint` and `restore`: accepted so the error is about the feature,
/// not about a flag.
#[derive(Debug, clap::Args)]
pub struct CheckpointArgs {
    /// Any runc checkpoint/restore flags and the container ID.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

pub(super) fn run(what: &str) -> Result<()> {
    Err(RuntimeError::Other(format!(
        "{what} is not supported by berth-runtime (no CRIU support)"
    )))
}
