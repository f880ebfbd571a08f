//! `docker save` archives: an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/...`) that also carries Docker's `manifest.json`, as dockerd 25+ writes,
//! so both `docker load` and OCI tools read it.

use super::reference::Reference;
use super::store::ImageRecord;
use super::{ImageService, Result};
use crate::content::Digest;
use serde_json::json;
use std::collections::HashSet;
use std::io::Write;

/// One image to save, with the tags it is saved under.
pub struct SaveItem {
    /// The image.
    pub image: ImageRecord,
    /// Tags to record for it (none when saved by ID).
    pub tags: Vec<Reference>,
}

fn header(path: &str, size: u64, dir: bool) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    let _ = h.set_path(path);
    h.set_size(size);
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_mtime(0);
    h.set_cksum();
    h
}

impl ImageService {
    /// Resolves names for saving: a tag reference saves the image under that tag, an ID
    /// saves it untagged.
    pub fn save_items(&self, names: &[String]) -> Result<Vec<SaveItem>> {
        let mut out: Vec<SaveItem> = Vec::new();
        for name in names {
            let image = self.resolve(name)?;
            let tag = Reference::parse_with_default_tag(name)
                .ok()
                .filter(|r| r.digest.is_none())
                .filter(|r| {
                    self.meta.tag(&r.to_string()).ok().flatten().as_ref() == Some(&image.id)
                });
            match out.iter_mut().find(|i| i.image.id == image.id) {
                Some(item) => item.tags.extend(tag),
                None => out.push(SaveItem {
                    image,
                    tags: tag.into_iter().collect(),
                }),
            }
        }
        Ok(out)
    }

    /// Writes the archive for these images (blocking).
    pub fn save(&self, items: &[SaveItem], out: impl Write) -> Result<()> {
        let mut tar = tar::Builder::new(out);
        let io = super::Error::io;
        let mut written: HashSet<Digest> = HashSet::new();
        tar.append(&header("blobs/", 0, true), std::io::empty())
            .map_err(io("write archive"))?;
        tar.append(&header("blobs/sha256/", 0, true), std::io::empty())
            .map_err(io("write archive"))?;
        let mut index = Vec::new();
        let mut manifest_json = Vec::new();
        for item in items {
            let rec = &item.image;
            for d in rec.blobs() {
                if !written.insert(d.clone()) {
                    continue;
                }
                let f = self.content.open_blob(d)?;
                let size = f.metadata().map_err(io("stat blob"))?.len();
                tar.append(
                    &header(&format!("blobs/sha256/{}", d.hex()), size, false),
                    f,
                )
                .map_err(io("write archive"))?;
            }
            let manifest_size = self.content.size(&rec.manifest).unwrap_or(0);
            let base = json!({
                "mediaType": rec.manifest_media_type,
                "digest": rec.manifest,
                "size": manifest_size,
            });
            if item.tags.is_empty() {
                index.push(base.clone());
            }
            for t in &item.tags {
                let mut e = base.clone();
                e["annotations"] = json!({
                    "io.containerd.image.name": t.to_string(),
                    "org.opencontainers.image.ref.name": t.tag.clone().unwrap_or_default(),
                });
                index.push(e);
            }
            manifest_json.push(json!({
                "Config": format!("blobs/sha256/{}", rec.id.hex()),
                "RepoTags": item.tags.iter().map(|t| t.familiar()).collect::<Vec<_>>(),
                "Layers": rec.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.hex())).collect::<Vec<_>>(),
            }));
        }
        let files = [
            ("oci-layout", json!({"imageLayoutVersion": "1.0.0"})),
            (
                "index.json",
                json!({
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": index,
                }),
            ),
            ("manifest.json", json!(manifest_json)),
        ];
        for (name, value) in files {
            let bytes = serde_json::to_vec(&value).unwrap_or_default();
            tar.append(&header(name, bytes.len() as u64, false), &bytes[..])
                .map_err(io("write archive"))?;
        }
        tar.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(io("write archive"))?;
        Ok(())
    }
}
