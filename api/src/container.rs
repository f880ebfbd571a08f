//! Containers: the create request (Config, HostConfig with its Resources, ...), update,
//! and what dockerd answers about containers (inspect, list, wait, top, changes).
//!
//! Field types follow what dockerd's Go structs serialize: a Go value field is a plain
//! Rust field (always written), a Go slice, map or pointer without `omitempty` is an
//! `Option` (written `null` when absent, as dockerd writes it: clients such as docker-py
//! index into these objects and expect the keys), and an `omitempty` one is skipped
//! when empty. Maps are `BTreeMap`s: Go writes map keys sorted.

use crate::json::GoStruct;
use crate::json::{Ty, CONSOLE_SIZE, DURATION, I64, INT, STRINGS, STR_MAP, U16, U64};
use crate::mount::Mount;
use crate::network::{EndpointSettings, NetworkingConfig};
use crate::state::{HealthStatus, Status};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `struct {}`: the values of Docker's sets (`ExposedPorts`, `Volumes`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// `nat.PortSet`: `"80/tcp"` → `{}`.
pub type PortSet = BTreeMap<String, Empty>;

/// `nat.PortMap`: `"80/tcp"` → the host bindings (`null` when exposed but not bound).
pub type PortMap = BTreeMap<String, Option<Vec<PortBinding>>>;

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Declares a Go string type: a transparent newtype with Go's predicates.
macro_rules! go_string {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The value as given.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// Whether nothing was given.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
            /// `host`.
            pub fn is_host(&self) -> bool {
                self.0 == "host"
            }
            /// The container named by `container:NAME`, if that is the form.
            pub fn container(&self) -> Option<&str> {
                self.0.strip_prefix("container:")
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

go_string!(
    /// `NetworkMode`: `none`, `host`, `bridge`, `default`, `container:NAME`, or a network.
    NetworkMode
);
go_string!(
    /// `IpcMode`: ``, `none`, `private`, `shareable`, `host`, `container:NAME`.
    IpcMode
);
go_string!(
    /// `PidMode`: ``, `host`, `container:NAME`.
    PidMode
);
go_string!(
    /// `UTSMode`: `` or `host`.
    UtsMode
);
go_string!(
    /// `UsernsMode`: `` or `host`.
    UsernsMode
);
go_string!(
    /// `CgroupnsMode`: ``, `private`, `host`.
    CgroupnsMode
);
go_string!(
    /// `CgroupSpec` (`HostConfig.Cgroup`): `` or `container:NAME`.
    CgroupSpec
);
go_string!(
    /// `Isolation`: `` or `default` on Linux.
    Isolation
);

impl NetworkMode {
    /// `none`.
    pub fn is_none(&self) -> bool {
        self.0 == "none"
    }
    /// `bridge`.
    pub fn is_bridge(&self) -> bool {
        self.0 == "bridge"
    }
    /// `default` (the daemon's default network).
    pub fn is_default(&self) -> bool {
        self.0 == "default"
    }
    /// A network of its own, neither a predefined mode nor a container's.
    pub fn is_user_defined(&self) -> bool {
        !self.is_empty()
            && !self.is_default()
            && !self.is_bridge()
            && !self.is_host()
            && !self.is_none()
            && self.container().is_none()
    }
    /// The network's name as inspect keys it (`NetworkSettings.Networks`).
    pub fn network_name(&self) -> &str {
        if self.container().is_some() {
            "container"
        } else {
            &self.0
        }
    }
}

impl IpcMode {
    /// Whether dockerd knows the mode.
    pub fn valid(&self) -> bool {
        matches!(
            self.0.as_str(),
            "" | "none" | "private" | "host" | "shareable"
        ) || self.container().is_some()
    }
}

impl PidMode {
    /// Whether dockerd knows the mode (`container:` needs a name).
    pub fn valid(&self) -> bool {
        self.0.is_empty() || self.is_host() || self.container().is_some_and(|c| !c.is_empty())
    }
}

impl UtsMode {
    /// Whether dockerd knows the mode.
    pub fn valid(&self) -> bool {
        self.0.is_empty() || self.is_host()
    }
}

impl UsernsMode {
    /// Whether dockerd knows the mode.
    pub fn valid(&self) -> bool {
        self.0.is_empty() || self.is_host()
    }
}

impl CgroupnsMode {
    /// `private`.
    pub fn is_private(&self) -> bool {
        self.0 == "private"
    }
    /// Whether dockerd knows the mode.
    pub fn valid(&self) -> bool {
        self.0.is_empty() || self.is_private() || self.is_host()
    }
}

impl Isolation {
    /// Whether it is Linux's only isolation (`` or `default`, any case).
    pub fn is_default(&self) -> bool {
        self.0.is_empty() || self.0.eq_ignore_ascii_case("default")
    }
}

go_struct! {
    /// `container.HealthConfig`: a health check (durations in nanoseconds; 0 means the
    /// image's or the default).
    pub struct HealthConfig = "container.HealthConfig" {
        /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        test: Vec<String> = "Test": STRINGS,
        /// Between checks.
        #[serde(skip_serializing_if = "is_zero")]
        interval: i64 = "Interval": DURATION,
        /// Before a check counts as hung.
        #[serde(skip_serializing_if = "is_zero")]
        timeout: i64 = "Timeout": DURATION,
        /// Grace period after start during which failures do not count.
        #[serde(skip_serializing_if = "is_zero")]
        start_period: i64 = "StartPeriod": DURATION,
        /// Between checks during the start period (API 1.44; kept when given).
        #[serde(skip_serializing_if = "is_zero")]
        start_interval: i64 = "StartInterval": DURATION,
        /// Consecutive failures that make it unhealthy.
        #[serde(skip_serializing_if = "is_zero")]
        retries: i64 = "Retries": INT,
    }
}

go_struct! {
    /// `container.Config`: what is portable about a container (the image's config has
    /// the same shape).
    pub struct Config = "container.Config" {
        /// Hostname.
        hostname: String = "Hostname": Ty::Str,
        /// Domain name.
        domainname: String = "Domainname": Ty::Str,
        /// `user`, `user:group`, `uid:gid`.
        user: String = "User": Ty::Str,
        /// Attach stdin.
        attach_stdin: bool = "AttachStdin": Ty::Bool,
        /// Attach stdout.
        attach_stdout: bool = "AttachStdout": Ty::Bool,
        /// Attach stderr.
        attach_stderr: bool = "AttachStderr": Ty::Bool,
        /// Exposed ports (`80/tcp`).
        #[serde(skip_serializing_if = "PortSet::is_empty")]
        exposed_ports: PortSet = "ExposedPorts": Ty::Map("nat.PortSet", &Ty::Empty),
        /// Allocate a terminal.
        tty: bool = "Tty": Ty::Bool,
        /// Keep stdin open.
        open_stdin: bool = "OpenStdin": Ty::Bool,
        /// Close stdin when the first attached client detaches.
        stdin_once: bool = "StdinOnce": Ty::Bool,
        /// `KEY=value`.
        env: Option<Vec<String>> = "Env": STRINGS,
        /// The command (a string is one argument, as dockerd's StrSlice).
        cmd: Option<Vec<String>> = "Cmd": Ty::StrSlice,
        /// Health check.
        #[serde(skip_serializing_if = "Option::is_none")]
        healthcheck: Option<HealthConfig> = "Healthcheck": Ty::Struct(&HealthConfig::SCHEMA),
        /// Windows only.
        #[serde(skip_serializing_if = "is_false")]
        args_escaped: bool = "ArgsEscaped": Ty::Bool,
        /// The image as the client named it.
        image: String = "Image": Ty::Str,
        /// Anonymous volumes (`/data` → `{}`).
        volumes: Option<BTreeMap<String, Empty>> = "Volumes": Ty::Map("map[string]struct {}", &Ty::Empty),
        /// Working directory.
        working_dir: String = "WorkingDir": Ty::Str,
        /// Entrypoint (`[""]` clears the image's).
        entrypoint: Option<Vec<String>> = "Entrypoint": Ty::StrSlice,
        /// No network.
        #[serde(skip_serializing_if = "is_false")]
        network_disabled: bool = "NetworkDisabled": Ty::Bool,
        /// MAC address.
        #[serde(skip_serializing_if = "String::is_empty")]
        mac_address: String = "MacAddress": Ty::Str,
        /// ONBUILD triggers.
        on_build: Option<Vec<String>> = "OnBuild": STRINGS,
        /// Labels.
        labels: Option<BTreeMap<String, String>> = "Labels": STR_MAP,
        /// Stop signal (`SIGTERM`, `9`, ...).
        #[serde(skip_serializing_if = "String::is_empty")]
        stop_signal: String = "StopSignal": Ty::Str,
        /// Seconds to wait before killing on stop.
        #[serde(skip_serializing_if = "Option::is_none")]
        stop_timeout: Option<i64> = "StopTimeout": INT,
        /// Shell for shell-form commands.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        shell: Vec<String> = "Shell": Ty::StrSlice,
    }
}

go_struct! {
    /// `container.RestartPolicy`.
    pub struct RestartPolicy = "container.RestartPolicy" {
        /// ``, `no`, `always`, `unless-stopped`, `on-failure`.
        name: String = "Name": Ty::Str,
        /// Retries for `on-failure` (0: unlimited).
        maximum_retry_count: i64 = "MaximumRetryCount": INT,
    }
}

/// A restart policy's kind, once validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartKind {
    /// `` or `no`.
    No,
    /// `always`.
    Always,
    /// `unless-stopped`.
    UnlessStopped,
    /// `on-failure`.
    OnFailure,
}

impl RestartPolicy {
    /// The policy's kind, or `None` for a name dockerd does not know.
    pub fn kind(&self) -> Option<RestartKind> {
        Some(match self.name.as_str() {
            "" | "no" => RestartKind::No,
            "always" => RestartKind::Always,
            "unless-stopped" => RestartKind::UnlessStopped,
            "on-failure" => RestartKind::OnFailure,
            _ => return None,
        })
    }
    /// Whether it never restarts.
    pub fn is_none(&self) -> bool {
        matches!(self.kind(), Some(RestartKind::No))
    }
}

go_struct! {
    /// `container.LogConfig`.
    pub struct LogConfig = "container.LogConfig" {
        /// The driver (`json-file`, `local`, `none`, ...).
        kind: String = "Type": Ty::Str,
        /// Driver options (`max-size`, `max-file`, ...).
        config: Option<BTreeMap<String, String>> = "Config": STR_MAP,
    }
}

go_struct! {
    /// `container.DeviceMapping`: a host device made in the container.
    pub struct DeviceMapping = "container.DeviceMapping" {
        /// Host path.
        path_on_host: String = "PathOnHost": Ty::Str,
        /// Container path.
        path_in_container: String = "PathInContainer": Ty::Str,
        /// `rwm`.
        cgroup_permissions: String = "CgroupPermissions": Ty::Str,
    }
}

go_struct! {
    /// `container.DeviceRequest`: devices from a device driver (GPUs).
    pub struct DeviceRequest = "container.DeviceRequest" {
        /// Driver.
        driver: String = "Driver": Ty::Str,
        /// How many (-1: all).
        count: i64 = "Count": INT,
        /// Device IDs.
        device_ids: Option<Vec<String>> = "DeviceIDs": STRINGS,
        /// OR of AND lists of capabilities.
        capabilities: Option<Vec<Vec<String>>> = "Capabilities": Ty::List("[][]string", &STRINGS),
        /// Driver options.
        options: Option<BTreeMap<String, String>> = "Options": STR_MAP,
    }
}

go_struct! {
    /// `units.Ulimit`.
    pub struct Ulimit = "units.Ulimit" {
        /// `nofile`, `nproc`, ...
        name: String = "Name": Ty::Str,
        /// Hard limit.
        hard: i64 = "Hard": I64,
        /// Soft limit.
        soft: i64 = "Soft": I64,
    }
}

go_struct! {
    /// `blkiodev.WeightDevice`.
    pub struct WeightDevice = "blkiodev.WeightDevice" {
        /// Device path.
        path: String = "Path": Ty::Str,
        /// Weight.
        weight: u16 = "Weight": U16,
    }
}

go_struct! {
    /// `blkiodev.ThrottleDevice`.
    pub struct ThrottleDevice = "blkiodev.ThrottleDevice" {
        /// Device path.
        path: String = "Path": Ty::Str,
        /// Bytes or operations per second.
        rate: u64 = "Rate": U64,
    }
}

const THROTTLE: Ty = Ty::List(
    "[]*blkiodev.ThrottleDevice",
    &Ty::Struct(&ThrottleDevice::SCHEMA),
);

go_struct! {
    /// `container.Resources`: limits, embedded in HostConfig and UpdateConfig.
    pub struct Resources = "container.Resources" {
        /// Relative CPU weight.
        cpu_shares: i64 = "CpuShares": I64,
        /// Memory limit, bytes.
        memory: i64 = "Memory": I64,
        /// CPUs in 10^-9 units (`--cpus`).
        nano_cpus: i64 = "NanoCpus": I64,
        /// Parent cgroup.
        cgroup_parent: String = "CgroupParent": Ty::Str,
        /// Block IO weight (10-1000).
        blkio_weight: u16 = "BlkioWeight": U16,
        /// Per-device weights.
        blkio_weight_device: Option<Vec<WeightDevice>> = "BlkioWeightDevice":
            Ty::List("[]*blkiodev.WeightDevice", &Ty::Struct(&WeightDevice::SCHEMA)),
        /// Read bytes/s limits.
        blkio_device_read_bps: Option<Vec<ThrottleDevice>> = "BlkioDeviceReadBps": THROTTLE,
        /// Write bytes/s limits.
        blkio_device_write_bps: Option<Vec<ThrottleDevice>> = "BlkioDeviceWriteBps": THROTTLE,
        /// Read IO/s limits.
        blkio_device_read_iops: Option<Vec<ThrottleDevice>> = "BlkioDeviceReadIOps": THROTTLE,
        /// Write IO/s limits.
        blkio_device_write_iops: Option<Vec<ThrottleDevice>> = "BlkioDeviceWriteIOps": THROTTLE,
        /// CFS period, µs.
        cpu_period: i64 = "CpuPeriod": I64,
        /// CFS quota, µs.
        cpu_quota: i64 = "CpuQuota": I64,
        /// Real-time period, µs.
        cpu_realtime_period: i64 = "CpuRealtimePeriod": I64,
        /// Real-time runtime, µs.
        cpu_realtime_runtime: i64 = "CpuRealtimeRuntime": I64,
        /// CPUs allowed (`0-2`, `0,1`).
        cpuset_cpus: String = "CpusetCpus": Ty::Str,
        /// Memory nodes allowed.
        cpuset_mems: String = "CpusetMems": Ty::Str,
        /// Devices.
        devices: Option<Vec<DeviceMapping>> = "Devices":
            Ty::List("[]container.DeviceMapping", &Ty::Struct(&DeviceMapping::SCHEMA)),
        /// Device cgroup rules (`c 1:3 rwm`).
        device_cgroup_rules: Option<Vec<String>> = "DeviceCgroupRules": STRINGS,
        /// Device driver requests.
        device_requests: Option<Vec<DeviceRequest>> = "DeviceRequests":
            Ty::List("[]container.DeviceRequest", &Ty::Struct(&DeviceRequest::SCHEMA)),
        /// Kernel memory limit (deprecated).
        kernel_memory: i64 = "KernelMemory": I64,
        /// Kernel TCP memory limit.
        kernel_memory_tcp: i64 = "KernelMemoryTCP": I64,
        /// Soft memory limit.
        memory_reservation: i64 = "MemoryReservation": I64,
        /// Memory + swap (-1: unlimited swap).
        memory_swap: i64 = "MemorySwap": I64,
        /// 0-100.
        memory_swappiness: Option<i64> = "MemorySwappiness": I64,
        /// Disable the OOM killer.
        oom_kill_disable: Option<bool> = "OomKillDisable": Ty::Bool,
        /// PIDs limit (0 or -1: unlimited; null: unchanged).
        pids_limit: Option<i64> = "PidsLimit": I64,
        /// Rlimits.
        ulimits: Option<Vec<Ulimit>> = "Ulimits": Ty::List("[]*units.Ulimit", &Ty::Struct(&Ulimit::SCHEMA)),
        /// Windows only.
        cpu_count: i64 = "CpuCount": I64,
        /// Windows only.
        cpu_percent: i64 = "CpuPercent": I64,
        /// Windows only.
        io_maximum_iops: u64 = "IOMaximumIOps": U64,
        /// Windows only.
        io_maximum_bandwidth: u64 = "IOMaximumBandwidth": U64,
    }
}

go_struct! {
    /// `nat.PortBinding`.
    pub struct PortBinding = "nat.PortBinding" {
        /// Host address (empty: all).
        host_ip: String = "HostIp": Ty::Str,
        /// Host port or range (empty: any).
        host_port: String = "HostPort": Ty::Str,
    }
}

go_struct! {
    /// `container.HostConfig`: what is not portable about a container.
    pub struct HostConfig = "container.HostConfig" embeds {
        /// The limits (Go embeds them: their fields sit beside these).
        resources: Resources,
    } {
        /// `-v` specs (`src:dst[:mode]`).
        binds: Option<Vec<String>> = "Binds": STRINGS,
        /// Where the client writes the ID.
        container_id_file: String = "ContainerIDFile": Ty::Str,
        /// Log driver.
        log_config: LogConfig = "LogConfig": Ty::Struct(&LogConfig::SCHEMA),
        /// Network mode.
        network_mode: NetworkMode = "NetworkMode": Ty::Str,
        /// Published ports.
        port_bindings: Option<PortMap> = "PortBindings": Ty::Map(
            "nat.PortMap",
            &Ty::Nullable(&Ty::List("[]nat.PortBinding", &Ty::Struct(&PortBinding::SCHEMA)))
        ),
        /// Restart policy.
        restart_policy: RestartPolicy = "RestartPolicy": Ty::Struct(&RestartPolicy::SCHEMA),
        /// Remove when it exits.
        auto_remove: bool = "AutoRemove": Ty::Bool,
        /// Driver of named volumes in Binds.
        volume_driver: String = "VolumeDriver": Ty::Str,
        /// `container[:ro|rw]`.
        volumes_from: Option<Vec<String>> = "VolumesFrom": STRINGS,
        /// Initial console size (height, width).
        console_size: [u64; 2] = "ConsoleSize": CONSOLE_SIZE,
        /// Annotations passed to the runtime.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        annotations: BTreeMap<String, String> = "Annotations": STR_MAP,
        /// Capabilities added.
        cap_add: Option<Vec<String>> = "CapAdd": Ty::StrSlice,
        /// Capabilities dropped.
        cap_drop: Option<Vec<String>> = "CapDrop": Ty::StrSlice,
        /// Cgroup namespace.
        cgroupns_mode: CgroupnsMode = "CgroupnsMode": Ty::Str,
        /// DNS servers.
        dns: Option<Vec<String>> = "Dns": STRINGS,
        /// DNS options.
        dns_options: Option<Vec<String>> = "DnsOptions": STRINGS,
        /// DNS search domains.
        dns_search: Option<Vec<String>> = "DnsSearch": STRINGS,
        /// `host:ip` entries for /etc/hosts.
        extra_hosts: Option<Vec<String>> = "ExtraHosts": STRINGS,
        /// Extra groups of the process.
        group_add: Option<Vec<String>> = "GroupAdd": STRINGS,
        /// IPC namespace.
        ipc_mode: IpcMode = "IpcMode": Ty::Str,
        /// Cgroup to use.
        cgroup: CgroupSpec = "Cgroup": Ty::Str,
        /// Legacy links.
        links: Option<Vec<String>> = "Links": STRINGS,
        /// -1000..1000.
        oom_score_adj: i64 = "OomScoreAdj": INT,
        /// PID namespace.
        pid_mode: PidMode = "PidMode": Ty::Str,
        /// Privileged.
        privileged: bool = "Privileged": Ty::Bool,
        /// Publish every exposed port.
        publish_all_ports: bool = "PublishAllPorts": Ty::Bool,
        /// Read-only root.
        readonly_rootfs: bool = "ReadonlyRootfs": Ty::Bool,
        /// `no-new-privileges`, `seccomp=...`, `apparmor=...`, `label=...`.
        security_opt: Option<Vec<String>> = "SecurityOpt": STRINGS,
        /// Storage driver options.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        storage_opt: BTreeMap<String, String> = "StorageOpt": STR_MAP,
        /// tmpfs mounts: destination → options.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        tmpfs: BTreeMap<String, String> = "Tmpfs": STR_MAP,
        /// UTS namespace.
        uts_mode: UtsMode = "UTSMode": Ty::Str,
        /// User namespace.
        userns_mode: UsernsMode = "UsernsMode": Ty::Str,
        /// /dev/shm size, bytes.
        shm_size: i64 = "ShmSize": I64,
        /// Namespaced sysctls.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        sysctls: BTreeMap<String, String> = "Sysctls": STR_MAP,
        /// OCI runtime name.
        #[serde(skip_serializing_if = "String::is_empty")]
        runtime: String = "Runtime": Ty::Str,
        /// Isolation (Windows).
        isolation: Isolation = "Isolation": Ty::Str,
        /// `--mount` specs.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        mounts: Vec<Mount> = "Mounts": Ty::List("[]mount.Mount", &Ty::Struct(&Mount::SCHEMA)),
        /// Paths masked in the container.
        masked_paths: Option<Vec<String>> = "MaskedPaths": STRINGS,
        /// Paths made read-only.
        readonly_paths: Option<Vec<String>> = "ReadonlyPaths": STRINGS,
        /// Run an init as PID 1.
        #[serde(skip_serializing_if = "Option::is_none")]
        init: Option<bool> = "Init": Ty::Bool,
    }
}

go_struct! {
    /// `POST /containers/create`'s body (dockerd's `ContainerConfigWrapper`): a Config
    /// with HostConfig and NetworkingConfig beside its fields.
    pub struct ContainerCreateRequest = "runconfig.ContainerConfigWrapper" embeds {
        /// The Config (Go embeds it).
        config: Config,
    } {
        /// Host config.
        #[serde(skip_serializing_if = "Option::is_none")]
        host_config: Option<HostConfig> = "HostConfig": Ty::Struct(&HostConfig::SCHEMA),
        /// Networks to join.
        #[serde(skip_serializing_if = "Option::is_none")]
        networking_config: Option<NetworkingConfig> = "NetworkingConfig":
            Ty::Struct(&NetworkingConfig::SCHEMA),
    }
}

impl ContainerCreateRequest {
    /// Decodes a create body as dockerd does: a body is needed, with some Config field
    /// in it (else Go leaves the embedded Config nil and dockerd answers "Config cannot
    /// be empty in order to create a container").
    pub fn decode(
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> Result<Self, crate::json::DecodeError> {
        use crate::json::{check, check_content_type, parse, DecodeError};
        check_content_type(content_type, !bytes.is_empty())?;
        if bytes.is_empty() {
            return Err(DecodeError::Empty);
        }
        let mut v = parse(bytes)?;
        check(&mut v, &Self::SCHEMA).map_err(DecodeError::Type)?;
        let has_config = v.as_object().is_some_and(|o| {
            Config::SCHEMA
                .all_fields()
                .iter()
                .any(|(k, _)| o.contains_key(*k))
        });
        if !has_config {
            return Err(DecodeError::EmptyConfig);
        }
        serde_json::from_value(v).map_err(|e| DecodeError::Type(e.to_string()))
    }
}

/// `POST /containers/create`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateResponse {
    /// The new container's ID.
    #[serde(rename = "Id")]
    pub id: String,
    /// Warnings (an empty list, never null, as dockerd since moby#38222).
    #[serde(rename = "Warnings", default)]
    pub warnings: Vec<String>,
}

go_struct! {
    /// `POST /containers/{id}/update`'s body.
    pub struct UpdateConfig = "container.UpdateConfig" embeds {
        /// New limits.
        resources: Resources,
    } {
        /// New restart policy.
        restart_policy: RestartPolicy = "RestartPolicy": Ty::Struct(&RestartPolicy::SCHEMA),
    }
}

/// `POST /containers/{id}/update`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateResponse {
    /// Warnings.
    #[serde(rename = "Warnings")]
    pub warnings: Option<Vec<String>>,
}

