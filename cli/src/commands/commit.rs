//! `berth commit`: create a new image from a container's changes; prints its ID.

use crate::client::{query, Client};
use crate::commands::tag::ImageRef;
use crate::error::{Error, Result};
use serde_json::Value;

/// Flags of `berth commit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>").
    #[arg(short, long)]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    change: Vec<String>,
    /// Commit message.
    #[arg(short, long)]
    message: Option<String>,
    /// Pause container during commit.
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pause: bool,
    /// The container.
    container: String,
    /// The new image's name.
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

/// Runs `berth commit`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let mut q: Vec<(&str, String)> = vec![("container", args.container.clone())];
    if let Some(r) = &args.reference {
        let r = ImageRef::parse(r)?;
        if r.digest.is_some() {
            return Err(Error::Usage(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        q.push(("repo", r.repo));
        if let Some(t) = r.tag {
            q.push(("tag", t));
        }
    }
    if let Some(a) = args.author {
        q.push(("author", a));
    }
    if let Some(m) = args.message {
        q.push(("comment", m));
    }
    q.push(("pause", if args.pause { "1" } else { "0" }.into()));
    for c in args.change {
        q.push(("changes", c));
    }
    let v: Value = client
        .post_json(&format!("/commit{}", query(&q)), None)
        .await?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(0)
}
