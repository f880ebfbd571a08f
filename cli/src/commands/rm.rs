//! `berth rm`: remove one or more containers.

use crate::batch::{each, seg};
use crate::client::{query, Client};
use crate::error::{Error, Result};

/// Flags of `berth rm`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short, long)]
    force: bool,
    /// Remove the specified link (berthd has no links).
    #[arg(short, long)]
    link: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short, long)]
    volumes: bool,
    /// The containers.
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

/// Runs `berth rm`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    if args.link {
        return Err(Error::Usage(
            "--link: berthd has no container links".to_string(),
        ));
    }
    let mut q: Vec<(&str, &str)> = Vec::new();
    if args.force {
        q.push(("force", "1"));
    }
    if args.volumes {
        q.push(("v", "1"));
    }
    let q = query(&q);
    Ok(each(&args.containers, |name| {
        let q = q.clone();
        async move {
            let name = name.trim();
            if name.is_empty() {
                // docker refuses an empty name rather than calling DELETE /containers/.
                return Err(Error::Usage("Error: container name cannot be empty".into()));
            }
            client
                .delete(&format!("/containers/{}{q}", seg(name)))
                .await
        }
    })
    .await)
}
