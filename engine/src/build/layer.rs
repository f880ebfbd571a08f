//! Layers from directories: a container's upper directory (what a RUN step or
//! `docker commit` made) or a layer made by writing through an overlay (COPY, ADD,
//! WORKDIR), written as an OCI layer tar (overlayfs whiteouts, char 0:0, become
//! `.wh.NAME` files and opaque directories get `.wh..wh..opq`, as the OCI image spec and
//! Docker write them), and the same walk as `docker diff`'s A/C/D list. Also the
//! `docker export` tar of a container's merged file system.
//!
//! Everything is read through descriptors: the directory is opened once and each entry
//! relative to its parent with `O_NOFOLLOW`, so a container that swaps names for
//! symlinks cannot make the walk read host files.
//!
//! The runtime makes mount points in a container's upper directory (`/proc`, `/sys`,
//! `/dev`, empty `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` and `/etc` when the
//! image lacks them); dockerd keeps these in a separate init layer, so they are not part
//! of a commit or a diff here either.

use crate::content::{ContentStore, Digest};
use crate::images::store::LayerRecord;
use berth_fs::root::{kind, list_dir, open_at, remove_all_at};
use berth_fs::Root;
use nix::errno::Errno;
use nix::fcntl::{readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use xattr::FileExt;

/// Errors of layer I/O.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// Reading the directory failed.
    #[error("reading {path}: {errno}")]
    Read {
        /// The path, relative to the layer.
        path: String,
        /// Why.
        errno: Errno,
    },
    /// Writing the tar failed.
    #[error("writing the layer: {0}")]
    Write(std::io::Error),
    /// Storing the layer failed.
    #[error("storing the layer: {0}")]
    Store(String),
}

/// Result of layer operations.
pub type Result<T> = std::result::Result<T, LayerError>;

/// Deepest nesting walked (a container could nest directories without end).
const MAX_DEPTH: usize = 1024;

/// Trees the runtime mounts over; never content of a layer.
const MOUNT_TREES: &[&str] = &["proc", "sys", "dev"];
/// Files the runtime bind-mounts over (as empty files when the image lacks them).
const MOUNT_FILES: &[&str] = &["etc/hosts", "etc/hostname", "etc/resolv.conf"];

/// One change of `docker diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Absolute path in the container.
    pub path: String,
    /// 0: modified, 1: added, 2: deleted (Docker's `Kind`).
    pub kind: u8,
}

fn read_err(path: &str) -> impl Fn(Errno) -> LayerError + '_ {
    move |errno| LayerError::Read {
        path: if path.is_empty() {
            "/".into()
        } else {
            path.to_string()
        },
        errno,
    }
}

fn is_whiteout(st: &FileStat) -> bool {
    kind(st) == libc::S_IFCHR && st.st_rdev == 0
}

fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    let Ok(f) = dir.try_clone_to_owned().map(std::fs::File::from) else {
        return false;
    };
    matches!(f.get_xattr("trusted.overlay.opaque"), Ok(Some(v)) if v == b"y")
}

fn join(at: &str, name: &OsStr) -> String {
    if at.is_empty() {
        name.to_string_lossy().into_owned()
    } else {
        format!("{at}/{}", name.to_string_lossy())
    }
}

fn children(dir: BorrowedFd<'_>, at: &str) -> Result<Vec<OsString>> {
    let mut names = list_dir(dir).map_err(read_err(at))?;
    names.sort();
    Ok(names)
}

