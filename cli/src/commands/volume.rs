//! `berth volume`: create, list, inspect, remove and prune volumes.

use crate::batch::seg;
use crate::client::{query, Client};
use crate::commands::prune::{confirm, print_reclaimed};
use crate::commands::ps::filters_json;
use crate::error::{Error, Result};
use crate::output::{self, Template};
use serde_json::{json, Map, Value};

/// Flags of `berth volume`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    command: Sub,
}

/// The subcommands of `berth volume`.
#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

/// Flags of `berth volume create`.
#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// Specify volume driver name.
    #[arg(short, long, default_value = "local")]
    driver: String,
    /// Set metadata for a volume (`key=value`).
    #[arg(long = "label", value_name = "LABEL")]
    labels: Vec<String>,
    /// Set driver specific options (`key=value`).
    #[arg(short = 'o', long = "opt", value_name = "OPT")]
    opts: Vec<String>,
    /// Specify volume name.
    #[arg(long = "name", value_name = "NAME")]
    name_flag: Option<String>,
    /// The volume's name (a random one if none).
    #[arg(value_name = "VOLUME")]
    name: Option<String>,
}

/// Flags of `berth volume ls`.
#[derive(Debug, clap::Args)]
struct LsArgs {
    /// Provide filter values (`dangling=true`, `name=`, `driver=`, `label=`).
    #[arg(short, long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
    /// Format output: `table`, `table TEMPLATE`, `json`, or a template (`{{.Name}}`).
    #[arg(long)]
    format: Option<String>,
    /// Only display volume names.
    #[arg(short, long)]
    quiet: bool,
}

/// Flags of `berth volume inspect`.
#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// Format the output using a template (`{{.Mountpoint}}`) or `json`.
    #[arg(short, long)]
    format: Option<String>,
    /// The volumes.
    #[arg(required = true, value_name = "VOLUME")]
    names: Vec<String>,
}

/// Flags of `berth volume rm`.
#[derive(Debug, clap::Args)]
struct RmArgs {
    /// Force the removal of one or more volumes (a missing volume is no error).
    #[arg(short, long)]
    force: bool,
    /// The volumes.
    #[arg(required = true, value_name = "VOLUME")]
    names: Vec<String>,
}

/// Flags of `berth volume prune`.
#[derive(Debug, clap::Args)]
struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones.
    #[arg(short, long)]
    all: bool,
    /// Provide filter values (`label=<label>`).
    #[arg(long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
}

/// Runs `berth volume`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    match args.command {
        Sub::Create(a) => create(client, a).await,
        Sub::Ls(a) => ls(client, a).await,
        Sub::Inspect(a) => inspect(client, a).await,
        Sub::Rm(a) => rm(client, a).await,
        Sub::Prune(a) => prune(client, a).await,
    }
}

/// `key=value` pairs as a JSON object (a bare `key` has an empty value, as docker).
fn pairs(list: &[String]) -> Value {
    let mut m = Map::new();
    for item in list {
        let (k, v) = item.split_once('=').unwrap_or((item.as_str(), ""));
        m.insert(k.to_string(), json!(v));
    }
    Value::Object(m)
}

async fn create(client: &Client, a: CreateArgs) -> Result<i32> {
    let name =
        match (a.name_flag, a.name) {
            (Some(f), Some(p)) if f != p => return Err(Error::Usage(
                "conflicting options: either specify --name or provide positional arg, not both"
                    .into(),
            )),
            (f, p) => f.or(p).unwrap_or_default(),
        };
    let body = json!({
        "Name": name,
        "Driver": a.driver,
        "DriverOpts": pairs(&a.opts),
        "Labels": pairs(&a.labels),
    });
    let v: Value = client.post_json("/volumes/create", Some(&body)).await?;
    println!("{}", v["Name"].as_str().unwrap_or(&name));
    Ok(0)
}

