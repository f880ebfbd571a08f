//! `berth stats`: display a live stream of container resource usage statistics,
//! computed from berthd's stats JSON as the docker CLI computes them.

use crate::batch::seg;
use crate::client::{json_stream, query, Client};
use crate::error::{Error, Result};
use crate::format::{self, fields, Spec};
use crate::output;
use crate::template::Struct;
use futures_util::StreamExt;
#[cfg(test)]
use serde_json::json;
use serde_json::Value;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Flags of `berth stats`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    all: bool,
    /// Format output: `table`, `table TEMPLATE`, `json` or a template (`{{.Name}}`).
    #[arg(long)]
    format: Option<String>,
    /// Disable streaming stats and only pull the first result.
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// The containers (default: every running one).
    #[arg(value_name = "CONTAINER")]
    containers: Vec<String>,
}

/// docker's stats context.
const SPEC: Spec = Spec {
    type_name: "*container.statsContext",
    default_table:
        "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
    raw: "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
    headers: &[
        ("ID", "CONTAINER ID"),
        ("Container", "CONTAINER"),
        ("Name", "NAME"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ],
};

/// What one container's stats show.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    /// As the user named it (or its ID when listed).
    pub container: String,
    /// Full ID.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// CPU %, of one CPU (so up to 100 × CPUs).
    pub cpu: f64,
    /// Memory used (without the page cache), bytes.
    pub mem: f64,
    /// Memory limit, bytes.
    pub limit: f64,
    /// Memory %, of the limit.
    pub mem_pct: f64,
    /// Network bytes received and sent.
    pub net: (f64, f64),
    /// Block I/O bytes read and written.
    pub block: (f64, f64),
    /// Processes.
    pub pids: u64,
}

/// One stats JSON sample as docker's CLI reads it: CPU % from the delta against
/// `precpu_stats` (container delta / system delta × online CPUs × 100), memory
/// without inactive file pages, network and block I/O summed.
pub fn compute(container: &str, v: &Value) -> Entry {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let cpu_delta = f(&v["cpu_stats"]["cpu_usage"]["total_usage"])
        - f(&v["precpu_stats"]["cpu_usage"]["total_usage"]);
    let sys_delta =
        f(&v["cpu_stats"]["system_cpu_usage"]) - f(&v["precpu_stats"]["system_cpu_usage"]);
    let mut cpus = f(&v["cpu_stats"]["online_cpus"]);
    if cpus == 0.0 {
        cpus = v["cpu_stats"]["cpu_usage"]["percpu_usage"]
            .as_array()
            .map(|a| a.len() as f64)
            .unwrap_or(0.0);
    }
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * cpus * 100.0
    } else {
        0.0
    };
    let ms = &v["memory_stats"];
    let usage = f(&ms["usage"]);
    // cgroup v1 reports total_inactive_file, v2 inactive_file.
    let inactive = match ms["stats"].get("total_inactive_file") {
        Some(x) => f(x),
        None => f(&ms["stats"]["inactive_file"]),
    };
    let mem = if inactive < usage {
        usage - inactive
    } else {
        usage
    };
    let limit = f(&ms["limit"]);
    let mem_pct = if limit != 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let mut net = (0.0, 0.0);
    if let Some(nets) = v["networks"].as_object() {
        for n in nets.values() {
            net.0 += f(&n["rx_bytes"]);
            net.1 += f(&n["tx_bytes"]);
        }
    }
    let mut block = (0.0, 0.0);
    if let Some(io) = v["blkio_stats"]["io_service_bytes_recursive"].as_array() {
        for e in io {
            match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
                Some("read") => block.0 += f(&e["value"]),
                Some("write") => block.1 += f(&e["value"]),
                _ => {}
            }
        }
    }
    Entry {
        container: container.to_string(),
        id: v["id"].as_str().unwrap_or("").to_string(),
        name: v["name"]
            .as_str()
            .unwrap_or("")
            .trim_start_matches('/')
            .to_string(),
        cpu,
        mem,
        limit,
        mem_pct,
        net,
        block,
        pids: v["pids_stats"]["current"].as_u64().unwrap_or(0),
    }
}

