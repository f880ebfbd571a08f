//! `berth export`: a container's file system as a tar archive, streamed to STDOUT or
//! a file.

use crate::client::{self, Client};
use crate::error::{Error, Result};
use futures_util::StreamExt;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// Flags of `berth export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write to a file, instead of STDOUT.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The container.
    container: String,
}

/// Runs `berth export`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(Error::Usage(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
        ));
    }
    let resp = client
        .send(
            hyper::Method::GET,
            &format!("/containers/{}/export", args.container),
            client::empty(),
            None,
        )
        .await?;
    // Written under a temporary name and renamed when complete: a cut stream leaves
    // no file that looks whole.
    let (mut out, done): (Box<dyn Write>, Option<(tempfile::NamedTempFile, PathBuf)>) =
        match &args.output {
            Some(p) => {
                let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
                let tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(std::path::Path::new(".")))
                    .map_err(|e| Error::io(format!("creating {}", p.display()), e))?;
                let f = tmp
                    .reopen()
                    .map_err(|e| Error::io(format!("creating {}", p.display()), e))?;
                (Box::new(std::io::BufWriter::new(f)), Some((tmp, p.clone())))
            }
            None => (Box::new(std::io::stdout().lock()), None),
        };
    let mut chunks = std::pin::pin!(client::chunks(resp));
    while let Some(c) = chunks.next().await {
        let c = c?;
        out.write_all(&c)
            .map_err(|e| Error::io("writing the archive", e))?;
    }
    out.flush()
        .map_err(|e| Error::io("writing the archive", e))?;
    drop(out);
    if let Some((tmp, path)) = done {
        tmp.persist(&path)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e.error))?;
    }
    Ok(0)
}
