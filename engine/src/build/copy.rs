//! COPY and ADD: their sources found and checksummed as dockerd finds them (wildcards,
//! symlinks followed inside the context, `file:`/`dir:`/`multi:` checksums), and the
//! copy itself, descriptor to descriptor from the source root into the layer being
//! made (written through an overlay of the image, so existing directories keep their
//! owners). Ownership as dockerd gives it: root, or `--chown`'s user and group looked
//! up in the image's own passwd and group files; `COPY --from` without `--chown` keeps
//! the source's owners. `--chmod` sets the mode of everything copied (as BuildKit).

use super::context::{file_hash, Context};
use super::source::{SourceStat, SourceTree};
use berth_fs::root::{kind, list_dir, open_at, remove_all_at};
use berth_fs::tree::Kind;
use berth_fs::Root;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, Mode};
use nix::unistd::{Gid, Uid};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Mutex;

/// One source of a COPY: its path in its root and its checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Path relative to the source root (no leading `/`).
    pub rel: String,
    /// `file:<sum>`, `dir:<sum>`.
    pub hash: String,
}

/// Where sources come from.
pub enum From<'a> {
    /// The build context.
    Context(&'a Context),
    /// An image's (or earlier stage's) file system.
    Image {
        /// Its layers, read-only.
        root: &'a Root,
        /// Its ID (keys the checksum cache).
        id: &'a str,
        /// Checksums already taken, by image ID and path.
        cache: &'a Mutex<HashMap<String, String>>,
    },
}

impl From<'_> {
    /// Every path below `rel` (the whole root for `""`), with whether it is a symlink,
    /// in walk order.
    fn walk(&self, rel: &str) -> Result<Vec<(String, bool)>, String> {
        match self {
            From::Context(c) => {
                let tree = c.tree();
                let dir = tree
                    .resolve(if rel.is_empty() { "." } else { rel }, true)
                    .map_err(|e| format!("{rel}: {}", errno_text(e)))?;
                Ok(tree
                    .walk(dir)
                    .into_iter()
                    .map(|(p, id)| (p, matches!(tree.node(id).kind, Kind::Symlink(_))))
                    .collect())
            }
            From::Image { root, .. } => {
                let mut out = Vec::new();
                walk(root, rel, &mut out, 0)?;
                Ok(out)
            }
        }
    }

    /// The type of what `rel` resolves to (symlinks followed).
    fn kind_of(&self, rel: &str) -> Result<u32, String> {
        match self {
            From::Context(c) => c
                .lookup(rel, true)
                .map(|id| c.stat(&id).kind)
                .map_err(errno_text),
            From::Image { root, .. } => root
                .stat(rel)
                .map(|st| kind(&st))
                .map_err(|e| e.errno().map(errno_text).unwrap_or_else(|| e.to_string())),
        }
    }
}

fn errno_text(e: Errno) -> String {
    match e {
        Errno::ENOENT => "file does not exist".into(),
        e => e.desc().to_lowercase(),
    }
}

