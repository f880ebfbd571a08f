//! `docker cp`: tar archives out of and into a container's root filesystem, race-free.
//!
//! A container can change its files while berthd copies: swap a directory for a
//! symlink to `/` between the moment a path is resolved and the moment it is used
//! (CVE-2018-15664). So no host path is ever built from a container path. The
//! container's root is opened once as a descriptor (`RootView`); every path below it is
//! resolved by the kernel with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), which
//! treats the descriptor as `/` for `..` and absolute symlinks, and refuses
//! `/proc/.../root`-style magic links. What is resolved is a directory descriptor;
//! the last component is then read or created relative to it with `*at` calls that do
//! not follow a symlink (O_NOFOLLOW, O_EXCL, AT_SYMLINK_NOFOLLOW), and metadata is set
//! on the opened descriptor (fchown, fchmod, futimens). A swap at any moment can only
//! make a call fail or land somewhere else inside the container's root, as it would in
//! a `chroot`.
//!
//! A running container is reached through `/proc/PID/root` (so its volumes are seen
//! too), checked to still be that container; a stopped one through a temporary overlay
//! mount of its layers.
//!
//! Both directions stream: GET writes the tar as the walk produces it (into a writer
//! that feeds the response body) and PUT unpacks the request body as it arrives, so a
//! copy of any size costs berthd a few buffers, not the archive's size. A file being
//! unpacked is written under a temporary name and renamed into place once complete, so
//! an archive cut short never leaves a truncated file under its final name.

use super::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, fstatat, mkdirat, mknodat, FileStat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};
use serde_json::Value;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use xattr::FileExt;

/// Symlinks followed at most while naming a link's target (as the kernel's limit).
const MAX_LINKS: usize = 40;

/// A container's root directory, opened; unmounted on drop if it was mounted here.
pub struct RootView {
    fd: OwnedFd,
    mount: Option<PathBuf>,
}

impl RootView {
    /// A view of `fd`, unmounted (with what is mounted below it) on drop when `mount`
    /// names where it was mounted.
    pub(crate) fn new(fd: OwnedFd, mount: Option<PathBuf>) -> Self {
        Self { fd, mount }
    }

    /// The root as a descriptor: the `/` that every archive path is resolved under.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for RootView {
    fn drop(&mut self) {
        if let Some(mnt) = &self.mount {
            let _ = nix::mount::umount2(mnt, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(mnt);
        }
    }
}

/// Takes ownership of a descriptor a nix call just returned.
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: every caller passes a descriptor that the kernel has just returned to it
    // and that nothing else owns or closes.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[cfg(test)]
fn open_path(path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    nix::fcntl::open(path, flags | OFlag::O_CLOEXEC, Mode::empty()).map(owned)
}

fn open_at(dir: BorrowedFd<'_>, name: &OsStr, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
    openat(Some(dir.as_raw_fd()), name, flags | OFlag::O_CLOEXEC, mode).map(owned)
}

/// Resolves `rel` under `root` as the container would, never leaving it.
fn open_in_root(
    root: BorrowedFd<'_>,
    rel: &(impl AsRef<Path> + ?Sized),
    flags: OFlag,
) -> nix::Result<OwnedFd> {
    let rel = rel.as_ref();
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root.as_raw_fd(), rel, how).map(owned)
}

/// A request path as a path below the root (`/a/b` → `a/b`, `/` → ``).
fn below_root(path: &str) -> &str {
    path.trim_start_matches('/')
}

/// `filepath.Base` of Go, which Docker names archive entries with: `/a/b/` → `b`,
/// `/a/.` → `.`, `/` → `/`.
fn base_name(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return if path.is_empty() {
            ".".into()
        } else {
            "/".into()
        };
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// `parent/child` for archive entry names, byte for byte (names need not be UTF-8).
fn join_os(parent: &OsStr, child: &OsStr) -> OsString {
    let mut out = parent.as_bytes().to_vec();
    if !out.ends_with(b"/") {
        out.push(b'/');
    }
    out.extend_from_slice(child.as_bytes());
    OsString::from_vec(out)
}

fn not_found(path: &str, ctr: &str) -> Error {
    Error::NotFound(format!("Could not find the file {path} in container {ctr}"))
}

fn kind(st: &FileStat) -> u32 {
    st.st_mode & libc::S_IFMT
}

/// The absolute path, inside the container, that `rel` names once every symlink in it
/// is followed: what Docker reports as a link's target. Only a name for the client, so
/// a change during the walk matters not.
fn resolved_name(root: BorrowedFd<'_>, rel: &str) -> String {
    let mut pending: Vec<String> = rel.split('/').rev().map(String::from).collect();
    let mut done: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        let link = open_in_root(root, &done.join("/"), OFlag::O_PATH | OFlag::O_DIRECTORY)
            .ok()
            .and_then(|dir| {
                let st = fstatat(
                    Some(dir.as_raw_fd()),
                    c.as_str(),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .ok()?;
                (kind(&st) == libc::S_IFLNK)
                    .then(|| readlinkat(Some(dir.as_raw_fd()), c.as_str()).ok())
                    .flatten()
            });
        match link {
            Some(target) if links < MAX_LINKS => {
                links += 1;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    done.clear();
                }
                pending.extend(target.split('/').rev().map(String::from));
            }
            _ => done.push(c),
        }
    }
    format!("/{}", done.join("/"))
}

/// What a request path designates: a directory opened for reading (a path ending in
/// `/`, `/.` or naming the root: its last symlink is followed), or an entry `name` of
/// the directory `parent`, not followed.
enum Target {
    Dir(OwnedFd),
    Entry { parent: OwnedFd, name: String },
}

