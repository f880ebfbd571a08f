//! Pulling images: resolve a reference to a platform manifest, then download config and
//! layers in parallel, each layer unpacked into its snapshot while it downloads.

use super::reference::Reference;
use super::store::{ImageRecord, LayerRecord};
use super::{Error, ImageService, Result};
use crate::content::Digest;
use crate::progress::Progress;
use crate::registry::{auth::Credentials, Session};
use crate::snapshots::chain_ids;
use crate::streams::{ChannelReader, Tee};
use futures_util::StreamExt;
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use std::io;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Layers downloaded at once, as dockerd's default max-concurrent-downloads.
const PARALLEL_DOWNLOADS: usize = 3;

/// A platform to pick from an index (`os/arch[/variant]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// Operating system.
    pub os: String,
    /// CPU architecture.
    pub arch: String,
    /// Architecture variant (`v8`), if any.
    pub variant: Option<String>,
}

impl Platform {
    /// The daemon's own platform.
    pub fn host() -> Self {
        Self {
            os: "linux".into(),
            arch: super::host_arch().into(),
            variant: None,
        }
    }

    /// Parses `os/arch[/variant]` (or just `arch`).
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || {
            Error::Invalid(format!(
                "invalid platform {s:?}: expected os/arch[/variant]"
            ))
        };
        match parts.as_slice() {
            [arch] if !arch.is_empty() => Ok(Self {
                os: "linux".into(),
                arch: arch.to_string(),
                variant: None,
            }),
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Self {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: None,
            }),
            [os, arch, v] if !os.is_empty() && !arch.is_empty() => Ok(Self {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: Some(v.to_string()),
            }),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A blob a manifest names.
#[derive(Debug, Clone)]
pub(crate) struct BlobDesc {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

fn invalid(what: &str) -> impl FnOnce(String) -> Error + '_ {
    move |e| Error::Invalid(format!("invalid {what}: {e}"))
}

fn desc(d: &oci_spec::image::Descriptor) -> Result<BlobDesc> {
    Ok(BlobDesc {
        digest: Digest::parse(d.digest().as_ref()).map_err(|e| Error::Invalid(e.to_string()))?,
        size: d.size(),
        media_type: d.media_type().to_string(),
    })
}

/// True for index / manifest-list media types (or bodies).
pub(crate) fn is_index(media_type: &str, bytes: &[u8]) -> bool {
    if media_type.contains("index") || media_type.contains("manifest.list") {
        return true;
    }
    if !media_type.is_empty() {
        return false;
    }
    serde_json::from_slice::<serde_json::Value>(bytes)
        .map(|v| v.get("manifests").is_some())
        .unwrap_or(false)
}

/// Config and layers of an image manifest (OCI or Docker schema2).
pub(crate) fn parse_manifest(bytes: &[u8]) -> Result<(BlobDesc, Vec<BlobDesc>)> {
    let m: ImageManifest =
        serde_json::from_slice(bytes).map_err(|e| invalid("manifest")(e.to_string()))?;
    if m.schema_version() != 2 {
        return Err(Error::Invalid(format!(
            "unsupported manifest schema version {}",
            m.schema_version()
        )));
    }
    let layers = m.layers().iter().map(desc).collect::<Result<Vec<_>>>()?;
    Ok((desc(m.config())?, layers))
}

/// The manifest of an index that fits the platform.
pub(crate) fn pick_platform(bytes: &[u8], platform: &Platform) -> Result<BlobDesc> {
    let idx: ImageIndex =
        serde_json::from_slice(bytes).map_err(|e| invalid("index")(e.to_string()))?;
    let fits = |d: &&oci_spec::image::Descriptor| {
        d.platform().as_ref().is_some_and(|p| {
            p.os().to_string() == platform.os
                && p.architecture().to_string() == platform.arch
                && (platform.variant.is_none() || p.variant() == &platform.variant)
        })
    };
    let chosen = idx.manifests().iter().find(fits).ok_or_else(|| {
        Error::NotFound(format!(
            "no matching manifest for {platform} in the manifest list entries"
        ))
    })?;
    desc(chosen)
}

/// Diff IDs listed by an image config.
pub(crate) fn config_diff_ids(bytes: &[u8]) -> Result<Vec<Digest>> {
    let c: ImageConfiguration =
        serde_json::from_slice(bytes).map_err(|e| invalid("image config")(e.to_string()))?;
    c.rootfs()
        .diff_ids()
        .iter()
        .map(|d| Digest::parse(d).map_err(|e| Error::Invalid(format!("image config: {e}"))))
        .collect()
}

/// A remote image resolved to one platform manifest, ready to download.
pub struct Resolved {
    /// What was asked for, with its default tag.
    pub reference: Reference,
    session: Arc<Session>,
    manifest: Vec<u8>,
    manifest_media_type: String,
    manifest_digest: Digest,
    index: Option<(Vec<u8>, Digest)>,
    config: BlobDesc,
    layers: Vec<BlobDesc>,
}

impl Resolved {
    /// Digest of what the reference names (the index, if it names one).
    pub fn top_digest(&self) -> &Digest {
        self.index
            .as_ref()
            .map(|(_, d)| d)
            .unwrap_or(&self.manifest_digest)
    }
}

impl ImageService {
    /// Resolves a reference on its registry to a manifest for the platform.
    pub async fn resolve_remote(
        &self,
        reference: &Reference,
        platform: &Platform,
        creds: Option<Credentials>,
    ) -> Result<Resolved> {
        let session = Arc::new(
            self.registry
                .session(&reference.domain, &reference.path, creds, false)
                .await?,
        );
        let want = match (&reference.digest, &reference.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        };
        let (bytes, media_type, digest) = session.manifest(&want).await.map_err(|e| match e {
            crate::registry::Error::NotFound { detail, .. } => Error::NotFound(format!(
                "manifest for {} not found: {detail}",
                reference.familiar()
            )),
            other => other.into(),
        })?;
        let (manifest, manifest_media_type, manifest_digest, index) =
            if is_index(&media_type, &bytes) {
                let chosen = pick_platform(&bytes, platform)?;
                let (m, mt, md) = session.manifest(chosen.digest.as_str()).await?;
                (m, mt, md, Some((bytes, digest)))
            } else {
                (bytes, media_type, digest, None)
            };
        if manifest_media_type.contains("v1+prettyjws")
            || manifest_media_type.contains("distribution.manifest.v1")
        {
            return Err(Error::Invalid(format!(
                "{}: Docker Image Format v1 and Docker Image manifest version 2, schema 1 are not supported",
                reference.familiar()
            )));
        }
        let (config, layers) = parse_manifest(&manifest)?;
        Ok(Resolved {
            reference: reference.clone(),
            session,
            manifest_media_type: if manifest_media_type.is_empty() {
                "application/vnd.oci.image.manifest.v1+json".into()
            } else {
                manifest_media_type
            },
            manifest,
            manifest_digest,
            index,
            config,
            layers,
        })
    }

