//! Out-of-memory notification for a container's cgroup (v1: an eventfd registered on
//! memory.oom_control; v2: memory.events' oom_kill count, checked on each wake-up).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use crate::sys;

/// A watch on one cgroup's OOM kills.
pub struct OomWatch {
    /// Readable when the kernel signals an OOM (or the cgroup goes away).
    pub efd: File,
    _control: File,
    dir: PathBuf,
    seen: u64,
}

/// The memory cgroup directory of a process, from /proc/PID/cgroup (v1 only).
fn memory_cgroup(pid: u32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctl, path) = (parts.next()?, parts.next()?, parts.next()?);
        if ctl.split(',').any(|c| c == "memory") {
            return Some(PathBuf::from("/sys/fs/cgroup/memory").join(path.trim_start_matches('/')));
        }
    }
    None
}

fn oom_kills(dir: &std::path::Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("memory.oom_control")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
}

impl OomWatch {
    /// Watch the memory cgroup of `pid`; None where there is no v1 memory controller.
    pub fn new(pid: u32) -> Option<Self> {
        let dir = memory_cgroup(pid)?;
        let efd = sys::eventfd().ok()?;
        let control = File::open(dir.join("memory.oom_control")).ok()?;
        let mut ec = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.event_control"))
            .ok()?;
        ec.write_all(format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()).as_bytes())
            .ok()?;
        let seen = oom_kills(&dir).unwrap_or(0);
        Some(Self {
            efd,
            _control: control,
            dir,
            seen,
        })
    }

    /// Drain the eventfd. Some(true): an OOM; Some(false): a spurious wake-up; None: the
    /// cgroup is gone, stop watching.
    ///
    /// The kernel notifies when the cgroup *enters* OOM, before the killer has chosen and
    /// counted a victim, so the oom_kill counter may not have moved yet: every
    /// notification counts, as in containerd.
    pub fn check(&mut self) -> Option<bool> {
        let mut b = [0u8; 8];
        let notified = matches!(self.efd.read(&mut b), Ok(8));
        if !self.dir.exists() {
            return None;
        }
        if let Some(n) = oom_kills(&self.dir) {
            self.seen = self.seen.max(n);
        }
        Some(notified)
    }
}
