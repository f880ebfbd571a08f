//! The resolver: a directory opened once as the `/` of every path below it.

use crate::clean::relative;
use crate::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, fstatat, mkdirat, FileStat, Mode};
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A directory that paths are resolved inside of, as if it were `/`.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
}

/// Takes ownership of a descriptor a nix call has just returned.
pub(crate) fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: every caller passes a descriptor that the kernel has just returned to it
    // and that nothing else owns or closes.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The file type bits of a stat.
pub fn kind(st: &FileStat) -> u32 {
    st.st_mode & libc::S_IFMT
}

/// Opens `name` in the directory `dir` (one component; nothing is resolved beyond what
/// `flags` allow: pass `O_NOFOLLOW` not to follow a final symlink).
pub fn open_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    flags: OFlag,
    mode: Mode,
) -> nix::Result<OwnedFd> {
    openat(Some(dir.as_raw_fd()), name, flags | OFlag::O_CLOEXEC, mode).map(owned)
}

/// The names in an open directory, without `.` and `..`.
pub fn list_dir(dir: BorrowedFd<'_>) -> nix::Result<Vec<OsString>> {
    let fd = open_at(
        dir,
        OsStr::new("."),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        Mode::empty(),
    )?;
    let mut d = nix::dir::Dir::from(fd)?;
    let mut names = Vec::new();
    for entry in d.iter() {
        let entry = entry?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name != "." && name != ".." {
            names.push(name.to_os_string());
        }
    }
    Ok(names)
}

/// Deepest directory tree that [`remove_all_at`] descends into.
const MAX_REMOVE_DEPTH: usize = 4096;

/// Removes `name` from `dir` and, for a directory, everything below it, without
/// following any symlink.
pub fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<()> {
    remove_all_depth(dir, name, 0)
}

