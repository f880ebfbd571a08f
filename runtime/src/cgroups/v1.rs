//! The cgroupfs set-up of a v1 or hybrid host, from one mountinfo read.
//!
//! libcgroups' v1 manager finds each of its twelve controllers' mount points by reading
//! /proc/self/mountinfo (and /proc/self/cgroup) once per controller, each through a fresh
//! private procfs mount (`fsopen`): about fifty files opened and a dozen mounts made before
//! the first cgroup is created, most of a container's start on this host. Its `Manager`
//! takes no mount points from the caller and its controllers are private, so that cost
//! cannot be avoided through its API. So for every config this module creates the cgroup
//! in every hierarchy libcgroups would (plus `name=systemd` and the unified one, as runc
//! joins them) and fills an empty cpuset from its parent ([`Plan`]). For the configs most
//! containers have (device rules and at most a pids limit) it also writes the limits, the
//! device rules in libcgroups' order and `pids.max` ([`Plan::covers`]); the limits of
//! anything else (memory, cpu, cpuset, blkio, hugetlb, network, rdma, unified) are written
//! by libcgroups as before.
//!
//! The init joins these cgroups itself ([`Join`]) rather than the parent writing its PID:
//! writing a PID into `cgroup.procs` takes the kernel's global threadgroup lock for
//! writing, which waits out an RCU grace period (5 to 14 ms on this host, most of a
//! container's start). A thread that writes `0` into a v1 hierarchy's `tasks` file moves
//! itself without that lock (Linux 5.18's "Optimize single thread migration"), and the
//! cgroup2 hierarchy of a hybrid host is entered at clone time (`CLONE_INTO_CGROUP`),
//! which takes it only for reading. The init is single-threaded then, so moving its one
//! thread moves the process.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxResources,
};

use super::cgroup_error;
use crate::error::Result;
use crate::rootfs::cgroupfs::{parse_mountinfo, Hierarchy};

/// The controllers libcgroups' v1 manager joins (its `CONTROLLERS`).
const LIBCGROUPS_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "hugetlb",
    "pids",
    "perf_event",
    "memory",
    "blkio",
    "net_prio",
    "net_cls",
    "freezer",
];

/// One hierarchy the container's cgroup is made in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    /// The hierarchy's mount point.
    pub mount_point: PathBuf,
    /// The container's cgroup directory in it.
    pub dir: PathBuf,
    /// The hierarchy's controllers (empty for cgroup2 and named hierarchies).
    pub controllers: Vec<String>,
    /// Whether it is the cgroup2 hierarchy (a hybrid host's `unified`).
    pub cgroup2: bool,
}

impl Directory {
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The set-up of one container's cgroup on a v1 or hybrid host.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// Every hierarchy to join, in mountinfo order.
    pub directories: Vec<Directory>,
}

/// Whether libcgroups is needed for these resources: anything beyond device rules and a
/// pids limit is left to it.
fn handled_here(resources: &LinuxResources) -> bool {
    resources.memory().is_none()
        && resources.cpu().is_none()
        && resources.block_io().is_none()
        && resources.hugepage_limits().is_none()
        && resources.network().is_none()
        && resources.rdma().is_none()
        && resources.unified().is_none()
}

impl Plan {
    /// The hierarchies to join for `relative` (the cgroup path without its leading `/`)
    /// on the host that `mountinfo` describes, whatever the resources; None on a cgroup
    /// v2 host.
    pub fn new(mountinfo: &str, relative: &Path) -> Option<Self> {
        let hierarchies: Vec<Hierarchy> = parse_mountinfo(mountinfo)
            .into_iter()
            .filter(|h| h.mount_point.starts_with(super::CGROUP_ROOT))
            .collect();
        if hierarchies
            .iter()
            .any(|h| h.fs_type == "cgroup2" && h.mount_point == Path::new(super::CGROUP_ROOT))
        {
            return None;
        }
        let mut directories: Vec<Directory> = Vec::new();
        for h in hierarchies {
            let wanted = if h.fs_type == "cgroup2" {
                h.mount_point == Path::new(super::CGROUP_ROOT).join("unified")
            } else {
                h.controllers
                    .iter()
                    .any(|c| c == "name=systemd" || LIBCGROUPS_CONTROLLERS.contains(&c.as_str()))
            };
            if !wanted || directories.iter().any(|d| d.mount_point == h.mount_point) {
                continue;
            }
            directories.push(Directory {
                dir: h.mount_point.join(relative),
                mount_point: h.mount_point,
                controllers: h.controllers,
                cgroup2: h.fs_type == "cgroup2",
            });
        }
        Some(Plan { directories })
    }

    /// Whether this module writes every limit of `resources` itself ([`Plan::apply`]):
    /// false for resources it leaves to libcgroups, or when a controller the config needs
    /// is not mounted (libcgroups then gives its own error).
    pub fn covers(&self, resources: &LinuxResources) -> bool {
        let needs_pids = resources.pids().is_some();
        handled_here(resources)
            && self.with("devices").is_some()
            && (!needs_pids || self.with("pids").is_some())
    }

