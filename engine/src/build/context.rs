//! The build context: the tar the client sends, indexed as it arrives and never
//! unpacked. Regular files' contents go, one after another, into a spool file (an
//! unnamed temporary file, gone with the process even on `kill -9`); the names, kinds,
//! owners, modes and times go into an in-memory [`Tree`], which COPY and ADD look
//! sources up in and copy from. A rebuild whose steps all hit the cache writes one
//! sequential file and creates no file per entry; a COPY that misses writes each file
//! once, into its layer.
//!
//! Each entry's checksum is taken on the way as dockerd takes it (tarsum v1: the
//! header's name, mode, owner, size, type, link and extended attributes, then the
//! content; not the times), which is what COPY and ADD put in their cache keys and
//! history (`COPY file:<sum> in /x`).
//!
//! The tree is built as an unpacker would build the directory: an entry named with
//! `..` or an absolute path is refused; parents are made as needed, followed (inside
//! the tree) if they are symlinks; a later entry replaces an earlier one of the same
//! name (a directory over a directory keeps its entries). Lookups follow the kernel's
//! `RESOLVE_IN_ROOT` rules ([`berth_fs::tree`]), and a tree names no host file, so no
//! symlink of a context can reach outside it. `.dockerignore` is applied after the
//! Dockerfile has been read, so a Dockerfile it names is still found (as dockerd).

use super::error::{BuildError, Result};
use berth_fs::ignore::Patterns;
use berth_fs::root::kind;
use berth_fs::tree::{Kind, Meta, NodeId, Tree, ROOT};
use berth_fs::Root;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::fstat;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The longest Dockerfile read (a real one is a few kB).
const MAX_DOCKERFILE: u64 = 4 << 20;

/// The longest name of one entry of a directory (the kernel's `NAME_MAX`): an unpacked
/// context could hold none longer.
const NAME_MAX: usize = 255;

/// The longest path (the kernel's `PATH_MAX`, less its NUL): no entry of a context is
/// kept at, named by or linked to a longer one, which also bounds how deep the tree
/// nests (each level costs at least two bytes).
const PATH_MAX: usize = 4095;

/// Whether a relative path or link target is longer than the kernel would take.
fn too_long(path: &str) -> bool {
    path.len() > PATH_MAX || path.split('/').any(|c| c.len() > NAME_MAX)
}