/// Why a wait ended in error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WaitExitError {
    /// The error.
    #[serde(rename = "Message", default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// `POST /containers/{id}/wait`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WaitResponse {
    /// Set when waiting failed (written as `null` otherwise, as dockerd writes it).
    #[serde(rename = "Error", default)]
    pub error: Option<WaitExitError>,
    /// The exit code.
    #[serde(rename = "StatusCode", default)]
    pub status_code: i64,
}

/// `GET /containers/{id}/top`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TopResponse {
    /// One row per process.
    #[serde(rename = "Processes")]
    pub processes: Vec<Vec<String>>,
    /// Column titles.
    #[serde(rename = "Titles")]
    pub titles: Vec<String>,
}

/// What happened to a path (`GET /containers/{id}/changes`): written as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum ChangeKind {
    /// 0, `C`.
    Modified,
    /// 1, `A`.
    Added,
    /// 2, `D`.
    Deleted,
}

impl From<ChangeKind> for u8 {
    fn from(k: ChangeKind) -> u8 {
        match k {
            ChangeKind::Modified => 0,
            ChangeKind::Added => 1,
            ChangeKind::Deleted => 2,
        }
    }
}

impl TryFrom<u8> for ChangeKind {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        match n {
            0 => Ok(Self::Modified),
            1 => Ok(Self::Added),
            2 => Ok(Self::Deleted),
            n => Err(format!("unknown change kind {n}")),
        }
    }
}

