//! The command line, flag for flag as runc's, so engines that drive runc drive us.

mod checkpoint;
mod create;
mod delete;
mod events;
mod exec;
mod features;
mod foreground;
mod kill;
mod list;
mod output;
mod pause;
mod ps;
mod resume;
mod run;
mod spec;
mod start;
mod state;
mod update;

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
    /// Run another process in a running container.
    Exec(exec::ExecArgs),
    /// Create and start a container, and wait for it unless detached.
    Run(run::RunArgs),
    /// List containers.
    List(list::ListArgs),
    /// Write a default config.json.
    Spec(spec::SpecArgs),
    /// Freeze every process of a container.
    Pause(pause::PauseArgs),
    /// Thaw a paused container.
    Resume(resume::ResumeArgs),
    /// List the processes of a container.
    Ps(ps::PsArgs),
    /// Print stats (and OOM) events of a container as JSON lines.
    Events(events::EventsArgs),
    /// Change a container's resource limits.
    Update(update::UpdateArgs),
    /// Print what this runtime supports (runtime-spec features.md).
    Features,
    /// Not supported: checkpointing needs CRIU.
    Checkpoint(checkpoint::CheckpointArgs),
    /// Not supported: restoring needs CRIU.
    Restore(checkpoint::CheckpointArgs),
}

/// Run a parsed command; returns the process exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    let global = &cli.global;
    if matches!(
        cli.command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    ) {
        crate::process::sealed_exe::ensure()?;
    }
    match cli.command {
        Command::Create(args) => create::run(global, args).map(|()| 0),
        Command::Start(args) => start::run(global, args).map(|()| 0),
        Command::State(args) => state::run(global, args).map(|()| 0),
        Command::Kill(args) => kill::run(global, args).map(|()| 0),
        Command::Delete(args) => delete::run(global, args).map(|()| 0),
        Command::Run(args) => run::run(global, args),
        Command::Exec(args) => exec::run(global, args),
        Command::List(args) => list::run(global, args).map(|()| 0),
        Command::Spec(args) => spec::run(args).map(|()| 0),
        Command::Pause(args) => pause::run(global, args).map(|()| 0),
        Command::Resume(args) => resume::run(global, args).map(|()| 0),
        Command::Ps(args) => ps::run(global, args).map(|()| 0),
        Command::Events(args) => events::run(global, args).map(|()| 0),
        Command::Update(args) => update::run(global, args).map(|()| 0),
        Command::Features => features::run().map(|()| 0),
        Command::Checkpoint(_) => checkpoint::run("checkpoint").map(|()| 0),
        Command::Restore(_) => checkpoint::run("restore").map(|()| 0),
    }
}
