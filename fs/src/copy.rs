//! A directory tree copied from one root into another, descriptor to descriptor: what a
//! new volume gets from the image at its mount point (dockerd's copy-up).
//!
//! The source directory is resolved inside its root once; below it nothing is resolved
//! by name again: each entry is opened relative to its parent's descriptor with
//! `O_NOFOLLOW`, so a symlink in the tree is copied as a symlink (its target is text for
//! the container to interpret), never followed. Entries are created in the destination
//! with `O_EXCL` relative to their parent's descriptor. Owners, modes, times and
//! extended attributes (not overlayfs's own) are kept; hard links inside the tree stay
//! links; FIFOs are made again; devices and sockets are skipped (a volume gets no
//! device node from an image).

use crate::root::{kind, list_dir, open_at};
use crate::{Error, Result, Root};
use nix::errno::Errno;
use nix::fcntl::{readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, mkdirat, mknodat, FileStat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use xattr::FileExt;

/// Deepest directory nesting a copy follows; real images stay far below it.
pub const MAX_DEPTH: usize = 512;

/// What a copy made.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CopyStats {
    /// Directories, files, links and FIFOs made.
    pub entries: u64,
    /// Bytes of file content copied.
    pub bytes: u64,
    /// Devices and sockets left out.
    pub skipped: u64,
}

