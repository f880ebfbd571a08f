//! The build context: the tar the client sends, unpacked into a private temporary
//! directory as it arrives (never held in memory whole), with each entry's checksum
//! taken on the way as dockerd takes it (tarsum v1: the header's name, mode, owner,
//! size, type, link and extended attributes, then the content; not the times), which
//! is what COPY and ADD put in their cache keys and history (`COPY file:<sum> in /x`).
//!
//! Entries are created through the context's [`Root`] only: each parent resolved inside
//! the context with openat2, each entry made relative to its parent's descriptor with
//! `O_EXCL | O_NOFOLLOW`. An entry named with `..` or an absolute path is refused; a
//! symlink may point anywhere but is never followed while unpacking, and later reads
//! through it resolve inside the context. `.dockerignore` is applied after the
//! Dockerfile has been read, so a Dockerfile it names is still found (as dockerd).

use super::error::{BuildError, Result};
use berth_fs::ignore::Patterns;
use berth_fs::root::{kind, list_dir, open_at, remove_all_at};
use berth_fs::Root;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, Mode};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The longest Dockerfile read (a real one is a few kB).
const MAX_DOCKERFILE: u64 = 4 << 20;

/// A context unpacked on disk.
pub struct Context {
    dir: tempfile::TempDir,
    root: Root,
    /// Cleaned relative path → tarsum of its entry (the first entry of that name).
    sums: HashMap<String, String>,
    /// Bytes of file content received.
    pub size: u64,
    /// Entries received.
    pub entries: u64,
}

fn bad(e: impl std::fmt::Display) -> BuildError {
    BuildError::Context(format!("error reading the build context: {e}"))
}

/// The relative path a tar entry names, `.` for the context itself; `..` and absolute
/// names are refused.
fn entry_path(raw: &[u8]) -> Result<String> {
    let text = String::from_utf8_lossy(raw);
    if text.starts_with('/') {
        return Err(BuildError::Context(format!(
            "build context entry {text:?} is an absolute path: refusing to unpack it"
        )));
    }
    if text.split('/').any(|c| c == "..") {
        return Err(BuildError::Context(format!(
            "build context entry {text:?} climbs out of the context (contains \"..\"): refusing to unpack it"
        )));
    }
    Ok(berth_fs::clean::clean(&text))
}

/// Go's `path.Join(".", path.Join("/", name))` on a raw entry name: what tarsum keys a
/// file by.
fn sum_key(raw: &[u8]) -> String {
    let cleaned = berth_fs::clean::clean(&format!("/{}", String::from_utf8_lossy(raw)));
    match cleaned.trim_start_matches('/') {
        "" => ".".into(),
        rest => rest.to_string(),
    }
}

/// tarsum v1's header part for one entry.
struct EntryHeader {
    raw_name: Vec<u8>,
    mode: u64,
    uid: u64,
    gid: u64,
    size: u64,
    typeflag: u8,
    link: Vec<u8>,
    devmajor: u64,
    devminor: u64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    mtime: i64,
}

