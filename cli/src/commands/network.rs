//! `berth network`: create, list, inspect, remove, prune, connect and disconnect.

use crate::batch::seg;
use crate::client::{query, Client};
use crate::commands::prune::confirm;
use crate::commands::ps::filters_json;
use crate::error::{Error, Result};
use crate::output::{self, Template};
use serde_json::{json, Map, Value};

/// Flags of `berth network`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    command: Sub,
}

/// The subcommands of `berth network`.
#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Create a network
    Create(CreateArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
}

/// Flags of `berth network create`.
#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// Driver to manage the Network.
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    /// Restrict external access to the network.
    #[arg(long)]
    internal: bool,
    /// Enable manual container attachment.
    #[arg(long)]
    attachable: bool,
    /// Enable IPv6 networking.
    #[arg(long)]
    ipv6: bool,
    /// Subnet in CIDR format that represents a network segment.
    #[arg(long)]
    subnet: Vec<String>,
    /// Allocate container ip from a sub-range.
    #[arg(long = "ip-range")]
    ip_range: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet.
    #[arg(long)]
    gateway: Vec<String>,
    /// Set driver specific options (`key=value`).
    #[arg(short = 'o', long = "opt")]
    opts: Vec<String>,
    /// Set metadata on a network (`key=value`).
    #[arg(long = "label")]
    labels: Vec<String>,
    /// The network's name.
    #[arg(value_name = "NETWORK")]
    name: String,
}

/// Flags of `berth network ls`.
#[derive(Debug, clap::Args)]
struct LsArgs {
    /// Provide filter values (`driver=bridge`, `name=`, `label=`, `type=custom`).
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format output: `table`, `json`, or a template (`{{.Name}}`).
    #[arg(long)]
    format: Option<String>,
    /// Do not truncate the output.
    #[arg(long)]
    no_trunc: bool,
    /// Only display network IDs.
    #[arg(short, long)]
    quiet: bool,
}

/// Flags of `berth network inspect`.
#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// Format the output using a template or `json`.
    #[arg(short, long)]
    format: Option<String>,
    /// Verbose output (accepted; nothing more to show on a local network).
    #[arg(short, long)]
    verbose: bool,
    /// The networks.
    #[arg(required = true, value_name = "NETWORK")]
    names: Vec<String>,
}

/// Flags of `berth network rm`.
#[derive(Debug, clap::Args)]
struct RmArgs {
    /// The networks.
    #[arg(required = true, value_name = "NETWORK")]
    names: Vec<String>,
}

/// Flags of `berth network prune`.
#[derive(Debug, clap::Args)]
struct PruneArgs {
    /// Provide filter values (`label=`, `until=`).
    #[arg(long = "filter")]
    filter: Vec<String>,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
}

/// Flags of `berth network connect`.
#[derive(Debug, clap::Args)]
struct ConnectArgs {
    /// Add network-scoped alias for the container.
    #[arg(long = "alias")]
    aliases: Vec<String>,
    /// IPv4 address.
    #[arg(long)]
    ip: Option<String>,
    /// IPv6 address.
    #[arg(long)]
    ip6: Option<String>,
    /// The network.
    network: String,
    /// The container.
    container: String,
}

/// Flags of `berth network disconnect`.
#[derive(Debug, clap::Args)]
struct DisconnectArgs {
    /// Force the container to disconnect from a network.
    #[arg(short, long)]
    force: bool,
    /// The network.
    network: String,
    /// The container.
    container: String,
}

/// Runs `berth network`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    match args.command {
        Sub::Create(a) => create(client, a).await,
        Sub::Ls(a) => ls(client, a).await,
        Sub::Inspect(a) => inspect(client, a).await,
        Sub::Rm(a) => rm(client, a).await,
        Sub::Prune(a) => prune(client, a).await,
        Sub::Connect(a) => connect(client, a).await,
        Sub::Disconnect(a) => disconnect(client, a).await,
    }
}

fn pairs(list: &[String]) -> Value {
    let mut m = Map::new();
    for item in list {
        let (k, v) = item.split_once('=').unwrap_or((item.as_str(), ""));
        m.insert(k.to_string(), json!(v));
    }
    Value::Object(m)
}

