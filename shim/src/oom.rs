//! Out-of-memory kills in a container's cgroup. cgroup v1: an eventfd registered on
//! memory.oom_control (the kernel signals when the cgroup enters OOM) and its oom_kill
//! count; v2: an inotify watch on memory.events and its oom_kill count. The shim checks
//! the watch when it wakes up and again right before it publishes the init's exit, so
//! that a TaskOOM always precedes the TaskExit of a process the OOM killer ended.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::sys;

enum Kind {
    /// v1: the eventfd (its registration keeps memory.oom_control open).
    V1 { _control: File },
    /// v2: inotify on memory.events.
    V2,
}

/// A watch on one cgroup's OOM kills.
pub struct OomWatch {
    /// Readable when the kernel signals an OOM or memory.events changes.
    pub efd: File,
    kind: Kind,
    dir: PathBuf,
    seen: u64,
    /// A v1 notification was published before the killer counted its kill: that kill
    /// is already told.
    owed: bool,
}

/// The memory cgroup directory of a process, from /proc/PID/cgroup: (dir, is v2).
fn memory_cgroup(pid: u32) -> Option<(PathBuf, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mut unified = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctl, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        if ctl.split(',').any(|c| c == "memory") {
            return Some((Path::new("/sys/fs/cgroup/memory").join(path), false));
        }
        if ctl.is_empty() {
            unified = Some(path.to_string());
        }
    }
    // v2 only where the unified hierarchy has the memory controller (a pure v2 host).
    let path = unified?;
    let dir = Path::new("/sys/fs/cgroup").join(path);
    dir.join("memory.events").exists().then_some((dir, true))
}

/// The `oom_kill` count of memory.oom_control (v1) or memory.events (v2).
pub fn parse_oom_kills(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
}

impl OomWatch {
    /// Watch the memory cgroup of `pid`; None where it has none.
    pub fn new(pid: u32) -> Option<Self> {
        let (dir, v2) = memory_cgroup(pid)?;
        let (efd, kind) = if v2 {
            (
                sys::inotify_modify(&dir.join("memory.events")).ok()?,
                Kind::V2,
            )
        } else {
            let efd = sys::eventfd().ok()?;
            let control = File::open(dir.join("memory.oom_control")).ok()?;
            let mut ec = std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.event_control"))
                .ok()?;
            ec.write_all(format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()).as_bytes())
                .ok()?;
            (efd, Kind::V1 { _control: control })
        };
        let mut w = Self {
            efd,
            kind,
            dir,
            seen: 0,
            owed: false,
        };
        w.seen = w.kills().unwrap_or(0);
        Some(w)
    }

    fn kills(&self) -> Option<u64> {
        let file = match self.kind {
            Kind::V1 { .. } => "memory.oom_control",
            Kind::V2 => "memory.events",
        };
        parse_oom_kills(&std::fs::read_to_string(self.dir.join(file)).ok()?)
    }

    /// Drain the descriptor and look at the count. Some(true): an OOM kill to report;
    /// Some(false): nothing new; None: the cgroup is gone, stop watching.
    ///
    /// v1 notifies when the cgroup *enters* OOM, before the killer has chosen and counted
    /// a victim, so a notification alone is reported (as containerd does) and the kill
    /// it announced is not reported again when it is counted.
    pub fn check(&mut self) -> Option<bool> {
        let mut b = [0u8; 512];
        // Non-blocking: eventfd gives 8 bytes, inotify whole events; EAGAIN when empty.
        let notified = matches!(self.efd.read(&mut b), Ok(n) if n > 0);
        if !self.dir.exists() {
            return None;
        }
        let kills = self.kills().unwrap_or(self.seen);
        let mut new = kills.saturating_sub(self.seen);
        self.seen = self.seen.max(kills);
        if self.owed && new > 0 {
            self.owed = false;
            new -= 1;
        }
        if matches!(self.kind, Kind::V1 { .. }) && notified && new == 0 {
            self.owed = true;
            return Some(true);
        }
        Some(new > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_v1_and_v2_files() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        let v2 = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(parse_oom_kills(v1), Some(3));
        assert_eq!(parse_oom_kills(v2), Some(2));
        assert_eq!(parse_oom_kills("oom 1\n"), None);
    }

    #[test]
    fn a_notified_kill_is_told_once() {
        let d = std::env::temp_dir().join(format!("berth-shim-oom-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("memory.oom_control"), "oom_kill 0\n").unwrap();
        let efd = sys::eventfd().unwrap();
        let mut w = OomWatch {
            efd: efd.try_clone().unwrap(),
            kind: Kind::V1 {
                _control: File::open(d.join("memory.oom_control")).unwrap(),
            },
            dir: d.clone(),
            seen: 0,
            owed: false,
        };
        assert_eq!(w.check(), Some(false));
        // The kernel notifies; the kill is counted a moment later.
        (&efd).write_all(&1u64.to_ne_bytes()).unwrap();
        assert_eq!(w.check(), Some(true));
        std::fs::write(d.join("memory.oom_control"), "oom_kill 1\n").unwrap();
        assert_eq!(w.check(), Some(false));
        // A kill counted without a notification seen (checked right before an exit).
        std::fs::write(d.join("memory.oom_control"), "oom_kill 2\n").unwrap();
        assert_eq!(w.check(), Some(true));
        std::fs::remove_dir_all(&d).unwrap();
        assert_eq!(w.check(), None);
    }
}
