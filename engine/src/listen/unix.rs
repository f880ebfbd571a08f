//! berthd's unix sockets: made mode 0660 with dockerd's `-G` group, never reachable by
//! others in between.

use super::LoadError;
use crate::config::DEFAULT_SOCKET_GROUP;
use nix::unistd::{Gid, Group};
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// The GID the sockets get for `-G NAME`, as dockerd decides it: the group of that name,
/// else a number taken as a GID; an empty name, or the default `docker` when there is no
/// such group (with a warning), means berthd's own group.
pub fn socket_gid(group: &str, socket: &Path) -> Result<Gid, LoadError> {
    if group.is_empty() {
        return Ok(nix::unistd::getgid());
    }
    match lookup(group) {
        Some(gid) => Ok(gid),
        None if group == DEFAULT_SOCKET_GROUP => {
            tracing::warn!(
                "could not change group {} to {DEFAULT_SOCKET_GROUP}: group {DEFAULT_SOCKET_GROUP} not found",
                socket.display()
            );
            Ok(nix::unistd::getgid())
        }
        None => Err(LoadError::GroupNotFound(group.to_string())),
    }
}

fn lookup(group: &str) -> Option<Gid> {
    // getgrnam goes through NSS, as Go's user lookup falls back to getent.
    if let Ok(Some(g)) = Group::from_name(group) {
        return Some(g.gid);
    }
    group.parse::<u32>().ok().map(Gid::from_raw)
}

/// Where the socket for `path` is bound until berthd serves: beside it, hidden, so the
/// socket appears at `path` (see [`publish`]) only once the API answers, and clients or
/// scripts that wait for it never find a daemon still starting.
pub fn starting_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.starting"))
}

/// Binds the socket for `path` at its [`starting_path`], owned by `gid`, mode 0660. A
/// stale socket at either place will be replaced; anything else at `path` is left alone
/// and refused.
pub fn bind(path: &Path, gid: Gid) -> Result<std::os::unix::net::UnixListener, LoadError> {
    let fail = |cause: std::io::Error| LoadError::UnixSocket {
        path: path.to_path_buf(),
        cause,
    };
    for p in [path.to_path_buf(), starting_path(path)] {
        if let Ok(m) = std::fs::symlink_metadata(&p) {
            if !m.file_type().is_socket() {
                return Err(LoadError::NotASocket(p));
            }
        }
    }
    let starting = starting_path(path);
    match std::fs::remove_file(&starting) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
        _ => {}
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    // bind(2) makes the socket with 0777 & ~umask, and a chmod after it leaves a moment
    // in which anyone may connect. With umask 0777 it is born 0000 (as go-connections
    // does for dockerd). The umask is the process's: this runs at start-up before
    // berthd makes any other file, so no other thread creates one meanwhile.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o777));
    let bound = std::os::unix::net::UnixListener::bind(&starting);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(|cause| LoadError::UnixBind {
        path: path.to_path_buf(),
        cause,
    })?;
    let finish = || -> std::io::Result<()> {
        nix::unistd::chown(&starting, None, Some(gid))?;
        std::fs::set_permissions(&starting, std::fs::Permissions::from_mode(0o660))?;
        listener.set_nonblocking(true)
    };
    if let Err(e) = finish() {
        let _ = std::fs::remove_file(&starting);
        return Err(fail(e));
    }
    Ok(listener)
}

/// Moves the bound socket to `path` (replacing a stale one in one step): from now on
/// clients find it. The listening socket is the same inode under its new name.
pub fn publish(path: &Path) -> std::io::Result<()> {
    std::fs::rename(starting_path(path), path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_name_number_or_default() {
        let sock = Path::new("/nonexistent/berth.sock");
        assert_eq!(socket_gid("", sock).unwrap(), nix::unistd::getgid());
        assert_eq!(socket_gid("4242", sock).unwrap(), Gid::from_raw(4242));
        let root = Group::from_gid(Gid::from_raw(0)).unwrap().unwrap().name;
        assert_eq!(socket_gid(&root, sock).unwrap(), Gid::from_raw(0));
        assert_eq!(
            socket_gid("no-such-group-berth", sock)
                .unwrap_err()
                .to_string(),
            "group no-such-group-berth not found"
        );
    }

    #[test]
    fn only_sockets_are_replaced() {
        // (The socket's mode and group are checked by the integration tests: binding
        // changes the process umask, which other unit tests running meanwhile would see.)
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, "keep").unwrap();
        let gid = nix::unistd::getgid();
        assert!(matches!(bind(&file, gid), Err(LoadError::NotASocket(_))));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    }
}
