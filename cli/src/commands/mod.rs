//! One file per command, as `berth COMMAND` / `docker COMMAND`. Each has an `Args`
//! (its flags, as docker spells them) and `run`, which returns the exit code.

use crate::client::Client;
use crate::error::Result;

pub mod attach;
pub mod build;
pub mod commit;
pub mod completion;
pub mod container;
pub mod context;
pub mod cp;
pub mod create;
pub mod diff;
pub mod events;
pub mod exec;
pub mod export;
pub mod history;
pub mod image;
pub mod images;
pub mod r#import;
pub mod info;
pub mod inspect;
pub mod kill;
pub mod load;
pub mod login;
pub mod logout;
pub mod logs;
pub mod network;
pub mod pause;
pub mod port;
pub mod prune;
pub mod ps;
pub mod pull;
pub mod push;
pub mod rename;
pub mod restart;
pub mod rm;
pub mod rmi;
pub mod run;
pub mod save;
pub mod start;
pub mod stats;
pub mod stop;
pub mod system;
pub mod tag;
pub mod top;
pub mod unpause;
pub mod update;
pub mod version;
pub mod volume;
pub mod wait;

/// Every command.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
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
    Rm(rm::Args),
    /// List containers
    Ps(ps::Args),
    /// Fetch the logs of a container
    Logs(logs::Args),
    /// Execute a command in a running container
    Exec(exec::Args),
    /// Attach local standard input, output, and error streams to a running container
    Attach(attach::Args),
    /// Return low-level information on containers, images or volumes
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
    /// List images
    Images(images::Args),
    /// Download an image from a registry
    Pull(pull::Args),
    /// Build an image from a Dockerfile
    Build(build::Args),
    /// Create a new image from a container's changes
    Commit(commit::Args),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(diff::Args),
    /// Export a container's filesystem as a tar archive
    Export(export::Args),
    /// Show the history of an image
    History(history::Args),
    /// Upload an image to a registry
    Push(push::Args),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(tag::Args),
    /// Remove one or more images
    Rmi(rmi::Args),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(save::Args),
    /// Load an image from a tar archive or STDIN
    Load(load::Args),
    /// Import the contents from a tarball to create a filesystem image
    Import(r#import::Args),
    /// Log in to a registry
    Login(login::Args),
    /// Log out from a registry
    Logout(logout::Args),
    /// Manage volumes
    Volume(volume::Args),
    /// Manage networks
    Network(network::Args),
    /// List port mappings or a specific mapping for the container
    Port(port::Args),
    /// Get real time events from the server
    Events(events::Args),
    /// Show the berth and berthd version information
    Version(version::Args),
    /// Display system-wide information
    Info(info::Args),
    /// Manage berthd (prune, df, info)
    System(system::Args),
    /// Manage containers (`container ls`, `container prune`, ...)
    Container(container::Args),
    /// Manage images (`image ls`, `image prune`, ...)
    Image(image::Args),
    /// Manage contexts
    Context(context::Args),
    /// Generate the autocompletion script for the specified shell
    Completion(completion::Args),
    /// Help about any command
    Help(HelpArgs),
}

/// Flags of `berth help`.
#[derive(Debug, clap::Args)]
pub struct HelpArgs {
    /// The command.
    #[arg(value_name = "COMMAND")]
    path: Vec<String>,
}

impl Command {
    /// Runs the commands that need no berthd (help, completion, context); None for
    /// the others.
    pub fn run_local(&self, root: &clap::Command) -> Option<i32> {
        match self {
            Command::Help(a) => Some(help(root, &a.path)),
            Command::Completion(a) => Some(completion::run(root, a)),
            _ => None,
        }
    }

    /// Runs the command; its exit code.
    pub async fn run(self, client: &Client) -> Result<i32> {
        match self {
            Command::Run(args) => run::run(client, args).await,
            Command::Create(args) => create::run(client, args).await,
            Command::Start(args) => start::run(client, args).await,
            Command::Stop(args) => stop::run(client, args).await,
            Command::Restart(args) => restart::run(client, args).await,
            Command::Kill(args) => kill::run(client, args).await,
            Command::Rm(args) => rm::run(client, args).await,
            Command::Ps(args) => ps::run(client, args).await,
            Command::Logs(args) => logs::run(client, args).await,
            Command::Exec(args) => exec::run(client, args).await,
            Command::Attach(args) => attach::run(client, args).await,
            Command::Inspect(args) => inspect::run(client, args).await,
            Command::Top(args) => top::run(client, args).await,
            Command::Stats(args) => stats::run(client, args).await,
            Command::Wait(args) => wait::run(client, args).await,
            Command::Pause(args) => pause::run(client, args).await,
            Command::Unpause(args) => unpause::run(client, args).await,
            Command::Rename(args) => rename::run(client, args).await,
            Command::Update(args) => update::run(client, args).await,
            Command::Cp(args) => cp::run(client, args).await,
            Command::Images(args) => images::run(client, args).await,
            Command::History(args) => history::run(client, args).await,
            Command::Pull(args) => pull::run(client, args).await,
            Command::Build(args) => build::run(client, args).await,
            Command::Commit(args) => commit::run(client, args).await,
            Command::Diff(args) => diff::run(client, args).await,
            Command::Export(args) => export::run(client, args).await,
            Command::Push(args) => push::run(client, args).await,
            Command::Tag(args) => tag::run(client, args).await,
            Command::Rmi(args) => rmi::run(client, args).await,
            Command::Save(args) => save::run(client, args).await,
            Command::Load(args) => load::run(client, args).await,
            Command::Import(args) => r#import::run(client, args).await,
            Command::Login(args) => login::run(client, args).await,
            Command::Logout(args) => logout::run(client, args).await,
            Command::Volume(args) => volume::run(client, args).await,
            Command::Network(args) => network::run(client, args).await,
            Command::Port(args) => port::run(client, args).await,
            Command::Events(args) => events::run(client, args).await,
            Command::Version(args) => version::run(client, args).await,
            Command::Info(args) => info::run(client, args).await,
            Command::System(args) => system::run(client, args).await,
            Command::Container(args) => container::run(client, args).await,
            Command::Image(args) => image::run(client, args).await,
            Command::Context(args) => context::run(args),
            // Handled by run_local.
            Command::Completion(_) | Command::Help(_) => Ok(0),
        }
    }
}

/// `berth help CMD...`: that command's help, as `berth CMD --help`.
fn help(root: &clap::Command, path: &[String]) -> i32 {
    let mut cmd = root.clone();
    let mut canonical = Vec::new();
    for p in path {
        match cmd.find_subcommand(p) {
            Some(s) => {
                canonical.push(s.get_name().to_string());
                cmd = s.clone();
            }
            None => {
                eprintln!("unknown help topic: {}", path.join(" "));
                return 1;
            }
        }
    }
    print!("{}", crate::args::help_text(root, &canonical));
    0
}
