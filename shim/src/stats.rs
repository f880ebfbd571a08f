//! Task `Stats`: the container's cgroup figures as containerd's metrics messages
//! (io.containerd.cgroups.v1.Metrics on v1/hybrid hosts, v2.Metrics on unified ones),
//! read straight from the cgroup files: no runtime call, no extra process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};

/// The cgroup directories of a process: per v1 controller, and the v2 one if any.
fn cgroup_dirs(pid: u32) -> (HashMap<String, PathBuf>, Option<PathBuf>) {
    let mut v1_dirs = HashMap::new();
    let mut unified = None;
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let path = path.trim_start_matches('/');
        if ctl.is_empty() {
            unified = Some(Path::new("/sys/fs/cgroup").join(path));
            continue;
        }
        for c in ctl.split(',') {
            v1_dirs.insert(
                c.to_string(),
                Path::new("/sys/fs/cgroup").join(c).join(path),
            );
        }
    }
    (v1_dirs, unified)
}

fn read_u64(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// `key value` lines (memory.stat, cpu.stat).
fn read_keyed(path: &Path) -> HashMap<String, u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// `max` or a number (v2 limit files, pids.max).
fn read_limit(path: &Path) -> u64 {
    match std::fs::read_to_string(path) {
        Ok(s) if s.trim() == "max" => u64::MAX,
        Ok(s) => s.trim().parse().unwrap_or(0),
        Err(_) => 0,
    }
}

fn entry(dir: &Path, prefix: &str) -> v1::MemoryEntry {
    let mut e = v1::MemoryEntry::new();
    e.usage = read_u64(&dir.join(format!("{prefix}usage_in_bytes")));
    e.max = read_u64(&dir.join(format!("{prefix}max_usage_in_bytes")));
    e.limit = read_u64(&dir.join(format!("{prefix}limit_in_bytes")));
    e.failcnt = read_u64(&dir.join(format!("{prefix}failcnt")));
    e
}

fn collect_v1(dirs: &HashMap<String, PathBuf>) -> v1::Metrics {
    let mut m = v1::Metrics::new();
    if let Some(dir) = dirs.get("pids") {
        let mut p = v1::PidsStat::new();
        p.current = read_u64(&dir.join("pids.current"));
        p.limit = read_limit(&dir.join("pids.max"));
        m.pids = MessageField::some(p);
    }
    if let Some(dir) = dirs.get("cpuacct") {
        let mut usage = v1::CPUUsage::new();
        usage.total = read_u64(&dir.join("cpuacct.usage"));
        usage.user = read_u64(&dir.join("cpuacct.usage_user"));
        usage.kernel = read_u64(&dir.join("cpuacct.usage_sys"));
        usage.per_cpu = std::fs::read_to_string(dir.join("cpuacct.usage_percpu"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let mut cpu = v1::CPUStat::new();
        cpu.usage = MessageField::some(usage);
        if let Some(cpu_dir) = dirs.get("cpu") {
            let stat = read_keyed(&cpu_dir.join("cpu.stat"));
            let mut t = v1::Throttle::new();
            t.periods = stat.get("nr_periods").copied().unwrap_or(0);
            t.throttled_periods = stat.get("nr_throttled").copied().unwrap_or(0);
            t.throttled_time = stat.get("throttled_time").copied().unwrap_or(0);
            cpu.throttling = MessageField::some(t);
        }
        m.cpu = MessageField::some(cpu);
    }
    if let Some(dir) = dirs.get("memory") {
        let stat = read_keyed(&dir.join("memory.stat"));
        let get = |k: &str| stat.get(k).copied().unwrap_or(0);
        let mut mem = v1::MemoryStat::new();
        mem.cache = get("cache");
        mem.rss = get("rss");
        mem.rss_huge = get("rss_huge");
        mem.mapped_file = get("mapped_file");
        mem.dirty = get("dirty");
        mem.writeback = get("writeback");
        mem.pg_fault = get("pgfault");
        mem.pg_maj_fault = get("pgmajfault");
        mem.inactive_anon = get("inactive_anon");
        mem.active_anon = get("active_anon");
        mem.inactive_file = get("inactive_file");
        mem.active_file = get("active_file");
        mem.unevictable = get("unevictable");
        mem.hierarchical_memory_limit = get("hierarchical_memory_limit");
        mem.total_cache = get("total_cache");
        mem.total_rss = get("total_rss");
        mem.usage = MessageField::some(entry(dir, "memory."));
        mem.swap = MessageField::some(entry(dir, "memory.memsw."));
        mem.kernel = MessageField::some(entry(dir, "memory.kmem."));
        m.memory = MessageField::some(mem);
    }
    m
}

fn collect_v2(dir: &Path) -> v2::Metrics {
    let mut m = v2::Metrics::new();
    let mut p = v2::PidsStat::new();
    p.current = read_u64(&dir.join("pids.current"));
    p.limit = read_limit(&dir.join("pids.max"));
    m.pids = MessageField::some(p);
    let stat = read_keyed(&dir.join("cpu.stat"));
    let get = |k: &str| stat.get(k).copied().unwrap_or(0);
    let mut cpu = v2::CPUStat::new();
    cpu.usage_usec = get("usage_usec");
    cpu.user_usec = get("user_usec");
    cpu.system_usec = get("system_usec");
    cpu.nr_periods = get("nr_periods");
    cpu.nr_throttled = get("nr_throttled");
    cpu.throttled_usec = get("throttled_usec");
    m.cpu = MessageField::some(cpu);
    let mstat = read_keyed(&dir.join("memory.stat"));
    let mget = |k: &str| mstat.get(k).copied().unwrap_or(0);
    let mut mem = v2::MemoryStat::new();
    mem.anon = mget("anon");
    mem.file = mget("file");
    mem.usage = read_u64(&dir.join("memory.current"));
    mem.usage_limit = read_limit(&dir.join("memory.max"));
    mem.swap_usage = read_u64(&dir.join("memory.swap.current"));
    mem.swap_limit = read_limit(&dir.join("memory.swap.max"));
    m.memory = MessageField::some(mem);
    m
}

/// The metrics of the cgroup `pid` is in, packed as containerd unpacks them.
pub fn collect(pid: u32) -> Option<Any> {
    let (v1_dirs, unified) = cgroup_dirs(pid);
    let (type_url, value) = if v1_dirs.contains_key("memory") {
        (
            "io.containerd.cgroups.v1.Metrics",
            collect_v1(&v1_dirs).write_to_bytes().ok()?,
        )
    } else {
        (
            "io.containerd.cgroups.v2.Metrics",
            collect_v2(&unified?).write_to_bytes().ok()?,
        )
    };
    let mut any = Any::new();
    any.type_url = type_url.to_string();
    any.value = value;
    Some(any)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_cgroup_has_figures() {
        let any = collect(std::process::id()).expect("metrics of our own cgroup");
        assert!(any.type_url.starts_with("io.containerd.cgroups.v"));
        if any.type_url.ends_with("v1.Metrics") {
            let m = v1::Metrics::parse_from_bytes(&any.value).unwrap();
            assert!(m.memory.usage.usage > 0);
        } else {
            let m = v2::Metrics::parse_from_bytes(&any.value).unwrap();
            assert!(m.memory.usage > 0);
        }
    }

    #[test]
    fn limits_read_max_as_unlimited() {
        let dir = tempfile_dir();
        std::fs::write(dir.join("pids.max"), "max\n").unwrap();
        std::fs::write(dir.join("memory.max"), "1048576\n").unwrap();
        assert_eq!(read_limit(&dir.join("pids.max")), u64::MAX);
        assert_eq!(read_limit(&dir.join("memory.max")), 1 << 20);
        assert_eq!(read_limit(&dir.join("absent")), 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-shim-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