async fn create(client: &Client, a: CreateArgs) -> Result<i32> {
    if a.gateway.len() > a.subnet.len() || a.ip_range.len() > a.subnet.len() {
        return Err(Error::Usage(
            "every ip-range or gateway must have a corresponding subnet".into(),
        ));
    }
    let config: Vec<Value> = a
        .subnet
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut c = json!({"Subnet": s});
            if let Some(g) = a.gateway.get(i) {
                c["Gateway"] = json!(g);
            }
            if let Some(r) = a.ip_range.get(i) {
                c["IPRange"] = json!(r);
            }
            c
        })
        .collect();
    let body = json!({
        "Name": a.name,
        "CheckDuplicate": true,
        "Driver": a.driver,
        "Internal": a.internal,
        "Attachable": a.attachable,
        "EnableIPv6": a.ipv6,
        "IPAM": {"Driver": "default", "Config": config, "Options": {}},
        "Options": pairs(&a.opts),
        "Labels": pairs(&a.labels),
    });
    let v: Value = client.post_json("/networks/create", Some(&body)).await?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(0)
}

fn row(n: &Value, no_trunc: bool) -> Value {
    let id = n["Id"].as_str().unwrap_or("");
    let labels = n["Labels"]
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
        "ID": if no_trunc { id } else { &id[..id.len().min(12)] },
        "Name": n["Name"],
        "Driver": n["Driver"],
        "Scope": n["Scope"],
        "IPv6": n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
        "Internal": n["Internal"].as_bool().unwrap_or(false).to_string(),
        "Labels": labels,
        "CreatedAt": n["Created"],
    })
}

async fn ls(client: &Client, a: LsArgs) -> Result<i32> {
    let q = if a.filter.is_empty() {
        String::new()
    } else {
        query(&[("filters", filters_json(&a.filter)?)])
    };
    let mut nets: Vec<Value> = client.get_json(&format!("/networks{q}")).await?;
    nets.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    let rows: Vec<Value> = nets.iter().map(|n| row(n, a.no_trunc)).collect();
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    output::print_rows(a.format.as_deref(), &rows, || {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                ["ID", "Name", "Driver", "Scope"]
                    .iter()
                    .map(|k| r[*k].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .collect();
        output::table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &cells)
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
            .get_json::<Value>(&format!("/networks/{}", seg(name)))
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
        None => println!("{}", output::pretty(&Value::Array(found))),
    }
    for e in &errors {
        eprintln!("{e}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

async fn rm(client: &Client, a: RmArgs) -> Result<i32> {
    let mut code = 0;
    for name in &a.names {
        match client.delete(&format!("/networks/{}", seg(name))).await {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

async fn prune(client: &Client, a: PruneArgs) -> Result<i32> {
    if !a.force
        && !confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )?
    {
        return Ok(0);
    }
    prune_networks(client, &a.filter).await?;
    Ok(0)
}

/// `POST /networks/prune`, listing the networks removed (also `system prune`'s).
pub async fn prune_networks(client: &Client, filters: &[String]) -> Result<()> {
    let q = if filters.is_empty() {
        String::new()
    } else {
        query(&[("filters", filters_json(filters)?)])
    };
    let v: Value = client
        .post_json(&format!("/networks/prune{q}"), None)
        .await?;
    let deleted = output::strings(&v["NetworksDeleted"]);
    if !deleted.is_empty() {
        println!("Deleted Networks:");
        for d in &deleted {
            println!("{d}");
        }
        println!();
    }
    Ok(())
}

async fn connect(client: &Client, a: ConnectArgs) -> Result<i32> {
    let mut ipam = Map::new();
    if let Some(ip) = &a.ip {
        ipam.insert("IPv4Address".into(), json!(ip));
    }
    if let Some(ip) = &a.ip6 {
        ipam.insert("IPv6Address".into(), json!(ip));
    }
    let body = json!({
        "Container": a.container,
        "EndpointConfig": {"IPAMConfig": ipam, "Aliases": a.aliases},
    });
    client
        .post(
            &format!("/networks/{}/connect", seg(&a.network)),
            Some(&body),
        )
        .await?;
    Ok(0)
}

async fn disconnect(client: &Client, a: DisconnectArgs) -> Result<i32> {
    let body = json!({"Container": a.container, "Force": a.force});
    client
        .post(
            &format!("/networks/{}/disconnect", seg(&a.network)),
            Some(&body),
        )
        .await?;
    Ok(0)
}
