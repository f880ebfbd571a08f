//! Image metadata in an embedded, crash-safe redb database: image records, tags, repo
//! digests, and where blobs were last seen (for cross-repository mounts on push).

use crate::content::Digest;
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::Path;

const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
const TAGS: TableDefinition<&str, &str> = TableDefinition::new("tags");
const DIGESTS: TableDefinition<&str, &str> = TableDefinition::new("repo_digests");
const SOURCES: TableDefinition<&str, &str> = TableDefinition::new("blob_sources");
/// Build cache: the key of a build step (its parent image and what it did) → the image
/// it made. The images are ordinary images; this only finds them.
const BUILD_CACHE: TableDefinition<&str, &str> = TableDefinition::new("build_cache");

/// Errors of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed.
    #[error("metadata store: {0}")]
    Db(Box<redb::Error>),
    /// A stored record does not decode.
    #[error("metadata store: corrupt record {key}: {source}")]
    Corrupt {
        /// Key of the record.
        key: String,
        /// Decoding error.
        source: serde_json::Error,
    },
}

/// Result type of the metadata store.
pub type Result<T> = std::result::Result<T, Error>;

fn db<E: Into<redb::Error>>(e: E) -> Error {
    // Boxed: redb's error is large and would bloat every Result on the happy path.
    Error::Db(Box::new(e.into()))
}

/// One layer of an image as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the blob as distributed (compressed or not).
    pub digest: Digest,
    /// Media type of the blob.
    pub media_type: String,
    /// Size of the blob.
    pub size: u64,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Bytes of file content once unpacked.
    #[serde(default)]
    pub unpacked_size: u64,
}

/// An image: its config, its manifest and its layers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Image ID: the digest of its config.
    pub id: Digest,
    /// Digest of its (single-platform) manifest.
    pub manifest: Digest,
    /// Media type of that manifest.
    pub manifest_media_type: String,
    /// The index the manifest was picked from, when pulled from one.
    #[serde(default)]
    pub index: Option<Digest>,
    /// Layers, base first.
    pub layers: Vec<LayerRecord>,
    /// When it was last tagged here (RFC 3339).
    #[serde(default)]
    pub last_tag_time: String,
    /// The image it was built or committed on, if it was made here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Digest>,
}

impl ImageRecord {
    /// Every blob the image needs.
    pub fn blobs(&self) -> impl Iterator<Item = &Digest> {
        [&self.id, &self.manifest]
            .into_iter()
            .chain(self.index.iter())
            .chain(self.layers.iter().map(|l| &l.digest))
    }

    /// Diff IDs of its layers.
    pub fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }

    /// Sum of the unpacked sizes of its layers.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.unpacked_size).sum()
    }
}

/// The metadata database.
pub struct MetaStore {
    db: redb::Database,
}

impl MetaStore {
    /// Opens or creates the database file; fails if another daemon holds it.
    pub fn open(path: &Path) -> Result<Self> {
        let database = redb::Builder::new()
            .set_cache_size(crate::REDB_CACHE_BYTES)
            .create(path)
            .map_err(db)?;
        let tx = database.begin_write().map_err(db)?;
        for t in [TAGS, DIGESTS, SOURCES, BUILD_CACHE] {
            tx.open_table(t).map_err(db)?;
        }
        tx.open_table(IMAGES).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(Self { db: database })
    }

    /// Stores an image and points the given tag and digest references at it, in one
    /// transaction. Returns the IDs the tags pointed to before, if they changed.
    pub fn put_image(
        &self,
        rec: &ImageRecord,
        tags: &[String],
        digests: &[String],
    ) -> Result<Vec<Digest>> {
        self.put_image_cached(rec, tags, digests, None)
    }

