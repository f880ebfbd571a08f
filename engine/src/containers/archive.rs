//! `docker cp`: paths inside a container's root filesystem resolved without leaving it
//! (symlinks are followed as the container would see them, `..` stops at its root),
//! and tar archives out of and into it. A running container is reached through
//! `/proc/PID/root` (so its volumes are seen too); a stopped one through a temporary
//! overlay mount of its layers.

use super::{ContainerService, Error, Result};
use std::path::{Component, Path, PathBuf};

/// Resolves `path` inside `root`: every symlink of the parent components is followed
/// within `root`; the last component is followed too when `follow_last`.
pub fn secure_join(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf> {
    let mut pending: Vec<String> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .rev()
        .collect();
    let mut done: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            done.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(done.iter());
        candidate.push(&c);
        let last = pending.is_empty();
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() && (!last || follow_last) => {
                links += 1;
                if links > 40 {
                    return Err(Error::Invalid(format!(
                        "{path}: too many levels of symbolic links"
                    )));
                }
                let target = std::fs::read_link(&candidate)
                    .map_err(|e| Error::Internal(format!("readlink {path}: {e}")))?;
                if target.is_absolute() {
                    done.clear();
                }
                let parts: Vec<String> = target
                    .components()
                    .filter_map(|c| match c {
                        Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                        Component::ParentDir => Some("..".into()),
                        _ => None,
                    })
                    .collect();
                pending.extend(parts.into_iter().rev());
            }
            _ => done.push(c),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(done.iter());
    Ok(out)
}

/// A container's root as seen from the host; unmounted on drop if it was mounted here.
pub struct RootView {
    /// The directory.
    pub path: PathBuf,
    mounted: bool,
}

impl Drop for RootView {
    fn drop(&mut self) {
        if self.mounted {
            let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

impl ContainerService {
    /// The container's root: `/proc/PID/root` while it runs, else its overlay mounted
    /// read-write on a temporary directory.
    pub fn root_view(&self, name: &str) -> Result<RootView> {
        let entry = self.get(name)?;
        let rec = entry.record();
        if entry.running() && rec.state.pid > 0 {
            return Ok(RootView {
                path: PathBuf::from(format!("/proc/{}/root", rec.state.pid)),
                mounted: false,
            });
        }
        let lowers = self.lowerdirs(&rec)?;
        let dir = self.dir(&rec.id);
        let mnt =
            self.exec_root
                .join("mnt")
                .join(format!("{}-{}", &rec.id[..12], super::random_hex(4)));
        std::fs::create_dir_all(&mnt).map_err(|e| Error::Internal(format!("mkdir: {e}")))?;
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lowers
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
            dir.join("upper").display(),
            dir.join("work").display()
        );
        nix::mount::mount(
            Some("overlay"),
            &mnt,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|e| {
            let _ = std::fs::remove_dir(&mnt);
            Error::Internal(format!("mounting the container's filesystem: {e}"))
        })?;
        Ok(RootView {
            path: mnt,
            mounted: true,
        })
    }
}

/// Docker's `X-Docker-Container-Path-Stat` value (JSON, before base64).
pub fn path_stat(path: &Path, name: &str) -> Result<serde_json::Value> {
    use std::os::unix::fs::PermissionsExt;
    let m = std::fs::symlink_metadata(path)
        .map_err(|_| Error::NotFound(format!("Could not find the file {name} in container")))?;
    let mut mode = (m.permissions().mode() & 0o777) as u64;
    if m.is_dir() {
        mode |= 1 << 31;
    }
    let mut link = String::new();
    if m.file_type().is_symlink() {
        mode |= 1 << 27;
        link = std::fs::read_link(path)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
    }
    let mtime = m
        .modified()
        .ok()
        .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339())
        .unwrap_or_default();
    let base = Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    Ok(serde_json::json!({
        "name": base, "size": m.len(), "mode": mode, "mtime": mtime, "linkTarget": link,
    }))
}

/// Tars `path` (a file, a symlink or a directory tree) under the name `name`.
pub fn tar_path(path: &Path, name: &str) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let m = std::fs::symlink_metadata(path)?;
    if m.is_dir() {
        b.append_dir_all(name, path)?;
    } else {
        b.append_path_with_name(path, name)?;
    }
    b.into_inner()
}

/// Unpacks a tar into the directory `dir` of the container whose root is `root`:
/// every entry's path is resolved with `secure_join`, so neither `..` nor a symlink
/// (in the container or made by an earlier entry) leads out of the root.
pub fn untar_into(data: &[u8], root: &Path, dir: &str) -> std::io::Result<()> {
    let mut a = tar::Archive::new(data);
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(true);
    a.set_overwrite(true);
    for e in a.entries()? {
        let mut e = e?;
        let rel = e.path()?.to_string_lossy().into_owned();
        let target = secure_join(root, &format!("{dir}/{rel}"), false)
            .map_err(|err| std::io::Error::other(err.to_string()))?;
        if target == root {
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if e.header().entry_type().is_dir() && target.is_dir() {
            continue;
        }
        if let Ok(m) = std::fs::symlink_metadata(&target) {
            if !m.is_dir() {
                std::fs::remove_file(&target)?;
            }
        }
        if e.header().entry_type().is_hard_link() {
            // The link's target is a path in the archive, resolved inside the root too
            // (tar would take it relative to berthd's working directory).
            let link = e
                .link_name()?
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let src = secure_join(root, &format!("{dir}/{link}"), false)
                .map_err(|err| std::io::Error::other(err.to_string()))?;
            std::fs::hard_link(src, &target)?;
            continue;
        }
        e.unpack(&target)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../..", r.join("up")).unwrap();
        assert_eq!(secure_join(r, "/abs/x", true).unwrap(), r.join("etc/x"));
        assert_eq!(secure_join(r, "/up/etc", true).unwrap(), r.join("etc"));
        assert_eq!(secure_join(r, "../../etc", true).unwrap(), r.join("etc"));
        assert_eq!(secure_join(r, "/abs", false).unwrap(), r.join("abs"));
    }
}
