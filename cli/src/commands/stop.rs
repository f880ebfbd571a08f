//! `berth stop`: stop one or more running containers.

use crate::batch::{each, seg};
use crate::client::{query, Client};
use crate::error::Result;

/// Flags of `berth stop`.
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

/// The query of a stop or restart: `t` and `signal` when given.
pub fn stop_query(timeout: Option<i64>, signal: Option<&str>) -> String {
    let mut q: Vec<(&str, String)> = Vec::new();
    if let Some(t) = timeout {
        q.push(("t", t.to_string()));
    }
    if let Some(s) = signal {
        q.push(("signal", s.to_string()));
    }
    query(&q)
}

/// Runs `berth stop`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let q = stop_query(args.timeout, args.signal.as_deref());
    Ok(each(&args.containers, |name| {
        let q = q.clone();
        async move {
            client
                .post(&format!("/containers/{}/stop{q}", seg(&name)), None)
                .await
        }
    })
    .await)
}
