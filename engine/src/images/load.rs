//! `docker load`: archives in Docker's legacy layout (`manifest.json` naming config and
//! layer tars) and OCI image layouts (`index.json` + `blobs/`), compressed or not.
//!
//! The archive is unpacked by berth-fs's unpacker (plain files and directories, names
//! as dockerd takes them, nothing written through a symlink) into a private directory,
//! and every file it names is then opened through berth-fs's resolver inside that
//! directory: a name with `..`, an absolute name or a symlink in the archive (dockerd's
//! own saves link repeated layers) resolves inside it or not at all.

use super::pull::{config_diff_ids, is_index, parse_manifest, pick_platform, BlobDesc, Platform};
use super::reference::Reference;
use super::store::{ImageRecord, LayerRecord};
use super::{Error, ImageService, Result};
use crate::archive::{self, Compression};
use crate::content::Digest;
use crate::progress::Progress;
use crate::snapshots::chain_ids;
use berth_fs::untar;
use berth_fs::Root;
use nix::fcntl::OFlag;
use serde::Deserialize;
use serde_json::json;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::fd::AsRawFd;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LegacyEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Largest JSON file of an archive read into memory (manifests, indexes, configs).
const MAX_JSON: u64 = 64 << 20;

/// The unpacked archive: files are only ever opened through [`Archive::file`].
struct Archive {
    root: Root,
    /// Layer files already stored (an archive may name one file for several layers,
    /// or several images may share a layer), by (device, inode) of the file.
    adopted: RefCell<HashMap<(u64, u64), (Digest, u64)>>,
}

fn missing(rel: &str) -> Error {
    Error::Invalid(format!(
        "invalid archive: {rel} is missing or outside the archive"
    ))
}

impl Archive {
    /// Opens a regular file of the archive, resolved inside it. O_NONBLOCK and
    /// O_NOCTTY: nothing but a regular file is read, and opening something else must
    /// not hang.
    fn file(&self, rel: &str) -> Result<File> {
        let fd = self
            .root
            .resolve(rel, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)
            .map_err(|_| missing(rel))?;
        let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(|_| missing(rel))?;
        if berth_fs::root::kind(&st) != libc::S_IFREG {
            return Err(missing(rel));
        }
        Ok(File::from(fd))
    }

    fn read(&self, rel: &str) -> Result<Vec<u8>> {
        match self.root.read_file(rel, MAX_JSON) {
            Ok(Some(data)) => Ok(data),
            Ok(None) => Err(missing(rel)),
            Err(berth_fs::Error::TooLarge { .. }) => Err(Error::Invalid(format!(
                "invalid archive: {rel} is larger than {MAX_JSON} bytes"
            ))),
            Err(_) => Err(missing(rel)),
        }
    }

    fn exists(&self, rel: &str) -> bool {
        self.file(rel).is_ok()
    }
}

/// The diff ID the image config wants for this layer, and where it lives.
struct LayerSource<'a> {
    file: File,
    expected: Option<&'a BlobDesc>,
    diff_id: &'a Digest,
    chain: &'a Digest,
    parent: Option<&'a Digest>,
}

impl ImageService {
    /// Loads every image of an archive stream (blocking), reporting what it loaded.
    pub fn load(&self, reader: impl Read, progress: &Progress) -> Result<()> {
        // Unpacked under the data root, so layer files can be renamed into the store.
        let work = tempfile::Builder::new()
            .prefix("load-")
            .tempdir_in(self.tmp_dir())
            .map_err(Error::io("create temp dir"))?;
        let (_, plain) = archive::decompress(reader)
            .map_err(|e| Error::Invalid(format!("invalid archive: {e}")))?;
        let root =
            Root::open(work.path()).map_err(|e| Error::Invalid(format!("invalid archive: {e}")))?;
        untar::unpack(&root, "/", plain, &untar::Options::files())
            .map_err(|e| Error::Invalid(format!("invalid archive: {e}")))?;
        let a = Archive {
            root,
            adopted: RefCell::new(HashMap::new()),
        };
        if a.exists("manifest.json") {
            self.load_legacy(&a, progress)
        } else if a.exists("index.json") {
            self.load_oci(&a, progress)
        } else {
            Err(Error::Invalid(
                "invalid archive: neither manifest.json nor index.json found".into(),
            ))
        }
    }

