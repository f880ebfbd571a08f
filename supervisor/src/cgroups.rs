//! A container's cgroups as the supervisor knows them: the host directories its init
//! process was in right after create (read from /proc/PID/cgroup and mountinfo, v1, hybrid
//! and v2 alike), recorded in the bundle. When the container's shim dies they are what
//! the supervisor empties (every process killed, a frozen cgroup thawed so that the kill
//! lands) and removes.
//!
//! Not libcgroups: its managers are keyed by a cgroup path and resolve mounts again on
//! each use, where this needs the exact directories recorded while the container was
//! known to be alive, and a guard that refuses any directory that also holds the
//! supervisor or the shim (a container run without a cgroup of its own must not take its
//! neighbours with it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One hierarchy's directory of a container's cgroup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupDir {
    /// The v1 controllers of the hierarchy ("memory", "cpu,cpuacct", "name=systemd"), or
    /// "" for the v2 (unified) hierarchy.
    pub controllers: String,
    /// The directory on the host.
    pub dir: PathBuf,
}

/// A line of /proc/PID/cgroup: (controllers, path in the hierarchy).
fn parse_proc_cgroup(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctl, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some((ctl.to_string(), path.to_string()))
        })
        .collect()
}

/// A cgroup filesystem mount: its super options (v1 controllers among them; empty for
/// cgroup2), the directory of the hierarchy it shows, and where it is mounted.
#[derive(Debug)]
struct Mount {
    v2: bool,
    options: BTreeSet<String>,
    root: String,
    point: PathBuf,
}

/// Undo mountinfo's octal escapes (`\040` for a space, ...).
pub fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                if let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(oct), 8) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_mounts(mountinfo: &str) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let v2 = match post[0] {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        out.push(Mount {
            v2,
            options: if v2 {
                BTreeSet::new()
            } else {
                post[2].split(',').map(String::from).collect()
            },
            root: unescape(pre[3]),
            point: PathBuf::from(unescape(pre[4])),
        });
    }
    out
}

/// The host directory of `path` in the hierarchy of `controllers`, through `mounts`.
fn host_dir(mounts: &[Mount], controllers: &str, path: &str) -> Option<PathBuf> {
    let wanted: Vec<&str> = controllers.split(',').filter(|c| !c.is_empty()).collect();
    let candidates = mounts.iter().filter(|m| {
        if controllers.is_empty() {
            m.v2
        } else {
            !m.v2 && wanted.iter().all(|c| m.options.contains(*c))
        }
    });
    for m in candidates {
        let rel = if m.root == "/" {
            path.trim_start_matches('/')
        } else {
            match path.strip_prefix(m.root.as_str()) {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                    rest.trim_start_matches('/')
                }
                _ => continue,
            }
        };
        return Some(if rel.is_empty() {
            m.point.clone()
        } else {
            m.point.join(rel)
        });
    }
    None
}

/// Whether `a` is `b` or one of its ancestors (cgroup paths, "/"-separated).
fn is_ancestor_or_self(a: &str, b: &str) -> bool {
    let a = a.trim_end_matches('/');
    a.is_empty() || b == a || b.starts_with(&format!("{a}/"))
}

/// The container's own cgroup directories, from the /proc/PID/cgroup texts of its init
/// process, of its shim and of the supervisor: a hierarchy where the container's cgroup
/// is the root, or holds the shim or the supervisor, is left out.
pub fn own_dirs(init: &str, shim: &str, supervisor: &str, mountinfo: &str) -> Vec<CgroupDir> {
    let mounts = parse_mounts(mountinfo);
    let shim = parse_proc_cgroup(shim);
    let supervisor = parse_proc_cgroup(supervisor);
    let path_in = |lines: &[(String, String)], ctl: &str| {
        lines.iter().find(|(c, _)| c == ctl).map(|(_, p)| p.clone())
    };
    let mut out = Vec::new();
    for (ctl, path) in parse_proc_cgroup(init) {
        let shared = [path_in(&shim, &ctl), path_in(&supervisor, &ctl)]
            .iter()
            .flatten()
            .any(|p| is_ancestor_or_self(&path, p));
        if shared || path.trim_matches('/').is_empty() {
            continue;
        }
        if let Some(dir) = host_dir(&mounts, &ctl, &path) {
            out.push(CgroupDir {
                controllers: ctl,
                dir,
            });
        }
    }
    out
}

