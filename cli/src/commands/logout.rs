//! `berth logout`: forget the saved credentials of a registry.

use crate::client::Client;
use crate::config;
use crate::error::Result;

/// Flags of `berth logout`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The registry (`host[:port]`); Docker Hub if none.
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

/// Runs `berth logout`. Not being logged in is no error, as with docker.
pub async fn run(_client: &Client, args: Args) -> Result<i32> {
    let key = config::registry_key(args.server.as_deref().unwrap_or(""));
    if config::remove_credentials(&key)? {
        println!("Removing login credentials for {key}");
    } else {
        println!("Not logged in to {key}");
    }
    Ok(0)
}
