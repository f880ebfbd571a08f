//! The local half of `berth cp`: tar archives of local files for a container, and the
//! safe extraction of archives that come out of a container. A container is untrusted,
//! so every entry it sends is checked: no absolute paths, no `..`, nothing outside the
//! expected top directory, and nothing written through a symlink (whether it was there
//! before or was made by an earlier entry of the same archive).

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
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

/// An entry of a container's archive, mapped to a path relative to the content root.
fn map_entry(raw: &Path, top: &str) -> io::Result<PathBuf> {
    let mut comps = raw.components().peekable();
    // `./x` (docker's form for a directory's content) is relative to the root already.
    // A top of `.` (docker's name for a directory's content) means every entry is.
    let dot = top == "." || matches!(comps.peek(), Some(Component::CurDir));
    let mut out = PathBuf::new();
    let mut first = !dot;
    for c in comps {
        match c {
            Component::CurDir => {}
            Component::Normal(n) if first => {
                if n != std::ffi::OsStr::new(top) {
                    return Err(refuse(raw, &format!("not under the copied path {top:?}")));
                }
                first = false;
            }
            Component::Normal(n) => out.push(n),
            Component::ParentDir => return Err(refuse(raw, "has a `..` component")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(refuse(raw, "is an absolute path"))
            }
        }
    }
    if first {
        return Err(refuse(raw, "is empty"));
    }
    Ok(out)
}

fn refuse(raw: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "refusing archive entry {:?} from the container: it {why}",
            raw.display().to_string()
        ),
    )
}

impl Extract {
    /// Makes the parents of `rel` (relative to `base`) as directories, refusing to go
    /// through anything that is not a real directory (a symlink above all); the full
    /// path of `rel`.
    fn prepare(&self, rel: &Path, create: bool) -> io::Result<PathBuf> {
        let mut cur = self.base.clone();
        let comps: Vec<Component> = rel.components().collect();
        for (i, c) in comps.iter().enumerate() {
            cur.push(c);
            if i + 1 == comps.len() {
                break;
            }
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_dir() => {}
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "refusing to write through {}: not a directory (a symlink?)",
                            cur.display()
                        ),
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    fs::create_dir(&cur).map_err(|e| ctx(e, "creating", &cur))?;
                }
                Err(e) => return Err(ctx(e, "reading", &cur)),
            }
        }
        Ok(cur)
    }

    /// Unpacks `archive` (a tar from a container); the bytes of file content written.
    pub fn unpack(&self, archive: impl Read) -> io::Result<u64> {
        let mut a = tar::Archive::new(archive);
        let mut written = 0u64;
        // Directory modes are set at the end, so that a read-only directory can be
        // filled first.
        let mut dir_modes: Vec<(PathBuf, u32)> = Vec::new();
        for entry in a.entries()? {
            let mut entry = entry?;
            let kind = entry.header().entry_type();
            if kind.is_pax_global_extensions()
                || kind.is_pax_local_extensions()
                || kind.is_gnu_longname()
                || kind.is_gnu_longlink()
            {
                continue;
            }
            let raw = entry.path()?.into_owned();
            let rel = self.root.join(map_entry(&raw, &self.top)?);
            // Set-id bits are dropped: the container must not hand the host a set-uid
            // binary owned by whoever runs cp.
            let mode = entry.header().mode().unwrap_or(0o644) & 0o1777;
            if rel.as_os_str().is_empty() {
                // The content root is `base` itself (a directory's content copied into
                // an existing directory): only a directory may land there.
                if !kind.is_dir() {
                    return Err(refuse(&raw, "is not a directory but would replace one"));
                }
                continue;
            }
            let target = self.prepare(&rel, true)?;
            let existing = fs::symlink_metadata(&target).ok();
            if kind.is_dir() {
                match existing {
                    Some(m) if m.file_type().is_dir() => {}
                    Some(_) => {
                        // A file or a symlink (never followed): replaced by the directory.
                        fs::remove_file(&target).map_err(|e| ctx(e, "removing", &target))?;
                        fs::create_dir(&target).map_err(|e| ctx(e, "creating", &target))?;
                    }
                    None => fs::create_dir(&target).map_err(|e| ctx(e, "creating", &target))?,
                }
                dir_modes.push((target, mode));
                continue;
            }
            if !(kind.is_file() || kind.is_symlink() || kind.is_hard_link() || kind.is_contiguous())
            {
                // Devices, fifos: not made on the host.
                continue;
            }
            if let Some(m) = existing {
                if m.file_type().is_dir() {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!(
                            "cannot overwrite directory {} with non-directory",
                            target.display()
                        ),
                    ));
                }
                fs::remove_file(&target).map_err(|e| ctx(e, "removing", &target))?;
            }
            if kind.is_symlink() {
                // The link is made as it is; nothing is ever written through it.
                let to = entry
                    .link_name()?
                    .ok_or_else(|| refuse(&raw, "is a symlink without a target"))?;
                std::os::unix::fs::symlink(&to, &target)
                    .map_err(|e| ctx(e, "making the symlink", &target))?;
            } else if kind.is_hard_link() {
                let to = entry
                    .link_name()?
                    .ok_or_else(|| refuse(&raw, "is a hard link without a target"))?
                    .into_owned();
                let src_rel = self.root.join(map_entry(&to, &self.top)?);
                let src = self.prepare(&src_rel, false)?;
                match fs::symlink_metadata(&src) {
                    Ok(m) if !m.is_dir() => {}
                    _ => return Err(refuse(&raw, "links to no file of the archive")),
                }
                fs::hard_link(&src, &target).map_err(|e| ctx(e, "linking", &target))?;
            } else {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .mode(0o600)
                    .open(&target)
                    .map_err(|e| ctx(e, "creating", &target))?;
                written += io::copy(&mut entry, &mut f).map_err(|e| ctx(e, "writing", &target))?;
                f.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(|e| ctx(e, "setting the mode of", &target))?;
                if let Ok(mtime) = entry.header().mtime() {
                    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
                    // The modification time is a nicety: failing to set it is no error.
                    let _ = f.set_modified(t);
                }
            }
        }
        for (dir, mode) in dir_modes.into_iter().rev() {
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
                .map_err(|e| ctx(e, "setting the mode of", &dir))?;
        }
        Ok(written)
    }
}

