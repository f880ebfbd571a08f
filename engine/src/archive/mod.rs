//! Layer tarballs: compression sniffing, hashing, and unpacking into a snapshot
//! directory through berth-fs's unpacker with the layer policy
//! ([`berth_fs::untar::Options::layer`]): entries with `..` or absolute names are
//! refused, nothing is written through a symlink, hard links only name entries of the
//! layer, device nodes are skipped, and OCI/Docker whiteouts become overlayfs whiteouts
//! (char 0:0) and opaque directories (`trusted.overlay.opaque=y`), so that a snapshot
//! can be an overlay lowerdir.

use crate::content::Digest;
use berth_fs::untar;
use berth_fs::{Refusal, Root};
use sha2::{Digest as _, Sha256};
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// Errors while reading or unpacking a layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The stream is not a readable tar (or its compression is broken).
    #[error("broken layer archive: {0}")]
    Broken(io::Error),
    /// An entry would land outside the snapshot, or through a link.
    #[error("layer entry {path:?} escapes the snapshot: {why}")]
    Escape {
        /// The entry's path as written in the tar.
        path: String,
        /// What makes it unsafe.
        why: Refusal,
    },
    /// Creating a file, directory or link failed.
    #[error("unpacking the layer: {0}")]
    Unpack(berth_fs::Error),
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
    let root = Root::open(dest).map_err(Error::Unpack)?;
    let made =
        untar::unpack(&root, "/", &mut hashing, &untar::Options::layer()).map_err(|e| match e {
            berth_fs::Error::Tar { source } => Error::Broken(source),
            berth_fs::Error::Refused { entry, why } => Error::Escape { path: entry, why },
            e => Error::Unpack(e),
        })?;
    // The diff ID covers the whole stream, the end-of-archive padding included.
    let (diff_id, _) = hashing.finish().map_err(Error::Broken)?;
    Ok(Unpacked {
        diff_id,
        compression,
        size: made.bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

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

    /// The hostile archives are berth-fs's tests; this one shows the layer policy is
    /// the one applied, and how its refusal reads.
    #[test]
    fn dotdot_is_rejected() {
        let data = tar_with(|b| file(b, "../evil", b"x"));
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("fs");
        fs::create_dir(&inner).unwrap();
        let err = unpack_layer(&data[..], &inner).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Escape {
                    why: Refusal::DotDot,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "layer entry \"../evil\" escapes the snapshot: contains .."
        );
        assert!(!dir.path().join("evil").exists());
    }

    #[test]
    fn broken_tar_fails() {
        let mut data = tar_with(|b| file(b, "a", &[7u8; 4000]));
        data.truncate(1000);
        let dir = tempfile::tempdir().unwrap();
        assert!(unpack_layer(&data[..], dir.path()).is_err());
    }
}
