//! `GET /containers/{id}/stats`: one sample (moby's `types.StatsJSON`). Counters that
//! one cgroup version lacks are left out, as dockerd leaves them out.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `pids_stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PidsStats {
    /// Processes now.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    /// The limit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// One blkio counter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlkioStatEntry {
    /// Device major.
    pub major: u64,
    /// Device minor.
    pub minor: u64,
    /// `Read`, `Write`, ...
    pub op: String,
    /// Value.
    pub value: u64,
}

/// `blkio_stats` (cgroup v2 fills only the first).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlkioStats {
    /// Bytes.
    pub io_service_bytes_recursive: Option<Vec<BlkioStatEntry>>,
    /// Operations.
    pub io_serviced_recursive: Option<Vec<BlkioStatEntry>>,
    /// Queue.
    pub io_queue_recursive: Option<Vec<BlkioStatEntry>>,
    /// Service time.
    pub io_service_time_recursive: Option<Vec<BlkioStatEntry>>,
    /// Wait time.
    pub io_wait_time_recursive: Option<Vec<BlkioStatEntry>>,
    /// Merged.
    pub io_merged_recursive: Option<Vec<BlkioStatEntry>>,
    /// Time.
    pub io_time_recursive: Option<Vec<BlkioStatEntry>>,
    /// Sectors.
    pub sectors_recursive: Option<Vec<BlkioStatEntry>>,
}

/// Windows storage counters (`{}` on Linux).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StorageStats {
    /// Reads.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub read_count_normalized: u64,
    /// Bytes read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub read_size_bytes: u64,
    /// Writes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub write_count_normalized: u64,
    /// Bytes written.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub write_size_bytes: u64,
}

/// `cpu_usage`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUsage {
    /// Nanoseconds in all.
    pub total_usage: u64,
    /// Per CPU (cgroup v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percpu_usage: Option<Vec<u64>>,
    /// Kernel mode, ns.
    pub usage_in_kernelmode: u64,
    /// User mode, ns.
    pub usage_in_usermode: u64,
}

/// `throttling_data`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThrottlingData {
    /// Periods.
    pub periods: u64,
    /// Throttled periods.
    pub throttled_periods: u64,
    /// Throttled ns.
    pub throttled_time: u64,
}

/// `cpu_stats` and `precpu_stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuStats {
    /// Usage.
    pub cpu_usage: CpuUsage,
    /// The host's CPU time, ns.
    #[serde(skip_serializing_if = "is_zero")]
    pub system_cpu_usage: u64,
    /// CPUs online.
    #[serde(skip_serializing_if = "is_zero")]
    pub online_cpus: u64,
    /// Throttling.
    pub throttling_data: ThrottlingData,
}

/// `memory_stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    /// Bytes in use.
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Peak (cgroup v1).
    #[serde(skip_serializing_if = "is_zero")]
    pub max_usage: u64,
    /// The cgroup's counters (`cache`, `rss`, `inactive_file`, ...).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub stats: BTreeMap<String, u64>,
    /// Failures (cgroup v1).
    #[serde(skip_serializing_if = "is_zero")]
    pub failcnt: u64,
    /// The limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// One interface's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkStats {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received and dropped.
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Sent and dropped.
    pub tx_dropped: u64,
}

/// One stats sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// RFC 3339.
    pub read: String,
    /// The previous sample's time.
    pub preread: String,
    /// PIDs.
    pub pids_stats: PidsStats,
    /// Block IO.
    pub blkio_stats: BlkioStats,
    /// Windows only.
    pub num_procs: u32,
    /// Windows only.
    pub storage_stats: StorageStats,
    /// CPU now.
    pub cpu_stats: CpuStats,
    /// CPU at the previous sample.
    pub precpu_stats: CpuStats,
    /// Memory.
    pub memory_stats: MemoryStats,
    /// `/name`.
    pub name: String,
    /// ID.
    pub id: String,
    /// Interfaces (none without a network).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networks: Option<BTreeMap<String, NetworkStats>>,
}