    fn load_legacy(&self, a: &Archive, progress: &Progress) -> Result<()> {
        let entries: Vec<LegacyEntry> = serde_json::from_slice(&a.read("manifest.json")?)
            .map_err(|e| Error::Invalid(format!("invalid manifest.json: {e}")))?;
        for e in entries {
            let config = a.read(&e.config)?;
            let config_digest = self.content.write_all(&config, None)?;
            let diff_ids = config_diff_ids(&config)?;
            if diff_ids.len() != e.layers.len() {
                return Err(Error::Invalid(format!(
                    "invalid manifest.json: config lists {} layers, manifest {}",
                    diff_ids.len(),
                    e.layers.len()
                )));
            }
            let chains = chain_ids(&diff_ids);
            let mut layers = Vec::new();
            for (i, l) in e.layers.iter().enumerate() {
                layers.push(self.load_layer(
                    a,
                    LayerSource {
                        file: a.file(l)?,
                        expected: None,
                        diff_id: &diff_ids[i],
                        chain: &chains[i],
                        parent: i.checked_sub(1).map(|p| &chains[p]),
                    },
                )?);
            }
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": config.len(),
                    "digest": config_digest,
                },
                "layers": layers.iter().map(|l| json!({
                    "mediaType": l.media_type, "size": l.size, "digest": l.digest,
                })).collect::<Vec<_>>(),
            });
            let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
            let manifest_digest = self.content.write_all(&bytes, None)?;
            let tags = e
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| Reference::parse_with_default_tag(t))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let rec = ImageRecord {
                id: config_digest,
                manifest: manifest_digest,
                manifest_media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
                index: None,
                layers,
                last_tag_time: super::now_rfc3339(),
                parent: None,
            };
            self.finish_load(&rec, &tags, progress)?;
        }
        Ok(())
    }

    fn load_oci(&self, a: &Archive, progress: &Progress) -> Result<()> {
        let index: serde_json::Value = serde_json::from_slice(&a.read("index.json")?)
            .map_err(|e| Error::Invalid(format!("invalid index.json: {e}")))?;
        let empty = Vec::new();
        let manifests = index["manifests"].as_array().unwrap_or(&empty);
        if manifests.is_empty() {
            return Err(Error::Invalid("invalid index.json: no manifests".into()));
        }
        let blob_path = |d: &Digest| format!("blobs/sha256/{}", d.hex());
        for m in manifests {
            let digest = m["digest"]
                .as_str()
                .and_then(|d| Digest::parse(d).ok())
                .ok_or_else(|| Error::Invalid("invalid index.json: bad digest".into()))?;
            let media_type = m["mediaType"].as_str().unwrap_or_default().to_string();
            let mut bytes = a.read(&blob_path(&digest))?;
            let mut manifest_digest = self.content.write_all(&bytes, Some(&digest))?;
            let mut manifest_media_type = media_type.clone();
            if is_index(&media_type, &bytes) {
                let chosen = pick_platform(&bytes, &Platform::host())?;
                bytes = a.read(&blob_path(&chosen.digest))?;
                manifest_digest = self.content.write_all(&bytes, Some(&chosen.digest))?;
                manifest_media_type = chosen.media_type;
            }
            let (config_desc, layer_descs) = parse_manifest(&bytes)?;
            let config = a.read(&blob_path(&config_desc.digest))?;
            let config_digest = self.content.write_all(&config, Some(&config_desc.digest))?;
            let diff_ids = config_diff_ids(&config)?;
            if diff_ids.len() != layer_descs.len() {
                return Err(Error::Invalid(
                    "image config and manifest disagree on layers".into(),
                ));
            }
            let chains = chain_ids(&diff_ids);
            let mut layers = Vec::new();
            for (i, l) in layer_descs.iter().enumerate() {
                layers.push(self.load_layer(
                    a,
                    LayerSource {
                        file: a.file(&blob_path(&l.digest))?,
                        expected: Some(l),
                        diff_id: &diff_ids[i],
                        chain: &chains[i],
                        parent: i.checked_sub(1).map(|p| &chains[p]),
                    },
                )?);
            }
            let name = m["annotations"]["io.containerd.image.name"]
                .as_str()
                .or_else(|| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
                .filter(|n| n.contains('/') || n.contains(':'));
            let tags = name
                .map(Reference::parse_with_default_tag)
                .transpose()?
                .into_iter()
                .collect::<Vec<_>>();
            let rec = ImageRecord {
                id: config_digest,
                manifest: manifest_digest,
                manifest_media_type: if manifest_media_type.is_empty() {
                    "application/vnd.oci.image.manifest.v1+json".into()
                } else {
                    manifest_media_type
                },
                index: None,
                layers,
                last_tag_time: super::now_rfc3339(),
                parent: None,
            };
            self.finish_load(&rec, &tags, progress)?;
        }
        Ok(())
    }

    fn finish_load(
        &self,
        rec: &ImageRecord,
        tags: &[Reference],
        progress: &Progress,
    ) -> Result<()> {
        self.commit_image(rec, tags, &[])?;
        if tags.is_empty() {
            progress.stream(format!("Loaded image ID: {}\n", rec.id));
        }
        for t in tags {
            progress.stream(format!("Loaded image: {}\n", t.familiar()));
        }
        Ok(())
    }

    /// Stores a layer file as a blob and unpacks its snapshot if missing.
    fn load_layer(&self, a: &Archive, src: LayerSource<'_>) -> Result<LayerRecord> {
        let st = nix::sys::stat::fstat(src.file.as_raw_fd())
            .map_err(|e| Error::io("stat layer")(e.into()))?;
        let key = (st.st_dev, st.st_ino);
        let known = a.adopted.borrow().get(&key).cloned();
        let (digest, size) = match known {
            Some(d) => d,
            None => {
                let d = self
                    .content
                    .adopt_file(&src.file, src.expected.map(|e| &e.digest))?;
                a.adopted.borrow_mut().insert(key, d.clone());
                d
            }
        };
        if let Some(e) = src.expected {
            if e.digest != digest {
                return Err(Error::Invalid(format!(
                    "layer {} has the digest {digest}",
                    e.digest
                )));
            }
        }
        if let Some(e) = src.expected {
            if e.size != size {
                return Err(Error::Invalid(format!(
                    "layer {} has {size} bytes, its manifest says {}",
                    e.digest, e.size
                )));
            }
        }
        let mut head = [0u8; 4];
        let n = self
            .content
            .open_blob(&digest)?
            .read(&mut head)
            .map_err(Error::io("read layer"))?;
        let compression = Compression::detect(&head[..n]);
        let unpacked_size = if self.snapshots.exists(src.chain) {
            self.snapshots.usage(src.chain)
        } else {
            self.snapshots.unpack(
                src.chain,
                src.parent,
                src.diff_id,
                BufReader::new(self.content.open_blob(&digest)?),
            )?
        };
        Ok(LayerRecord {
            digest,
            media_type: src
                .expected
                .map(|e| e.media_type.clone())
                .unwrap_or_else(|| compression.layer_media_type().to_string()),
            size,
            diff_id: src.diff_id.clone(),
            unpacked_size,
        })
    }
}
