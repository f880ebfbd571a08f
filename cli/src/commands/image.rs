//! `berth image ...`: the image commands under docker's management group
//! (`berth image ls` is `berth images`), plus `image prune`.

use crate::client::Client;
use crate::commands::{images, import, inspect, load, pull, push, rmi, save, system, tag};
use crate::error::Result;

/// Flags of `berth image`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    command: Sub,
}

/// The subcommands of `berth image`.
#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// List images
    #[command(visible_alias = "list")]
    Ls(images::Args),
    /// Download an image from a registry
    Pull(pull::Args),
    /// Upload an image to a registry
    Push(push::Args),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(tag::Args),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(rmi::Args),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(save::Args),
    /// Load an image from a tar archive or STDIN
    Load(load::Args),
    /// Import the contents from a tarball to create a filesystem image
    Import(import::Args),
    /// Display detailed information on one or more images
    Inspect(inspect::Args),
    /// Remove unused images
    Prune(PruneArgs),
}

/// Flags of `berth image prune`.
#[derive(Debug, clap::Args)]
struct PruneArgs {
    /// Remove all unused images, not just dangling ones.
    #[arg(short, long)]
    all: bool,
    /// Provide filter values (e.g. `until=<timestamp>`, `label=<key>=<value>`).
    #[arg(long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
}

/// Runs `berth image`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    match args.command {
        Sub::Ls(a) => images::run(client, a).await,
        Sub::Pull(a) => pull::run(client, a).await,
        Sub::Push(a) => push::run(client, a).await,
        Sub::Tag(a) => tag::run(client, a).await,
        Sub::Rm(a) => rmi::run(client, a).await,
        Sub::Save(a) => save::run(client, a).await,
        Sub::Load(a) => load::run(client, a).await,
        Sub::Import(a) => import::run(client, a).await,
        Sub::Inspect(a) => inspect::run(client, a).await,
        Sub::Prune(a) => {
            let warning = if a.all {
                "WARNING! This will remove all images without at least one container associated to them."
            } else {
                "WARNING! This will remove all dangling images."
            };
            if !a.force && !crate::commands::prune::confirm(warning)? {
                return Ok(0);
            }
            let reclaimed = system::prune_images(client, a.all, &a.filter).await?;
            crate::commands::prune::print_reclaimed(reclaimed);
            Ok(0)
        }
    }
}
