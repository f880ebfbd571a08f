//! Container events in runc's JSON shapes (`events` and `events --stats`), so that tools
//! parsing runc's output (containerd's runc shim among them) parse ours.

use std::collections::HashMap;

use libcgroups::stats::{BlkioDeviceStat, Stats};
use serde::Serialize;
use serde_json::{json, Value};

/// One event line: `{"type": "stats"|"oom", "id": ..., "data": ...}`.
#[derive(Debug, Serialize)]
pub struct Event {
    /// Event kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// Container ID.
    pub id: String,
    /// Payload (stats for "stats").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

fn blkio_entries(stats: &[BlkioDeviceStat]) -> Value {
    Value::Array(
        stats
            .iter()
            .map(|s| json!({"major": s.major, "minor": s.minor, "op": s.op_type.clone().unwrap_or_default(), "value": s.value}))
            .collect(),
    )
}

fn memory_entry(data: &libcgroups::stats::MemoryData) -> Value {
    json!({"limit": data.limit, "usage": data.usage, "max": data.max_usage, "failcnt": data.fail_count})
}

/// libcgroups' figures in runc's `types.Stats` layout.
pub fn runc_stats(stats: &Stats) -> Value {
    let cpu = &stats.cpu;
    let memory = &stats.memory;
    let hugetlb: HashMap<&String, Value> = stats
        .hugetlb
        .iter()
        .map(|(size, h)| {
            (
                size,
                json!({"usage": h.usage, "max": h.max_usage, "failcnt": h.fail_count}),
            )
        })
        .collect();
    json!({
        "cpu": {
            "usage": {
                "total": cpu.usage.usage_total,
                "percpu": cpu.usage.per_core_usage_total,
                "percpu_kernel": cpu.usage.per_core_usage_kernel,
                "percpu_user": cpu.usage.per_core_usage_user,
                "kernel": cpu.usage.usage_kernel,
                "user": cpu.usage.usage_user,
            },
            "throttling": {
                "periods": cpu.throttling.periods,
                "throttledPeriods": cpu.throttling.throttled_periods,
                "throttledTime": cpu.throttling.throttled_time,
            },
        },
        "memory": {
            "cache": memory.cache,
            "usage": memory_entry(&memory.memory),
            "swap": memory_entry(&memory.memswap),
            "kernel": memory_entry(&memory.kernel),
            "kernelTCP": memory_entry(&memory.kernel_tcp),
            "raw": memory.stats,
        },
        "pids": {"current": stats.pids.current, "limit": stats.pids.limit},
        "blkio": {
            "ioServiceBytesRecursive": blkio_entries(&stats.blkio.service_bytes),
            "ioServicedRecursive": blkio_entries(&stats.blkio.serviced),
            "ioQueuedRecursive": blkio_entries(&stats.blkio.queued),
            "ioServiceTimeRecursive": blkio_entries(&stats.blkio.service_time),
            "ioWaitTimeRecursive": blkio_entries(&stats.blkio.wait_time),
            "ioMergedRecursive": blkio_entries(&stats.blkio.merged),
            "ioTimeRecursive": blkio_entries(&stats.blkio.time),
            "sectorsRecursive": blkio_entries(&stats.blkio.sectors),
        },
        "hugetlb": hugetlb,
    })
}

/// The number of OOM kills the container's memory cgroup has seen (v1 memory.oom_control,
/// v2 memory.events), or None if it cannot be read.
pub fn oom_kills(cgroup_path: &std::path::Path) -> Option<u64> {
    let relative = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
    let root = std::path::Path::new("/sys/fs/cgroup");
    let candidates = [
        root.join("memory")
            .join(relative)
            .join("memory.oom_control"),
        root.join(relative).join("memory.events"),
    ];
    candidates.iter().find_map(|path| {
        let text = std::fs::read_to_string(path).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|v| v.trim().parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_use_runcs_field_names() {
        let mut stats = Stats::default();
        stats.cpu.usage.usage_total = 42;
        stats.memory.memory.limit = 1024;
        stats.pids.current = 3;
        let value = runc_stats(&stats);
        assert_eq!(value["cpu"]["usage"]["total"], 42);
        assert_eq!(value["memory"]["usage"]["limit"], 1024);
        assert_eq!(value["pids"]["current"], 3);
        assert!(value["blkio"]["ioServiceBytesRecursive"].is_array());
        let event = Event {
            kind: "stats".into(),
            id: "c1".into(),
            data: Some(value),
        };
        let line = serde_json::to_string(&event).unwrap();
        assert!(
            line.starts_with(r#"{"type":"stats","id":"c1","data":{"#),
            "{line}"
        );
    }
}
