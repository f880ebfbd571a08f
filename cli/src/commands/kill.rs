//! `berth kill`: kill one or more running containers.

use crate::batch::{each, seg};
use crate::client::{query, Client};
use crate::error::Result;

/// Flags of `berth kill`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Signal to send to the container (default KILL).
    #[arg(short, long)]
    signal: Option<String>,
    /// The containers.
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

/// Runs `berth kill`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    // Without -s the daemon's default (SIGKILL) applies, as with docker.
    let q = match &args.signal {
        Some(s) => query(&[("signal", s.as_str())]),
        None => String::new(),
    };
    Ok(each(&args.containers, |name| {
        let q = q.clone();
        async move {
            client
                .post(&format!("/containers/{}/kill{q}", seg(&name)), None)
                .await
        }
    })
    .await)
}
