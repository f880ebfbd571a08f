//! The `cgroup` mount type: show the container its own cgroup.
//!
//! On a v2 host this is a cgroup2 mount (inside a cgroup namespace) or a bind of the
//! container's cgroup directory. On a v1 or hybrid host, as runc does, it is a tmpfs with
//! one bind mount per hierarchy, each of the container's own cgroup directory.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use super::secure_path::{fd_path, resolve, Create};
use crate::error::{Context, Result};

/// One cgroup hierarchy mounted on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted, e.g. /sys/fs/cgroup/cpu,cpuacct.
    pub mount_point: PathBuf,
    /// The root of the mount inside the hierarchy (usually `/`).
    pub root: PathBuf,
    /// `cgroup` or `cgroup2`.
    pub fs_type: String,
    /// The controllers (or `name=systemd`) in the super options; empty for cgroup2.
    pub controllers: Vec<String>,
}

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup hierarchies in a mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = before.split(' ').collect();
        let tail: Vec<&str> = after.split(' ').collect();
        if fields.len() < 5 || tail.len() < 3 {
            continue;
        }
        let fs_type = tail[0];
        if fs_type != "cgroup" && fs_type != "cgroup2" {
            continue;
        }
        let controllers = if fs_type == "cgroup" {
            tail[2]
                .split(',')
                .filter(|o| {
                    !matches!(
                        *o,
                        "rw" | "ro" | "nosuid" | "nodev" | "noexec" | "relatime" | "xattr"
                    ) && !o.starts_with("release_agent=")
                })
                .map(str::to_string)
                .collect()
        } else {
            Vec::new()
        };
        out.push(Hierarchy {
            mount_point: PathBuf::from(unescape(fields[4])),
            root: PathBuf::from(unescape(fields[3])),
            fs_type: fs_type.to_string(),
            controllers,
        });
    }
    out
}

/// Which cgroup path the process is in for a hierarchy, from a /proc/PID/cgroup text.
pub fn process_cgroup(proc_cgroup: &str, hierarchy: &Hierarchy) -> Option<PathBuf> {
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = if hierarchy.fs_type == "cgroup2" {
            controllers.is_empty()
        } else {
            let mut listed: Vec<&str> = controllers.split(',').collect();
            let mut wanted: Vec<&str> = hierarchy.controllers.iter().map(String::as_str).collect();
            listed.sort_unstable();
            wanted.sort_unstable();
            listed == wanted
        };
        if matches {
            return Some(PathBuf::from(path));
        }
    }
    None
}

/// The host directory of the calling process's own cgroup in a hierarchy.
pub fn host_dir(hierarchy: &Hierarchy, own: &Path) -> PathBuf {
    let relative = own.strip_prefix(&hierarchy.root).unwrap_or(own);
    let relative = relative.strip_prefix("/").unwrap_or(relative);
    hierarchy.mount_point.join(relative)
}