fn target(root: BorrowedFd<'_>, path: &str, ctr: &str) -> Result<Target> {
    let rel = below_root(path);
    let last = rel.rsplit('/').next().unwrap_or("");
    let missing = |e: Errno| match e {
        Errno::ENOENT | Errno::ENOTDIR => not_found(path, ctr),
        e => Error::Internal(format!("resolving {path}: {e}")),
    };
    if path.ends_with('/') || matches!(last, "" | "." | "..") {
        let dir = open_in_root(root, rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(missing)?;
        return Ok(Target::Dir(dir));
    }
    let parent_rel = rel.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
    let parent =
        open_in_root(root, parent_rel, OFlag::O_PATH | OFlag::O_DIRECTORY).map_err(missing)?;
    fstatat(Some(parent.as_raw_fd()), last, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(missing)?;
    Ok(Target::Entry {
        parent,
        name: last.to_string(),
    })
}

fn stat_target(t: &Target) -> nix::Result<FileStat> {
    match t {
        Target::Dir(fd) => fstat(fd.as_raw_fd()),
        Target::Entry { parent, name } => fstatat(
            Some(parent.as_raw_fd()),
            name.as_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ),
    }
}

/// Docker's `X-Docker-Container-Path-Stat` value (JSON, before base64) of `path` in the
/// container `ctr` (named as the client named it, for errors).
pub fn path_stat(root: &RootView, path: &str, ctr: &str) -> Result<Value> {
    let t = target(root.fd(), path, ctr)?;
    stat_json(root.fd(), path, &t, ctr)
}

fn stat_json(root: BorrowedFd<'_>, path: &str, t: &Target, ctr: &str) -> Result<Value> {
    let st = stat_target(t).map_err(|_| not_found(path, ctr))?;
    // Go's os.FileMode bits, which the docker CLI decodes.
    let mut mode = (st.st_mode & 0o777) as u64;
    if st.st_mode & libc::S_ISUID != 0 {
        mode |= 1 << 23;
    }
    if st.st_mode & libc::S_ISGID != 0 {
        mode |= 1 << 22;
    }
    if st.st_mode & libc::S_ISVTX != 0 {
        mode |= 1 << 20;
    }
    let mut link = String::new();
    match kind(&st) {
        libc::S_IFDIR => mode |= 1 << 31,
        libc::S_IFLNK => {
            mode |= 1 << 27;
            link = resolved_name(root, below_root(path));
        }
        libc::S_IFIFO => mode |= 1 << 25,
        libc::S_IFSOCK => mode |= 1 << 24,
        libc::S_IFCHR => mode |= (1 << 26) | (1 << 21),
        libc::S_IFBLK => mode |= 1 << 26,
        _ => {}
    }
    let mtime =
        chrono::DateTime::<chrono::Utc>::from_timestamp(st.st_mtime, st.st_mtime_nsec as u32)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .unwrap_or_default();
    Ok(serde_json::json!({
        "name": base_name(path), "size": st.st_size, "mode": mode, "mtime": mtime,
        "linkTarget": link,
    }))
}

/// Errors while writing an archive, with the entry they concern.
fn io_err(what: &(impl AsRef<Path> + ?Sized), e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("archive {}: {e}", what.as_ref().display()))
}

/// GET archive, first step: the stat of `path` (sent as a header before any of the
/// tar) and what to archive, resolved now; `TarSource::write_to` then writes the tar.
pub fn tar_source(root: &RootView, path: &str, ctr: &str) -> Result<(Value, TarSource)> {
    let target = target(root.fd(), path, ctr)?;
    let stat = stat_json(root.fd(), path, &target, ctr)?;
    let name = OsString::from(base_name(path));
    Ok((stat, TarSource { target, name }))
}

/// A path resolved for GET archive: a file, a symlink, a device or a directory tree,
/// held by descriptors. Its `RootView` must be kept until the tar is written (for a
/// stopped container it holds the mount).
pub struct TarSource {
    target: Target,
    name: OsString,
}

impl TarSource {
    /// Writes the tar into `out` as the walk goes, its entries named as dockerd names
    /// them: under the path's base name, so `/dir/.` gives `./...` (the directory's
    /// content) and `/dir` gives `dir/...`. `out` is flushed at the end.
    pub fn write_to<W: Write>(self, out: W) -> Result<()> {
        let mut w = TarWriter {
            b: tar::Builder::new(out),
            links: HashMap::new(),
        };
        match &self.target {
            Target::Dir(fd) => w.dir(fd, &self.name)?,
            Target::Entry { parent, name: last } => {
                w.entry(parent.as_fd(), OsStr::new(last), &self.name)?
            }
        }
        let mut out = w.b.into_inner().map_err(|e| io_err(&self.name, e))?;
        out.flush().map_err(|e| io_err(&self.name, e))
    }
}

/// The whole tar of `path` in memory (for tests).
#[cfg(test)]
fn tar_path(root: &RootView, path: &str, ctr: &str) -> Result<(Value, Vec<u8>)> {
    let (stat, src) = tar_source(root, path, ctr)?;
    let mut data = Vec::new();
    src.write_to(&mut data)?;
    Ok((stat, data))
}

/// A file's content as exactly the `left` bytes its header announced: a file that
/// shrinks while it is read is padded with zeros and one that grows is cut, as GNU tar
/// does, so that the archive stays well-formed whatever the container does meanwhile.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = self.left.min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = match self.inner.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

/// The PAX key under which tar (GNU, Go, libarchive) keeps an extended attribute.
const PAX_XATTR: &str = "SCHILY.xattr.";

/// The extended attributes of an open file or directory that go into its entry: only
/// `security.capability`, as dockerd archives (other attributes stay behind, which
/// also spares the client attributes its filesystem may refuse). A version-3 capability
/// (bound to a user namespace's root) is written as version 2, as dockerd does: that
/// root means nothing where the archive is unpacked.
fn archived_xattrs(fd: BorrowedFd<'_>) -> Vec<(String, Vec<u8>)> {
    // The xattr crate reads through a `File`; a duplicate keeps `fd` with its owner.
    let Ok(f) = fd.try_clone_to_owned().map(std::fs::File::from) else {
        return Vec::new();
    };
    match f.get_xattr("security.capability") {
        Ok(Some(mut cap)) => {
            if cap.get(3) == Some(&3) {
                cap[3] = 2;
                cap.truncate(20);
            }
            vec![(format!("{PAX_XATTR}security.capability"), cap)]
        }
        _ => Vec::new(),
    }
}

/// A PAX extended header ('x') holding `records`, for the entry named `name`.
fn pax_entry(name: &[u8], records: &[(String, Vec<u8>)]) -> (tar::Header, Vec<u8>) {
    let mut data = Vec::new();
    for (k, v) in records {
        // "LEN KEY=VALUE\n", where LEN counts the whole record, its own digits too.
        let rest = k.len() + v.len() + 3;
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        data.extend_from_slice(format!("{len} {k}=").as_bytes());
        data.extend_from_slice(v);
        data.push(b'\n');
    }
    let mut h = tar::Header::new_ustar();
    let mut hname = b"PaxHeaders.0/".to_vec();
    let base = name
        .strip_suffix(b"/")
        .unwrap_or(name)
        .rsplit(|b| *b == b'/')
        .next()
        .unwrap_or(b"");
    hname.extend_from_slice(&base[..base.len().min(80)]);
    h.as_old_mut().name[..hname.len()].copy_from_slice(&hname);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_cksum();
    (h, data)
}

/// Writes archive entries from descriptors.
struct TarWriter<W: Write> {
    b: tar::Builder<W>,
    /// Files with more than one link already archived, by (device, inode): later
    /// names become hard links to the first, as Docker writes them.
    links: HashMap<(u64, u64), OsString>,
}

/// A GNU long-name ('L') or long-link ('K') extension entry holding `value`.
fn long_entry(kind: u8, value: &[u8]) -> std::io::Result<(tar::Header, Vec<u8>)> {
    let mut h = tar::Header::new_gnu();
    let marker = b"././@LongLink";
    h.as_old_mut().name[..marker.len()].copy_from_slice(marker);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    let mut data = value.to_vec();
    data.push(0);
    h.set_size(data.len() as u64);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_cksum();
    Ok((h, data))
}

impl<W: Write> TarWriter<W> {
    /// Appends `h` named `name` (and `link` as its link name), byte for byte as given:
    /// the tar crate's own setters normalize paths, which turns a link to `/` into `//`.
    /// `pax` records go in an extended header before it; `data` gives `size` bytes.
    fn append(
        &mut self,
        h: &mut tar::Header,
        name: &OsStr,
        link: Option<&[u8]>,
        pax: &[(String, Vec<u8>)],
        size: u64,
        data: impl Read,
    ) -> Result<()> {
        let fail = |e: std::io::Error| io_err(name, e);
        let name_bytes = name.as_bytes();
        if !pax.is_empty() {
            let (ph, pd) = pax_entry(name_bytes, pax);
            self.b.append(&ph, pd.as_slice()).map_err(fail)?;
        }
        let name_field = h.as_old().name.len();
        if name_bytes.len() > name_field {
            let (lh, ld) = long_entry(b'L', name_bytes).map_err(fail)?;
            self.b.append(&lh, ld.as_slice()).map_err(fail)?;
        }
        let n = name_bytes.len().min(name_field);
        h.as_old_mut().name = [0; 100];
        h.as_old_mut().name[..n].copy_from_slice(&name_bytes[..n]);
        if let Some(link) = link {
            let link_field = h.as_old().linkname.len();
            if link.len() > link_field {
                let (lh, ld) = long_entry(b'K', link).map_err(fail)?;
                self.b.append(&lh, ld.as_slice()).map_err(fail)?;
            }
            let n = link.len().min(link_field);
            h.as_old_mut().linkname = [0; 100];
            h.as_old_mut().linkname[..n].copy_from_slice(&link[..n]);
        }
        h.set_size(size);
        h.set_cksum();
        self.b.append(h, data).map_err(fail)
    }

    fn header(st: &FileStat, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(st.st_uid as u64);
        h.set_gid(st.st_gid as u64);
        h.set_mtime(st.st_mtime.max(0) as u64);
        h
    }

    /// A directory (opened for reading) and everything below it.
    fn dir(&mut self, fd: &OwnedFd, name: &OsStr) -> Result<()> {
        let st = fstat(fd.as_raw_fd()).map_err(|e| io_err(name, e))?;
        let mut h = Self::header(&st, tar::EntryType::Directory);
        let mut dir_name = name.as_bytes().to_vec();
        if !dir_name.ends_with(b"/") {
            dir_name.push(b'/');
        }
        let pax = archived_xattrs(fd.as_fd());
        self.append(
            &mut h,
            OsStr::from_bytes(&dir_name),
            None,
            &pax,
            0,
            std::io::empty(),
        )?;
        // The listing reads through its own descriptor; `fd` stays for the *at calls.
        let listing = fd.try_clone().map_err(|e| io_err(name, e))?;
        let mut d = nix::dir::Dir::from(listing).map_err(|e| io_err(name, e))?;
        let mut children: Vec<Vec<u8>> = d
            .iter()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_bytes().to_vec())
            .filter(|n| n.as_slice() != b"." && n.as_slice() != b"..")
            .collect();
        drop(d);
        children.sort();
        for child in children {
            let child = OsStr::from_bytes(&child);
            self.entry(fd.as_fd(), child, &join_os(name, child))?;
        }
        Ok(())
    }

    /// The entry `child` of the directory `parent`, under the archive name `name`.
    /// Nothing is followed: a child swapped for a symlink meanwhile makes the open fail.
    fn entry(&mut self, parent: BorrowedFd<'_>, child: &OsStr, name: &OsStr) -> Result<()> {
        let st = match fstatat(
            Some(parent.as_raw_fd()),
            child,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => st,
            // Removed by the container meanwhile: not archived, as with `tar`.
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(io_err(name, e)),
        };
        match kind(&st) {
            libc::S_IFDIR => {
                let fd = open_at(
                    parent,
                    OsStr::new(child),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
                    Mode::empty(),
                )
                .map_err(|e| io_err(name, e))?;
                self.dir(&fd, name)
            }
            libc::S_IFREG => {
                // O_NONBLOCK and O_NOCTTY: if the name became a FIFO or a terminal
                // meanwhile, opening it must neither hang nor take it; the fstat below
                // then refuses anything but a regular file.
                let fd = open_at(
                    parent,
                    OsStr::new(child),
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
                    Mode::empty(),
                )
                .map_err(|e| io_err(name, e))?;
                let st = fstat(fd.as_raw_fd()).map_err(|e| io_err(name, e))?;
                if kind(&st) != libc::S_IFREG {
                    return Err(io_err(name, "changed while being copied"));
                }
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key).cloned() {
                        let mut h = Self::header(&st, tar::EntryType::Link);
                        return self.append(
                            &mut h,
                            name,
                            Some(first.as_bytes()),
                            &[],
                            0,
                            std::io::empty(),
                        );
                    }
                    self.links.insert(key, name.to_os_string());
                }
                let pax = archived_xattrs(fd.as_fd());
                // Streamed from the descriptor: never more than a buffer in memory.
                let size = st.st_size.max(0) as u64;
                let data = Exact {
                    inner: std::fs::File::from(fd),
                    left: size,
                };
                let mut h = Self::header(&st, tar::EntryType::Regular);
                self.append(&mut h, name, None, &pax, size, data)
            }
            libc::S_IFLNK => {
                let target =
                    readlinkat(Some(parent.as_raw_fd()), child).map_err(|e| io_err(name, e))?;
                let mut h = Self::header(&st, tar::EntryType::Symlink);
                self.append(
                    &mut h,
                    name,
                    Some(target.as_bytes()),
                    &[],
                    0,
                    std::io::empty(),
                )
            }
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
                let t = match kind(&st) {
                    libc::S_IFCHR => tar::EntryType::Char,
                    libc::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = Self::header(&st, t);
                if t != tar::EntryType::Fifo {
                    h.set_device_major(libc::major(st.st_rdev))
                        .and_then(|_| h.set_device_minor(libc::minor(st.st_rdev)))
                        .map_err(|e| io_err(name, e))?;
                }
                self.append(&mut h, name, None, &[], 0, std::io::empty())
            }
            // Sockets cannot be archived; dockerd skips them too.
            _ => Ok(()),
        }
    }
}

