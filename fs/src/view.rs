//! An image's layers (and a container's upper directory) seen as one read-only root: the
//! file system a container starts with, for reading what the image has at a path (a
//! volume's initial content, `/etc/passwd`) without ever building a host path from it.
//!
//! Two or more layers are stacked by the kernel: a read-only overlay mounted on a
//! private scratch directory, opened, and at once lazily unmounted. The open descriptor
//! keeps the detached mount alive until it is dropped and nothing else can see it: no
//! mount is left behind, even if the process dies a moment later (bar the microseconds
//! between mount and unmount; [`sweep`] removes what such a death left). One layer
//! needs no overlay: the layer's directory is the root. [`open_writable`] mounts the
//! same way with an upper directory, for writing a new layer (a build's COPY).

use crate::root::owned;
use crate::{Error, Result, Root};
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::Mode;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Opens `layers` (top first: a container's upper directory, then the image's layers
/// from the newest to the base) as one read-only root. `scratch` is a private directory
/// of the caller's (e.g. under its exec root) where the overlay is briefly mounted.
pub fn open_layers(layers: &[PathBuf], scratch: &Path) -> Result<Root> {
    match layers {
        [] => Err(Error::InvalidPath(
            "an image without layers has no root".into(),
        )),
        [only] => Root::open(only),
        _ => mount_detached(layers, scratch),
    }
}

/// A writable view: `lowers` (top first) under `upper`, writes landing in `upper`
/// (copy-up and whiteouts as a container's root gets them), for making a layer by
/// writing into it (a build's COPY, ADD and WORKDIR). `work` is an empty directory on
/// the same file system as `upper`. Mounted and detached at once as [`open_layers`]
/// does; without lower layers (`FROM scratch`) `upper` itself is the root.
pub fn open_writable(
    upper: &Path,
    work: &Path,
    lowers: &[PathBuf],
    scratch: &Path,
) -> Result<Root> {
    if lowers.is_empty() {
        return Root::open(upper);
    }
    let lower = lowers
        .iter()
        .map(|p| escape_lowerdir(&p.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(":");
    let data = format!(
        "lowerdir={lower},upperdir={},workdir={}",
        escape_lowerdir(&upper.to_string_lossy()),
        escape_lowerdir(&work.to_string_lossy())
    );
    mount_and_open(&data, MsFlags::MS_NODEV | MsFlags::MS_NOSUID, scratch)
}

/// Each mount point gets a name of its own, also between threads.
static NEXT: AtomicU64 = AtomicU64::new(0);

fn mount_detached(layers: &[PathBuf], scratch: &Path) -> Result<Root> {
    let lower = layers
        .iter()
        .map(|p| escape_lowerdir(&p.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(":");
    let data = format!("lowerdir={lower}");
    mount_and_open(
        &data,
        MsFlags::MS_RDONLY | MsFlags::MS_NODEV | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        scratch,
    )
}

fn mount_and_open(data: &str, flags: MsFlags, scratch: &Path) -> Result<Root> {
    let mount_err = |errno| Error::Mount { errno };
    std::fs::create_dir_all(scratch).map_err(|e| mount_err(crate::error::errno_of(&e)))?;
    let point = scratch.join(format!(
        "view-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir(&point).map_err(|e| mount_err(crate::error::errno_of(&e)))?;
    let mounted = nix::mount::mount(Some("overlay"), &point, Some("overlay"), flags, Some(data));
    if let Err(errno) = mounted {
        let _ = std::fs::remove_dir(&point);
        return Err(mount_err(errno));
    }
    let opened = nix::fcntl::open(
        &point,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    // Detached at once: only the descriptor reaches the overlay from now on.
    let _ = nix::mount::umount2(&point, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_dir(&point);
    opened.map(|fd| Root::from_fd(owned(fd))).map_err(mount_err)
}

/// Overlayfs splits `lowerdir` at `:` and takes `\` as an escape: a layer path that
/// contains either is escaped.
fn escape_lowerdir(path: &str) -> String {
    path.replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace(',', "\\,")
}

/// Removes the mount points that a process killed between mount and unmount left in
/// `scratch` (call it at start, before any view is opened).
pub fn sweep(scratch: &Path) {
    let Ok(entries) = std::fs::read_dir(scratch) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with("view-") {
            let p = entry.path();
            let _ = nix::mount::umount2(&p, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(&p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_separators() {
        assert_eq!(escape_lowerdir("/a:b\\c,d"), "/a\\:b\\\\c\\,d");
    }

    #[test]
    fn one_layer_is_its_own_root() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), "x").unwrap();
        let root = open_layers(&[d.path().to_path_buf()], Path::new("/nonexistent")).unwrap();
        assert_eq!(root.read_file("/f", 10).unwrap().unwrap(), b"x");
    }

    /// Needs root (mounts an overlay); skipped otherwise.
    #[test]
    fn layers_stack_and_leave_no_mount() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let base = tempfile::tempdir().unwrap();
        let top = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        std::fs::create_dir(base.path().join("etc")).unwrap();
        std::fs::write(base.path().join("etc/passwd"), "base").unwrap();
        std::fs::write(base.path().join("etc/group"), "base").unwrap();
        std::fs::create_dir(top.path().join("etc")).unwrap();
        std::fs::write(top.path().join("etc/passwd"), "top").unwrap();
        let root = open_layers(
            &[top.path().to_path_buf(), base.path().to_path_buf()],
            scratch.path(),
        )
        .unwrap();
        assert_eq!(root.read_file("/etc/passwd", 10).unwrap().unwrap(), b"top");
        assert_eq!(root.read_file("/etc/group", 10).unwrap().unwrap(), b"base");
        assert!(std::fs::read_dir(scratch.path()).unwrap().next().is_none());
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&scratch.path().display().to_string()));
    }

    /// Needs root (mounts an overlay); skipped otherwise.
    #[test]
    fn writable_view_writes_to_upper_only() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let base = tempfile::tempdir().unwrap();
        let up = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        std::fs::create_dir(base.path().join("etc")).unwrap();
        std::fs::write(base.path().join("etc/passwd"), "base").unwrap();
        let (upper, work) = (up.path().join("upper"), up.path().join("work"));
        std::fs::create_dir(&upper).unwrap();
        std::fs::create_dir(&work).unwrap();
        {
            let root =
                open_writable(&upper, &work, &[base.path().to_path_buf()], scratch.path()).unwrap();
            root.mkdir_all("/etc/new/dir", 0o755).unwrap();
            assert_eq!(root.read_file("/etc/passwd", 10).unwrap().unwrap(), b"base");
        }
        assert!(upper.join("etc/new/dir").is_dir());
        assert!(!base.path().join("etc/new").exists());
        assert!(std::fs::read_dir(scratch.path()).unwrap().next().is_none());
    }
}
