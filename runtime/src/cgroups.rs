//! The container's cgroup, through libcgroups (v1, hybrid and v2 hosts alike).

use std::path::{Path, PathBuf};

use libcgroups::common::{
    create_cgroup_manager, AnyCgroupManager, CgroupConfig, CgroupManager, ControllerOpt,
    FreezerState,
};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, Spec};

use crate::container::ContainerState;
use crate::error::{Result, RuntimeError};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The cgroup path for a container: the spec's `cgroupsPath`, or runc's defaults
/// (`/ID`, or `system.slice:berth:ID` with `--systemd-cgroup`).
pub fn path_for(spec: &Spec, id: &str, systemd: bool) -> PathBuf {
    match spec.linux().as_ref().and_then(|l| l.cgroups_path().clone()) {
        Some(path) if !path.as_os_str().is_empty() => path,
        _ if systemd => PathBuf::from(format!("system.slice:berth:{id}")),
        _ => PathBuf::from(format!("/{id}")),
    }
}

fn cgroup_error(path: &Path, err: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Cgroup {
        path: path.to_path_buf(),
        reason: err.to_string(),
    }
}

/// A handle on one container's cgroup.
pub struct Cgroup {
    manager: AnyCgroupManager,
    path: PathBuf,
}

impl Cgroup {
    /// Open (without creating) the cgroup at `path`.
    pub fn open(path: &Path, systemd: bool, id: &str) -> Result<Self> {
        let config = CgroupConfig {
            cgroup_path: path.to_path_buf(),
            systemd_cgroup: systemd,
            container_name: id.to_string(),
        };
        let manager = create_cgroup_manager(config).map_err(|e| cgroup_error(path, e))?;
        Ok(Self {
            manager,
            path: path.to_path_buf(),
        })
    }

    /// The handle for an existing container.
    pub fn of(state: &ContainerState) -> Result<Self> {
        Self::open(&state.cgroup_path, state.systemd_cgroup, &state.id)
    }

    /// Put `pid` in the cgroup (creating it) and apply the spec's resource limits.
    pub fn enter_and_apply(&self, pid: i32, spec: &Spec) -> Result<()> {
        self.manager
            .add_task(Pid::from_raw(pid))
            .map_err(|e| cgroup_error(&self.path, e))?;
        let default_resources = LinuxResources::default();
        let linux = spec.linux().as_ref();
        let resources = linux
            .and_then(|l| l.resources().as_ref())
            .unwrap_or(&default_resources);
        self.apply(resources)
    }

    /// Write resource limits to the cgroup.
    pub fn apply(&self, resources: &LinuxResources) -> Result<()> {
        let options = ControllerOpt {
            resources,
            disable_oom_killer: resources
                .memory()
                .as_ref()
                .and_then(|m| m.disable_oom_killer())
                .unwrap_or(false),
            oom_score_adj: None,
            freezer_state: None,
        };
        self.manager
            .apply(&options)
            .map_err(|e| cgroup_error(&self.path, e))
    }

    /// Put another process (an `exec`'d one) in the cgroup.
    pub fn add(&self, pid: i32) -> Result<()> {
        self.manager
            .add_task(Pid::from_raw(pid))
            .map_err(|e| cgroup_error(&self.path, e))
    }

    /// Remove the cgroup (killing anything left in it).
    pub fn remove(&self) -> Result<()> {
        self.manager
            .remove()
            .map_err(|e| cgroup_error(&self.path, e))
    }

    /// Usage figures for `events`.
    pub fn stats(&self) -> Result<libcgroups::stats::Stats> {
        self.manager
            .stats()
            .map_err(|e| cgroup_error(&self.path, e))
    }

    /// Every process in the cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let pids = self
            .manager
            .get_all_pids()
            .map_err(|e| cgroup_error(&self.path, e))?;
        Ok(pids.into_iter().map(|p| p.as_raw()).collect())
    }

    /// Freeze or thaw every process in the cgroup.
    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        let state = if frozen {
            FreezerState::Frozen
        } else {
            FreezerState::Thawed
        };
        self.manager
            .freeze(state)
            .map_err(|e| cgroup_error(&self.path, e))
    }
}

/// Whether the container's cgroup is frozen; read straight from the freezer file because
/// `state` and `list` call this for every container and must stay cheap.
pub fn is_frozen(state: &ContainerState) -> bool {
    let relative = state
        .cgroup_path
        .strip_prefix("/")
        .unwrap_or(&state.cgroup_path);
    let v1 = Path::new(CGROUP_ROOT)
        .join("freezer")
        .join(relative)
        .join("freezer.state");
    if let Ok(value) = std::fs::read_to_string(v1) {
        return value.trim() == "FROZEN";
    }
    let v2 = Path::new(CGROUP_ROOT).join(relative).join("cgroup.freeze");
    std::fs::read_to_string(v2)
        .map(|v| v.trim() == "1")
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxBuilder, SpecBuilder};

    #[test]
    fn default_cgroup_paths_follow_runc() {
        let spec = Spec::default();
        let linux = LinuxBuilder::default()
            .cgroups_path(PathBuf::from("/custom/x"))
            .build();
        let custom = SpecBuilder::default()
            .linux(linux.unwrap())
            .build()
            .unwrap();
        assert_eq!(path_for(&custom, "c1", false), PathBuf::from("/custom/x"));
        let mut no_path = spec.clone();
        if let Some(linux) = no_path.linux_mut() {
            linux.set_cgroups_path(None);
        }
        assert_eq!(path_for(&no_path, "c1", false), PathBuf::from("/c1"));
        assert_eq!(
            path_for(&no_path, "c1", true),
            PathBuf::from("system.slice:berth:c1")
        );
    }
}
