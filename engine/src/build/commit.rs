//! `docker commit`, `docker diff` and `docker export`: a container's changes as an
//! image, as a list, and its whole file system as a tar. They read the container's
//! upper directory and the image's layers through descriptors (see [`super::layer`]);
//! the container is left as it is.

use super::layer::{self, Change, Walk};
use super::BuildService;
use crate::containers::{Error, Result};
use crate::content::Digest;
use crate::images::config::EnvExt;
use crate::images::config::RunConfig;
use crate::images::create::{child_config, Child};
use crate::images::reference::Reference;
use crate::images::store::ImageRecord;
use crate::snapshots::chain_ids;
use berth_fs::Root;
use nix::fcntl::OFlag;
use std::io::{BufReader, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;

/// What `POST /commit` asks for besides the container.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `repo` and `tag`.
    pub reference: Option<Reference>,
    /// `comment`.
    pub comment: String,
    /// `author`.
    pub author: String,
    /// `pause` (dockerd's default: true).
    pub pause: bool,
    /// `changes`: Dockerfile instructions applied to the config.
    pub changes: Vec<String>,
    /// The request body: a config to use instead of the container's.
    pub config: Option<RunConfig>,
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// Fills what `user` left empty from `base`, as dockerd's commit merges configs.
fn merge(user: &mut RunConfig, base: &RunConfig) {
    if user.user.is_empty() {
        user.user = base.user.clone();
    }
    for k in base.exposed_ports.keys() {
        user.exposed_ports.entry(k.clone()).or_default();
    }
    if user.env().is_empty() {
        user.env = base.env.clone();
    } else {
        for e in base.env() {
            let key = e.split('=').next().unwrap_or("");
            if !user.env().iter().any(|u| u.split('=').next() == Some(key)) {
                user.env.get_or_insert_with(Vec::new).push(e.clone());
            }
        }
    }
    let labels = user.labels.get_or_insert_with(Default::default);
    for (k, v) in base.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if user.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if user.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            user.cmd = base.cmd.clone();
        }
        if user.entrypoint.is_none() {
            user.entrypoint = base.entrypoint.clone();
        }
    }
    if user.healthcheck.is_none() {
        user.healthcheck = base.healthcheck.clone();
    }
    if user.working_dir.is_empty() {
        user.working_dir = base.working_dir.clone();
    }
    match (&mut user.volumes, &base.volumes) {
        (Some(u), Some(b)) if !u.is_empty() => {
            for k in b.keys() {
                u.entry(k.clone()).or_default();
            }
        }
        (u, b) => *u = b.clone(),
    }
    if user.stop_signal.is_empty() {
        user.stop_signal = base.stop_signal.clone();
    }
}

impl BuildService {
    /// The container's upper directory and its image's layers (top first).
    fn layers_of(&self, name: &str) -> Result<(String, PathBuf, Vec<PathBuf>, ImageRecord)> {
        let entry = self.containers.get(name)?;
        let rec = entry.record();
        let image = self
            .images
            .resolve(&rec.image_id)
            .map_err(|_| Error::NotFound(format!("No such image: {}", rec.image_id)))?;
        let mut lowers: Vec<PathBuf> = chain_ids(&image.diff_ids())
            .iter()
            .map(|c| self.images.snapshots.fs_path(c))
            .collect();
        lowers.reverse();
        Ok((
            rec.id.clone(),
            self.containers.dir(&rec.id).join("upper"),
            lowers,
            image,
        ))
    }

    fn lower_view(&self, lowers: &[PathBuf]) -> Result<Option<Root>> {
        match lowers {
            [] => Ok(None),
            l => berth_fs::view::open_layers(l, &self.views)
                .map(Some)
                .map_err(internal),
        }
    }

