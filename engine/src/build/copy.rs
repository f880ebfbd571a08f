//! COPY and ADD: their sources found and checksummed as dockerd finds them (wildcards,
//! symlinks followed inside the context, `file:`/`dir:`/`multi:` checksums), and the
//! copy itself, descriptor to descriptor from the source root into the layer being
//! made (written through an overlay of the image, so existing directories keep their
//! owners). Ownership as dockerd gives it: root, or `--chown`'s user and group looked
//! up in the image's own passwd and group files; `COPY --from` without `--chown` keeps
//! the source's owners. `--chmod` sets the mode of everything copied (as BuildKit).

use super::context::{file_hash, Context};
use berth_fs::root::{kind, list_dir, open_at, remove_all_at};
use berth_fs::Root;
use nix::errno::Errno;
use nix::fcntl::{readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
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
    fn root(&self) -> &Root {
        match self {
            From::Context(c) => c.root(),
            From::Image { root, .. } => root,
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
        let mut all = Vec::new();
        walk(from.root(), "", &mut all, 0)?;
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
    let st = match from.root().stat(&rel) {
        Ok(st) => st,
        Err(e) => {
            let why = e.errno().map(errno_text).unwrap_or_else(|| e.to_string());
            return Err(match from {
                From::Context(_) => format!(
                    "file not found in build context or excluded by .dockerignore: stat {rel}: {why}"
                ),
                From::Image { .. } => format!("stat {rel}: {why}"),
            });
        }
    };
    let hash = if kind(&st) == libc::S_IFDIR {
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
    walk(from.root(), &start, out, 0)
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
fn is_archive(fd: BorrowedFd<'_>) -> bool {
    let Ok(f) = fd.try_clone_to_owned().map(std::fs::File::from) else {
        return false;
    };
    let Ok((_, plain)) = crate::archive::decompress(f) else {
        return false;
    };
    let mut a = tar::Archive::new(plain);
    let first = a.entries().ok().and_then(|mut e| e.next());
    matches!(first, Some(Ok(_)))
}

struct Copier<'a> {
    plan: &'a Plan,
    /// Files with several links already copied: (dev, inode) → (its directory, name).
    links: HashMap<(u64, u64), (OwnedFd, OsString)>,
}

fn set_meta(
    fd: BorrowedFd<'_>,
    st: &FileStat,
    owner: Option<(u32, u32)>,
    chmod: Option<u32>,
) -> nix::Result<()> {
    let (u, g) = owner.unwrap_or((st.st_uid, st.st_gid));
    nix::unistd::fchown(
        fd.as_raw_fd(),
        Some(Uid::from_raw(u)),
        Some(Gid::from_raw(g)),
    )?;
    let mode = chmod.unwrap_or(st.st_mode & 0o7777);
    fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode))?;
    let at = TimeSpec::new(st.st_atime, st.st_atime_nsec);
    let mt = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
    nix::sys::stat::futimens(fd.as_raw_fd(), &at, &mt)
}

impl Copier<'_> {
    /// Copies the entry `name` of `src_dir` to `name` in `dst_dir`, replacing what is
    /// there (a directory is merged into a directory).
    fn entry(
        &mut self,
        src_dir: BorrowedFd<'_>,
        name: &OsStr,
        dst_dir: BorrowedFd<'_>,
        dst_name: &OsStr,
        shown: &str,
        depth: usize,
    ) -> Result<(), String> {
        if depth > 1024 {
            return Err(format!("{shown}: directories nested too deep"));
        }
        let st = fstatat(
            Some(src_dir.as_raw_fd()),
            name,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(fail(shown))?;
        self.copy_as(src_dir, name, &st, dst_dir, dst_name, shown, depth)
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_as(
        &mut self,
        src_dir: BorrowedFd<'_>,
        name: &OsStr,
        st: &FileStat,
        dst_dir: BorrowedFd<'_>,
        dst_name: &OsStr,
        shown: &str,
        depth: usize,
    ) -> Result<(), String> {
        let existing = fstatat(
            Some(dst_dir.as_raw_fd()),
            dst_name,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .ok();
        let is_dir = kind(st) == libc::S_IFDIR;
        if let Some(e) = &existing {
            if !(is_dir && kind(e) == libc::S_IFDIR) {
                remove_all_at(dst_dir, dst_name).map_err(fail(shown))?;
            }
        }
        let owner = self.plan.owner;
        match kind(st) {
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
                let s = open_at(src_dir, name, flags, Mode::empty()).map_err(fail(shown))?;
                let d = open_at(dst_dir, dst_name, flags, Mode::empty()).map_err(fail(shown))?;
                self.contents(s.as_fd(), d.as_fd(), shown, depth + 1)?;
                set_meta(d.as_fd(), st, owner, self.plan.chmod).map_err(fail(shown))?;
            }
            libc::S_IFREG => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some((dir, first)) = self.links.get(&key) {
                        return nix::unistd::linkat(
                            Some(dir.as_raw_fd()),
                            first.as_os_str(),
                            Some(dst_dir.as_raw_fd()),
                            dst_name,
                            AtFlags::empty(),
                        )
                        .map_err(fail(shown));
                    }
                }
                let s = open_at(
                    src_dir,
                    name,
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
                    Mode::empty(),
                )
                .map_err(fail(shown))?;
                if fstat(s.as_raw_fd())
                    .map(|n| kind(&n))
                    .map_err(fail(shown))?
                    != libc::S_IFREG
                {
                    return Err(format!("{shown}: changed while being copied"));
                }
                let d = open_at(
                    dst_dir,
                    dst_name,
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(fail(shown))?;
                let mut from = std::fs::File::from(s);
                let mut to =
                    std::fs::File::from(d.try_clone().map_err(|e| format!("{shown}: {e}"))?);
                std::io::copy(&mut from, &mut to).map_err(|e| format!("{shown}: {e}"))?;
                set_meta(d.as_fd(), st, owner, self.plan.chmod).map_err(fail(shown))?;
                if st.st_nlink > 1 {
                    let dir = dst_dir
                        .try_clone_to_owned()
                        .map_err(|e| format!("{shown}: {e}"))?;
                    self.links.insert(key, (dir, dst_name.to_os_string()));
                }
            }
            libc::S_IFLNK => {
                let target = readlinkat(Some(src_dir.as_raw_fd()), name).map_err(fail(shown))?;
                nix::unistd::symlinkat(target.as_os_str(), Some(dst_dir.as_raw_fd()), dst_name)
                    .map_err(fail(shown))?;
                let (u, g) = owner.unwrap_or((st.st_uid, st.st_gid));
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
                    Mode::from_bits_truncate(st.st_mode & 0o777),
                    0,
                )
                .map_err(fail(shown))?;
            }
            // Devices and sockets are not copied into images.
            _ => {}
        }
        Ok(())
    }

    fn contents(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        at: &str,
        depth: usize,
    ) -> Result<(), String> {
        let mut names = list_dir(src).map_err(fail(at))?;
        names.sort();
        for n in names {
            let shown = format!("{at}/{}", n.to_string_lossy());
            self.entry(src, &n, dst, &n, &shown, depth)?;
        }
        Ok(())
    }
}