/// How PUT archive treats what is already there.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// Refuse to replace a directory with a non-directory or the reverse (the CLI's
    /// default, `noOverwriteDirNonDir`).
    pub no_overwrite_dir_non_dir: bool,
    /// Owner (uid, gid) given to every entry instead of the archive's: `docker cp -a`
    /// (`copyUIDGID`) with a configured user, see `container_owner`.
    pub owner: Option<(u32, u32)>,
}

/// A numeric header field as Go's archive/tar reads it: octal, or base-256 when the
/// high bit is set; empty (all NUL or spaces) is 0, which the tar crate refuses.
fn numeric(field: &[u8]) -> std::io::Result<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut n: u64 = (field[0] & 0x7f) as u64;
        for b in &field[1..] {
            n = n.checked_shl(8).unwrap_or(u64::MAX) | *b as u64;
        }
        return Ok(n);
    }
    let text: Vec<u8> = field
        .iter()
        .copied()
        .take_while(|b| *b != 0)
        .collect::<Vec<u8>>();
    let text = String::from_utf8_lossy(&text);
    let text = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("numeric field was not a number: {text}"),
        )
    })
}

/// The metadata of an archive entry that extraction applies.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    /// Extended attributes (PAX `SCHILY.xattr.NAME` records): name, value.
    xattrs: Vec<(OsString, Vec<u8>)>,
}

