//! System: `/version`, `/info`, `/system/df`.

use crate::container::ContainerSummary;
use crate::image::ImageSummary;
use crate::volume::Volume;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

fn is_false(b: &bool) -> bool {
    !*b
}

/// A component in `/version`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComponentVersion {
    /// `Engine`, `containerd`, `runc`, ...
    #[serde(rename = "Name")]
    pub name: String,
    /// Its version.
    #[serde(rename = "Version")]
    pub version: String,
    /// Details (`ApiVersion`, `GitCommit`, ...).
    #[serde(rename = "Details", default, skip_serializing_if = "Option::is_none")]
    pub details: Option<BTreeMap<String, String>>,
}

/// `Platform` in `/version`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Platform {
    /// The product's name.
    #[serde(rename = "Name", default)]
    pub name: String,
}

/// `GET /version`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Version {
    /// Product.
    #[serde(rename = "Platform")]
    pub platform: Platform,
    /// Components.
    #[serde(rename = "Components", skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentVersion>,
    /// Engine version.
    #[serde(rename = "Version")]
    pub version: String,
    /// Highest API version.
    #[serde(rename = "ApiVersion")]
    pub api_version: String,
    /// Lowest API version.
    #[serde(rename = "MinAPIVersion", skip_serializing_if = "String::is_empty")]
    pub min_api_version: String,
    /// Commit.
    #[serde(rename = "GitCommit")]
    pub git_commit: String,
    /// Compiler (dockerd: Go's version; berthd: Rust's).
    #[serde(rename = "GoVersion")]
    pub go_version: String,
    /// `linux`.
    #[serde(rename = "Os")]
    pub os: String,
    /// `amd64`, ...
    #[serde(rename = "Arch")]
    pub arch: String,
    /// Kernel release.
    #[serde(rename = "KernelVersion", skip_serializing_if = "String::is_empty")]
    pub kernel_version: String,
    /// Experimental features on.
    #[serde(rename = "Experimental", skip_serializing_if = "is_false")]
    pub experimental: bool,
    /// Build time.
    #[serde(rename = "BuildTime", skip_serializing_if = "String::is_empty")]
    pub build_time: String,
}

/// `Plugins` in `/info`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PluginsInfo {
    /// Volume drivers.
    #[serde(rename = "Volume")]
    pub volume: Option<Vec<String>>,
    /// Network drivers.
    #[serde(rename = "Network")]
    pub network: Option<Vec<String>>,
    /// Authorization plugins.
    #[serde(rename = "Authorization")]
    pub authorization: Option<Vec<String>>,
    /// Log drivers.
    #[serde(rename = "Log")]
    pub log: Option<Vec<String>>,
}

/// A commit of a component (`ContainerdCommit`, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    /// The commit found.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// The commit expected.
    #[serde(rename = "Expected", default)]
    pub expected: String,
}

/// A runtime in `/info`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Runtime {
    /// Its binary.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Its arguments.
    #[serde(rename = "runtimeArgs", default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// A registry's settings in `/info`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IndexInfo {
    /// Name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Mirrors.
    #[serde(rename = "Mirrors")]
    pub mirrors: Vec<String>,
    /// TLS verified.
    #[serde(rename = "Secure")]
    pub secure: bool,
    /// Docker Hub.
    #[serde(rename = "Official")]
    pub official: bool,
}

/// `RegistryConfig` in `/info`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistryConfig {
    /// Deprecated.
    #[serde(rename = "AllowNondistributableArtifactsCIDRs")]
    pub allow_nondistributable_artifacts_cidrs: Option<Vec<String>>,
    /// Deprecated.
    #[serde(rename = "AllowNondistributableArtifactsHostnames")]
    pub allow_nondistributable_artifacts_hostnames: Option<Vec<String>>,
    /// Insecure registries by network.
    #[serde(rename = "InsecureRegistryCIDRs")]
    pub insecure_registry_cidrs: Option<Vec<String>>,
    /// Registries.
    #[serde(rename = "IndexConfigs")]
    pub index_configs: BTreeMap<String, IndexInfo>,
    /// Mirrors.
    #[serde(rename = "Mirrors")]
    pub mirrors: Option<Vec<String>>,
}

