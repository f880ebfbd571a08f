//! Unpacking an untrusted tar stream into a directory of a [`Root`]: image layers,
//! `docker cp` into a container, `berth cp` into a host directory, `docker load`'s
//! archive, build's `COPY` next. One loop, its policy chosen by [`Options`].
//!
//! What holds for every caller:
//! - An entry's name is turned into plain components by the [`Names`] rule before
//!   anything is touched; nothing is ever built as a host path.
//! - Its parent directory is opened as a descriptor: inside the root as the container
//!   would resolve it ([`Parents::InRoot`], openat2 `RESOLVE_IN_ROOT`), or through real
//!   directories only ([`Parents::RealDirs`], `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`),
//!   so that a symlink (left there, or made by an earlier entry) is never written
//!   through. Missing parents are made one at a time, each relative to the last.
//! - The entry itself is made relative to that descriptor and follows nothing
//!   (`O_EXCL | O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`). A regular file is written under a
//!   temporary name and renamed into place once complete: an archive cut short leaves
//!   no truncated file under a real name, and an existing file (or a hard link to one)
//!   is replaced, never written into.
//! - Owner, mode, extended attributes and times are set on the open descriptor
//!   (directories' modes and times last, once their content is in). overlayfs's own
//!   attributes (`trusted.overlay.*`) are never taken from an archive.
//! - A hard link may only name an entry already inside the extraction directory.
//! - Memory is a few buffers whatever the archive: long names and PAX headers are
//!   bounded ([`MAX_HEADERS`]); a GNU sparse file is written with holes, so a huge
//!   sparse header costs only the data actually sent.

use crate::error::errno_of;
use crate::root::{kind, open_at, owned, remove_all_at, Root};
use crate::{Error, Refusal, Result};
use nix::errno::Errno;
use nix::fcntl::{openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, mkdirat, mknodat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};
use std::cell::Cell;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use xattr::FileExt;

/// Most bytes of headers (GNU long names, PAX records, skipped entries) read before
/// one entry: the tar crate keeps them in memory, and no real entry comes near.
pub const MAX_HEADERS: u64 = 1 << 20;

/// How an entry's name becomes components below the extraction directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Names {
    /// Image layers: `.` components are dropped; a `..` component or an absolute name
    /// is refused.
    Strict,
    /// dockerd's `docker cp` rule: a leading `/` is ignored and `..` removes the
    /// component before it; a name that climbs above the extraction directory is
    /// refused.
    Docker,
    /// `berth cp` from a container into a host directory: [`Names::Strict`], and the
    /// entry must be the copied path `top` or below it (or, for a directory's content,
    /// `.`-relative), which is put under `to` instead.
    Rebase {
        /// The archive's top name as the container named it (`.` for content).
        top: OsString,
        /// The components it becomes (empty: the extraction directory itself).
        to: Vec<OsString>,
    },
}

/// How an entry's parent directories are opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parents {
    /// As the container would resolve them: symlinks followed, inside the root.
    InRoot,
    /// Real directories only: a symlink or a non-directory among them refuses the
    /// entry.
    RealDirs,
}

/// Whom the unpacked files belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owners {
    /// The archive's uid and gid.
    Keep,
    /// This uid and gid for every entry.
    Fixed(u32, u32),
    /// The caller's (no chown).
    Caller,
}

/// Which special files are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nodes {
    /// Devices and FIFOs.
    All,
    /// FIFOs; devices are skipped.
    FifosOnly,
    /// Neither.
    None,
}

/// What may replace what already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// A directory over a directory merges; anything else replaces what is there.
    Replace,
    /// As `Replace`, but a non-directory may not replace a directory.
    KeepDirs,
    /// Neither a directory nor a non-directory may replace the other (dockerd's
    /// `noOverwriteDirNonDir`).
    NoDirNonDir,
}

/// The unpacking policy of one caller.
#[derive(Debug, Clone)]
pub struct Options {
    /// How names become components.
    pub names: Names,
    /// How parents are opened.
    pub parents: Parents,
    /// OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`) become overlayfs whiteouts (a 0:0
    /// character device) and opaque directories (`trusted.overlay.opaque=y`).
    pub whiteouts: bool,
    /// Owners.
    pub owners: Owners,
    /// Mode bits kept from the archive (`0o7777`: all; `0o1777`: no set-id).
    pub mode_mask: u32,
    /// Extended attributes (PAX `SCHILY.xattr.*`) are restored, but overlayfs's own.
    pub xattrs: bool,
    /// Special files.
    pub nodes: Nodes,
    /// Replacement rule.
    pub overwrite: Overwrite,
    /// The extraction directory as errors show it (a container path, a host path).
    pub shown_dest: String,
}

impl Options {
    /// An image layer into its empty snapshot directory.
    pub fn layer() -> Self {
        Self {
            names: Names::Strict,
            parents: Parents::RealDirs,
            whiteouts: true,
            owners: Owners::Keep,
            mode_mask: 0o7777,
            xattrs: true,
            nodes: Nodes::FifosOnly,
            overwrite: Overwrite::Replace,
            shown_dest: "/".into(),
        }
    }

    /// `docker cp` into a container's directory `shown_dest`, as dockerd unpacks it.
    pub fn container(shown_dest: &str) -> Self {
        Self {
            names: Names::Docker,
            parents: Parents::InRoot,
            whiteouts: false,
            owners: Owners::Keep,
            mode_mask: 0o7777,
            xattrs: true,
            nodes: Nodes::All,
            overwrite: Overwrite::Replace,
            shown_dest: shown_dest.into(),
        }
    }

    /// `berth cp` from a container into a host directory chosen by the user: the
    /// entries of `top` put under `to`, owned by the user running it, without set-id
    /// bits, extended attributes or special files, never through a symlink.
    pub fn host(top: &OsStr, to: Vec<OsString>, shown_dest: &str) -> Self {
        Self {
            names: Names::Rebase {
                top: top.to_os_string(),
                to,
            },
            parents: Parents::RealDirs,
            whiteouts: false,
            owners: Owners::Caller,
            mode_mask: 0o1777,
            xattrs: false,
            nodes: Nodes::None,
            overwrite: Overwrite::KeepDirs,
            shown_dest: shown_dest.into(),
        }
    }

    /// An archive whose files the caller then reads (`docker load`): names as dockerd
    /// takes them, plain files and directories only, no owners or special bits.
    pub fn files() -> Self {
        Self {
            names: Names::Docker,
            parents: Parents::RealDirs,
            whiteouts: false,
            owners: Owners::Caller,
            mode_mask: 0o755,
            xattrs: false,
            nodes: Nodes::None,
            overwrite: Overwrite::Replace,
            shown_dest: "/".into(),
        }
    }
}

/// What an unpacking made.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Unpacked {
    /// Entries made (whiteouts included).
    pub entries: u64,
    /// Bytes of regular file content (a sparse file counts its full length).
    pub bytes: u64,
    /// Entries the policy skips (devices, FIFOs, unknown kinds).
    pub skipped: u64,
}

/// Counts what the tar reader takes between two entries, and refuses more than
/// [`MAX_HEADERS`] of it: the tar crate reads long names and PAX records into memory.
struct Meter {
    in_body: Cell<bool>,
    since_entry: Cell<u64>,
}

