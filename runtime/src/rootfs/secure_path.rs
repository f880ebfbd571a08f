//! Path resolution that cannot leave the container's root.
//!
//! Every mount destination is resolved with openat2(RESOLVE_IN_ROOT): symlinks, `..` and
//! absolute links are interpreted as if the rootfs were `/`, so an image cannot point a
//! mount at the host (CVE-2021-30465 and friends). The result is an O_PATH descriptor and
//! mounts go through `/proc/self/fd/N`, so a later swap of the path changes nothing.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::fcntl::{readlinkat, AtFlags};
use nix::sys::stat::{fstatat, Mode};

use crate::error::{Context, Result, RuntimeError};

/// What to create when the path does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Only resolve; a missing path is an error.
    Nothing,
    /// Create missing directories, the last one included.
    Dir,
    /// Create missing parent directories and an empty file as the last component.
    File,
}

/// The components of `path` below the root, with `.` dropped. `..` is kept: the kernel
/// clamps it at the root during resolution.
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| {
            !matches!(
                c,
                Component::RootDir | Component::CurDir | Component::Prefix(_)
            )
        })
        .collect()
}

fn open_in_root(root: &impl AsFd, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(root.as_fd().as_raw_fd(), path, how)?;
    // SAFETY: openat2 just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Resolve `path` inside `root` to an O_PATH descriptor, creating what `create` asks for.
pub fn resolve(root: &impl AsFd, path: &Path, create: Create) -> Result<OwnedFd> {
    let rel = relative(path);
    match open_in_root(root, &rel, OFlag::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) if create != Create::Nothing => {}
        Err(e) => return Err(e).with_context(|| format!("resolve {} in rootfs", path.display())),
    }
    create_missing(root, &rel, create).and_then(|resolved| {
        open_in_root(root, &resolved, OFlag::O_PATH)
            .with_context(|| format!("resolve {} in rootfs", path.display()))
    })
}

/// Walk `rel` component by component inside the root, following symlinks by hand (so
/// that a dangling link's target is created inside the root, never outside), creating
/// what is missing. Returns the symlink-free path inside the root.
fn create_missing(root: &impl AsFd, rel: &Path, create: Create) -> Result<PathBuf> {
    const MAX_LINKS: usize = 40;
    let mut pending: VecDeque<OsString> = rel.iter().map(OsString::from).collect();
    let mut current = PathBuf::new();
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            current.pop();
            continue;
        }
        if name == "." || name.is_empty() {
            continue;
        }
        let parent = open_in_root(root, &current, OFlag::O_PATH | OFlag::O_DIRECTORY)
            .with_context(|| format!("resolve {} in rootfs", current.display()))?;
        match fstatat(
            Some(parent.as_raw_fd()),
            name.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(stat) if stat.st_mode & libc::S_IFMT == libc::S_IFLNK => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Errno::ELOOP)
                        .with_context(|| format!("resolve {} in rootfs", rel.display()));
                }
                let target = readlinkat(Some(parent.as_raw_fd()), name.as_os_str())
                    .with_context(|| format!("read link {}", current.join(&name).display()))?;
                let target = PathBuf::from(target);
                if target.is_absolute() {
                    current = PathBuf::new();
                }
                for (index, component) in relative(&target).iter().enumerate() {
                    pending.insert(index, component.to_os_string());
                }
            }
            Ok(_) => current.push(&name),
            Err(Errno::ENOENT) => {
                let made = if pending.is_empty() && create == Create::File {
                    nix::fcntl::openat(
                        Some(parent.as_raw_fd()),
                        name.as_os_str(),
                        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(0o644),
                    )
                    .map(|fd| {
                        // SAFETY: openat returned a fresh descriptor; we close it right away.
                        drop(unsafe { OwnedFd::from_raw_fd(fd) })
                    })
                } else {
                    nix::sys::stat::mkdirat(
                        Some(parent.as_raw_fd()),
                        name.as_os_str(),
                        Mode::from_bits_truncate(0o755),
                    )
                };
                match made {
                    Ok(()) | Err(Errno::EEXIST) => current.push(&name),
                    Err(e) => {
                        return Err(e).with_context(|| {
                            format!("create {} in rootfs", current.join(&name).display())
                        })
                    }
                }
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("resolve {} in rootfs", current.join(&name).display())
                })
            }
        }
    }
    Ok(current)
}

/// Open a directory to serve as the root for `resolve`.
pub fn open_root(path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {}", path.display()))?;
    // SAFETY: open just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The `/proc/self/fd/N` path through which a descriptor is mounted on or reopened.
pub fn fd_path(fd: &impl AsFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

/// Whether a resolved descriptor is a directory.
pub fn is_dir(fd: &impl AsFd) -> Result<bool> {
    let stat = nix::sys::stat::fstat(fd.as_fd().as_raw_fd()).context("stat mount target")?;
    Ok(stat.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// Fails with a clear message when `path` is not absolute (mount destinations must be).
pub fn require_absolute(path: &Path, what: &str) -> Result<()> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(RuntimeError::InvalidConfig(format!(
            "{what} {} must be an absolute path",
            path.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn real_path(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(fd_path(fd)).unwrap()
    }

    #[test]
    fn symlinks_cannot_escape_the_root() {
        let outside = tempfile::tempdir().unwrap();
        let root_dir = tempfile::tempdir().unwrap();
        let root_path = root_dir.path();
        symlink(outside.path(), root_path.join("escape")).unwrap();
        symlink("../../../../../../", root_path.join("dotdot")).unwrap();
        let root = open_root(root_path).unwrap();

        let fd = resolve(&root, Path::new("/escape/target"), Create::Dir).unwrap();
        let got = real_path(&fd);
        assert!(got.starts_with(root_path), "{got:?} escaped");
        assert!(!outside.path().join("target").exists());
        // The absolute link target was taken relative to the rootfs.
        assert!(got.starts_with(root_path.join(outside.path().strip_prefix("/").unwrap())));

        let fd = resolve(&root, Path::new("dotdot/etc/x"), Create::File).unwrap();
        assert_eq!(real_path(&fd), root_path.join("etc/x"));
        assert!(!is_dir(&fd).unwrap());
    }

    #[test]
    fn nothing_is_created_when_not_asked() {
        let root_dir = tempfile::tempdir().unwrap();
        let root = open_root(root_dir.path()).unwrap();
        let err = resolve(&root, Path::new("/missing/dir"), Create::Nothing).unwrap_err();
        assert!(
            err.to_string().contains("resolve /missing/dir in rootfs"),
            "{err}"
        );
        assert!(!root_dir.path().join("missing").exists());
        let fd = resolve(&root, Path::new("/a/b/c"), Create::Dir).unwrap();
        assert!(is_dir(&fd).unwrap());
        assert_eq!(real_path(&fd), root_dir.path().join("a/b/c"));
    }
}
