//! A task's bundle directory (`<state>/tasks/<namespace>/<id>`), the durable record of a
//! task: config.json and the rootfs mount point, the shim's files (address, shim.pid,
//! init.pid, init.exit, log FIFO), and the supervisor's own: which shim binary, the
//! container's cgroups, the shim's PID, whether the init exit was delivered, and, once a
//! shim died, the stopped task's exit (`shim-died`).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cgroups::{self, CgroupDir};

/// The shim binary that serves the task (for its `delete` command).
pub const SHIM_BINARY: &str = "shim-binary";
/// The shim's PID as its Connect call answered it.
pub const SHIM_PID: &str = "shim-pid";
/// The container's own cgroup directories (JSON), recorded after create.
pub const CGROUPS: &str = "cgroups";
/// Marker: the init exit was delivered to the event bus.
pub const EXIT_REPORTED: &str = "exit-reported";
/// The exit of a task whose shim died: "STATUS SECS NANOS PID" then the reason.
pub const SHIM_DIED: &str = "shim-died";
/// berth-shim's record of the init exit: "STATUS SECS NANOS [oom]".
pub const INIT_EXIT: &str = "init.exit";
/// The runtime's PID file of the init process (berth-shim and runc-v2 both write it).
pub const INIT_PID: &str = "init.pid";
/// The shim's log FIFO.
pub const LOG_FIFO: &str = "log";

/// The bundle directory of a task.
pub fn dir(state: &Path, ns: &str, id: &str) -> PathBuf {
    state.join("tasks").join(ns).join(id)
}

/// How a process ended, as the supervisor reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    /// Host PID it had (0 if unknown).
    pub pid: u32,
    /// Exit status (code, or 128+signal).
    pub status: u32,
    /// When (seconds, nanoseconds since the epoch).
    pub at: (i64, i32),
    /// Why, when the process did not end by itself; else empty.
    pub reason: String,
    /// The OOM killer struck the container before it ended (init only).
    pub oom: bool,
}

/// Write `data` to `dir/name` atomically (temporary file, fsync, rename): a crash
/// leaves the old content or the new, never a torn file.
pub fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))
}

/// The init exit berth-shim recorded: (status, time, killed by the OOM killer).
pub fn read_init_exit(bundle: &Path) -> Option<(u32, (i64, i32), bool)> {
    parse_init_exit(&std::fs::read_to_string(bundle.join(INIT_EXIT)).ok()?)
}

fn parse_init_exit(text: &str) -> Option<(u32, (i64, i32), bool)> {
    let mut it = text.split_whitespace();
    let status = it.next()?.parse().ok()?;
    let secs = it.next()?.parse().ok()?;
    let nanos = it.next()?.parse().ok()?;
    let oom = it.next() == Some("oom");
    Some((status, (secs, nanos), oom))
}

/// Record the exit of a task whose shim died.
pub fn write_tombstone(bundle: &Path, e: &Exit) -> std::io::Result<()> {
    let oom = if e.oom { " oom" } else { "" };
    let text = format!(
        "{} {} {} {}{oom}\n{}\n",
        e.status, e.at.0, e.at.1, e.pid, e.reason
    );
    write_atomic(bundle, SHIM_DIED, text.as_bytes())
}

/// The exit of a task whose shim died, if recorded.
pub fn read_tombstone(bundle: &Path) -> Option<Exit> {
    parse_tombstone(&std::fs::read_to_string(bundle.join(SHIM_DIED)).ok()?)
}

fn parse_tombstone(text: &str) -> Option<Exit> {
    let (first, reason) = text.split_once('\n').unwrap_or((text, ""));
    let v: Vec<&str> = first.split_whitespace().collect();
    if v.len() != 4 && !(v.len() == 5 && v[4] == "oom") {
        return None;
    }
    Some(Exit {
        status: v[0].parse().ok()?,
        at: (v[1].parse().ok()?, v[2].parse().ok()?),
        pid: v[3].parse().ok()?,
        reason: reason.trim_end_matches('\n').to_string(),
        oom: v.len() == 5,
    })
}

/// Record the container's own cgroups.
pub fn write_cgroups(bundle: &Path, dirs: &[CgroupDir]) -> std::io::Result<()> {
    let json = serde_json::to_vec(dirs).map_err(std::io::Error::other)?;
    write_atomic(bundle, CGROUPS, &json)
}

