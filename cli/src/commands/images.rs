//! `berth images`: list images. PLACEHOLDER: being written.

use crate::client::Client;
use crate::error::{Error, Result};

/// Flags of `berth images`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

/// Runs `berth images`.
pub async fn run(_client: &Client, _args: Args) -> Result<i32> {
    Err(Error::Usage("PLACEHOLDER".into()))
}
