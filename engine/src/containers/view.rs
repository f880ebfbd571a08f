//! A container's root as `docker cp` sees it: a running container's through
//! `/proc/PID/root` (its volumes and binds are mounted there), a stopped one's as its
//! overlay mounted on a temporary directory with its volumes and binds mounted into it,
//! as dockerd mounts them for a copy. Mount points are resolved inside the container's
//! root (a symlink there cannot send a mount onto the host) and the mounts made on the
//! resolved descriptors; everything is unmounted, as one tree, when the view is dropped.

use super::archive::RootView;
use super::record::Record;
use super::{random_hex, ContainerService, Error, Result};
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

fn open_path(path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    nix::fcntl::open(path, flags | OFlag::O_CLOEXEC, Mode::empty()).map(|fd| {
        // SAFETY: the kernel has just returned this descriptor and nothing else owns it.
        unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
    })
}

fn open_at(dir: &OwnedFd, name: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        OsStr::new(name),
        flags | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(|fd| {
        // SAFETY: the kernel has just returned this descriptor and nothing else owns it.
        unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
    })
}

/// The path that names an open descriptor, for mount(2).
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Mounts `source` (a host path berthd trusts: a volume's data, a bind's source) at
/// `dst` inside `root`, made there if missing (a directory, or an empty file for a
/// file), read-only when `rw` is false.
fn bind_into(root: &berth_fs::Root, source: &Path, dst: &str, rw: bool) -> Result<()> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        Error::Internal(format!(
            "mounting {} at {dst} for the copy: {what}: {e}",
            source.display()
        ))
    };
    let is_dir = std::fs::metadata(source)
        .map_err(|e| failed("source", &e))?
        .is_dir();
    let target = if is_dir {
        root.mkdir_all(dst, 0o755)
            .map_err(|e| failed("target", &e))?
    } else {
        let (parent, name) = match dst.rsplit_once('/') {
            Some((p, n)) if !n.is_empty() => (p, n),
            _ => return Err(failed("target", &"not a file path")),
        };
        let dir = root
            .mkdir_all(parent, 0o755)
            .map_err(|e| failed("target", &e))?;
        let dir = open_at(&dir, ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .map_err(|e| failed("target", &e))?;
        // Created without following a symlink at the last component.
        let made = nix::fcntl::openat(
            Some(dir.as_raw_fd()),
            OsStr::new(name),
            OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        );
        if let Ok(fd) = made {
            let _ = nix::unistd::close(fd);
        }
        open_at(&dir, name, OFlag::O_PATH | OFlag::O_NOFOLLOW).map_err(|e| failed("target", &e))?
    };
    let on = fd_path(&target);
    mount(
        Some(source),
        &on,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| failed("bind", &e))?;
    if !rw {
        // The descriptor names the directory under the new mount: the mount itself is
        // found by resolving the path again (inside the root).
        let mounted = root
            .resolve(dst, OFlag::O_PATH | OFlag::O_NOFOLLOW)
            .map_err(|e| failed("read-only", &e))?;
        mount(
            None::<&str>,
            &fd_path(&mounted),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| failed("read-only", &e))?;
    }
    Ok(())
}

impl ContainerService {
    /// The container's configured user (`Config.User`, empty if none): whom `docker cp
    /// -a` gives what it copies in.
    pub fn configured_user(&self, name: &str) -> Result<String> {
        let c = self.get(name)?;
        Ok(c.read(|r| r.config.user.clone()))
    }

    /// The container's root for `docker cp`. Blocking.
    pub fn root_view(&self, name: &str) -> Result<RootView> {
        let c = self.get(name)?;
        let rec = c.record();
        if c.running() && rec.state.pid > 0 {
            return running_root(&rec, name);
        }
        let lowers = self.lowerdirs(&rec)?;
        let dir = self.dir(&rec.id);
        let mnt = self
            .exec_root
            .join("mnt")
            .join(format!("{}-{}", &rec.id[..12], random_hex(4)));
        std::fs::create_dir_all(&mnt).map_err(|e| Error::Internal(format!("mkdir: {e}")))?;
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lowers
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
            dir.join("upper").display(),
            dir.join("work").display()
        );
        mount(
            Some("overlay"),
            &mnt,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|e| {
            let _ = std::fs::remove_dir(&mnt);
            Error::Internal(format!("mounting the container's filesystem: {e}"))
        })?;
        // From here the view owns the mount: dropping it (on any error too) unmounts
        // the overlay and whatever is mounted into it.
        let fd = match open_path(&mnt, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = nix::mount::umount2(&mnt, nix::mount::MntFlags::MNT_DETACH);
                let _ = std::fs::remove_dir(&mnt);
                return Err(Error::Internal(format!(
                    "opening the container's root: {e}"
                )));
            }
        };
        let root = berth_fs::Root::from_fd(
            fd.try_clone()
                .map_err(|e| Error::Internal(format!("opening the container's root: {e}")))?,
        );
        let view = RootView::new(fd, Some(mnt));
        self.mount_volumes(&root, &rec)?;
        Ok(view)
    }

    /// The volumes and binds of a stopped container, mounted into its root.
    fn mount_volumes(&self, root: &berth_fs::Root, rec: &Record) -> Result<()> {
        for m in &rec.mounts {
            let p = &m.point;
            if p.kind != "volume" && p.kind != "bind" {
                continue;
            }
            if let Some(name) = m.volume() {
                // A volume made with options is mounted while something uses it.
                self.volumes.activate(name)?;
            }
            if p.source.is_empty() || !Path::new(&p.source).exists() {
                continue;
            }
            bind_into(root, Path::new(&p.source), &p.destination, p.rw)?;
        }
        Ok(())
    }
}

/// A running container's root: opened through a descriptor of its init's /proc
/// directory, which keeps naming that process even if it exits and its PID is reused;
/// its cgroup then proves that it is the container's process and not a host process
/// that took the PID after the container exited.
fn running_root(rec: &Record, name: &str) -> Result<RootView> {
    let gone = || Error::Conflict(format!("container {name} is exiting; try again"));
    let proc_dir = open_path(
        Path::new(&format!("/proc/{}", rec.state.pid)),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
    )
    .map_err(|_| gone())?;
    let fd = open_at(&proc_dir, "root", OFlag::O_PATH | OFlag::O_DIRECTORY).map_err(|_| gone())?;
    let mut cgroup = String::new();
    open_at(&proc_dir, "cgroup", OFlag::O_RDONLY)
        .map(std::fs::File::from)
        .map_err(|_| gone())?
        .read_to_string(&mut cgroup)
        .map_err(|_| gone())?;
    if !cgroup.contains(&rec.id) {
        return Err(gone());
    }
    Ok(RootView::new(fd, None))
}