fn base_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

/// Copies `sources` (paths in `src`) into `dst` as dockerd's `performCopyForInfo`
/// does: a directory's contents into the destination directory; with ADD, a tar
/// unpacked into it; a file to the destination, or into it if it is a directory or ends
/// with `/`.
pub fn copy(src: &Root, sources: &[Source], dst: &Root, plan: &Plan) -> Result<(), String> {
    let mut c = Copier {
        plan,
        links: HashMap::new(),
    };
    for s in sources {
        // The source itself is followed if it is a symlink (inside its root).
        let src_fd = src
            .resolve(&s.rel, OFlag::O_PATH)
            .map_err(|e| format!("source path not found: {e}"))?;
        let st = fstat(src_fd.as_raw_fd()).map_err(fail(&s.rel))?;
        // Parent and name of the resolved source, for the *at calls.
        let src_parent = src
            .resolve(&format!("{}/..", s.rel), OFlag::O_PATH | OFlag::O_DIRECTORY)
            .ok();
        if kind(&st) == libc::S_IFDIR {
            let dest_existed = dst.is_dir(&plan.dest).unwrap_or(false);
            let d = mkdir_owned(dst, &plan.dest, plan.owner.or(Some((0, 0))))?;
            let s_dir = src
                .resolve(&s.rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .map_err(|e| e.to_string())?;
            c.contents(s_dir.as_fd(), d.as_fd(), &plan.dest, 0)?;
            // The destination takes the directory's mode and times; its owner only if
            // the copy made it.
            let mut meta = st;
            if dest_existed {
                if let Ok(cur) = fstat(d.as_raw_fd()) {
                    meta.st_uid = cur.st_uid;
                    meta.st_gid = cur.st_gid;
                }
            }
            let owner = if dest_existed {
                Some((meta.st_uid, meta.st_gid))
            } else {
                plan.owner
            };
            set_meta(d.as_fd(), &meta, owner, plan.chmod).map_err(fail(&plan.dest))?;
            continue;
        }
        let file_fd = src
            .resolve(
                &s.rel,
                OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
            )
            .map_err(|e| e.to_string())?;
        let archive = plan.decompress && kind(&st) == libc::S_IFREG && is_archive(file_fd.as_fd());
        // The sniffing read through a duplicate, which shares the file offset.
        nix::unistd::lseek(file_fd.as_raw_fd(), 0, nix::unistd::Whence::SeekSet)
            .map_err(fail(&s.rel))?;
        if archive {
            mkdir_owned(dst, &plan.dest, Some((0, 0)))?;
            let view = crate::containers::archive::RootView::new(
                dst.resolve(".", OFlag::O_PATH | OFlag::O_DIRECTORY)
                    .map_err(|e| e.to_string())?,
                None,
            );
            let (_, plain) = crate::archive::decompress(std::fs::File::from(file_fd))
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
        let mut dest = plan.dest.clone();
        if dest.ends_with('/') || dst.is_dir(&dest).unwrap_or(false) {
            dest = format!("{}/{}", dest.trim_end_matches('/'), base_name(&s.rel));
        }
        let (parent, name) = match dest.trim_end_matches('/').rsplit_once('/') {
            Some((p, n)) => (if p.is_empty() { "/" } else { p }, n),
            None => ("/", dest.as_str()),
        };
        let d = mkdir_owned(dst, parent, plan.owner.or(Some((0, 0))))?;
        // The source entry, not followed again: its parent and final name.
        let (sp, sn) = match (&src_parent, src_entry_name(src, &s.rel)) {
            (Some(p), Some(n)) => (p.as_fd(), n),
            _ => return Err(format!("source path not found: {}", s.rel)),
        };
        let sst = fstatat(
            Some(sp.as_raw_fd()),
            sn.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(fail(&s.rel))?;
        if kind(&sst) == libc::S_IFLNK {
            // A symlink named as a source: what it points to is copied, under its name.
            c.copy_file_fd(file_fd.as_fd(), &st, d.as_fd(), OsStr::new(name), &dest)?;
        } else {
            c.copy_as(sp, &sn, &sst, d.as_fd(), OsStr::new(name), &dest, 0)?;
        }
    }
    Ok(())
}

/// The last component of where `rel` resolves inside `root` (symlinks on the way
/// followed, the last one not).
fn src_entry_name(_root: &Root, rel: &str) -> Option<OsString> {
    let cleaned = berth_fs::clean::clean(&format!("/{rel}"));
    let name = cleaned.rsplit('/').next()?;
    if name.is_empty() || name == "." {
        return None;
    }
    Some(OsStr::from_bytes(name.as_bytes()).to_os_string())
}

impl Copier<'_> {
    fn copy_file_fd(
        &mut self,
        src: BorrowedFd<'_>,
        st: &FileStat,
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
        let d = open_at(
            dst_dir,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(fail(shown))?;
        let mut from = std::fs::File::from(
            src.try_clone_to_owned()
                .map_err(|e| format!("{shown}: {e}"))?,
        );
        let mut to = std::fs::File::from(d.try_clone().map_err(|e| format!("{shown}: {e}"))?);
        std::io::copy(&mut from, &mut to).map_err(|e| format!("{shown}: {e}"))?;
        set_meta(d.as_fd(), st, self.plan.owner, self.plan.chmod).map_err(fail(shown))
    }
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
}
