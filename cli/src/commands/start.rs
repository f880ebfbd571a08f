//! `berth start`: start one or more stopped containers, as `docker start`: each name
//! printed as it starts; with `-a`/`-i` one container, attached before its start, and
//! its exit code ours.

use crate::batch::seg;
use crate::client::Client;
use crate::commands::run::{attach_start_wait, Outcome};
use crate::container_options;
use crate::error::{Error, Result};
use crate::streams::Session;
use clap::builder::BoolishValueParser;
use serde_json::Value;

/// Flags of `berth start`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short = 'a', long)]
    attach: bool,
    /// Attach container's STDIN.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// Proxy received signals to the process (with --attach).
    #[arg(long = "sig-proxy", default_value = "true", num_args = 0..=1,
          default_missing_value = "true", require_equals = true,
          value_parser = BoolishValueParser::new())]
    sig_proxy: bool,
    /// The containers.
    #[arg(value_name = "CONTAINER", required = true, num_args = 1..)]
    containers: Vec<String>,
}

/// Runs `berth start`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    if args.attach || args.interactive {
        return start_attached(client, args).await;
    }
    let mut failed = Vec::new();
    for name in &args.containers {
        match client
            .post(&format!("/containers/{}/start", seg(name)), None)
            .await
        {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("{e}");
                failed.push(name.as_str());
            }
        }
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        Err(Error::Usage(format!(
            "failed to start containers: {}",
            failed.join(", ")
        )))
    }
}

/// `start -a`/`-i`: one container, attached before its start; its exit code.
async fn start_attached(client: &Client, args: Args) -> Result<i32> {
    let [name] = args.containers.as_slice() else {
        return Err(Error::Usage(
            "you cannot start and attach multiple containers at once".into(),
        ));
    };
    let info: Value = client
        .get_json(&format!("/containers/{}/json", seg(name)))
        .await?;
    let id = info["Id"].as_str().unwrap_or(name).to_string();
    let session = Session::for_container(&info, args.interactive, args.detach_keys.as_deref())?;
    let tty = session.tty;
    let auto_remove = info["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false);
    let condition = if auto_remove { "removed" } else { "next-exit" };
    let proxy = args.sig_proxy && !tty;
    match attach_start_wait(client, &id, session, proxy, condition, true).await? {
        Outcome::Exited(code) => Ok(code),
        Outcome::Detached => Ok(0),
        Outcome::StartFailed(e) => {
            eprintln!("berth: {e}");
            Ok(container_options::start_failure_code(&e.to_string()))
        }
    }
}
