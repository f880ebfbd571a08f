//! `berth ps`: list containers.

use crate::client::{query, Client};
use crate::error::{Error, Result};
use crate::output;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Flags of `berth ps`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Filter output based on conditions provided (status=, label=, name=, id=, ancestor=).
    #[arg(short, long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
    /// Format output: `table`, `json`, or a template (`{{.Names}}`).
    #[arg(long)]
    format: Option<String>,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long)]
    last: Option<i64>,
    /// Show the latest created container (includes all states).
    #[arg(short, long)]
    latest: bool,
}

/// `key=value` filters as the API wants them: `{"key": ["value", ...]}`.
pub fn filters_json(filters: &[String]) -> Result<String> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in filters {
        let (k, v) = f.split_once('=').ok_or_else(|| {
            Error::Usage(format!("bad format of filter (expected name=value): {f}"))
        })?;
        map.entry(k.to_string()).or_default().push(v.to_string());
    }
    Ok(json!(map).to_string())
}

/// Runs `berth ps`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let mut q: Vec<(&str, String)> = Vec::new();
    let last = if args.latest { Some(1) } else { args.last };
    if args.all || last.is_some() {
        q.push(("all", "1".into()));
    }
    if let Some(n) = last {
        q.push(("limit", n.to_string()));
    }
    if !args.filter.is_empty() {
        q.push(("filters", filters_json(&args.filter)?));
    }
    let list: Vec<Value> = client
        .get_json(&format!("/containers/json{}", query(&q)))
        .await?;
    if args.quiet {
        for c in &list {
            let id = c["Id"].as_str().unwrap_or("");
            println!(
                "{}",
                if args.no_trunc {
                    id.to_string()
                } else {
                    output::short_id(id)
                }
            );
        }
        return Ok(0);
    }
    let rows: Vec<Value> = list.iter().map(|c| row(c, args.no_trunc)).collect();
    output::print_rows(args.format.as_deref(), &rows, || {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                [
                    "ID",
                    "Image",
                    "Command",
                    "RunningFor",
                    "Status",
                    "Ports",
                    "Names",
                ]
                .iter()
                .map(|k| r[*k].as_str().unwrap_or("").to_string())
                .collect::<Vec<String>>()
            })
            .map(|mut c| {
                c[3] = format!("{} ago", c[3]);
                c
            })
            .collect();
        output::table(
            &[
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "PORTS",
                "NAMES",
            ],
            &cells,
        )
    })?;
    Ok(0)
}

/// One container as docker's `ps --format` sees it.
pub(crate) fn row(c: &Value, no_trunc: bool) -> Value {
    let id = c["Id"].as_str().unwrap_or("");
    let names: Vec<String> = c["Names"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str())
                .map(|n| n.trim_start_matches('/').to_string())
                .collect()
        })
        .unwrap_or_default();
    let mut command = c["Command"].as_str().unwrap_or("").to_string();
    if !no_trunc && command.chars().count() > 20 {
        command = command.chars().take(19).collect::<String>() + "…";
    }
    let labels = c["Labels"]
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
    let created = c["Created"].as_i64().unwrap_or(0);
    let created_at = chrono::DateTime::from_timestamp(created, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default();
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["Name"].as_str().or(m["Source"].as_str()))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let networks: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    json!({
        "ID": if no_trunc { id.to_string() } else { output::short_id(id) },
        "Image": c["Image"],
        "Command": format!("\"{command}\""),
        "CreatedAt": created_at,
        "RunningFor": output::human_duration(output::seconds_since(created)),
        "Status": c["Status"],
        "State": c["State"],
        "Ports": "",
        "Names": names.join(","),
        "Labels": labels,
        "Mounts": mounts.join(","),
        "Networks": networks.join(","),
        // As docker: the mounts of the local volume driver.
        "LocalVolumes": c["Mounts"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|m| m["Driver"] == "local").count())
            .to_string(),
        "Size": "",
    })
}
