//! `berth wait`: block until one or more containers stop, then print their exit codes
//! (in the order given; an unknown container is reported and the exit code is 1).

use crate::batch::seg;
use crate::client::{self, Client};
use crate::error::{Error, Result};
use berth_api::container::WaitResponse;

/// Flags of `berth wait`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to wait for: not-running (default), next-exit or removed.
    #[arg(long, default_value = "not-running")]
    condition: String,
    /// The containers.
    #[arg(value_name = "CONTAINER", required = true, num_args = 1..)]
    containers: Vec<String>,
}

/// Waits for one container; its exit code.
async fn wait_one(client: Client, name: String, condition: String) -> Result<i64> {
    let q = client::query(&[("condition", condition)]);
    let resp = client
        .post_raw(&format!("/containers/{}/wait{q}", seg(&name)), None)
        .await?;
    let v: WaitResponse = client::read_json(resp).await?;
    if let Some(e) = v.error.filter(|e| !e.message.is_empty()) {
        return Err(Error::BadResponse(e.message));
    }
    Ok(v.status_code)
}

/// Runs `berth wait`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    // All asked at once (none missed), each printed in the order given when it ends.
    let waits: Vec<_> = args
        .containers
        .iter()
        .map(|c| tokio::spawn(wait_one(client.clone(), c.clone(), args.condition.clone())))
        .collect();
    let mut code = 0;
    for w in waits {
        let r = w
            .await
            .unwrap_or_else(|e| Err(Error::BadResponse(format!("wait task failed: {e}"))));
        match r {
            Ok(status) => println!("{status}"),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}
