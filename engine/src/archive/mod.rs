//! Layer tarballs: compression sniffing and safe unpacking into a snapshot directory.
//!
//! Unpacking never writes outside the destination: entries with `..` or absolute paths
//! are rejected, no path is ever resolved through a symlink (every parent is checked
//! with lstat), hardlinks must name an entry inside the destination, and device nodes
//! are skipped. OCI/Docker whiteouts become overlayfs whiteouts (char 0:0) and opaque
//! directories (`trusted.overlay.opaque=y`), so a snapshot can be an overlay lowerdir.

use crate::content::Digest;
use sha2::{Digest as _, Sha256};
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Errors while reading or unpacking a layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The stream is not a readable tar (or its compression is broken).
    #[error("broken layer archive: {0}")]
    Broken(io::Error),
    /// An entry would land outside the snapshot.
    #[error("layer entry {path:?} escapes the snapshot: {why}")]
    Escape {
        /// The entry's path as written in the tar.
        path: String,
        /// What makes it unsafe.
        why: &'static str,
    },
    /// Creating a file, directory or link failed.
    #[error("unpacking {path}: {source}")]
    Io {
        /// The path being created.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// Result type of archive operations.
pub type Result<T> = std::result::Result<T, Error>;

/// Compression of a layer stream, found from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (one or more members).
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    /// Sniffs the compression from the first bytes of a stream.
    pub fn detect(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Self::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Self::Zstd
        } else {
            Self::None
        }
    }

    /// The Docker (or, for zstd, OCI) layer media type of this compression.
    pub fn layer_media_type(self) -> &'static str {
        match self {
            Self::None => "application/vnd.docker.image.rootfs.diff.tar",
            Self::Gzip => "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Self::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// Wraps a reader in the decompressor its first bytes call for.
pub fn decompress<'a, R: Read + 'a>(reader: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut buf = BufReader::with_capacity(256 * 1024, reader);
    let kind = Compression::detect(buf.fill_buf()?);
    let out: Box<dyn Read + 'a> = match kind {
        Compression::None => Box::new(buf),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buf)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buf)?),
    };
    Ok((kind, out))
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest of the stream and returns its digest and length.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((
            Digest::from_sha256(self.hasher.finalize().into()),
            self.count,
        ))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// What unpacking a layer found.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// sha256 of the uncompressed tar (the layer's diff ID).
    pub diff_id: Digest,
    /// Compression of the stream.
    pub compression: Compression,
    /// Bytes of regular file content written.
    pub size: u64,
}

/// Unpacks a (possibly compressed) layer tar into `dest`, an existing empty directory.
/// The caller unpacks into a temp directory and renames it on success, so a failure
/// here leaves nothing that looks complete.
pub fn unpack_layer<R: Read>(reader: R, dest: &Path) -> Result<Unpacked> {
    let (compression, plain) = decompress(reader).map_err(Error::Broken)?;
    let mut hashing = HashingReader::new(plain);
    let mut archive = tar::Archive::new(&mut hashing);
    let mut size = 0u64;
    // Directory times are set last: creating children would change them again.
    let mut dir_times = Vec::new();
    for entry in archive.entries().map_err(Error::Broken)? {
        let mut entry = entry.map_err(Error::Broken)?;
        size += unpack_entry(&mut entry, dest, &mut dir_times)?;
    }
    // The tar reader borrows the hasher; end that borrow to read the trailing bytes.
    let _ = archive.into_inner();
    let (diff_id, _) = hashing.finish().map_err(Error::Broken)?;
    for (path, mtime) in dir_times.into_iter().rev() {
        let _ = filetime::set_symlink_file_times(&path, mtime, mtime);
    }
    Ok(Unpacked {
        diff_id,
        compression,
        size,
    })
}

/// Turns a tar entry name into a relative path with only normal components.
fn clean_path(raw: &Path) -> Result<PathBuf> {
    let shown = || raw.display().to_string();
    let mut out = PathBuf::new();
    for comp in raw.components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(Error::Escape {
                    path: shown(),
                    why: "contains ..",
                })
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(Error::Escape {
                    path: shown(),
                    why: "is absolute",
                })
            }
        }
    }
    Ok(out)
}

/// Creates the parents of `rel` under `dest` as real directories, refusing to pass
/// through a symlink or a non-directory left by an earlier entry.
fn ensure_parents(dest: &Path, rel: &Path, raw: &str) -> Result<()> {
    let mut cur = dest.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    for comp in parent.components() {
        cur.push(comp);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::Escape {
                    path: raw.to_string(),
                    why: "its parent is a symlink",
                })
            }
            Ok(_) => {
                return Err(Error::Escape {
                    path: raw.to_string(),
                    why: "its parent is not a directory",
                })
            }
            Err(_) => fs::create_dir(&cur).map_err(|source| Error::Io {
                path: cur.clone(),
                source,
            })?,
        }
    }
    Ok(())
}