    fn with(&self, controller: &str) -> Option<&Directory> {
        self.directories.iter().find(|d| d.has(controller))
    }

    fn create(&self, d: &Directory) -> Result<()> {
        std::fs::create_dir_all(&d.dir).map_err(|e| cgroup_error(&d.dir, e))?;
        if d.has("cpuset") {
            // A task cannot join a cpuset whose cpus or mems are empty.
            fill_from_parent(&d.mount_point, &d.dir, "cpuset.cpus")?;
            fill_from_parent(&d.mount_point, &d.dir, "cpuset.mems")?;
        }
        Ok(())
    }

    /// Before the init exists: create the cgroup in every hierarchy and open what lets
    /// the init join them itself.
    pub fn prepare_join(self) -> Result<Join> {
        for d in &self.directories {
            self.create(d)?;
        }
        let mut join = Join::open(self.directories.iter().map(|d| (d.dir.clone(), d.cgroup2)))?;
        join.plan = Some(self);
        Ok(join)
    }

    /// Write the pids limit and the device rules.
    pub fn apply(&self, resources: &LinuxResources) -> Result<()> {
        if let Some(pids) = resources.pids() {
            if let Some(d) = self.with("pids") {
                let limit = if pids.limit() > 0 {
                    pids.limit().to_string()
                } else {
                    "max".to_string()
                };
                write(&d.dir.join("pids.max"), &limit)?;
            }
        }
        if let Some(d) = self.with("devices") {
            for rule in device_rules(resources) {
                let file = if rule.allow() {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                write(&d.dir.join(file), &rule.to_string())?;
            }
        }
        Ok(())
    }
}

/// What lets a new process (a container's init, or one `exec`'d into it) join its
/// cgroups itself (see the module's comment): each v1 hierarchy's `tasks` file, open for
/// writing (the kernel checks the opener's credentials, the runtime's), and the cgroup2
/// directory for `CLONE_INTO_CGROUP`.
pub struct Join {
    into: Option<(PathBuf, OwnedFd)>,
    tasks: Vec<(PathBuf, File)>,
    /// The hierarchies made for a container's init, for writing its limits once it
    /// exists; None for an `exec`'d process, which joins existing cgroups.
    pub plan: Option<Plan>,
}

impl Join {
    /// Open the existing cgroup `directories` (each with whether it is a cgroup2 one)
    /// for a process to join.
    pub fn open(directories: impl IntoIterator<Item = (PathBuf, bool)>) -> Result<Join> {
        let mut join = Join {
            into: None,
            tasks: Vec::new(),
            plan: None,
        };
        for (dir, cgroup2) in directories {
            if cgroup2 {
                let file = File::open(&dir).map_err(|e| cgroup_error(&dir, e))?;
                join.into = Some((dir, file.into()));
            } else {
                let path = dir.join("tasks");
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| cgroup_error(&path, e))?;
                join.tasks.push((path, file));
            }
        }
        Ok(join)
    }

