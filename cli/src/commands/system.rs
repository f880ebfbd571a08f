//! `berth system`: manage berthd: `prune` (stopped containers, unused images and,
//! with `--volumes`, volumes), `df` (where berthd has it), `info` and `events`.

use crate::client::{query, Client};
use crate::commands::ps::filters_json;
use crate::commands::{events, info, volume};
use crate::error::{Error, Result};
use crate::output;
use serde_json::Value;
use std::io::{BufRead, Write};

/// Flags of `berth system`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    command: Sub,
}

/// The subcommands of `berth system`.
#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Remove unused data
    Prune(PruneArgs),
    /// Show disk usage
    Df(DfArgs),
    /// Display system-wide information
    Info(info::Args),
    /// Get real time events from the server
    Events(events::Args),
}

/// Flags of `berth system prune`.
#[derive(Debug, clap::Args)]
struct PruneArgs {
    /// Remove all unused images not just dangling ones.
    #[arg(short, long)]
    all: bool,
    /// Provide filter values (`label=<key>=<value>`, `until=<timestamp>`).
    #[arg(long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Prune anonymous volumes.
    #[arg(long)]
    volumes: bool,
}

/// Flags of `berth system df`.
#[derive(Debug, clap::Args)]
struct DfArgs {
    /// Format output: `table`, `json`, or a template.
    #[arg(long)]
    format: Option<String>,
    /// Show detailed information on space usage.
    #[arg(short, long)]
    verbose: bool,
}

/// Runs `berth system`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    match args.command {
        Sub::Prune(a) => prune(client, a).await,
        Sub::Df(a) => df(client, a).await,
        Sub::Info(a) => info::run(client, a).await,
        Sub::Events(a) => events::run(client, a).await,
    }
}

/// Prints `warning` and asks `Are you sure you want to continue? [y/N]` on stdin; only
/// `y`/`yes` agrees (end of input is no).
pub fn confirm(warning: &str) -> Result<bool> {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::io("reading the answer from stdin", e))?;
    let yes = matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes");
    if answer.is_empty() {
        // No newline came from the user: end the prompt line.
        println!();
    }
    Ok(yes)
}

/// Strings of a JSON array field.
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect()
}

async fn prune(client: &Client, a: PruneArgs) -> Result<i32> {
    if !a.filter.is_empty() {
        // berthd's POST /containers/prune takes no filters: it would prune every
        // stopped container whatever the filter said.
        return Err(Error::Usage(
            "system prune --filter: berthd's container prune does not support filters; prune without --filter".into(),
        ));
    }
    let mut warning = String::from("WARNING! This will remove:\n  - all stopped containers\n");
    if a.volumes {
        warning.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    if a.all {
        warning.push_str("  - all images without at least one container associated to them\n");
    } else {
        warning.push_str("  - all dangling images\n");
    }
    if !a.force && !confirm(&warning)? {
        return Ok(0);
    }
    let mut reclaimed = prune_containers(client).await?;
    if a.volumes {
        let (volumes, space) = volume::prune_volumes(client, false, &[]).await?;
        reclaimed += space;
        if !volumes.is_empty() {
            println!("Deleted Volumes:");
            for v in &volumes {
                println!("{v}");
            }
            println!();
        }
    }
    reclaimed += prune_images(client, a.all).await?;
    print_reclaimed(reclaimed);
    Ok(0)
}

/// Removes every stopped container, listing them; the space reclaimed.
pub async fn prune_containers(client: &Client) -> Result<u64> {
    let c: Value = client.post_json("/containers/prune", None).await?;
    let containers = strings(&c["ContainersDeleted"]);
    if !containers.is_empty() {
        println!("Deleted Containers:");
        for id in &containers {
            println!("{id}");
        }
        println!();
    }
    Ok(c["SpaceReclaimed"].as_u64().unwrap_or(0))
}

/// Removes dangling images (with `all`, every image no container uses), listing what
/// was untagged and deleted; the space reclaimed.
pub async fn prune_images(client: &Client, all: bool) -> Result<u64> {
    let dangling = if all {
        "dangling=false"
    } else {
        "dangling=true"
    };
    let q = query(&[("filters", filters_json(&[dangling.to_string()])?)]);
    let i: Value = client.post_json(&format!("/images/prune{q}"), None).await?;
    let images = i["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    if !images.is_empty() {
        println!("Deleted Images:");
        for item in &images {
            if let Some(u) = item["Untagged"].as_str() {
                println!("untagged: {u}");
            }
            if let Some(d) = item["Deleted"].as_str() {
                println!("deleted: {d}");
            }
        }
        println!();
    }
    Ok(i["SpaceReclaimed"].as_u64().unwrap_or(0))
}

/// The closing line of every prune.
pub fn print_reclaimed(bytes: u64) {
    println!(
        "Total reclaimed space: {}",
        output::human_size(bytes as f64)
    );
}

async fn df(client: &Client, a: DfArgs) -> Result<i32> {
    let v: Value = match client.get_json("/system/df").await {
        Ok(v) => v,
        Err(e) if e.status() == Some(404) => {
            return Err(Error::Usage(
                "system df: berthd has no disk-usage endpoint (GET /system/df); use `berth images` and `berth volume ls`".into(),
            ))
        }
        Err(e) => return Err(e),
    };
    if a.format.as_deref() == Some("json") || a.verbose {
        println!("{}", output::pretty(&v));
        return Ok(0);
    }
    let sum = |items: &Value, key: &str| -> u64 {
        items
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x[key].as_u64())
            .sum()
    };
    let count = |items: &Value| items.as_array().map_or(0, Vec::len);
    let mut rows = Vec::new();
    let images = &v["Images"];
    let active_images = images
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .count();
    rows.push(vec![
        "Images".to_string(),
        count(images).to_string(),
        active_images.to_string(),
        output::human_size(v["LayersSize"].as_f64().unwrap_or(0.0)),
    ]);
    let containers = &v["Containers"];
    rows.push(vec![
        "Containers".to_string(),
        count(containers).to_string(),
        containers
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["State"] == "running")
            .count()
            .to_string(),
        output::human_size(sum(containers, "SizeRw") as f64),
    ]);
    let volumes = &v["Volumes"];
    rows.push(vec![
        "Local Volumes".to_string(),
        count(volumes).to_string(),
        volumes
            .as_array()
            .into_iter()
            .flatten()
            .filter(|x| x["UsageData"]["RefCount"].as_i64().unwrap_or(0) > 0)
            .count()
            .to_string(),
        output::human_size(
            volumes
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x["UsageData"]["Size"].as_i64())
                .filter(|s| *s > 0)
                .sum::<i64>() as f64,
        ),
    ]);
    print!(
        "{}",
        output::table(&["TYPE", "TOTAL", "ACTIVE", "SIZE"], &rows)
    );
    Ok(0)
}