fn meta<R: Read>(e: &mut tar::Entry<'_, R>) -> std::io::Result<Meta> {
    let old = e.header().as_old();
    let mut m = Meta {
        mode: (numeric(&old.mode)? & 0o7777) as u32,
        uid: numeric(&old.uid)? as u32,
        gid: numeric(&old.gid)? as u32,
        mtime: numeric(&old.mtime)? as i64,
        xattrs: Vec::new(),
    };
    // PAX records override the header (large IDs, sub-second times).
    if let Some(pax) = e.pax_extensions()? {
        for ext in pax.flatten() {
            if let Some(name) = ext.key_bytes().strip_prefix(PAX_XATTR.as_bytes()) {
                m.xattrs.push((
                    OsStr::from_bytes(name).to_os_string(),
                    ext.value_bytes().to_vec(),
                ));
                continue;
            }
            let (Ok(k), Ok(v)) = (ext.key(), ext.value()) else {
                continue;
            };
            match k {
                "uid" => m.uid = v.parse().unwrap_or(m.uid),
                "gid" => m.gid = v.parse().unwrap_or(m.gid),
                "mtime" => {
                    let secs = v.split('.').next().unwrap_or(v);
                    m.mtime = secs.parse().unwrap_or(m.mtime);
                }
                _ => {}
            }
        }
    }
    Ok(m)
}