impl EntryHeader {
    fn read<R: Read>(e: &mut tar::Entry<'_, R>) -> std::io::Result<Self> {
        let h = e.header();
        let mut typeflag = h.entry_type().as_byte();
        if typeflag == 0 {
            typeflag = b'0';
        }
        let mut out = Self {
            raw_name: e.path_bytes().into_owned(),
            mode: h.mode().unwrap_or(0) as u64,
            uid: h.uid().unwrap_or(0),
            gid: h.gid().unwrap_or(0),
            size: e.size(),
            typeflag,
            link: e
                .link_name_bytes()
                .map(|l| l.into_owned())
                .unwrap_or_default(),
            devmajor: h.device_major().ok().flatten().unwrap_or(0) as u64,
            devminor: h.device_minor().ok().flatten().unwrap_or(0) as u64,
            xattrs: Vec::new(),
            mtime: h.mtime().unwrap_or(0) as i64,
        };
        if let Some(pax) = e.pax_extensions()? {
            for ext in pax.flatten() {
                let key = ext.key_bytes();
                if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    out.xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
                    continue;
                }
                let value = String::from_utf8_lossy(ext.value_bytes()).into_owned();
                match key {
                    b"uid" => out.uid = value.parse().unwrap_or(out.uid),
                    b"gid" => out.gid = value.parse().unwrap_or(out.gid),
                    b"mtime" => {
                        let secs = value.split('.').next().unwrap_or("0");
                        out.mtime = secs.parse().unwrap_or(out.mtime);
                    }
                    _ => {}
                }
            }
        }
        out.xattrs.sort();
        Ok(out)
    }

    fn hasher(&self) -> Sha256 {
        let mut h = Sha256::new();
        let mut field = |k: &str, v: &[u8]| {
            h.update(k.as_bytes());
            h.update(v);
        };
        field("name", &self.raw_name);
        field("mode", self.mode.to_string().as_bytes());
        field("uid", self.uid.to_string().as_bytes());
        field("gid", self.gid.to_string().as_bytes());
        field("size", self.size.to_string().as_bytes());
        field("typeflag", &[self.typeflag]);
        field("linkname", &self.link);
        field("uname", b"");
        field("gname", b"");
        field("devmajor", self.devmajor.to_string().as_bytes());
        field("devminor", self.devminor.to_string().as_bytes());
        for (k, v) in &self.xattrs {
            h.update(k);
            h.update(v);
        }
        h
    }
}

/// Writes to a file and to a hash at once.
struct HashingWriter<'a, W> {
    inner: W,
    hasher: &'a mut Sha256,
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn set_owner_mode_times(fd: BorrowedFd<'_>, h: &EntryHeader) -> nix::Result<()> {
    nix::unistd::fchown(
        fd.as_raw_fd(),
        Some(Uid::from_raw(h.uid as u32)),
        Some(Gid::from_raw(h.gid as u32)),
    )?;
    fchmod(
        fd.as_raw_fd(),
        Mode::from_bits_truncate((h.mode & 0o7777) as u32),
    )?;
    let t = TimeSpec::new(h.mtime, 0);
    nix::sys::stat::futimens(fd.as_raw_fd(), &t, &t)
}

fn split_parent(rel: &str) -> (&str, &str) {
    match rel.rfind('/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (".", rel),
    }
}