impl Entry {
    /// The row `--format` sees, formatted as docker formats it.
    pub fn to_row(&self, no_trunc: bool) -> Struct {
        format::row(
            &SPEC,
            fields(vec![
                (
                    "BlockIO",
                    format!(
                        "{} / {}",
                        output::human_size(self.block.0),
                        output::human_size(self.block.1)
                    )
                    .into(),
                ),
                ("CPUPerc", format!("{:.2}%", self.cpu).into()),
                ("Container", self.container.clone().into()),
                (
                    "ID",
                    if no_trunc {
                        self.id.clone()
                    } else {
                        output::short_id(&self.id)
                    }
                    .into(),
                ),
                ("MemPerc", format!("{:.2}%", self.mem_pct).into()),
                (
                    "MemUsage",
                    format!(
                        "{} / {}",
                        output::bytes_size(self.mem),
                        output::bytes_size(self.limit)
                    )
                    .into(),
                ),
                ("Name", self.name.clone().into()),
                (
                    "NetIO",
                    format!(
                        "{} / {}",
                        output::human_size(self.net.0),
                        output::human_size(self.net.1)
                    )
                    .into(),
                ),
                ("PIDs", self.pids.to_string().into()),
            ]),
            Vec::new(),
        )
    }
}

/// The latest sample of each container being watched, in display order.
#[derive(Debug, Default)]
struct Board {
    order: Vec<String>,
    latest: HashMap<String, Entry>,
    errors: HashMap<String, String>,
    done: HashMap<String, bool>,
}

type Shared = Arc<Mutex<Board>>;

fn lock(b: &Shared) -> std::sync::MutexGuard<'_, Board> {
    // A panicked collector leaves usable data behind.
    b.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads one container's stats into the board until the stream ends.
async fn collect(client: Client, key: String, stream: bool, board: Shared) {
    let q = query(&[("stream", if stream { "true" } else { "false" })]);
    let url = format!("/containers/{}/stats{q}", seg(&key));
    let result: Result<()> = async {
        let resp = client
            .send(hyper::Method::GET, &url, crate::client::empty(), None)
            .await?;
        let mut values = std::pin::pin!(json_stream(resp));
        while let Some(v) = values.next().await {
            let e = compute(&key, &v?);
            lock(&board).latest.insert(key.clone(), e);
            if !stream {
                break;
            }
        }
        Ok(())
    }
    .await;
    let mut b = lock(&board);
    if let Err(e) = result {
        b.errors.insert(key.clone(), e.to_string());
    }
    b.done.insert(key, true);
}

/// The containers to watch when none are named: running ones (or all with -a).
async fn listed(client: &Client, all: bool) -> Result<Vec<String>> {
    let q = if all { "?all=1" } else { "" };
    let list: Vec<Value> = client.get_json(&format!("/containers/json{q}")).await?;
    Ok(list
        .iter()
        .filter_map(|c| c["Id"].as_str().map(String::from))
        .collect())
}

/// Renders the board with the format.
fn render(board: &Board, format: &str, no_trunc: bool) -> Result<String> {
    let rows: Vec<Struct> = board
        .order
        .iter()
        .filter_map(|k| board.latest.get(k))
        .map(|e| e.to_row(no_trunc))
        .collect();
    format::render(format::resolve(Some(format), &SPEC), &SPEC, &rows)
}

