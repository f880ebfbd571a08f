//! ImageService: PullImage, ListImages, ImageStatus, RemoveImage, ImageFsInfo, over the
//! engine's own image store (images pulled here are berthd's images too). Names are
//! normalized as containerd's CRI does (`busybox` is `docker.io/library/busybox:latest`)
//! and reported fully qualified; registry mirrors apply to pulls (`--registry-mirror`).

use super::sandbox::blocking;
use super::{cri, Cri, Error, Result};
use crate::images::reference::Reference;
use crate::images::store::ImageRecord;
use crate::registry::auth::Credentials;
use std::collections::HashMap;

impl Cri {
    fn to_image(
        &self,
        rec: &ImageRecord,
        refs: &HashMap<crate::content::Digest, crate::images::ImageRefs>,
        pause: &str,
    ) -> cri::Image {
        let (tags, digests) = refs.get(&rec.id).cloned().unwrap_or_default();
        let user = self
            .images
            .config(rec)
            .ok()
            .and_then(|c| c["config"]["User"].as_str().map(String::from))
            .unwrap_or_default();
        let name = user.split(':').next().unwrap_or("");
        let (uid, username) = match name.parse::<i64>() {
            Ok(n) => (Some(cri::Int64Value { value: n }), String::new()),
            Err(_) => (None, name.to_string()),
        };
        cri::Image {
            id: rec.id.to_string(),
            repo_tags: tags.iter().map(|t| t.to_string()).collect(),
            repo_digests: digests.iter().map(|d| d.to_string()).collect(),
            size: rec.size(),
            uid,
            username,
            spec: Some(cri::ImageSpec {
                image: rec.id.to_string(),
                ..Default::default()
            }),
            pinned: rec.id.to_string() == pause
                || tags
                    .iter()
                    .any(|t| t.to_string() == super::pause::image_name()),
        }
    }

    fn pause_id(&self) -> String {
        self.images
            .resolve(&super::pause::image_name())
            .map(|r| r.id.to_string())
            .unwrap_or_default()
    }

    /// ListImages.
    pub fn list_images(&self, filter: Option<cri::ImageFilter>) -> Result<Vec<cri::Image>> {
        let refs = self
            .images
            .references()
            .map_err(|e| Error::Internal(e.to_string()))?;
        let pause = self.pause_id();
        let want = filter
            .and_then(|f| f.image)
            .map(|s| s.image)
            .filter(|s| !s.is_empty());
        let only = match want {
            Some(name) => match self.images.resolve(&name) {
                Ok(r) => Some(r.id),
                Err(_) => return Ok(Vec::new()),
            },
            None => None,
        };
        let images = self
            .images
            .meta
            .images()
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(images
            .iter()
            .filter(|r| only.as_ref().is_none_or(|o| *o == r.id))
            .map(|r| self.to_image(r, &refs, &pause))
            .collect())
    }