fn open_dir(parent: BorrowedFd<'_>, name: &OsStr, at: &str) -> Result<OwnedFd> {
    open_at(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map_err(read_err(at))
}

/// Whether the entry `rel` of an upper directory is a mount point the runtime made.
/// `lower` is the image's file system (what the container started from).
fn is_stub(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    rel: &str,
    st: &FileStat,
    lower: Option<&Root>,
) -> bool {
    if MOUNT_TREES.contains(&rel) && kind(st) == libc::S_IFDIR {
        return true;
    }
    if MOUNT_FILES.contains(&rel) {
        return kind(st) == libc::S_IFREG && st.st_size == 0;
    }
    if rel == "etc" && kind(st) == libc::S_IFDIR {
        // `/etc` made or copied up only to hold the files above.
        let Ok(fd) = open_dir(parent, name, rel) else {
            return false;
        };
        let Ok(names) = list_dir(fd.as_fd()) else {
            return false;
        };
        let only_stubs = names.iter().all(|n| {
            let child = join(rel, n);
            fstatat(
                Some(fd.as_raw_fd()),
                n.as_os_str(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .is_ok_and(|cst| is_stub(fd.as_fd(), n, &child, &cst, lower))
        });
        if !only_stubs || is_opaque(fd.as_fd()) {
            return false;
        }
        return match lower.map(|l| l.resolve("etc", OFlag::O_PATH | OFlag::O_NOFOLLOW)) {
            Some(Ok(lfd)) => fstat(lfd.as_raw_fd()).is_ok_and(|l| {
                kind(&l) == libc::S_IFDIR
                    && (l.st_mode & 0o7777) == (st.st_mode & 0o7777)
                    && l.st_uid == st.st_uid
                    && l.st_gid == st.st_gid
            }),
            _ => true,
        };
    }
    false
}

/// Removes the runtime's mount points from a container's upper directory, so that
/// what remains is exactly the container's own changes (before it becomes a layer).
pub fn remove_stubs(upper: &Root, lower: Option<&Root>) -> Result<()> {
    let top = upper
        .resolve(".", OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        .map_err(|e| LayerError::Store(e.to_string()))?;
    // Files first, then `/etc` (which may only hold them), then the mounted trees.
    for rel in MOUNT_FILES
        .iter()
        .chain(["etc"].iter())
        .chain(MOUNT_TREES.iter())
    {
        let (dir, name) = match rel.rsplit_once('/') {
            Some((d, n)) => (Some(d), n),
            None => (None, *rel),
        };
        let parent = match dir {
            None => top
                .try_clone()
                .map_err(|e| LayerError::Store(e.to_string()))?,
            Some(d) => match open_dir(top.as_fd(), OsStr::new(d), d) {
                Ok(fd) => fd,
                Err(_) => continue,
            },
        };
        let name = OsStr::new(name);
        let Ok(st) = fstatat(Some(parent.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) else {
            continue;
        };
        if is_stub(parent.as_fd(), name, rel, &st, lower) {
            remove_all_at(parent.as_fd(), name).map_err(read_err(rel))?;
        }
    }
    Ok(())
}

/// What a tar walk wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct TarStats {
    /// Entries written (whiteouts included).
    pub entries: u64,
    /// Bytes of file content.
    pub bytes: u64,
}

/// How the walked directory is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// An overlay upper directory: whiteouts and opaque directories are translated.
    Upper,
    /// A plain tree (a merged view): taken as it is.
    Plain,
}

/// Writes the tree under `dir` as a tar into `out`, entries named relative to it
/// (`bin/`, `bin/sh`), sorted, directories before their contents. With
/// `skip_stubs`, the runtime's mount points (see the module) are left out.
pub fn write_tar<W: Write>(
    dir: BorrowedFd<'_>,
    out: W,
    walk: Walk,
    skip_stubs: Option<Option<&Root>>,
) -> Result<TarStats> {
    let mut w = TarWriter {
        b: tar::Builder::new(out),
        links: HashMap::new(),
        stats: TarStats::default(),
        walk,
        skip_stubs,
    };
    w.dir_contents(dir, "", 0)?;
    let mut out = w.b.into_inner().map_err(LayerError::Write)?;
    out.flush().map_err(LayerError::Write)?;
    Ok(w.stats)
}

struct TarWriter<'a, W: Write> {
    b: tar::Builder<W>,
    links: HashMap<(u64, u64), String>,
    stats: TarStats,
    walk: Walk,
    skip_stubs: Option<Option<&'a Root>>,
}

fn header(st: &FileStat, t: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(t);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h
}

/// `security.capability`, the one extended attribute Docker puts in layers.
fn capability(fd: BorrowedFd<'_>) -> Option<Vec<u8>> {
    let f = fd.try_clone_to_owned().map(std::fs::File::from).ok()?;
    f.get_xattr("security.capability").ok().flatten()
}

impl<W: Write> TarWriter<'_, W> {
    fn append(
        &mut self,
        h: &mut tar::Header,
        name: &str,
        link: Option<&[u8]>,
        cap: Option<Vec<u8>>,
        data: impl Read,
    ) -> Result<()> {
        if let Some(cap) = cap {
            self.b
                .append_pax_extensions([("SCHILY.xattr.security.capability", cap.as_slice())])
                .map_err(LayerError::Write)?;
        }
        self.stats.entries += 1;
        match link {
            Some(l) => self
                .b
                .append_link(h, name, OsStr::from_bytes(l))
                .map_err(LayerError::Write),
            None => self.b.append_data(h, name, data).map_err(LayerError::Write),
        }
    }

    fn dir_contents(&mut self, dir: BorrowedFd<'_>, at: &str, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(LayerError::Read {
                path: at.into(),
                errno: Errno::ELOOP,
            });
        }
        for name in children(dir, at)? {
            self.entry(dir, &name, &join(at, &name), depth)?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        rel: &str,
        depth: usize,
    ) -> Result<()> {
        let st = match fstatat(Some(parent.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(read_err(rel)(e)),
        };
        if let Some(lower) = self.skip_stubs {
            if is_stub(parent, name, rel, &st, lower) {
                return Ok(());
            }
        }
        if self.walk == Walk::Upper && is_whiteout(&st) {
            let wh = match rel.rsplit_once('/') {
                Some((d, n)) => format!("{d}/.wh.{n}"),
                None => format!(".wh.{rel}"),
            };
            let mut h = header(&st, tar::EntryType::Regular);
            h.set_mode(0o600);
            h.set_size(0);
            return self.append(&mut h, &wh, None, None, std::io::empty());
        }
        match kind(&st) {
            libc::S_IFDIR => {
                let fd = open_dir(parent, name, rel)?;
                let mut h = header(&st, tar::EntryType::Directory);
                h.set_size(0);
                let cap = capability(fd.as_fd());
                self.append(&mut h, &format!("{rel}/"), None, cap, std::io::empty())?;
                if self.walk == Walk::Upper && is_opaque(fd.as_fd()) {
                    let mut h = header(&st, tar::EntryType::Regular);
                    h.set_mode(st.st_mode & 0o777);
                    h.set_size(0);
                    self.append(
                        &mut h,
                        &format!("{rel}/.wh..wh..opq"),
                        None,
                        None,
                        std::io::empty(),
                    )?;
                }
                self.dir_contents(fd.as_fd(), rel, depth + 1)
            }
            libc::S_IFREG => {
                let fd = open_at(
                    parent,
                    name,
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
                    Mode::empty(),
                )
                .map_err(read_err(rel))?;
                let st = fstat(fd.as_raw_fd()).map_err(read_err(rel))?;
                if kind(&st) != libc::S_IFREG {
                    return Ok(());
                }
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key).cloned() {
                        let mut h = header(&st, tar::EntryType::Link);
                        h.set_size(0);
                        return self.append(
                            &mut h,
                            rel,
                            Some(first.as_bytes()),
                            None,
                            std::io::empty(),
                        );
                    }
                    self.links.insert(key, rel.to_string());
                }
                let size = st.st_size.max(0) as u64;
                let mut h = header(&st, tar::EntryType::Regular);
                h.set_size(size);
                let cap = capability(fd.as_fd());
                self.stats.bytes += size;
                let data = berth_fs::tar_out::Exact {
                    inner: std::io::BufReader::with_capacity(128 * 1024, std::fs::File::from(fd)),
                    left: size,
                };
                self.append(&mut h, rel, None, cap, data)
            }
            libc::S_IFLNK => {
                let target = readlinkat(Some(parent.as_raw_fd()), name).map_err(read_err(rel))?;
                let mut h = header(&st, tar::EntryType::Symlink);
                h.set_size(0);
                self.append(&mut h, rel, Some(target.as_bytes()), None, std::io::empty())
            }
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
                let t = match kind(&st) {
                    libc::S_IFCHR => tar::EntryType::Char,
                    libc::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = header(&st, t);
                h.set_size(0);
                if t != tar::EntryType::Fifo {
                    let _ = h.set_device_major(libc::major(st.st_rdev));
                    let _ = h.set_device_minor(libc::minor(st.st_rdev));
                }
                self.append(&mut h, rel, None, None, std::io::empty())
            }
            // Sockets cannot be archived; Docker skips them too.
            _ => Ok(()),
        }
    }
}

