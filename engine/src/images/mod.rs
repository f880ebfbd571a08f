//! The image service: the content store, snapshots and metadata together, with the
//! operations the API exposes (resolve, list, inspect, history, tag, delete, prune,
//! garbage collection) and, in submodules, pull, push, save, load and import.

pub mod config;
pub mod create;
mod import;
mod load;
pub(crate) mod pull;
mod push;
pub mod reference;
mod save;
pub mod store;

pub use import::ImportOptions;
pub use pull::{Platform, Resolved};

use crate::archive;
use crate::content::{self, ContentStore, Digest};
use crate::registry::auth::Credentials;
use crate::registry::{self, RegistryClient};
use crate::snapshots::{self, chain_ids, SnapshotStore};
use reference::{Reference, ReferenceError};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use store::{ImageRecord, MetaStore};

/// Errors of image operations; the API maps their kinds to HTTP statuses.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No image by that name.
    #[error("No such image: {0}")]
    NotFound(String),
    /// A malformed reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// A bad argument or malformed input (archive, manifest, config).
    #[error("{0}")]
    Invalid(String),
    /// The operation conflicts with the state of the store.
    #[error("{0}")]
    Conflict(String),
    /// Content store failure (including digest mismatches).
    #[error(transparent)]
    Content(#[from] content::Error),
    /// Snapshot failure (including unsafe or broken layers).
    #[error(transparent)]
    Snapshot(#[from] snapshots::Error),
    /// Archive failure.
    #[error(transparent)]
    Archive(#[from] archive::Error),
    /// Registry failure.
    #[error(transparent)]
    Registry(#[from] registry::Error),
    /// Metadata store failure.
    #[error(transparent)]
    Meta(#[from] store::Error),
    /// Some other I/O failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Result type of image operations.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }

    fn join(e: tokio::task::JoinError) -> Error {
        Error::Io {
            what: "background task".into(),
            source: std::io::Error::other(e.to_string()),
        }
    }
}

/// An image's tags and repo digests.
pub type ImageRefs = (Vec<Reference>, Vec<Reference>);

/// The engine's image store.
pub struct ImageService {
    /// OCI blobs.
    pub content: ContentStore,
    /// Unpacked layers.
    pub snapshots: SnapshotStore,
    /// Image records and references.
    pub meta: MetaStore,
    /// Registry connections.
    pub registry: RegistryClient,
    /// Held shared by writers of new content, exclusively by garbage collection, so
    /// that GC never deletes a blob a pull has written but not yet referenced.
    gc_lock: tokio::sync::RwLock<()>,
    tmp: PathBuf,
    users: std::sync::RwLock<Option<ImageUsers>>,
}

/// Which containers use which image: image ID (`sha256:...`) → a container ID.
pub type ImageUsers = Box<dyn Fn() -> HashMap<String, String> + Send + Sync>;

/// The platform this daemon runs images for, as `os/arch`.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

impl ImageService {
    /// Opens the image store under the data root.
    pub fn open(data_root: &Path, insecure: Vec<String>) -> Result<Arc<Self>> {
        Self::open_with(data_root, RegistryClient::new(insecure))
    }

    /// Opens the image store with a registry client of the caller's (mirrors).
    pub fn open_with(data_root: &Path, registry: RegistryClient) -> Result<Arc<Self>> {
        // The database lock comes first: a second daemon on this data root must fail
        // before it cleans the first one's temp files.
        let meta = MetaStore::open(&data_root.join("metadata.redb"))?;
        let tmp = data_root.join("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(Error::io(format!("create {}", tmp.display())))?;
        Ok(Arc::new(Self {
            content: ContentStore::open(&data_root.join("content"))?,
            snapshots: SnapshotStore::open(&data_root.join("snapshots"))?,
            meta,
            registry,
            gc_lock: tokio::sync::RwLock::new(()),
            tmp,
            users: std::sync::RwLock::new(None),
        }))
    }

    /// Directory for request bodies being received.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Credentials for a registry: those the request carries (berthd keeps none).
    pub fn credentials(&self, header: Option<&str>) -> Option<Credentials> {
        header.and_then(Credentials::from_header)
    }

    /// Finds an image by ID, ID prefix, tag or digest reference.
    pub fn resolve(&self, name: &str) -> Result<ImageRecord> {
        let not_found = || Error::NotFound(name.to_string());
        if let Ok(id) = Digest::parse(name) {
            return self.meta.image(&id)?.ok_or_else(not_found);
        }
        if let Ok(r) = Reference::parse_with_default_tag(name) {
            let id = match &r.digest {
                Some(d) => self.meta.repo_digest(&format!("{}@{d}", r.name()))?,
                None => self.meta.tag(&r.to_string())?,
            };
            if let Some(id) = id {
                return self.meta.image(&id)?.ok_or_else(not_found);
            }
        }
        let prefix = name.strip_prefix("sha256:").unwrap_or(name);
        if !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            let matches: Vec<_> = self
                .meta
                .images()?
                .into_iter()
                .filter(|i| i.id.hex().starts_with(prefix))
                .collect();
            match matches.len() {
                1 => return matches.into_iter().next().ok_or_else(not_found),
                0 => {}
                _ => {
                    return Err(Error::Invalid(format!(
                        "multiple IDs found with provided prefix: {prefix}"
                    )))
                }
            }
        }
        if let Err(e) = Reference::parse(name) {
            if !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(e.into());
            }
        }
        Err(not_found())
    }

    /// The stored key (`domain/path:tag` or `domain/path@digest`) a name refers to as a
    /// reference, with the image it names, if it is such a reference.
    fn reference_key(&self, name: &str) -> Result<Option<(String, Digest)>> {
        let Ok(r) = Reference::parse_with_default_tag(name) else {
            return Ok(None);
        };
        let (key, id) = match &r.digest {
            Some(d) => {
                let key = format!("{}@{d}", r.name());
                let id = self.meta.repo_digest(&key)?;
                (key, id)
            }
            None => {
                let key = r.to_string();
                let id = self.meta.tag(&key)?;
                (key, id)
            }
        };
        Ok(id.map(|id| (key, id)))
    }

    /// Tags and repo digests of every image, as parsed references.
    pub fn references(&self) -> Result<HashMap<Digest, ImageRefs>> {
        let mut out: HashMap<Digest, ImageRefs> = HashMap::new();
        for (r, id) in self.meta.tags()? {
            if let Ok(r) = Reference::parse(&r) {
                out.entry(id).or_default().0.push(r);
            }
        }
        for (r, id) in self.meta.repo_digests()? {
            if let Ok(r) = Reference::parse(&r) {
                out.entry(id).or_default().1.push(r);
            }
        }
        for (tags, digests) in out.values_mut() {
            tags.sort_by_key(|r| r.to_string());
            digests.sort_by_key(|r| r.to_string());
        }
        Ok(out)
    }

    /// An image's config as JSON.
    pub fn config(&self, rec: &ImageRecord) -> Result<Value> {
        let bytes = self.content.read(&rec.id)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("image config {}: {e}", rec.id)))
    }

    /// Entries for `GET /images/json`.
    pub fn summaries(&self, filters: &ImageFilters) -> Result<Vec<Value>> {
        // dockerd's image list takes no `label!` (its prune does).
        if !filters.label_not.is_empty() {
            return Err(Error::Invalid("invalid filter 'label!'".into()));
        }
        let refs = self.references()?;
        let mut out = Vec::new();
        let images = self.meta.images()?;
        let created_of = |rec: &ImageRecord| {
            self.config(rec)
                .ok()
                .and_then(|c| c["created"].as_str().map(unix_time))
                .unwrap_or(0)
        };
        let before = filters
            .before
            .as_deref()
            .map(|n| self.resolve(n).map(|r| created_of(&r)))
            .transpose()?;
        let since = filters
            .since
            .as_deref()
            .map(|n| self.resolve(n).map(|r| created_of(&r)))
            .transpose()?;
        // Images that others were built on: without a name they are a build's
        // intermediate steps, which dockerd lists only with `all`.
        let parents: HashSet<Digest> = images.iter().filter_map(|i| i.parent.clone()).collect();
        for rec in images {
            let (tags, digests) = refs.get(&rec.id).cloned().unwrap_or_default();
            if !filters.all && tags.is_empty() && digests.is_empty() && parents.contains(&rec.id) {
                continue;
            }
            if filters.dangling == Some(true) && parents.contains(&rec.id) {
                continue;
            }
            let config = self.config(&rec).unwrap_or(Value::Null);
            let created = config["created"].as_str().map(unix_time).unwrap_or(0);
            let labels = config["config"]["Labels"].clone();
            if let Some(d) = filters.dangling {
                if d != tags.is_empty() {
                    continue;
                }
            }
            // As dockerd, a reference filter also narrows the names listed to those
            // that match it (`images busybox` shows no other tags of the image).
            let (tags, digests) = if filters.reference.is_empty() {
                (tags, digests)
            } else {
                let matches = |t: &Reference| {
                    filters
                        .reference
                        .iter()
                        .any(|pat| glob(pat, &t.familiar()) || glob(pat, &t.familiar_name()))
                };
                let tags: Vec<Reference> = tags.into_iter().filter(|t| matches(t)).collect();
                let digests: Vec<Reference> = digests.into_iter().filter(|t| matches(t)).collect();
                if tags.is_empty() && digests.is_empty() {
                    continue;
                }
                (tags, digests)
            };
            if !labels_match(&config, &filters.label) {
                continue;
            }
            if before.is_some_and(|b| created >= b) || since.is_some_and(|s| created <= s) {
                continue;
            }
            let size = rec.size();
            out.push(json!({
                "Id": rec.id,
                "ParentId": rec.parent.as_ref().map(|p| p.to_string()).unwrap_or_default(),
                "RepoTags": tags.iter().map(|t| t.familiar()).collect::<Vec<_>>(),
                "RepoDigests": digests.iter().map(|t| t.familiar()).collect::<Vec<_>>(),
                "Created": created,
                "Size": size,
                "VirtualSize": size,
                "SharedSize": -1,
                "Labels": if labels.is_null() { json!({}) } else { labels },
                "Containers": -1,
            }));
        }
        out.sort_by_key(|v| std::cmp::Reverse(v["Created"].as_i64().unwrap_or(0)));
        Ok(out)
    }

    /// The body of `GET /images/{name}/json`.
    pub fn inspect(&self, name: &str) -> Result<Value> {
        let rec = self.resolve(name)?;
        let config = self.config(&rec)?;
        let refs = self.references()?;
        let (tags, digests) = refs.get(&rec.id).cloned().unwrap_or_default();
        let chains = chain_ids(&rec.diff_ids());
        let lower: Vec<String> = chains
            .iter()
            .rev()
            .map(|c| self.snapshots.fs_path(c).display().to_string())
            .collect();
        let size = rec.size();
        Ok(json!({
            "Id": rec.id,
            "RepoTags": tags.iter().map(|t| t.familiar()).collect::<Vec<_>>(),
            "RepoDigests": digests.iter().map(|t| t.familiar()).collect::<Vec<_>>(),
            "Parent": rec.parent.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            "Comment": config["comment"].as_str().unwrap_or(""),
            "Created": config["created"].as_str().unwrap_or(""),
            "Container": config["container"].as_str().unwrap_or(""),
            "ContainerConfig": if config["container_config"].is_object() {
                config["container_config"].clone()
            } else {
                empty_container_config()
            },
            "DockerVersion": config["docker_version"].as_str().unwrap_or(""),
            "Author": config["author"].as_str().unwrap_or(""),
            "Config": config["config"],
            "Architecture": config["architecture"],
            "Variant": config["variant"],
            "Os": config["os"],
            "Size": size,
            "VirtualSize": size,
            "GraphDriver": {
                "Name": "overlay",
                "Data": { "LowerDir": lower.join(":") },
            },
            "RootFS": {
                "Type": "layers",
                "Layers": rec.diff_ids(),
            },
            "Metadata": { "LastTagTime": rec.last_tag_time },
            "Descriptor": {
                "mediaType": rec.manifest_media_type,
                "digest": rec.manifest,
                "size": self.content.size(&rec.manifest).unwrap_or(0),
            },
        }))
    }

    /// The body of `GET /images/{name}/history`: newest first.
    pub fn history(&self, name: &str) -> Result<Value> {
        let rec = self.resolve(name)?;
        let config = self.config(&rec)?;
        let refs = self.references()?;
        let empty = Vec::new();
        let history = config["history"].as_array().unwrap_or(&empty);
        let mut sizes = rec.layers.iter().map(|l| l.unpacked_size);
        let mut out: Vec<Value> = history
            .iter()
            .map(|h| {
                let size = if h["empty_layer"].as_bool().unwrap_or(false) {
                    0
                } else {
                    sizes.next().unwrap_or(0)
                };
                json!({
                    "Id": "<missing>",
                    "Created": h["created"].as_str().map(unix_time).unwrap_or(0),
                    "CreatedBy": h["created_by"].as_str().unwrap_or(""),
                    "Tags": Value::Null,
                    "Size": size,
                    "Comment": h["comment"].as_str().unwrap_or(""),
                })
            })
            .collect();
        if out.is_empty() {
            out.push(
                json!({"Id": "<missing>", "Created": 0, "CreatedBy": "", "Tags": null,
                "Size": rec.size(), "Comment": ""}),
            );
        }
        out.reverse();
        // As dockerd: the rows that an image of the parent chain added carry its ID
        // and tags (one history entry per build step); the rest stay `<missing>`.
        let mut cur = Some(rec);
        for row in out.iter_mut() {
            let Some(img) = cur.take() else { break };
            let tags: Vec<String> = refs
                .get(&img.id)
                .map(|(t, _)| t.iter().map(|r| r.familiar()).collect())
                .unwrap_or_default();
            row["Id"] = json!(img.id);
            row["Tags"] = json!(tags);
            cur = img
                .parent
                .as_ref()
                .and_then(|p| self.meta.image(p).ok().flatten());
        }
        Ok(Value::Array(out))
    }

    /// Points `repo:tag` at the image `name`.
    pub fn tag(&self, name: &str, repo: &str, tag: &str) -> Result<()> {
        let rec = self.resolve(name)?;
        let full = if tag.is_empty() {
            repo.to_string()
        } else {
            format!("{repo}:{tag}")
        };
        let r = Reference::parse_with_default_tag(&full)?;
        if r.digest.is_some() {
            return Err(Error::Invalid(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        self.meta.set_tag(&r.to_string(), &rec.id)?;
        Ok(())
    }

    /// Tells the store which images containers use: those are never deleted (a forced
    /// delete only untags them) nor pruned.
    pub fn set_users(&self, f: ImageUsers) {
        *self.users.write().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    fn user_of(&self, id: &Digest) -> Option<String> {
        let g = self.users.read().unwrap_or_else(|p| p.into_inner());
        g.as_ref().and_then(|f| f().remove(&id.to_string()))
    }

    /// Removes an image reference, and the image if nothing else names it, like
    /// `DELETE /images/{name}`. Returns Docker's list of `Untagged`/`Deleted` items.
    pub async fn delete(&self, name: &str, force: bool, no_prune: bool) -> Result<Vec<Value>> {
        let rec = self.resolve(name)?;
        let refs = self.references()?;
        let (tags, digests) = refs.get(&rec.id).cloned().unwrap_or_default();
        let mut out = Vec::new();
        // A name that resolves as a tag or digest reference removes that reference;
        // anything else (an ID or ID prefix) removes the image.
        let via_reference = self
            .reference_key(name)?
            .filter(|(_, id)| *id == rec.id)
            .map(|(key, _)| key);
        let user = self.user_of(&rec.id);
        if let Some(key) = via_reference {
            let r = Reference::parse_with_default_tag(name)?;
            let remaining = tags.iter().filter(|t| t.to_string() != key).count();
            if let (0, Some(c), false) = (remaining, &user, force) {
                return Err(Error::Conflict(format!(
                    "conflict: unable to remove repository reference \"{}\" (must force) - container {} is using its referenced image {}",
                    r.familiar(),
                    &c[..c.len().min(12)],
                    rec.id.short()
                )));
            }
            self.meta.remove_reference(&key)?;
            out.push(json!({"Untagged": r.familiar()}));
            if remaining > 0 || user.is_some() {
                // As dockerd: with the last tag of a repository go its digest
                // references, or `images` would keep a `<none>` row for it.
                let last_of_repo = r.digest.is_none()
                    && !tags
                        .iter()
                        .any(|t| t.to_string() != key && t.name() == r.name());
                if last_of_repo {
                    for d in digests.iter().filter(|d| d.name() == r.name()) {
                        self.meta.remove_reference(&d.to_string())?;
                        out.push(json!({"Untagged": d.familiar()}));
                    }
                }
                return Ok(out);
            }
        } else if let Some(c) = &user {
            return Err(Error::Conflict(format!(
                "conflict: unable to delete {} (cannot be forced) - image is being used by container {}",
                rec.id.short(),
                &c[..c.len().min(12)]
            )));
        } else {
            let repos: HashSet<String> = tags.iter().map(|t| t.name()).collect();
            if repos.len() > 1 && !force {
                return Err(Error::Conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    rec.id.short()
                )));
            }
            for t in &tags {
                out.push(json!({"Untagged": t.familiar()}));
            }
        }
        for d in &digests {
            if !out.iter().any(|o| o["Untagged"] == json!(d.familiar())) {
                out.push(json!({"Untagged": d.familiar()}));
            }
        }
        self.meta.remove_image(&rec.id)?;
        out.push(json!({"Deleted": rec.id}));
        if !no_prune {
            for id in self.prune_parents(rec.parent.as_ref())? {
                out.push(json!({"Deleted": id}));
            }
        }
        self.gc().await?;
        Ok(out)
    }

    /// Removes `parent` and its own parents while each is nameless, used by no
    /// container and the parent of no other image (an image's build steps, once the
    /// image is gone), as dockerd does after a delete. Returns the IDs removed.
    fn prune_parents(&self, parent: Option<&Digest>) -> Result<Vec<Digest>> {
        let mut removed = Vec::new();
        let mut next = parent.cloned();
        while let Some(id) = next.take() {
            let Some(img) = self.meta.image(&id)? else {
                break;
            };
            let named = self.references()?.contains_key(&img.id);
            let has_children = self
                .meta
                .images()?
                .iter()
                .any(|i| i.parent.as_ref() == Some(&img.id));
            if named || has_children || self.user_of(&img.id).is_some() {
                break;
            }
            self.meta.remove_image(&img.id)?;
            removed.push(img.id.clone());
            next = img.parent;
        }
        Ok(removed)
    }

    /// `POST /build/prune`: removes the build cache's entries that nothing else holds
    /// (no name, no container); with `all` false only those no named image was built
    /// on. Returns the IDs removed and the bytes freed.
    pub async fn prune_build_cache(&self, all: bool) -> Result<(Vec<Digest>, u64)> {
        let refs = self.references()?;
        let entries: HashSet<Digest> = self.meta.cache_entries()?.into_iter().collect();
        let images = self.meta.images()?;
        // Ancestors of named images: kept unless `all`.
        let mut kept: HashSet<Digest> = HashSet::new();
        if !all {
            let by_id: HashMap<Digest, &ImageRecord> =
                images.iter().map(|i| (i.id.clone(), i)).collect();
            for img in images.iter().filter(|i| refs.contains_key(&i.id)) {
                let mut p = img.parent.clone();
                while let Some(id) = p {
                    if !kept.insert(id.clone()) {
                        break;
                    }
                    p = by_id.get(&id).and_then(|i| i.parent.clone());
                }
            }
        }
        let mut removed = Vec::new();
        for img in &images {
            if entries.contains(&img.id)
                && !refs.contains_key(&img.id)
                && !kept.contains(&img.id)
                && self.user_of(&img.id).is_none()
            {
                self.meta.remove_image(&img.id)?;
                removed.push(img.id.clone());
            }
        }
        let freed = self.gc().await?;
        Ok((removed, freed))
    }

    /// Removes dangling images (or, with `dangling=false`, every image), narrowed by
    /// `until` and `label` filters, like `POST /images/prune`.
    pub async fn prune(&self, filters: &ImageFilters) -> Result<Value> {
        let all = filters.dangling == Some(false);
        let until = filters.until.as_deref().map(parse_until).transpose()?;
        let refs = self.references()?;
        let mut deleted = Vec::new();
        let images = self.meta.images()?;
        let parents: HashSet<Digest> = images.iter().filter_map(|i| i.parent.clone()).collect();
        for rec in images {
            let (tags, digests) = refs.get(&rec.id).cloned().unwrap_or_default();
            if (!all && !tags.is_empty()) || self.user_of(&rec.id).is_some() {
                continue;
            }
            // Build steps of an image are not dangling: they go with it.
            if !all && parents.contains(&rec.id) {
                continue;
            }
            if self.meta.image(&rec.id)?.is_none() {
                continue; // removed with a child just before
            }
            let config = self.config(&rec).unwrap_or(Value::Null);
            let created = config["created"].as_str().map(unix_time).unwrap_or(0);
            if until.is_some_and(|u| created >= u)
                || !labels_match(&config, &filters.label)
                || (!filters.label_not.is_empty() && labels_match(&config, &filters.label_not))
            {
                continue;
            }
            for t in tags.iter().chain(digests.iter()) {
                deleted.push(json!({"Untagged": t.familiar()}));
            }
            self.meta.remove_image(&rec.id)?;
            deleted.push(json!({"Deleted": rec.id}));
            if !all {
                for id in self.prune_parents(rec.parent.as_ref())? {
                    deleted.push(json!({"Deleted": id}));
                }
            }
        }
        let reclaimed = self.gc().await?;
        Ok(
            json!({"ImagesDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) },
                  "SpaceReclaimed": reclaimed}),
        )
    }

    /// Deletes every blob and snapshot that no image references. Returns bytes freed.
    pub async fn gc(&self) -> Result<u64> {
        let _guard = self.gc_lock.write().await;
        let mut blobs = HashSet::new();
        let mut chains = HashSet::new();
        for rec in self.meta.images()? {
            blobs.extend(rec.blobs().cloned());
            chains.extend(chain_ids(&rec.diff_ids()));
        }
        let mut freed = 0;
        let mut gone = Vec::new();
        for d in self.content.list()? {
            if !blobs.contains(&d) {
                freed += self.content.size(&d).unwrap_or(0);
                self.content.delete(&d)?;
                gone.push(d);
            }
        }
        self.meta.remove_sources(&gone)?;
        for c in self.snapshots.list()? {
            if !chains.contains(&c) {
                freed += self.snapshots.usage(&c);
                self.snapshots.remove(&c)?;
            }
        }
        if !gone.is_empty() {
            tracing::info!(blobs = gone.len(), freed, "garbage collected");
        }
        Ok(freed)
    }

    /// Holds off garbage collection while new content is written.
    pub async fn write_guard(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.gc_lock.read().await
    }

    /// Stores an image record with its references; tags are full reference strings.
    fn commit_image(
        &self,
        rec: &ImageRecord,
        tags: &[Reference],
        digests: &[Reference],
    ) -> Result<()> {
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        let digests: Vec<String> = digests.iter().map(|t| t.to_string()).collect();
        self.meta.put_image(rec, &tags, &digests)?;
        Ok(())
    }
}

/// Filters of `GET /images/json`.
#[derive(Debug, Default)]
pub struct ImageFilters {
    /// `all=1`: also the intermediate images of builds.
    pub all: bool,
    /// `dangling=true|false`.
    pub dangling: Option<bool>,
    /// `reference=PATTERN` (with `*` wildcards).
    pub reference: Vec<String>,
    /// `label=KEY` or `label=KEY=VALUE`.
    pub label: Vec<String>,
    /// `before=IMAGE`.
    pub before: Option<String>,
    /// `since=IMAGE`.
    pub since: Option<String>,
    /// `until=TIMESTAMP|DURATION` (prune only).
    pub until: Option<String>,
    /// `label!=KEY` or `label!=KEY=VALUE` (prune only): images whose labels match them all
    /// are kept.
    pub label_not: Vec<String>,
}

impl ImageFilters {
    /// Parses Docker's `filters` query JSON (`{"key":["v"]}` or `{"key":{"v":true}}`).
    pub fn parse(json_text: Option<&str>) -> Result<Self> {
        let mut f = Self::default();
        let Some(text) = json_text.filter(|t| !t.is_empty()) else {
            return Ok(f);
        };
        let map: BTreeMap<String, Value> = serde_json::from_str(text)
            .map_err(|e| Error::Invalid(format!("invalid filters: {e}")))?;
        for (k, v) in map {
            let values: Vec<String> = match v {
                Value::Array(a) => a
                    .into_iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                Value::Object(o) => o
                    .into_iter()
                    .filter(|(_, b)| b.as_bool() == Some(true))
                    .map(|(k, _)| k)
                    .collect(),
                _ => Vec::new(),
            };
            match k.as_str() {
                "dangling" => {
                    f.dangling = match values.first().map(String::as_str) {
                        None => None,
                        Some("true" | "1") => Some(true),
                        Some("false" | "0") => Some(false),
                        // dockerd's message, its Go slice printed as `[a b]`.
                        Some(_) => {
                            return Err(Error::Invalid(format!(
                                "Invalid filter 'dangling=[{}]'",
                                values.join(" ")
                            )))
                        }
                    };
                }
                "reference" => f.reference = values,
                "label" => f.label = values,
                "before" => f.before = values.into_iter().next(),
                "since" => f.since = values.into_iter().next(),
                "until" => f.until = values.into_iter().next(),
                "label!" => f.label_not = values,
                other => return Err(Error::Invalid(format!("invalid filter '{other}'"))),
            }
        }
        Ok(f)
    }
}

/// A container config with every field at its zero value, as dockerd shows for images
/// that were not made from a container.
fn empty_container_config() -> Value {
    serde_json::to_value(config::RunConfig::default()).unwrap_or(Value::Null)
}

/// True if the config's labels satisfy every `KEY` or `KEY=VALUE` filter.
fn labels_match(config: &Value, filters: &[String]) -> bool {
    let labels = &config["config"]["Labels"];
    filters.iter().all(|l| match l.split_once('=') {
        Some((k, v)) => labels[k].as_str() == Some(v),
        None => !labels[l.as_str()].is_null(),
    })
}

/// Parses an `until` filter: unix seconds, RFC 3339, or a Go-style duration before now
/// (`24h`, `1h30m`, `90s`).
pub fn parse_until(s: &str) -> Result<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    let bad = || {
        Error::Invalid(format!(
            "invalid until filter {s:?}: expected a timestamp or a duration like 24h"
        ))
    };
    let mut secs = 0i64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().map_err(|_| bad())?;
        num.clear();
        secs += n * match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
    }
    if !num.is_empty() || secs == 0 {
        return Err(bad());
    }
    Ok(chrono::Utc::now().timestamp() - secs)
}

/// Matches `*` wildcards (within one path segment, as Docker's reference filter does).
fn glob(pattern: &str, s: &str) -> bool {
    fn rec(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != b'/')
                .any(|i| rec(rest, &s[i..])),
            Some((c, rest)) => s.first() == Some(c) && rec(rest, &s[1..]),
        }
    }
    rec(pattern.as_bytes(), s.as_bytes())
}

/// Seconds since the epoch of an RFC 3339 time (0 if unparsable).
pub fn unix_time(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

/// The current time in RFC 3339 with nanoseconds, as Docker writes it.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_docker() {
        assert!(glob("busy*", "busybox"));
        assert!(glob("busybox:*", "busybox:latest"));
        assert!(!glob("busy*", "x/busybox"));
        assert!(glob("*/bb", "host/bb"));
    }

    #[test]
    fn until_parses() {
        let now = chrono::Utc::now().timestamp();
        assert_eq!(parse_until("1700000000").unwrap(), 1_700_000_000);
        assert!((parse_until("1h30m").unwrap() - (now - 5400)).abs() < 5);
        assert!(parse_until("3d").is_err());
        assert!(parse_until("").is_err());
    }

    #[test]
    fn filters_parse_both_shapes() {
        let f =
            ImageFilters::parse(Some(r#"{"dangling":["true"],"reference":{"bb":true}}"#)).unwrap();
        assert_eq!(f.dangling, Some(true));
        assert_eq!(f.reference, vec!["bb".to_string()]);
        assert!(ImageFilters::parse(Some(r#"{"bogus":["x"]}"#)).is_err());
    }
}