impl ChangeKind {
    /// The letter `docker diff` prints.
    pub fn letter(self) -> char {
        match self {
            Self::Modified => 'C',
            Self::Added => 'A',
            Self::Deleted => 'D',
        }
    }
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilesystemChange {
    /// What happened.
    #[serde(rename = "Kind")]
    pub kind: ChangeKind,
    /// The path.
    #[serde(rename = "Path")]
    pub path: String,
}

/// One health check's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthcheckResult {
    /// RFC 3339.
    #[serde(rename = "Start")]
    pub start: String,
    /// RFC 3339.
    #[serde(rename = "End")]
    pub end: String,
    /// 0 healthy, 1 unhealthy, else an error running the probe.
    #[serde(rename = "ExitCode")]
    pub exit_code: i64,
    /// The probe's output (cut to 4 KiB by the engine).
    #[serde(rename = "Output")]
    pub output: String,
}

/// `State.Health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// starting, healthy, unhealthy.
    #[serde(rename = "Status")]
    pub status: HealthStatus,
    /// Consecutive failures.
    #[serde(rename = "FailingStreak", default)]
    pub failing_streak: i64,
    /// The last results, oldest first.
    #[serde(rename = "Log", default)]
    pub log: Option<Vec<HealthcheckResult>>,
}

