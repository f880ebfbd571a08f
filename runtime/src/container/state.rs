//! What the runtime persists for a container, and the OCI state JSON it reports.

use std::collections::HashMap;
use std::path::PathBuf;

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use super::Status;
use crate::cgroups::Cgroup;

/// The persisted state of one container (`<root>/<id>/state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    /// The container ID.
    pub id: String,
    /// PID of the container's init process, in the runtime's PID namespace.
    pub pid: i32,
    /// The init's start time (field 22 of /proc/PID/stat), to detect PID reuse.
    pub pid_start_time: u64,
    /// Absolute path of the bundle.
    pub bundle: PathBuf,
    /// Absolute path of the rootfs.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339.
    pub created: String,
    /// The cgroup path the container was put in (as given to the cgroup manager).
    pub cgroup_path: PathBuf,
    /// Whether the cgroup is managed through systemd.
    pub systemd_cgroup: bool,
    /// The config the container was created from: hooks, annotations and limits for
    /// later commands come from here, not from a bundle that may have changed since.
    pub spec: Spec,
}

/// The state of a container as defined by the OCI runtime spec (runtime.md, "State"),
/// plus the fields runc adds (`rootfs`, `created`, `owner`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OciState {
    /// Version of the runtime spec the state complies with.
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// The container ID.
    pub id: String,
    /// PID of the init process; 0 once stopped.
    pub pid: i32,
    /// creating, created, running, paused or stopped.
    pub status: String,
    /// Absolute path of the bundle.
    pub bundle: PathBuf,
    /// Absolute path of the rootfs.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339.
    pub created: String,
    /// Owner of the container (the user that created it).
    pub owner: String,
    /// The annotations of the container's config.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

impl ContainerState {
    /// A handle on the container's cgroup.
    pub fn cgroup(&self) -> crate::error::Result<Cgroup> {
        Cgroup::open(&self.cgroup_path, self.systemd_cgroup, &self.id)
    }

    /// The OCI state for a given status.
    pub fn to_oci(&self, status: Status) -> OciState {
        let pid = if status == Status::Stopped {
            0
        } else {
            self.pid
        };
        OciState {
            oci_version: self.spec.version().clone(),
            id: self.id.clone(),
            pid,
            status: status.to_string(),
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: String::new(),
            annotations: self.spec.annotations().clone().unwrap_or_default(),
        }
    }
}