struct Metered<R> {
    inner: R,
    meter: Rc<Meter>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if !self.meter.in_body.get() {
            let since = self.meter.since_entry.get() + n as u64;
            self.meter.since_entry.set(since);
            if since > MAX_HEADERS {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("more than {MAX_HEADERS} bytes of headers before one entry"),
                ));
            }
        }
        Ok(n)
    }
}

/// The metadata of an entry that unpacking applies.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    /// Extended attributes (PAX `SCHILY.xattr.NAME`): name, value.
    xattrs: Vec<(OsString, Vec<u8>)>,
}

/// The PAX key under which tar (GNU, Go, libarchive) keeps an extended attribute.
pub const PAX_XATTR: &str = "SCHILY.xattr.";

/// A numeric header field as Go's archive/tar reads it: octal, or base-256 when the
/// high bit is set; empty (all NUL or spaces) is 0, which the tar crate refuses.
pub fn numeric(field: &[u8]) -> std::io::Result<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut n: u64 = (field[0] & 0x7f) as u64;
        for b in &field[1..] {
            n = n.checked_shl(8).unwrap_or(u64::MAX) | *b as u64;
        }
        return Ok(n);
    }
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    let text = String::from_utf8_lossy(&field[..end]);
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

fn meta<R: Read>(e: &mut tar::Entry<'_, R>) -> std::io::Result<Meta> {
    let old = e.header().as_old();
    let mut m = Meta {
        mode: (numeric(&old.mode)? & 0o7777) as u32,
        uid: u32::try_from(numeric(&old.uid)?).unwrap_or(u32::MAX),
        gid: u32::try_from(numeric(&old.gid)?).unwrap_or(u32::MAX),
        mtime: i64::try_from(numeric(&old.mtime)?).unwrap_or(0),
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

/// The components an entry name stands for under `rule`.
pub fn components(rule: &Names, raw: &[u8]) -> std::result::Result<Vec<OsString>, Refusal> {
    let path = Path::new(OsStr::from_bytes(raw));
    match rule {
        Names::Strict => strict(path),
        Names::Docker => {
            let mut out: Vec<OsString> = Vec::new();
            for c in path.components() {
                match c {
                    Component::Normal(s) => out.push(s.to_os_string()),
                    // `..` removes the component before it; with none left, refused.
                    Component::ParentDir if out.pop().is_none() => return Err(Refusal::ClimbsOut),
                    _ => {}
                }
            }
            Ok(out)
        }
        Names::Rebase { top, to } => {
            let dot_first = matches!(path.components().next(), Some(Component::CurDir));
            let mut rest = strict(path)?;
            // `./x` (docker's form for a directory's content) is relative to the top
            // already; so is every entry when the top is `.`.
            if !(dot_first || top == ".") {
                if rest.first() != Some(top) {
                    return Err(Refusal::NotUnderTop);
                }
                rest.remove(0);
            }
            let mut out = to.clone();
            out.extend(rest);
            Ok(out)
        }
    }
}

fn strict(path: &Path) -> std::result::Result<Vec<OsString>, Refusal> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => out.push(s.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => return Err(Refusal::DotDot),
            Component::RootDir | Component::Prefix(_) => return Err(Refusal::Absolute),
        }
    }
    Ok(out)
}

/// Each temporary file gets a name of its own, also between threads.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