/// Whether a source path has wildcards (`*`, `?`, `[`), as Go's `containsWildcards`.
fn has_wildcards(p: &str) -> bool {
    let b = p.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// Go's `filepath.Match` (no `**`): `*` and `?` stop at `/`.
pub fn path_match(pattern: &str, name: &str) -> bool {
    fn rec(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('*') => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != '/')
                .any(|i| rec(&p[1..], &s[i..])),
            Some('?') => s.first().is_some_and(|c| *c != '/') && rec(&p[1..], &s[1..]),
            Some('[') => {
                let Some(c) = s.first() else { return false };
                let mut i = 1;
                let negated = matches!(p.get(1), Some('^'));
                if negated {
                    i += 1;
                }
                let mut hit = false;
                let mut first = true;
                while i < p.len() && (p[i] != ']' || first) {
                    first = false;
                    let mut lo = p[i];
                    if lo == '\\' && i + 1 < p.len() {
                        i += 1;
                        lo = p[i];
                    }
                    let mut hi = lo;
                    if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|c| *c != ']') {
                        hi = p[i + 2];
                        i += 2;
                    }
                    if lo <= *c && *c <= hi {
                        hit = true;
                    }
                    i += 1;
                }
                if i >= p.len() {
                    return false; // unclosed: a bad pattern matches nothing
                }
                hit != negated && *c != '/' && rec(&p[i + 1..], &s[1..])
            }
            Some('\\') if p.len() > 1 => s.first() == Some(&p[1]) && rec(&p[2..], &s[1..]),
            Some(c) => s.first() == Some(c) && rec(&p[1..], &s[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    rec(&p, &s)
}

/// Every path below `dir` (at `at`), with whether it is a symlink, in walk order
/// (lexical, directories before their contents; symlinks are not entered).
fn walk(root: &Root, at: &str, out: &mut Vec<(String, bool)>, depth: usize) -> Result<(), String> {
    if depth > 1024 {
        return Err(format!("{at}: directories nested too deep"));
    }
    let dir = root
        .resolve(
            if at.is_empty() { "." } else { at },
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        )
        .map_err(|e| e.to_string())?;
    let mut names = list_dir(dir.as_fd()).map_err(|e| format!("{at}: {e}"))?;
    names.sort();
    for n in names {
        let rel = if at.is_empty() {
            n.to_string_lossy().into_owned()
        } else {
            format!("{at}/{}", n.to_string_lossy())
        };
        let Ok(st) = fstatat(
            Some(dir.as_raw_fd()),
            n.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) else {
            continue;
        };
        out.push((rel.clone(), kind(&st) == libc::S_IFLNK));
        if kind(&st) == libc::S_IFDIR {
            walk(root, &rel, out, depth + 1)?;
        }
    }
    Ok(())
}

fn hash_of(from: &From<'_>, rel: &str, is_symlink: bool) -> String {
    match from {
        From::Context(c) if is_symlink => c.hash(rel),
        From::Context(c) => c.sum(rel).unwrap_or_else(|| rel.to_string()),
        From::Image { root, .. } => file_hash(root, rel).unwrap_or_else(|_| rel.to_string()),
    }
}

fn hash_strings(prefix: &str, parts: &[String]) -> String {
    format!(
        "{prefix}:{}",
        hex::encode(Sha256::digest(parts.join(",").as_bytes()))
    )
}

/// The checksum standing for several sources (`multi:...`), or the one source's.
pub fn sources_hash(sources: &[Source]) -> String {
    match sources {
        [one] => one.hash.clone(),
        many => hash_strings(
            "multi",
            &many.iter().map(|s| s.hash.clone()).collect::<Vec<_>>(),
        ),
    }
}

/// Finds the sources a COPY/ADD names, with their checksums. Errors are in dockerd's
/// words, without the `COPY failed: ` that the caller puts in front.
pub fn find_sources(from: &From<'_>, names: &[String]) -> Result<Vec<Source>, String> {
    let mut out = Vec::new();
    for orig in names {
        out.extend(find_one(from, orig, true)?);
    }
    if out.is_empty() {
        return Err("no source files were specified".into());
    }
    Ok(out)
}

fn find_one(from: &From<'_>, orig: &str, wildcards: bool) -> Result<Vec<Source>, String> {
    let mut p = orig.strip_prefix('/').unwrap_or(orig);
    p = p.strip_prefix("./").unwrap_or(p);
    let cleaned = berth_fs::clean::clean(if p.is_empty() { "." } else { p });
    if cleaned == ".." || cleaned.starts_with("../") {
        return Err(format!(
            "forbidden path outside the build context: {orig} ()"
        ));
    }
    if wildcards && has_wildcards(p) {
        let all = from.walk("")?;
        let mut out = Vec::new();
        for (rel, _) in all {
            if path_match(p, &rel) {
                out.extend(find_one(from, &rel, false)?);
            }
        }
        return Ok(out);
    }
    let rel = cleaned;
    if let From::Image { id, cache, .. } = from {
        if let Some(h) = cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&format!("{id}{rel}"))
        {
            return Ok(vec![Source {
                rel,
                hash: h.clone(),
            }]);
        }
    }
    let found = match from.kind_of(&rel) {
        Ok(k) => k,
        Err(why) => {
            return Err(match from {
                From::Context(_) => format!(
                    "file not found in build context or excluded by .dockerignore: stat {rel}: {why}"
                ),
                From::Image { .. } => format!("stat {rel}: {why}"),
            });
        }
    };
    let hash = if found == libc::S_IFDIR {
        let mut below = Vec::new();
        walk_from(from, &rel, &mut below)?;
        let mut sums: Vec<String> = below.iter().map(|(r, l)| hash_of(from, r, *l)).collect();
        // The directory's own entry counts, unless it is the root of the context.
        if rel != "." {
            sums.push(hash_of(from, &rel, false));
        }
        sums.sort();
        hash_strings("dir", &sums)
    } else {
        let resolved_symlink = true;
        format!("file:{}", hash_of(from, &rel, resolved_symlink))
    };
    if let From::Image { id, cache, .. } = from {
        cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(format!("{id}{rel}"), hash.clone());
    }
    Ok(vec![Source { rel, hash }])
}

/// The walk below a source directory; the directory itself may be a symlink (followed
/// inside the root), its contents are walked as they are.
fn walk_from(from: &From<'_>, rel: &str, out: &mut Vec<(String, bool)>) -> Result<(), String> {
    let target = match from {
        From::Context(c) => c.resolved_rel(rel).unwrap_or_else(|| rel.to_string()),
        From::Image { .. } => rel.to_string(),
    };
    let start = if target == "." { String::new() } else { target };
    out.extend(from.walk(&start)?);
    Ok(())
}

/// A COPY/ADD destination made absolute against the working directory, keeping a
/// trailing slash (dockerd's `normalizeDest`).
pub fn normalize_dest(workdir: &str, dest: &str) -> String {
    if dest.starts_with('/') {
        return dest.to_string();
    }
    let mut out = berth_fs::clean::clean(&format!("/{workdir}/{dest}"));
    if dest.ends_with('/') && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// `--chown`'s user and group, looked up in `root`'s passwd and group files (a name
/// alone is also the group's name, as dockerd reads it).
pub fn lookup_chown(root: &Root, spec: &str) -> Result<(u32, u32), String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (user, group) = match parts.as_slice() {
        [u] => (*u, *u),
        [u, g] => (*u, *g),
        _ => return Err(format!("invalid chown string format: {spec}")),
    };
    let wrap = |e: String| format!("unable to convert uid/gid chown string to host mapping: {e}");
    let read = |f: &str| -> Result<String, String> {
        match root.read_file(f, 16 << 20) {
            Ok(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
            Ok(None) => Err(format!("open {f}: no such file or directory")),
            Err(e) => Err(e.to_string()),
        }
    };
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => read("/etc/passwd")
            .and_then(|text| {
                text.lines()
                    .map(|l| l.split(':').collect::<Vec<_>>())
                    .find(|f| f.len() > 2 && f[0] == user)
                    .and_then(|f| f[2].parse().ok())
                    .ok_or_else(|| format!("no such user: {user}"))
            })
            .map_err(|e| wrap(format!("can't find uid for user {user}: {e}")))?,
    };
    let gid = match group.parse::<u32>() {
        Ok(n) => n,
        Err(_) => read("/etc/group")
            .and_then(|text| {
                text.lines()
                    .map(|l| l.split(':').collect::<Vec<_>>())
                    .find(|f| f.len() > 2 && f[0] == group)
                    .and_then(|f| f[2].parse().ok())
                    .ok_or_else(|| format!("no such group: {group}"))
            })
            .map_err(|e| wrap(format!("can't find gid for group {group}: {e}")))?,
    };
    Ok((uid, gid))
}

/// How to copy.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Destination, absolute (a trailing `/` means a directory).
    pub dest: String,
    /// Owner for what is copied; `None` keeps the source's (`COPY --from`).
    pub owner: Option<(u32, u32)>,
    /// `--chmod`.
    pub chmod: Option<u32>,
    /// ADD: a local tar archive is unpacked instead of copied.
    pub decompress: bool,
}

