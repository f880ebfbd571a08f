//! `berth restart`: restart one or more containers.

use crate::batch::{each, seg};
use crate::client::Client;
use crate::error::Result;

/// Flags of `berth restart`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Signal to send to the container.
    #[arg(short, long)]
    signal: Option<String>,
    /// Seconds to wait before killing the container.
    #[arg(short = 't', long = "timeout", alias = "time", allow_negative_numbers = true,
          value_parser = crate::args::go_int)]
    timeout: Option<i64>,
    /// The containers.
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

/// Runs `berth restart`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let q = super::stop::stop_query(args.timeout, args.signal.as_deref());
    Ok(each(&args.containers, |name| {
        let q = q.clone();
        async move {
            client
                .post(&format!("/containers/{}/restart{q}", seg(&name)), None)
                .await
        }
    })
    .await)
}