fn tmp_name() -> OsString {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    OsString::from(format!(
        ".berth-untar-{}-{}-{nanos:x}",
        std::process::id(),
        NEXT_TMP.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Size of the copy buffer: big enough to stream at disk speed, small enough not to
/// matter per copy.
const BUF: usize = 256 * 1024;

/// What a sparse file's holes are compared with.
static ZEROS: [u8; BUF] = [0; BUF];

/// Longest sparse file unpacked: its holes are handed over by the tar reader as zeros
/// (about a second per 10 GiB to pass over), so an absurd length would keep a core
/// busy for hours on a few bytes of archive. Real sparse files in images and copies
/// (disk images, databases) stay far below it.
pub const MAX_SPARSE: u64 = 64 << 30;

/// A directory whose mode and times are set once everything is in it.
struct DirLater {
    parents: Vec<OsString>,
    name: OsString,
    mode: u32,
    mtime: i64,
}

struct Unpacker<'a> {
    root: &'a Root,
    opts: &'a Options,
    /// `Parents::InRoot`: the extraction directory as given, relative to the root
    /// (components kept for the kernel to resolve).
    dest_rel: PathBuf,
    /// `Parents::RealDirs`: the extraction directory, opened once.
    dest: OwnedFd,
    buf: Vec<u8>,
    later: Vec<DirLater>,
    stats: Unpacked,
}

/// Unpacks the tar stream `reader` into the directory `dest` of `root` (resolved inside
/// the root; it must exist) by the policy `opts`. An error stops the unpacking; what was
/// made before it stays (a caller that wants all or nothing unpacks into a directory of
/// its own and publishes it on success), but no regular file appears under its name
/// unless complete. The end-of-archive blocks after the last entry are read, bounded.
pub fn unpack<R: Read>(root: &Root, dest: &str, reader: R, opts: &Options) -> Result<Unpacked> {
    let dest_rel = PathBuf::from(dest.trim_start_matches('/'));
    let dest_fd = root
        .resolve_raw(&dest_rel, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(|errno| match errno {
            Errno::ENOTDIR => Error::WrongKind {
                path: opts.shown_dest.clone(),
                what: "extraction point is not a directory",
            },
            errno => Error::Resolve {
                path: opts.shown_dest.clone(),
                errno,
            },
        })?;
    let mut u = Unpacker {
        root,
        opts,
        dest_rel,
        dest: dest_fd,
        buf: vec![0; BUF],
        later: Vec::new(),
        stats: Unpacked::default(),
    };
    let meter = Rc::new(Meter {
        in_body: Cell::new(false),
        since_entry: Cell::new(0),
    });
    let mut archive = tar::Archive::new(Metered {
        inner: reader,
        meter: meter.clone(),
    });
    let tar_err = |source| Error::Tar { source };
    for entry in archive.entries().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        meter.since_entry.set(0);
        u.entry(&mut entry, &meter)?;
        meter.in_body.set(false);
        meter.since_entry.set(0);
    }
    // The end-of-archive blocks (and padding) that follow the last entry are read, so
    // that a sender sees its whole stream taken; bounded, junk after them is ignored.
    meter.in_body.set(true);
    let _ = std::io::copy(
        &mut archive.into_inner().take(1 << 20),
        &mut std::io::sink(),
    );
    u.finish_dirs();
    Ok(u.stats)
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>, meter: &Meter) -> Result<()> {
        use tar::EntryType as T;
        let et = e.header().entry_type();
        // Only what can be made is looked at (PAX global headers and the like are
        // skipped before anything of the same name is replaced).
        if !matches!(
            et,
            T::Regular
                | T::Continuous
                | T::GNUSparse
                | T::Directory
                | T::Symlink
                | T::Link
                | T::Char
                | T::Block
                | T::Fifo
        ) {
            self.stats.skipped += 1;
            return Ok(());
        }
        let raw = e.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let refused = |why| Error::Refused {
            entry: shown.clone(),
            why,
        };
        let comps = components(&self.opts.names, &raw).map_err(refused)?;
        let Some((last, parents)) = comps.split_last() else {
            // The extraction directory itself: left as it is.
            if et.is_dir() {
                return Ok(());
            }
            return Err(refused(Refusal::ReplacesDestination));
        };
        let skip = match et {
            T::Char | T::Block => self.opts.nodes != Nodes::All,
            T::Fifo => self.opts.nodes == Nodes::None,
            _ => false,
        };
        if skip {
            tracing::debug!(entry = %shown, "special file not unpacked");
            self.stats.skipped += 1;
            return Ok(());
        }
        let create = |errno| Error::Create {
            path: shown.clone(),
            errno,
        };
        let m = meta(e).map_err(|source| Error::Tar { source })?;
        if self.opts.whiteouts && last.as_bytes().starts_with(b".wh.") {
            return self.whiteout(parents, last, &m, &shown);
        }
        let dir = self.parent(parents, true, &shown)?;
        let is_dir = et.is_dir();
        let is_file = matches!(et, T::Regular | T::Continuous | T::GNUSparse);
        // A directory that a regular file replaces; removed only once the file is
        // complete (anything else in its way is replaced by the rename).
        let mut dir_in_the_way = false;
        match fstatat(
            Some(dir.as_raw_fd()),
            last.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => {
                let exists_dir = kind(&st) == libc::S_IFDIR;
                let full = || self.shown_path(&comps);
                match self.opts.overwrite {
                    Overwrite::NoDirNonDir | Overwrite::KeepDirs if exists_dir && !is_dir => {
                        return Err(Error::OverwriteDir {
                            path: full(),
                            dest: self.opts.shown_dest.clone(),
                        })
                    }
                    Overwrite::NoDirNonDir if !exists_dir && is_dir => {
                        return Err(Error::OverwriteNonDir {
                            path: full(),
                            dest: self.opts.shown_dest.clone(),
                        })
                    }
                    _ => {}
                }
                if is_file {
                    dir_in_the_way = exists_dir;
                } else if !(exists_dir && is_dir) {
                    remove_all_at(dir.as_fd(), last).map_err(create)?;
                }
            }
            Err(Errno::ENOENT) => {}
            Err(errno) => return Err(create(errno)),
        }
        match et {
            T::Directory => {
                match mkdirat(
                    Some(dir.as_raw_fd()),
                    last.as_os_str(),
                    Mode::from_bits_truncate(0o700),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(errno) => return Err(create(errno)),
                }
                let fd = open_at(
                    dir.as_fd(),
                    last,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
                    Mode::empty(),
                )
                .map_err(create)?;
                self.owner_and_xattrs(fd.as_fd(), &m, &shown)?;
                self.later.push(DirLater {
                    parents: parents.to_vec(),
                    name: last.clone(),
                    mode: m.mode & self.opts.mode_mask,
                    mtime: m.mtime,
                });
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                meter.in_body.set(true);
                let sparse = et == T::GNUSparse;
                if sparse && e.size() > MAX_SPARSE {
                    return Err(refused(Refusal::SparseTooLarge));
                }
                self.file(e, dir.as_fd(), last, &m, &shown, sparse, dir_in_the_way)?;
            }
            T::Symlink => {
                let target = e
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .filter(|l| !l.is_empty())
                    .ok_or_else(|| refused(Refusal::NoTarget))?;
                // The link is made as it is: its target is text for whoever reads it
                // later inside the root; nothing here follows it.
                nix::unistd::symlinkat(
                    OsStr::from_bytes(&target),
                    Some(dir.as_raw_fd()),
                    last.as_os_str(),
                )
                .map_err(create)?;
                self.meta_nofollow(dir.as_fd(), last, &m, &shown)?;
            }
            T::Link => self.hard_link(e, dir.as_fd(), last, &shown)?,
            _ => {
                let (k, mode) = match et {
                    T::Char => (SFlag::S_IFCHR, 0o600),
                    T::Block => (SFlag::S_IFBLK, 0o600),
                    _ => (SFlag::S_IFIFO, 0o600),
                };
                // ustar and GNU headers keep the device numbers at the same place.
                let (maj, min) = match (e.header().as_ustar(), e.header().as_gnu()) {
                    (Some(u), _) => (numeric(&u.dev_major), numeric(&u.dev_minor)),
                    (None, Some(g)) => (numeric(&g.dev_major), numeric(&g.dev_minor)),
                    (None, None) => (Ok(0), Ok(0)),
                };
                let tar_err = |source| Error::Tar { source };
                let (maj, min) = (maj.map_err(tar_err)?, min.map_err(tar_err)?);
                mknodat(
                    Some(dir.as_raw_fd()),
                    last.as_os_str(),
                    k,
                    Mode::from_bits_truncate(mode),
                    libc::makedev(maj as u32, min as u32),
                )
                .map_err(create)?;
                self.meta_nofollow(dir.as_fd(), last, &m, &shown)?;
                chmod_node(dir.as_fd(), last, m.mode & self.opts.mode_mask).map_err(|errno| {
                    Error::Metadata {
                        path: shown.clone(),
                        errno,
                    }
                })?;
            }
        }
        self.stats.entries += 1;
        Ok(())
    }

    /// The extraction directory and `comps` below it, as errors show them.
    fn shown_path(&self, comps: &[OsString]) -> String {
        let mut p = PathBuf::from(match self.opts.shown_dest.trim_end_matches('/') {
            "" => "/",
            d => d,
        });
        p.extend(comps);
        p.display().to_string()
    }

    /// Opens the directory `comps` below the extraction directory by the parents
    /// policy, making what is missing when `create`.
    fn parent(&self, comps: &[OsString], create: bool, shown: &str) -> Result<OwnedFd> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
        let resolve_err = |errno| Error::Resolve {
            path: shown.to_string(),
            errno,
        };
        match self.opts.parents {
            Parents::RealDirs => {
                let refused = || Error::Refused {
                    entry: shown.to_string(),
                    why: Refusal::ParentNotDir,
                };
                if comps.is_empty() {
                    return open_at(self.dest.as_fd(), OsStr::new("."), flags, Mode::empty())
                        .map_err(resolve_err);
                }
                let rel: PathBuf = comps.iter().collect();
                let how = OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(
                    ResolveFlag::RESOLVE_BENEATH
                        | ResolveFlag::RESOLVE_NO_SYMLINKS
                        | ResolveFlag::RESOLVE_NO_MAGICLINKS,
                );
                match openat2(self.dest.as_raw_fd(), &rel, how) {
                    Ok(fd) => return Ok(owned(fd)),
                    Err(Errno::ELOOP | Errno::ENOTDIR | Errno::EXDEV) => return Err(refused()),
                    Err(Errno::ENOENT) if create => {}
                    Err(errno) => return Err(resolve_err(errno)),
                }
                let mut cur = open_at(self.dest.as_fd(), OsStr::new("."), flags, Mode::empty())
                    .map_err(resolve_err)?;
                for c in comps {
                    let next = |cur: &OwnedFd| {
                        open_at(cur.as_fd(), c, flags | OFlag::O_NOFOLLOW, Mode::empty())
                    };
                    cur = match next(&cur) {
                        Ok(fd) => fd,
                        Err(Errno::ENOENT) => {
                            match mkdirat(
                                Some(cur.as_raw_fd()),
                                c.as_os_str(),
                                Mode::from_bits_truncate(0o755),
                            ) {
                                Ok(()) | Err(Errno::EEXIST) => {}
                                Err(errno) => {
                                    return Err(Error::Create {
                                        path: shown.to_string(),
                                        errno,
                                    })
                                }
                            }
                            next(&cur).map_err(|e| match e {
                                Errno::ELOOP | Errno::ENOTDIR => refused(),
                                e => resolve_err(e),
                            })?
                        }
                        Err(Errno::ELOOP | Errno::ENOTDIR) => return Err(refused()),
                        Err(errno) => return Err(resolve_err(errno)),
                    };
                }
                Ok(cur)
            }
            Parents::InRoot => {
                let mut rel = self.dest_rel.clone();
                rel.extend(comps);
                match self.root.resolve_raw(&rel, flags) {
                    Err(Errno::ENOENT) if create => {}
                    r => return r.map_err(resolve_err),
                }
                // Made one component at a time, each relative to its parent as
                // resolved inside the root.
                let mut fd = self
                    .root
                    .resolve_raw(Path::new(""), flags)
                    .map_err(resolve_err)?;
                let mut done = PathBuf::new();
                for c in rel.components() {
                    let c = match c {
                        Component::Normal(c) => c,
                        Component::ParentDir => OsStr::new(".."),
                        _ => continue,
                    };
                    done.push(c);
                    fd = match self.root.resolve_raw(&done, flags) {
                        Err(Errno::ENOENT) => {
                            match mkdirat(Some(fd.as_raw_fd()), c, Mode::from_bits_truncate(0o755))
                            {
                                Ok(()) | Err(Errno::EEXIST) => {}
                                Err(errno) => {
                                    return Err(Error::Create {
                                        path: shown.to_string(),
                                        errno,
                                    })
                                }
                            }
                            self.root.resolve_raw(&done, flags)
                        }
                        r => r,
                    }
                    .map_err(resolve_err)?;
                }
                Ok(fd)
            }
        }
    }

    /// A regular file: written under a temporary name in `dir`, its metadata set, then
    /// renamed over `name`.
    #[allow(clippy::too_many_arguments)]
    fn file<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        m: &Meta,
        shown: &str,
        sparse: bool,
        dir_in_the_way: bool,
    ) -> Result<()> {
        let create = |errno| Error::Create {
            path: shown.to_string(),
            errno,
        };
        // O_EXCL with O_NOFOLLOW: a name that appeared meanwhile (even as a symlink)
        // makes this fail instead of writing through it; renameat replaces a symlink
        // at the final name, never follows it.
        let mut attempt = 0;
        let (tmp, fd) = loop {
            let tmp = tmp_name();
            match open_at(
                dir,
                &tmp,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
                Mode::from_bits_truncate(0o600),
            ) {
                Ok(fd) => break (tmp, fd),
                Err(Errno::EEXIST) if attempt < 8 => attempt += 1,
                Err(errno) => return Err(create(errno)),
            }
        };
        let mut f = std::fs::File::from(fd);
        let done = (|| -> Result<()> {
            let size = e.size();
            let n = copy_exact(e, &mut f, &mut self.buf, size, sparse, shown)?;
            self.stats.bytes += n;
            self.owner_and_xattrs(f.as_fd(), m, shown)?;
            let meta = |errno| Error::Metadata {
                path: shown.to_string(),
                errno,
            };
            nix::sys::stat::fchmod(
                f.as_raw_fd(),
                Mode::from_bits_truncate(m.mode & self.opts.mode_mask),
            )
            .map_err(meta)?;
            let t = TimeSpec::new(m.mtime, 0);
            nix::sys::stat::futimens(f.as_raw_fd(), &t, &t).map_err(meta)?;
            if dir_in_the_way {
                remove_all_at(dir, name).map_err(create)?;
            }
            nix::fcntl::renameat(
                Some(dir.as_raw_fd()),
                tmp.as_os_str(),
                Some(dir.as_raw_fd()),
                name,
            )
            .map_err(create)
        })();
        if done.is_err() {
            let _ = nix::unistd::unlinkat(
                Some(dir.as_raw_fd()),
                tmp.as_os_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
        done
    }

    /// A hard link to an entry already inside the extraction directory; `linkat` does
    /// not follow its target if that is a symlink.
    fn hard_link<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        shown: &str,
    ) -> Result<()> {
        let refused = |why| Error::Refused {
            entry: shown.to_string(),
            why,
        };
        let target = e
            .link_name_bytes()
            .map(|l| l.into_owned())
            .ok_or_else(|| refused(Refusal::NoTarget))?;
        let comps =
            components(&self.opts.names, &target).map_err(|_| refused(Refusal::HardlinkOutside))?;
        let Some((src_last, src_parents)) = comps.split_last() else {
            return Err(refused(Refusal::HardlinkMissing));
        };
        let src_dir = match self.parent(src_parents, false, shown) {
            Ok(fd) => fd,
            Err(e) if e.is_not_found() => return Err(refused(Refusal::HardlinkMissing)),
            Err(e) => return Err(e),
        };
        match nix::unistd::linkat(
            Some(src_dir.as_raw_fd()),
            src_last.as_os_str(),
            Some(dir.as_raw_fd()),
            name,
            AtFlags::empty(),
        ) {
            Ok(()) => Ok(()),
            Err(Errno::ENOENT) => Err(refused(Refusal::HardlinkMissing)),
            Err(errno) => Err(Error::Create {
                path: shown.to_string(),
                errno,
            }),
        }
    }

    /// An OCI whiteout as overlayfs has it: `.wh..wh..opq` marks its directory opaque,
    /// `.wh.NAME` becomes a 0:0 character device `NAME`. AUFS's own `.wh..wh.*` entries
    /// mean nothing here and are skipped.
    fn whiteout(
        &mut self,
        parents: &[OsString],
        last: &OsStr,
        m: &Meta,
        shown: &str,
    ) -> Result<()> {
        let refused = |why| Error::Refused {
            entry: shown.to_string(),
            why,
        };
        let dir = self.parent(parents, true, shown)?;
        let name = &last.as_bytes()[4..];
        if name == b".wh..opq" {
            let d = open_at(
                dir.as_fd(),
                OsStr::new("."),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                Mode::empty(),
            )
            .map_err(|errno| Error::Read {
                path: shown.to_string(),
                errno,
            })?;
            let f = std::fs::File::from(d);
            f.set_xattr("trusted.overlay.opaque", b"y")
                .map_err(|e| Error::Metadata {
                    path: shown.to_string(),
                    errno: errno_of(&e),
                })?;
            self.stats.entries += 1;
            return Ok(());
        }
        if name.starts_with(b".wh.") {
            self.stats.skipped += 1;
            return Ok(());
        }
        if name.is_empty() || name == b"." || name == b".." {
            return Err(refused(Refusal::BadWhiteout));
        }
        let hidden = OsStr::from_bytes(name);
        let create = |errno| Error::Create {
            path: shown.to_string(),
            errno,
        };
        match remove_all_at(dir.as_fd(), hidden) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(errno) => return Err(create(errno)),
        }
        mknodat(
            Some(dir.as_raw_fd()),
            hidden,
            SFlag::S_IFCHR,
            Mode::empty(),
            libc::makedev(0, 0),
        )
        .map_err(create)?;
        self.meta_nofollow(dir.as_fd(), hidden, m, shown)?;
        self.stats.entries += 1;
        Ok(())
    }

    /// Owner, then extended attributes (a chown clears `security.capability`), on an
    /// open file or directory.
    fn owner_and_xattrs(&self, fd: BorrowedFd<'_>, m: &Meta, shown: &str) -> Result<()> {
        let meta = |errno| Error::Metadata {
            path: shown.to_string(),
            errno,
        };
        if let Some((uid, gid)) = self.owner(m) {
            nix::unistd::fchown(
                fd.as_raw_fd(),
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
            )
            .map_err(meta)?;
        }
        if self.opts.xattrs && !m.xattrs.is_empty() {
            set_xattrs(fd, &m.xattrs).map_err(meta)?;
        }
        Ok(())
    }

    fn owner(&self, m: &Meta) -> Option<(u32, u32)> {
        match self.opts.owners {
            Owners::Keep => Some((m.uid, m.gid)),
            Owners::Fixed(uid, gid) => Some((uid, gid)),
            Owners::Caller => None,
        }
    }

    /// Owner and times of `name` in `dir` without following it (a symlink, a node).
    fn meta_nofollow(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        m: &Meta,
        shown: &str,
    ) -> Result<()> {
        let meta = |errno| Error::Metadata {
            path: shown.to_string(),
            errno,
        };
        if let Some((uid, gid)) = self.owner(m) {
            nix::unistd::fchownat(
                Some(dir.as_raw_fd()),
                name,
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(meta)?;
        }
        let t = TimeSpec::new(m.mtime, 0);
        nix::sys::stat::utimensat(
            Some(dir.as_raw_fd()),
            name,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .map_err(meta)
    }

    /// Directories' modes and times, deepest last-made first, once nothing more is
    /// made in them. A directory that is gone or replaced meanwhile is passed over.
    fn finish_dirs(&mut self) {
        for d in std::mem::take(&mut self.later).into_iter().rev() {
            let Ok(parent) = self.parent(&d.parents, false, "") else {
                continue;
            };
            let Ok(fd) = open_at(
                parent.as_fd(),
                &d.name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
                Mode::empty(),
            ) else {
                continue;
            };
            let _ = nix::sys::stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(d.mode));
            let t = TimeSpec::new(d.mtime, 0);
            let _ = nix::sys::stat::futimens(fd.as_raw_fd(), &t, &t);
        }
    }
}

