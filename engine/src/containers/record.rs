//! What is stored of a container (`<data-root>/containers/ID/config.v2.json`): berth-api's
//! typed Config and HostConfig (the request merged with the image, dockerd's defaults
//! filled in), its mounts, its state.

use super::state::State;
use berth_api::container::{Config, HostConfig, MountPoint};
use serde::{Deserialize, Serialize};

/// A mount of a container, as inspect shows it, with what the engine needs besides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MountRecord {
    /// As inspect shows it.
    #[serde(flatten)]
    pub point: MountPoint,
    /// A volume made for this container (removed with it by `rm -v`).
    #[serde(rename = "Anonymous", default)]
    pub anonymous: bool,
    /// A bind whose missing host path is made at start (`-v` binds).
    #[serde(rename = "Create", default)]
    pub create: bool,
}

impl MountRecord {
    /// A volume's name, when it is one.
    pub fn volume(&self) -> Option<&str> {
        (self.point.kind == "volume").then_some(self.point.name.as_str())
    }
}

/// A container's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// 64 hex digits.
    pub id: String,
    /// Without the leading slash.
    pub name: String,
    /// RFC 3339.
    pub created: String,
    /// The image as asked for.
    pub image: String,
    /// Its ID (`sha256:...`).
    pub image_id: String,
    /// argv[0].
    pub path: String,
    /// The rest of argv.
    pub args: Vec<String>,
    /// The merged Config.
    pub config: Config,
    /// The HostConfig, with dockerd's defaults.
    pub host_config: HostConfig,
    /// State.
    pub state: State,
    /// How many times the restart policy restarted it.
    pub restart_count: i64,
    /// Stopped by a user (unless-stopped does not restart it).
    #[serde(default)]
    pub manual_stop: bool,
    /// The init process of its last run, as the OCI spec had it: what exec'd processes
    /// start from (environment, capabilities, limits).
    #[serde(default)]
    pub process: Option<oci_spec::runtime::Process>,
    /// Mounts (binds, volumes, tmpfs).
    #[serde(default)]
    pub mounts: Vec<MountRecord>,
}

impl Record {
    /// Config.Tty.
    pub fn tty(&self) -> bool {
        self.config.tty
    }

    /// HostConfig.AutoRemove.
    pub fn auto_remove(&self) -> bool {
        self.host_config.auto_remove
    }

    /// The labels of Config.
    pub fn labels(&self) -> std::collections::BTreeMap<String, String> {
        self.config.labels.clone().unwrap_or_default()
    }

    /// Whether a volume is one of its mounts.
    pub fn uses_volume(&self, name: &str) -> bool {
        self.mounts.iter().any(|m| m.volume() == Some(name))
    }
}
