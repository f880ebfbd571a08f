//! `tmpcopyup`: a tmpfs mount that starts with a copy of what the image had at its mount
//! point (runc's extension; podman asks for it on /run, /tmp and /var/tmp of a
//! `--read-only` container).
//!
//! The copy needs no scratch mount point: a descriptor of the image's directory, opened
//! before the tmpfs covers it, still reaches the image's entries (lookups relative to a
//! descriptor do not cross a mount that covers the directory itself). Everything is done
//! with *at() calls and O_NOFOLLOW, so links in the image cannot lead the copy outside.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::dir::Dir;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstatat, mkdirat, mknodat, Mode, SFlag};
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};

use crate::error::{Context, Result};

/// Copy the tree under `src` (the covered image directory) into `dst` (the fresh
/// tmpfs), keeping modes and owners; `dst` itself gets `src`'s mode and owner.
pub fn copy_tree(src: &impl AsFd, dst: &impl AsFd) -> Result<()> {
    let stat = nix::sys::stat::fstat(src.as_fd().as_raw_fd()).context("stat copy-up source")?;
    // The callers hold O_PATH descriptors, on which fchown/fchmod fail: reopen.
    let dst = open_at(
        dst,
        OsStr::new("."),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        Mode::empty(),
    )?;
    copy_dir(src, &dst)?;
    fchown(
        dst.as_raw_fd(),
        Some(Uid::from_raw(stat.st_uid)),
        Some(Gid::from_raw(stat.st_gid)),
    )
    .context("chown copy-up tmpfs")?;
    fchmod(
        dst.as_raw_fd(),
        Mode::from_bits_truncate(stat.st_mode & 0o7777),
    )
    .context("chmod copy-up tmpfs")
}

fn open_at(dir: &impl AsFd, name: &OsStr, flags: OFlag, mode: Mode) -> Result<OwnedFd> {
    let fd = openat(
        Some(dir.as_fd().as_raw_fd()),
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        mode,
    )
    .with_context(|| format!("copy-up: open {}", name.to_string_lossy()))?;
    // SAFETY: openat just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn copy_dir(src: &impl AsFd, dst: &impl AsFd) -> Result<()> {
    // "." names the descriptor's own directory: no mount is crossed.
    let mut dir = Dir::openat(
        Some(src.as_fd().as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("copy-up: read directory")?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry.context("copy-up: read directory")?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    for name in names {
        copy_entry(src, dst, OsStr::from_bytes(&name))?;
    }
    Ok(())
}

fn copy_entry(src: &impl AsFd, dst: &impl AsFd, name: &OsStr) -> Result<()> {
    let (s, d) = (src.as_fd().as_raw_fd(), dst.as_fd().as_raw_fd());
    let stat = fstatat(Some(s), name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .with_context(|| format!("copy-up: stat {}", name.to_string_lossy()))?;
    let kind = SFlag::from_bits_truncate(stat.st_mode & libc::S_IFMT);
    let perm = Mode::from_bits_truncate(stat.st_mode & 0o7777);
    let (uid, gid) = (Uid::from_raw(stat.st_uid), Gid::from_raw(stat.st_gid));
    let what = || format!("copy-up: {}", name.to_string_lossy());
    match kind {
        SFlag::S_IFDIR => {
            mkdirat(Some(d), name, Mode::from_bits_truncate(0o700)).with_context(what)?;
            let from = open_at(src, name, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())?;
            let to = open_at(
                dst,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                Mode::empty(),
            )?;
            copy_dir(&from, &to)?;
            fchown(to.as_raw_fd(), Some(uid), Some(gid)).with_context(what)?;
            fchmod(to.as_raw_fd(), perm).with_context(what)?;
        }
        SFlag::S_IFREG => {
            let from = File::from(open_at(src, name, OFlag::O_RDONLY, Mode::empty())?);
            let to = File::from(open_at(
                dst,
                name,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
                Mode::from_bits_truncate(0o600),
            )?);
            std::io::copy(&mut &from, &mut &to).with_context(what)?;
            fchown(to.as_raw_fd(), Some(uid), Some(gid)).with_context(what)?;
            fchmod(to.as_raw_fd(), perm).with_context(what)?;
        }
        SFlag::S_IFLNK => {
            let target = readlinkat(Some(s), name).with_context(what)?;
            symlinkat(target.as_os_str(), Some(d), name).with_context(what)?;
            fchownat(
                Some(d),
                name,
                Some(uid),
                Some(gid),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .with_context(what)?;
        }
        _ => {
            // Device nodes, fifos, sockets: recreate the node itself.
            mknodat(Some(d), name, kind, perm, stat.st_rdev).with_context(what)?;
            fchownat(
                Some(d),
                name,
                Some(uid),
                Some(gid),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .with_context(what)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn open_dir(path: &std::path::Path) -> OwnedFd {
        crate::rootfs::secure_path::open_root(path).unwrap()
    }

    #[test]
    fn copies_files_dirs_links_and_modes() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join("sub")).unwrap();
        std::fs::write(src.path().join("sub/file"), b"hello").unwrap();
        std::fs::set_permissions(
            src.path().join("sub/file"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("link")).unwrap();
        std::fs::set_permissions(src.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();

        copy_tree(&open_dir(src.path()), &open_dir(dst.path())).unwrap();

        assert_eq!(
            std::fs::read(dst.path().join("sub/file")).unwrap(),
            b"hello"
        );
        let mode = |p: &std::path::Path| std::fs::symlink_metadata(p).unwrap().permissions().mode();
        assert_eq!(mode(&dst.path().join("sub/file")) & 0o7777, 0o640);
        assert_eq!(mode(dst.path()) & 0o7777, 0o1777);
        assert_eq!(
            std::fs::read_link(dst.path().join("link")).unwrap(),
            std::path::Path::new("/etc/passwd")
        );
    }
}