    /// ImageStatus: None for an image that is not here.
    pub fn image_status(
        &self,
        spec: Option<cri::ImageSpec>,
        verbose: bool,
    ) -> Result<cri::ImageStatusResponse> {
        let name = spec
            .map(|s| s.image)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::Invalid("ImageStatus: image is required".into()))?;
        let rec = match self.images.resolve(&name) {
            Ok(r) => r,
            Err(crate::images::Error::NotFound(_)) => {
                return Ok(cri::ImageStatusResponse {
                    image: None,
                    info: HashMap::new(),
                })
            }
            Err(crate::images::Error::Reference(e)) => {
                return Err(Error::Invalid(format!("invalid image name {name:?}: {e}")))
            }
            Err(_) => {
                return Ok(cri::ImageStatusResponse {
                    image: None,
                    info: HashMap::new(),
                })
            }
        };
        let refs = self
            .images
            .references()
            .map_err(|e| Error::Internal(e.to_string()))?;
        let mut info = HashMap::new();
        if verbose {
            if let Ok(c) = self.images.config(&rec) {
                info.insert(
                    "info".to_string(),
                    serde_json::json!({"imageSpec": c, "chainID": crate::snapshots::chain_ids(&rec.diff_ids()).last()}).to_string(),
                );
            }
        }
        Ok(cri::ImageStatusResponse {
            image: Some(self.to_image(&rec, &refs, &self.pause_id())),
            info,
        })
    }

    /// PullImage: the image ID.
    pub async fn pull_image(
        &self,
        spec: Option<cri::ImageSpec>,
        auth: Option<cri::AuthConfig>,
    ) -> Result<String> {
        let name = spec
            .map(|s| s.image)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::Invalid("PullImage: image is required".into()))?;
        let reference = Reference::parse_with_default_tag(&name)
            .map_err(|e| Error::Invalid(format!("invalid image name {name:?}: {e}")))?;
        let creds = auth.and_then(|a| {
            Credentials {
                username: a.username,
                password: if a.password.is_empty() {
                    a.identity_token
                } else {
                    a.password
                },
                auth: a.auth,
                serveraddress: a.server_address,
            }
            .normalized()
        });
        let resolved = self
            .images
            .resolve_remote(&reference, &crate::images::Platform::host(), creds)
            .await
            .map_err(|e| match e {
                crate::images::Error::NotFound(m) => {
                    Error::NotFound(format!("pulling {name}: {m}"))
                }
                other => Error::Internal(format!("pulling {name}: {other}")),
            })?;
        let id = self
            .images
            .pull(resolved, &crate::progress::Progress::discard())
            .await
            .map_err(|e| Error::Internal(format!("pulling {name}: {e}")))?;
        Ok(id.to_string())
    }

    /// Which images CRI containers use: image ID → a container ID.
    pub fn image_users(&self) -> HashMap<String, String> {
        self.store
            .containers()
            .into_iter()
            .map(|e| {
                let c = e.get();
                (c.image_id, c.id)
            })
            .collect()
    }

    /// RemoveImage: removes the image and all its names; fine if it is not here.
    pub async fn remove_image(&self, spec: Option<cri::ImageSpec>) -> Result<()> {
        let name = spec
            .map(|s| s.image)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::Invalid("RemoveImage: image is required".into()))?;
        let rec = match self.images.resolve(&name) {
            Ok(r) => r,
            Err(_) => return Ok(()),
        };
        if let Some(c) = self.image_users().get(&rec.id.to_string()) {
            return Err(Error::FailedPrecondition(format!(
                "image {name} is in use by container {c}"
            )));
        }
        self.images
            .delete(&rec.id.to_string(), true, false)
            .await
            .map(|_| ())
            .map_err(|e| match e {
                crate::images::Error::NotFound(_) => {
                    Error::NotFound(format!("image {name} not found"))
                }
                crate::images::Error::Conflict(m) => Error::FailedPrecondition(m),
                other => Error::Internal(format!("removing image {name}: {other}")),
            })
    }

    /// ImageFsInfo: what the engine's layers and blobs take on disk.
    pub async fn image_fs_info(&self) -> Result<cri::ImageFsInfoResponse> {
        // The engine's data root: the CRI's directory is in it, beside `snapshots/`.
        let root = self
            .opts
            .data_dir
            .parent()
            .map(|p| p.join("snapshots"))
            .unwrap_or_default();
        let containers = self.opts.data_dir.join("containers-fs");
        let (r, c) = (root.clone(), containers.clone());
        let ((ib, ii), (cb, ci)) =
            blocking(move || Ok((super::stats::usage(&r), super::stats::usage(&c)))).await?;
        let now = super::now_ns();
        let fs = |mp: &std::path::Path, b: u64, i: u64| cri::FilesystemUsage {
            timestamp: now,
            fs_id: Some(cri::FilesystemIdentifier {
                mountpoint: mp.display().to_string(),
            }),
            used_bytes: Some(cri::UInt64Value { value: b }),
            inodes_used: Some(cri::UInt64Value { value: i }),
        };
        Ok(cri::ImageFsInfoResponse {
            image_filesystems: vec![fs(&root, ib, ii)],
            container_filesystems: vec![fs(&containers, cb, ci)],
        })
    }
}
