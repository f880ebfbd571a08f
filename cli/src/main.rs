//! `berth`: a docker-compatible command line for berthd. It speaks the Docker Engine
//! API over berthd's unix socket or TCP (with TLS), so the same commands, flags and
//! output as `docker`.

mod batch;
mod client;
mod commands;
mod config;
mod container_options;
mod cp_tar;
mod endpoint;
mod error;
mod output;
mod progress;
mod streams;
mod tls;

use clap::Parser;
use client::Client;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "A docker-compatible command line for berthd",
    disable_help_subcommand = true
)]
struct Cli {
    /// Where berthd is and how to reach it: -H and the TLS flags.
    #[command(flatten)]
    connect: endpoint::ConnectOptions,
    /// What to do.
    #[command(subcommand)]
    command: commands::Command,
}

/// Exit code for a command line the CLI cannot parse, as docker's.
const USAGE_EXIT: i32 = 125;

fn main() {
    quiet_broken_pipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { USAGE_EXIT } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(async {
            let client = Client::new(cli.connect.resolve()?)?;
            cli.command.run(&client).await
        }),
        Err(e) => Err(error::Error::io("starting the async runtime", e)),
    };
    match code {
        Ok(code) => std::process::exit(code),
        Err(error::Error::Exit { message, code }) => {
            eprintln!("{message}");
            std::process::exit(code);
        }
        Err(e) => {
            eprintln!("berth: {e}");
            std::process::exit(1);
        }
    }
}

/// `berth ps | head` must end quietly, as docker does, when its reader goes away. SIGPIPE
/// stays ignored (the berthd connection must report EPIPE, not kill the process), so a
/// print to a closed stdout panics: that one panic ends the process with the shell's
/// "killed by SIGPIPE" code instead of a backtrace.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.contains("failed printing to stdout") && text.contains("Broken pipe") {
            std::process::exit(128 + libc::SIGPIPE);
        }
        default(info);
    }));
}
