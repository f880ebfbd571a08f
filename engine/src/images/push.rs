//! Pushing images: each layer is skipped if the registry has it, mounted from another
//! repository of the same registry if one is known to hold it, else uploaded; then the
//! config and the manifest.

use super::reference::Reference;
use super::store::ImageRecord;
use super::{Error, ImageService, Result};
use crate::content::Digest;
use crate::progress::Progress;
use crate::registry::{auth::Credentials, Mount, Session};
use bytes::Bytes;
use serde_json::json;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

impl ImageService {
    /// Pushes `name` (with `tag`, or every tag of the repository if `tag` is empty).
    pub async fn push(
        self: &Arc<Self>,
        name: &str,
        tag: &str,
        creds: Option<Credentials>,
        progress: &Progress,
    ) -> Result<()> {
        let base = Reference::parse(name)?;
        let targets: Vec<(Reference, ImageRecord)> = if !tag.is_empty() || base.tag.is_some() {
            let r = if tag.is_empty() {
                base.clone()
            } else {
                base.with_tag(tag)
            };
            let id = self
                .meta
                .tag(&r.to_string())?
                .ok_or_else(|| Error::NotFound(r.familiar()))?;
            let rec = self
                .meta
                .image(&id)?
                .ok_or_else(|| Error::NotFound(r.familiar()))?;
            vec![(r, rec)]
        } else {
            let mut v = Vec::new();
            for (t, id) in self.meta.tags()? {
                let Ok(r) = Reference::parse(&t) else {
                    continue;
                };
                if r.name() == base.name() {
                    if let Some(rec) = self.meta.image(&id)? {
                        v.push((r, rec));
                    }
                }
            }
            if v.is_empty() {
                return Err(Error::NotFound(base.familiar()));
            }
            v
        };
        // The blobs being pushed must not be collected under our feet.
        let _guard = self.write_guard().await;
        progress.status(
            None,
            format!("The push refers to repository [{}]", base.familiar_name()),
        );
        let session = Arc::new(
            self.registry
                .session(&base.domain, &base.path, creds, true)
                .await?,
        );
        for (r, rec) in targets {
            self.push_one(&session, &r, &rec, progress).await?;
        }
        Ok(())
    }

    async fn push_one(
        self: &Arc<Self>,
        session: &Arc<Session>,
        r: &Reference,
        rec: &ImageRecord,
        progress: &Progress,
    ) -> Result<()> {
        for l in rec.layers.iter().rev() {
            progress.layer(l.diff_id.short(), "Preparing");
        }
        let mut tasks = Vec::new();
        for l in rec.layers.iter().rev() {
            let svc = self.clone();
            let session = session.clone();
            let progress = progress.clone();
            let (digest, size, id) = (l.digest.clone(), l.size, l.diff_id.short().to_string());
            let target = r.clone();
            tasks.push(tokio::spawn(async move {
                svc.push_blob(&session, &target, &digest, size, Some(&id), &progress)
                    .await
            }));
        }
        for t in tasks {
            t.await.map_err(Error::join)??;
        }
        let config_size = self.content.size(&rec.id).unwrap_or(0);
        self.push_blob(session, r, &rec.id, config_size, None, progress)
            .await?;
        let manifest = self.content.read(&rec.manifest)?;
        let len = manifest.len();
        let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
        let digest = session
            .put_manifest(&tag, &rec.manifest_media_type, manifest)
            .await?;
        self.meta
            .put_image(rec, &[], &[r.with_digest(&digest).to_string()])?;
        progress.status(None, format!("{tag}: digest: {digest} size: {len}"));
        progress.aux(json!({"Tag": tag, "Digest": digest, "Size": len}));
        Ok(())
    }

    async fn push_blob(
        &self,
        session: &Session,
        target: &Reference,
        digest: &Digest,
        size: u64,
        id: Option<&str>,
        progress: &Progress,
    ) -> Result<()> {
        let say = |s: &str| {
            if let Some(id) = id {
                progress.layer(id, s);
            }
        };
        if session.blob_exists(digest).await? {
            say("Layer already exists");
            return Ok(());
        }
        let repo = target.name();
        // Blobs can only be mounted from another repository of the same registry.
        let source = self
            .meta
            .source(digest)?
            .filter(|s| *s != repo)
            .and_then(|s| {
                s.strip_prefix(&format!("{}/", target.domain))
                    .map(String::from)
            });
        let location = match source {
            Some(from) => match session.mount(digest, &from).await? {
                Mount::Mounted => {
                    say(&format!("Mounted from {from}"));
                    self.meta.add_source(digest, &repo)?;
                    return Ok(());
                }
                Mount::Upload(loc) => loc,
            },
            None => session.start_upload().await?,
        };
        let path = self.content.path(digest);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(Error::io(format!("open {}", path.display())))?;
        let report = id.map(|i| (i.to_string(), progress.clone()));
        let stream =
            futures_util::stream::unfold((file, 0u64, 0u64), move |(mut f, done, last)| {
                let report = report.clone();
                async move {
                    let mut buf = vec![0u8; 256 * 1024];
                    match f.read(&mut buf).await {
                        Ok(0) => None,
                        Ok(n) => {
                            buf.truncate(n);
                            let done = done + n as u64;
                            let mut last = last;
                            if let Some((id, p)) = &report {
                                if done - last >= 512 * 1024 || done == size {
                                    last = done;
                                    p.bytes(id, "Pushing", done, size);
                                }
                            }
                            Some((
                                Ok::<Bytes, std::io::Error>(Bytes::from(buf)),
                                (f, done, last),
                            ))
                        }
                        Err(e) => Some((Err(e), (f, done, last))),
                    }
                }
            });
        session
            .finish_upload(&location, digest, size, reqwest::Body::wrap_stream(stream))
            .await?;
        self.meta.add_source(digest, &repo)?;
        say("Pushed");
        Ok(())
    }
}
