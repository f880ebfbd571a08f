//! `berth diff`: the files changed in a container's file system (A added, C changed,
//! D deleted).

use crate::client::Client;
use crate::error::Result;
use serde_json::Value;

/// Flags of `berth diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container.
    container: String,
}

/// Runs `berth diff`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let changes: Value = client
        .get_json(&format!("/containers/{}/changes", args.container))
        .await?;
    for c in changes.as_array().into_iter().flatten() {
        let kind = match c["Kind"].as_u64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        println!("{kind} {}", c["Path"].as_str().unwrap_or(""));
    }
    Ok(0)
}