/// Runs `berth stats`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let format = args
        .format
        .clone()
        .filter(|f| !f.is_empty())
        .or_else(|| {
            crate::config::ConfigFile::load()
                .ok()
                .map(|c| c.stats_format)
                .filter(|f| !f.is_empty())
        })
        .unwrap_or_else(|| "table".into());
    // Checked before any container is watched.
    crate::template::Template::parse("", format::resolve(Some(&format), &SPEC))
        .map_err(|e| Error::Usage(format!("template parsing error: {e}")))?;
    let board: Shared = Arc::default();
    let named = !args.containers.is_empty();
    let keys = if named {
        args.containers.clone()
    } else {
        listed(client, args.all).await?
    };
    let stream = !args.no_stream;
    let mut watching: Vec<String> = Vec::new();
    let start = |key: String, watching: &mut Vec<String>| {
        if watching.contains(&key) {
            return;
        }
        watching.push(key.clone());
        lock(&board).order.push(key.clone());
        tokio::spawn(collect(client.clone(), key, stream, board.clone()));
    };
    for k in keys {
        start(k, &mut watching);
    }
    if !stream {
        // Every container's first sample (or its error), bounded.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            {
                let b = lock(&board);
                if b.order.iter().all(|k| b.done.contains_key(k)) {
                    break;
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Usage("timed out waiting for stats".into()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let b = lock(&board);
        let mut code = 0;
        for k in &b.order {
            if let Some(e) = b.errors.get(k) {
                eprintln!("{e}");
                code = 1;
            }
        }
        print!("{}", render(&b, &format, args.no_trunc)?);
        return Ok(code);
    }
    let tty = std::io::stdout().is_terminal();
    // The first table waits (a little) for every container's first sample.
    let first = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < first {
        {
            let b = lock(&board);
            if b.order
                .iter()
                .all(|k| b.latest.contains_key(k) || b.done.contains_key(k))
            {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut ticks = 0u64;
    loop {
        if ticks > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        ticks += 1;
        if !named {
            // Containers started since are watched too, as docker does.
            if let Ok(keys) = listed(client, args.all).await {
                for k in keys {
                    start(k, &mut watching);
                }
            }
        }
        let text = {
            let mut b = lock(&board);
            // A container whose stream ended (it stopped or went) leaves the table
            // unless it was named.
            let gone: Vec<String> = b
                .order
                .iter()
                .filter(|k| b.done.contains_key(*k) && !named)
                .cloned()
                .collect();
            for k in gone {
                b.order.retain(|x| x != &k);
                b.latest.remove(&k);
                b.done.remove(&k);
                b.errors.remove(&k);
                watching.retain(|x| x != &k);
            }
            if named && b.order.iter().all(|k| b.errors.contains_key(k)) {
                for k in &b.order {
                    if let Some(e) = b.errors.get(k) {
                        eprintln!("{e}");
                    }
                }
                return Ok(1);
            }
            render(&b, &format, args.no_trunc)?
        };
        let mut out = String::new();
        if tty {
            // Clear the screen and go home, then the table.
            out.push_str("\x1b[2J\x1b[H");
        }
        out.push_str(&text);
        print!("{out}");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_memory_are_computed_as_docker_computes_them() {
        let v = json!({
            "id": "0123456789abcdef", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 300_000_000u64}, "system_cpu_usage": 2_000_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100_000_000u64}, "system_cpu_usage": 1_000_000_000u64},
            "memory_stats": {"usage": 10_485_760u64, "limit": 104_857_600u64, "stats": {"total_inactive_file": 2_097_152u64}},
            "pids_stats": {"current": 3},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 500}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}, {"op": "Write", "value": 8192}]},
        });
        let e = compute("web", &v);
        assert!((e.cpu - 40.0).abs() < 1e-9, "{}", e.cpu);
        assert_eq!(e.mem, 8_388_608.0);
        let r = e.to_row(false);
        let j = |k: &str| {
            r.field(k)
                .map(crate::template::Value::print)
                .unwrap_or_default()
        };
        assert_eq!(j("CPUPerc"), "40.00%");
        assert_eq!(j("MemUsage"), "8MiB / 100MiB");
        assert_eq!(j("MemPerc"), "8.00%");
        assert_eq!(j("NetIO"), "1.5kB / 500B");
        assert_eq!(j("BlockIO"), "4.1kB / 8.19kB");
        assert_eq!(j("PIDs"), "3");
        assert_eq!(j("ID"), "0123456789ab");
        assert_eq!(j("Name"), "web");
    }

    #[test]
    fn byte_sizes_have_four_significant_digits() {
        assert_eq!(output::bytes_size(248.0 * 1024.0), "248KiB");
        assert_eq!(output::bytes_size(1_396_736.0), "1.332MiB");
        assert_eq!(output::bytes_size(25_275_236_352.0), "23.54GiB");
        assert_eq!(output::bytes_size(0.0), "0B");
    }

    #[test]
    fn table_headers_use_docker_names() {
        let mut b = Board::default();
        b.order.push("web".into());
        b.latest.insert(
            "web".into(),
            Entry {
                name: "web".into(),
                id: "abc".into(),
                ..Default::default()
            },
        );
        let out = render(&b, "table", false).expect("render");
        let first = out.lines().next().expect("header");
        assert!(first.starts_with("CONTAINER ID   NAME"), "{first}");
        assert!(first.contains("MEM USAGE / LIMIT") && first.ends_with("PIDS"));
        let out = render(&b, "{{.Name}}: {{.MemPerc}}", false).expect("render");
        assert_eq!(out, "web: 0.00%\n");
    }
}
