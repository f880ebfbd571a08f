//! What is stored of a container (`<data-root>/containers/ID/config.v2.json`).

use super::state::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    pub config: Value,
    /// HostConfig as given (with the defaults dockerd fills in).
    pub host_config: Value,
    /// State.
    pub state: State,
    /// How many times the restart policy restarted it.
    pub restart_count: u64,
    /// Stopped by a user (unless-stopped does not restart it).
    #[serde(default)]
    pub manual_stop: bool,
    /// The init process of its last run, as the OCI spec had it: what exec'd processes
    /// start from (environment, capabilities, limits).
    #[serde(default)]
    pub process: Option<oci_spec::runtime::Process>,
    /// Mounts as inspect shows them (binds, volumes, tmpfs); `Anonymous` marks volumes
    /// made for this container.
    #[serde(default)]
    pub mounts: Vec<Value>,
}

impl Record {
    /// Config.Tty.
    pub fn tty(&self) -> bool {
        self.config["Tty"].as_bool().unwrap_or(false)
    }

    /// HostConfig.AutoRemove.
    pub fn auto_remove(&self) -> bool {
        self.host_config["AutoRemove"].as_bool().unwrap_or(false)
    }

    /// The labels of Config.
    pub fn labels(&self) -> serde_json::Map<String, Value> {
        self.config["Labels"]
            .as_object()
            .cloned()
            .unwrap_or_default()
    }
}