/// Copies exactly `size` bytes of an entry into `f`; fewer is an archive cut short. A
/// sparse entry's runs of zeros become holes (the tar reader hands its holes over as
/// zeros), so that only the data actually sent takes space.
fn copy_exact<R: Read>(
    e: &mut R,
    f: &mut std::fs::File,
    buf: &mut [u8],
    size: u64,
    sparse: bool,
    shown: &str,
) -> Result<u64> {
    let write_err = |err: std::io::Error| Error::Write {
        path: shown.to_string(),
        errno: errno_of(&err),
    };
    let mut n = 0u64;
    let mut hole = false;
    while n < size {
        let want = buf.len().min((size - n).try_into().unwrap_or(usize::MAX));
        let got = match e.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(got) => got,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(Error::Tar { source }),
        };
        let chunk = &buf[..got];
        if sparse && chunk == &ZEROS[..got] {
            f.seek(SeekFrom::Current(got as i64)).map_err(write_err)?;
            hole = true;
        } else {
            f.write_all(chunk).map_err(write_err)?;
            hole = false;
        }
        n += got as u64;
    }
    if n != size {
        return Err(Error::Tar {
            source: std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{shown}: unexpected end of archive"),
            ),
        });
    }
    if hole {
        // A file that ends in a hole gets its length from the size, not a write.
        f.set_len(size).map_err(write_err)?;
    }
    Ok(n)
}