/// The zero time as Go writes it, for a start or finish that has not happened.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `State` in inspect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerState {
    /// The state's name.
    #[serde(rename = "Status")]
    pub status: Status,
    /// Running (also while paused or restarting, as dockerd sets it).
    #[serde(rename = "Running", default)]
    pub running: bool,
    /// Paused.
    #[serde(rename = "Paused", default)]
    pub paused: bool,
    /// Restarting.
    #[serde(rename = "Restarting", default)]
    pub restarting: bool,
    /// Killed by the kernel for memory.
    #[serde(rename = "OOMKilled", default)]
    pub oom_killed: bool,
    /// Dead.
    #[serde(rename = "Dead", default)]
    pub dead: bool,
    /// Host PID of the init while it runs, else 0.
    #[serde(rename = "Pid", default)]
    pub pid: i64,
    /// Last exit code.
    #[serde(rename = "ExitCode", default)]
    pub exit_code: i64,
    /// Why the last start failed.
    #[serde(rename = "Error", default)]
    pub error: String,
    /// RFC 3339 ([`ZERO_TIME`] when never started).
    #[serde(rename = "StartedAt", default)]
    pub started_at: String,
    /// RFC 3339 ([`ZERO_TIME`] when never finished).
    #[serde(rename = "FinishedAt", default)]
    pub finished_at: String,
    /// Only for containers with a health check.
    #[serde(rename = "Health", default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

