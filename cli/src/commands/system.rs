//! `berth system`: manage berthd: `prune` (stopped containers, unused images and,
//! with `--volumes`, volumes), `df` (where berthd has it), `info` and `events`.

use crate::client::{query, Client};
use crate::commands::prune::{confirm, print_reclaimed};
use crate::commands::ps::filters_json;
use crate::commands::{events, info, volume};
use crate::error::{Error, Result};
use crate::output;
use serde_json::Value;

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

async fn prune(client: &Client, a: PruneArgs) -> Result<i32> {
    // As docker: volume prune has no `until`, so the combination is refused up front.
    if a.volumes && a.filter.iter().any(|f| f.starts_with("until=")) {
        return Err(Error::Usage(
            "ERROR: The \"until\" filter is not supported with \"--volumes\"".into(),
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
    if !a.filter.is_empty() {
        warning.push_str("\n  Items to be pruned will be filtered with:\n");
        for f in &a.filter {
            warning.push_str(&format!("  - {f}\n"));
        }
    }
    if !a.force && !confirm(&warning)? {
        return Ok(0);
    }
    let mut reclaimed = prune_containers(client, &a.filter).await?;
    if a.volumes {
        reclaimed += volume::prune_volumes(client, false, &a.filter).await?;
    }
    reclaimed += prune_images(client, a.all, &a.filter).await?;
    print_reclaimed(reclaimed);
    Ok(0)
}

/// The `?filters=` query of prune requests (`label=`, `label!=`, `until=`), or nothing.
fn prune_query(filters: &[String]) -> Result<String> {
    if filters.is_empty() {
        return Ok(String::new());
    }
    Ok(query(&[("filters", filters_json(filters)?)]))
}

/// Removes the stopped containers that pass `filters`, listing them; the space
/// reclaimed.
pub async fn prune_containers(client: &Client, filters: &[String]) -> Result<u64> {
    let q = prune_query(filters)?;
    let c: Value = client
        .post_json(&format!("/containers/prune{q}"), None)
        .await?;
    let containers = output::strings(&c["ContainersDeleted"]);
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
pub async fn prune_images(client: &Client, all: bool, filters: &[String]) -> Result<u64> {
    let dangling = if all {
        "dangling=false"
    } else {
        "dangling=true"
    };
    let mut f = filters.to_vec();
    f.push(dangling.to_string());
    let q = prune_query(&f)?;
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
    if a.verbose {
        print!("{}", df_verbose(&v));
        return Ok(0);
    }
    let rows = df_rows(&v);
    if a.format.as_deref() == Some("json") {
        // As docker: one object a line, its keys sorted, every value a string.
        for r in &rows {
            let o = serde_json::json!({
                "Active": r[2], "Reclaimable": r[4], "Size": r[3], "TotalCount": r[1], "Type": r[0],
            });
            println!("{o}");
        }
        return Ok(0);
    }
    print!(
        "{}",
        output::table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows)
    );
    Ok(0)
}

/// `system df -v` as docker prints it: a table of images, containers, volumes and
/// build cache, each under its title.
fn df_verbose(v: &Value) -> String {
    let int = |x: &Value| x.as_i64().unwrap_or(0);
    let mut out = String::from("Images space usage:\n\n");
    let rows: Vec<Vec<String>> = items(&v["Images"])
        .iter()
        .map(|i| {
            // Only the first tag, as docker shows it.
            let (repo, tag) = i["RepoTags"][0]
                .as_str()
                .filter(|t| *t != "<none>:<none>")
                .and_then(|t| {
                    let slash = t.rfind('/').map_or(0, |p| p + 1);
                    t[slash..]
                        .rfind(':')
                        .map(|c| (t[..slash + c].to_string(), t[slash + c + 1..].to_string()))
                })
                .unwrap_or_else(|| ("<none>".into(), "<none>".into()));
            let (size, shared) = (int(&i["Size"]), int(&i["SharedSize"]));
            let created = output::human_duration(output::seconds_since(int(&i["Created"])));
            vec![
                repo,
                tag,
                output::short_id(i["Id"].as_str().unwrap_or("")),
                format!("{created} ago"),
                output::human_size(size as f64),
                if shared == -1 {
                    "N/A".into()
                } else {
                    human_size4(shared as f64)
                },
                if shared == -1 {
                    "N/A".into()
                } else {
                    human_size4((size - shared) as f64)
                },
                match int(&i["Containers"]) {
                    -1 => "N/A".into(),
                    n => n.to_string(),
                },
            ]
        })
        .collect();
    out.push_str(&output::table(
        &[
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS",
        ],
        &rows,
    ));
    out.push_str("\nContainers space usage:\n\n");
    let rows: Vec<Vec<String>> = items(&v["Containers"])
        .iter()
        .map(|c| {
            let r = crate::commands::ps::row(c, false);
            let cell = |k: &str| r[k].as_str().unwrap_or("").to_string();
            vec![
                cell("ID"),
                cell("Image"),
                cell("Command"),
                cell("LocalVolumes"),
                // Only what the container wrote: df leaves out the virtual size.
                output::human_size(int(&c["SizeRw"]) as f64),
                format!("{} ago", cell("RunningFor")),
                cell("Status"),
                cell("Names"),
            ]
        })
        .collect();
    out.push_str(&output::table(
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "LOCAL VOLUMES",
            "SIZE",
            "CREATED",
            "STATUS",
            "NAMES",
        ],
        &rows,
    ));
    out.push_str("\nLocal Volumes space usage:\n\n");
    let rows: Vec<Vec<String>> = items(&v["Volumes"])
        .iter()
        .map(|x| {
            let usage = &x["UsageData"];
            let (links, size) = if usage.is_object() {
                (
                    int(&usage["RefCount"]).to_string(),
                    human_size4(int(&usage["Size"]) as f64),
                )
            } else {
                ("N/A".into(), "N/A".into())
            };
            vec![x["Name"].as_str().unwrap_or("").to_string(), links, size]
        })
        .collect();
    out.push_str(&output::table(&["VOLUME NAME", "LINKS", "SIZE"], &rows));
    let cache = items(&v["BuildCache"]);
    let cache_size: i64 = cache
        .iter()
        .filter(|c| c["Shared"] != true)
        .map(|c| int(&c["Size"]))
        .sum();
    out.push_str(&format!(
        "\nBuild cache usage: {}\n\n",
        human_size4(cache_size as f64)
    ));
    // berthd has no builder: the table is always empty.
    out.push_str(&output::table(
        &[
            "CACHE ID",
            "CACHE TYPE",
            "SIZE",
            "CREATED",
            "LAST USED",
            "USAGE",
            "SHARED",
        ],
        &[],
    ));
    out
}

/// The items of a JSON array field.
fn items(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// docker's `units.HumanSize`: decimal units, four significant digits (Go's `%.4g`);
/// `system df` uses it where listings use three.
fn human_size4(bytes: f64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let (mut size, mut i) = (bytes, 0);
    while size >= 1000.0 && i + 1 < UNITS.len() {
        size /= 1000.0;
        i += 1;
    }
    let text = if size == 0.0 {
        "0".to_string()
    } else {
        let exp = size.abs().log10().floor() as i32;
        let decimals = (3 - exp).max(0) as usize;
        let s = format!("{size:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    format!("{text}{}", UNITS[i])
}

/// `reclaimable` as docker's df shows it: with its share of `total` in percent when
/// there is a total.
fn with_percent(reclaimable: i64, total: i64) -> String {
    let r = human_size4(reclaimable as f64);
    if total > 0 {
        format!("{r} ({}%)", reclaimable * 100 / total)
    } else {
        r
    }
}

/// The rows of `system df` (type, total, active, size, reclaimable), computed as the
/// docker CLI computes them from the same `GET /system/df` answer.
fn df_rows(v: &Value) -> Vec<Vec<String>> {
    let int = |x: &Value| x.as_i64().unwrap_or(0);
    let mut rows = Vec::new();

    let images = items(&v["Images"]);
    let layers = int(&v["LayersSize"]);
    let used: i64 = images
        .iter()
        .filter(|i| int(&i["Containers"]) != 0)
        .filter(|i| int(&i["Size"]) != -1 && int(&i["SharedSize"]) != -1)
        .map(|i| int(&i["Size"]) - int(&i["SharedSize"]))
        .sum();
    let reclaimable = layers - used;
    rows.push(vec![
        "Images".into(),
        images.len().to_string(),
        images
            .iter()
            .filter(|i| int(&i["Containers"]) > 0)
            .count()
            .to_string(),
        human_size4(layers as f64),
        if layers > 0 {
            with_percent(reclaimable, layers)
        } else {
            human_size4(reclaimable as f64)
        },
    ]);

    let containers = items(&v["Containers"]);
    let active = |c: &Value| {
        matches!(
            c["State"].as_str().unwrap_or("").to_lowercase().as_str(),
            "running" | "paused" | "restarting"
        )
    };
    let total: i64 = containers.iter().map(|c| int(&c["SizeRw"])).sum();
    let idle: i64 = containers
        .iter()
        .filter(|c| !active(c))
        .map(|c| int(&c["SizeRw"]))
        .sum();
    rows.push(vec![
        "Containers".into(),
        containers.len().to_string(),
        containers.iter().filter(|c| active(c)).count().to_string(),
        human_size4(total as f64),
        with_percent(idle, total),
    ]);

    let volumes = items(&v["Volumes"]);
    let measured = || {
        volumes
            .iter()
            .filter(|x| int(&x["UsageData"]["Size"]) != -1)
    };
    let total: i64 = measured().map(|x| int(&x["UsageData"]["Size"])).sum();
    let unused: i64 = measured()
        .filter(|x| int(&x["UsageData"]["RefCount"]) == 0)
        .map(|x| int(&x["UsageData"]["Size"]))
        .sum();
    rows.push(vec![
        "Local Volumes".into(),
        volumes.len().to_string(),
        volumes
            .iter()
            .filter(|x| int(&x["UsageData"]["RefCount"]) > 0)
            .count()
            .to_string(),
        human_size4(total as f64),
        with_percent(unused, total),
    ]);

    let cache = items(&v["BuildCache"]);
    let unshared = || cache.iter().filter(|c| c["Shared"] != true);
    rows.push(vec![
        "Build Cache".into(),
        cache.len().to_string(),
        cache
            .iter()
            .filter(|c| c["InUse"] == true)
            .count()
            .to_string(),
        human_size4(unshared().map(|c| int(&c["Size"])).sum::<i64>() as f64),
        human_size4(
            unshared()
                .filter(|c| c["InUse"] != true)
                .map(|c| int(&c["Size"]))
                .sum::<i64>() as f64,
        ),
    ]);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_have_four_significant_digits() {
        assert_eq!(human_size4(0.0), "0B");
        assert_eq!(human_size4(4_261_376.0), "4.261MB");
        assert_eq!(human_size4(1_000.0), "1kB");
        assert_eq!(human_size4(999.0), "999B");
        assert_eq!(human_size4(12_345_678.0), "12.35MB");
    }
}
