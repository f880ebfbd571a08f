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
use berth_fs::root::kind;
use berth_fs::tar_out::{TarOptions, TarWriter};
use berth_fs::untar::{self, Overwrite, Owners};
use berth_fs::Root;
use nix::errno::Errno;
use nix::fcntl::{readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat};
use serde_json::Value;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Symlinks followed at most while naming a link's target (as the kernel's limit).
const MAX_LINKS: usize = 40;

/// A container's root directory, opened; unmounted on drop if it was mounted here.
pub struct RootView {
    root: Root,
    mount: Option<PathBuf>,
}

impl RootView {
    /// A view of `fd`, unmounted (with what is mounted below it) on drop when `mount`
    /// names where it was mounted.
    pub(crate) fn new(fd: OwnedFd, mount: Option<PathBuf>) -> Self {
        Self {
            root: Root::from_fd(fd),
            mount,
        }
    }

    /// The root as a descriptor: the `/` that every archive path is resolved under.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.root.fd()
    }

    /// The root, for resolving paths inside it.
    pub fn root(&self) -> &Root {
        &self.root
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

/// Resolves `rel` under `root` as the container would, never leaving it.
fn open_in_root(
    root: &Root,
    rel: &(impl AsRef<Path> + ?Sized),
    flags: OFlag,
) -> nix::Result<OwnedFd> {
    root.resolve_raw(rel.as_ref(), flags)
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

fn not_found(path: &str, ctr: &str) -> Error {
    Error::NotFound(format!("Could not find the file {path} in container {ctr}"))
}

/// The absolute path, inside the container, that `rel` names once every symlink in it
/// is followed: what Docker reports as a link's target. Only a name for the client, so
/// a change during the walk matters not.
fn resolved_name(root: &Root, rel: &str) -> String {
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

fn target(root: &Root, path: &str, ctr: &str) -> Result<Target> {
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
    let t = target(root.root(), path, ctr)?;
    stat_json(root.root(), path, &t, ctr)
}

fn stat_json(root: &Root, path: &str, t: &Target, ctr: &str) -> Result<Value> {
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

/// GET archive, first step: the stat of `path` (sent as a header before any of the
/// tar) and what to archive, resolved now; `TarSource::write_to` then writes the tar.
pub fn tar_source(root: &RootView, path: &str, ctr: &str) -> Result<(Value, TarSource)> {
    let target = target(root.root(), path, ctr)?;
    let stat = stat_json(root.root(), path, &target, ctr)?;
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
        let fail = |e: berth_fs::Error| {
            Error::Internal(format!("archive {}: {e}", Path::new(&self.name).display()))
        };
        let mut w = TarWriter::new(out, TarOptions::default());
        match &self.target {
            Target::Dir(fd) => w.dir(fd.as_fd(), &self.name),
            Target::Entry { parent, name: last } => {
                w.entry(parent.as_fd(), OsStr::new(last), &self.name)
            }
        }
        .map_err(fail)?;
        w.finish().map_err(fail)?;
        Ok(())
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
    let passwd = read_config_file(root.root(), "/etc/passwd");
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
        let group = read_config_file(root.root(), "/etc/group");
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

/// A small text file of the container (`/etc/passwd`), resolved inside its root; empty
/// if missing, too long or not a regular file.
fn read_config_file(root: &Root, path: &str) -> String {
    match root.read_file(path, MAX_CONFIG_FILE) {
        Ok(Some(data)) => String::from_utf8_lossy(&data).into_owned(),
        _ => String::new(),
    }
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
    let dest = below_root(path).trim_end_matches('/').to_string();
    match open_in_root(root.root(), &dest, OFlag::O_PATH | OFlag::O_DIRECTORY) {
        Ok(_) => {}
        Err(Errno::ENOENT) => return Err(not_found(path, ctr)),
        Err(Errno::ENOTDIR) => {
            return Err(Error::Invalid("extraction point is not a directory".into()))
        }
        Err(e) => return Err(Error::Internal(format!("resolving {path}: {e}"))),
    }
    // As dockerd words errors: the entry's path below the extraction directory.
    let shown_dest = match path.trim_end_matches('/') {
        "" => "/",
        p => p,
    };
    let mut policy = untar::Options::container(shown_dest);
    if opts.no_overwrite_dir_non_dir {
        policy.overwrite = Overwrite::NoDirNonDir;
    }
    if let Some((uid, gid)) = opts.owner {
        policy.owners = Owners::Fixed(uid, gid);
    }
    match untar::unpack(root.root(), &dest, data, &policy) {
        Ok(_) => Ok(()),
        Err(
            e @ (berth_fs::Error::OverwriteDir { .. } | berth_fs::Error::OverwriteNonDir { .. }),
        ) => Err(Error::Invalid(e.to_string())),
        Err(e) => Err(Error::Invalid(format!(
            "extracting archive into {path}: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    fn view(p: &Path) -> RootView {
        RootView {
            root: Root::open(p).unwrap(),
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
        assert_eq!(resolved_name(v.root(), "abs/x"), "/etc/x");
        assert_eq!(resolved_name(v.root(), "up/etc"), "/etc");
        assert_eq!(resolved_name(v.root(), "root"), "/");
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