/// `Swarm` in `/info` (berthd has no swarm: `inactive`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SwarmInfo {
    /// Node ID.
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// Node address.
    #[serde(rename = "NodeAddr")]
    pub node_addr: String,
    /// `inactive`.
    #[serde(rename = "LocalNodeState")]
    pub local_node_state: String,
    /// Manager.
    #[serde(rename = "ControlAvailable")]
    pub control_available: bool,
    /// Error.
    #[serde(rename = "Error")]
    pub error: String,
    /// Managers.
    #[serde(rename = "RemoteManagers")]
    pub remote_managers: Option<Vec<serde_json::Value>>,
}

/// `GET /info`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Info {
    /// Daemon ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Containers.
    #[serde(rename = "Containers")]
    pub containers: i64,
    /// Running.
    #[serde(rename = "ContainersRunning")]
    pub containers_running: i64,
    /// Paused.
    #[serde(rename = "ContainersPaused")]
    pub containers_paused: i64,
    /// Stopped.
    #[serde(rename = "ContainersStopped")]
    pub containers_stopped: i64,
    /// Images.
    #[serde(rename = "Images")]
    pub images: i64,
    /// Storage driver.
    #[serde(rename = "Driver")]
    pub driver: String,
    /// Its status lines.
    #[serde(rename = "DriverStatus")]
    pub driver_status: Option<Vec<[String; 2]>>,
    /// Swarm standalone only.
    #[serde(rename = "SystemStatus", skip_serializing_if = "Option::is_none")]
    pub system_status: Option<Vec<[String; 2]>>,
    /// Plugins.
    #[serde(rename = "Plugins")]
    pub plugins: PluginsInfo,
    /// Memory limits work.
    #[serde(rename = "MemoryLimit")]
    pub memory_limit: bool,
    /// Swap limits work.
    #[serde(rename = "SwapLimit")]
    pub swap_limit: bool,
    /// Kernel memory limits work.
    #[serde(rename = "KernelMemory", skip_serializing_if = "is_false")]
    pub kernel_memory: bool,
    /// Kernel TCP memory limits work.
    #[serde(rename = "KernelMemoryTCP", skip_serializing_if = "is_false")]
    pub kernel_memory_tcp: bool,
    /// CFS period works.
    #[serde(rename = "CpuCfsPeriod")]
    pub cpu_cfs_period: bool,
    /// CFS quota works.
    #[serde(rename = "CpuCfsQuota")]
    pub cpu_cfs_quota: bool,
    /// CPU shares work.
    #[serde(rename = "CPUShares")]
    pub cpu_shares: bool,
    /// cpusets work.
    #[serde(rename = "CPUSet")]
    pub cpu_set: bool,
    /// PIDs limits work.
    #[serde(rename = "PidsLimit")]
    pub pids_limit: bool,
    /// IPv4 forwarding on.
    #[serde(rename = "IPv4Forwarding")]
    pub ipv4_forwarding: bool,
    /// bridge-nf-call-iptables.
    #[serde(rename = "BridgeNfIptables")]
    pub bridge_nf_iptables: bool,
    /// bridge-nf-call-ip6tables.
    #[serde(rename = "BridgeNfIp6tables")]
    pub bridge_nf_ip6tables: bool,
    /// Debug logging.
    #[serde(rename = "Debug")]
    pub debug: bool,
    /// Open descriptors.
    #[serde(rename = "NFd")]
    pub nfd: i64,
    /// OOM-killer disabling works.
    #[serde(rename = "OomKillDisable")]
    pub oom_kill_disable: bool,
    /// Goroutines (berthd: tasks or threads).
    #[serde(rename = "NGoroutines")]
    pub ngoroutines: i64,
    /// RFC 3339.
    #[serde(rename = "SystemTime")]
    pub system_time: String,
    /// Default log driver.
    #[serde(rename = "LoggingDriver")]
    pub logging_driver: String,
    /// `cgroupfs` or `systemd`.
    #[serde(rename = "CgroupDriver")]
    pub cgroup_driver: String,
    /// `1` or `2`.
    #[serde(rename = "CgroupVersion", skip_serializing_if = "String::is_empty")]
    pub cgroup_version: String,
    /// Event listeners.
    #[serde(rename = "NEventsListener")]
    pub nevents_listener: i64,
    /// Kernel release.
    #[serde(rename = "KernelVersion")]
    pub kernel_version: String,
    /// OS name.
    #[serde(rename = "OperatingSystem")]
    pub operating_system: String,
    /// OS version.
    #[serde(rename = "OSVersion")]
    pub os_version: String,
    /// `linux`.
    #[serde(rename = "OSType")]
    pub os_type: String,
    /// `x86_64`, ...
    #[serde(rename = "Architecture")]
    pub architecture: String,
    /// Default registry.
    #[serde(rename = "IndexServerAddress")]
    pub index_server_address: String,
    /// Registries.
    #[serde(rename = "RegistryConfig")]
    pub registry_config: Option<RegistryConfig>,
    /// CPUs.
    #[serde(rename = "NCPU")]
    pub ncpu: i64,
    /// Memory bytes.
    #[serde(rename = "MemTotal")]
    pub mem_total: i64,
    /// Swarm resources.
    #[serde(rename = "GenericResources")]
    pub generic_resources: Option<Vec<serde_json::Value>>,
    /// Data root.
    #[serde(rename = "DockerRootDir")]
    pub docker_root_dir: String,
    /// Proxy.
    #[serde(rename = "HttpProxy")]
    pub http_proxy: String,
    /// Proxy.
    #[serde(rename = "HttpsProxy")]
    pub https_proxy: String,
    /// Proxy exceptions.
    #[serde(rename = "NoProxy")]
    pub no_proxy: String,
    /// Host name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Daemon labels.
    #[serde(rename = "Labels")]
    pub labels: Vec<String>,
    /// Experimental build.
    #[serde(rename = "ExperimentalBuild")]
    pub experimental_build: bool,
    /// Engine version.
    #[serde(rename = "ServerVersion")]
    pub server_version: String,
    /// Runtimes by name.
    #[serde(rename = "Runtimes")]
    pub runtimes: BTreeMap<String, Runtime>,
    /// Default runtime.
    #[serde(rename = "DefaultRuntime")]
    pub default_runtime: String,
    /// Swarm.
    #[serde(rename = "Swarm")]
    pub swarm: SwarmInfo,
    /// Live restore.
    #[serde(rename = "LiveRestoreEnabled")]
    pub live_restore_enabled: bool,
    /// Isolation.
    #[serde(rename = "Isolation")]
    pub isolation: String,
    /// `docker-init`.
    #[serde(rename = "InitBinary")]
    pub init_binary: String,
    /// containerd's commit.
    #[serde(rename = "ContainerdCommit")]
    pub containerd_commit: Commit,
    /// runc's commit.
    #[serde(rename = "RuncCommit")]
    pub runc_commit: Commit,
    /// init's commit.
    #[serde(rename = "InitCommit")]
    pub init_commit: Commit,
    /// `name=seccomp,profile=default`, ...
    #[serde(rename = "SecurityOptions")]
    pub security_options: Vec<String>,
    /// License.
    #[serde(rename = "ProductLicense", skip_serializing_if = "String::is_empty")]
    pub product_license: String,
    /// Warnings.
    #[serde(rename = "Warnings")]
    pub warnings: Option<Vec<String>>,
}