fn ctx(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Writes a tar of the local `src` to `out`: a file as one entry `name`; a directory
/// as `name/` and everything under it, or (when `name` is empty) just what is under
/// it. Symlinks are stored as links. Owners are kept with `keep_owner` (`cp -a`), else
/// they become root, as the container sees files docker copies in. The bytes of file
/// content archived.
pub fn pack(src: &Path, name: &str, keep_owner: bool, out: impl Write) -> io::Result<u64> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let mut total = 0u64;
    add(&mut b, src, Path::new(name), keep_owner, &mut total)?;
    b.into_inner()?.flush()?;
    Ok(total)
}

fn add<W: Write>(
    b: &mut tar::Builder<W>,
    path: &Path,
    name: &Path,
    keep_owner: bool,
    total: &mut u64,
) -> io::Result<()> {
    let m = fs::symlink_metadata(path).map_err(|e| ctx(e, "lstat", path))?;
    let top = name.as_os_str().is_empty();
    if !top || !m.is_dir() {
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
        if !keep_owner {
            h.set_uid(0);
            h.set_gid(0);
        }
        if m.file_type().is_symlink() {
            let to = fs::read_link(path).map_err(|e| ctx(e, "readlink", path))?;
            h.set_size(0);
            b.append_link(&mut h, name, to)?;
        } else if m.is_dir() {
            h.set_size(0);
            b.append_data(&mut h, name, io::empty())?;
        } else if m.is_file() {
            let f = fs::File::open(path).map_err(|e| ctx(e, "opening", path))?;
            *total += m.size();
            b.append_data(&mut h, name, f)?;
        } else {
            // Sockets, devices and fifos are not copied.
            return Ok(());
        }
    }
    if m.is_dir() {
        let mut children: Vec<_> = fs::read_dir(path)
            .map_err(|e| ctx(e, "reading", path))?
            .collect::<io::Result<Vec<_>>>()?;
        children.sort_by_key(|e| e.file_name());
        for c in children {
            add(b, &c.path(), &name.join(c.file_name()), keep_owner, total)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn hostile_entries_are_refused_and_nothing_lands_outside() {
        let outer = tempfile::tempdir().expect("tempdir");
        let dest = outer.path().join("dest");
        fs::create_dir(&dest).expect("mkdir");
        let bad: Vec<Vec<u8>> = vec![
            tar_of(&[("../evil", tar::EntryType::Regular, "x")]),
            tar_of(&[("d/../../evil", tar::EntryType::Regular, "x")]),
            tar_of(&[("/evil", tar::EntryType::Regular, "x")]),
            tar_of(&[("other/evil", tar::EntryType::Regular, "x")]),
            // A symlink out, then a file through it.
            tar_of(&[
                ("d/", tar::EntryType::Directory, ""),
                ("d/l", tar::EntryType::Symlink, ".."),
                ("d/l/evil", tar::EntryType::Regular, "x"),
            ]),
            tar_of(&[
                ("d/", tar::EntryType::Directory, ""),
                (
                    "d/l",
                    tar::EntryType::Symlink,
                    outer.path().to_str().expect("utf-8"),
                ),
                ("d/l/evil", tar::EntryType::Regular, "x"),
            ]),
            // A hard link to a file outside.
            tar_of(&[("d/h", tar::EntryType::Link, "d/../../evil")]),
        ];
        for t in &bad {
            let r = extract_to(&dest, "d", "", t);
            assert!(r.is_err(), "accepted a hostile archive");
        }
        assert!(!outer.path().join("evil").exists());
        // A symlink made by an earlier copy is not written through by a later one.
        fs::create_dir(dest.join("x")).expect("mkdir");
        std::os::unix::fs::symlink(outer.path(), dest.join("x/l")).expect("symlink");
        let t = tar_of(&[("x/l/evil", tar::EntryType::Regular, "x")]);
        assert!(extract_to(&dest, "x", "x", &t).is_err());
        assert!(!outer.path().join("evil").exists());
        // A file entry over an existing symlink replaces the link, not its target.
        let t = tar_of(&[("x/l", tar::EntryType::Regular, "mine")]);
        extract_to(&dest, "x", "x", &t).expect("extract");
        assert_eq!(fs::read_to_string(dest.join("x/l")).expect("read"), "mine");
        assert!(outer.path().join("dest").is_dir());
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
        assert_eq!(names, ["new", "new/l", "new/sub", "new/sub/f"]);
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
        assert_eq!(names, ["l", "sub", "sub/f"]);
    }
}