    /// What `GET /distribution/{name}/json` tells: the descriptor a reference resolves to
    /// on its registry and the platforms it offers.
    pub async fn remote_descriptor(
        &self,
        reference: &Reference,
        creds: Option<Credentials>,
    ) -> Result<serde_json::Value> {
        let session = self
            .registry
            .session(&reference.domain, &reference.path, creds, false)
            .await?;
        let want = match (&reference.digest, &reference.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        };
        let (bytes, media_type, digest) = session.manifest(&want).await?;
        let platforms: Vec<serde_json::Value> = if is_index(&media_type, &bytes) {
            let idx: ImageIndex =
                serde_json::from_slice(&bytes).map_err(|e| invalid("index")(e.to_string()))?;
            idx.manifests()
                .iter()
                .filter_map(|m| m.platform().as_ref())
                .map(|p| {
                    serde_json::json!({"architecture": p.architecture().to_string(),
                        "os": p.os().to_string(), "variant": p.variant()})
                })
                .collect()
        } else {
            let (config, _) = parse_manifest(&bytes)?;
            let resp = session.blob(&config.digest).await?;
            let c: serde_json::Value = resp
                .json()
                .await
                .map_err(|e| Error::Invalid(format!("image config: {e}")))?;
            vec![serde_json::json!({"architecture": c["architecture"], "os": c["os"]})]
        };
        Ok(serde_json::json!({
            "Descriptor": {"mediaType": media_type, "digest": digest, "size": bytes.len()},
            "Platforms": platforms,
        }))
    }

    /// The platform of a stored image (`os/arch[/variant]` from its config) when it is not
    /// `want`: dockerd then warns (a single-platform image pulled with another
    /// `--platform` is kept, for compatibility, but the client is told).
    pub fn platform_mismatch(&self, id: &Digest, want: &Platform) -> Option<String> {
        let bytes = self.content.read(id).ok()?;
        let c: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let os = c["os"].as_str().unwrap_or("");
        let arch = c["architecture"].as_str().unwrap_or("");
        let variant = c["variant"].as_str().filter(|v| !v.is_empty());
        let fits = os == want.os
            && arch == want.arch
            && (want.variant.is_none() || variant == want.variant.as_deref());
        if fits {
            return None;
        }
        let actual = Platform {
            os: os.to_string(),
            arch: arch.to_string(),
            variant: variant.map(String::from),
        };
        Some(actual.to_string())
    }