    /// The cgroup2 directory to clone the process into, if the host has one.
    pub fn clone_into(&self) -> Option<BorrowedFd<'_>> {
        self.into.as_ref().map(|(_, fd)| fd.as_fd())
    }

    /// In the new process, while it is single-threaded: move it into every v1 hierarchy.
    pub fn enter_v1(&self) -> std::result::Result<(), String> {
        for (path, file) in &self.tasks {
            let mut file: &File = file;
            file.write_all(b"0")
                .map_err(|e| format!("join the cgroup {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// In the parent, when the process could not be cloned into the cgroup2 directory (a
    /// kernel without `CLONE_INTO_CGROUP`): put `pid` there the usual way.
    pub fn enter_cgroup2(&self, pid: i32) -> Result<()> {
        match &self.into {
            Some((dir, _)) => write(&dir.join("cgroup.procs"), &pid.to_string()),
            None => Ok(()),
        }
    }
}

/// The device rules written to the devices hierarchy: the config's, then the ones
/// libcgroups (and runc) always allow: /dev/null, zero, full, tty, urandom and random, mknod
/// of any device, /dev/console, the pty slaves, /dev/ptmx and /dev/net/tun.
pub fn device_rules(resources: &LinuxResources) -> Vec<LinuxDeviceCgroup> {
    let rule = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(typ)
            .access(access.to_string());
        if let Some(major) = major {
            b = b.major(major);
        }
        if let Some(minor) = minor {
            b = b.minor(minor);
        }
        b.build().expect("every field of a device rule is set")
    };
    use LinuxDeviceType::{B, C};
    let mut rules = resources.devices().clone().unwrap_or_default();
    rules.extend([
        rule(C, Some(1), Some(3), "rwm"),
        rule(C, Some(1), Some(5), "rwm"),
        rule(C, Some(1), Some(7), "rwm"),
        rule(C, Some(5), Some(0), "rwm"),
        rule(C, Some(1), Some(9), "rwm"),
        rule(C, Some(1), Some(8), "rwm"),
        rule(C, None, None, "m"),
        rule(B, None, None, "m"),
        rule(C, Some(5), Some(1), "rwm"),
        rule(C, Some(136), None, "rwm"),
        rule(C, Some(5), Some(2), "rwm"),
        rule(C, Some(10), Some(200), "rwm"),
    ]);
    rules
}

/// Give every cpuset from the hierarchy's root down to `dir` its parent's `file` where it
/// is empty.
fn fill_from_parent(mount_point: &Path, dir: &Path, file: &str) -> Result<()> {
    let relative = dir.strip_prefix(mount_point).unwrap_or(Path::new(""));
    let mut current = mount_point.to_path_buf();
    let mut parent_value = read(&current.join(file))?;
    for component in relative.components() {
        current.push(component);
        let path = current.join(file);
        let value = read(&path)?;
        if value.trim().is_empty() {
            if parent_value.trim().is_empty() {
                return Err(cgroup_error(&path, "the parent cpuset is empty"));
            }
            write(&path, &parent_value)?;
        } else {
            parent_value = value;
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| cgroup_error(path, e))
}

/// Write a cgroup file in one write, without creating or truncating it.
fn write(path: &Path, value: &str) -> Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| cgroup_error(path, format!("write {value:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder};

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /sys/fs/cgroup/rdma rw,relatime - cgroup cgroup rw,rdma
50 1 0:33 / /mnt/devices-again rw,relatime - cgroup cgroup rw,devices
";

    #[test]
    fn a_hybrid_host_joins_libcgroups_controllers_systemd_and_unified() {
        let plan = Plan::new(HYBRID, Path::new("berth/c1")).unwrap();
        let dirs: Vec<String> = plan
            .directories
            .iter()
            .map(|d| d.dir.display().to_string())
            .collect();
        assert_eq!(
            dirs,
            [
                "/sys/fs/cgroup/cpu,cpuacct/berth/c1",
                "/sys/fs/cgroup/cpuset/berth/c1",
                "/sys/fs/cgroup/devices/berth/c1",
                "/sys/fs/cgroup/pids/berth/c1",
                "/sys/fs/cgroup/systemd/berth/c1",
                "/sys/fs/cgroup/unified/berth/c1",
            ]
        );
    }

    #[test]
    fn v2_hosts_other_resources_and_missing_controllers_are_left_to_libcgroups() {
        let v2 = "25 1 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert!(Plan::new(v2, Path::new("c1")).is_none());
        let hybrid = Plan::new(HYBRID, Path::new("c1")).unwrap();
        assert!(hybrid.covers(&LinuxResources::default()));
        let memory = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(1 << 20)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert!(!hybrid.covers(&memory));
        let pids = LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(10).build().unwrap())
            .build()
            .unwrap();
        assert!(hybrid.covers(&pids));
        let no_pids: String = HYBRID
            .lines()
            .filter(|l| !l.contains("pids"))
            .map(|l| format!("{l}\n"))
            .collect();
        let no_pids = Plan::new(&no_pids, Path::new("c1")).unwrap();
        assert!(!no_pids.covers(&pids));
        assert!(no_pids.covers(&LinuxResources::default()));
    }

    #[test]
    fn device_rules_are_the_configs_then_the_defaults() {
        let deny_all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm".to_string())
            .build()
            .unwrap();
        let resources = LinuxResourcesBuilder::default()
            .devices(vec![deny_all])
            .build()
            .unwrap();
        let rules: Vec<String> = device_rules(&resources)
            .iter()
            .map(|r| format!("{} {r}", if r.allow() { "allow" } else { "deny" }))
            .collect();
        assert_eq!(
            rules,
            [
                "deny a *:* rwm",
                "allow c 1:3 rwm",
                "allow c 1:5 rwm",
                "allow c 1:7 rwm",
                "allow c 5:0 rwm",
                "allow c 1:9 rwm",
                "allow c 1:8 rwm",
                "allow c *:* m",
                "allow b *:* m",
                "allow c 5:1 rwm",
                "allow c 136:* rwm",
                "allow c 5:2 rwm",
                "allow c 10:200 rwm",
            ]
        );
    }

    #[test]
    fn an_empty_cpuset_is_filled_from_its_nearest_parent() {
        let root = tempfile::tempdir().unwrap();
        let mount = root.path();
        std::fs::write(mount.join("cpuset.cpus"), "0-1\n").unwrap();
        std::fs::create_dir_all(mount.join("a/b")).unwrap();
        std::fs::write(mount.join("a/cpuset.cpus"), "1\n").unwrap();
        std::fs::write(mount.join("a/b/cpuset.cpus"), "").unwrap();
        fill_from_parent(mount, &mount.join("a/b"), "cpuset.cpus").unwrap();
        assert_eq!(
            std::fs::read_to_string(mount.join("a/b/cpuset.cpus")).unwrap(),
            "1\n"
        );
        std::fs::write(mount.join("cpuset.cpus"), "").unwrap();
        std::fs::write(mount.join("a/cpuset.cpus"), "").unwrap();
        let err = fill_from_parent(mount, &mount.join("a"), "cpuset.cpus").unwrap_err();
        assert!(
            err.to_string().contains("the parent cpuset is empty"),
            "{err}"
        );
    }
}
