//! Content store: OCI blobs addressed by digest under `<data-root>/content`.
//!
//! Every blob is hashed while it is written into `ingest/` and only renamed into
//! `blobs/sha256/` once its digest (and size, when known) match, after an fsync: a crash
//! or a wrong digest never leaves a blob under a name it does not hash to.

mod digest;

pub use digest::{sha256_digest, Digest, DigestError};

use sha2::{Digest as _, Sha256};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// Errors of the content store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The blob is not in the store.
    #[error("blob {0} not found in the content store")]
    NotFound(Digest),
    /// The bytes written hash to another digest than the one expected.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Digest the caller announced.
        expected: Digest,
        /// Digest of the bytes received.
        actual: Digest,
    },
    /// The bytes written are not as many as announced.
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// Digest the caller announced.
        digest: Digest,
        /// Size the caller announced.
        expected: u64,
        /// Bytes received.
        actual: u64,
    },
    /// A filesystem operation failed.
    #[error("content store: {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// Result type of the content store.
pub type Result<T> = std::result::Result<T, Error>;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// A directory of blobs addressed by digest.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) the store under `root`, dropping leftovers of
    /// interrupted writes.
    pub fn open(root: &Path) -> Result<Self> {
        let blobs = root.join("blobs").join("sha256");
        let ingest = root.join("ingest");
        fs::create_dir_all(&blobs).map_err(io_err("create", &blobs))?;
        // Anything in ingest/ belongs to a writer that died with a previous daemon.
        let _ = fs::remove_dir_all(&ingest);
        fs::create_dir_all(&ingest).map_err(io_err("create", &ingest))?;
        Ok(Self { blobs, ingest })
    }

    /// Path of the blob with this digest (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    /// Size of the blob, if present.
    pub fn size(&self, digest: &Digest) -> Option<u64> {
        fs::metadata(self.path(digest)).ok().map(|m| m.len())
    }

    /// True if the blob is present.
    pub fn exists(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Reads a whole (small) blob into memory.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.path(digest);
        fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound(digest.clone()),
            _ => Error::Io {
                op: "read",
                path,
                source: e,
            },
        })
    }

    /// Opens a blob for streaming.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound(digest.clone()),
            _ => Error::Io {
                op: "open",
                path,
                source: e,
            },
        })
    }

    /// Starts writing a new blob.
    pub fn writer(&self) -> Result<Writer> {
        let file =
            NamedTempFile::new_in(&self.ingest).map_err(io_err("create in", &self.ingest))?;
        Ok(Writer {
            file,
            hasher: Sha256::new(),
            written: 0,
            blobs: self.blobs.clone(),
        })
    }

    /// Writes a whole blob from memory, checking it against `expected` when given.
    pub fn write_all(&self, bytes: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        if let Some(d) = expected {
            if self.exists(d) && sha256_digest(bytes) == *d {
                return Ok(d.clone());
            }
        }
        let mut w = self.writer()?;
        w.write_all(bytes).map_err(io_err("write", &self.ingest))?;
        w.commit(expected, Some(bytes.len() as u64))
    }

    /// Takes an open regular file already on this filesystem (one of an archive being
    /// loaded, reached through berth-fs's resolver) as a blob without copying it:
    /// hashes it, checks it against `expected` when given, fsyncs it and links that
    /// very inode into place, so that what was hashed is what is stored. The file's
    /// own name is left alone (another image of the archive may name it too).
    pub fn adopt_file(&self, file: &File, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        use std::io::Seek;
        let path = Path::new("archive file");
        let mut f = file;
        f.seek(io::SeekFrom::Start(0))
            .map_err(io_err("seek", path))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1024 * 1024];
        let mut size = 0u64;
        loop {
            let n = io::Read::read(&mut f, &mut buf).map_err(io_err("read", path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        let actual = Digest::from_sha256(hasher.finalize().into());
        if let Some(exp) = expected {
            if *exp != actual {
                return Err(Error::DigestMismatch {
                    expected: exp.clone(),
                    actual,
                });
            }
        }
        let dest = self.path(&actual);
        if dest.exists() {
            return Ok((actual, size));
        }
        file.sync_all().map_err(io_err("fsync", path))?;
        let _ = nix::sys::stat::fchmod(
            std::os::fd::AsRawFd::as_raw_fd(file),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        );
        // The descriptor's /proc entry names the inode itself, not a path that could
        // have changed since it was opened.
        let fd_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(file));
        match nix::unistd::linkat(
            None,
            Path::new(&fd_path),
            None,
            &dest,
            nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
        ) {
            // Stored meanwhile by another pull or load: the same content.
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(nix::errno::Errno::EXDEV) => {
                // Not on this filesystem after all: copied.
                f.seek(io::SeekFrom::Start(0))
                    .map_err(io_err("seek", path))?;
                let mut w = self.writer()?;
                io::copy(&mut f, &mut w).map_err(io_err("copy", path))?;
                w.commit(Some(&actual), Some(size))?;
                return Ok((actual, size));
            }
            Err(e) => return Err(io_err("link into", &dest)(e.into())),
        }
        if let Ok(dir) = File::open(&self.blobs) {
            let _ = dir.sync_all();
        }
        Ok((actual, size))
    }

    /// Removes a blob; a missing blob is not an error.
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::Io {
                op: "remove",
                path,
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Lists the digests of all blobs.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.blobs).map_err(io_err("list", &self.blobs))? {
            let entry = entry.map_err(io_err("list", &self.blobs))?;
            if let Some(name) = entry.file_name().to_str() {
                if let Ok(d) = Digest::parse(&format!("sha256:{name}")) {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }
}

/// A blob being written: hashed as it goes, published by [`Writer::commit`].
/// Dropping it without committing removes the temp file.
pub struct Writer {
    file: NamedTempFile,
    hasher: Sha256,
    written: u64,
    blobs: PathBuf,
}

impl Writer {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Verifies digest and size, fsyncs, and renames the blob into place.
    pub fn commit(self, expected: Option<&Digest>, expected_size: Option<u64>) -> Result<Digest> {
        let actual = Digest::from_sha256(self.hasher.finalize().into());
        if let Some(exp) = expected {
            if *exp != actual {
                return Err(Error::DigestMismatch {
                    expected: exp.clone(),
                    actual,
                });
            }
        }
        if let Some(size) = expected_size {
            if size != self.written {
                return Err(Error::SizeMismatch {
                    digest: actual,
                    expected: size,
                    actual: self.written,
                });
            }
        }
        let tmp = self.file.path().to_path_buf();
        self.file
            .as_file()
            .sync_all()
            .map_err(io_err("fsync", &tmp))?;
        let dest = self.blobs.join(actual.hex());
        self.file.persist(&dest).map_err(|e| Error::Io {
            op: "rename into",
            path: dest.clone(),
            source: e.error,
        })?;
        // The rename is durable only once the directory entry is.
        if let Ok(dir) = File::open(&self.blobs) {
            let _ = dir.sync_all();
        }
        Ok(actual)
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_digest_is_rejected_and_nothing_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let wrong = sha256_digest(b"other");
        let err = store.write_all(b"hello", Some(&wrong)).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }));
        assert!(store.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn blob_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let d = store.write_all(b"hello", None).unwrap();
        assert_eq!(d, sha256_digest(b"hello"));
        assert_eq!(store.read(&d).unwrap(), b"hello");
        assert_eq!(store.list().unwrap(), vec![d.clone()]);
        store.delete(&d).unwrap();
        assert!(!store.exists(&d));
    }
}
