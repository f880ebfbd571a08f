//! `berth`: a docker-compatible command line for berthd. It speaks the Docker Engine
//! API over berthd's unix socket, so the same commands, flags and output as `docker`.

mod client;
mod commands;
mod error;
mod output;

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
    /// berthd's socket (unix:///path); also BERTH_HOST, then DOCKER_HOST.
    #[arg(short = 'H', long = "host", global = true, value_name = "HOST")]
    host: Option<String>,
    /// What to do.
    #[command(subcommand)]
    command: commands::Command,
}

fn main() {
    let cli = Cli::parse();
    let host = cli
        .host
        .or_else(|| std::env::var("BERTH_HOST").ok().filter(|h| !h.is_empty()))
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| client::DEFAULT_HOST.to_string());
    let code = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(async {
            let client = Client::from_host(&host)?;
            cli.command.run(&client).await
        }),
        Err(e) => Err(error::Error::io("starting the async runtime", e)),
    };
    match code {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("berth: {e}");
            std::process::exit(1);
        }
    }
}
