//! `berth start`: start one or more stopped containers. PLACEHOLDER: being written.

use crate::client::Client;
use crate::error::{Error, Result};

/// Flags of `berth start`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

/// Runs `berth start`.
pub async fn run(_client: &Client, _args: Args) -> Result<i32> {
    Err(Error::Usage("PLACEHOLDER".into()))
}