/// One volume as docker's `volume ls --format` sees it.
fn row(v: &Value) -> Value {
    let labels = v["Labels"]
        .as_object()
        .map(|m| {
            let mut kv: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            kv.sort();
            kv.join(",")
        })
        .unwrap_or_default();
    json!({
        "Name": v["Name"],
        "Driver": v["Driver"],
        "Scope": v["Scope"],
        "Mountpoint": v["Mountpoint"],
        "Labels": labels,
        "Links": "N/A",
        "Size": "N/A",
        "Availability": "N/A",
        "Group": "N/A",
        "Status": "N/A",
    })
}

async fn ls(client: &Client, a: LsArgs) -> Result<i32> {
    let q = if a.filter.is_empty() {
        String::new()
    } else {
        query(&[("filters", filters_json(&a.filter)?)])
    };
    let resp: Value = client.get_json(&format!("/volumes{q}")).await?;
    let mut volumes: Vec<Value> = resp["Volumes"].as_array().cloned().unwrap_or_default();
    volumes.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    if a.quiet {
        for v in &volumes {
            println!("{}", v["Name"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let rows: Vec<Value> = volumes.iter().map(row).collect();
    output::print_rows(a.format.as_deref(), &rows, || {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r["Driver"].as_str().unwrap_or("").to_string(),
                    r["Name"].as_str().unwrap_or("").to_string(),
                ]
            })
            .collect();
        output::table(&["DRIVER", "VOLUME NAME"], &cells)
    })?;
    Ok(0)
}

async fn inspect(client: &Client, a: InspectArgs) -> Result<i32> {
    let template = match a.format.as_deref() {
        None | Some("json") => None,
        Some(f) => Some(Template::parse(f)?),
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &a.names {
        match client
            .get_json::<Value>(&format!("/volumes/{}", seg(name)))
            .await
        {
            Ok(v) => found.push(v),
            Err(e) => errors.push(e),
        }
    }
    match template {
        Some(t) => {
            for v in &found {
                println!("{}", t.render(v));
            }
        }
        None if a.format.is_some() => {
            for v in &found {
                println!("{v}");
            }
        }
        None => println!("{}", indented(&Value::Array(found))),
    }
    // As docker: what was found first, then what was not.
    for e in &errors {
        eprintln!("{e}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

/// JSON indented by four spaces, as docker's `inspect` prints it.
fn indented(v: &Value) -> String {
    use serde::Serialize;
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    match v.serialize(&mut ser) {
        Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
        // Serializing a Value cannot fail; fall back to the two-space form anyway.
        Err(_) => output::pretty(v),
    }
}

async fn rm(client: &Client, a: RmArgs) -> Result<i32> {
    let q = if a.force {
        query(&[("force", "1")])
    } else {
        String::new()
    };
    let mut code = 0;
    for name in &a.names {
        match client.delete(&format!("/volumes/{}{q}", seg(name))).await {
            Ok(()) => println!("{name}"),
            // -f: a volume already gone is what was asked for.
            Err(e) if a.force && e.status() == Some(404) => {}
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

async fn prune(client: &Client, a: PruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !a.force && !confirm(warning)? {
        return Ok(0);
    }
    let reclaimed = prune_volumes(client, a.all, &a.filter).await?;
    print_reclaimed(reclaimed);
    Ok(0)
}

/// `POST /volumes/prune`, listing the volumes removed; the bytes reclaimed.
pub async fn prune_volumes(client: &Client, all: bool, filters: &[String]) -> Result<u64> {
    let mut f = filters.to_vec();
    if all {
        f.push("all=true".into());
    }
    let q = if f.is_empty() {
        String::new()
    } else {
        query(&[("filters", filters_json(&f)?)])
    };
    let v: Value = client
        .post_json(&format!("/volumes/prune{q}"), None)
        .await?;
    let deleted = output::strings(&v["VolumesDeleted"]);
    if !deleted.is_empty() {
        println!("Deleted Volumes:");
        for d in &deleted {
            println!("{d}");
        }
        println!();
    }
    Ok(v["SpaceReclaimed"].as_u64().unwrap_or(0))
}
