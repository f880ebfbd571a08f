//! `berth load`: load images from a tar archive (a file or STDIN), printing the
//! `Loaded image: ...` lines berthd reports.

use crate::client::{self, query, Client};
use crate::error::{Error, Result};
use crate::progress::{self, Mode};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Flags of `berth load`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Read from tar archive file, instead of STDIN.
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Suppress the load output (progress; the loaded names are still printed).
    #[arg(short, long)]
    quiet: bool,
}

/// Runs `berth load`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let body = match &args.input {
        Some(path) => {
            let f = tokio::fs::File::open(path)
                .await
                .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
            client::stream(f)
        }
        None => {
            if std::io::stdin().is_terminal() {
                return Err(Error::Usage(
                    "requested load from stdin, but stdin is empty".into(),
                ));
            }
            client::stream(tokio::io::stdin())
        }
    };
    let q = if args.quiet {
        query(&[("quiet", "1")])
    } else {
        String::new()
    };
    let resp = client
        .send(
            hyper::Method::POST,
            &format!("/images/load{q}"),
            body,
            Some("application/x-tar"),
        )
        .await?;
    // berthd sends the "Loaded image" lines even when quiet: they are the result.
    let mode = if args.quiet {
        Mode::Plain
    } else {
        Mode::for_stdout(false)
    };
    progress::show(resp, mode).await?;
    Ok(0)
}
