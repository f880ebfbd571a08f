//! `berth rmi`: remove one or more images, printing what was untagged and deleted.

use crate::batch::seg;
use crate::client::{self, empty, query, Client};
use crate::error::{Error, Result};
use hyper::Method;
use serde_json::Value;

/// Flags of `berth rmi`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Force removal of the image.
    #[arg(short, long)]
    force: bool,
    /// Do not delete untagged parents.
    #[arg(long)]
    no_prune: bool,
    /// The images (names, IDs or digest references).
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

/// Runs `berth rmi`: every image is tried; errors go to stderr and make the exit code 1.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let mut q: Vec<(&str, &str)> = Vec::new();
    if args.force {
        q.push(("force", "1"));
    }
    if args.no_prune {
        q.push(("noprune", "1"));
    }
    let q = query(&q);
    let mut code = 0;
    for name in &args.images {
        match remove(client, name, &q).await {
            Ok(items) => {
                for item in &items {
                    if let Some(u) = item["Untagged"].as_str() {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = item["Deleted"].as_str() {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                // An API error already reads "Error response from daemon: ...".
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

async fn remove(client: &Client, name: &str, q: &str) -> Result<Vec<Value>> {
    if name.trim().is_empty() {
        return Err(Error::Usage("image name cannot be empty".into()));
    }
    let resp = client
        .send(
            Method::DELETE,
            &format!("/images/{}{q}", seg(name)),
            empty(),
            None,
        )
        .await?;
    client::read_json(resp).await
}