impl ContainerState {
    /// The state as dockerd shows it for `status`: its flags follow from it.
    pub fn new(status: Status) -> Self {
        Self {
            status,
            running: status.is_running(),
            paused: status == Status::Paused,
            restarting: status == Status::Restarting,
            oom_killed: false,
            dead: status == Status::Dead,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.to_string(),
            finished_at: ZERO_TIME.to_string(),
            health: None,
        }
    }
}

/// A mount as inspect and list show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MountPoint {
    /// bind, volume, tmpfs.
    #[serde(rename = "Type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// The volume's name.
    #[serde(rename = "Name", skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Host path.
    #[serde(rename = "Source")]
    pub source: String,
    /// Container path.
    #[serde(rename = "Destination")]
    pub destination: String,
    /// The volume's driver.
    #[serde(rename = "Driver", skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// The mode as given (`ro`, `z`, ...).
    #[serde(rename = "Mode")]
    pub mode: String,
    /// Writable.
    #[serde(rename = "RW")]
    pub rw: bool,
    /// Propagation.
    #[serde(rename = "Propagation")]
    pub propagation: String,
}

/// `GraphDriver` in inspect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GraphDriverData {
    /// Driver data (`LowerDir`, `UpperDir`, ...).
    #[serde(rename = "Data", default)]
    pub data: Option<BTreeMap<String, String>>,
    /// Driver name.
    #[serde(rename = "Name", default)]
    pub name: String,
}