    /// As [`MetaStore::put_image`], also recording the image as the build cache entry
    /// of `cache_key`, in the same transaction (a crash keeps both or neither).
    pub fn put_image_cached(
        &self,
        rec: &ImageRecord,
        tags: &[String],
        digests: &[String],
        cache_key: Option<&str>,
    ) -> Result<Vec<Digest>> {
        let tx = self.db.begin_write().map_err(db)?;
        let mut replaced = Vec::new();
        {
            let mut images = tx.open_table(IMAGES).map_err(db)?;
            let bytes = serde_json::to_vec(rec).map_err(|source| Error::Corrupt {
                key: rec.id.to_string(),
                source,
            })?;
            images
                .insert(rec.id.as_str(), bytes.as_slice())
                .map_err(db)?;
            let mut t = tx.open_table(TAGS).map_err(db)?;
            for tag in tags {
                let old = t
                    .insert(tag.as_str(), rec.id.as_str())
                    .map_err(db)?
                    .map(|v| v.value().to_string());
                if let Some(old) = old.and_then(|o| Digest::parse(&o).ok()) {
                    if old != rec.id {
                        replaced.push(old);
                    }
                }
            }
            let mut d = tx.open_table(DIGESTS).map_err(db)?;
            for dg in digests {
                d.insert(dg.as_str(), rec.id.as_str()).map_err(db)?;
            }
            if let Some(key) = cache_key {
                let mut c = tx.open_table(BUILD_CACHE).map_err(db)?;
                c.insert(key, rec.id.as_str()).map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        Ok(replaced)
    }

    /// The image a build step with this key made, if it is still there.
    pub fn cached(&self, key: &str) -> Result<Option<ImageRecord>> {
        let Some(id) = self.get(BUILD_CACHE, key)? else {
            return Ok(None);
        };
        self.image(&id)
    }

    /// Records an existing image as the cache entry of `key` (an image found through
    /// `--cache-from`).
    pub fn set_cached(&self, key: &str, id: &Digest) -> Result<()> {
        let tx = self.db.begin_write().map_err(db)?;
        tx.open_table(BUILD_CACHE)
            .map_err(db)?
            .insert(key, id.as_str())
            .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(())
    }

    /// Images that are some build step's cache entry.
    pub fn cache_entries(&self) -> Result<Vec<Digest>> {
        Ok(self
            .pairs(BUILD_CACHE)?
            .into_iter()
            .map(|(_, d)| d)
            .collect())
    }

    /// The image with this ID.
    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>> {
        let tx = self.db.begin_read().map_err(db)?;
        let t = tx.open_table(IMAGES).map_err(db)?;
        let Some(v) = t.get(id.as_str()).map_err(db)? else {
            return Ok(None);
        };
        serde_json::from_slice(v.value())
            .map(Some)
            .map_err(|source| Error::Corrupt {
                key: id.to_string(),
                source,
            })
    }

    /// All images.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let tx = self.db.begin_read().map_err(db)?;
        let t = tx.open_table(IMAGES).map_err(db)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            out.push(
                serde_json::from_slice(v.value()).map_err(|source| Error::Corrupt {
                    key: k.value().to_string(),
                    source,
                })?,
            );
        }
        Ok(out)
    }