/// The container's own cgroup directories now: its init process's, checked against the
/// shim's and our own.
pub fn record(init_pid: u32, shim_pid: u32) -> Vec<CgroupDir> {
    let read = |p: String| std::fs::read_to_string(p).unwrap_or_default();
    let init = read(format!("/proc/{init_pid}/cgroup"));
    if init.is_empty() {
        return Vec::new();
    }
    own_dirs(
        &init,
        &read(format!("/proc/{shim_pid}/cgroup")),
        &read("/proc/self/cgroup".into()),
        &read("/proc/self/mountinfo".into()),
    )
}

/// A directory and every cgroup below it, deepest first.
fn subtree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = Vec::new();
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push(e.path());
                }
            }
        }
        seen.push(d);
    }
    // Parents were seen before their children: reversed, children come first.
    out.extend(seen.into_iter().rev());
    out
}

/// Every PID in `dirs` and below.
pub fn pids(dirs: &[CgroupDir]) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for d in dirs {
        for dir in subtree(&d.dir) {
            if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
        }
    }
    out
}

/// Thaw every frozen cgroup of `dirs` (v1 freezer.state, v2 cgroup.freeze), parents
/// first, so that the signals sent to its processes are acted on.
fn thaw(dirs: &[CgroupDir]) {
    for d in dirs {
        let v1_freezer = d.controllers.split(',').any(|c| c == "freezer");
        let v2 = d.controllers.is_empty();
        if !v1_freezer && !v2 {
            continue;
        }
        for dir in subtree(&d.dir).into_iter().rev() {
            if v1_freezer {
                let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
            } else if dir.join("cgroup.freeze").exists() {
                let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
            }
        }
    }
}