    /// `GET /containers/{id}/changes`.
    pub fn changes(&self, name: &str) -> Result<Vec<Change>> {
        let (_, upper, lowers, _) = self.layers_of(name)?;
        let lower = self.lower_view(&lowers)?;
        let root = Root::open(&upper).map_err(internal)?;
        let fd = root
            .resolve(".", OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .map_err(internal)?;
        layer::changes(fd.as_fd(), lower.as_ref()).map_err(internal)
    }

    /// `GET /containers/{id}/export`: the container's merged file system as a tar,
    /// written into `out` as the walk goes (blocking).
    pub fn export<W: Write>(&self, name: &str, out: W) -> Result<()> {
        let (_, upper, lowers, _) = self.layers_of(name)?;
        let mut layers = vec![upper];
        layers.extend(lowers);
        let root = berth_fs::view::open_layers(&layers, &self.views).map_err(internal)?;
        let fd = root
            .resolve(".", OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .map_err(internal)?;
        layer::write_tar(fd.as_fd(), out, Walk::Plain, None)
            .map(|_| ())
            .map_err(internal)
    }

    /// `POST /commit`: the container's changes as a new image on its image.
    pub async fn commit(&self, name: &str, o: CommitOptions) -> Result<Digest> {
        let entry = self.containers.get(name)?;
        let rec = entry.record();
        let paused = o.pause && entry.status() == crate::containers::state::Status::Running;
        if paused {
            self.containers.pause(&rec.id, true).await?;
        }
        let r = self.commit_inner(&rec.id, o).await;
        if paused {
            if let Err(e) = self.containers.pause(&rec.id, false).await {
                tracing::warn!(id = %rec.id, error = %e, "unpausing after commit");
            }
        }
        r
    }

    async fn commit_inner(&self, id: &str, o: CommitOptions) -> Result<Digest> {
        let entry = self.containers.get(id)?;
        let rec = entry.record();
        let container_config: RunConfig = rec.config.clone();
        let mut config = o.config.clone().unwrap_or_else(|| container_config.clone());
        super::changes::apply(&mut config, &o.changes).map_err(Error::Invalid)?;
        merge(&mut config, &container_config);
        let (_, upper, lowers, image) = self.layers_of(id)?;
        let parent_cfg = self.images.image_config(&image).map_err(internal)?;
        let guard = self.images.write_guard().await;
        let images = self.images.clone();
        let lower = self.lower_view(&lowers)?;
        let parent_diffs = image.diff_ids();
        let layer = tokio::task::spawn_blocking(move || -> Result<Option<_>> {
            let root = Root::open(&upper).map_err(internal)?;
            let fd = root
                .resolve(".", OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .map_err(internal)?;
            let Some(stored) = layer::store_filtered(
                &images.content,
                fd.as_fd(),
                Walk::Upper,
                Some(lower.as_ref()),
            )
            .map_err(internal)?
            else {
                return Ok(None);
            };
            let rec = stored.record;
            let mut diffs = parent_diffs.clone();
            diffs.push(rec.diff_id.clone());
            let chains = chain_ids(&diffs);
            let blob = images.content.open_blob(&rec.digest).map_err(internal)?;
            images
                .snapshots
                .unpack(
                    chains.last().unwrap_or(&rec.diff_id),
                    chains.len().checked_sub(2).map(|i| &chains[i]),
                    &rec.diff_id,
                    BufReader::new(blob),
                )
                .map_err(internal)?;
            Ok(Some(rec))
        })
        .await
        .map_err(internal)??;
        let child = Child {
            config,
            container_config,
            container: id.to_string(),
            author: o.author.clone(),
            comment: o.comment.clone(),
            diff_id: layer.as_ref().map(|l| l.diff_id.clone()),
        };
        let cfg = child_config(Some(&parent_cfg), &child);
        let tags: Vec<Reference> = o.reference.iter().cloned().collect();
        let images = self.images.clone();
        let new = tokio::task::spawn_blocking(move || {
            images.create_image(Some(&image), layer, &cfg, &tags, None)
        })
        .await
        .map_err(internal)?
        .map_err(internal)?;
        drop(guard);
        let mut attrs = vec![
            ("comment", o.comment.clone()),
            ("imageID", new.id.to_string()),
        ];
        if let Some(r) = &o.reference {
            attrs.push(("imageRef", r.familiar()));
        }
        self.containers.emit("commit", &rec, &attrs);
        Ok(new.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_fills_what_is_empty() {
        let base = RunConfig {
            user: "app".into(),
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            cmd: Some(vec!["sh".into()]),
            working_dir: "/w".into(),
            ..Default::default()
        };
        let mut user = RunConfig {
            env: Some(vec!["A=2".into()]),
            ..Default::default()
        };
        merge(&mut user, &base);
        assert_eq!(user.user, "app");
        assert_eq!(user.env(), ["A=2", "PATH=/bin"]);
        assert_eq!(user.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(user.working_dir, "/w");
    }
}