/// `network.Address`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Address {
    /// Address.
    #[serde(rename = "Addr")]
    pub addr: String,
    /// Prefix length.
    #[serde(rename = "PrefixLen")]
    pub prefix_len: i64,
}

/// `NetworkSettings` in inspect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkSettings {
    /// Bridge name.
    #[serde(rename = "Bridge")]
    pub bridge: String,
    /// Sandbox ID.
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    /// Hairpin NAT.
    #[serde(rename = "HairpinMode")]
    pub hairpin_mode: bool,
    /// Link-local IPv6.
    #[serde(rename = "LinkLocalIPv6Address")]
    pub link_local_ipv6_address: String,
    /// Its prefix length.
    #[serde(rename = "LinkLocalIPv6PrefixLen")]
    pub link_local_ipv6_prefix_len: i64,
    /// Published ports.
    #[serde(rename = "Ports")]
    pub ports: Option<PortMap>,
    /// The network namespace's path.
    #[serde(rename = "SandboxKey")]
    pub sandbox_key: String,
    /// Secondary IPv4 addresses.
    #[serde(rename = "SecondaryIPAddresses")]
    pub secondary_ip_addresses: Option<Vec<Address>>,
    /// Secondary IPv6 addresses.
    #[serde(rename = "SecondaryIPv6Addresses")]
    pub secondary_ipv6_addresses: Option<Vec<Address>>,
    /// Default network's endpoint.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// Default network's gateway.
    #[serde(rename = "Gateway")]
    pub gateway: String,
    /// Global IPv6 address.
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    /// Its prefix length.
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: i64,
    /// Default network's IPv4 address.
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    /// Its prefix length.
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: i64,
    /// IPv6 gateway.
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    /// MAC address.
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    /// Every network the container is on.
    #[serde(rename = "Networks")]
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// `GET /containers/{id}/json`: a container as inspect shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerInspect {
    /// ID.
    #[serde(rename = "Id")]
    pub id: String,
    /// RFC 3339.
    #[serde(rename = "Created")]
    pub created: String,
    /// argv[0].
    #[serde(rename = "Path")]
    pub path: String,
    /// The rest of argv.
    #[serde(rename = "Args")]
    pub args: Vec<String>,
    /// State.
    #[serde(rename = "State")]
    pub state: Option<ContainerState>,
    /// Image ID.
    #[serde(rename = "Image")]
    pub image: String,
    /// Path of its resolv.conf.
    #[serde(rename = "ResolvConfPath")]
    pub resolv_conf_path: String,
    /// Path of its hostname file.
    #[serde(rename = "HostnamePath")]
    pub hostname_path: String,
    /// Path of its hosts file.
    #[serde(rename = "HostsPath")]
    pub hosts_path: String,
    /// Path of its json-file log.
    #[serde(rename = "LogPath")]
    pub log_path: String,
    /// `/name`.
    #[serde(rename = "Name")]
    pub name: String,
    /// Restarts by its policy.
    #[serde(rename = "RestartCount")]
    pub restart_count: i64,
    /// Storage driver.
    #[serde(rename = "Driver")]
    pub driver: String,
    /// `linux`.
    #[serde(rename = "Platform")]
    pub platform: String,
    /// SELinux mount label.
    #[serde(rename = "MountLabel")]
    pub mount_label: String,
    /// SELinux process label.
    #[serde(rename = "ProcessLabel")]
    pub process_label: String,
    /// AppArmor profile.
    #[serde(rename = "AppArmorProfile")]
    pub app_armor_profile: String,
    /// Exec sessions.
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    /// Host config (with the daemon's defaults filled in).
    #[serde(rename = "HostConfig")]
    pub host_config: Option<HostConfig>,
    /// Storage driver data.
    #[serde(rename = "GraphDriver")]
    pub graph_driver: GraphDriverData,
    /// Bytes it wrote (with `size=1`).
    #[serde(rename = "SizeRw", skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    /// Its root filesystem's bytes (with `size=1`).
    #[serde(rename = "SizeRootFs", skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    /// Mounts.
    #[serde(rename = "Mounts")]
    pub mounts: Vec<MountPoint>,
    /// Config (merged with the image's).
    #[serde(rename = "Config")]
    pub config: Option<Config>,
    /// Networks.
    #[serde(rename = "NetworkSettings")]
    pub network_settings: Option<NetworkSettings>,
}

