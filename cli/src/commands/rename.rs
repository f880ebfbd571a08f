//! `berth rename`: rename a container.

use crate::batch::seg;
use crate::client::{query, Client};
use crate::error::{Error, Result};

/// Flags of `berth rename`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container.
    #[arg(value_name = "CONTAINER")]
    container: String,
    /// Its new name.
    #[arg(value_name = "NEW_NAME")]
    new_name: String,
}

/// Runs `berth rename`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let old = args.container.trim();
    let new = args.new_name.trim();
    if old.is_empty() || new.is_empty() {
        // docker's own check, before asking the daemon.
        return Err(Error::Usage(
            "Error: neither old nor new names may be empty".into(),
        ));
    }
    client
        .post(
            &format!("/containers/{}/rename{}", seg(old), query(&[("name", new)])),
            None,
        )
        .await?;
    Ok(0)
}
