//! Building images, as dockerd's classic builder (`POST /build`, the docker CLI with
//! `DOCKER_BUILDKIT=0`), and the image-authoring operations around it: `docker commit`,
//! `docker diff` and `docker export`.
//!
//! - [`dockerfile`]: the pure front end (text → typed stages and instructions).
//! - [`context`]: the client's tar, indexed (never unpacked) as it arrives, with
//!   dockerd's checksums.
//! - [`dispatch`]: one function per instruction, the cache asked before each step;
//!   [`run`] runs RUN steps as containers through the container core; [`copy`] does
//!   COPY and ADD from a [`source`] (the context's index, or a root on disk), and
//!   [`download`] fetches ADD's URLs; [`layer`] turns directories into layer tars (and
//!   diffs).
//! - [`commit`]: commit, diff and export of containers.
//!
//! Every step's result is an ordinary image (with its parent recorded) found again
//! through the metadata store's build-cache index: a rebuild of an unchanged project
//! runs no container and writes no layer.

pub mod args;
pub mod changes;
pub mod commit;
pub mod context;
pub mod copy;
mod dispatch;
pub mod dockerfile;
pub mod download;
pub mod error;
pub mod layer;
pub mod options;
pub mod output;
mod run;
pub mod source;

pub use error::{BuildError, Result};

use crate::containers::ContainerService;
use crate::content::Digest;
use crate::images::ImageService;
use context::Context;
use dockerfile::Dockerfile;
use options::BuildOptions;
use output::Output;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A Dockerfile ready to be built.
pub struct Plan {
    /// Its name in the context.
    pub name: String,
    /// Its stages (cut at `target`, with `--label`s added).
    pub file: Dockerfile,
}

/// The builder of a daemon.
pub struct BuildService {
    /// The image store.
    pub images: Arc<ImageService>,
    /// The container core (RUN steps, commit, diff, export).
    pub containers: Arc<ContainerService>,
    /// Where contexts are spooled.
    tmp: PathBuf,
    /// Where overlay views are briefly mounted.
    views: PathBuf,
    /// Checksums of `COPY --from` sources already taken: image ID + path → checksum.
    path_cache: Mutex<HashMap<String, String>>,
}

impl BuildService {
    /// The builder over these stores; `exec_root` holds the scratch mount points.
    pub fn new(
        images: Arc<ImageService>,
        containers: Arc<ContainerService>,
        exec_root: &std::path::Path,
    ) -> Arc<Self> {
        Arc::new(Self {
            tmp: images.tmp_dir().to_path_buf(),
            images,
            containers,
            views: exec_root.join("views"),
            path_cache: Mutex::new(HashMap::new()),
        })
    }

    /// Removes the step containers a crash left (no build survives a restart).
    pub async fn sweep(&self) {
        for e in self.containers.all() {
            let rec = e.record();
            if rec.labels().contains_key(run::BUILD_LABEL) {
                tracing::info!(id = %rec.id, "removing a build step container left by a crash");
                if let Err(err) = self.containers.remove_with(&rec.id, true, true).await {
                    tracing::warn!(id = %rec.id, error = %err, "removing a leftover build container");
                }
            }
        }
    }

    /// Receives a context tar from `reader` (blocking work, off the async workers).
    pub async fn receive<R: std::io::Read + Send + 'static>(&self, reader: R) -> Result<Context> {
        let tmp = self.tmp.clone();
        tokio::task::spawn_blocking(move || Context::receive(reader, &tmp))
            .await
            .map_err(|e| BuildError::Internal(e.to_string()))?
    }

    /// Reads and parses the Dockerfile, applies `.dockerignore`, cuts at the target
    /// and adds the `--label` steps: everything that can fail before the build starts
    /// printing.
    pub fn plan(ctx: &mut Context, opts: &BuildOptions) -> Result<Plan> {
        let (name, text) = ctx.dockerfile(&opts.dockerfile)?;
        let mut file = match dockerfile::parse(&text) {
            Ok(f) => f,
            Err(dockerfile::Error::Parse(source)) => {
                return Err(BuildError::Parse { name, source })
            }
            Err(e) => return Err(BuildError::Instruction(e)),
        };
        ctx.apply_dockerignore()?;
        if let Some(t) = &opts.target {
            let Some(i) = file
                .stages
                .iter()
                .position(|s| s.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(t)))
            else {
                return Err(BuildError::Target(t.clone()));
            };
            file.stages.truncate(i + 1);
        }
        if let Some(last) = file.stages.last_mut() {
            for (k, v) in &opts.labels {
                last.commands
                    .push(dockerfile::instructions::label_option(k, v));
            }
        }
        Ok(Plan { name, file })
    }

    /// Runs a planned build, writing its output; returns the image (tagged as asked).
    pub async fn build(
        self: &Arc<Self>,
        ctx: Context,
        plan: Plan,
        opts: &BuildOptions,
        out: &Output,
    ) -> Result<Digest> {
        let escape = plan.file.escape;
        let mut b = dispatch::Builder::new(self, Arc::new(ctx), opts, out, escape);
        let image = b.run(plan).await?;
        out.stream(format!("Successfully built {}\n", image.id.short()));
        for t in &opts.tags {
            self.images
                .tag_image(&image.id, t)
                .map_err(|e| BuildError::Internal(e.to_string()))?;
            out.stream(format!("Successfully tagged {}\n", t.familiar()));
        }
        Ok(image.id)
    }
}
