//! `berth create`: create a new container, as `docker create`: the image pulled if
//! missing, the ID printed. A bad flag value exits 125, a refusal by berthd 1.

use crate::client::Client;
use crate::container_options::{self, ContainerOptions};
use crate::error::{Error, Result};

/// Flags of `berth create`.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// The options shared with `run`.
    #[command(flatten)]
    opts: ContainerOptions,
    /// The image, then the command and its arguments.
    #[arg(value_name = "IMAGE [COMMAND] [ARG...]", required = true,
          trailing_var_arg = true, num_args = 1..)]
    rest: Vec<String>,
}

/// Runs `berth create`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let (image, cmd) = match args.rest.split_first() {
        Some((i, c)) if !i.is_empty() => (i.clone(), c.to_vec()),
        _ => {
            eprintln!("berth: 'berth create' requires at least 1 argument");
            return Ok(1);
        }
    };
    let body = args
        .opts
        .attached(false)
        .and_then(|a| args.opts.create_body(&image, &cmd, a, false));
    let body = match body {
        Ok(b) => b,
        // A flag docker would refuse while parsing: its usage exit code.
        Err(Error::Flag(m)) => {
            eprintln!("{}", crate::args::flag_error("create", &m));
            return Ok(125);
        }
        Err(e @ Error::Usage(_)) => {
            eprintln!("berth: {e}\n\nRun 'berth create --help' for more information");
            return Ok(125);
        }
        Err(e) => return Err(e),
    };
    let id = container_options::create_container(client, &args.opts, &image, &body).await?;
    println!("{id}");
    Ok(0)
}
