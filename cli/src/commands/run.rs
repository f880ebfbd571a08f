//! `berth run`: create and run a new container from an image, as `docker run`: the
//! image pulled if missing, attached (before start, so no output is lost) unless `-d`,
//! started, waited for; its exit code is ours (125 when berthd refuses, 126/127 when
//! the command cannot be invoked or found).

use crate::client::{self, Client};
use crate::container_options::{self, Attached, ContainerOptions};
use crate::error::{Error, Result};
use crate::streams::{self, Ended, Session};
use berth_api::container::WaitResponse;
use clap::builder::BoolishValueParser;
use std::io::IsTerminal;

/// Flags of `berth run`.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Run container in background and print container ID.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Proxy received signals to the process.
    #[arg(long = "sig-proxy", default_value = "true", num_args = 0..=1,
          default_missing_value = "true", require_equals = true,
          value_parser = BoolishValueParser::new())]
    sig_proxy: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// The options shared with `create`.
    #[command(flatten)]
    opts: ContainerOptions,
    /// The image, then the command and its arguments.
    #[arg(value_name = "IMAGE [COMMAND] [ARG...]", required = true,
          trailing_var_arg = true, num_args = 1..)]
    rest: Vec<String>,
}

/// How an attached start ended.
#[derive(Debug)]
pub enum Outcome {
    /// The container exited with this code.
    Exited(i32),
    /// The user detached; the container runs on.
    Detached,
    /// berthd could not start it.
    StartFailed(Error),
}

/// Attaches to the container (before it starts, so nothing it prints is lost), asks to
/// be told of its exit (`condition`: next-exit, or removed with --rm), starts it if
/// `start`, relays the streams, and returns how it ended once its output is all out.
pub async fn attach_start_wait(
    client: &Client,
    id: &str,
    session: Session,
    sig_proxy: bool,
    condition: &str,
    start: bool,
) -> Result<Outcome> {
    let io = if session.stdin || session.stdout || session.stderr {
        let mut q = vec![("stream", "1")];
        for (on, name) in [
            (session.stdin, "stdin"),
            (session.stdout, "stdout"),
            (session.stderr, "stderr"),
        ] {
            if on {
                q.push((name, "1"));
            }
        }
        Some(
            client
                .hijack(
                    &format!("/containers/{id}/attach{}", client::query(&q)),
                    None,
                )
                .await?,
        )
    } else {
        None
    };
    // Asked before the start, so that even an instant exit is seen.
    let q = client::query(&[("condition", condition)]);
    let wait = client
        .post_raw(&format!("/containers/{id}/wait{q}"), None)
        .await?;
    let tty = session.tty;
    let pump = io.map(|io| tokio::spawn(streams::pump(io, session)));
    // Before the start, as docker: no signal meant for the container is lost.
    let (go, gate) = tokio::sync::oneshot::channel();
    let proxy =
        sig_proxy.then(|| streams::spawn_signal_proxy(client.clone(), id.to_string(), gate));
    if start {
        if let Err(e) = client.post(&format!("/containers/{id}/start"), None).await {
            if let Some(p) = &proxy {
                p.abort();
            }
            if let Some(p) = pump {
                // Dropping the session restores the terminal before the error prints.
                p.abort();
                let _ = p.await;
            }
            return Ok(Outcome::StartFailed(e));
        }
    }
    // Started (or already running): signals may go through now.
    let _ = go.send(());
    let resizer = (tty && std::io::stdout().is_terminal())
        .then(|| streams::spawn_resizer(client.clone(), format!("/containers/{id}")));
    let ended = match pump {
        Some(p) => p
            .await
            .map_err(|e| Error::BadResponse(format!("stream task failed: {e}")))??,
        None => Ended::Eof,
    };
    for t in [resizer, proxy].into_iter().flatten() {
        t.abort();
    }
    if ended == Ended::Detached {
        return Ok(Outcome::Detached);
    }
    let status: WaitResponse = client::read_json(wait).await?;
    if let Some(e) = status.error.filter(|e| !e.message.is_empty()) {
        return Err(Error::BadResponse(e.message));
    }
    Ok(Outcome::Exited(status.status_code as i32))
}

/// Runs `berth run`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    match run_container(client, args).await {
        Ok(code) => Ok(code),
        // The TTY check answers 1 as docker's does; every other refusal before the
        // container runs is docker's 125.
        Err(e @ Error::Usage(_)) if e.to_string() == NOT_A_TTY => {
            eprintln!("berth: {e}");
            Ok(1)
        }
        Err(Error::Flag(m)) => {
            eprintln!("{}", crate::args::flag_error("run", &m));
            Ok(125)
        }
        Err(e) => {
            eprintln!("berth: {e}\n\nRun 'berth run --help' for more information");
            Ok(125)
        }
    }
}

/// docker's refusal of `-it` when our stdin is not a terminal.
const NOT_A_TTY: &str = "the input device is not a TTY";

/// Creates (pulling if need be) and runs the container; its exit code.
async fn run_container(client: &Client, args: Args) -> Result<i32> {
    let opts = &args.opts;
    let (image, cmd) = match args.rest.split_first() {
        Some((i, c)) if !i.is_empty() => (i.clone(), c.to_vec()),
        _ => {
            return Err(Error::Usage(
                "\"berth run\" requires at least 1 argument".into(),
            ))
        }
    };
    let attached = opts.attached(args.detach)?;
    if opts.tty && attached.stdin && !std::io::stdin().is_terminal() {
        return Err(Error::Usage(NOT_A_TTY.into()));
    }
    let detach_keys = streams::detach_keys(args.detach_keys.as_deref())?;
    let body = opts.create_body(&image, &cmd, attached, args.detach)?;
    let id = container_options::create_container(client, opts, &image, &body).await?;
    if args.detach {
        if let Err(e) = client.post(&format!("/containers/{id}/start"), None).await {
            eprintln!("berth: {e}");
            return Ok(container_options::start_failure_code(&e.to_string()));
        }
        println!("{id}");
        return Ok(0);
    }
    foreground(client, &id, opts, attached, args.sig_proxy, detach_keys).await
}

/// The attached half of `run`: streams, start, wait; the container's exit code.
async fn foreground(
    client: &Client,
    id: &str,
    opts: &ContainerOptions,
    attached: Attached,
    sig_proxy: bool,
    detach_keys: Vec<u8>,
) -> Result<i32> {
    let session = Session {
        tty: opts.tty,
        stdin: attached.stdin,
        stdout: attached.stdout,
        stderr: attached.stderr,
        detach_keys,
        raw: opts.tty && attached.stdin,
    };
    // Docker proxies signals unless the user's terminal is the container's.
    let proxy = sig_proxy && !(opts.tty && attached.stdin);
    let condition = if opts.rm { "removed" } else { "next-exit" };
    match attach_start_wait(client, id, session, proxy, condition, true).await? {
        Outcome::Exited(code) => Ok(code),
        Outcome::Detached => Ok(0),
        Outcome::StartFailed(e) => {
            // With --rm, docker's CLI waits for the removal and reports the failure
            // as a run error, with its hint.
            if opts.rm {
                eprintln!("berth: {e}\n\nRun 'berth run --help' for more information");
            } else {
                eprintln!("berth: {e}");
            }
            Ok(container_options::start_failure_code(&e.to_string()))
        }
    }
}