    /// Downloads a resolved image, reporting progress; returns its image ID. If it fails,
    /// whatever it stored that no image uses is collected.
    pub async fn pull(self: &Arc<Self>, r: Resolved, progress: &Progress) -> Result<Digest> {
        let result = self.pull_inner(&r, progress).await;
        if result.is_err() {
            if let Err(e) = self.gc().await {
                tracing::warn!(error = %e, "cleanup after failed pull");
            }
        }
        result
    }

    async fn pull_inner(self: &Arc<Self>, r: &Resolved, progress: &Progress) -> Result<Digest> {
        let guard = self.write_guard().await;
        let tag_label = r
            .reference
            .tag
            .clone()
            .or_else(|| r.reference.digest.as_ref().map(|d| d.to_string()))
            .unwrap_or_default();
        progress.status(
            Some(&tag_label),
            format!("Pulling from {}", r.reference.path),
        );
        if let Some((bytes, digest)) = &r.index {
            self.content.write_all(bytes, Some(digest))?;
        }
        self.content
            .write_all(&r.manifest, Some(&r.manifest_digest))?;

        // The config is small: fetch it first, it names the diff IDs.
        let config_bytes = if self.content.exists(&r.config.digest) {
            self.content.read(&r.config.digest)?
        } else {
            let resp = r.session.blob(&r.config.digest).await?;
            if r.config.size > 16 * 1024 * 1024 {
                return Err(Error::Invalid(format!(
                    "image config of {} bytes is too large",
                    r.config.size
                )));
            }
            let bytes = resp.bytes().await.map_err(|e| {
                Error::Registry(crate::registry::Error::Transport {
                    method: "GET".into(),
                    url: r.config.digest.to_string(),
                    message: e.to_string(),
                })
            })?;
            self.content.write_all(&bytes, Some(&r.config.digest))?;
            bytes.to_vec()
        };
        let diff_ids = config_diff_ids(&config_bytes)?;
        if diff_ids.len() != r.layers.len() {
            return Err(Error::Invalid(format!(
                "image config lists {} layers but the manifest has {}",
                diff_ids.len(),
                r.layers.len()
            )));
        }
        let chains = chain_ids(&diff_ids);
        for l in &r.layers {
            progress.layer(l.digest.short(), "Pulling fs layer");
        }
        let sem = Arc::new(Semaphore::new(PARALLEL_DOWNLOADS));
        let mut tasks = Vec::new();
        for (i, layer) in r.layers.iter().enumerate() {
            let job = LayerJob {
                svc: self.clone(),
                session: r.session.clone(),
                layer: layer.clone(),
                diff_id: diff_ids[i].clone(),
                chain: chains[i].clone(),
                parent: i.checked_sub(1).map(|p| chains[p].clone()),
                progress: progress.clone(),
                sem: sem.clone(),
            };
            tasks.push(tokio::spawn(job.run()));
        }
        let mut layers = Vec::new();
        let mut first_err = None;
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.map_err(Error::join).and_then(|x| x) {
                Ok(unpacked_size) => layers.push(LayerRecord {
                    digest: r.layers[i].digest.clone(),
                    media_type: r.layers[i].media_type.clone(),
                    size: r.layers[i].size,
                    diff_id: diff_ids[i].clone(),
                    unpacked_size,
                }),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let id = r.config.digest.clone();
        let mut tags = Vec::new();
        if r.reference.tag.is_some() {
            tags.push(r.reference.clone());
        }
        let previous = match &r.reference.tag {
            Some(_) => self.meta.tag(&r.reference.to_string())?,
            None => None,
        };
        let rec = ImageRecord {
            id: id.clone(),
            manifest: r.manifest_digest.clone(),
            manifest_media_type: r.manifest_media_type.clone(),
            index: r.index.as_ref().map(|(_, d)| d.clone()),
            layers,
            last_tag_time: super::now_rfc3339(),
            parent: None,
        };
        let digest_ref = r.reference.with_digest(r.top_digest());
        self.commit_image(&rec, &tags, &[digest_ref])?;
        for l in &rec.layers {
            self.meta.add_source(&l.digest, &r.reference.name())?;
        }
        drop(guard);
        progress.status(None, format!("Digest: {}", r.top_digest()));
        let status = if previous.as_ref() == Some(&id) {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        };
        progress.status(None, format!("Status: {status} {}", r.reference.familiar()));
        Ok(id)
    }
}

/// One layer to fetch and unpack.
struct LayerJob {
    svc: Arc<ImageService>,
    session: Arc<Session>,
    layer: BlobDesc,
    diff_id: Digest,
    chain: Digest,
    parent: Option<Digest>,
    progress: Progress,
    sem: Arc<Semaphore>,
}

impl LayerJob {
    async fn run(self) -> Result<u64> {
        let id = self.layer.digest.short().to_string();
        let have_blob = self.svc.content.exists(&self.layer.digest);
        let have_snap = self.svc.snapshots.exists(&self.chain);
        if have_blob && have_snap {
            self.progress.layer(&id, "Already exists");
            return Ok(self.svc.snapshots.usage(&self.chain));
        }
        let _permit = self
            .sem
            .acquire()
            .await
            .map_err(|e| Error::Invalid(e.to_string()))?;
        if have_blob {
            self.progress.layer(&id, "Extracting");
            let svc = self.svc.clone();
            let (chain, parent, diff) = (
                self.chain.clone(),
                self.parent.clone(),
                self.diff_id.clone(),
            );
            let digest = self.layer.digest.clone();
            let size = tokio::task::spawn_blocking(move || -> Result<u64> {
                let f = svc.content.open_blob(&digest)?;
                Ok(svc
                    .snapshots
                    .unpack(&chain, parent.as_ref(), &diff, io::BufReader::new(f))?)
            })
            .await
            .map_err(Error::join)??;
            self.progress.layer(&id, "Pull complete");
            return Ok(size);
        }

        let resp = self.session.blob(&self.layer.digest).await?;
        let (tx, reader) = ChannelReader::new(64);
        let svc = self.svc.clone();
        let (chain, parent, diff) = (
            self.chain.clone(),
            self.parent.clone(),
            self.diff_id.clone(),
        );
        let (digest, total) = (self.layer.digest.clone(), self.layer.size);
        // Store and unpack on a blocking thread while the download feeds it.
        let worker = tokio::task::spawn_blocking(move || -> Result<u64> {
            let mut writer = svc.content.writer()?;
            let mut tee = Tee::new(reader, &mut writer);
            let prepared = if have_snap {
                None
            } else {
                Some(svc.snapshots.prepare(&diff, &mut tee)?)
            };
            io::copy(&mut tee, &mut io::sink()).map_err(Error::io("receiving layer"))?;
            // The blob must verify before its snapshot is published.
            writer.commit(Some(&digest), Some(total))?;
            match prepared {
                Some(p) => Ok(svc.snapshots.commit(p, &chain, parent.as_ref())?),
                None => Ok(svc.snapshots.usage(&chain)),
            }
        });
        let mut stream = resp.bytes_stream();
        let mut done = 0u64;
        let mut last_report = 0u64;
        let mut transport_err = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => {
                    done += c.len() as u64;
                    if tx.send(c).await.is_err() {
                        break; // the worker failed; its error says why
                    }
                    if done - last_report >= 512 * 1024 || done == total {
                        last_report = done;
                        self.progress.bytes(&id, "Downloading", done, total);
                    }
                }
                Err(e) => {
                    transport_err = Some(e.to_string());
                    break;
                }
            }
        }
        drop(tx);
        let result = worker.await.map_err(Error::join)?;
        if let Some(msg) = transport_err {
            return Err(Error::Registry(crate::registry::Error::Transport {
                method: "GET".into(),
                url: format!("blob {}", self.layer.digest),
                message: msg,
            }));
        }
        let size = result?;
        self.progress.layer(&id, "Download complete");
        self.progress.layer(&id, "Pull complete");
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_parses() {
        assert_eq!(
            Platform::parse("linux/arm64/v8")
                .unwrap()
                .variant
                .as_deref(),
            Some("v8")
        );
        assert_eq!(Platform::parse("amd64").unwrap().to_string(), "linux/amd64");
        assert!(Platform::parse("a/b/c/d").is_err());
    }

    #[test]
    fn picks_platform_from_index() {
        let idx = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1,
                 "digest": format!("sha256:{}", "a".repeat(64)),
                 "platform": {"os": "linux", "architecture": "arm64"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 2,
                 "digest": format!("sha256:{}", "b".repeat(64)),
                 "platform": {"os": "linux", "architecture": "amd64"}}
            ]
        });
        let bytes = serde_json::to_vec(&idx).unwrap();
        let amd = Platform::parse("linux/amd64").unwrap();
        assert_eq!(pick_platform(&bytes, &amd).unwrap().size, 2);
        let arm = Platform::parse("linux/arm64").unwrap();
        assert_eq!(pick_platform(&bytes, &arm).unwrap().size, 1);
        assert!(pick_platform(&bytes, &Platform::parse("linux/s390x").unwrap()).is_err());
    }
}