    fn pairs(&self, table: TableDefinition<&str, &str>) -> Result<Vec<(String, Digest)>> {
        let tx = self.db.begin_read().map_err(db)?;
        let t = tx.open_table(table).map_err(db)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            if let Ok(d) = Digest::parse(v.value()) {
                out.push((k.value().to_string(), d));
            }
        }
        Ok(out)
    }

    /// All tags (`domain/path:tag`) and the images they name.
    pub fn tags(&self) -> Result<Vec<(String, Digest)>> {
        self.pairs(TAGS)
    }

    /// All repo digests (`domain/path@sha256:...`) and the images they name.
    pub fn repo_digests(&self) -> Result<Vec<(String, Digest)>> {
        self.pairs(DIGESTS)
    }

    fn get(&self, table: TableDefinition<&str, &str>, key: &str) -> Result<Option<Digest>> {
        let tx = self.db.begin_read().map_err(db)?;
        let t = tx.open_table(table).map_err(db)?;
        let v = t.get(key).map_err(db)?;
        Ok(v.and_then(|v| Digest::parse(v.value()).ok()))
    }

    /// The image a tag names.
    pub fn tag(&self, reference: &str) -> Result<Option<Digest>> {
        self.get(TAGS, reference)
    }

    /// The image a repo digest names.
    pub fn repo_digest(&self, reference: &str) -> Result<Option<Digest>> {
        self.get(DIGESTS, reference)
    }

    /// Points a tag at an image. Returns the image it named before, if another.
    pub fn set_tag(&self, reference: &str, id: &Digest) -> Result<Option<Digest>> {
        let tx = self.db.begin_write().map_err(db)?;
        let old = {
            let mut t = tx.open_table(TAGS).map_err(db)?;
            let old = t.insert(reference, id.as_str()).map_err(db)?;
            old.and_then(|o| Digest::parse(o.value()).ok())
        };
        tx.commit().map_err(db)?;
        Ok(old.filter(|o| o != id))
    }

    /// Removes a tag or repo digest reference. Returns whether it existed.
    pub fn remove_reference(&self, reference: &str) -> Result<bool> {
        let tx = self.db.begin_write().map_err(db)?;
        let existed = {
            let mut t = tx.open_table(TAGS).map_err(db)?;
            let a = t.remove(reference).map_err(db)?.is_some();
            let mut d = tx.open_table(DIGESTS).map_err(db)?;
            let b = d.remove(reference).map_err(db)?.is_some();
            a || b
        };
        tx.commit().map_err(db)?;
        Ok(existed)
    }

    /// Removes an image and every reference to it.
    pub fn remove_image(&self, id: &Digest) -> Result<()> {
        let tags = self.tags()?;
        let digests = self.repo_digests()?;
        let cache = self.pairs(BUILD_CACHE)?;
        let tx = self.db.begin_write().map_err(db)?;
        {
            let mut images = tx.open_table(IMAGES).map_err(db)?;
            images.remove(id.as_str()).map_err(db)?;
            let mut t = tx.open_table(TAGS).map_err(db)?;
            for (k, v) in &tags {
                if v == id {
                    t.remove(k.as_str()).map_err(db)?;
                }
            }
            let mut d = tx.open_table(DIGESTS).map_err(db)?;
            for (k, v) in &digests {
                if v == id {
                    d.remove(k.as_str()).map_err(db)?;
                }
            }
            let mut c = tx.open_table(BUILD_CACHE).map_err(db)?;
            for (k, v) in &cache {
                if v == id {
                    c.remove(k.as_str()).map_err(db)?;
                }
            }
        }
        tx.commit().map_err(db)?;
        Ok(())
    }

    /// Records that `repo` (`domain/path`) holds this blob.
    pub fn add_source(&self, blob: &Digest, repo: &str) -> Result<()> {
        let tx = self.db.begin_write().map_err(db)?;
        tx.open_table(SOURCES)
            .map_err(db)?
            .insert(blob.as_str(), repo)
            .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(())
    }

    /// A repository known to hold this blob.
    pub fn source(&self, blob: &Digest) -> Result<Option<String>> {
        let tx = self.db.begin_read().map_err(db)?;
        let t = tx.open_table(SOURCES).map_err(db)?;
        let v = t.get(blob.as_str()).map_err(db)?;
        Ok(v.map(|v| v.value().to_string()))
    }

    /// Forgets the sources of blobs that are gone.
    pub fn remove_sources(&self, blobs: &[Digest]) -> Result<()> {
        let tx = self.db.begin_write().map_err(db)?;
        {
            let mut t = tx.open_table(SOURCES).map_err(db)?;
            for b in blobs {
                t.remove(b.as_str()).map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        Ok(())
    }
}
