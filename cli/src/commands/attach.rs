//! `berth attach`: attach local standard input, output, and error streams to a running
//! container, as `docker attach`; its exit code is the container's once it stops
//! (0 when detached with the detach keys).

use crate::batch::seg;
use crate::client::Client;
use crate::commands::run::{attach_start_wait, Outcome};
use crate::error::{Error, Result};
use crate::streams::Session;
use clap::builder::BoolishValueParser;
use serde_json::Value;

/// Flags of `berth attach`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// Do not attach STDIN.
    #[arg(long = "no-stdin")]
    no_stdin: bool,
    /// Proxy all received signals to the process.
    #[arg(long = "sig-proxy", default_value = "true", num_args = 0..=1,
          default_missing_value = "true", require_equals = true,
          value_parser = BoolishValueParser::new())]
    sig_proxy: bool,
    /// The container.
    #[arg(value_name = "CONTAINER")]
    container: String,
}

/// Runs `berth attach`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let info: Value = client
        .get_json(&format!("/containers/{}/json", seg(&args.container)))
        .await?;
    let state = &info["State"];
    if !state["Running"].as_bool().unwrap_or(false) {
        return Err(Error::Usage(
            "You cannot attach to a stopped container, start it first".into(),
        ));
    }
    if state["Paused"].as_bool().unwrap_or(false) {
        return Err(Error::Usage(
            "You cannot attach to a paused container, unpause it first".into(),
        ));
    }
    let id = info["Id"].as_str().unwrap_or(&args.container).to_string();
    let session = Session::for_container(&info, !args.no_stdin, args.detach_keys.as_deref())?;
    let tty = session.tty;
    let proxy = args.sig_proxy && !tty;
    match attach_start_wait(client, &id, session, proxy, "not-running", false).await? {
        Outcome::Exited(code) => Ok(code),
        Outcome::Detached => {
            eprintln!("read escape sequence");
            Ok(0)
        }
        Outcome::StartFailed(e) => Err(e),
    }
}
