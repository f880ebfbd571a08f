//! `berth pause`: pause all processes within one or more containers.

use crate::batch::{each, seg};
use crate::client::Client;
use crate::error::Result;

/// Flags of `berth pause`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The containers.
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

/// Runs `berth pause`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    Ok(each(&args.containers, |name| async move {
        client
            .post(&format!("/containers/{}/pause", seg(&name)), None)
            .await
    })
    .await)
}
