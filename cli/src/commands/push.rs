//! `berth push`: upload an image to a registry, showing progress.

use crate::batch::seg;
use crate::client::{query, Client};
use crate::commands::tag::ImageRef;
use crate::error::{Error, Result};
use crate::progress::{self, Mode};

/// Flags of `berth push`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Push all tags of an image to the repository.
    #[arg(short, long = "all-tags")]
    all_tags: bool,
    /// Suppress verbose output.
    #[arg(short, long)]
    quiet: bool,
    /// The image.
    #[arg(value_name = "NAME[:TAG]")]
    name: String,
}

/// Runs `berth push`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let mut r = ImageRef::parse(&args.name)?;
    if r.digest.is_some() {
        return Err(Error::Usage(format!(
            "cannot push a digest reference ({}): push a tag",
            args.name
        )));
    }
    if args.all_tags && r.tag.is_some() {
        return Err(Error::Usage(
            "tag can't be used with --all-tags/-a".to_string(),
        ));
    }
    let mode = progress::Mode::for_stdout(args.quiet);
    if !args.all_tags && r.tag.is_none() {
        r.tag = Some("latest".into());
        if mode != Mode::Quiet {
            println!("Using default tag: latest");
        }
    }
    let q = query(&[("tag", r.tag.clone().unwrap_or_default())]);
    let resp = client
        .post_for_registry(&format!("/images/{}/push{q}", seg(&r.repo)), &r.repo)
        .await?;
    progress::show(resp, mode).await?;
    if mode == Mode::Quiet {
        // docker -q still names what was pushed.
        println!("{}", args.name);
    }
    Ok(0)
}
