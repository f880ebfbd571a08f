//! `berth save`: save one or more images to a tar archive (to STDOUT by default).

use crate::client::{self, query, Client};
use crate::error::{Error, Result};
use futures_util::StreamExt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Flags of `berth save`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write to a file, instead of STDOUT.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The images.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

/// Runs `berth save`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(Error::Usage(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
        ));
    }
    let pairs: Vec<(&str, &str)> = args.images.iter().map(|n| ("names", n.as_str())).collect();
    let resp = client
        .send(
            hyper::Method::GET,
            &format!("/images/get{}", query(&pairs)),
            client::empty(),
            None,
        )
        .await?;
    match &args.output {
        None => {
            let mut out = tokio::io::stdout();
            copy(resp, &mut out, "writing to stdout").await?;
        }
        Some(path) => save_to_file(resp, path).await?,
    }
    Ok(0)
}

/// Writes the archive next to `path` and renames it into place only when whole, so a
/// failed save leaves no partial archive (and an existing file is kept until then).
async fn save_to_file(resp: hyper::Response<hyper::body::Incoming>, path: &Path) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::Usage(format!("-o {}: not a file name", path.display())))?;
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let context = format!("writing {}", path.display());
    let mut f = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    let result = async {
        copy(resp, &mut f, &context).await?;
        f.sync_all().await.map_err(|e| Error::io(&context, e))?;
        tokio::fs::rename(&tmp, path)
            .await
            .map_err(|e| Error::io(&context, e))
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

/// Copies a streamed answer's body to `out`.
async fn copy(
    resp: hyper::Response<hyper::body::Incoming>,
    out: &mut (impl AsyncWrite + Unpin),
    context: &str,
) -> Result<()> {
    let mut chunks = std::pin::pin!(client::chunks(resp));
    while let Some(chunk) = chunks.next().await {
        // A body broken off by berthd means the archive is incomplete.
        let chunk = chunk.map_err(|e| {
            Error::BadResponse(format!("the archive was cut short ({e}): it is incomplete"))
        })?;
        out.write_all(&chunk)
            .await
            .map_err(|e| Error::io(context, e))?;
    }
    out.flush().await.map_err(|e| Error::io(context, e))
}
