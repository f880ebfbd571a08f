//! `berth-runtime update [FLAGS | -r resources.json] ID`: change resource limits.

use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use super::GlobalOptions;
use crate::container::Container;
use crate::error::{Result, RuntimeError};

/// Arguments of `update`.
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// A JSON file with linux.resources ("-" for stdin); flags override it.
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Block IO weight (10-1000).
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period in microseconds.
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds.
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(long)]
    pub cpu_share: Option<u64>,
    /// CPU realtime period in microseconds.
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds.
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs the container may use (0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use.
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Memory limit (bytes or 64m, 1g; -1 for none).
    #[arg(long, allow_hyphen_values = true, value_parser = parse_size)]
    pub memory: Option<i64>,
    /// Memory soft limit.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_size)]
    pub memory_reservation: Option<i64>,
    /// Memory plus swap limit (-1 for none).
    #[arg(long, allow_hyphen_values = true, value_parser = parse_size)]
    pub memory_swap: Option<i64>,
    /// Maximum number of processes (-1 for none).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// The container ID.
    pub id: String,
}

/// Bytes from `123`, `64k`, `64m`, `1g`, `1t` (binary units, as docker/runc take them).
pub fn parse_size(text: &str) -> std::result::Result<i64, String> {
    let lower = text.trim().to_ascii_lowercase();
    if lower == "-1" {
        return Ok(-1);
    }
    let trimmed = lower.trim_end_matches('b');
    let (digits, factor) = match trimmed.chars().last() {
        Some('k') => (&trimmed[..trimmed.len() - 1], 1i64 << 10),
        Some('m') => (&trimmed[..trimmed.len() - 1], 1 << 20),
        Some('g') => (&trimmed[..trimmed.len() - 1], 1 << 30),
        Some('t') => (&trimmed[..trimmed.len() - 1], 1 << 40),
        _ => (trimmed, 1),
    };
    let n: f64 = digits.parse().map_err(|_| format!("bad size {text:?}"))?;
    if n < 0.0 {
        return Err(format!("bad size {text:?}"));
    }
    Ok((n * factor as f64) as i64)
}

/// The flags as a linux.resources JSON object (only the ones given).
fn flags_as_json(args: &UpdateArgs) -> Value {
    let mut root = Map::new();
    let mut put = |section: &str, key: &str, value: Value| {
        root.entry(section.to_string()).or_insert_with(|| json!({}))[key] = value;
    };
    if let Some(v) = args.blkio_weight {
        put("blockIO", "weight", json!(v));
    }
    if let Some(v) = args.cpu_period {
        put("cpu", "period", json!(v));
    }
    if let Some(v) = args.cpu_quota {
        put("cpu", "quota", json!(v));
    }
    if let Some(v) = args.cpu_share {
        put("cpu", "shares", json!(v));
    }
    if let Some(v) = args.cpu_rt_period {
        put("cpu", "realtimePeriod", json!(v));
    }
    if let Some(v) = args.cpu_rt_runtime {
        put("cpu", "realtimeRuntime", json!(v));
    }
    if let Some(v) = &args.cpuset_cpus {
        put("cpu", "cpus", json!(v));
    }
    if let Some(v) = &args.cpuset_mems {
        put("cpu", "mems", json!(v));
    }
    if let Some(v) = args.memory {
        put("memory", "limit", json!(v));
    }
    if let Some(v) = args.memory_reservation {
        put("memory", "reservation", json!(v));
    }
    if let Some(v) = args.memory_swap {
        put("memory", "swap", json!(v));
    }
    if let Some(v) = args.pids_limit {
        put("pids", "limit", json!(v));
    }
    Value::Object(root)
}

pub(super) fn run(global: &GlobalOptions, args: UpdateArgs) -> Result<()> {
    let mut container = Container::load(&global.root, &args.id)?;
    let mut changes: LinuxResources = match &args.resources {
        None => LinuxResources::default(),
        Some(path) => {
            let bad = |e: serde_json::Error| {
                RuntimeError::InvalidConfig(format!("resources {}: {e}", path.display()))
            };
            if path.as_os_str() == "-" {
                // One JSON value, without waiting for end of file: callers (containerd's
                // shims) may keep stdin open, and runc reads it the same way.
                let stdin = std::io::stdin().lock();
                serde_json::Deserializer::from_reader(stdin)
                    .into_iter::<LinuxResources>()
                    .next()
                    .ok_or_else(|| {
                        RuntimeError::InvalidConfig("resources on stdin: nothing given".into())
                    })?
                    .map_err(bad)?
            } else {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| RuntimeError::Other(format!("read {}: {e}", path.display())))?;
                serde_json::from_str(&text).map_err(bad)?
            }
        }
    };
    let flags: LinuxResources = serde_json::from_value(flags_as_json(&args))
        .map_err(|e| RuntimeError::InvalidConfig(format!("update flags: {e}")))?;
    changes = crate::container::update::merge(&changes, &flags);
    container.update(&changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512kb"), Ok(512 << 10));
        assert_eq!(parse_size("-1"), Ok(-1));
        assert!(parse_size("lots").is_err());
    }
}
