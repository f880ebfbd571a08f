//! `berth`: a docker-compatible command line for berthd. It speaks the Docker Engine
//! API over berthd's unix socket or TCP (with TLS), so the same commands, flags and
//! output as `docker`.

mod args;
mod batch;
mod client;
mod commands;
mod config;
mod container_options;
mod context;
mod cp_tar;
mod endpoint;
mod error;
mod format;
mod output;
mod progress;
mod streams;
mod tabwriter;
mod template;
mod tls;

use clap::{CommandFactory, FromArgMatches};
use client::Client;

/// The command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "berth",
    about = "A docker-compatible command line for berthd",
    disable_help_subcommand = true,
    disable_version_flag = true,
    args_override_self = true,
    subcommand_required = false
)]
struct Cli {
    /// Where berthd is and how to reach it: -H and the TLS flags.
    #[command(flatten)]
    connect: endpoint::ConnectOptions,
    /// Location of client config files (default ~/.docker; also DOCKER_CONFIG).
    #[arg(long = "config", value_name = "DIR")]
    config: Option<std::path::PathBuf>,
    /// Name of the context to use (overrides DOCKER_HOST and `berth context use`).
    #[arg(short = 'c', long = "context", value_name = "NAME")]
    context: Option<String>,
    /// Enable debug mode.
    #[arg(short = 'D', long = "debug")]
    debug: bool,
    /// Set the logging level (debug, info, warn, error, fatal).
    #[arg(short = 'l', long = "log-level", value_name = "LEVEL")]
    log_level: Option<String>,
    /// Print version information and quit.
    #[arg(short = 'v', long = "version")]
    version: bool,
    /// What to do.
    #[command(subcommand)]
    command: Option<commands::Command>,
}

fn main() {
    quiet_broken_pipe();
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let root = Cli::command();
    let argv = match args::go_bool_flags(&root, &argv) {
        Ok(argv) => argv,
        Err(r) => {
            eprint!("{}", r.stderr);
            std::process::exit(r.code);
        }
    };
    let cli = match root
        .clone()
        .try_get_matches_from(&argv)
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => {
            let r = args::refusal(&root, &argv, &e);
            print!("{}", r.stdout);
            eprint!("{}", r.stderr);
            std::process::exit(r.code);
        }
    };
    if let Some(dir) = &cli.config {
        config::set_dir(dir.clone());
    }
    if cli.version {
        print!("{}", args::version_line());
        std::process::exit(0);
    }
    let Some(command) = cli.command else {
        // Bare `berth`: the help, as bare `docker`.
        print!("{}", args::help_text(&root, &[]));
        std::process::exit(0);
    };
    if let Some(code) = command.run_local(&root) {
        std::process::exit(code);
    }
    let code = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(async {
            let target = context::endpoint(&cli.connect, cli.context.as_deref())?;
            let client = Client::new(target)?;
            command.run(&client).await
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
            // As docker: the error alone (berthd's carry "Error response from daemon").
            eprintln!("{e}");
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
