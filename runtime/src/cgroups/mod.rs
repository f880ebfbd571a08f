//! The container's cgroup, through libcgroups (v1, hybrid and v2 hosts alike).
//!
//! This module knows cgroup paths, not containers: `container/` depends on it, never the
//! other way round (a container's handle is `ContainerState::cgroup`).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use libcgroups::common::{
    create_cgroup_manager, AnyCgroupManager, CgroupConfig, CgroupManager, ControllerOpt,
    FreezerState,
};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, Spec};

use crate::error::{Result, RuntimeError};

mod v1;

pub use v1::Join;

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

/// The spec's resources (none: the defaults), borrowed where the spec has them.
fn resources_of(spec: &Spec) -> Cow<'_, LinuxResources> {
    match spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
        Some(resources) => Cow::Borrowed(resources),
        None => Cow::Owned(LinuxResources::default()),
    }
}

fn cgroup_error(path: &Path, err: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Cgroup {
        path: path.to_path_buf(),
        reason: err.to_string(),
    }
}

/// This process's mountinfo, read once: a `run` places the container in its cgroups and
/// later removes them, and the cgroup mounts do not move meanwhile.
fn host_mountinfo() -> Option<&'static str> {
    static MOUNTINFO: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    MOUNTINFO
        .get_or_init(|| std::fs::read_to_string("/proc/self/mountinfo").ok())
        .as_deref()
}

/// A handle on one container's cgroup.
pub struct Cgroup {
    /// Made on first use: libcgroups' v1 manager parses mountinfo once per controller,
    /// which dominates a container's start, so only operations that need it pay for it.
    manager: std::cell::OnceCell<AnyCgroupManager>,
    path: PathBuf,
    systemd: bool,
    id: String,
}

impl Cgroup {
    /// A handle on the cgroup at `path` (nothing is created or read yet).
    pub fn open(path: &Path, systemd: bool, id: &str) -> Result<Self> {
        Ok(Self {
            manager: std::cell::OnceCell::new(),
            path: path.to_path_buf(),
            systemd,
            id: id.to_string(),
        })
    }

    fn manager(&self) -> Result<&AnyCgroupManager> {
        if let Some(manager) = self.manager.get() {
            return Ok(manager);
        }
        let config = CgroupConfig {
            cgroup_path: self.path.clone(),
            systemd_cgroup: self.systemd,
            container_name: self.id.clone(),
        };
        let manager = create_cgroup_manager(config).map_err(|e| cgroup_error(&self.path, e))?;
        Ok(self.manager.get_or_init(|| manager))
    }

    /// The cgroup's directories on the host, one per hierarchy (v1) or one (v2), read
    /// from a single mountinfo parse. None for systemd-managed paths (`slice:prefix:name`),
    /// which only libcgroups can resolve.
    fn directories(&self) -> Option<Vec<PathBuf>> {
        let relative = self.cgroupfs_relative()?;
        let dirs = crate::rootfs::cgroupfs::parse_mountinfo(host_mountinfo()?)
            .into_iter()
            .filter(|h| h.mount_point.starts_with(CGROUP_ROOT))
            .map(|h| h.mount_point.join(relative))
            .collect();
        Some(dirs)
    }

    /// The cgroup path below each hierarchy's mount point, for paths this module resolves
    /// itself: None for systemd-managed paths (`slice:prefix:name`) and paths with `..`.
    fn cgroupfs_relative(&self) -> Option<&Path> {
        if self.systemd || self.path.to_string_lossy().contains(':') {
            return None;
        }
        let relative = self.path.strip_prefix("/").unwrap_or(&self.path);
        if relative
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return None;
        }
        Some(relative)
    }

    /// The hierarchies of a v1 or hybrid host this cgroup is made in (see v1.rs); None
    /// on a v2 host and for paths only libcgroups resolves.
    fn v1_plan(&self) -> Option<v1::Plan> {
        self.cgroupfs_relative()
            .and_then(|relative| v1::Plan::new(host_mountinfo()?, relative))
    }

    /// Before the init is cloned, on a v1 or hybrid host: create the cgroup in every
    /// hierarchy and return what lets the init join it without the kernel's global
    /// threadgroup lock (see v1.rs). None: the parent puts the init in its cgroup after
    /// the clone ([`Cgroup::enter_and_apply`]).
    pub fn prepare_join(&self) -> Result<Option<Join>> {
        self.v1_plan().map(v1::Plan::prepare_join).transpose()
    }

    /// After the clone, for an init that joins by itself (`join`, from
    /// [`Cgroup::prepare_join`]): enter the cgroup2 directory for it if the clone could
    /// not (`cloned_into` false), and apply the spec's limits: the device rules and the
    /// pids limit here where that is all they are, else through libcgroups.
    pub fn apply_joined(
        &self,
        pid: i32,
        spec: &Spec,
        join: &Join,
        cloned_into: bool,
    ) -> Result<()> {
        let resources = resources_of(spec);
        if !cloned_into {
            join.enter_cgroup2(pid)?;
        }
        match &join.plan {
            Some(plan) if plan.covers(&resources) => plan.apply(&resources),
            _ => self.apply(&resources),
        }
    }

    /// Put `pid` in the cgroup (creating it) through libcgroups and apply the spec's
    /// resource limits: on a cgroup v2 host and for systemd-managed paths, where
    /// [`Cgroup::prepare_join`] gives nothing to join with.
    pub fn enter_and_apply(&self, pid: i32, spec: &Spec) -> Result<()> {
        let resources = &resources_of(spec);
        self.manager()?
            .add_task(Pid::from_raw(pid))
            .map_err(|e| cgroup_error(&self.path, e))?;
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
        self.manager()?
            .apply(&options)
            .map_err(|e| cgroup_error(&self.path, e))
    }

    /// Remove the cgroup, killing anything left in it.
    pub fn remove(&self) -> Result<()> {
        let Some(dirs) = self.directories() else {
            return self
                .manager()?
                .remove()
                .map_err(|e| cgroup_error(&self.path, e));
        };
        for dir in dirs.iter().filter(|d| d.exists()) {
            let mut attempts = 0;
            loop {
                for pid in read_procs(dir) {
                    let _ = nix::sys::signal::kill(
                        Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    // Killed tasks take a moment to leave the cgroup.
                    Err(_) if attempts < 100 => {
                        attempts += 1;
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    Err(e) => return Err(cgroup_error(dir, e)),
                }
            }
        }
        Ok(())
    }

    /// Usage figures for `events`.
    pub fn stats(&self) -> Result<libcgroups::stats::Stats> {
        self.manager()?
            .stats()
            .map_err(|e| cgroup_error(&self.path, e))
    }

    /// Every process in the cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        if let Some(dirs) = self.directories() {
            // Any hierarchy holds all of the container's processes.
            if let Some(dir) = dirs.iter().find(|d| d.join("cgroup.procs").exists()) {
                return Ok(read_procs(dir));
            }
        }
        let pids = self
            .manager()?
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
        self.manager()?
            .freeze(state)
            .map_err(|e| cgroup_error(&self.path, e))
    }
}