/// A build cache record in `system df`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BuildCache {
    /// ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Parent.
    #[serde(rename = "Parent", skip_serializing_if = "String::is_empty")]
    pub parent: String,
    /// Kind.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Description.
    #[serde(rename = "Description")]
    pub description: String,
    /// In use.
    #[serde(rename = "InUse")]
    pub in_use: bool,
    /// Shared.
    #[serde(rename = "Shared")]
    pub shared: bool,
    /// Bytes.
    #[serde(rename = "Size")]
    pub size: i64,
    /// RFC 3339.
    #[serde(rename = "CreatedAt")]
    pub created_at: String,
    /// RFC 3339.
    #[serde(rename = "LastUsedAt")]
    pub last_used_at: Option<String>,
    /// Uses.
    #[serde(rename = "UsageCount")]
    pub usage_count: i64,
}

/// `GET /system/df`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiskUsage {
    /// Bytes of every layer.
    #[serde(rename = "LayersSize")]
    pub layers_size: i64,
    /// Images.
    #[serde(rename = "Images")]
    pub images: Option<Vec<ImageSummary>>,
    /// Containers.
    #[serde(rename = "Containers")]
    pub containers: Option<Vec<ContainerSummary>>,
    /// Volumes.
    #[serde(rename = "Volumes")]
    pub volumes: Option<Vec<Volume>>,
    /// Build cache.
    #[serde(rename = "BuildCache")]
    pub build_cache: Option<Vec<BuildCache>>,
    /// Deprecated (dockerd 20.10 still writes it, 0).
    #[serde(rename = "BuilderSize")]
    pub builder_size: i64,
}