/// An archive path as components below the extraction directory; `..` may not climb
/// out of it (dockerd refuses such an entry too), a leading `/` is ignored.
fn entry_components(p: &Path) -> Result<Vec<OsString>> {
    let mut out: Vec<OsString> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s.to_os_string()),
            // The guard pops the parent; only a `..` with none left is refused.
            Component::ParentDir if out.pop().is_none() => {
                return Err(Error::Invalid(format!(
                    "{:?} is outside of the extraction directory",
                    p.display().to_string()
                )));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Opens the directory `rel` (a path below the root), creating what is missing of it
/// one component at a time, each created relative to its resolved parent.
fn open_dir_creating(root: BorrowedFd<'_>, rel: &Path) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    match open_in_root(root, rel, flags) {
        Err(Errno::ENOENT) => {}
        r => return r,
    }
    let mut fd = open_in_root(root, "", flags)?;
    let mut done = PathBuf::new();
    for c in rel.components() {
        let c = match c {
            Component::Normal(c) => c,
            Component::ParentDir => OsStr::new(".."),
            _ => continue,
        };
        done.push(c);
        fd = match open_in_root(root, &done, flags) {
            Err(Errno::ENOENT) => {
                match mkdirat(Some(fd.as_raw_fd()), c, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                open_in_root(root, &done, flags)?
            }
            r => r?,
        };
    }
    Ok(fd)
}

/// Removes `name` from `dir` and, for a directory, everything below it, without
/// following any symlink.
fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<()> {
    let st = fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    if kind(&st) != libc::S_IFDIR {
        return nix::unistd::unlinkat(
            Some(dir.as_raw_fd()),
            name,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }
    let sub = open_at(
        dir,
        OsStr::new(name),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )?;
    let mut d = nix::dir::Dir::from(sub.try_clone().map_err(|_| Errno::EMFILE)?)?;
    let children: Vec<OsString> = d
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
        .filter(|n| n != "." && n != "..")
        .collect();
    drop(d);
    for c in children {
        remove_all_at(sub.as_fd(), &c)?;
    }
    nix::unistd::unlinkat(
        Some(dir.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::RemoveDir,
    )
}

/// Sets owner, then mode (a chown clears set-id bits), then extended attributes (a
/// chown clears `security.capability` too), then times on an open file or directory.
fn apply_meta(fd: BorrowedFd<'_>, m: &Meta) -> nix::Result<()> {
    nix::unistd::fchown(
        fd.as_raw_fd(),
        Some(Uid::from_raw(m.uid)),
        Some(Gid::from_raw(m.gid)),
    )?;
    nix::sys::stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(m.mode))?;
    set_xattrs(fd, m)?;
    let t = TimeSpec::new(m.mtime, 0);
    nix::sys::stat::futimens(fd.as_raw_fd(), &t, &t)
}

/// Restores an entry's extended attributes on its open descriptor, as dockerd does
/// every `SCHILY.xattr.*` record: an attribute the kernel refuses with EPERM is only
/// logged (dockerd too: e.g. `trusted.*` where not allowed), any other failure fails.
fn set_xattrs(fd: BorrowedFd<'_>, m: &Meta) -> nix::Result<()> {
    if m.xattrs.is_empty() {
        return Ok(());
    }
    // The xattr crate writes through a `File`; a duplicate keeps `fd` with its owner.
    let f = std::fs::File::from(fd.try_clone_to_owned().map_err(io_errno)?);
    for (name, value) in &m.xattrs {
        match f.set_xattr(name, value) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                tracing::warn!(xattr = ?name, error = %e, "extended attribute not restored");
            }
            Err(e) => return Err(io_errno(e)),
        }
    }
    Ok(())
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// `docker cp -a` into a container: the owner dockerd gives what is extracted, the
/// container's configured user (`Config.User`: `name`, `uid`, with `:group` or `:gid`)
/// looked up in the container's own `/etc/passwd` and `/etc/group` (read through its
/// root, as the rest). No configured user: `None`, the archive's owners are kept, as
/// dockerd keeps them. As libcontainer resolves it: a name or number matching a
/// passwd entry takes that entry's uid and gid, another number stands for itself (gid
/// 0), an unknown name is an error; likewise for the group.
pub fn container_owner(root: &RootView, user: &str) -> Result<Option<(u32, u32)>> {
    if user.is_empty() {
        return Ok(None);
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_config_file(root.fd(), "etc/passwd");
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && (f[0] == u || (u.parse::<u32>().is_ok() && f[2] == u)));
    let (uid, mut gid) = match (entry, u.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse().map_err(|_| bad_entry("passwd", u))?,
            f[3].parse().map_err(|_| bad_entry("passwd", u))?,
        ),
        (None, Ok(n)) => (n, 0),
        (None, Err(_)) => {
            return Err(Error::Invalid(format!(
                "unable to find user {u}: no matching entries in passwd file"
            )))
        }
    };
    if let Some(g) = g {
        let group = read_config_file(root.fd(), "etc/group");
        let entry = group
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 2 && (f[0] == g || (g.parse::<u32>().is_ok() && f[2] == g)));
        gid = match (entry, g.parse::<u32>()) {
            (Some(f), _) => f[2].parse().map_err(|_| bad_entry("group", g))?,
            (None, Ok(n)) => n,
            (None, Err(_)) => {
                return Err(Error::Invalid(format!(
                    "unable to find group {g}: no matching entries in group file"
                )))
            }
        };
    }
    Ok(Some((uid, gid)))
}

fn bad_entry(file: &str, who: &str) -> Error {
    Error::Invalid(format!("invalid {file} entry for {who}"))
}

/// Longest passwd or group file read (a container could offer an endless one).
const MAX_CONFIG_FILE: u64 = 16 << 20;

/// A small text file of the container (`etc/passwd`), resolved inside its root; empty
/// if missing or not a regular file. O_NONBLOCK and O_NOCTTY so that a FIFO or a
/// terminal put there can neither hang nor be taken.
fn read_config_file(root: BorrowedFd<'_>, rel: &str) -> String {
    let Ok(fd) = open_in_root(
        root,
        rel,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
    ) else {
        return String::new();
    };
    if !fstat(fd.as_raw_fd()).is_ok_and(|st| kind(&st) == libc::S_IFREG) {
        return String::new();
    }
    let mut data = Vec::new();
    if std::fs::File::from(fd)
        .take(MAX_CONFIG_FILE)
        .read_to_end(&mut data)
        .is_err()
    {
        return String::new();
    }
    String::from_utf8_lossy(&data).into_owned()
}