impl Context {
    /// Unpacks a context tar (plain, gzip or zstd) from `reader` into a new private
    /// directory under `parent`. Blocking: run it off the async workers.
    pub fn receive<R: Read>(reader: R, parent: &Path) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("build-context-")
            .tempdir_in(parent)
            .map_err(|e| BuildError::Internal(format!("creating the context directory: {e}")))?;
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .map_err(|e| BuildError::Internal(format!("creating the context directory: {e}")))?;
        let root = Root::open(dir.path())
            .map_err(|e| BuildError::Internal(format!("opening the context: {e}")))?;
        let mut ctx = Self {
            dir,
            root,
            sums: HashMap::new(),
            size: 0,
            entries: 0,
        };
        let (_, plain) = crate::archive::decompress(reader).map_err(bad)?;
        let mut archive = tar::Archive::new(plain);
        let mut dir_times: Vec<(String, i64)> = Vec::new();
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            ctx.unpack_entry(&mut entry, &mut dir_times)?;
        }
        // Directory times last: creating their children changed them.
        for (rel, mtime) in dir_times.into_iter().rev() {
            if let Ok(fd) = ctx.root.resolve(
                &rel,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
            ) {
                let t = TimeSpec::new(mtime, 0);
                let _ = nix::sys::stat::futimens(fd.as_raw_fd(), &t, &t);
            }
        }
        Ok(ctx)
    }

    fn unpack_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        dir_times: &mut Vec<(String, i64)>,
    ) -> Result<()> {
        use tar::EntryType as T;
        let et = entry.header().entry_type();
        if !matches!(
            et,
            T::Regular | T::Continuous | T::Directory | T::Symlink | T::Link | T::Fifo
        ) {
            if matches!(et, T::Char | T::Block) {
                tracing::debug!("device node in a build context skipped");
            }
            return Ok(());
        }
        let h = EntryHeader::read(entry).map_err(bad)?;
        let rel = entry_path(&h.raw_name)?;
        let key = sum_key(&h.raw_name);
        let mut hasher = h.hasher();
        self.entries += 1;
        if rel == "." {
            // The context directory itself: its entry only counts for its checksum.
            io_drain(entry, &mut hasher)?;
            self.sums
                .entry(key)
                .or_insert_with(|| hex::encode(hasher.finalize()));
            return Ok(());
        }
        let shown = rel.clone();
        let fail = |e: Errno| {
            BuildError::Context(format!("unpacking {shown} from the build context: {e}"))
        };
        let (parent_rel, name) = split_parent(&rel);
        let parent = self.root.mkdir_all(parent_rel, 0o755).map_err(|e| {
            BuildError::Context(format!("unpacking {rel} from the build context: {e}"))
        })?;
        let name = OsStr::new(name);
        // Something already there is replaced (a directory only by a non-directory).
        match fstatat(Some(parent.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if kind(&st) == libc::S_IFDIR && et == T::Directory => {}
            Ok(_) => remove_all_at(parent.as_fd(), name).map_err(fail)?,
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(fail(e)),
        }
        match et {
            T::Directory => {
                match mkdirat(
                    Some(parent.as_raw_fd()),
                    name,
                    Mode::from_bits_truncate(0o700),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(fail(e)),
                }
                let fd = open_at(
                    parent.as_fd(),
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
                    Mode::empty(),
                )
                .map_err(fail)?;
                set_owner_mode_times(fd.as_fd(), &h).map_err(fail)?;
                dir_times.push((rel.clone(), h.mtime));
                io_drain(entry, &mut hasher)?;
            }
            T::Regular | T::Continuous => {
                let fd = open_at(
                    parent.as_fd(),
                    name,
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(fail)?;
                let file = std::fs::File::from(fd.try_clone().map_err(|e| fail(errno(&e)))?);
                let mut w = HashingWriter {
                    inner: std::io::BufWriter::with_capacity(256 * 1024, file),
                    hasher: &mut hasher,
                };
                let n = std::io::copy(entry, &mut w).map_err(bad)?;
                w.flush().map_err(|e| fail(errno(&e)))?;
                drop(w);
                self.size += n;
                set_owner_mode_times(fd.as_fd(), &h).map_err(fail)?;
            }
            T::Symlink => {
                let target = OsStr::from_bytes(&h.link);
                nix::unistd::symlinkat(target, Some(parent.as_raw_fd()), name).map_err(fail)?;
                let _ = nix::unistd::fchownat(
                    Some(parent.as_raw_fd()),
                    name,
                    Some(Uid::from_raw(h.uid as u32)),
                    Some(Gid::from_raw(h.gid as u32)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                );
                io_drain(entry, &mut hasher)?;
            }
            T::Link => {
                let target = entry_path(&h.link)?;
                if target == "." {
                    return Err(BuildError::Context(format!(
                        "build context entry {rel:?} links to the context itself"
                    )));
                }
                let (tp, tn) = split_parent(&target);
                let tdir = self
                    .root
                    .resolve(tp, OFlag::O_PATH | OFlag::O_DIRECTORY)
                    .map_err(|e| {
                        BuildError::Context(format!(
                            "unpacking {rel} from the build context: link target {target}: {e}"
                        ))
                    })?;
                nix::unistd::linkat(
                    Some(tdir.as_raw_fd()),
                    OsStr::new(tn),
                    Some(parent.as_raw_fd()),
                    name,
                    AtFlags::empty(),
                )
                .map_err(fail)?;
                io_drain(entry, &mut hasher)?;
            }
            _ => {
                nix::sys::stat::mknodat(
                    Some(parent.as_raw_fd()),
                    name,
                    nix::sys::stat::SFlag::S_IFIFO,
                    Mode::from_bits_truncate((h.mode & 0o777) as u32),
                    0,
                )
                .map_err(fail)?;
                io_drain(entry, &mut hasher)?;
            }
        }
        self.sums
            .entry(key)
            .or_insert_with(|| hex::encode(hasher.finalize()));
        Ok(())
    }

    /// The context's root: every path of a COPY source is resolved inside it.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// Where it is on the host (for mounting it nowhere: only for reading through
    /// [`Context::root`] and for removal).
    pub fn host_path(&self) -> &Path {
        self.dir.path()
    }

    /// Reads the Dockerfile named `name` (dockerd's fallback: `dockerfile` when the
    /// default `Dockerfile` is missing). Returns the name found and the text.
    pub fn dockerfile(&self, name: &str) -> Result<(String, String)> {
        let read = |n: &str| match self.root.read_file(n, MAX_DOCKERFILE) {
            Ok(v) => Ok(v),
            Err(berth_fs::Error::TooLarge { .. }) => Err(BuildError::NoDockerfile(format!(
                "the Dockerfile ({n}) is larger than {MAX_DOCKERFILE} bytes"
            ))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(berth_fs::Error::WrongKind { .. }) => Ok(None),
            Err(e) => Err(BuildError::NoDockerfile(format!("reading {n}: {e}"))),
        };
        let mut found = read(name)?.map(|t| (name.to_string(), t));
        if found.is_none() && name == "Dockerfile" {
            found = read("dockerfile")?.map(|t| ("dockerfile".to_string(), t));
        }
        let Some((used, bytes)) = found else {
            return Err(BuildError::NoDockerfile(format!(
                "Cannot locate specified Dockerfile: {name}"
            )));
        };
        if bytes.is_empty() {
            return Err(BuildError::NoDockerfile(format!(
                "the Dockerfile ({used}) cannot be empty"
            )));
        }
        Ok((used, String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Applies the context's `.dockerignore`, if it has one: what it names is removed
    /// (the `.dockerignore` and the Dockerfile too, if it names them). Returns the
    /// patterns.
    pub fn apply_dockerignore(&mut self) -> Result<Patterns> {
        let text = match self.root.read_file(".dockerignore", MAX_DOCKERFILE) {
            Ok(Some(t)) => String::from_utf8_lossy(&t).into_owned(),
            Ok(None) | Err(berth_fs::Error::WrongKind { .. }) => return Ok(Patterns::default()),
            Err(e) => return Err(BuildError::Context(format!("reading .dockerignore: {e}"))),
        };
        let patterns = Patterns::parse(&text)
            .map_err(|e| BuildError::Context(format!("Error reading .dockerignore: {e}")))?;
        if patterns.is_empty() {
            return Ok(patterns);
        }
        let top = self
            .root
            .resolve(".", OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .map_err(|e| BuildError::Internal(format!("reading the context: {e}")))?;
        prune(top.as_fd(), "", &patterns, 0)?;
        Ok(patterns)
    }

    /// The cache checksum of a context path, as dockerd's context `Hash` gives it: the
    /// tarsum of the entry the path resolves to (a symlink's target), else the path.
    pub fn hash(&self, rel: &str) -> String {
        let resolved = self
            .resolved_rel(rel)
            .unwrap_or_else(|| sum_key(rel.as_bytes()));
        self.sums
            .get(&resolved)
            .cloned()
            .unwrap_or_else(|| rel.to_string())
    }

    /// The checksum of the entry at exactly `rel` (nothing followed), if it had one.
    pub fn sum(&self, rel: &str) -> Option<String> {
        self.sums.get(&sum_key(rel.as_bytes())).cloned()
    }

    /// The path (relative to the context) that `rel` resolves to inside it, symlinks
    /// followed.
    pub fn resolved_rel(&self, rel: &str) -> Option<String> {
        let fd = self.root.resolve(rel, OFlag::O_PATH).ok()?;
        let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
        let rest = target.strip_prefix(self.dir.path()).ok()?;
        let s = rest.to_string_lossy().into_owned();
        Some(if s.is_empty() { ".".into() } else { s })
    }
}

fn errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

fn io_drain<R: Read>(entry: &mut R, hasher: &mut Sha256) -> Result<()> {
    let mut w = HashingWriter {
        inner: std::io::sink(),
        hasher,
    };
    std::io::copy(entry, &mut w).map_err(bad)?;
    Ok(())
}

/// Deepest directory nesting walked when applying `.dockerignore`.
const MAX_DEPTH: usize = 512;

/// Removes what the patterns name below the directory `dir` (at `at`, relative).
fn prune(dir: BorrowedFd<'_>, at: &str, patterns: &Patterns, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(BuildError::Context(format!(
            "build context nested deeper than {MAX_DEPTH} directories at {at}"
        )));
    }
    let fail = |e: Errno| BuildError::Internal(format!("applying .dockerignore at {at:?}: {e}"));
    let mut names: Vec<OsString> = list_dir(dir).map_err(fail)?;
    names.sort();
    for name in names {
        let rel = if at.is_empty() {
            name.to_string_lossy().into_owned()
        } else {
            format!("{at}/{}", name.to_string_lossy())
        };
        let st = match fstatat(
            Some(dir.as_raw_fd()),
            name.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => st,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(fail(e)),
        };
        let is_dir = kind(&st) == libc::S_IFDIR;
        if patterns.matches(&rel) && (!is_dir || !patterns.may_include_below(&rel)) {
            remove_all_at(dir, &name).map_err(fail)?;
            continue;
        }
        if is_dir {
            let sub: OwnedFd = open_at(
                dir,
                &name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )
            .map_err(fail)?;
            prune(sub.as_fd(), &rel, patterns, depth + 1)?;
        }
    }
    Ok(())
}

/// A file's or directory's checksum in a root that is not a context (`COPY --from`):
/// the same shape as tarsum, from the file's metadata and content.
pub fn file_hash(root: &Root, rel: &str) -> std::io::Result<String> {
    let fd = root
        .resolve(rel, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)
        .or_else(|_| root.resolve(rel, OFlag::O_PATH))
        .map_err(|e| {
            std::io::Error::from_raw_os_error(e.errno().map(|e| e as i32).unwrap_or(libc::EIO))
        })?;
    let st = fstat(fd.as_raw_fd()).map_err(std::io::Error::from)?;
    let typeflag = match kind(&st) {
        libc::S_IFDIR => b'5',
        libc::S_IFLNK => b'2',
        libc::S_IFIFO => b'6',
        _ => b'0',
    };
    let h = EntryHeader {
        raw_name: rel.as_bytes().to_vec(),
        mode: (st.st_mode & 0o7777) as u64,
        uid: st.st_uid as u64,
        gid: st.st_gid as u64,
        size: if typeflag == b'0' {
            st.st_size as u64
        } else {
            0
        },
        typeflag,
        link: Vec::new(),
        devmajor: 0,
        devminor: 0,
        xattrs: Vec::new(),
        mtime: 0,
    };
    let mut hasher = h.hasher();
    if typeflag == b'0' {
        let mut f = std::fs::File::from(fd);
        let mut w = HashingWriter {
            inner: std::io::sink(),
            hasher: &mut hasher,
        };
        std::io::copy(&mut f, &mut w)?;
    }
    Ok(hex::encode(hasher.finalize()))
}

/// For tests and callers that build a context from a directory's tar in memory.
#[cfg(test)]
pub fn from_tar(data: &[u8]) -> Context {
    let parent = std::env::temp_dir();
    Context::receive(data, &parent).expect("context")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data, mode) in entries {
            let mut h = tar::Header::new_ustar();
            if name.ends_with('/') {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
            } else {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
            }
            h.set_mode(*mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            let raw = name.as_bytes();
            h.as_old_mut().name[..raw.len()].copy_from_slice(raw);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn sums_match_dockerd() {
        // Values dockerd 20.10 printed in history for these files.
        let ctx = from_tar(&tar_of(&[
            ("a.txt", b"hello\n", 0o644),
            ("sub/", b"", 0o755),
            ("sub/b.txt", b"x\n", 0o644),
        ]));
        assert_eq!(
            ctx.hash("a.txt"),
            "00ec16333078d287782d462baefc8bb9eb0231dc3aefba3ca3e2f7e5cf0cadda"
        );
        let mut sub = [ctx.hash("sub"), ctx.hash("sub/b.txt")];
        sub.sort();
        let dir = hex::encode(Sha256::digest(sub.join(",").as_bytes()));
        assert_eq!(
            dir,
            "292dc2bc698a0753ce0c1a1b15f525c9f03783472b6a9bc04c2bb06bc55782fa"
        );
        assert_eq!(
            std::fs::read(ctx.host_path().join("a.txt")).unwrap(),
            b"hello\n"
        );
    }

    #[test]
    fn dotdot_and_absolute_names_are_refused() {
        for name in ["../evil", "a/../../evil", "/abs"] {
            let data = tar_of(&[(name, b"x", 0o644)]);
            let err = Context::receive(&data[..], &std::env::temp_dir())
                .err()
                .unwrap_or_else(|| panic!("{name} accepted"));
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn symlinks_are_not_followed_while_unpacking() {
        let outside = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_path("link").unwrap();
        h.set_link_name(outside.path()).unwrap();
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(1);
        h.set_mode(0o644);
        h.set_path("link/evil").unwrap();
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let data = b.into_inner().unwrap();
        let ctx = Context::receive(&data[..], &std::env::temp_dir());
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
        // Resolved inside the context: the link names the context's own path.
        if let Ok(ctx) = ctx {
            assert!(ctx
                .host_path()
                .join(outside.path().strip_prefix("/").unwrap())
                .join("evil")
                .exists());
        }
    }

    #[test]
    fn dockerignore_and_dockerfile() {
        let mut ctx = from_tar(&tar_of(&[
            ("Dockerfile", b"FROM x\n", 0o644),
            (
                ".dockerignore",
                b"*.log\nDockerfile\ndocs\n!docs/keep\n",
                0o644,
            ),
            ("a.log", b"x", 0o644),
            ("keep", b"y", 0o644),
            ("docs/", b"", 0o755),
            ("docs/keep", b"k", 0o644),
            ("docs/drop", b"d", 0o644),
        ]));
        let (name, text) = ctx.dockerfile("Dockerfile").unwrap();
        assert_eq!((name.as_str(), text.as_str()), ("Dockerfile", "FROM x\n"));
        ctx.apply_dockerignore().unwrap();
        let p = ctx.host_path();
        assert!(!p.join("a.log").exists());
        assert!(!p.join("Dockerfile").exists());
        assert!(p.join("keep").exists());
        assert!(p.join("docs/keep").exists());
        assert!(!p.join("docs/drop").exists());
        assert!(p.join(".dockerignore").exists());
        let e = ctx.dockerfile("nope").unwrap_err().to_string();
        assert_eq!(e, "Cannot locate specified Dockerfile: nope");
    }

    #[test]
    fn lowercase_dockerfile_and_empty() {
        let ctx = from_tar(&tar_of(&[("dockerfile", b"FROM y\n", 0o644)]));
        assert_eq!(ctx.dockerfile("Dockerfile").unwrap().0, "dockerfile");
        let ctx = from_tar(&tar_of(&[("Dockerfile", b"", 0o644)]));
        assert_eq!(
            ctx.dockerfile("Dockerfile").unwrap_err().to_string(),
            "the Dockerfile (Dockerfile) cannot be empty"
        );
    }

    #[test]
    fn symlink_hash_is_its_targets() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(2);
        h.set_mode(0o644);
        h.set_path("real").unwrap();
        h.set_cksum();
        b.append(&h, &b"ab"[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_path("ln").unwrap();
        h.set_link_name("real").unwrap();
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
        let ctx = from_tar(&b.into_inner().unwrap());
        assert_eq!(ctx.hash("ln"), ctx.hash("real"));
        assert_eq!(ctx.hash("missing/dir"), "missing/dir");
    }
}
