//! `docker stats`: a container's resource usage read from its cgroups (v1 controllers
//! where mounted, else the unified v2 hierarchy), in Docker's stats JSON.

use serde_json::{json, Value};
use std::path::PathBuf;

/// One sample of the numbers Docker's stats need.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// When (RFC 3339).
    pub read: String,
    /// Container CPU time, ns.
    pub cpu_ns: u64,
    /// Host CPU time, ns (from /proc/stat).
    pub system_ns: u64,
    /// Memory used, bytes.
    pub mem_usage: u64,
    /// Memory limit (the host's memory when unlimited).
    pub mem_limit: u64,
    /// Processes.
    pub pids: u64,
    /// Process limit (0: none).
    pub pids_limit: u64,
}

fn read_u64(p: PathBuf) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn cgroup_paths(pid: u32) -> Vec<(String, String)> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctl, path) = (f.next()?, f.next()?, f.next()?);
            Some((ctl.to_string(), path.to_string()))
        })
        .collect()
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn system_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    // USER_HZ is 100 on Linux.
    ticks * 10_000_000
}

/// Samples the cgroups of the process `pid`.
pub fn sample(pid: u32) -> Sample {
    let paths = cgroup_paths(pid);
    let v1 = |ctl: &str| {
        paths
            .iter()
            .find(|(c, _)| c.split(',').any(|x| x == ctl))
            .map(|(_, p)| PathBuf::from(format!("/sys/fs/cgroup/{ctl}{p}")))
    };
    let v2 = paths
        .iter()
        .find(|(c, _)| c.is_empty())
        .map(|(_, p)| PathBuf::from(format!("/sys/fs/cgroup{p}")));
    let host_mem = host_memory();
    let mut s = Sample {
        read: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        system_ns: system_ns(),
        mem_limit: host_mem,
        ..Default::default()
    };
    if let Some(m) = v1("memory") {
        s.mem_usage = read_u64(m.join("memory.usage_in_bytes")).unwrap_or(0);
        if let Some(l) = read_u64(m.join("memory.limit_in_bytes")) {
            s.mem_limit = l.min(host_mem);
        }
    } else if let Some(d) = &v2 {
        s.mem_usage = read_u64(d.join("memory.current")).unwrap_or(0);
        if let Some(l) = read_u64(d.join("memory.max")) {
            s.mem_limit = l.min(host_mem);
        }
    }
    if let Some(c) = v1("cpuacct") {
        s.cpu_ns = read_u64(c.join("cpuacct.usage")).unwrap_or(0);
    } else if let Some(d) = &v2 {
        s.cpu_ns = std::fs::read_to_string(d.join("cpu.stat"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|us| us * 1000)
            .unwrap_or(0);
    }
    let pids_dir = v1("pids").or(v2);
    if let Some(p) = pids_dir {
        s.pids = read_u64(p.join("pids.current")).unwrap_or(0);
        s.pids_limit = read_u64(p.join("pids.max")).unwrap_or(0);
    }
    s
}

fn cpu_json(s: &Sample, cpus: usize) -> Value {
    json!({
        "cpu_usage": {"total_usage": s.cpu_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "system_cpu_usage": s.system_ns,
        "online_cpus": cpus,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    })
}

/// Docker's stats JSON from this sample and the one before.
pub fn to_json(id: &str, name: &str, now: &Sample, pre: Option<&Sample>) -> Value {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let empty = Sample::default();
    let p = pre.unwrap_or(&empty);
    json!({
        "read": now.read,
        "preread": if pre.is_some() { p.read.clone() } else { "0001-01-01T00:00:00Z".to_string() },
        "pids_stats": if now.pids_limit > 0 { json!({"current": now.pids, "limit": now.pids_limit}) } else { json!({"current": now.pids}) },
        "blkio_stats": {"io_service_bytes_recursive": null, "io_serviced_recursive": null},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(now, cpus),
        "precpu_stats": if pre.is_some() { cpu_json(p, cpus) } else { json!({"cpu_usage": {"total_usage": 0}, "throttling_data": {}}) },
        "memory_stats": {"usage": now.mem_usage, "limit": now.mem_limit, "stats": {}},
        "name": format!("/{name}"),
        "id": id,
    })
}