/// Copies the contents of the directory `src_path` of `src` (resolved inside `src`)
/// into the directory `dst` (the destination root itself), which should be empty. A
/// `src_path` that does not exist or is not a directory copies nothing (`Ok(None)`), as
/// dockerd copies nothing for it.
pub fn copy_dir_contents(src: &Root, src_path: &str, dst: &Root) -> Result<Option<CopyStats>> {
    let src_dir = match src.resolve(src_path, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
        Ok(fd) => fd,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let dst_dir = dst.resolve(".", OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
    let mut copier = Copier {
        dst,
        links: HashMap::new(),
        stats: CopyStats::default(),
    };
    copier.dir(src_dir.as_fd(), dst_dir.as_fd(), "", 0)?;
    // The top directory takes the source's owner and mode, as dockerd's copy gives it.
    let st = fstat(src_dir.as_raw_fd()).map_err(|errno| Error::Read {
        path: src_path.into(),
        errno,
    })?;
    set_meta(src_dir.as_fd(), dst_dir.as_fd(), &st, "/")?;
    Ok(Some(copier.stats))
}

struct Copier<'a> {
    dst: &'a Root,
    /// Files with several links already copied: (device, inode) → their path in `dst`.
    links: HashMap<(u64, u64), String>,
    stats: CopyStats,
}

impl Copier<'_> {
    fn dir(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        at: &str,
        depth: usize,
    ) -> Result<()> {
        if depth >= MAX_DEPTH {
            return Err(Error::TooDeep {
                path: at.into(),
                limit: MAX_DEPTH,
            });
        }
        let names = list_dir(src).map_err(|errno| Error::Read {
            path: shown(at),
            errno,
        })?;
        for name in names {
            let path = format!("{at}/{}", name.to_string_lossy());
            self.entry(src, dst, &name, &path, depth)?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        name: &OsStr,
        path: &str,
        depth: usize,
    ) -> Result<()> {
        let read = |errno| Error::Read {
            path: path.into(),
            errno,
        };
        let create = |errno| Error::Create {
            path: path.into(),
            errno,
        };
        let st =
            fstatat(Some(src.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(read)?;
        match kind(&st) {
            libc::S_IFDIR => {
                mkdirat(Some(dst.as_raw_fd()), name, Mode::from_bits_truncate(0o700))
                    .map_err(create)?;
                let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
                let s = open_at(src, name, dir_flags, Mode::empty()).map_err(read)?;
                let d = open_at(dst, name, dir_flags, Mode::empty()).map_err(create)?;
                self.dir(s.as_fd(), d.as_fd(), path, depth + 1)?;
                // After the contents: a read-only directory is filled first, and its
                // times are not changed again by what is made inside it.
                set_meta(s.as_fd(), d.as_fd(), &st, path)?;
            }
            libc::S_IFREG => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key) {
                        return self.link(first.clone(), dst, name, path);
                    }
                }
                let s = open_at(
                    src,
                    name,
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
                    Mode::empty(),
                )
                .map_err(read)?;
                // It must still be the regular file that was looked at.
                let now = fstat(s.as_raw_fd()).map_err(read)?;
                if kind(&now) != libc::S_IFREG {
                    return Err(Error::WrongKind {
                        path: path.into(),
                        what: "changed while being copied",
                    });
                }
                let d = open_at(
                    dst,
                    name,
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(create)?;
                let mut from = std::fs::File::from(s.try_clone().map_err(|e| Error::Read {
                    path: path.into(),
                    errno: crate::error::errno_of(&e),
                })?);
                let mut to = std::fs::File::from(d.try_clone().map_err(|e| Error::Create {
                    path: path.into(),
                    errno: crate::error::errno_of(&e),
                })?);
                self.stats.bytes +=
                    std::io::copy(&mut from, &mut to).map_err(|e| Error::Write {
                        path: path.into(),
                        errno: crate::error::errno_of(&e),
                    })?;
                set_meta(s.as_fd(), d.as_fd(), &st, path)?;
                if st.st_nlink > 1 {
                    self.links.insert(key, path.to_string());
                }
            }
            libc::S_IFLNK => {
                let target = readlinkat(Some(src.as_raw_fd()), name).map_err(read)?;
                nix::unistd::symlinkat(target.as_os_str(), Some(dst.as_raw_fd()), name)
                    .map_err(create)?;
                set_meta_nofollow(dst, name, &st, path)?;
            }
            libc::S_IFIFO => {
                mknodat(
                    Some(dst.as_raw_fd()),
                    name,
                    SFlag::S_IFIFO,
                    Mode::from_bits_truncate(0o600),
                    0,
                )
                .map_err(create)?;
                set_meta_nofollow(dst, name, &st, path)?;
                nix::sys::stat::fchmodat(
                    Some(dst.as_raw_fd()),
                    name,
                    Mode::from_bits_truncate(st.st_mode & 0o7777),
                    nix::sys::stat::FchmodatFlags::FollowSymlink,
                )
                .map_err(|errno| Error::Metadata {
                    path: path.into(),
                    errno,
                })?;
            }
            _ => {
                tracing::debug!(path, "device or socket not copied");
                self.stats.skipped += 1;
                return Ok(());
            }
        }
        self.stats.entries += 1;
        Ok(())
    }

    /// A second name of a file already copied to `first` (a path in `dst`).
    fn link(&mut self, first: String, dst: BorrowedFd<'_>, name: &OsStr, path: &str) -> Result<()> {
        let (parent, file) = first.rsplit_once('/').unwrap_or(("", first.as_str()));
        let parent_fd: OwnedFd = self.dst.resolve(
            if parent.is_empty() { "." } else { parent },
            OFlag::O_PATH | OFlag::O_DIRECTORY,
        )?;
        nix::unistd::linkat(
            Some(parent_fd.as_raw_fd()),
            OsStr::from_bytes(file.as_bytes()),
            Some(dst.as_raw_fd()),
            name,
            AtFlags::empty(),
        )
        .map_err(|errno| Error::Create {
            path: path.into(),
            errno,
        })?;
        self.stats.entries += 1;
        Ok(())
    }
}

fn shown(at: &str) -> String {
    if at.is_empty() {
        "/".into()
    } else {
        at.into()
    }
}

/// Owner, then mode (a chown clears set-id bits), then extended attributes (a chown
/// clears `security.capability` too), then times, on the open destination.
fn set_meta(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, st: &FileStat, path: &str) -> Result<()> {
    let meta = |errno| Error::Metadata {
        path: shown(path),
        errno,
    };
    nix::unistd::fchown(
        dst.as_raw_fd(),
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
    .map_err(meta)?;
    nix::sys::stat::fchmod(
        dst.as_raw_fd(),
        Mode::from_bits_truncate(st.st_mode & 0o7777),
    )
    .map_err(meta)?;
    copy_xattrs(src, dst).map_err(meta)?;
    let atime = TimeSpec::new(st.st_atime, st.st_atime_nsec);
    let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
    nix::sys::stat::futimens(dst.as_raw_fd(), &atime, &mtime).map_err(meta)
}

/// Owner and times of a symlink or FIFO just made in `dir`, not following it.
fn set_meta_nofollow(dir: BorrowedFd<'_>, name: &OsStr, st: &FileStat, path: &str) -> Result<()> {
    let meta = |errno| Error::Metadata {
        path: path.into(),
        errno,
    };
    nix::unistd::fchownat(
        Some(dir.as_raw_fd()),
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(meta)?;
    let atime = TimeSpec::new(st.st_atime, st.st_atime_nsec);
    let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
    nix::sys::stat::utimensat(
        Some(dir.as_raw_fd()),
        name,
        &atime,
        &mtime,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(meta)
}

/// The extended attributes of `src` set on `dst`, but overlayfs's own (`trusted.overlay.*`
/// belongs to the layer, not to the file). An attribute the kernel refuses with EPERM or
/// ENOTSUP is left out with a warning, as dockerd's copy leaves it.
fn copy_xattrs(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> nix::Result<()> {
    let from = std::fs::File::from(src.try_clone_to_owned().map_err(|_| Errno::EMFILE)?);
    let to = std::fs::File::from(dst.try_clone_to_owned().map_err(|_| Errno::EMFILE)?);
    let names = match from.list_xattr() {
        Ok(names) => names,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTSUP)) => return Ok(()),
        Err(e) => return Err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))),
    };
    for name in names {
        if name.as_bytes().starts_with(b"trusted.overlay.") {
            continue;
        }
        let Ok(Some(value)) = from.get_xattr(&name) else {
            continue;
        };
        match to.set_xattr(&name, &value) {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOTSUP)) => {
                tracing::warn!(xattr = ?name, error = %e, "extended attribute not copied");
            }
            Err(e) => return Err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
    use std::path::Path;

    #[test]
    fn copies_a_tree_and_follows_no_symlink() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host").unwrap();
        let image = tempfile::tempdir().unwrap();
        let i = image.path();
        std::fs::create_dir_all(i.join("data/sub")).unwrap();
        std::fs::write(i.join("data/f"), "content").unwrap();
        std::os::unix::fs::chown(i.join("data/f"), Some(12), Some(34)).unwrap();
        std::fs::set_permissions(i.join("data/f"), std::fs::Permissions::from_mode(0o4750))
            .unwrap();
        std::fs::hard_link(i.join("data/f"), i.join("data/sub/f2")).unwrap();
        symlink(outside.path(), i.join("data/escape")).unwrap();
        symlink("../../../../..", i.join("data/up")).unwrap();
        nix::unistd::mkfifo(&i.join("data/fifo"), Mode::from_bits_truncate(0o640)).unwrap();
        let volume = tempfile::tempdir().unwrap();
        let stats = copy_dir_contents(
            &Root::open(i).unwrap(),
            "/data",
            &Root::open(volume.path()).unwrap(),
        )
        .unwrap()
        .unwrap();
        let v = volume.path();
        assert_eq!(std::fs::read_to_string(v.join("f")).unwrap(), "content");
        let m = std::fs::metadata(v.join("f")).unwrap();
        assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o4750, 12, 34));
        assert_eq!(m.ino(), std::fs::metadata(v.join("sub/f2")).unwrap().ino());
        assert_eq!(
            std::fs::read_link(v.join("escape")).unwrap(),
            outside.path()
        );
        assert_eq!(
            std::fs::read_link(v.join("up")).unwrap(),
            Path::new("../../../../..")
        );
        assert!(std::fs::symlink_metadata(v.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(stats.bytes, 7);
    }

    #[test]
    fn a_symlinked_source_resolves_inside_its_root() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host").unwrap();
        let image = tempfile::tempdir().unwrap();
        let i = image.path();
        symlink(outside.path(), i.join("data")).unwrap();
        symlink("../../../../../../../../etc", i.join("up")).unwrap();
        let volume = tempfile::tempdir().unwrap();
        let root = Root::open(i).unwrap();
        let dst = Root::open(volume.path()).unwrap();
        // `/data` names a directory that the image does not have: nothing is copied.
        assert_eq!(copy_dir_contents(&root, "/data", &dst).unwrap(), None);
        assert_eq!(copy_dir_contents(&root, "/up", &dst).unwrap(), None);
        assert_eq!(
            copy_dir_contents(&root, "/../../../../etc", &dst).unwrap(),
            None
        );
        assert!(std::fs::read_dir(volume.path()).unwrap().next().is_none());
    }

    use std::os::unix::fs::FileTypeExt;
}
