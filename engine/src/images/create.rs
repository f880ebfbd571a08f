//! Images made here (build steps and `docker commit`): a child of a parent image, with
//! at most one new layer, its config derived from the parent's as Docker derives it,
//! stored as an ordinary image that remembers its parent.

use super::config::{History, ImageConfig, RunConfig, ENGINE_VERSION};
use super::reference::Reference;
use super::store::{ImageRecord, LayerRecord};
use super::{Error, ImageService, Result};
use crate::content::Digest;
use serde_json::json;

/// What a new image is made of, besides its parent.
#[derive(Debug, Clone, Default)]
pub struct Child {
    /// The run config containers of the new image start with.
    pub config: RunConfig,
    /// The config of the container (or build step) it was made from.
    pub container_config: RunConfig,
    /// That container's ID, if a container made it.
    pub container: String,
    /// Author (MAINTAINER, `commit -a`).
    pub author: String,
    /// Comment (`commit -m`).
    pub comment: String,
    /// The new layer's diff ID, if the step changed files.
    pub diff_id: Option<Digest>,
}

/// The config of a child of `parent` (None: `scratch`), as Docker's `NewChildImage`
/// makes it: the parent's history and layers, one history entry more (created by the
/// container config's command), one layer more if there is one.
pub fn child_config(parent: Option<&ImageConfig>, child: &Child) -> ImageConfig {
    let now = super::now_rfc3339();
    let mut rootfs = parent.map(|p| p.rootfs.clone()).unwrap_or_default();
    rootfs.kind = "layers".into();
    if let Some(d) = &child.diff_id {
        rootfs.diff_ids.push(d.clone());
    }
    let mut history = parent.map(|p| p.history.clone()).unwrap_or_default();
    history.push(History {
        created: now.clone(),
        author: child.author.clone(),
        created_by: child
            .container_config
            .cmd
            .as_deref()
            .unwrap_or_default()
            .join(" "),
        comment: child.comment.clone(),
        empty_layer: child.diff_id.is_none(),
    });
    let (arch, variant, os) = match parent {
        Some(p) if !p.architecture.is_empty() => {
            (p.architecture.clone(), p.variant.clone(), p.os.clone())
        }
        _ => (super::host_arch().to_string(), String::new(), String::new()),
    };
    ImageConfig {
        architecture: arch,
        config: Some(child.config.clone()),
        container: child.container.clone(),
        container_config: Some(child.container_config.clone()),
        created: now,
        author: child.author.clone(),
        comment: child.comment.clone(),
        docker_version: ENGINE_VERSION.into(),
        history,
        os: if os.is_empty() { "linux".into() } else { os },
        variant,
        rootfs,
    }
}

impl ImageService {
    /// Points `r` at the image and records the time (a build's `-t`).
    pub fn tag_image(&self, id: &Digest, r: &Reference) -> Result<()> {
        let mut rec = self
            .meta
            .image(id)?
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        rec.last_tag_time = super::now_rfc3339();
        self.meta.put_image(&rec, &[r.to_string()], &[])?;
        Ok(())
    }

    /// An image's config, typed.
    pub fn image_config(&self, rec: &ImageRecord) -> Result<ImageConfig> {
        let bytes = self.content.read(&rec.id)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("image config {}: {e}", rec.id)))
    }

    /// Stores a child of `parent` (None: `scratch`) whose new layer, if any, is already
    /// in the content store and unpacked as a snapshot. `config` must list the parent's
    /// layers and the new one. With `cache_key`, the image is also the build cache's
    /// entry for that key. Hold [`ImageService::write_guard`] from the layer's creation
    /// until this returns, so that garbage collection cannot take the layer meanwhile.
    pub fn create_image(
        &self,
        parent: Option<&ImageRecord>,
        layer: Option<LayerRecord>,
        config: &ImageConfig,
        tags: &[Reference],
        cache_key: Option<&str>,
    ) -> Result<ImageRecord> {
        let mut layers = parent.map(|p| p.layers.clone()).unwrap_or_default();
        layers.extend(layer);
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        if diff_ids != config.rootfs.diff_ids {
            return Err(Error::Invalid(
                "new image config does not list the image's layers".into(),
            ));
        }
        let config_bytes = serde_json::to_vec(config)
            .map_err(|e| Error::Invalid(format!("encoding image config: {e}")))?;
        let id = self.content.write_all(&config_bytes, None)?;
        let media_type = "application/vnd.docker.distribution.manifest.v2+json";
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": config_bytes.len(),
                "digest": id,
            },
            "layers": layers.iter().map(|l| json!({
                "mediaType": l.media_type, "size": l.size, "digest": l.digest,
            })).collect::<Vec<_>>(),
        });
        let manifest_bytes = serde_json::to_vec(&manifest)
            .map_err(|e| Error::Invalid(format!("encoding manifest: {e}")))?;
        let manifest_digest = self.content.write_all(&manifest_bytes, None)?;
        let rec = ImageRecord {
            id,
            manifest: manifest_digest,
            manifest_media_type: media_type.into(),
            index: None,
            layers,
            // Clients parse it as a time: Go's zero time until the image is tagged.
            last_tag_time: if tags.is_empty() {
                "0001-01-01T00:00:00Z".into()
            } else {
                super::now_rfc3339()
            },
            parent: parent.map(|p| p.id.clone()),
        };
        let tag_names: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        self.meta
            .put_image_cached(&rec, &tag_names, &[], cache_key)?;
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_adds_history_and_layer() {
        let parent = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            history: vec![History {
                created_by: "base".into(),
                ..Default::default()
            }],
            rootfs: super::super::config::RootFs {
                kind: "layers".into(),
                diff_ids: vec![crate::content::sha256_digest(b"a")],
            },
            ..Default::default()
        };
        let child = Child {
            container_config: RunConfig {
                cmd: Some(vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "#(nop) ".into(),
                    "ENV A=1".into(),
                ]),
                ..Default::default()
            },
            ..Default::default()
        };
        let c = child_config(Some(&parent), &child);
        assert_eq!(c.history.len(), 2);
        assert_eq!(c.history[1].created_by, "/bin/sh -c #(nop)  ENV A=1");
        assert!(c.history[1].empty_layer);
        assert_eq!(c.rootfs.diff_ids.len(), 1);
        let with_layer = Child {
            diff_id: Some(crate::content::sha256_digest(b"b")),
            ..child
        };
        let c = child_config(Some(&parent), &with_layer);
        assert_eq!(c.rootfs.diff_ids.len(), 2);
        assert!(!c.history[1].empty_layer);
        assert_eq!(child_config(None, &with_layer).os, "linux");
    }
}