/// Owner and times of `name` in `dir` without following it (a symlink or a device).
fn apply_meta_nofollow(dir: BorrowedFd<'_>, name: &OsStr, m: &Meta) -> nix::Result<()> {
    nix::unistd::fchownat(
        Some(dir.as_raw_fd()),
        name,
        Some(Uid::from_raw(m.uid)),
        Some(Gid::from_raw(m.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    let t = TimeSpec::new(m.mtime, 0);
    nix::sys::stat::utimensat(
        Some(dir.as_raw_fd()),
        name,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
}

/// PUT archive: unpacks `data` (a tar, read as it arrives) into the directory `path`
/// of the container `ctr`. Every entry's parent directory is resolved inside the root
/// (symlinks in the container or made by an earlier entry are followed as the
/// container would); the entry itself is created relative to that directory without
/// following anything. An error stops the extraction; entries already made stay, as
/// with dockerd, but a regular file appears under its name only once it is complete.
pub fn untar_into<R: Read>(
    root: &RootView,
    path: &str,
    ctr: &str,
    data: R,
    opts: ExtractOptions,
) -> Result<()> {
    let root = root.fd();
    let dest = below_root(path).trim_end_matches('/').to_string();
    match open_in_root(root, &dest, OFlag::O_PATH | OFlag::O_DIRECTORY) {
        Ok(_) => {}
        Err(Errno::ENOENT) => return Err(not_found(path, ctr)),
        Err(Errno::ENOTDIR) => {
            return Err(Error::Invalid("extraction point is not a directory".into()))
        }
        Err(e) => return Err(Error::Internal(format!("resolving {path}: {e}"))),
    }
    let bad = |e: std::io::Error| Error::Invalid(format!("extracting archive into {path}: {e}"));
    let mut a = tar::Archive::new(data);
    // Directory times are set last: creating their entries changes them.
    let mut dir_times: Vec<(PathBuf, OsString, Meta)> = Vec::new();
    for e in a.entries().map_err(bad)? {
        let mut e = e.map_err(bad)?;
        use tar::EntryType as T;
        let et = e.header().entry_type();
        // Only what can be made is looked at (PAX global headers and the like are
        // skipped before anything of the same name is replaced).
        if !matches!(
            et,
            T::Regular
                | T::Continuous
                | T::Directory
                | T::Symlink
                | T::Link
                | T::Char
                | T::Block
                | T::Fifo
        ) {
            continue;
        }
        let name = e.path().map_err(bad)?.into_owned();
        let comps = entry_components(&name)?;
        let Some((last, parents)) = comps.split_last() else {
            // `.` itself: the extraction directory is left as it is, as dockerd does.
            continue;
        };
        let shown = name.display().to_string();
        let fail = |e: Errno| Error::Invalid(format!("extracting {shown} into {path}: {e}"));
        let parent_rel = Path::new(&dest).join(parents.iter().collect::<PathBuf>());
        let dir = open_dir_creating(root, &parent_rel).map_err(fail)?;
        let mut m = meta(&mut e).map_err(bad)?;
        if let Some((uid, gid)) = opts.owner {
            m.uid = uid;
            m.gid = gid;
        }
        let is_dir = et.is_dir();
        let is_file = matches!(et, T::Regular | T::Continuous);
        let last_os = last.as_os_str();
        // A directory that a regular file replaces; removed only once the file is
        // complete (anything else in its way is replaced by the rename).
        let mut dir_in_the_way = false;
        match fstatat(Some(dir.as_raw_fd()), last_os, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let exists_dir = kind(&st) == libc::S_IFDIR;
                // As dockerd words it: the entry's path, then the extraction directory.
                let shown_dest = match path.trim_end_matches('/') {
                    "" => "/",
                    p => p,
                };
                let full = Path::new(shown_dest)
                    .join(comps.iter().collect::<PathBuf>())
                    .display()
                    .to_string();
                if opts.no_overwrite_dir_non_dir && exists_dir && !is_dir {
                    return Err(Error::Invalid(format!(
                        "cannot overwrite directory {full:?} with non-directory {shown_dest:?}"
                    )));
                }
                if opts.no_overwrite_dir_non_dir && !exists_dir && is_dir {
                    return Err(Error::Invalid(format!(
                        "cannot overwrite non-directory {full:?} with directory {shown_dest:?}"
                    )));
                }
                if is_file {
                    dir_in_the_way = exists_dir;
                } else if !(exists_dir && is_dir) {
                    remove_all_at(dir.as_fd(), last).map_err(fail)?;
                }
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(fail(e)),
        }
        if is_dir {
            match mkdirat(
                Some(dir.as_raw_fd()),
                last_os,
                Mode::from_bits_truncate(0o700),
            ) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(fail(e)),
            }
            let fd = open_at(
                dir.as_fd(),
                last_os,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )
            .map_err(fail)?;
            apply_meta(fd.as_fd(), &m).map_err(fail)?;
            dir_times.push((parent_rel, last.clone(), m));
            continue;
        }
        match et {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                // Written under a temporary name, renamed over the final one when
                // complete. O_EXCL with O_NOFOLLOW: a name that appeared meanwhile
                // (even as a symlink) makes this fail instead of writing through it;
                // renameat replaces a symlink at the final name, never follows it.
                let tmp = OsString::from(format!(".berth-cp-{}", super::random_hex(8)));
                let fd = open_at(
                    dir.as_fd(),
                    &tmp,
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(fail)?;
                let mut f = std::fs::File::from(fd);
                let size = e.size();
                let done = (|| -> Result<()> {
                    let n = std::io::copy(&mut e, &mut f).map_err(bad)?;
                    if n != size {
                        // The body ended inside the file.
                        return Err(Error::Invalid(format!(
                            "extracting {shown} into {path}: unexpected end of archive"
                        )));
                    }
                    f.flush().map_err(bad)?;
                    apply_meta(f.as_fd(), &m).map_err(fail)?;
                    if dir_in_the_way {
                        remove_all_at(dir.as_fd(), last).map_err(fail)?;
                    }
                    nix::fcntl::renameat(
                        Some(dir.as_raw_fd()),
                        tmp.as_os_str(),
                        Some(dir.as_raw_fd()),
                        last_os,
                    )
                    .map_err(fail)
                })();
                if done.is_err() {
                    let _ = nix::unistd::unlinkat(
                        Some(dir.as_raw_fd()),
                        tmp.as_os_str(),
                        nix::unistd::UnlinkatFlags::NoRemoveDir,
                    );
                }
                done?;
            }
            tar::EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                nix::unistd::symlinkat(OsStr::from_bytes(&target), Some(dir.as_raw_fd()), last_os)
                    .map_err(fail)?;
                apply_meta_nofollow(dir.as_fd(), last, &m).map_err(fail)?;
            }
            tar::EntryType::Link => {
                // The link's target is a path in the archive, below the extraction
                // directory too; linkat does not follow it if it is a symlink.
                let link = e.link_name().map_err(bad)?.unwrap_or_default().into_owned();
                let lc = entry_components(&link)?;
                let Some((src_last, src_parents)) = lc.split_last() else {
                    return Err(Error::Invalid(format!("invalid hardlink {shown}")));
                };
                let src_dir = open_in_root(
                    root,
                    &Path::new(&dest).join(src_parents.iter().collect::<PathBuf>()),
                    OFlag::O_PATH | OFlag::O_DIRECTORY,
                )
                .map_err(fail)?;
                nix::unistd::linkat(
                    Some(src_dir.as_raw_fd()),
                    src_last.as_os_str(),
                    Some(dir.as_raw_fd()),
                    last_os,
                    AtFlags::empty(),
                )
                .map_err(fail)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let k = match et {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                // ustar and GNU headers keep the device numbers at the same place.
                let (maj, min) = match (e.header().as_ustar(), e.header().as_gnu()) {
                    (Some(u), _) => (numeric(&u.dev_major), numeric(&u.dev_minor)),
                    (None, Some(g)) => (numeric(&g.dev_major), numeric(&g.dev_minor)),
                    (None, None) => (Ok(0), Ok(0)),
                };
                let (maj, min) = (maj.map_err(bad)?, min.map_err(bad)?);
                mknodat(
                    Some(dir.as_raw_fd()),
                    last_os,
                    k,
                    Mode::from_bits_truncate(0o600),
                    libc::makedev(maj as u32, min as u32),
                )
                .map_err(fail)?;
                apply_meta_nofollow(dir.as_fd(), last, &m).map_err(fail)?;
                chmod_node(dir.as_fd(), last, &m).map_err(fail)?;
            }
            // Skipped above.
            _ => {}
        }
    }
    // The end-of-archive blocks (and padding) that follow the last entry are read, so
    // that the client sees its whole body taken; bounded, junk after them is ignored.
    let _ = std::io::copy(&mut a.into_inner().take(1 << 20), &mut std::io::sink());
    for (parent_rel, name, m) in dir_times.iter().rev() {
        if let Ok(dir) = open_in_root(root, parent_rel, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            let t = TimeSpec::new(m.mtime, 0);
            let _ = nix::sys::stat::utimensat(
                Some(dir.as_raw_fd()),
                name.as_os_str(),
                &t,
                &t,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            );
        }
    }
    Ok(())
}

/// The mode of a device or FIFO just made: opened O_PATH without following (so a swap
/// for a symlink is seen), checked to be that kind of node, and changed through the
/// descriptor's `/proc/self/fd` entry, which names that inode and is not resolved
/// again (fchmod refuses O_PATH descriptors, and opening a device could act on it).
fn chmod_node(dir: BorrowedFd<'_>, name: &OsStr, m: &Meta) -> nix::Result<()> {
    let fd = open_at(
        dir,
        OsStr::new(name),
        OFlag::O_PATH | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )?;
    let st = fstat(fd.as_raw_fd())?;
    if !matches!(kind(&st), libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO) {
        return Err(Errno::EEXIST);
    }
    nix::sys::stat::fchmodat(
        None,
        Path::new(&format!("/proc/self/fd/{}", fd.as_raw_fd())),
        Mode::from_bits_truncate(m.mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(p: &Path) -> RootView {
        RootView {
            fd: open_path(p, OFlag::O_PATH | OFlag::O_DIRECTORY).unwrap(),
            mount: None,
        }
    }

    fn names(tar: &[u8]) -> Vec<(String, String)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .unwrap_or_default();
                (e.path().unwrap().display().to_string(), link)
            })
            .collect()
    }

    #[test]
    fn names_as_docker() {
        assert_eq!(base_name("/a/b/"), "b");
        assert_eq!(base_name("/a/."), ".");
        assert_eq!(base_name("/"), "/");
        assert_eq!(base_name("/a"), "a");
        assert_eq!(join_os(OsStr::new("."), OsStr::new("x")), "./x");
        assert_eq!(join_os(OsStr::new("/"), OsStr::new("x")), "/x");
    }

    #[test]
    fn numeric_fields() {
        assert_eq!(numeric(b"\0\0\0\0\0\0\0\0").unwrap(), 0);
        assert_eq!(numeric(b"        ").unwrap(), 0);
        assert_eq!(numeric(b"0000755\0").unwrap(), 0o755);
        assert_eq!(numeric(&[0x80, 0, 0, 0, 0, 0, 1, 0]).unwrap(), 256);
        assert!(numeric(b"12x\0").is_err());
    }

    #[test]
    fn symlinks_stay_inside() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/x"), "in").unwrap();
        std::os::unix::fs::symlink("/etc", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../..", r.join("up")).unwrap();
        std::os::unix::fs::symlink("/", r.join("root")).unwrap();
        let v = view(r);
        assert_eq!(resolved_name(v.fd(), "abs/x"), "/etc/x");
        assert_eq!(resolved_name(v.fd(), "up/etc"), "/etc");
        assert_eq!(resolved_name(v.fd(), "root"), "/");
        let (_, t) = tar_path(&v, "/abs/x", "c").unwrap();
        assert_eq!(names(&t), [("x".to_string(), String::new())]);
        let (stat, t) = tar_path(&v, "/root", "c").unwrap();
        assert_eq!(names(&t), [("root".to_string(), "/".to_string())]);
        assert_eq!(stat["linkTarget"], "/");
        let (_, t) = tar_path(&v, "/etc/.", "c").unwrap();
        assert_eq!(
            names(&t),
            [
                ("./".to_string(), String::new()),
                ("./x".to_string(), String::new())
            ]
        );
        // Writing through a link to `/` stays inside.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "f", &b"hi"[..]).unwrap();
        let data = b.into_inner().unwrap();
        untar_into(
            &v,
            "/up/root/etc",
            "c",
            data.as_slice(),
            ExtractOptions::default(),
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(r.join("etc/f")).unwrap(), "hi");
        // Names that are not UTF-8 go out and back in byte for byte.
        let odd = OsStr::from_bytes(b"caf\xe9");
        std::fs::create_dir_all(r.join("src").join(odd)).unwrap();
        std::fs::write(r.join("src").join(odd).join(odd), "x").unwrap();
        let (_, t) = tar_path(&v, "/src/.", "c").unwrap();
        std::fs::create_dir_all(r.join("dst")).unwrap();
        untar_into(&v, "/dst", "c", t.as_slice(), ExtractOptions::default()).unwrap();
        assert_eq!(
            std::fs::read_to_string(r.join("dst").join(odd).join(odd)).unwrap(),
            "x"
        );
        // Replacing a directory tree with a file removes the tree.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, odd, &b"y"[..]).unwrap();
        untar_into(
            &v,
            "/dst",
            "c",
            b.into_inner().unwrap().as_slice(),
            ExtractOptions::default(),
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(r.join("dst").join(odd)).unwrap(),
            "y"
        );
        let err =
            untar_into(&v, "/nope", "c", data.as_slice(), ExtractOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Could not find the file /nope in container c"
        );
    }

    #[test]
    fn pax_records_and_short_files() {
        // Record lengths count their own digits, across a digit-count boundary too.
        for vlen in [0usize, 80, 88, 89, 90, 990, 995] {
            let v = vec![b'v'; vlen];
            let recs = vec![("SCHILY.xattr.user.k".to_string(), v.clone())];
            let (h, data) = pax_entry(b"dir/name", &recs);
            let mut out = h.as_bytes().to_vec();
            out.extend_from_slice(&data);
            out.resize(out.len().div_ceil(512) * 512, 0);
            let mut fh = tar::Header::new_gnu();
            fh.set_size(0);
            fh.set_mode(0o644);
            fh.as_old_mut().name[..1].copy_from_slice(b"f");
            fh.set_cksum();
            out.extend_from_slice(fh.as_bytes());
            out.extend_from_slice(&[0; 1024]);
            let mut a = tar::Archive::new(out.as_slice());
            let mut e = a.entries().unwrap().next().unwrap().unwrap();
            let got: Vec<Vec<u8>> = e
                .pax_extensions()
                .unwrap()
                .unwrap()
                .map(|r| r.unwrap().value_bytes().to_vec())
                .collect();
            assert_eq!(got, [v], "value of {vlen} bytes");
        }
        // A shrinking file is padded to its announced size, a growing one cut.
        let mut out = Vec::new();
        Exact {
            inner: &b"abc"[..],
            left: 5,
        }
        .read_to_end(&mut out)
        .unwrap();
        assert_eq!(out, b"abc\0\0");
        out.clear();
        Exact {
            inner: &b"abcdef"[..],
            left: 2,
        }
        .read_to_end(&mut out)
        .unwrap();
        assert_eq!(out, b"ab");
    }

    #[test]
    fn cut_short_archive_leaves_no_file_and_owner_resolves() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(
            r.join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\nu:x:7:8::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(r.join("etc/group"), "root:x:0:\ng:x:9:\n").unwrap();
        std::fs::write(r.join("old"), "old").unwrap();
        let v = view(r);
        for name in ["new", "old"] {
            let mut h = tar::Header::new_gnu();
            h.set_size(4096);
            h.set_mode(0o644);
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            let mut data = h.as_bytes().to_vec();
            data.extend_from_slice(&[b'x'; 1000]);
            assert!(untar_into(&v, "/", "c", data.as_slice(), ExtractOptions::default()).is_err());
        }
        let mut left: Vec<String> = std::fs::read_dir(r)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["etc", "old"]);
        assert_eq!(std::fs::read_to_string(r.join("old")).unwrap(), "old");
        assert_eq!(container_owner(&v, "").unwrap(), None);
        assert_eq!(container_owner(&v, "u").unwrap(), Some((7, 8)));
        assert_eq!(container_owner(&v, "7").unwrap(), Some((7, 8)));
        assert_eq!(container_owner(&v, "u:g").unwrap(), Some((7, 9)));
        assert_eq!(container_owner(&v, "50:51").unwrap(), Some((50, 51)));
        assert_eq!(container_owner(&v, "50").unwrap(), Some((50, 0)));
        assert!(container_owner(&v, "nobody").is_err());
        assert!(container_owner(&v, "u:nogroup").is_err());
    }
}