/// Kill every process in `dirs` and below, thawing frozen ones, until none is left or
/// `limit` has passed; returns the PIDs still there (empty on success). The kill goes
/// first and the thaw second: a frozen v1 task keeps the SIGKILL pending and dies as it
/// thaws, without running another instruction of its own.
pub fn kill_all(dirs: &[CgroupDir], limit: Duration) -> BTreeSet<i32> {
    let deadline = Instant::now() + limit;
    // v2 kills the whole subtree at once, frozen or not (Linux 5.14+).
    for d in dirs.iter().filter(|d| d.controllers.is_empty()) {
        let _ = std::fs::write(d.dir.join("cgroup.kill"), "1");
    }
    loop {
        let left = pids(dirs);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        for pid in &left {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        thaw(dirs);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Remove `dirs` and every cgroup below them (empty ones only: rmdir); a few tries while
/// the last processes finish exiting. Returns the directories still there.
pub fn remove(dirs: &[CgroupDir]) -> Vec<PathBuf> {
    let mut left = Vec::new();
    for d in dirs {
        for dir in subtree(&d.dir) {
            let mut tries = 0;
            loop {
                match std::fs::remove_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(_) if tries < 50 => {
                        tries += 1;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => {
                        left.push(dir.clone());
                        break;
                    }
                }
            }
        }
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
25 1 0:23 / /sys rw,nosuid - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid shared:15 - cgroup cgroup rw,memory
36 30 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:16 - cgroup cgroup rw,cpu,cpuacct
37 30 0:33 / /sys/fs/cgroup/freezer rw,nosuid shared:17 - cgroup cgroup rw,freezer
";

    #[test]
    fn hybrid_host_records_the_containers_own_dirs_only() {
        let init = "5:freezer:/berth/c1\n4:cpu,cpuacct:/berth/c1\n3:memory:/berth/c1\n\
                    2:name=systemd:/\n0::/\n";
        let shim = "5:freezer:/\n4:cpu,cpuacct:/\n3:memory:/\n2:name=systemd:/\n0::/\n";
        let dirs = own_dirs(init, shim, shim, HYBRID_MOUNTINFO);
        let got: Vec<(&str, &Path)> = dirs
            .iter()
            .map(|d| (d.controllers.as_str(), d.dir.as_path()))
            .collect();
        assert_eq!(
            got,
            [
                ("freezer", Path::new("/sys/fs/cgroup/freezer/berth/c1")),
                (
                    "cpu,cpuacct",
                    Path::new("/sys/fs/cgroup/cpu,cpuacct/berth/c1")
                ),
                ("memory", Path::new("/sys/fs/cgroup/memory/berth/c1")),
            ]
        );
    }

    #[test]
    fn a_cgroup_shared_with_the_shim_or_supervisor_is_never_recorded() {
        let mountinfo = "40 30 0:40 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        // The container runs in the supervisor's own cgroup, or in one of its ancestors.
        assert!(own_dirs("0::/svc\n", "0::/svc\n", "0::/svc\n", mountinfo).is_empty());
        assert!(own_dirs("0::/svc\n", "0::/other\n", "0::/svc/sub\n", mountinfo).is_empty());
        assert!(own_dirs("0::/\n", "0::/a\n", "0::/b\n", mountinfo).is_empty());
        // Its own: recorded, on a pure v2 host.
        assert_eq!(
            own_dirs("0::/berth/c1\n", "0::/svc\n", "0::/svc\n", mountinfo),
            [CgroupDir {
                controllers: String::new(),
                dir: PathBuf::from("/sys/fs/cgroup/berth/c1"),
            }]
        );
        // A sibling whose name starts the same is not an ancestor.
        assert_eq!(
            own_dirs("0::/svc2\n", "0::/svc\n", "0::/svc\n", mountinfo).len(),
            1
        );
    }

    #[test]
    fn namespaced_mount_roots_and_escapes() {
        let mountinfo = "40 30 0:40 /outer /sys/fs/cgroup\\040x rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            own_dirs("0::/outer/c1\n", "0::/outer\n", "0::/outer\n", mountinfo)[0].dir,
            PathBuf::from("/sys/fs/cgroup x/c1")
        );
        assert_eq!(unescape("a\\011b\\134"), "a\tb\\");
    }

    #[test]
    fn thaw_walks_the_subtree_for_v1_and_v2() {
        let t = tempfile::tempdir().unwrap();
        let v1 = t.path().join("freezer/c1");
        let v2 = t.path().join("unified/c1");
        for d in [&v1, &v2] {
            std::fs::create_dir_all(d.join("sub")).unwrap();
        }
        for d in [v1.clone(), v1.join("sub")] {
            std::fs::write(d.join("freezer.state"), "FROZEN").unwrap();
        }
        for d in [v2.clone(), v2.join("sub")] {
            std::fs::write(d.join("cgroup.freeze"), "1").unwrap();
        }
        let dirs = [
            CgroupDir {
                controllers: "freezer".into(),
                dir: v1.clone(),
            },
            CgroupDir {
                controllers: String::new(),
                dir: v2.clone(),
            },
        ];
        // No process listed: nothing to kill, nothing left.
        assert!(kill_all(&dirs, Duration::from_millis(10)).is_empty());
        thaw(&dirs);
        for d in [v1.clone(), v1.join("sub")] {
            assert_eq!(
                std::fs::read_to_string(d.join("freezer.state")).unwrap(),
                "THAWED"
            );
        }
        for d in [v2.clone(), v2.join("sub")] {
            assert_eq!(
                std::fs::read_to_string(d.join("cgroup.freeze")).unwrap(),
                "0"
            );
        }
        // v2's kill file was written.
        assert_eq!(
            std::fs::read_to_string(v2.join("cgroup.kill")).unwrap(),
            "1"
        );
        // The subtree comes deepest first.
        assert_eq!(subtree(&v1), [v1.join("sub"), v1.clone()]);
        std::fs::write(v1.join("sub/cgroup.procs"), "1\n").unwrap();
        assert_eq!(pids(&dirs[..1]).into_iter().collect::<Vec<_>>(), [1]);
    }
}
