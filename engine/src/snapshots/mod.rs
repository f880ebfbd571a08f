//! Snapshots: unpacked layers under `<data-root>/snapshots/<chain-id-hex>/fs`, each one
//! holding only its own layer's changes (overlayfs whiteouts included), so that an
//! image's rootfs is an overlay of its snapshots' `fs` directories. Keyed by chain ID,
//! a snapshot is shared by every image whose layers up to it are the same.
//!
//! A snapshot appears by one rename of a fully unpacked, synced temp directory: after a
//! crash a snapshot is either complete or absent.

use crate::archive;
use crate::content::{sha256_digest, Digest};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Errors of the snapshot store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Unpacking the layer failed.
    #[error(transparent)]
    Archive(#[from] archive::Error),
    /// The unpacked tar does not hash to the diff ID the image config names.
    #[error("layer content does not match its diff ID: expected {expected}, got {actual}")]
    DiffIdMismatch {
        /// diff ID from the image config.
        expected: Digest,
        /// sha256 of the tar received.
        actual: Digest,
    },
    /// A filesystem operation failed.
    #[error("snapshots: {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// A layer unpacked into a temp directory, not yet published.
pub struct Prepared {
    work: tempfile::TempDir,
    /// Bytes of file content unpacked.
    pub size: u64,
    /// Compression the layer stream had.
    pub compression: archive::Compression,
}

impl Prepared {
    /// The directory that becomes the snapshot's `fs`: a layer is written here (as an
    /// overlay upper directory) before it is committed.
    pub fn fs_dir(&self) -> PathBuf {
        self.work.path().join("fs")
    }

    /// An empty directory beside [`Prepared::fs_dir`], on the same file system, for
    /// overlayfs's `workdir`; removed at commit.
    pub fn work_dir(&self) -> PathBuf {
        self.work.path().join("work")
    }

    /// Sets the bytes of file content the snapshot holds (measured while storing it).
    pub fn set_size(&mut self, size: u64) {
        self.size = size;
    }
}

/// Result type of the snapshot store.
pub type Result<T> = std::result::Result<T, Error>;

/// Chain IDs of a stack of layers, per the OCI image spec:
/// `chain(0) = diff(0)`, `chain(n) = sha256(chain(n-1) + " " + diff(n))`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => sha256_digest(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// The directory of snapshots.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    root: PathBuf,
    tmp: PathBuf,
}