/// The container's own cgroups, as recorded.
pub fn read_cgroups(bundle: &Path) -> Vec<CgroupDir> {
    std::fs::read(bundle.join(CGROUPS))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// A PID recorded in a file of the bundle.
pub fn read_pid(bundle: &Path, name: &str) -> Option<u32> {
    std::fs::read_to_string(bundle.join(name))
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
}

/// Every mount point at or under `dir`, deepest first (from our mountinfo).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(cgroups::unescape(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    out.dedup();
    out
}

/// Unmount everything at or under `dir` (detached, stacked mounts included). Returns
/// what is still mounted there.
pub fn unmount_all(dir: &Path) -> Vec<PathBuf> {
    for _ in 0..16 {
        let points = mounts_under(dir);
        if points.is_empty() {
            break;
        }
        for p in points {
            let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    mounts_under(dir)
}

/// Why a bundle was not removed.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// Something is still mounted in it: removing would delete what the mount shows (a
    /// container's upper directory, a volume).
    #[error("bundle {}: still mounted: {}", .0.display(), .1)]
    Mounted(PathBuf, String),
    /// The file system said no.
    #[error("bundle {}: {}", .0.display(), .1)]
    Io(PathBuf, std::io::Error),
}

fn ensure_unmounted(dir: &Path) -> Result<(), RemoveError> {
    let left = unmount_all(dir);
    if left.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = left.iter().map(|p| p.display().to_string()).collect();
    Err(RemoveError::Mounted(dir.to_path_buf(), list.join(", ")))
}

/// Remove a bundle; refuses (and removes nothing) while anything is mounted in it.
pub fn remove(dir: &Path) -> Result<(), RemoveError> {
    if !dir.exists() {
        return Ok(());
    }
    ensure_unmounted(dir)?;
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RemoveError::Io(dir.to_path_buf(), e)),
    }
}

/// Empty a bundle down to what a stopped task whose shim died needs (its tombstone and
/// the delivered marker); refuses while anything is mounted in it.
pub fn empty_for_tombstone(dir: &Path) -> Result<(), RemoveError> {
    ensure_unmounted(dir)?;
    let entries = std::fs::read_dir(dir).map_err(|e| RemoveError::Io(dir.to_path_buf(), e))?;
    for e in entries.flatten() {
        let name = e.file_name();
        if name == SHIM_DIED || name == EXIT_REPORTED {
            continue;
        }
        let p = e.path();
        let res = if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        if let Err(err) = res {
            if err.kind() != std::io::ErrorKind::NotFound {
                return Err(RemoveError::Io(p, err));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let e = Exit {
            pid: 42,
            status: 137,
            at: (1_700_000_000, 5),
            reason: "shim died (pid 7)".into(),
            oom: false,
        };
        write_tombstone(d.path(), &e).unwrap();
        assert_eq!(read_tombstone(d.path()), Some(e.clone()));
        let e = Exit { oom: true, ..e };
        write_tombstone(d.path(), &e).unwrap();
        assert_eq!(read_tombstone(d.path()), Some(e));
        assert_eq!(parse_tombstone("137 1 2\n"), None);
        assert_eq!(parse_init_exit("137 1 2 oom\n"), Some((137, (1, 2), true)));
        assert_eq!(parse_init_exit("0 1 2\n"), Some((0, (1, 2), false)));
        assert_eq!(parse_init_exit("x"), None);
        let dirs = vec![CgroupDir {
            controllers: "memory".into(),
            dir: "/sys/fs/cgroup/memory/c1".into(),
        }];
        write_cgroups(d.path(), &dirs).unwrap();
        assert_eq!(read_cgroups(d.path()), dirs);
    }

    #[test]
    fn emptying_keeps_the_tombstone_and_marker() {
        let d = tempfile::tempdir().unwrap();
        let b = d.path().join("b");
        std::fs::create_dir_all(b.join("rootfs/etc")).unwrap();
        for f in ["config.json", SHIM_DIED, EXIT_REPORTED, "address"] {
            std::fs::write(b.join(f), "x").unwrap();
        }
        empty_for_tombstone(&b).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&b)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [EXIT_REPORTED, SHIM_DIED]);
        remove(&b).unwrap();
        assert!(!b.exists());
        remove(&b).unwrap();
    }
}
