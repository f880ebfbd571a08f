//! `berth network`: create, list, inspect, remove, prune, connect and disconnect.

use crate::batch::seg;
use crate::client::{query, Client};
use crate::commands::prune::confirm;
use crate::commands::ps::filters_json;
use crate::error::{Error, Result};
use crate::format::{self, fields, Spec};
use crate::template::Struct;
use berth_api::network::{
    EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig, NetworkConnect, NetworkCreate,
    NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnect, NetworkResource,
    NetworksPruneReport,
};
use std::collections::BTreeMap;

/// docker's networkContext.
const SPEC: Spec = Spec {
    type_name: "*formatter.networkContext",
    default_table: "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
    raw: "network_id: {{.ID}}\nname: {{.Name}}\ndriver: {{.Driver}}\nscope: {{.Scope}}\n",
    headers: &[
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("Labels", "LABELS"),
        ("CreatedAt", "CREATED AT"),
    ],
};

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

fn pairs(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|item| {
            let (k, v) = item.split_once('=').unwrap_or((item.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

async fn create(client: &Client, a: CreateArgs) -> Result<i32> {
    if a.gateway.len() > a.subnet.len() || a.ip_range.len() > a.subnet.len() {
        return Err(Error::Usage(
            "every ip-range or gateway must have a corresponding subnet".into(),
        ));
    }
    let config: Vec<IpamConfig> = a
        .subnet
        .iter()
        .enumerate()
        .map(|(i, s)| IpamConfig {
            subnet: s.clone(),
            gateway: a.gateway.get(i).cloned().unwrap_or_default(),
            ip_range: a.ip_range.get(i).cloned().unwrap_or_default(),
            ..Default::default()
        })
        .collect();
    let body = NetworkCreateRequest {
        name: a.name.clone(),
        create: NetworkCreate {
            check_duplicate: true,
            driver: a.driver.clone(),
            internal: a.internal,
            attachable: a.attachable,
            enable_ipv6: a.ipv6,
            ipam: Some(Ipam {
                driver: "default".into(),
                config: Some(config),
                options: Some(BTreeMap::new()),
            }),
            options: Some(pairs(&a.opts)),
            labels: Some(pairs(&a.labels)),
            ..Default::default()
        },
    };
    let created: NetworkCreateResponse = client.post_typed("/networks/create", &body).await?;
    println!("{}", created.id);
    Ok(0)
}

/// One network as docker's `network ls --format` sees it.
fn row(n: &NetworkResource, no_trunc: bool) -> Struct {
    let labels = n.labels.clone();
    let mut kv: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    kv.sort();
    let id = if no_trunc {
        n.id.clone()
    } else {
        n.id.chars().take(12).collect()
    };
    format::row(
        &SPEC,
        fields(vec![
            ("ID", id.into()),
            ("Name", n.name.clone().into()),
            ("Driver", n.driver.clone().into()),
            ("Scope", n.scope.clone().into()),
            ("IPv6", n.enable_ipv6.to_string().into()),
            ("Internal", n.internal.to_string().into()),
            ("Labels", kv.join(",").into()),
            ("CreatedAt", n.created.clone().into()),
        ]),
        labels.into_iter().collect(),
    )
}

async fn ls(client: &Client, a: LsArgs) -> Result<i32> {
    let q = if a.filter.is_empty() {
        String::new()
    } else {
        query(&[("filters", filters_json(&a.filter)?)])
    };
    let mut nets: Vec<NetworkResource> = client.get_json(&format!("/networks{q}")).await?;
    nets.sort_by(|x, y| x.name.cmp(&y.name));
    let format = if a.quiet {
        Some("{{.ID}}".to_string())
    } else {
        a.format.clone().filter(|f| !f.is_empty())
    };
    let rows: Vec<Struct> = nets.iter().map(|n| row(n, a.no_trunc)).collect();
    format::print(format.as_deref(), &SPEC, &rows)?;
    Ok(0)
}

async fn inspect(client: &Client, a: InspectArgs) -> Result<i32> {
    let mut found: Vec<Vec<u8>> = Vec::new();
    let mut errors = Vec::new();
    for name in &a.names {
        match client.get_raw(&format!("/networks/{}", seg(name))).await {
            Ok(v) => found.push(v),
            Err(e) => errors.push(e),
        }
    }
    let mut code = crate::commands::inspect::print_found(
        a.format.as_deref(),
        &found,
        "types.NetworkResource",
    )?;
    // As docker: what was found first, then what was not.
    for e in &errors {
        eprintln!("{e}");
        code = 1;
    }
    Ok(code)
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
    let report: NetworksPruneReport = client
        .post_json(&format!("/networks/prune{q}"), None)
        .await?;
    let deleted = report.networks_deleted.unwrap_or_default();
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
    let body = NetworkConnect {
        container: a.container.clone(),
        endpoint_config: Some(EndpointSettings {
            ipam_config: Some(EndpointIpamConfig {
                ipv4_address: a.ip.clone().unwrap_or_default(),
                ipv6_address: a.ip6.clone().unwrap_or_default(),
                ..Default::default()
            }),
            aliases: Some(a.aliases.clone()),
            ..Default::default()
        }),
    };
    post_body(
        client,
        &format!("/networks/{}/connect", seg(&a.network)),
        &body,
    )
    .await
}

/// POSTs a typed body, the answer drained.
async fn post_body(client: &Client, path: &str, body: &impl serde::Serialize) -> Result<i32> {
    let body = serde_json::to_value(body)
        .map_err(|e| Error::Usage(format!("encoding the request: {e}")))?;
    client.post(path, Some(&body)).await?;
    Ok(0)
}

async fn disconnect(client: &Client, a: DisconnectArgs) -> Result<i32> {
    let body = NetworkDisconnect {
        container: a.container.clone(),
        force: a.force,
    };
    post_body(
        client,
        &format!("/networks/{}/disconnect", seg(&a.network)),
        &body,
    )
    .await
}