/// `docker diff`: the changes in a container's upper directory against the image
/// (`lower`, its merged layers): whiteouts and opaque directories are deletions, paths
/// the image has are modifications (a directory only if its size, mode or time
/// changed, or something below it did), the rest additions; sorted by path.
pub fn changes(upper: BorrowedFd<'_>, lower: Option<&Root>) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    let mut changed_dirs = std::collections::HashSet::new();
    diff_dir(upper, "", lower, &mut out, &mut changed_dirs, 0)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn diff_dir(
    dir: BorrowedFd<'_>,
    at: &str,
    lower: Option<&Root>,
    out: &mut Vec<Change>,
    changed_dirs: &mut std::collections::HashSet<String>,
    depth: usize,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(LayerError::Read {
            path: at.into(),
            errno: Errno::ELOOP,
        });
    }
    for name in children(dir, at)? {
        let rel = join(at, &name);
        let st = match fstatat(
            Some(dir.as_raw_fd()),
            name.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => st,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(read_err(&rel)(e)),
        };
        if is_stub(dir, &name, &rel, &st, lower) {
            continue;
        }
        let path = format!("/{rel}");
        let is_dir = kind(&st) == libc::S_IFDIR;
        let sub = if is_dir {
            Some(open_dir(dir, &name, &rel)?)
        } else {
            None
        };
        let deleted = is_whiteout(&st) || sub.as_ref().is_some_and(|fd| is_opaque(fd.as_fd()));
        let mut record = true;
        let kind_of = if deleted {
            2
        } else {
            let in_lower = lower
                .and_then(|l| l.resolve(&rel, OFlag::O_PATH | OFlag::O_NOFOLLOW).ok())
                .and_then(|fd| fstat(fd.as_raw_fd()).ok());
            match in_lower {
                None => 1,
                Some(l) => {
                    if is_dir
                        && kind(&l) == libc::S_IFDIR
                        && l.st_size == st.st_size
                        && l.st_mode == st.st_mode
                        && l.st_mtime == st.st_mtime
                        && l.st_mtime_nsec == st.st_mtime_nsec
                    {
                        record = false;
                    }
                    0
                }
            }
        };
        if record {
            out.push(Change {
                path: path.clone(),
                kind: kind_of,
            });
        }
        // (A directory that is the same as the image's is not marked: a change below
        // it then records it, as dockerd's walk does.)
        if is_dir && record {
            changed_dirs.insert(path.clone());
        }
        // A changed file's directory is changed too, even with the same times.
        if record && (kind_of == 1 || kind_of == 2) && !at.is_empty() {
            let parent = format!("/{at}");
            if changed_dirs.insert(parent.clone()) && !out.iter().any(|c| c.path == parent) {
                out.push(Change {
                    path: parent,
                    kind: 0,
                });
            }
        }
        if let Some(fd) = sub {
            if kind_of != 2 || is_opaque(fd.as_fd()) {
                diff_dir(fd.as_fd(), &rel, lower, out, changed_dirs, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// A layer stored: its record (an uncompressed tar, so its digest is its diff ID) and
/// the bytes of file content in it.
pub struct StoredLayer {
    /// The layer as an image lists it.
    pub record: LayerRecord,
}

/// Writes the tree under `dir` into the content store as an uncompressed layer tar.
/// `None` if the tree is empty (the step changed nothing: an empty layer).
pub fn store(
    content: &ContentStore,
    dir: BorrowedFd<'_>,
    walk: Walk,
) -> Result<Option<StoredLayer>> {
    store_filtered(content, dir, walk, None)
}

/// As [`store`], leaving out the runtime's mount points when `skip_stubs` is given
/// (with the image's file system to tell copied-up directories).
pub fn store_filtered(
    content: &ContentStore,
    dir: BorrowedFd<'_>,
    walk: Walk,
    skip_stubs: Option<Option<&Root>>,
) -> Result<Option<StoredLayer>> {
    if list_dir(dir).map_err(read_err(""))?.is_empty() {
        return Ok(None);
    }
    let mut writer = content
        .writer()
        .map_err(|e| LayerError::Store(e.to_string()))?;
    let stats = {
        let buffered = std::io::BufWriter::with_capacity(1 << 20, &mut writer);
        write_tar(dir, buffered, walk, skip_stubs)?
    };
    if stats.entries == 0 {
        return Ok(None);
    }
    let size = writer.written();
    let digest: Digest = writer
        .commit(None, None)
        .map_err(|e| LayerError::Store(e.to_string()))?;
    Ok(Some(StoredLayer {
        record: LayerRecord {
            digest: digest.clone(),
            media_type: crate::archive::Compression::None.layer_media_type().into(),
            size,
            diff_id: digest,
            unpacked_size: stats.bytes,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(tar: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn upper_whiteouts_become_oci_whiteouts() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir_all(p.join("etc")).unwrap();
        std::fs::write(p.join("etc/new"), "x").unwrap();
        nix::sys::stat::mknod(
            &p.join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            Mode::empty(),
            0,
        )
        .unwrap();
        std::fs::create_dir(p.join("opq")).unwrap();
        xattr::set(p.join("opq"), "trusted.overlay.opaque", b"y").unwrap();
        symlink("/etc/passwd", p.join("link")).unwrap();
        std::fs::write(p.join("a"), "1").unwrap();
        std::fs::hard_link(p.join("a"), p.join("b")).unwrap();
        let root = Root::open(p).unwrap();
        let fd = root
            .resolve(".", OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .unwrap();
        let mut out = Vec::new();
        let stats = write_tar(fd.as_fd(), &mut out, Walk::Upper, None).unwrap();
        assert_eq!(
            names(&out),
            vec![
                "a",
                "b",
                "etc/",
                "etc/.wh.gone",
                "etc/new",
                "link",
                "opq/",
                "opq/.wh..wh..opq"
            ]
        );
        assert_eq!(stats.bytes, 2);
        let mut a = tar::Archive::new(&out[..]);
        let kinds: Vec<_> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().header().entry_type())
            .collect();
        assert_eq!(kinds[1], tar::EntryType::Link);
        assert_eq!(kinds[5], tar::EntryType::Symlink);
    }

    #[test]
    fn stubs_are_not_changes() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let image = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(image.path().join("bin")).unwrap();
        std::fs::write(image.path().join("bin/ls"), "ls").unwrap();
        std::fs::write(image.path().join("bin/cat"), "cat").unwrap();
        let up = tempfile::tempdir().unwrap();
        let u = up.path();
        for d in ["proc", "sys", "dev", "etc", "bin", "x/y"] {
            std::fs::create_dir_all(u.join(d)).unwrap();
        }
        for f in MOUNT_FILES {
            std::fs::write(u.join(f), "").unwrap();
        }
        std::fs::write(u.join("x/y/f"), "a").unwrap();
        std::fs::write(u.join("bin/cat"), "new cat").unwrap();
        nix::sys::stat::mknod(
            &u.join("bin/ls"),
            nix::sys::stat::SFlag::S_IFCHR,
            Mode::empty(),
            0,
        )
        .unwrap();
        let lower = Root::open(image.path()).unwrap();
        let upper = Root::open(u).unwrap();
        let fd = upper
            .resolve(".", OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .unwrap();
        let got: Vec<(String, u8)> = changes(fd.as_fd(), Some(&lower))
            .unwrap()
            .into_iter()
            .map(|c| (c.path, c.kind))
            .collect();
        let want: Vec<(String, u8)> = [
            ("/bin", 0),
            ("/bin/cat", 0),
            ("/bin/ls", 2),
            ("/x", 1),
            ("/x/y", 1),
            ("/x/y/f", 1),
        ]
        .iter()
        .map(|(p, k)| (p.to_string(), *k))
        .collect();
        assert_eq!(got, want);
        remove_stubs(&upper, Some(&lower)).unwrap();
        for gone in ["proc", "sys", "dev", "etc"] {
            assert!(!u.join(gone).exists(), "{gone} left");
        }
        assert!(u.join("x/y/f").exists());
    }
}
