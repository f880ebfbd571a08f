//! The command line, flag for flag as runc's, so engines that drive runc drive us.

mod create;
mod delete;
mod kill;
mod list;
mod run;
mod spec;
mod start;
mod state;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::Result;
use crate::logging::LogFormat;

/// berth-runtime: an OCI runtime.
#[derive(Debug, Parser)]
#[command(
    name = "berth-runtime",
    version,
    about = "Berth's OCI container runtime (runc-compatible command line)"
)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalOptions,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts, before the command name.
#[derive(Debug, clap::Args)]
pub struct GlobalOptions {
    /// Directory for container state.
    #[arg(long, global = true, default_value = "/run/berth-runtime")]
    pub root: PathBuf,
    /// Write log lines to this file (default: stderr, warnings and errors only).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log debug messages too.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Manage cgroups through systemd (cgroup paths as "slice:prefix:name").
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container from a bundle; its process waits for `start`.
    Create(create::CreateArgs),
    /// Run the user process of a created container.
    Start(start::StartArgs),
    /// Print the state of a container as JSON.
    State(state::StateArgs),
    /// Send a signal to a container's init (or all its processes).
    Kill(kill::KillArgs),
    /// Delete a container and everything it holds.
    Delete(delete::DeleteArgs),
    /// Create and start a container, and wait for it unless detached.
    Run(run::RunArgs),
    /// List containers.
    List(list::ListArgs),
    /// Write a default config.json.
    Spec(spec::SpecArgs),
}

/// Run a parsed command; returns the process exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    let global = &cli.global;
    match cli.command {
        Command::Create(args) => create::run(global, args).map(|()| 0),
        Command::Start(args) => start::run(global, args).map(|()| 0),
        Command::State(args) => state::run(global, args).map(|()| 0),
        Command::Kill(args) => kill::run(global, args).map(|()| 0),
        Command::Delete(args) => delete::run(global, args).map(|()| 0),
        Command::Run(args) => run::run(global, args),
        Command::List(args) => list::run(global, args).map(|()| 0),
        Command::Spec(args) => spec::run(args).map(|()| 0),
    }
}
