//! The local half of `berth cp`: tar archives of local files for a container, and the
//! extraction of archives that come out of a container into the user's directory. A
//! container is untrusted, so both go through berth-fs: the archive is unpacked by its
//! one unpacker with the host policy ([`berth_fs::untar::Options::host`]: the user's
//! directory is the root, entries must be the copied path or below it, no `..` or
//! absolute names, nothing written through a symlink whether it was there or made by an
//! earlier entry, no set-id bits, devices or FIFOs), and local files are archived by its
//! tar writer, from descriptors.

use berth_fs::tar_out::{TarOptions, TarWriter};
use berth_fs::untar::{self, Options};
use berth_fs::Root;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// Where an archive from a container goes.
#[derive(Debug, Clone)]
pub struct Extract {
    /// An existing local directory (trusted: the user chose it); nothing is written
    /// outside it.
    pub base: PathBuf,
    /// The path, relative to `base`, that the archive's top entry becomes (empty: `base`
    /// itself takes the archive's content).
    pub root: PathBuf,
    /// The archive's top directory or file name as the container named it. Entries
    /// named `top` or `top/...` (or, for a directory's content, `.` or `./...`) are
    /// accepted; any other entry is refused.
    pub top: String,
}

fn fs_err(e: berth_fs::Error) -> io::Error {
    let kind = match &e {
        berth_fs::Error::Refused { .. } | berth_fs::Error::Tar { .. } => io::ErrorKind::InvalidData,
        berth_fs::Error::OverwriteDir { .. } | berth_fs::Error::OverwriteNonDir { .. } => {
            io::ErrorKind::AlreadyExists
        }
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

impl Extract {
    /// Unpacks `archive` (a tar from a container); the bytes of file content written.
    pub fn unpack(&self, archive: impl Read) -> io::Result<u64> {
        let root = Root::open(&self.base).map_err(fs_err)?;
        let to: Vec<OsString> = self
            .root
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                _ => None,
            })
            .collect();
        let shown = self.base.join(&self.root).display().to_string();
        let opts = Options::host(OsStr::new(&self.top), to, &shown);
        let made = untar::unpack(&root, "/", archive, &opts).map_err(fs_err)?;
        Ok(made.bytes)
    }
}

/// Opens a local directory (the user's, trusted) for reading.
fn open_dir(path: &Path, flags: OFlag) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        flags | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("opening {}: {e}", path.display()),
        )
    })?;
    // SAFETY: the kernel has just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Writes a tar of the local `src` to `out`: a file as one entry `name`; a directory
/// as `name/` and everything under it, or (when `name` is empty) just what is under
/// it. Symlinks are stored as links; devices, FIFOs and sockets are not copied. Owners
/// are kept with `keep_owner` (`cp -a`), else they become root, as the container sees
/// files docker copies in. The bytes of file content archived.
pub fn pack(src: &Path, name: &str, keep_owner: bool, out: impl Write) -> io::Result<u64> {
    let opts = TarOptions {
        owner: if keep_owner { None } else { Some((0, 0)) },
        capabilities: false,
        specials: false,
    };
    let mut w = TarWriter::new(out, opts);
    match (src.parent(), src.file_name()) {
        (Some(parent), Some(child)) if !name.is_empty() => {
            let dir = open_dir(parent, OFlag::O_PATH)?;
            w.entry(dir.as_fd(), child, OsStr::new(name))
        }
        _ => {
            let dir = open_dir(src, OFlag::O_RDONLY)?;
            w.dir(dir.as_fd(), OsStr::new(name))
        }
    }
    .map_err(fs_err)?;
    let total = w.bytes();
    w.finish().map_err(fs_err)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tar_of(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        // Names are written raw into the header, so hostile names survive.
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o755);
            let bytes = name.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            if kind.is_symlink() || kind.is_hard_link() {
                h.set_link_name(data).expect("link name");
                h.set_size(0);
                h.set_cksum();
                b.append(&h, io::empty()).expect("append");
            } else {
                h.set_size(data.len() as u64);
                h.set_cksum();
                b.append(&h, data.as_bytes()).expect("append");
            }
        }
        b.into_inner().expect("tar")
    }

    fn extract_to(dir: &Path, top: &str, root: &str, data: &[u8]) -> io::Result<u64> {
        Extract {
            base: dir.to_path_buf(),
            root: PathBuf::from(root),
            top: top.into(),
        }
        .unpack(data)
    }

    #[test]
    fn a_directory_is_renamed_to_the_destination() {
        let d = tempfile::tempdir().expect("tempdir");
        let t = tar_of(&[
            ("etc/", tar::EntryType::Directory, ""),
            ("etc/passwd", tar::EntryType::Regular, "root"),
            ("etc/sub/", tar::EntryType::Directory, ""),
            ("etc/sub/x", tar::EntryType::Regular, "x"),
            ("etc/l", tar::EntryType::Symlink, "/"),
        ]);
        extract_to(d.path(), "etc", "out", &t).expect("extract");
        assert_eq!(
            fs::read_to_string(d.path().join("out/passwd")).expect("read"),
            "root"
        );
        assert_eq!(
            fs::read_to_string(d.path().join("out/sub/x")).expect("read"),
            "x"
        );
        assert_eq!(
            fs::read_link(d.path().join("out/l")).expect("link"),
            Path::new("/")
        );
        // A directory's content, docker's "./" form, straight into base.
        let t = tar_of(&[
            ("./", tar::EntryType::Directory, ""),
            ("./a", tar::EntryType::Regular, "a"),
        ]);
        extract_to(&d.path().join("out"), "etc", "", &t).expect("extract");
        assert_eq!(
            fs::read_to_string(d.path().join("out/a")).expect("read"),
            "a"
        );
        // The same, named `.` with entries without the `./`.
        let t = tar_of(&[
            ("./", tar::EntryType::Directory, ""),
            ("b", tar::EntryType::Regular, "b"),
        ]);
        extract_to(&d.path().join("out"), ".", "", &t).expect("extract");
        assert_eq!(
            fs::read_to_string(d.path().join("out/b")).expect("read"),
            "b"
        );
    }

    #[test]
    fn packing_names_entries_and_keeps_links() {
        let d = tempfile::tempdir().expect("tempdir");
        let src = d.path().join("src");
        fs::create_dir_all(src.join("sub")).expect("mkdir");
        fs::write(src.join("sub/f"), "f").expect("write");
        std::os::unix::fs::symlink("/etc/passwd", src.join("l")).expect("symlink");
        let mut out = Vec::new();
        pack(&src, "new", false, &mut out).expect("pack");
        let mut a = tar::Archive::new(out.as_slice());
        let names: Vec<String> = a
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["new/", "new/l", "new/sub/", "new/sub/f"]);
        let mut out = Vec::new();
        pack(&src, "", false, &mut out).expect("pack");
        let mut a = tar::Archive::new(out.as_slice());
        let names: Vec<String> = a
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["l", "sub/", "sub/f"]);
    }
}