/// Mount the container's cgroups at `dest`; `own` is the init's /proc/self/cgroup as read
/// before any cgroup namespace.
pub fn mount_cgroups(
    root: &impl AsFd,
    dest: &Path,
    flags: MsFlags,
    cgroup_ns: bool,
    own: &str,
) -> Result<()> {
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
    let hierarchies = parse_mountinfo(&mountinfo);
    let target = resolve(root, dest, Create::Dir)?;
    let bind_flags = MsFlags::MS_BIND
        | (flags
            & (MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC));

    if let Some(unified) = hierarchies
        .iter()
        .find(|h| h.fs_type == "cgroup2" && h.mount_point == Path::new("/sys/fs/cgroup"))
    {
        if cgroup_ns {
            return mount(
                Some("cgroup2"),
                &fd_path(&target),
                Some("cgroup2"),
                flags,
                None::<&str>,
            )
            .with_context(|| format!("mount cgroup2 on {}", dest.display()));
        }
        let source = host_dir(unified, &process_cgroup(own, unified).unwrap_or_default());
        return bind(&source, &target, bind_flags, dest);
    }

    mount(
        Some("tmpfs"),
        &fd_path(&target),
        Some("tmpfs"),
        flags & !MsFlags::MS_RDONLY,
        Some("mode=755"),
    )
    .with_context(|| format!("mount tmpfs for cgroups on {}", dest.display()))?;
    let tmpfs = resolve(root, dest, Create::Nothing)?;
    for hierarchy in &hierarchies {
        let Some(name) = hierarchy.mount_point.file_name() else {
            continue;
        };
        if !hierarchy.mount_point.starts_with("/sys/fs/cgroup") {
            continue;
        }
        let Some(own_path) = process_cgroup(own, hierarchy) else {
            continue;
        };
        let sub = resolve(&tmpfs, Path::new(name), Create::Dir)?;
        bind(
            &host_dir(hierarchy, &own_path),
            &sub,
            bind_flags,
            &dest.join(name),
        )?;
        // cpu,cpuacct is also reachable as cpu and cpuacct.
        let name = name.to_string_lossy();
        if name.contains(',') {
            for single in name.split(',') {
                let _ = nix::unistd::symlinkat(name.as_ref(), None, &fd_path(&tmpfs).join(single));
            }
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let tmpfs = resolve(root, dest, Create::Nothing)?;
        mount(
            None::<&str>,
            &fd_path(&tmpfs),
            None::<&str>,
            flags | MsFlags::MS_REMOUNT,
            Some("mode=755"),
        )
        .with_context(|| format!("remount {} read-only", dest.display()))?;
    }
    Ok(())
}

fn bind(source: &Path, target: &impl AsFd, flags: MsFlags, dest: &Path) -> Result<()> {
    mount(
        Some(source),
        &fd_path(target),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("bind {} on {}", source.display(), dest.display()))?;
    if flags != MsFlags::MS_BIND {
        // Remount through the new mount, not the directory under it.
        let path = std::fs::read_link(fd_path(target)).unwrap_or_else(|_| dest.to_path_buf());
        mount(
            None::<&str>,
            &path,
            None::<&str>,
            flags | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .with_context(|| format!("remount {}", dest.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
40 25 0:40 / /mnt/with\\040space rw - ext4 /dev/vda rw
";

    const PROC_CGROUP: &str = "\
12:memory:/c1
4:cpu,cpuacct:/c1
1:name=systemd:/user.slice
0::/c1
";

    #[test]
    fn hierarchies_come_from_mountinfo() {
        let found = parse_mountinfo(MOUNTINFO);
        let points: Vec<_> = found
            .iter()
            .map(|h| h.mount_point.to_str().unwrap())
            .collect();
        assert_eq!(
            points,
            [
                "/sys/fs/cgroup/unified",
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/systemd"
            ]
        );
        assert_eq!(found[1].controllers, ["cpu", "cpuacct"]);
        assert_eq!(found[3].controllers, ["name=systemd"]);
        assert_eq!(unescape("/mnt/with\\040space"), "/mnt/with space");
    }

    #[test]
    fn a_v2_host_has_one_unified_hierarchy() {
        let mountinfo = "25 1 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        let found = parse_mountinfo(mountinfo);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].mount_point, PathBuf::from("/sys/fs/cgroup"));
        assert!(found[0].controllers.is_empty());
        let own = "0::/system.slice/berth-c1.scope\n";
        let path = process_cgroup(own, &found[0]).unwrap();
        assert_eq!(
            host_dir(&found[0], &path),
            PathBuf::from("/sys/fs/cgroup/system.slice/berth-c1.scope")
        );
    }

    #[test]
    fn own_cgroup_is_found_per_hierarchy() {
        let found = parse_mountinfo(MOUNTINFO);
        assert_eq!(
            process_cgroup(PROC_CGROUP, &found[0]),
            Some(PathBuf::from("/c1"))
        );
        assert_eq!(
            process_cgroup(PROC_CGROUP, &found[1]),
            Some(PathBuf::from("/c1"))
        );
        assert_eq!(
            process_cgroup(PROC_CGROUP, &found[3]),
            Some(PathBuf::from("/user.slice"))
        );
        assert_eq!(
            host_dir(&found[2], Path::new("/c1")),
            PathBuf::from("/sys/fs/cgroup/memory/c1")
        );
    }
}