/// Restores extended attributes on an open descriptor, as dockerd restores every
/// `SCHILY.xattr.*` record, but overlayfs's own (`trusted.overlay.*` would make a
/// layer's file opaque, redirected or a metacopy: that belongs to the layer's maker,
/// here, not to an archive). One the kernel refuses with EPERM or ENOTSUP is only logged
/// (dockerd too: e.g. `trusted.*` where not allowed); any other failure fails.
fn set_xattrs(fd: BorrowedFd<'_>, xattrs: &[(OsString, Vec<u8>)]) -> nix::Result<()> {
    // The xattr crate writes through a `File`; a duplicate keeps `fd` with its owner.
    let f = std::fs::File::from(fd.try_clone_to_owned().map_err(|e| errno_of(&e))?);
    for (name, value) in xattrs {
        if name.as_bytes().starts_with(b"trusted.overlay.") {
            tracing::warn!(xattr = ?name, "overlayfs attribute in an archive not restored");
            continue;
        }
        match f.set_xattr(name, value) {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOTSUP)) => {
                tracing::warn!(xattr = ?name, error = %e, "extended attribute not restored");
            }
            Err(e) => return Err(errno_of(&e)),
        }
    }
    Ok(())
}

/// The mode of a device or FIFO just made: opened O_PATH without following (so a swap
/// for a symlink is seen), checked to be that kind of node, and changed through the
/// descriptor's `/proc/self/fd` entry, which names that inode and is not resolved
/// again (fchmod refuses O_PATH descriptors, and opening a device could act on it).
fn chmod_node(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> nix::Result<()> {
    let fd = open_at(dir, name, OFlag::O_PATH | OFlag::O_NOFOLLOW, Mode::empty())?;
    let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
    if !matches!(kind(&st), libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO) {
        return Err(Errno::EEXIST);
    }
    nix::sys::stat::fchmodat(
        None,
        Path::new(&format!("/proc/self/fd/{}", fd.as_raw_fd())),
        Mode::from_bits_truncate(mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
}

/// The property the fuzz harness (`fuzz/`) checks, and its regression seeds with it:
/// `data` (its last byte picks the policy, so that a seed is a real archive with that
/// byte after it) unpacked into a fresh root that has
/// symlinks out (absolute and climbing) and a host file beside it; whatever the archive
/// and whatever the outcome, nothing outside the root changes. Panics if it does.
#[doc(hidden)]
pub fn fuzz_contained(data: &[u8]) {
    static N: AtomicU64 = AtomicU64::new(0);
    let Some((pick, archive)) = data.split_last() else {
        return;
    };
    // On tmpfs where there is one: removing a tree on a disk file system costs tens of
    // milliseconds in journal work, most of a run.
    let base = Path::new("/dev/shm");
    let base = if base.is_dir() {
        base.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let host = base.join(format!(
        "berth-fuzz-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let root_dir = host.join("root");
    std::fs::create_dir_all(root_dir.join("etc")).expect("fuzz root");
    std::fs::write(host.join("secret"), "host").expect("host file");
    std::os::unix::fs::symlink(&host, root_dir.join("abs")).expect("symlink");
    std::os::unix::fs::symlink("../../..", root_dir.join("up")).expect("symlink");
    std::os::unix::fs::symlink(host.join("secret"), root_dir.join("etc/s")).expect("symlink");
    let opts = match pick % 4 {
        0 => Options::layer(),
        1 => Options::container("/etc"),
        2 => Options::host(OsStr::new("top"), vec!["to".into()], "/dest"),
        _ => Options::files(),
    };
    let dest = if pick % 4 == 1 { "/etc" } else { "/" };
    let root = Root::open(&root_dir).expect("open root");
    let _ = unpack(&root, dest, archive, &opts);
    // Closed before the tree is removed: the last close of a removed directory costs
    // milliseconds, which would be most of a run.
    drop(root);
    let mut names: Vec<OsString> = std::fs::read_dir(&host)
        .expect("list host")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    let secret = std::fs::symlink_metadata(host.join("secret")).expect("host file");
    let content = std::fs::read(host.join("secret")).expect("host file");
    let host_fd = Root::open(&host).expect("open host");
    let _ = remove_all_at(host_fd.fd(), OsStr::new("root"));
    drop(host_fd);
    let _ = std::fs::remove_file(host.join("secret"));
    let _ = std::fs::remove_dir(&host);
    assert_eq!(
        names,
        ["root", "secret"],
        "something was made beside the root"
    );
    assert!(secret.is_file(), "the host file was replaced");
    assert_eq!(content, b"host", "the host file was written");
    assert_eq!(
        std::os::unix::fs::MetadataExt::nlink(&secret),
        1,
        "the host file got a hard link"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    /// One entry of a test archive, names written raw so that hostile ones survive.
    enum E<'a> {
        Dir(&'a str),
        File(&'a str, &'a [u8]),
        Mode(&'a str, &'a [u8], u32),
        Sym(&'a str, &'a str),
        Hard(&'a str, &'a str),
        Node(&'a str, tar::EntryType),
        Xattr(&'a str, &'a str, &'a [u8]),
    }

    fn raw_header(kind: tar::EntryType, name: &[u8], size: u64, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_000_000_000);
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h
    }

    fn archive(entries: &[E<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            match e {
                E::Dir(n) => {
                    let mut h = raw_header(tar::EntryType::Directory, n.as_bytes(), 0, 0o755);
                    h.set_cksum();
                    b.append(&h, std::io::empty()).unwrap();
                }
                E::File(n, d) | E::Mode(n, d, _) => {
                    let mode = if let E::Mode(_, _, m) = e { *m } else { 0o644 };
                    let mut h =
                        raw_header(tar::EntryType::Regular, n.as_bytes(), d.len() as u64, mode);
                    h.set_cksum();
                    b.append(&h, *d).unwrap();
                }
                E::Sym(n, t) | E::Hard(n, t) => {
                    let k = if matches!(e, E::Sym(..)) {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    };
                    let mut h = raw_header(k, n.as_bytes(), 0, 0o777);
                    h.as_old_mut().linkname[..t.len()].copy_from_slice(t.as_bytes());
                    h.set_cksum();
                    b.append(&h, std::io::empty()).unwrap();
                }
                E::Node(n, k) => {
                    let mut h = raw_header(*k, n.as_bytes(), 0, 0o666);
                    h.set_device_major(1).unwrap();
                    h.set_device_minor(3).unwrap();
                    h.set_cksum();
                    b.append(&h, std::io::empty()).unwrap();
                }
                E::Xattr(n, key, value) => {
                    b.append_pax_extensions([(format!("{PAX_XATTR}{key}").as_str(), *value)])
                        .unwrap();
                    let mut h = raw_header(tar::EntryType::Regular, n.as_bytes(), 1, 0o644);
                    h.set_cksum();
                    b.append(&h, &b"x"[..]).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    /// A root inside a directory that stands for the host: whatever lands beside the
    /// root is an escape.
    struct Host {
        dir: tempfile::TempDir,
    }

    impl Host {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join("root")).unwrap();
            std::fs::write(dir.path().join("secret"), "host").unwrap();
            Self { dir }
        }
        fn root(&self) -> PathBuf {
            self.dir.path().join("root")
        }
        fn outside(&self) -> PathBuf {
            self.dir.path().to_path_buf()
        }
        fn unpack(&self, data: &[u8], opts: &Options) -> Result<Unpacked> {
            unpack(&Root::open(&self.root()).unwrap(), "/", data, opts)
        }
        /// The host beside the root is as it was.
        fn untouched(&self) {
            let mut names: Vec<String> = std::fs::read_dir(self.outside())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            assert_eq!(names, ["root", "secret"]);
            assert_eq!(
                std::fs::read_to_string(self.outside().join("secret")).unwrap(),
                "host"
            );
            let m = std::fs::metadata(self.outside().join("secret")).unwrap();
            assert_eq!(m.nlink(), 1, "the host file got a hard link");
        }
    }

    fn policies() -> Vec<(&'static str, Options)> {
        vec![
            ("layer", Options::layer()),
            ("container", Options::container("/")),
            ("host", Options::host(OsStr::new("."), Vec::new(), "/dest")),
            ("files", Options::files()),
        ]
    }

    #[test]
    fn hostile_archives_never_leave_the_root_under_any_policy() {
        let h = Host::new();
        let out = h.outside().display().to_string();
        let secret = format!("{out}/secret");
        let attacks: Vec<Vec<u8>> = vec![
            archive(&[E::File("../secret", b"pwned")]),
            archive(&[E::File("../../../../../../secret", b"pwned")]),
            archive(&[E::File("a/../../secret", b"pwned")]),
            archive(&[E::File(&secret, b"pwned")]),
            // A symlink out, then a write through it (absolute and climbing).
            archive(&[E::Sym("l", &out), E::File("l/secret", b"pwned")]),
            archive(&[E::Sym("l", "../../.."), E::File("l/secret", b"pwned")]),
            archive(&[E::Sym("l", &out), E::Dir("l/newdir/")]),
            // A directory replaced by a symlink, then a write below it.
            archive(&[
                E::Dir("d/"),
                E::Sym("d", &out),
                E::File("d/secret", b"pwned"),
            ]),
            // A symlink to the host file, then a file entry of the same name.
            archive(&[E::Sym("s", &secret), E::File("s", b"pwned")]),
            // Hard links to host files.
            archive(&[E::Hard("h", &secret)]),
            archive(&[E::Hard("h", "../secret")]),
            archive(&[E::Sym("l", &out), E::Hard("h", "l/secret")]),
            // A hard link through a link, then writing into the link's name.
            archive(&[
                E::Sym("l", &out),
                E::Hard("h", "l/secret"),
                E::File("h", b"pwned"),
            ]),
        ];
        for (name, opts) in policies() {
            for (i, a) in attacks.iter().enumerate() {
                let _ = h.unpack(a, &opts);
                h.untouched();
                // Nothing made inside may lead out either: every name is a plain file,
                // a directory, or a symlink (text, never followed here).
                let _ = (name, i);
                remove_all_at(Root::open(&h.outside()).unwrap().fd(), OsStr::new("root")).unwrap();
                std::fs::create_dir(h.root()).unwrap();
            }
        }
    }

    #[test]
    fn layer_names_and_links_are_refused_with_a_reason() {
        let h = Host::new();
        let cases: Vec<(Vec<u8>, Refusal)> = vec![
            (archive(&[E::File("../evil", b"x")]), Refusal::DotDot),
            (archive(&[E::File("/evil", b"x")]), Refusal::Absolute),
            (
                archive(&[E::Sym("l", "/"), E::File("l/evil", b"x")]),
                Refusal::ParentNotDir,
            ),
            (
                archive(&[E::Hard("p", "/etc/passwd")]),
                Refusal::HardlinkOutside,
            ),
            (
                archive(&[E::Hard("p", "nothere")]),
                Refusal::HardlinkMissing,
            ),
            (archive(&[E::File(".wh...", b"")]), Refusal::BadWhiteout),
        ];
        for (a, want) in cases {
            match h.unpack(&a, &Options::layer()) {
                Err(Error::Refused { why, .. }) => assert_eq!(why, want),
                other => panic!("{want:?}: {other:?}"),
            }
        }
        h.untouched();
        let e = h
            .unpack(&archive(&[E::File("../evil", b"x")]), &Options::layer())
            .unwrap_err()
            .to_string();
        assert_eq!(e, "archive entry \"../evil\": contains ..");
    }

    #[test]
    fn a_layer_unpacks_with_whiteouts_metadata_and_links() {
        let h = Host::new();
        let r = h.root();
        std::fs::create_dir(r.join("var")).unwrap();
        std::fs::write(r.join("var/old"), "old").unwrap();
        let data = archive(&[
            E::Dir("./"),
            E::Dir("etc/"),
            E::Mode("etc/su", b"bin", 0o4755),
            E::Hard("etc/su2", "etc/su"),
            E::Sym("etc/abs", "/etc/su"),
            E::File("etc/.wh.gone", b""),
            E::File("var/.wh..wh..opq", b""),
            E::File(".wh..wh.plnk", b""),
            E::Node("dev/null", tar::EntryType::Char),
            E::Node("run/fifo", tar::EntryType::Fifo),
            E::Xattr(
                "cap",
                "security.capability",
                b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            ),
            E::Xattr("ovl", "trusted.overlay.redirect", b"/etc"),
            E::Xattr("usr", "user.k", b"v"),
        ]);
        let u = h.unpack(&data, &Options::layer()).unwrap();
        assert_eq!(u.bytes, 6);
        let m = std::fs::metadata(r.join("etc/su")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o4755);
        assert_eq!(m.mtime(), 1_000_000_000);
        assert_eq!(m.ino(), std::fs::metadata(r.join("etc/su2")).unwrap().ino());
        assert_eq!(
            std::fs::read_link(r.join("etc/abs")).unwrap(),
            Path::new("/etc/su")
        );
        let wh = std::fs::symlink_metadata(r.join("etc/gone")).unwrap();
        assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
        assert_eq!(
            xattr::get(r.join("var"), "trusted.overlay.opaque")
                .unwrap()
                .as_deref(),
            Some(&b"y"[..])
        );
        assert!(!r.join("plnk").exists() && !r.join(".wh..wh.plnk").exists());
        assert!(!r.join("dev/null").exists(), "a layer makes no device");
        assert!(std::fs::symlink_metadata(r.join("run/fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        assert!(xattr::get(r.join("cap"), "security.capability")
            .unwrap()
            .is_some());
        assert_eq!(
            xattr::get(r.join("ovl"), "trusted.overlay.redirect").unwrap(),
            None
        );
        assert_eq!(
            xattr::get(r.join("usr"), "user.k").unwrap().as_deref(),
            Some(&b"v"[..])
        );
        let d = std::fs::metadata(r.join("etc")).unwrap();
        assert_eq!((d.mode() & 0o7777, d.mtime()), (0o755, 1_000_000_000));
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(r.join("etc"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".berth")), "{names:?}");
    }

    #[test]
    fn container_copies_follow_links_inside_the_root_only() {
        let h = Host::new();
        let r = h.root();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/passwd"), "root").unwrap();
        std::os::unix::fs::symlink("/etc", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../..", r.join("up")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("etc/abs")).unwrap();
        std::os::unix::fs::symlink("../../../../..", r.join("etc/up")).unwrap();
        let root = Root::open(&r).unwrap();
        let data = archive(&[
            E::File("/leading", b"a"),
            E::File("x/../inner", b"b"),
            E::File("abs/through-abs", b"c"),
            E::File("up/etc/through-up", b"d"),
            E::Hard("h", "/passwd"),
            E::Node("null", tar::EntryType::Char),
        ]);
        unpack(
            &root,
            "/up/abs",
            data.as_slice(),
            &Options::container("/up/abs"),
        )
        .unwrap();
        for (p, want) in [
            ("etc/leading", "a"),
            ("etc/inner", "b"),
            ("etc/through-abs", "c"),
            ("etc/through-up", "d"),
        ] {
            assert_eq!(std::fs::read_to_string(r.join(p)).unwrap(), want, "{p}");
        }
        // A hard link's target is relative to the extraction point, a leading `/` too.
        assert_eq!(
            std::fs::metadata(r.join("etc/h")).unwrap().ino(),
            std::fs::metadata(r.join("etc/passwd")).unwrap().ino()
        );
        assert!(std::fs::symlink_metadata(r.join("etc/null"))
            .unwrap()
            .file_type()
            .is_char_device());
        let climb = archive(&[E::File("a/../../x", b"x")]);
        match unpack(&root, "/etc", climb.as_slice(), &Options::container("/etc")) {
            Err(Error::Refused { why, .. }) => assert_eq!(why, Refusal::ClimbsOut),
            other => panic!("{other:?}"),
        }
        h.untouched();
    }

    #[test]
    fn no_dir_non_dir_speaks_as_dockerd() {
        let h = Host::new();
        let r = h.root();
        std::fs::create_dir_all(r.join("tmp/isdir")).unwrap();
        std::fs::write(r.join("tmp/isfile"), "f").unwrap();
        let root = Root::open(&r).unwrap();
        let mut opts = Options::container("/tmp");
        opts.overwrite = Overwrite::NoDirNonDir;
        let e = unpack(
            &root,
            "/tmp",
            archive(&[E::File("isdir", b"x")]).as_slice(),
            &opts,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"cannot overwrite directory "/tmp/isdir" with non-directory "/tmp""#
        );
        let e = unpack(
            &root,
            "/tmp",
            archive(&[E::Dir("isfile/")]).as_slice(),
            &opts,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"cannot overwrite non-directory "/tmp/isfile" with directory "/tmp""#
        );
        // Without the flag, each replaces the other.
        let opts = Options::container("/tmp");
        unpack(
            &root,
            "/tmp",
            archive(&[E::File("isdir", b"x"), E::Dir("isfile/")]).as_slice(),
            &opts,
        )
        .unwrap();
        assert!(r.join("tmp/isfile").is_dir());
        assert_eq!(std::fs::read_to_string(r.join("tmp/isdir")).unwrap(), "x");
    }

    #[test]
    fn host_copies_rebase_and_never_write_through_links() {
        let h = Host::new();
        let r = h.root();
        let out = h.outside().display().to_string();
        let opts = Options::host(OsStr::new("etc"), vec!["out".into()], "/dest");
        let data = archive(&[
            E::Dir("etc/"),
            E::Mode("etc/suid", b"x", 0o4755),
            E::Dir("etc/sub/"),
            E::Sym("etc/l", &out),
            E::Node("etc/null", tar::EntryType::Char),
            E::Node("etc/fifo", tar::EntryType::Fifo),
        ]);
        h.unpack(&data, &opts).unwrap();
        assert_eq!(
            std::fs::metadata(r.join("out/suid")).unwrap().mode() & 0o7777,
            0o755
        );
        assert!(r.join("out/sub").is_dir());
        assert!(!r.join("out/null").exists() && !r.join("out/fifo").exists());
        for bad in [
            archive(&[E::File("other/x", b"x")]),
            archive(&[E::File("etc/l/secret", b"x")]),
            archive(&[E::File("etc/../x", b"x")]),
        ] {
            assert!(matches!(h.unpack(&bad, &opts), Err(Error::Refused { .. })));
        }
        // A file over the link replaces the link; a directory over it too.
        h.unpack(&archive(&[E::File("etc/l", b"mine")]), &opts)
            .unwrap();
        assert_eq!(std::fs::read_to_string(r.join("out/l")).unwrap(), "mine");
        // A file over a directory is refused, as docker's CLI refuses it.
        let e = h
            .unpack(&archive(&[E::File("etc/sub", b"x")]), &opts)
            .unwrap_err();
        assert!(matches!(e, Error::OverwriteDir { .. }), "{e}");
        // Content forms: `./x` and a top of `.`.
        let content = Options::host(OsStr::new("."), Vec::new(), "/dest");
        h.unpack(
            &archive(&[E::Dir("./"), E::File("./c1", b"1"), E::File("c2", b"2")]),
            &content,
        )
        .unwrap();
        assert!(r.join("c1").is_file() && r.join("c2").is_file());
        let e = h
            .unpack(&archive(&[E::File("./", b"")]), &content)
            .unwrap_err();
        assert!(matches!(
            e,
            Error::Refused {
                why: Refusal::ReplacesDestination,
                ..
            }
        ));
        h.untouched();
    }

    #[test]
    fn a_cut_short_file_leaves_nothing_and_keeps_the_old_one() {
        let h = Host::new();
        let r = h.root();
        std::fs::write(r.join("old"), "old").unwrap();
        for (name, opts) in policies() {
            for entry in ["new", "old"] {
                let mut hd = raw_header(tar::EntryType::Regular, entry.as_bytes(), 4096, 0o644);
                hd.set_cksum();
                let mut data = hd.as_bytes().to_vec();
                data.extend_from_slice(&[b'x'; 1000]);
                let e = h.unpack(&data, &opts).unwrap_err();
                assert!(matches!(e, Error::Tar { .. }), "{name}: {e}");
            }
            let mut left: Vec<String> = std::fs::read_dir(&r)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            left.sort();
            assert_eq!(left, ["old"], "{name}");
            assert_eq!(std::fs::read_to_string(r.join("old")).unwrap(), "old");
        }
    }

    /// A GNU sparse header announcing `real` bytes with one 512-byte block of data at
    /// the end.
    fn sparse(name: &str, real: u64) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::GNUSparse);
        h.set_mode(0o644);
        h.set_size(512);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        let g = h.as_gnu_mut().unwrap();
        // Base-256 (GNU's encoding for numbers octal cannot hold in the field).
        let set = |field: &mut [u8], v: u64| {
            field.fill(0);
            let n = field.len();
            field[n - 8..].copy_from_slice(&v.to_be_bytes());
            field[0] |= 0x80;
        };
        set(&mut g.realsize, real);
        set(&mut g.sparse[0].offset, real - 512);
        set(&mut g.sparse[0].numbytes, 512);
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(&[b'd'; 512]);
        out.extend_from_slice(&[0; 1024]);
        out
    }

    #[test]
    fn a_huge_sparse_header_costs_only_what_is_sent() {
        let h = Host::new();
        for (name, opts) in policies() {
            // 10 GiB once, 1 GiB for the other policies: the same code, less time.
            let real = if name == "layer" {
                10u64 << 30
            } else {
                1 << 30
            };
            let u = h.unpack(&sparse("big", real), &opts).unwrap();
            assert_eq!(u.bytes, real, "{name}");
            let m = std::fs::metadata(h.root().join("big")).unwrap();
            assert_eq!(m.len(), real);
            assert!(
                m.blocks() * 512 < 1 << 20,
                "{name}: {} bytes on disk",
                m.blocks() * 512
            );
            std::fs::remove_file(h.root().join("big")).unwrap();
        }
        let e = h
            .unpack(&sparse("huge", MAX_SPARSE + 1024), &Options::layer())
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Refused {
                    why: Refusal::SparseTooLarge,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn overlong_names_are_refused_without_growing_memory() {
        let h = Host::new();
        // A GNU long name entry of 2 MiB: refused before it is all read.
        let mut lh = tar::Header::new_gnu();
        lh.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        lh.set_entry_type(tar::EntryType::GNULongName);
        lh.set_size(2 << 20);
        lh.set_mode(0o644);
        lh.set_cksum();
        let mut data = lh.as_bytes().to_vec();
        data.extend(std::iter::repeat_n(b'a', 2 << 20));
        data.extend_from_slice(&archive(&[E::File("x", b"x")]));
        let e = h.unpack(&data, &Options::layer()).unwrap_err();
        assert!(e.to_string().contains("bytes of headers"), "{e}");
        // A component longer than a name may be: the kernel's refusal, nothing made.
        let mut b = tar::Builder::new(Vec::new());
        let mut hd = tar::Header::new_gnu();
        hd.set_size(1);
        hd.set_mode(0o644);
        b.append_data(&mut hd, "d/".to_string() + &"n".repeat(300), &b"x"[..])
            .unwrap();
        let e = h
            .unpack(&b.into_inner().unwrap(), &Options::layer())
            .unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ENAMETOOLONG), "{e}");
        h.untouched();
    }

    #[test]
    fn a_read_only_directory_is_filled_then_closed() {
        let h = Host::new();
        let data = {
            let mut b = tar::Builder::new(Vec::new());
            let mut hd = raw_header(tar::EntryType::Directory, b"ro/", 0, 0o555);
            hd.set_cksum();
            b.append(&hd, std::io::empty()).unwrap();
            let mut hd = raw_header(tar::EntryType::Regular, b"ro/f", 1, 0o444);
            hd.set_cksum();
            b.append(&hd, &b"f"[..]).unwrap();
            b.into_inner().unwrap()
        };
        h.unpack(&data, &Options::layer()).unwrap();
        let m = std::fs::metadata(h.root().join("ro")).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o555);
        assert_eq!(std::fs::read_to_string(h.root().join("ro/f")).unwrap(), "f");
    }

    /// The fuzz harness's seeds and the crashes it found, each under every policy (the
    /// last byte picks it).
    #[test]
    fn fuzz_seeds_stay_contained() {
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/untar");
        let mut n = 0;
        for e in std::fs::read_dir(seeds).unwrap() {
            let mut input = std::fs::read(e.unwrap().path()).unwrap();
            for pick in 0..4u8 {
                if let Some(last) = input.last_mut() {
                    *last = pick;
                }
                fuzz_contained(&input);
            }
            n += 1;
        }
        assert!(n > 0);
    }

    #[test]
    fn numeric_fields_read_as_go_reads_them() {
        assert_eq!(numeric(b"\0\0\0\0\0\0\0\0").unwrap(), 0);
        assert_eq!(numeric(b"        ").unwrap(), 0);
        assert_eq!(numeric(b"0000755\0").unwrap(), 0o755);
        assert_eq!(numeric(&[0x80, 0, 0, 0, 0, 0, 1, 0]).unwrap(), 256);
        assert!(numeric(b"12x\0").is_err());
    }
}