/// Before an `exec`'d process is cloned: what lets it join every cgroup that `init_pid`
/// (the container's init) is in by itself, as runc joins an exec'd process to all of the
/// container's cgroups: each v1 controller and named hierarchy (`name=systemd` too) and
/// the unified one, on v1, hybrid and v2 hosts alike. Read from the init itself, so the
/// two end up in the same cgroups whichever driver (cgroupfs or systemd) placed the init.
/// As for an init, no PID is written (see v1.rs): the process is cloned into the cgroup2
/// directory and moves itself into the v1 ones.
pub fn prepare_join_of(init_pid: i32) -> Result<Join> {
    let own = format!("/proc/{init_pid}/cgroup");
    let proc_cgroup =
        std::fs::read_to_string(&own).map_err(|e| cgroup_error(Path::new(&own), e))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| cgroup_error(Path::new("/proc/self/mountinfo"), e))?;
    Join::open(cgroup_dirs(&mountinfo, &proc_cgroup))
}

/// The host directories of a process's cgroups (from its /proc/PID/cgroup), one per
/// hierarchy mounted here, each with whether it is a cgroup2 one. A hierarchy mounted
/// more than once is joined through the first mount that shows the process's cgroup.
fn cgroup_dirs(mountinfo: &str, proc_cgroup: &str) -> Vec<(PathBuf, bool)> {
    use crate::rootfs::cgroupfs::{host_dir, parse_mountinfo, process_cgroup};
    let mut seen: Vec<(String, Vec<String>)> = Vec::new();
    let mut dirs = Vec::new();
    for hierarchy in parse_mountinfo(mountinfo) {
        let mut controllers = hierarchy.controllers.clone();
        controllers.sort_unstable();
        let key = (hierarchy.fs_type.clone(), controllers);
        if seen.contains(&key) {
            continue;
        }
        let Some(path) = process_cgroup(proc_cgroup, &hierarchy) else {
            continue;
        };
        if !path.starts_with(&hierarchy.root) {
            // This mount shows only a subtree that does not hold the process.
            continue;
        }
        seen.push(key);
        dirs.push((host_dir(&hierarchy, &path), hierarchy.fs_type == "cgroup2"));
    }
    dirs
}

/// The PIDs listed in a cgroup directory's cgroup.procs.
fn read_procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Whether the cgroup at `cgroup_path` is frozen; read straight from the freezer file
/// because `state` and `list` call this for every container and must stay cheap.
pub fn is_frozen(cgroup_path: &Path) -> bool {
    let relative = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
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
    fn an_exec_joins_every_hierarchy_of_a_hybrid_host() {
        let mountinfo = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 1 0:32 /other /mnt/memory-again rw,relatime - cgroup cgroup rw,memory
51 1 0:38 / /mnt/unified-again rw,relatime - cgroup2 cgroup2 rw
";
        let init = "12:memory:/berth/c1\n4:cpu,cpuacct:/berth/c1\n1:name=systemd:/berth/c1\n0::/berth/c1\n";
        let dirs: Vec<String> = cgroup_dirs(mountinfo, init)
            .into_iter()
            .map(|(d, cgroup2)| format!("{} {cgroup2}", d.display()))
            .collect();
        assert_eq!(
            dirs,
            [
                "/sys/fs/cgroup/cpu,cpuacct/berth/c1 false",
                "/sys/fs/cgroup/memory/berth/c1 false",
                "/sys/fs/cgroup/systemd/berth/c1 false",
                "/sys/fs/cgroup/unified/berth/c1 true",
            ]
        );
    }

    #[test]
    fn an_exec_joins_the_unified_hierarchy_of_a_v2_host() {
        let mountinfo = "25 1 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let init = "0::/system.slice/berth-c1.scope\n";
        assert_eq!(
            cgroup_dirs(mountinfo, init),
            [(
                PathBuf::from("/sys/fs/cgroup/system.slice/berth-c1.scope"),
                true
            )]
        );
        // A mount of a subtree that does not hold the init is passed over.
        let mountinfo = "26 1 0:22 /elsewhere /mnt/sub rw - cgroup2 cgroup2 rw\n25 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup_dirs(mountinfo, init),
            [(
                PathBuf::from("/sys/fs/cgroup/system.slice/berth-c1.scope"),
                true
            )]
        );
    }

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
