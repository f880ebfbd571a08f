//! `berth import`: create a filesystem image from a tarball (a file or STDIN); prints
//! the new image's ID.

use crate::client::{self, query, Client};
use crate::commands::tag::ImageRef;
use crate::error::{Error, Result};
use crate::progress::{self, Mode};
use std::io::IsTerminal;

/// Flags of `berth import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Apply Dockerfile instruction to the created image (CMD, ENTRYPOINT, ENV, ...).
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    change: Vec<String>,
    /// Set commit message for imported image.
    #[arg(short, long)]
    message: Option<String>,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    platform: Option<String>,
    /// The tarball: a file, `-` for STDIN, or a URL.
    #[arg(value_name = "file|URL|-")]
    source: String,
    /// The name of the new image.
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

/// Runs `berth import`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let mut q: Vec<(&str, String)> = Vec::new();
    let is_url = args.source.starts_with("http://") || args.source.starts_with("https://");
    let body = if is_url {
        // berthd answers for URLs itself (it refuses them with a clear message).
        q.push(("fromSrc", args.source.clone()));
        client::empty()
    } else if args.source == "-" {
        if std::io::stdin().is_terminal() {
            return Err(Error::Usage(
                "import from stdin: stdin is a terminal; pipe a tarball in".into(),
            ));
        }
        q.push(("fromSrc", "-".into()));
        client::stream(tokio::io::stdin())
    } else {
        let f = tokio::fs::File::open(&args.source)
            .await
            .map_err(|e| Error::io(format!("open {}", args.source), e))?;
        q.push(("fromSrc", "-".into()));
        client::stream(f)
    };
    if let Some(r) = &args.reference {
        let r = ImageRef::parse(r)?;
        if r.digest.is_some() {
            return Err(Error::Usage(format!(
                "import: {} is a digest reference; name the image with a tag",
                args.reference.as_deref().unwrap_or("")
            )));
        }
        q.push(("repo", r.repo));
        if let Some(t) = r.tag {
            q.push(("tag", t));
        }
    }
    if let Some(m) = args.message {
        q.push(("message", m));
    }
    for c in args.change {
        q.push(("changes", c));
    }
    if let Some(p) = args.platform.filter(|p| !p.is_empty()) {
        q.push(("platform", p));
    }
    let resp = client
        .send(
            hyper::Method::POST,
            &format!("/images/create{}", query(&q)),
            body,
            Some("application/x-tar"),
        )
        .await?;
    // The one status line berthd sends is the new image's ID.
    progress::show(resp, Mode::Plain).await?;
    Ok(0)
}