fn fail(path: &str) -> impl Fn(Errno) -> String + '_ {
    move |e| format!("{path}: {}", errno_text(e))
}

/// Creates the directory `path` in `root` and its missing parents (mode 0755, owned
/// by `owner`, or root); existing ones are left as they are. Returns it opened.
fn mkdir_owned(root: &Root, path: &str, owner: Option<(u32, u32)>) -> Result<OwnedFd, String> {
    let rel = berth_fs::clean::relative(path);
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    if let Ok(fd) = root.resolve_raw(Path::new(&rel), flags) {
        return Ok(fd);
    }
    let mut fd = root.resolve(".", flags).map_err(|e| e.to_string())?;
    let mut done = String::new();
    for comp in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if !done.is_empty() {
            done.push('/');
        }
        done.push_str(comp);
        match mkdirat(Some(fd.as_raw_fd()), comp, Mode::from_bits_truncate(0o755)) {
            Ok(()) => {
                let (u, g) = owner.unwrap_or((0, 0));
                nix::unistd::fchownat(
                    Some(fd.as_raw_fd()),
                    comp,
                    Some(Uid::from_raw(u)),
                    Some(Gid::from_raw(g)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(fail(&done))?;
            }
            Err(Errno::EEXIST) => {}
            Err(e) => return Err(fail(&done)(e)),
        }
        fd = root
            .resolve_raw(Path::new(&done), flags)
            .map_err(fail(&done))?;
    }
    Ok(fd)
}

/// Whether a file is a tar archive (plain, gzip or zstd), as ADD decides to unpack it.
fn is_archive(content: impl Read) -> bool {
    let Ok((_, plain)) = crate::archive::decompress(content) else {
        return false;
    };
    let mut a = tar::Archive::new(plain);
    let first = a.entries().ok().and_then(|mut e| e.next());
    matches!(first, Some(Ok(_)))
}

struct Copier<'a, T: SourceTree> {
    src: &'a T,
    plan: &'a Plan,
    /// Files with several links already copied: link key → (its directory, name).
    links: HashMap<(u64, u64), (OwnedFd, OsString)>,
}