fn remove_all_depth(dir: BorrowedFd<'_>, name: &OsStr, depth: usize) -> nix::Result<()> {
    let st = fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    if kind(&st) != libc::S_IFDIR {
        return nix::unistd::unlinkat(
            Some(dir.as_raw_fd()),
            name,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }
    if depth >= MAX_REMOVE_DEPTH {
        return Err(Errno::ELOOP);
    }
    let sub = open_at(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )?;
    for child in list_dir(sub.as_fd())? {
        remove_all_depth(sub.as_fd(), &child, depth + 1)?;
    }
    nix::unistd::unlinkat(
        Some(dir.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::RemoveDir,
    )
}

impl Root {
    /// Opens a host directory that Berth itself controls (a snapshot, a volume's data,
    /// a container's directory) as a root. The host path is trusted; what is resolved
    /// below it is not.
    pub fn open(path: &Path) -> Result<Self> {
        nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map(|fd| Self { fd: owned(fd) })
        .map_err(|errno| Error::OpenRoot {
            path: path.to_path_buf(),
            errno,
        })
    }

    /// A root from a directory descriptor already open (a process's `/proc/PID/root`,
    /// a detached mount).
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self { fd }
    }

    /// The root's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Resolves `path` (absolute or relative, it is all below the root) inside the root
    /// and opens it with `flags`. A final symlink is followed (inside the root) unless
    /// `flags` has `O_NOFOLLOW`.
    pub fn resolve(&self, path: &str, flags: OFlag) -> Result<OwnedFd> {
        let rel = relative(path);
        self.resolve_raw(Path::new(&rel), flags)
            .map_err(|errno| Error::Resolve {
                path: format!("/{}", rel.trim_start_matches('.')),
                errno,
            })
    }

    /// `openat2` with the resolution that keeps inside the root, on a path already
    /// relative to it (components are not cleaned: `..` is the kernel's to confine).
    pub fn resolve_raw(&self, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        openat2(self.fd.as_raw_fd(), rel, how).map(owned)
    }

    /// A directory inside this root, opened as a root of its own (its `..` and absolute
    /// symlinks then stop at it).
    pub fn subroot(&self, path: &str) -> Result<Root> {
        let fd = self.resolve(path, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        Ok(Root { fd })
    }

    /// Metadata of what `path` names, its last symlink followed (inside the root).
    pub fn stat(&self, path: &str) -> Result<FileStat> {
        let fd = self.resolve(path, OFlag::O_PATH)?;
        fstat(fd.as_raw_fd()).map_err(|errno| Error::Read {
            path: path.into(),
            errno,
        })
    }

    /// Whether `path` resolves (inside the root) to a directory.
    pub fn is_dir(&self, path: &str) -> Result<bool> {
        match self.stat(path) {
            Ok(st) => Ok(kind(&st) == libc::S_IFDIR),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A small regular file of the root (`/etc/passwd`), at most `limit` bytes; `None`
    /// when it does not exist. Opened `O_NONBLOCK | O_NOCTTY`, so that a FIFO or a
    /// terminal put there can neither hang the caller nor become its terminal.
    pub fn read_file(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let fd = match self.resolve(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY) {
            Ok(fd) => fd,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let st = fstat(fd.as_raw_fd()).map_err(|errno| Error::Read {
            path: path.into(),
            errno,
        })?;
        if kind(&st) != libc::S_IFREG {
            return Err(Error::WrongKind {
                path: path.into(),
                what: "not a regular file",
            });
        }
        let mut data = Vec::new();
        std::fs::File::from(fd)
            .take(limit + 1)
            .read_to_end(&mut data)
            .map_err(|e| Error::Read {
                path: path.into(),
                errno: crate::error::errno_of(&e),
            })?;
        if data.len() as u64 > limit {
            return Err(Error::TooLarge {
                path: path.into(),
                limit,
            });
        }
        Ok(Some(data))
    }

    /// Opens the directory `path`, creating what is missing of it one component at a
    /// time (mode `mode`, owned by the caller), each created relative to its parent as
    /// resolved inside the root. Returns an `O_PATH` descriptor of the directory.
    pub fn mkdir_all(&self, path: &str, mode: u32) -> Result<OwnedFd> {
        let rel = relative(path);
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
        match self.resolve_raw(Path::new(&rel), flags) {
            Err(Errno::ENOENT) => {}
            r => {
                return r.map_err(|errno| Error::Resolve {
                    path: path.into(),
                    errno,
                })
            }
        }
        let mut fd = self.resolve(".", flags)?;
        let mut done = String::new();
        for component in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if !done.is_empty() {
                done.push('/');
            }
            done.push_str(component);
            fd = match self.resolve_raw(Path::new(&done), flags) {
                Err(Errno::ENOENT) => {
                    match mkdirat(
                        Some(fd.as_raw_fd()),
                        component,
                        Mode::from_bits_truncate(mode),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(errno) => {
                            return Err(Error::Create {
                                path: format!("/{done}"),
                                errno,
                            })
                        }
                    }
                    self.resolve_raw(Path::new(&done), flags)
                }
                r => r,
            }
            .map_err(|errno| Error::Resolve {
                path: format!("/{done}"),
                errno,
            })?;
        }
        Ok(fd)
    }

    /// Whether the directory `path` has no entries (a missing one counts as empty).
    pub fn dir_is_empty(&self, path: &str) -> Result<bool> {
        let fd = match self.resolve(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(e) if e.is_not_found() => return Ok(true),
            Err(e) => return Err(e),
        };
        list_dir(fd.as_fd())
            .map(|names| names.is_empty())
            .map_err(|errno| Error::Read {
                path: path.into(),
                errno,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A root with an escape attempt of every kind pointing at a host directory.
    fn hostile(outside: &Path) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        symlink(outside, r.join("abs")).unwrap();
        symlink("../../../../../../../../..", r.join("up")).unwrap();
        symlink(
            format!("../../../../../..{}", outside.display()),
            r.join("rel"),
        )
        .unwrap();
        symlink("/proc/self/root", r.join("magic")).unwrap();
        d
    }

    #[test]
    fn magic_links_are_refused() {
        // The host's /proc as a root: /proc/self/root is a magic link there.
        let root = Root::open(Path::new("/proc")).unwrap();
        let e = root.read_file("/self/root/etc/hostname", 100).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ELOOP), "{e}");
    }

    #[test]
    fn symlinks_and_dotdot_stay_inside() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host").unwrap();
        let d = hostile(outside.path());
        let root = Root::open(d.path()).unwrap();
        for path in ["/abs/secret", "/rel/secret", "/up/secret", "/../../secret"] {
            let e = root.read_file(path, 100).unwrap();
            assert_eq!(e, None, "{path} must not reach the host");
        }
        // `/up/etc/passwd` climbs to the root and stops there: the root's own file.
        let inside = root.read_file("/up/etc/passwd", 100).unwrap().unwrap();
        assert!(inside.starts_with(b"root:"));
        // An absolute link to /proc names the root's own /proc, which it lacks.
        assert_eq!(root.read_file("/magic/etc/hostname", 100).unwrap(), None);
    }

    #[test]
    fn read_file_is_bounded_and_regular_only() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("big"), vec![b'x'; 100]).unwrap();
        nix::unistd::mkfifo(&d.path().join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        let root = Root::open(d.path()).unwrap();
        assert!(matches!(
            root.read_file("/big", 10),
            Err(Error::TooLarge { .. })
        ));
        assert_eq!(root.read_file("/big", 100).unwrap().unwrap().len(), 100);
        assert!(matches!(
            root.read_file("/fifo", 10),
            Err(Error::WrongKind { .. })
        ));
    }

    #[test]
    fn mkdir_all_creates_inside_through_symlinks() {
        let outside = tempfile::tempdir().unwrap();
        let d = hostile(outside.path());
        let root = Root::open(d.path()).unwrap();
        // A dangling symlink is not a directory to create through; the host is untouched.
        assert!(root.mkdir_all("/abs/made/here", 0o755).is_err());
        root.mkdir_all("/up/../x/y", 0o755).unwrap();
        assert!(d.path().join("x/y").is_dir());
        // A symlink to a directory inside the root is followed there.
        symlink("/x", d.path().join("tox")).unwrap();
        root.mkdir_all("/tox/z", 0o755).unwrap();
        assert!(d.path().join("x/z").is_dir());
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
    }

    #[test]
    fn remove_all_follows_nothing() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), "x").unwrap();
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("t/a")).unwrap();
        symlink(outside.path(), d.path().join("t/a/link")).unwrap();
        let root = Root::open(d.path()).unwrap();
        remove_all_at(root.fd(), OsStr::new("t")).unwrap();
        assert!(!d.path().join("t").exists());
        assert!(outside.path().join("keep").exists());
    }
}