impl SnapshotStore {
    /// Opens (creating if needed) the store, dropping half-unpacked leftovers.
    pub fn open(root: &Path) -> Result<Self> {
        let tmp = root.join(".tmp");
        let io = |op, path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { op, path, source }
        };
        fs::create_dir_all(root).map_err(io("create", root))?;
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(io("create", &tmp))?;
        Ok(Self {
            root: root.to_path_buf(),
            tmp,
        })
    }

    /// Directory of a snapshot (whether or not it exists).
    pub fn dir(&self, chain_id: &Digest) -> PathBuf {
        self.root.join(chain_id.hex())
    }

    /// The overlay lowerdir of a snapshot.
    pub fn fs_path(&self, chain_id: &Digest) -> PathBuf {
        self.dir(chain_id).join("fs")
    }

    /// True if the snapshot is complete.
    pub fn exists(&self, chain_id: &Digest) -> bool {
        self.fs_path(chain_id).is_dir()
    }

    /// Unpacks a layer stream into the snapshot `chain_id`, checking its diff ID.
    /// Returns the bytes of file content unpacked.
    pub fn unpack<R: Read>(
        &self,
        chain_id: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
        reader: R,
    ) -> Result<u64> {
        let prepared = self.prepare(diff_id, reader)?;
        self.commit(prepared, chain_id, parent)
    }

    /// Unpacks a layer into a temp directory and checks its diff ID; nothing is visible
    /// until [`SnapshotStore::commit`], and dropping the result removes it.
    pub fn prepare<R: Read>(&self, diff_id: &Digest, reader: R) -> Result<Prepared> {
        let work = tempfile::Builder::new()
            .prefix("unpack-")
            .tempdir_in(&self.tmp)
            .map_err(|source| Error::Io {
                op: "create temp dir in",
                path: self.tmp.clone(),
                source,
            })?;
        let fs_dir = work.path().join("fs");
        fs::create_dir(&fs_dir).map_err(|source| Error::Io {
            op: "create",
            path: fs_dir.clone(),
            source,
        })?;
        let unpacked = archive::unpack_layer(reader, &fs_dir)?;
        if unpacked.diff_id != *diff_id {
            return Err(Error::DiffIdMismatch {
                expected: diff_id.clone(),
                actual: unpacked.diff_id,
            });
        }
        Ok(Prepared {
            work,
            size: unpacked.size,
            compression: unpacked.compression,
        })
    }

    fn temp(&self) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix("unpack-")
            .tempdir_in(&self.tmp)
            .map_err(|source| Error::Io {
                op: "create temp dir in",
                path: self.tmp.clone(),
                source,
            })
    }

    /// An empty snapshot to write a layer into (see [`Prepared::fs_dir`]); nothing is
    /// visible until [`SnapshotStore::commit`], and dropping it removes it.
    pub fn prepare_empty(&self) -> Result<Prepared> {
        let work = self.temp()?;
        for d in ["fs", "work"] {
            let p = work.path().join(d);
            fs::create_dir(&p).map_err(|source| Error::Io {
                op: "create",
                path: p,
                source,
            })?;
        }
        Ok(Prepared {
            work,
            size: 0,
            compression: archive::Compression::None,
        })
    }

    /// Takes an existing layer directory (a finished container's upper directory, on
    /// the same file system) as a prepared snapshot, by renaming it.
    pub fn adopt_dir(&self, dir: &Path) -> Result<Prepared> {
        let work = self.temp()?;
        let dest = work.path().join("fs");
        fs::rename(dir, &dest).map_err(|source| Error::Io {
            op: "move into",
            path: dest,
            source,
        })?;
        Ok(Prepared {
            work,
            size: 0,
            compression: archive::Compression::None,
        })
    }

    /// Publishes a prepared snapshot under its chain ID. Returns its unpacked size.
    pub fn commit(
        &self,
        prepared: Prepared,
        chain_id: &Digest,
        parent: Option<&Digest>,
    ) -> Result<u64> {
        let work = prepared.work;
        // overlayfs's work directory (of a layer written through an overlay) goes.
        let _ = fs::remove_dir_all(work.path().join("work"));
        let io = |op, path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { op, path, source }
        };
        let parent_file = work.path().join("parent");
        let parent_text = parent.map(|p| p.to_string()).unwrap_or_default();
        fs::write(&parent_file, parent_text).map_err(io("write", &parent_file))?;
        let size_file = work.path().join("size");
        fs::write(&size_file, prepared.size.to_string()).map_err(io("write", &size_file))?;
        // One syncfs makes every unpacked file durable before the rename publishes them.
        if let Ok(d) = fs::File::open(work.path()) {
            let _ = nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&d));
        }
        let dest = self.dir(chain_id);
        let work = work.keep();
        match fs::rename(&work, &dest) {
            Ok(()) => {}
            // Another pull unpacked the same layer first: keep theirs.
            Err(_) if self.exists(chain_id) => {
                let _ = fs::remove_dir_all(&work);
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&work);
                return Err(Error::Io {
                    op: "rename into",
                    path: dest,
                    source: e,
                });
            }
        }
        Ok(prepared.size)
    }

    /// Bytes of file content in a snapshot.
    pub fn usage(&self, chain_id: &Digest) -> u64 {
        if let Some(n) = fs::read_to_string(self.dir(chain_id).join("size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return n;
        }
        crate::disk_usage::disk_usage(&self.fs_path(chain_id))
    }

    /// Removes a snapshot; a missing one is not an error.
    pub fn remove(&self, chain_id: &Digest) -> Result<()> {
        let dir = self.dir(chain_id);
        // Rename first so a crash mid-delete never leaves a half snapshot under its name.
        let doomed = self.tmp.join(format!("rm-{}", chain_id.hex()));
        match fs::rename(&dir, &doomed) {
            Ok(()) => fs::remove_dir_all(&doomed).map_err(|source| Error::Io {
                op: "remove",
                path: doomed,
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io {
                op: "remove",
                path: dir,
                source,
            }),
        }
    }

    /// Chain IDs of all complete snapshots.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let rd = fs::read_dir(&self.root).map_err(|source| Error::Io {
            op: "list",
            path: self.root.clone(),
            source,
        })?;
        Ok(rd
            .flatten()
            .filter_map(|e| Digest::parse(&format!("sha256:{}", e.file_name().to_str()?)).ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = sha256_digest(b"a");
        let b = sha256_digest(b"b");
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], sha256_digest(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn wrong_diff_id_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_path("x").unwrap();
        h.set_size(1);
        h.set_cksum();
        b.append(&h, &b"1"[..]).unwrap();
        let data = b.into_inner().unwrap();
        let wrong = sha256_digest(b"nope");
        let err = store.unpack(&wrong, None, &wrong, &data[..]).unwrap_err();
        assert!(matches!(err, Error::DiffIdMismatch { .. }));
        assert!(store.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.path().join(".tmp")).unwrap().count(), 0);
        let right = sha256_digest(&data);
        store.unpack(&right, None, &right, &data[..]).unwrap();
        assert!(store.exists(&right));
    }
}