fn set_meta(
    fd: BorrowedFd<'_>,
    st: &SourceStat,
    owner: Option<(u32, u32)>,
    chmod: Option<u32>,
) -> nix::Result<()> {
    let (u, g) = owner.unwrap_or((st.uid, st.gid));
    nix::unistd::fchown(
        fd.as_raw_fd(),
        Some(Uid::from_raw(u)),
        Some(Gid::from_raw(g)),
    )?;
    let mode = chmod.unwrap_or(st.mode);
    fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode))?;
    nix::sys::stat::futimens(fd.as_raw_fd(), &st.atime, &st.mtime)
}

/// A source's content opened, in the copy's words when it fails.
fn open_source<'s, T: SourceTree>(
    src: &'s T,
    entry: &T::Entry,
    shown: &str,
) -> Result<Box<dyn Read + 's>, String> {
    src.open(entry).map_err(|e| match e {
        Errno::ESTALE => format!("{shown}: changed while being copied"),
        e => fail(shown)(e),
    })
}

impl<T: SourceTree> Copier<'_, T> {
    /// Copies the source entry `entry` (`st`) to `dst_name` in `dst_dir`, replacing
    /// what is there (a directory is merged into a directory).
    fn copy_as(
        &mut self,
        entry: &T::Entry,
        st: &SourceStat,
        dst_dir: BorrowedFd<'_>,
        dst_name: &OsStr,
        shown: &str,
        depth: usize,
    ) -> Result<(), String> {
        if depth > 1024 {
            return Err(format!("{shown}: directories nested too deep"));
        }
        let existing = fstatat(
            Some(dst_dir.as_raw_fd()),
            dst_name,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .ok();
        let is_dir = st.kind == libc::S_IFDIR;
        if let Some(e) = &existing {
            if !(is_dir && kind(e) == libc::S_IFDIR) {
                remove_all_at(dst_dir, dst_name).map_err(fail(shown))?;
            }
        }
        let owner = self.plan.owner;
        match st.kind {
            libc::S_IFDIR => {
                if existing.as_ref().is_none_or(|e| kind(e) != libc::S_IFDIR) {
                    mkdirat(
                        Some(dst_dir.as_raw_fd()),
                        dst_name,
                        Mode::from_bits_truncate(0o700),
                    )
                    .map_err(fail(shown))?;
                }
                let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
                let d = open_at(dst_dir, dst_name, flags, Mode::empty()).map_err(fail(shown))?;
                self.contents(entry, d.as_fd(), shown, depth + 1)?;
                set_meta(d.as_fd(), st, owner, self.plan.chmod).map_err(fail(shown))?;
            }
            libc::S_IFREG => {
                if let Some((dir, first)) = st.link_key.and_then(|k| self.links.get(&k)) {
                    return nix::unistd::linkat(
                        Some(dir.as_raw_fd()),
                        first.as_os_str(),
                        Some(dst_dir.as_raw_fd()),
                        dst_name,
                        AtFlags::empty(),
                    )
                    .map_err(fail(shown));
                }
                self.write_file(entry, st, dst_dir, dst_name, shown)?;
                if let Some(key) = st.link_key {
                    let dir = dst_dir
                        .try_clone_to_owned()
                        .map_err(|e| format!("{shown}: {e}"))?;
                    self.links.insert(key, (dir, dst_name.to_os_string()));
                }
            }
            libc::S_IFLNK => {
                let target = self.src.read_link(entry).map_err(fail(shown))?;
                nix::unistd::symlinkat(target.as_os_str(), Some(dst_dir.as_raw_fd()), dst_name)
                    .map_err(fail(shown))?;
                let (u, g) = owner.unwrap_or((st.uid, st.gid));
                nix::unistd::fchownat(
                    Some(dst_dir.as_raw_fd()),
                    dst_name,
                    Some(Uid::from_raw(u)),
                    Some(Gid::from_raw(g)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(fail(shown))?;
            }
            libc::S_IFIFO => {
                nix::sys::stat::mknodat(
                    Some(dst_dir.as_raw_fd()),
                    dst_name,
                    nix::sys::stat::SFlag::S_IFIFO,
                    Mode::from_bits_truncate(st.mode & 0o777),
                    0,
                )
                .map_err(fail(shown))?;
            }
            // Devices and sockets are not copied into images.
            _ => {}
        }
        Ok(())
    }

    /// Copies the entries of the source directory `dir` into `dst`.
    fn contents(
        &mut self,
        dir: &T::Entry,
        dst: BorrowedFd<'_>,
        at: &str,
        depth: usize,
    ) -> Result<(), String> {
        for (name, entry) in self.src.entries(dir).map_err(fail(at))? {
            let shown = format!("{at}/{}", name.to_string_lossy());
            let st = self.src.stat(&entry);
            self.copy_as(&entry, &st, dst, &name, &shown, depth)?;
        }
        Ok(())
    }

    /// Copies the content of the regular file `file` (what a symlink source points
    /// to) to `name` in `dst_dir`, with `st`'s metadata.
    fn copy_file(
        &mut self,
        file: &T::Entry,
        st: &SourceStat,
        dst_dir: BorrowedFd<'_>,
        name: &OsStr,
        shown: &str,
    ) -> Result<(), String> {
        if fstatat(
            Some(dst_dir.as_raw_fd()),
            name,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .is_ok()
        {
            remove_all_at(dst_dir, name).map_err(fail(shown))?;
        }
        self.write_file(file, st, dst_dir, name, shown)
    }

    /// Creates `name` in `dst_dir` (it must not exist) with the content of the regular
    /// file `file` and `st`'s metadata.
    fn write_file(
        &self,
        file: &T::Entry,
        st: &SourceStat,
        dst_dir: BorrowedFd<'_>,
        name: &OsStr,
        shown: &str,
    ) -> Result<(), String> {
        let mut from = open_source(self.src, file, shown)?;
        let d = open_at(
            dst_dir,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(fail(shown))?;
        let mut to = std::fs::File::from(d.try_clone().map_err(|e| format!("{shown}: {e}"))?);
        std::io::copy(&mut from, &mut to).map_err(|e| format!("{shown}: {e}"))?;
        set_meta(d.as_fd(), st, self.plan.owner, self.plan.chmod).map_err(fail(shown))
    }
}

fn base_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

/// Copies `sources` (paths in `src`) into `dst` as dockerd's `performCopyForInfo`
/// does: a directory's contents into the destination directory; with ADD, a tar
/// unpacked into it; a file to the destination, or into it if it is a directory or ends
/// with `/`.
pub fn copy<T: SourceTree>(
    src: &T,
    sources: &[Source],
    dst: &Root,
    plan: &Plan,
) -> Result<(), String> {
    let mut c = Copier {
        src,
        plan,
        links: HashMap::new(),
    };
    for s in sources {
        // The source itself is followed if it is a symlink (inside its root).
        let followed = src
            .lookup(&s.rel, true)
            .map_err(|e| format!("source path not found: {}: {}", s.rel, errno_text(e)))?;
        let st = src.stat(&followed);
        if st.kind == libc::S_IFDIR {
            let dest_existed = dst.is_dir(&plan.dest).unwrap_or(false);
            let d = mkdir_owned(dst, &plan.dest, plan.owner.or(Some((0, 0))))?;
            c.contents(&followed, d.as_fd(), &plan.dest, 0)?;
            // The destination takes the directory's mode and times; its owner only if
            // the copy made it.
            let mut meta = st;
            if dest_existed {
                if let Ok(cur) = fstat(d.as_raw_fd()) {
                    meta.uid = cur.st_uid;
                    meta.gid = cur.st_gid;
                }
            }
            let owner = if dest_existed {
                Some((meta.uid, meta.gid))
            } else {
                plan.owner
            };
            set_meta(d.as_fd(), &meta, owner, plan.chmod).map_err(fail(&plan.dest))?;
            continue;
        }
        if plan.decompress
            && st.kind == libc::S_IFREG
            && is_archive(open_source(src, &followed, &s.rel)?)
        {
            mkdir_owned(dst, &plan.dest, Some((0, 0)))?;
            let view = crate::containers::archive::RootView::new(
                dst.resolve(".", OFlag::O_PATH | OFlag::O_DIRECTORY)
                    .map_err(|e| e.to_string())?,
                None,
            );
            let (_, plain) = crate::archive::decompress(open_source(src, &followed, &s.rel)?)
                .map_err(|e| format!("{}: {e}", s.rel))?;
            crate::containers::archive::untar_into(
                &view,
                &plan.dest,
                "",
                plain,
                Default::default(),
            )
            .map_err(|e| e.to_string())?;
            continue;
        }
        // Cleaned as dockerd's `filepath.Join` onto the root cleans it, so that the last
        // component is a name, never `..`: `/missing/sub/..` is the file `/missing`, not
        // the parent of a directory just made, stat'ed and removed with plain `*at` calls.
        let mut dest = berth_fs::clean::clean(&format!("/{}", plan.dest));
        if plan.dest.ends_with('/') && dest != "/" {
            dest.push('/');
        }
        if dest.ends_with('/') || dst.is_dir(&dest).unwrap_or(false) {
            dest = format!("{}/{}", dest.trim_end_matches('/'), base_name(&s.rel));
        }
        let (parent, name) = match dest.trim_end_matches('/').rsplit_once('/') {
            Some((p, n)) => (if p.is_empty() { "/" } else { p }, n),
            None => ("/", dest.as_str()),
        };
        let d = mkdir_owned(dst, parent, plan.owner.or(Some((0, 0))))?;
        // The source entry itself, its last component not followed.
        let entry = src
            .lookup(&s.rel, false)
            .map_err(|_| format!("source path not found: {}", s.rel))?;
        let sst = src.stat(&entry);
        if sst.kind == libc::S_IFLNK {
            // A symlink named as a source: what it points to is copied, under its name.
            c.copy_file(&followed, &st, d.as_fd(), OsStr::new(name), &dest)?;
        } else {
            c.copy_as(&entry, &sst, d.as_fd(), OsStr::new(name), &dest, 0)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_go() {
        assert!(path_match("*.txt", "a.txt"));
        assert!(!path_match("*.txt", "d/a.txt"));
        assert!(path_match("d/*.txt", "d/a.txt"));
        assert!(path_match("file?", "file1"));
        assert!(path_match("[ab]x", "bx"));
        assert!(!path_match("[^ab]x", "bx"));
        assert!(path_match("\\*", "*"));
        assert!(has_wildcards("a*"));
        assert!(!has_wildcards("a\\*"));
    }

    #[test]
    fn dest_normalization() {
        assert_eq!(normalize_dest("/app", "x"), "/app/x");
        assert_eq!(normalize_dest("/app", "x/"), "/app/x/");
        assert_eq!(normalize_dest("", "."), "/");
        assert_eq!(normalize_dest("/app", "/abs/"), "/abs/");
        assert_eq!(normalize_dest("/app", "../y"), "/y");
    }

    #[test]
    fn chown_lookup() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nstaff:x:50:\napp:x:1001:\n",
        )
        .unwrap();
        let root = Root::open(d.path()).unwrap();
        assert_eq!(lookup_chown(&root, "app").unwrap(), (1000, 1001));
        assert_eq!(lookup_chown(&root, "app:staff").unwrap(), (1000, 50));
        assert_eq!(lookup_chown(&root, "7:8").unwrap(), (7, 8));
        assert_eq!(
            lookup_chown(&root, "ghost").unwrap_err(),
            "unable to convert uid/gid chown string to host mapping: can't find uid for user ghost: no such user: ghost"
        );
        assert!(lookup_chown(&root, "a:b:c")
            .unwrap_err()
            .contains("invalid chown string format"));
    }

    #[test]
    fn copies_files_dirs_and_symlinks_inside() {
        let src = tempfile::tempdir().unwrap();
        let s = src.path();
        std::fs::create_dir_all(s.join("dir/sub")).unwrap();
        std::fs::write(s.join("dir/sub/f"), "f").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", s.join("dir/link")).unwrap();
        std::fs::write(s.join("file"), "x").unwrap();
        std::os::unix::fs::symlink("file", s.join("alias")).unwrap();
        let dst = tempfile::tempdir().unwrap();
        let (sr, dr) = (Root::open(s).unwrap(), Root::open(dst.path()).unwrap());
        let src_of = |rel: &str| Source {
            rel: rel.into(),
            hash: String::new(),
        };
        let plan = |dest: &str| Plan {
            dest: dest.into(),
            owner: Some((0, 0)),
            ..Default::default()
        };
        copy(&sr, &[src_of("dir")], &dr, &plan("/app/dir")).unwrap();
        assert_eq!(
            std::fs::read_to_string(dst.path().join("app/dir/sub/f")).unwrap(),
            "f"
        );
        assert_eq!(
            std::fs::read_link(dst.path().join("app/dir/link")).unwrap(),
            Path::new("/etc/passwd")
        );
        copy(&sr, &[src_of("file")], &dr, &plan("/app/")).unwrap();
        assert_eq!(
            std::fs::read_to_string(dst.path().join("app/file")).unwrap(),
            "x"
        );
        copy(&sr, &[src_of("alias")], &dr, &plan("/app/")).unwrap();
        let m = std::fs::symlink_metadata(dst.path().join("app/alias")).unwrap();
        assert!(
            m.is_file(),
            "a symlink source copies its target, under its own name"
        );
        copy(&sr, &[src_of("file")], &dr, &plan("/renamed")).unwrap();
        assert_eq!(
            std::fs::read_to_string(dst.path().join("renamed")).unwrap(),
            "x"
        );
    }

    #[test]
    fn copies_from_the_context_index_with_its_headers() {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |kind: tar::EntryType, path: &str, data: &[u8], mode: u32, link: &str| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            h.set_mode(mode);
            h.set_uid(1000);
            h.set_gid(1001);
            h.set_mtime(1_600_000_000);
            h.set_path(path).unwrap();
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            h.set_cksum();
            b.append(&h, data).unwrap();
        };
        add(tar::EntryType::Directory, "dir", b"", 0o750, "");
        add(tar::EntryType::Regular, "dir/a.txt", b"aaa", 0o640, "");
        add(tar::EntryType::Link, "dir/b.txt", b"", 0o640, "dir/a.txt");
        add(tar::EntryType::Symlink, "dir/up", b"", 0o777, "/etc/passwd");
        add(tar::EntryType::Regular, "top.txt", b"top", 0o600, "");
        add(tar::EntryType::Symlink, "alias", b"", 0o777, "top.txt");
        let data = b.into_inner().unwrap();
        let ctx = super::super::context::from_tar(&data);
        let from = From::Context(&ctx);
        let found = find_sources(&from, &["dir".into(), "*.txt".into()]).unwrap();
        let rels: Vec<&str> = found.iter().map(|s| s.rel.as_str()).collect();
        assert_eq!(rels, ["dir", "top.txt"]);
        assert!(found[0].hash.starts_with("dir:") && found[1].hash.starts_with("file:"));
        assert_eq!(
            find_sources(&from, &["nope".into()]).unwrap_err(),
            "file not found in build context or excluded by .dockerignore: stat nope: file does not exist"
        );
        let dst = tempfile::tempdir().unwrap();
        let dr = Root::open(dst.path()).unwrap();
        let keep = Plan {
            dest: "/app/".into(),
            owner: None,
            ..Default::default()
        };
        copy(&ctx, &found, &dr, &keep).unwrap();
        let app = dst.path().join("app");
        assert_eq!(std::fs::read(app.join("a.txt")).unwrap(), b"aaa");
        assert_eq!(std::fs::read(app.join("top.txt")).unwrap(), b"top");
        use std::os::unix::fs::MetadataExt;
        let a = std::fs::symlink_metadata(app.join("a.txt")).unwrap();
        let b = std::fs::symlink_metadata(app.join("b.txt")).unwrap();
        assert_eq!(a.ino(), b.ino(), "hard links stay linked");
        assert_eq!((a.mode() & 0o7777, a.uid(), a.gid()), (0o640, 1000, 1001));
        assert_eq!(a.mtime(), 1_600_000_000);
        assert_eq!(
            std::fs::read_link(app.join("up")).unwrap(),
            Path::new("/etc/passwd")
        );
        // The destination directory takes the source directory's mode.
        let m = std::fs::metadata(&app).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o750);
        // A symlink source copies what it points to, under its own name, as root.
        let root_owned = Plan {
            dest: "/x/".into(),
            owner: Some((0, 0)),
            ..Default::default()
        };
        let alias = find_sources(&from, &["alias".into()]).unwrap();
        assert_eq!(
            alias[0].hash, found[1].hash,
            "a symlink's checksum is its target's"
        );
        copy(&ctx, &alias, &dr, &root_owned).unwrap();
        let m = std::fs::symlink_metadata(dst.path().join("x/alias")).unwrap();
        assert!(m.is_file());
        assert_eq!((m.uid(), m.mode() & 0o7777), (0, 0o600));
        assert_eq!(std::fs::read(dst.path().join("x/alias")).unwrap(), b"top");
    }

    #[test]
    fn a_destination_is_cleaned_as_dockerd_cleans_it() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "f", &b"hi"[..]).unwrap();
        let ctx = super::super::context::from_tar(&b.into_inner().unwrap());
        let found = find_sources(&From::Context(&ctx), &["f".into()]).unwrap();
        // dest, where the file lands (dockerd: `filepath.Join(root, dest)`, cleaned).
        for (dest, lands) in [
            ("/missing/sub/..", "missing"),
            ("/a/b/../c/..", "a"),
            ("/missing/../..", "f"),
            ("/..", "f"),
        ] {
            let host = tempfile::tempdir().unwrap();
            let root = host.path().join("root");
            std::fs::create_dir(&root).unwrap();
            let plan = Plan {
                dest: dest.into(),
                owner: Some((0, 0)),
                ..Default::default()
            };
            copy(&ctx, &found, &Root::open(&root).unwrap(), &plan)
                .unwrap_or_else(|e| panic!("COPY f {dest}: {e}"));
            assert_eq!(std::fs::read(root.join(lands)).unwrap(), b"hi", "{dest}");
        }
    }
}