/// A context received and indexed.
pub struct Context {
    /// Every regular file's content, at the offsets its tree node names.
    spool: File,
    tree: Tree,
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

fn split_parent(rel: &str) -> (&str, &str) {
    match rel.rfind('/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (".", rel),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A regular file's content in the spool, read without moving any shared offset (the
/// copies of several sources may read at once).
pub struct ContentReader<'a> {
    spool: &'a File,
    pos: u64,
    end: u64,
}

impl Read for ContentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf.len().min((self.end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.spool.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the build context's spool ends early",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Context {
    /// Receives a context tar (plain, gzip or zstd) from `reader`, its contents spooled
    /// into an unnamed file under `parent`. Blocking: run it off the async workers.
    pub fn receive<R: Read>(reader: R, parent: &Path) -> Result<Self> {
        let spool = tempfile::tempfile_in(parent)
            .map_err(|e| BuildError::Internal(format!("creating the context spool: {e}")))?;
        let now = now();
        let mut root_meta = Meta::implicit_dir(now);
        // The context's own directory, as an unpacker's private directory would be.
        root_meta.mode = 0o700;
        let mut receiver = Receiver {
            spool: std::io::BufWriter::with_capacity(256 * 1024, spool),
            written: 0,
            now,
            ctx_tree: Tree::new(root_meta),
            sums: HashMap::new(),
            size: 0,
            entries: 0,
        };
        let (_, plain) = crate::archive::decompress(reader).map_err(bad)?;
        let mut archive = tar::Archive::new(plain);
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            receiver.entry(&mut entry)?;
        }
        let spool = receiver
            .spool
            .into_inner()
            .map_err(|e| BuildError::Internal(format!("writing the context spool: {e}")))?;
        Ok(Self {
            spool,
            tree: receiver.ctx_tree,
            sums: receiver.sums,
            size: receiver.size,
            entries: receiver.entries,
        })
    }

    /// The context's tree: what COPY and ADD look their sources up in.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The content of the regular file `id` (empty for any other kind).
    pub fn content(&self, id: NodeId) -> ContentReader<'_> {
        let (offset, len) = match self.tree.node(id).kind {
            Kind::File { offset, len } => (offset, len),
            _ => (0, 0),
        };
        ContentReader {
            spool: &self.spool,
            pos: offset,
            end: offset + len,
        }
    }

    /// The whole content of the file `rel` (symlinks followed), if it is a regular file
    /// of at most `limit` bytes; `None` if there is no such file. `what` names it in the
    /// error of a larger one.
    fn read_file(
        &self,
        rel: &str,
        limit: u64,
        what: &str,
    ) -> std::result::Result<Option<Vec<u8>>, String> {
        let id = match self.tree.resolve(rel, true) {
            Ok(id) => id,
            Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(None),
            Err(e) => return Err(format!("reading {rel}: {}", e.desc())),
        };
        let Kind::File { len, .. } = self.tree.node(id).kind else {
            return Ok(None);
        };
        if len > limit {
            return Err(format!("{what} is larger than {limit} bytes"));
        }
        let mut out = Vec::with_capacity(len as usize);
        self.content(id)
            .read_to_end(&mut out)
            .map_err(|e| format!("reading {rel}: {e}"))?;
        Ok(Some(out))
    }

    /// Reads the Dockerfile named `name` (dockerd's fallback: `dockerfile` when the
    /// default `Dockerfile` is missing). Returns the name found and the text.
    pub fn dockerfile(&self, name: &str) -> Result<(String, String)> {
        let read = |n: &str| {
            self.read_file(n, MAX_DOCKERFILE, &format!("the Dockerfile ({n})"))
                .map_err(BuildError::NoDockerfile)
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

    /// Applies the context's `.dockerignore`, if it has one: what it names is taken out
    /// of the tree (the `.dockerignore` and the Dockerfile too, if it names them).
    /// Returns the patterns.
    pub fn apply_dockerignore(&mut self) -> Result<Patterns> {
        let text = match self.read_file(".dockerignore", MAX_DOCKERFILE, ".dockerignore") {
            Ok(Some(t)) => String::from_utf8_lossy(&t).into_owned(),
            Ok(None) => return Ok(Patterns::default()),
            Err(e) => return Err(BuildError::Context(e)),
        };
        let patterns = Patterns::parse(&text)
            .map_err(|e| BuildError::Context(format!("Error reading .dockerignore: {e}")))?;
        if patterns.is_empty() {
            return Ok(patterns);
        }
        prune(&mut self.tree, ROOT, "", &patterns, 0)?;
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
        self.tree
            .resolve(rel, true)
            .ok()
            .map(|id| self.tree.path(id))
    }
}

/// The context as it is being received.
struct Receiver {
    spool: std::io::BufWriter<File>,
    /// Bytes written to the spool so far: the next file's offset.
    written: u64,
    /// When the receipt began: the time of directories no entry named.
    now: i64,
    ctx_tree: Tree,
    sums: HashMap<String, String>,
    size: u64,
    entries: u64,
}

impl Receiver {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
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
        let fail = |e: Errno| {
            BuildError::Context(format!(
                "unpacking {rel} from the build context: {}",
                e.desc()
            ))
        };
        if too_long(&rel) || (et == T::Symlink && h.link.len() > PATH_MAX) {
            return Err(fail(Errno::ENAMETOOLONG));
        }
        let (parent_rel, name) = split_parent(&rel);
        let parent = self
            .ctx_tree
            .mkdir_all(parent_rel, Meta::implicit_dir(self.now))
            .map_err(fail)?;
        // Where it lands (below symlinked parents) must be a path the kernel takes too.
        if parent != ROOT && self.ctx_tree.path(parent).len() + 1 + name.len() > PATH_MAX {
            return Err(fail(Errno::ENAMETOOLONG));
        }
        let meta = Meta {
            mode: (h.mode & 0o7777) as u32,
            uid: h.uid as u32,
            gid: h.gid as u32,
            mtime: h.mtime,
        };
        let tree = &mut self.ctx_tree;
        match et {
            T::Directory => {
                tree.insert(parent, name, Kind::Dir, meta);
                io_drain(entry, &mut hasher)?;
            }
            T::Regular | T::Continuous => {
                let offset = self.written;
                let mut w = HashingWriter {
                    inner: &mut self.spool,
                    hasher: &mut hasher,
                };
                let len = std::io::copy(entry, &mut w).map_err(bad)?;
                self.written += len;
                self.size += len;
                tree.insert(parent, name, Kind::File { offset, len }, meta);
            }
            T::Symlink => {
                tree.insert(parent, name, Kind::Symlink(h.link.clone()), meta);
                io_drain(entry, &mut hasher)?;
            }
            T::Link => {
                let target = entry_path(&h.link)?;
                if too_long(&target) {
                    return Err(fail(Errno::ENAMETOOLONG));
                }
                if target == "." {
                    return Err(BuildError::Context(format!(
                        "build context entry {rel:?} links to the context itself"
                    )));
                }
                let (tp, tn) = split_parent(&target);
                let found = tree
                    .resolve(tp, true)
                    .and_then(|dir| tree.child(dir, tn).ok_or(Errno::ENOENT))
                    .map_err(|e| {
                        BuildError::Context(format!(
                            "unpacking {rel} from the build context: link target {target}: {}",
                            e.desc()
                        ))
                    })?;
                tree.hard_link(found, parent, name).map_err(fail)?;
                io_drain(entry, &mut hasher)?;
            }
            _ => {
                let fifo = Meta {
                    mode: meta.mode & 0o777,
                    ..meta
                };
                tree.insert(parent, name, Kind::Fifo, fifo);
                io_drain(entry, &mut hasher)?;
            }
        }
        self.sums
            .entry(key)
            .or_insert_with(|| hex::encode(hasher.finalize()));
        Ok(())
    }
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

/// Takes what the patterns name out of the directory `dir` (at `at`, relative).
fn prune(tree: &mut Tree, dir: NodeId, at: &str, patterns: &Patterns, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(BuildError::Context(format!(
            "build context nested deeper than {MAX_DEPTH} directories at {at}"
        )));
    }
    let entries: Vec<(String, NodeId)> = tree
        .children(dir)
        .map(|(n, id)| (n.to_string(), id))
        .collect();
    for (name, id) in entries {
        let rel = if at.is_empty() {
            name.clone()
        } else {
            format!("{at}/{name}")
        };
        let is_dir = tree.node(id).kind == Kind::Dir;
        if patterns.matches(&rel) && (!is_dir || !patterns.may_include_below(&rel)) {
            tree.remove(dir, &name);
            continue;
        }
        if is_dir {
            prune(tree, id, &rel, patterns, depth + 1)?;
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

    fn special(kind: tar::EntryType, path: &str, link: &str) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_path(path).unwrap();
        if !link.is_empty() {
            h.set_link_name(link).unwrap();
        }
        h.set_cksum();
        h
    }

    /// Appends a regular file to `b`.
    fn regular(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_path(path).unwrap();
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn content(ctx: &Context, rel: &str) -> Vec<u8> {
        let id = ctx.tree().resolve(rel, true).unwrap();
        let mut out = Vec::new();
        ctx.content(id).read_to_end(&mut out).unwrap();
        out
    }

    fn exists(ctx: &Context, rel: &str) -> bool {
        ctx.tree().resolve(rel, false).is_ok()
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
        assert_eq!(content(&ctx, "a.txt"), b"hello\n");
        assert_eq!(content(&ctx, "sub/b.txt"), b"x\n");
        assert_eq!((ctx.entries, ctx.size), (3, 8));
        let sub = ctx.tree().resolve("sub", true).unwrap();
        assert_eq!(ctx.tree().node(sub).meta.mode, 0o755);
        assert_eq!(ctx.tree().node(sub).meta.mtime, 1_700_000_000);
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
    fn entries_below_a_symlink_stay_inside_the_context() {
        let outside = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let h = special(
            tar::EntryType::Symlink,
            "link",
            outside.path().to_str().unwrap(),
        );
        b.append(&h, std::io::empty()).unwrap();
        regular(&mut b, "link/evil", b"x", 0o644);
        let data = b.into_inner().unwrap();
        // The link names a directory of the context that does not exist: as an
        // unpacker inside a root, the entry below it fails; the host is not touched.
        let err = Context::receive(&data[..], &std::env::temp_dir())
            .err()
            .expect("an entry below a dangling symlink accepted");
        assert_eq!(
            err.to_string(),
            "unpacking link/evil from the build context: No such file or directory"
        );
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
        // A symlink to a directory of the context is followed inside it.
        let mut b = tar::Builder::new(Vec::new());
        b.append(
            &special(tar::EntryType::Directory, "real", ""),
            std::io::empty(),
        )
        .unwrap();
        b.append(
            &special(tar::EntryType::Symlink, "ln", "/../real"),
            std::io::empty(),
        )
        .unwrap();
        regular(&mut b, "ln/f", b"y", 0o644);
        let ctx = from_tar(&b.into_inner().unwrap());
        assert_eq!(content(&ctx, "real/f"), b"y");
        assert_eq!(ctx.resolved_rel("ln/f").as_deref(), Some("real/f"));
    }

    #[test]
    fn hard_links_share_their_content_and_refuse_the_context() {
        let mut b = tar::Builder::new(Vec::new());
        regular(&mut b, "a", b"abc", 0o640);
        b.append(&special(tar::EntryType::Link, "b", "a"), std::io::empty())
            .unwrap();
        let data = b.into_inner().unwrap();
        let ctx = from_tar(&data);
        assert_eq!(content(&ctx, "b"), b"abc");
        let (a, b_) = (
            ctx.tree().resolve("a", false).unwrap(),
            ctx.tree().resolve("b", false).unwrap(),
        );
        assert_eq!(ctx.tree().node(b_).meta.mode, 0o640);
        assert!(ctx.tree().node(a).link_group.is_some());
        assert_eq!(
            ctx.tree().node(a).link_group,
            ctx.tree().node(b_).link_group
        );
        for (name, target, words) in [
            ("x", ".", "links to the context itself"),
            (
                "y",
                "missing",
                "link target missing: No such file or directory",
            ),
        ] {
            let mut b = tar::Builder::new(Vec::new());
            b.append(
                &special(tar::EntryType::Link, name, target),
                std::io::empty(),
            )
            .unwrap();
            let err = Context::receive(&b.into_inner().unwrap()[..], &std::env::temp_dir())
                .err()
                .expect("a bad hard link accepted");
            assert!(err.to_string().contains(words), "{err}");
        }
    }

    /// Appends an entry of any name length (GNU long names, as the docker CLI sends).
    fn long(
        b: &mut tar::Builder<Vec<u8>>,
        kind: tar::EntryType,
        path: &str,
        link: &str,
        data: &[u8],
    ) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        if kind == tar::EntryType::Symlink {
            b.append_link(&mut h, path, link).unwrap();
        } else {
            b.append_data(&mut h, path, data).unwrap();
        }
    }

    #[test]
    fn names_longer_than_the_kernel_takes_are_refused() {
        use tar::EntryType as T;
        let refused = |b: tar::Builder<Vec<u8>>| {
            let data = b.into_inner().unwrap();
            Context::receive(&data[..], &std::env::temp_dir())
                .err()
                .expect("an over-long name accepted")
                .to_string()
        };
        // A path nested deeper than PATH_MAX allows.
        let mut b = tar::Builder::new(Vec::new());
        long(
            &mut b,
            T::Regular,
            &(vec!["d"; 3000].join("/") + "/f"),
            "",
            b"x",
        );
        let err = refused(b);
        assert!(err.ends_with("File name too long"), "{err}");
        // One component longer than NAME_MAX.
        let mut b = tar::Builder::new(Vec::new());
        long(&mut b, T::Regular, &"n".repeat(256), "", b"x");
        assert!(refused(b).ends_with("File name too long"));
        // A symlink target longer than PATH_MAX.
        let mut b = tar::Builder::new(Vec::new());
        long(&mut b, T::Symlink, "s", &"t/".repeat(2048), b"");
        assert!(refused(b).ends_with("File name too long"));
        // Short names that land, below a symlink, deeper than PATH_MAX.
        let half = vec!["d"; 1500].join("/");
        let mut b = tar::Builder::new(Vec::new());
        long(&mut b, T::Directory, &half, "", b"");
        long(&mut b, T::Symlink, "s", &half, b"");
        long(&mut b, T::Regular, &format!("s/{half}/f"), "", b"x");
        assert!(refused(b).ends_with("File name too long"));
        // The longest a kernel takes is still taken.
        let longest = vec!["d"; 2047].join("/") + "/f";
        let mut b = tar::Builder::new(Vec::new());
        long(&mut b, T::Regular, &longest, "", b"x");
        long(&mut b, T::Regular, &"n".repeat(255), "", b"y");
        let ctx = from_tar(&b.into_inner().unwrap());
        assert_eq!(content(&ctx, &longest), b"x");
        assert_eq!(content(&ctx, &"n".repeat(255)), b"y");
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
        assert!(!exists(&ctx, "a.log"));
        assert!(!exists(&ctx, "Dockerfile"));
        assert!(exists(&ctx, "keep"));
        assert!(exists(&ctx, "docs/keep"));
        assert!(!exists(&ctx, "docs/drop"));
        assert!(exists(&ctx, ".dockerignore"));
        let e = ctx.dockerfile("nope").unwrap_err().to_string();
        assert_eq!(e, "Cannot locate specified Dockerfile: nope");
    }

    #[test]
    fn lowercase_dockerfile_empty_and_too_large() {
        let ctx = from_tar(&tar_of(&[("dockerfile", b"FROM y\n", 0o644)]));
        assert_eq!(ctx.dockerfile("Dockerfile").unwrap().0, "dockerfile");
        let ctx = from_tar(&tar_of(&[("Dockerfile", b"", 0o644)]));
        assert_eq!(
            ctx.dockerfile("Dockerfile").unwrap_err().to_string(),
            "the Dockerfile (Dockerfile) cannot be empty"
        );
        let big = vec![b'#'; (MAX_DOCKERFILE + 1) as usize];
        let ctx = from_tar(&tar_of(&[("Dockerfile", &big, 0o644)]));
        assert!(ctx
            .dockerfile("Dockerfile")
            .unwrap_err()
            .to_string()
            .contains("is larger than"));
        // A directory by the Dockerfile's name is no Dockerfile.
        let ctx = from_tar(&tar_of(&[("Dockerfile/", b"", 0o755)]));
        assert_eq!(
            ctx.dockerfile("Dockerfile").unwrap_err().to_string(),
            "Cannot locate specified Dockerfile: Dockerfile"
        );
    }

    #[test]
    fn symlink_hash_is_its_targets() {
        let mut b = tar::Builder::new(Vec::new());
        regular(&mut b, "real", b"ab", 0o644);
        b.append(
            &special(tar::EntryType::Symlink, "ln", "real"),
            std::io::empty(),
        )
        .unwrap();
        let ctx = from_tar(&b.into_inner().unwrap());
        assert_eq!(ctx.hash("ln"), ctx.hash("real"));
        assert_eq!(ctx.hash("missing/dir"), "missing/dir");
    }
}