/// A port in the container list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Port {
    /// Host address.
    #[serde(rename = "IP", skip_serializing_if = "String::is_empty")]
    pub ip: String,
    /// Container port.
    #[serde(rename = "PrivatePort")]
    pub private_port: u16,
    /// Host port.
    #[serde(rename = "PublicPort", skip_serializing_if = "is_zero_u16")]
    pub public_port: u16,
    /// tcp, udp, sctp.
    #[serde(rename = "Type")]
    pub kind: String,
}

fn is_zero_u16(n: &u16) -> bool {
    *n == 0
}

/// `HostConfig` in the container list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SummaryHostConfig {
    /// Network mode.
    #[serde(
        rename = "NetworkMode",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub network_mode: String,
}

/// `NetworkSettings` in the container list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SummaryNetworkSettings {
    /// Networks.
    #[serde(rename = "Networks", default)]
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// `GET /containers/json`: one container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerSummary {
    /// ID.
    #[serde(rename = "Id")]
    pub id: String,
    /// `/name`s.
    #[serde(rename = "Names")]
    pub names: Vec<String>,
    /// The image as given.
    #[serde(rename = "Image")]
    pub image: String,
    /// Image ID.
    #[serde(rename = "ImageID")]
    pub image_id: String,
    /// The command line, joined.
    #[serde(rename = "Command")]
    pub command: String,
    /// Unix seconds.
    #[serde(rename = "Created")]
    pub created: i64,
    /// Ports.
    #[serde(rename = "Ports")]
    pub ports: Vec<Port>,
    /// Bytes it wrote (with `size=1`).
    #[serde(rename = "SizeRw", skip_serializing_if = "is_zero")]
    pub size_rw: i64,
    /// Root filesystem bytes (with `size=1`).
    #[serde(rename = "SizeRootFs", skip_serializing_if = "is_zero")]
    pub size_root_fs: i64,
    /// Labels.
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
    /// The state's name.
    #[serde(rename = "State")]
    pub state: String,
    /// `Up 2 minutes`, `Exited (0) 3 seconds ago`, ...
    #[serde(rename = "Status")]
    pub status: String,
    /// Network mode.
    #[serde(rename = "HostConfig")]
    pub host_config: SummaryHostConfig,
    /// Networks.
    #[serde(rename = "NetworkSettings")]
    pub network_settings: Option<SummaryNetworkSettings>,
    /// Mounts.
    #[serde(rename = "Mounts")]
    pub mounts: Vec<MountPoint>,
}

/// `POST /containers/prune`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainersPruneReport {
    /// IDs removed.
    #[serde(rename = "ContainersDeleted")]
    pub containers_deleted: Option<Vec<String>>,
    /// Bytes freed.
    #[serde(rename = "SpaceReclaimed")]
    pub space_reclaimed: u64,
}

/// `GET /containers/{id}/archive` and `HEAD`: the `X-Docker-Container-Path-Stat`
/// header's JSON (base64).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PathStat {
    /// Base name.
    pub name: String,
    /// Bytes.
    pub size: i64,
    /// Go's `os.FileMode` bits.
    pub mode: u32,
    /// RFC 3339.
    pub mtime: String,
    /// Symlink target.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}
