//! `berth ps`: list containers, as `docker ps`: its table, `--format` (table, json,
//! raw, templates over docker's ContainerContext fields, `.Label "k"`), `-s` sizes
//! (also asked for when the format uses `.Size`, as docker does).

use crate::client::{query, Client};
use crate::error::{Error, Result};
use crate::format::{self, fields, Spec};
use crate::output;
use crate::template::{NilKind, Struct, Value};
use berth_api::container::ContainerSummary;
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
    /// Format output: `table`, `table TEMPLATE`, `json`, `raw`, or a template (`{{.Names}}`).
    #[arg(long)]
    format: Option<String>,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long, allow_negative_numbers = true, value_parser = crate::args::go_int)]
    last: Option<i64>,
    /// Show the latest created container (includes all states).
    #[arg(short, long)]
    latest: bool,
    /// Display total file sizes.
    #[arg(short, long, num_args = 0..=1, default_missing_value = "true",
          require_equals = true, value_parser = crate::args::go_bool)]
    size: Option<bool>,
}

/// docker's ContainerContext.
pub const SPEC: Spec = Spec {
    type_name: "*formatter.ContainerContext",
    default_table:
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
    raw: "container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n",
    headers: &[
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Ports", "PORTS"),
        ("State", "STATE"),
        ("Status", "STATUS"),
        ("Size", "SIZE"),
        ("Names", "NAMES"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
        ("Networks", "NETWORKS"),
        ("Platform", "PLATFORM"),
    ],
};

/// `key=value` filters as the API wants them: `{"key": ["value", ...]}`.
pub fn filters_json(filters: &[String]) -> Result<String> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in filters {
        let (k, v) = f.split_once('=').ok_or_else(|| {
            Error::Usage(format!("bad format of filter (expected name=value): {f}"))
        })?;
        map.entry(k.to_string()).or_default().push(v.to_string());
    }
    serde_json::to_string(&map).map_err(|e| Error::Usage(format!("filters: {e}")))
}

/// Runs `berth ps`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    // As docker: the flag, else config.json's psFormat.
    let mut format = args.format.clone().filter(|f| !f.is_empty()).or_else(|| {
        crate::config::ConfigFile::load()
            .ok()
            .map(|c| c.ps_format)
            .filter(|f| !f.is_empty())
    });
    if args.quiet {
        format = Some("{{.ID}}".into());
    }
    let mut size = args.size.unwrap_or(false);
    if let Some(f) = &format {
        // As docker: the format is tried on an empty row before anything is listed.
        format::precheck(f, &row(&ContainerSummary::default(), true))?;
        let json = f.trim() == "json" || f.contains("json .}}") || f.contains("json . ");
        if args.size.is_none() && !args.quiet && (f.contains(".Size") || json) {
            size = true;
        }
    }
    let mut q: Vec<(&str, String)> = Vec::new();
    let last = if args.latest { Some(1) } else { args.last };
    if args.all || last.is_some_and(|n| n != -1) {
        q.push(("all", "1".into()));
    }
    if let Some(n) = last.filter(|n| *n != -1) {
        q.push(("limit", n.to_string()));
    }
    if size {
        q.push(("size", "1".into()));
    }
    if !args.filter.is_empty() {
        q.push(("filters", filters_json(&args.filter)?));
    }
    let list: Vec<ContainerSummary> = client
        .get_json(&format!("/containers/json{}", query(&q)))
        .await?;
    let rows: Vec<Struct> = list.iter().map(|c| row(c, args.no_trunc)).collect();
    let spec_default;
    let spec = if size && format.is_none() {
        spec_default = Spec {
            default_table: "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}",
            raw: "container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\nsize: {{.Size}}\n",
            ..SPEC
        };
        &spec_default
    } else {
        &SPEC
    };
    format::print(format.as_deref(), spec, &rows)?;
    Ok(0)
}

/// docker's `Ellipsis`: at most `max` characters, the last one `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The ports column as docker shows it (`0.0.0.0:8080->80/tcp, 443/tcp`).
fn ports(c: &ContainerSummary) -> String {
    let mut out: Vec<String> = c
        .ports
        .iter()
        .map(|p| {
            if p.public_port != 0 {
                let ip = if p.ip.is_empty() { "0.0.0.0" } else { &p.ip };
                format!("{ip}:{}->{}/{}", p.public_port, p.private_port, p.kind)
            } else {
                format!("{}/{}", p.private_port, p.kind)
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out.join(", ")
}

/// One container as docker's ContainerContext shows it.
pub fn row(c: &ContainerSummary, no_trunc: bool) -> Struct {
    let trunc = !no_trunc;
    let names: Vec<String> = c
        .names
        .iter()
        .map(|n| n.trim_start_matches('/').to_string())
        // A linked name (`/a/b`) is shown only without truncation, as docker.
        .filter(|n| no_trunc || !n.contains('/'))
        .collect();
    let command = if trunc {
        ellipsis(&c.command, 20)
    } else {
        c.command.clone()
    };
    let mut labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    let created_at = chrono::DateTime::from_timestamp(c.created, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default();
    let mounts: Vec<String> = c
        .mounts
        .iter()
        .map(|m| {
            let n = if m.name.is_empty() {
                &m.source
            } else {
                &m.name
            };
            if trunc {
                ellipsis(n, 15)
            } else {
                n.clone()
            }
        })
        .collect();
    let networks: Vec<String> = c
        .network_settings
        .as_ref()
        .map(|n| n.networks.keys().cloned().collect())
        .unwrap_or_default();
    let size = {
        let rw = output::human_size(c.size_rw as f64);
        if c.size_root_fs > 0 {
            format!(
                "{rw} (virtual {})",
                output::human_size((c.size_rw + c.size_root_fs) as f64)
            )
        } else {
            rw
        }
    };
    let id = if trunc {
        output::short_id(&c.id)
    } else {
        c.id.clone()
    };
    let image = if trunc && c.image.starts_with("sha256:") {
        output::short_id(&c.image)
    } else {
        c.image.clone()
    };
    format::row(
        &SPEC,
        fields(vec![
            ("ID", id.into()),
            ("Image", image.into()),
            ("Command", crate::template::printf::quote(&command).into()),
            ("CreatedAt", created_at.into()),
            (
                "RunningFor",
                format!(
                    "{} ago",
                    output::human_duration(output::seconds_since(c.created))
                )
                .into(),
            ),
            ("Ports", ports(c).into()),
            ("State", c.state.clone().into()),
            ("Status", c.status.clone().into()),
            ("Size", size.into()),
            ("Names", names.join(",").into()),
            ("Labels", labels.join(",").into()),
            ("Mounts", mounts.join(",").into()),
            (
                "LocalVolumes",
                c.mounts
                    .iter()
                    .filter(|m| m.driver == "local")
                    .count()
                    .to_string()
                    .into(),
            ),
            ("Networks", networks.join(",").into()),
            ("Platform", Value::Nil(NilKind::Pointer)),
        ]),
        c.labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// A row's field as text (for `system df -v`).
pub fn cell(r: &Struct, name: &str) -> String {
    r.field(name).map(Value::print).unwrap_or_default()
}
