//! What this host can do for containers, as dockerd's `sysinfo` finds it: CPUs, cpusets
//! and which cgroup controllers and files work. Read once at start (blocking); berth-api's
//! checks decide with them.

use berth_api::validate::HostFacts;
use std::path::Path;

fn exists(p: &str) -> bool {
    Path::new(p).exists()
}

fn first_line(p: &str) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.lines().next().map(|l| l.trim().to_string()))
        .filter(|s| !s.is_empty())
}

/// The host's facts. Blocking.
pub fn gather() -> HostFacts {
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let mut f = HostFacts::capable(ncpu);
    let v2 = exists("/sys/fs/cgroup/cgroup.controllers");
    if v2 {
        let controllers = first_line("/sys/fs/cgroup/cgroup.controllers").unwrap_or_default();
        let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
        f.cgroup_v2 = true;
        f.memory_limit = has("memory");
        f.swap_limit = has("memory");
        f.memory_reservation = has("memory");
        // cgroup v2 has neither swappiness, kernel memory nor an OOM-killer switch.
        f.memory_swappiness = false;
        f.kernel_memory = false;
        f.oom_kill_disable = false;
        f.pids_limit = has("pids");
        f.cpu_cfs = has("cpu");
        f.cpu_shares = has("cpu");
        f.cpu_realtime = false;
        f.cpuset = has("cpuset");
        let io = has("io");
        f.blkio_weight = io;
        f.blkio_weight_device = io;
        f.blkio_read_bps = io;
        f.blkio_write_bps = io;
        f.blkio_read_iops = io;
        f.blkio_write_iops = io;
        if let Some(c) = first_line("/sys/fs/cgroup/cpuset.cpus.effective") {
            f.cpus = c;
        }
        if let Some(m) = first_line("/sys/fs/cgroup/cpuset.mems.effective") {
            f.mems = m;
        }
    } else {
        let m = "/sys/fs/cgroup/memory";
        f.memory_limit = exists(&format!("{m}/memory.limit_in_bytes"));
        f.swap_limit = exists(&format!("{m}/memory.memsw.limit_in_bytes"));
        f.memory_reservation = exists(&format!("{m}/memory.soft_limit_in_bytes"));
        f.memory_swappiness = exists(&format!("{m}/memory.swappiness"));
        f.kernel_memory = exists(&format!("{m}/memory.kmem.limit_in_bytes"));
        f.oom_kill_disable = exists(&format!("{m}/memory.oom_control"));
        // The root cgroup has no pids.max: the controller's hierarchy is what counts.
        f.pids_limit = exists("/sys/fs/cgroup/pids/cgroup.procs");
        let cpu = "/sys/fs/cgroup/cpu";
        f.cpu_cfs = exists(&format!("{cpu}/cpu.cfs_quota_us"));
        f.cpu_shares = exists(&format!("{cpu}/cpu.shares"));
        f.cpu_realtime = exists(&format!("{cpu}/cpu.rt_runtime_us"));
        f.cpuset = exists("/sys/fs/cgroup/cpuset/cpuset.cpus");
        let b = "/sys/fs/cgroup/blkio";
        f.blkio_weight = exists(&format!("{b}/blkio.weight"));
        f.blkio_weight_device = exists(&format!("{b}/blkio.weight_device"));
        f.blkio_read_bps = exists(&format!("{b}/blkio.throttle.read_bps_device"));
        f.blkio_write_bps = exists(&format!("{b}/blkio.throttle.write_bps_device"));
        f.blkio_read_iops = exists(&format!("{b}/blkio.throttle.read_iops_device"));
        f.blkio_write_iops = exists(&format!("{b}/blkio.throttle.write_iops_device"));
        if let Some(c) = first_line("/sys/fs/cgroup/cpuset/cpuset.cpus") {
            f.cpus = c;
        }
        if let Some(m) = first_line("/sys/fs/cgroup/cpuset/cpuset.mems") {
            f.mems = m;
        }
    }
    f.cgroup_namespaces = exists("/proc/self/ns/cgroup");
    f
}