/// Removes whatever is at `path` unless it is a directory and `keep_dir` is set.
fn clear(path: &Path, keep_dir: bool) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            if !keep_dir {
                fs::remove_dir_all(path).map_err(io)?;
            }
        }
        Ok(_) => fs::remove_file(path).map_err(io)?,
        Err(_) => {}
    }
    Ok(())
}

fn unpack_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    dest: &Path,
    dir_times: &mut Vec<(PathBuf, filetime::FileTime)>,
) -> Result<u64> {
    let raw_path = entry.path().map_err(Error::Broken)?.into_owned();
    let raw = raw_path.display().to_string();
    let rel = clean_path(&raw_path)?;
    if rel.as_os_str().is_empty() {
        return Ok(0); // the archive's own "./" entry
    }
    ensure_parents(dest, &rel, &raw)?;
    let target = dest.join(&rel);
    let io = |source| Error::Io {
        path: target.clone(),
        source,
    };
    let header = entry.header();
    let kind = header.entry_type();
    let mode = header.mode().unwrap_or(0o644) & 0o7777;
    let uid = header.uid().ok().and_then(|u| u32::try_from(u).ok());
    let gid = header.gid().ok().and_then(|g| u32::try_from(g).ok());
    let mtime = filetime::FileTime::from_unix_time(header.mtime().unwrap_or(0) as i64, 0);

    // Whiteouts: a marker in the layer that hides a path of the layers below.
    let name = rel
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    if name == OPAQUE_MARKER {
        let dir = target.parent().unwrap_or(dest).to_path_buf();
        xattr::set(&dir, "trusted.overlay.opaque", b"y")
            .map_err(|source| Error::Io { path: dir, source })?;
        return Ok(0);
    }
    if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
        // `.wh...` would name the parent directory: only plain names can be hidden.
        if hidden.is_empty() || hidden == "." || hidden == ".." || hidden.contains('/') {
            return Err(Error::Escape {
                path: raw,
                why: "whiteout of an invalid name",
            });
        }
        let path = target.with_file_name(hidden);
        clear(&path, false)?;
        nix::sys::stat::mknod(
            &path,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            nix::sys::stat::makedev(0, 0),
        )
        .map_err(|e| Error::Io {
            path: path.clone(),
            source: e.into(),
        })?;
        return Ok(0);
    }

    let mut written = 0;
    match kind {
        tar::EntryType::Directory => {
            clear(&target, true)?;
            if !target.is_dir() {
                fs::create_dir(&target).map_err(io)?;
            }
            dir_times.push((target.clone(), mtime));
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            clear(&target, false)?;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&target)
                .map_err(io)?;
            written = io::copy(entry, &mut f).map_err(Error::Broken)?;
        }
        tar::EntryType::Symlink => {
            // A symlink may point anywhere: it is never followed while unpacking.
            let link = entry
                .link_name()
                .map_err(Error::Broken)?
                .ok_or_else(|| Error::Broken(io::Error::other("symlink without target")))?;
            clear(&target, false)?;
            symlink(&link, &target).map_err(io)?;
        }
        tar::EntryType::Link => {
            let link = entry
                .link_name()
                .map_err(Error::Broken)?
                .ok_or_else(|| Error::Broken(io::Error::other("hardlink without target")))?;
            let link_rel = clean_path(&link).map_err(|_| Error::Escape {
                path: raw.clone(),
                why: "hardlink target is outside the layer",
            })?;
            let source = dest.join(&link_rel);
            // The target's directories must be real ones already in the layer.
            let mut cur = dest.to_path_buf();
            for comp in link_rel.parent().into_iter().flat_map(Path::components) {
                cur.push(comp);
                if !fs::symlink_metadata(&cur).is_ok_and(|m| m.is_dir()) {
                    return Err(Error::Escape {
                        path: raw,
                        why: "hardlink target is not in the layer",
                    });
                }
            }
            if fs::symlink_metadata(&source).is_err() {
                return Err(Error::Escape {
                    path: raw,
                    why: "hardlink target is not in the layer",
                });
            }
            clear(&target, false)?;
            fs::hard_link(&source, &target).map_err(io)?;
            return Ok(0);
        }
        tar::EntryType::Fifo => {
            clear(&target, false)?;
            nix::unistd::mkfifo(&target, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map_err(|e| io(e.into()))?;
        }
        tar::EntryType::Char | tar::EntryType::Block => {
            tracing::warn!(path = %raw, "skipping device node in layer");
            return Ok(0);
        }
        other => {
            tracing::debug!(path = %raw, kind = ?other, "skipping tar entry");
            return Ok(0);
        }
    }

    // Extended attributes travel as PAX records (SCHILY.xattr.NAME); a symlink gets
    // none, so nothing is ever set through one.
    let pax = if kind == tar::EntryType::Symlink {
        None
    } else {
        entry.pax_extensions().ok().flatten()
    };
    if let Some(exts) = pax {
        for ext in exts.flatten() {
            if let Some(key) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                if let Err(e) = xattr::set(&target, key, ext.value_bytes()) {
                    tracing::debug!(path = %raw, key, error = %e, "cannot set xattr");
                }
            }
        }
    }
    if uid.is_some() || gid.is_some() {
        let _ = std::os::unix::fs::lchown(&target, uid, gid);
    }
    if kind != tar::EntryType::Symlink {
        // chown clears setuid bits, so the mode comes after it.
        fs::set_permissions(&target, fs::Permissions::from_mode(mode)).map_err(io)?;
    }
    if kind != tar::EntryType::Directory {
        let _ = filetime::set_symlink_file_times(&target, mtime, mtime);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // set_path refuses "..", so the raw name is written for hostile entries.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn link(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, path: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_path(path).unwrap();
        h.set_link_name(target).unwrap();
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
    }

    #[test]
    fn unpacks_and_hashes() {
        let data = tar_with(|b| file(b, "etc/hosts", b"127.0.0.1 x\n"));
        let dir = tempfile::tempdir().unwrap();
        let u = unpack_layer(&data[..], dir.path()).unwrap();
        assert_eq!(u.diff_id, crate::content::sha256_digest(&data));
        assert_eq!(
            fs::read(dir.path().join("etc/hosts")).unwrap(),
            b"127.0.0.1 x\n"
        );
    }

    #[test]
    fn gzip_and_zstd_are_detected() {
        let data = tar_with(|b| file(b, "a", b"x"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &data).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&data[..], 1).unwrap();
        for (bytes, kind) in [(gz, Compression::Gzip), (zst, Compression::Zstd)] {
            let dir = tempfile::tempdir().unwrap();
            let u = unpack_layer(&bytes[..], dir.path()).unwrap();
            assert_eq!(u.compression, kind);
            assert_eq!(u.diff_id, crate::content::sha256_digest(&data));
        }
    }

    #[test]
    fn dotdot_is_rejected() {
        let data = tar_with(|b| file(b, "../evil", b"x"));
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("fs");
        fs::create_dir(&inner).unwrap();
        let err = unpack_layer(&data[..], &inner).unwrap_err();
        assert!(matches!(err, Error::Escape { .. }), "{err}");
        assert!(!dir.path().join("evil").exists());
    }

    #[test]
    fn symlink_parent_is_rejected() {
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().display().to_string();
        let data = tar_with(|b| {
            link(b, tar::EntryType::Symlink, "out", &target);
            file(b, "out/evil", b"x");
        });
        let dir = tempfile::tempdir().unwrap();
        let err = unpack_layer(&data[..], dir.path()).unwrap_err();
        assert!(matches!(err, Error::Escape { .. }), "{err}");
        assert!(!outside.path().join("evil").exists());
    }

    #[test]
    fn hardlink_outside_is_rejected() {
        let data = tar_with(|b| link(b, tar::EntryType::Link, "passwd", "/etc/passwd"));
        let dir = tempfile::tempdir().unwrap();
        let err = unpack_layer(&data[..], dir.path()).unwrap_err();
        assert!(matches!(err, Error::Escape { .. }), "{err}");
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        let data = tar_with(|b| {
            file(b, "etc/.wh.gone", b"");
            file(b, "var/.wh..wh..opq", b"");
        });
        let dir = tempfile::tempdir().unwrap();
        unpack_layer(&data[..], dir.path()).unwrap();
        let m = fs::symlink_metadata(dir.path().join("etc/gone")).unwrap();
        assert!(m.file_type().is_char_device());
        assert_eq!(std::os::unix::fs::MetadataExt::rdev(&m), 0);
        // trusted.* xattrs need CAP_SYS_ADMIN; tests run as root here.
        let v = xattr::get(dir.path().join("var"), "trusted.overlay.opaque").unwrap();
        assert_eq!(v.as_deref(), Some(&b"y"[..]));
    }

    #[test]
    fn whiteout_of_parent_is_rejected() {
        let data = tar_with(|b| file(b, ".wh...", b""));
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("fs");
        fs::create_dir(&inner).unwrap();
        fs::write(dir.path().join("keep"), b"x").unwrap();
        let err = unpack_layer(&data[..], &inner).unwrap_err();
        assert!(matches!(err, Error::Escape { .. }), "{err}");
        assert!(dir.path().join("keep").exists());
        assert!(inner.exists());
    }

    #[test]
    fn broken_tar_fails() {
        let mut data = tar_with(|b| file(b, "a", &[7u8; 4000]));
        data.truncate(1000);
        let dir = tempfile::tempdir().unwrap();
        assert!(unpack_layer(&data[..], dir.path()).is_err());
    }
}
