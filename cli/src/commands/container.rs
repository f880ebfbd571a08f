//! `berth container ...`: the container commands under docker's management group
//! (`berth container ls` is `berth ps`), plus `container prune`.

use crate::client::Client;
use crate::commands::{
    attach, cp, create, exec, inspect, kill, logs, pause, ps, rename, restart, rm, run, start,
    stats, stop, system, top, unpause, update, wait,
};
use crate::error::Result;

/// Flags of `berth container`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    command: Sub,
}

/// The subcommands of `berth container`.
#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(ps::Args),
    /// Create and run a new container from an image
    Run(run::Args),
    /// Create a new container
    Create(create::Args),
    /// Start one or more stopped containers
    Start(start::Args),
    /// Stop one or more running containers
    Stop(stop::Args),
    /// Restart one or more containers
    Restart(restart::Args),
    /// Kill one or more running containers
    Kill(kill::Args),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(rm::Args),
    /// Fetch the logs of a container
    Logs(logs::Args),
    /// Execute a command in a running container
    Exec(exec::Args),
    /// Attach local standard input, output, and error streams to a running container
    Attach(attach::Args),
    /// Display detailed information on one or more containers
    Inspect(inspect::Args),
    /// Display the running processes of a container
    Top(top::Args),
    /// Display a live stream of container resource usage statistics
    Stats(stats::Args),
    /// Block until one or more containers stop, then print their exit codes
    Wait(wait::Args),
    /// Pause all processes within one or more containers
    Pause(pause::Args),
    /// Unpause all processes within one or more containers
    Unpause(unpause::Args),
    /// Rename a container
    Rename(rename::Args),
    /// Update configuration of one or more containers
    Update(update::Args),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::Args),
    /// Remove all stopped containers
    Prune(PruneArgs),
}

/// Flags of `berth container prune`.
#[derive(Debug, clap::Args)]
struct PruneArgs {
    /// Provide filter values (e.g. `until=<timestamp>`, `label=<key>=<value>`).
    #[arg(long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
}

/// Runs `berth container`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    match args.command {
        Sub::Ls(a) => ps::run(client, a).await,
        Sub::Run(a) => run::run(client, a).await,
        Sub::Create(a) => create::run(client, a).await,
        Sub::Start(a) => start::run(client, a).await,
        Sub::Stop(a) => stop::run(client, a).await,
        Sub::Restart(a) => restart::run(client, a).await,
        Sub::Kill(a) => kill::run(client, a).await,
        Sub::Rm(a) => rm::run(client, a).await,
        Sub::Logs(a) => logs::run(client, a).await,
        Sub::Exec(a) => exec::run(client, a).await,
        Sub::Attach(a) => attach::run(client, a).await,
        Sub::Inspect(a) => inspect::run(client, a).await,
        Sub::Top(a) => top::run(client, a).await,
        Sub::Stats(a) => stats::run(client, a).await,
        Sub::Wait(a) => wait::run(client, a).await,
        Sub::Pause(a) => pause::run(client, a).await,
        Sub::Unpause(a) => unpause::run(client, a).await,
        Sub::Rename(a) => rename::run(client, a).await,
        Sub::Update(a) => update::run(client, a).await,
        Sub::Cp(a) => cp::run(client, a).await,
        Sub::Prune(a) => {
            if !a.force
                && !crate::commands::prune::confirm(
                    "WARNING! This will remove all stopped containers.",
                )?
            {
                return Ok(0);
            }
            let reclaimed = system::prune_containers(client, &a.filter).await?;
            crate::commands::prune::print_reclaimed(reclaimed);
            Ok(0)
        }
    }
}
