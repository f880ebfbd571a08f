//! `berth logs`: fetch the logs of a container. PLACEHOLDER: being written.

use crate::client::Client;
use crate::error::{Error, Result};

/// Flags of `berth logs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

/// Runs `berth logs`.
pub async fn run(_client: &Client, _args: Args) -> Result<i32> {
    Err(Error::Usage("PLACEHOLDER".into()))
}
