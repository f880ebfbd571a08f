//! `berth pull`: download an image from a registry, showing progress.

use crate::client::{query, Client};
use crate::commands::tag::ImageRef;
use crate::error::{Error, Result};
use crate::progress::{self, Mode};

/// Flags of `berth pull`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Download all tagged images in the repository.
    #[arg(short, long = "all-tags")]
    all_tags: bool,
    /// Suppress verbose output.
    #[arg(short, long)]
    quiet: bool,
    /// Set platform if server is multi-platform capable (`os[/arch[/variant]]`).
    #[arg(long)]
    platform: Option<String>,
    /// The image.
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    name: String,
}

/// Runs `berth pull`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let mut r = ImageRef::parse(&args.name)?;
    if args.all_tags && (r.tag.is_some() || r.digest.is_some()) {
        return Err(Error::Usage(
            "tag can't be used with --all-tags/-a".to_string(),
        ));
    }
    let mode = progress::Mode::for_stdout(args.quiet);
    if !args.all_tags && r.tag.is_none() && r.digest.is_none() {
        r.tag = Some("latest".into());
        if mode != Mode::Quiet {
            println!("Using default tag: latest");
        }
    }
    let tag = r
        .digest
        .clone()
        .or_else(|| r.tag.clone())
        .unwrap_or_default();
    let mut q = vec![("fromImage", r.repo.clone()), ("tag", tag)];
    if let Some(p) = args.platform.filter(|p| !p.is_empty()) {
        q.push(("platform", p));
    }
    let resp = client
        .post_for_registry(&format!("/images/create{}", query(&q)), &r.repo)
        .await?;
    progress::show(resp, mode).await?;
    // docker names what it pulled, fully qualified, as the last line (also with -q;
    // with -a, the repository).
    println!("{}", r.full());
    Ok(0)
}
