//! RUN: the step's command runs as a container of the current image through the
//! container core (the image's env, user, workdir and shell; the build's network and
//! limits; no health check), its output streamed into the build's, and what it changed
//! in its upper directory becomes the step's layer. A failing command reports its exit
//! code; a client that goes away stops the build: the container is killed and removed
//! and nothing of the step is kept.

use super::dispatch::{short, Builder, State};
use super::error::{BuildError, Result};
use super::layer::{self, Walk};
use crate::containers::io::Chunk;
use crate::images::config::EnvExt;
use crate::snapshots::chain_ids;
use berth_api::container::{Config, ContainerCreateRequest, HealthConfig};
use berth_fs::Root;
use std::io::BufReader;

/// Label marking a build's step containers (removed at startup if a crash left any).
pub const BUILD_LABEL: &str = "io.berth.build";

/// Bytes of a stream not yet shown because they end inside a UTF-8 character.
#[derive(Default)]
struct Utf8Carry(Vec<u8>);

impl Utf8Carry {
    fn take(&mut self, bytes: &[u8]) -> String {
        self.0.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.0) {
            Ok(_) => self.0.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.0.len(),
        };
        let rest = self.0.split_off(valid);
        let text = String::from_utf8_lossy(&self.0).into_owned();
        self.0 = rest;
        text
    }
}

pub(super) async fn run_step(b: &mut Builder<'_>, st: &mut State, argv: Vec<String>) -> Result<()> {
    let build_args = st.args.filter_allowed(st.config.env());
    let mut save_cmd = argv.clone();
    if !build_args.is_empty() {
        let mut recorded: Vec<String> = build_args
            .iter()
            .filter(|e| st.args.recorded(e.split('=').next().unwrap_or("")))
            .cloned()
            .collect();
        recorded.sort();
        let mut cmd = vec![format!("|{}", recorded.len())];
        cmd.extend(recorded);
        cmd.extend(argv.iter().cloned());
        save_cmd = cmd;
    }
    let mut probe_cfg = st.config.clone();
    probe_cfg.cmd = Some(save_cmd.clone());
    if !save_cmd.is_empty() {
        probe_cfg.entrypoint = None;
    }
    if b.probe(st, &probe_cfg).await? {
        return Ok(());
    }
    let Some(image) = st.image.clone() else {
        return Err(BuildError::Step(
            "RUN needs a file system to run in: this stage is FROM scratch and has nothing yet (no /bin/sh)".into(),
        ));
    };
    let containers = b.svc.containers.clone();
    let mut env = st.config.env().to_vec();
    env.extend(build_args);
    let c = &st.config;
    let req = ContainerCreateRequest {
        config: Config {
            image: image.id.to_string(),
            cmd: Some(argv.clone()),
            // Given and empty: the image's ENTRYPOINT does not wrap the step's command.
            entrypoint: Some(Vec::new()),
            env: Some(env),
            user: c.user.clone(),
            working_dir: c.working_dir.clone(),
            volumes: c.volumes.clone(),
            labels: Some([(BUILD_LABEL.to_string(), b.build_id.clone())].into()),
            healthcheck: Some(HealthConfig {
                test: vec!["NONE".into()],
                ..HealthConfig::default()
            }),
            ..Config::default()
        },
        host_config: Some(b.opts.host_config()),
        networking_config: None,
    };
    let (id, warnings) = containers
        .create(None, req)
        .await
        .map_err(|e| BuildError::Step(e.to_string()))?;
    for w in warnings {
        b.out.stream(format!(" ---> [Warning] {w}\n"));
    }
    b.out.stream(format!(" ---> Running in {}\n", &id[..12]));
    let outcome = run_container(b, &id).await;
    let remove = b.opts.rm || b.opts.force_rm;
    let result = match outcome {
        Err(e) => Err(e),
        Ok(0) => commit_run(b, st, &id, probe_cfg, !remove).await,
        Ok(code) => Err(BuildError::Run {
            code,
            message: format!(
                "The command '{}' returned a non-zero code: {code}",
                argv.join(" ")
            ),
        }),
    };
    let cancelled = matches!(result, Err(BuildError::Cancelled));
    if remove || cancelled {
        match containers.remove_with(&id, true, true).await {
            Ok(()) if !cancelled => b
                .out
                .stream(format!("Removing intermediate container {}\n", &id[..12])),
            Ok(()) => {}
            Err(e) => b.out.stream(format!(
                "Error removing intermediate container {}: {e}\n",
                &id[..12]
            )),
        }
    }
    result
}

/// Starts the container with its output attached and waits for it. Returns its exit
/// code; stops it if the client goes away.
async fn run_container(b: &Builder<'_>, id: &str) -> Result<i64> {
    let containers = &b.svc.containers;
    let entry = containers
        .get(id)
        .map_err(|e| BuildError::Internal(e.to_string()))?;
    let mut output = entry.out.subscribe();
    let mut gen = entry.gen.subscribe();
    if let Err(e) = containers.start(id).await {
        return Err(BuildError::Step(e.to_string()));
    }
    let (mut out1, mut out2) = (Utf8Carry::default(), Utf8Carry::default());
    let cancelled = loop {
        tokio::select! {
            chunk = output.recv() => match chunk {
                Ok(Chunk::Data(2, bytes)) => {
                    let t = out2.take(&bytes);
                    if !t.is_empty() { b.out.stderr(&t) }
                }
                Ok(Chunk::Data(_, bytes)) => {
                    let t = out1.take(&bytes);
                    if !t.is_empty() { b.out.stream(t) }
                }
                Ok(Chunk::End) | Err(tokio::sync::broadcast::error::RecvError::Closed) => break false,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            },
            _ = b.out.gone() => break true,
        }
    };
    if cancelled {
        let _ = containers.kill(id, Some("KILL")).await;
        return Err(BuildError::Cancelled);
    }
    let exited = tokio::select! {
        // The monitor records the exit (status, code) before it counts it.
        r = gen.wait_for(|g| g.exits > 0 || g.removed) => r.map(|g| g.exit_code).ok(),
        _ = b.out.gone() => None,
    };
    match exited {
        Some(code) => Ok(code),
        None => {
            let _ = containers.kill(id, Some("KILL")).await;
            Err(BuildError::Cancelled)
        }
    }
}

/// The container's changes as the step's layer and image. A container that is kept
/// (`rm=false`) keeps its files: its layer is copied out; else its upper directory
/// becomes the snapshot.
async fn commit_run(
    b: &Builder<'_>,
    st: &mut State,
    id: &str,
    cc: crate::images::config::RunConfig,
    keep: bool,
) -> Result<()> {
    let svc = b.svc.clone();
    let upper = svc.containers.dir(id).join("upper");
    let lowers = st.lowers(&svc);
    let parent_chain = st
        .image
        .as_ref()
        .and_then(|i| chain_ids(&i.diff_ids()).pop());
    let parent_diffs = st.image.as_ref().map(|i| i.diff_ids()).unwrap_or_default();
    let images = svc.images.clone();
    let guard = images.write_guard().await;
    let stored = tokio::task::spawn_blocking(move || -> Result<Option<_>> {
        let internal = |e: &dyn std::fmt::Display| {
            BuildError::Internal(format!("failed to commit the step: {e}"))
        };
        let lower = match lowers.as_slice() {
            [] => None,
            l => Some(berth_fs::view::open_layers(l, &svc.views).map_err(|e| internal(&e))?),
        };
        let chain_of = |diff: &crate::content::Digest| {
            let mut d = parent_diffs.clone();
            d.push(diff.clone());
            chain_ids(&d).pop().unwrap_or_else(|| diff.clone())
        };
        if keep {
            let root = Root::open(&upper).map_err(|e| internal(&e))?;
            let fd = root
                .resolve(
                    ".",
                    nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
                )
                .map_err(|e| internal(&e))?;
            let Some(stored) = layer::store_filtered(
                &svc.images.content,
                std::os::fd::AsFd::as_fd(&fd),
                Walk::Upper,
                Some(lower.as_ref()),
            )
            .map_err(|e| internal(&e))?
            else {
                return Ok(None);
            };
            let rec = stored.record;
            let blob = svc
                .images
                .content
                .open_blob(&rec.digest)
                .map_err(|e| internal(&e))?;
            svc.images
                .snapshots
                .unpack(
                    &chain_of(&rec.diff_id),
                    parent_chain.as_ref(),
                    &rec.diff_id,
                    BufReader::new(blob),
                )
                .map_err(|e| internal(&e))?;
            return Ok(Some(rec));
        }
        {
            let root = Root::open(&upper).map_err(|e| internal(&e))?;
            layer::remove_stubs(&root, lower.as_ref()).map_err(|e| internal(&e))?;
        }
        let mut prepared = svc
            .images
            .snapshots
            .adopt_dir(&upper)
            .map_err(|e| internal(&e))?;
        let Some(rec) = super::dispatch::store_prepared(&svc, &mut prepared, Walk::Upper)? else {
            return Ok(None);
        };
        svc.images
            .snapshots
            .commit(prepared, &chain_of(&rec.diff_id), parent_chain.as_ref())
            .map_err(|e| internal(&e))?;
        Ok(Some(rec))
    })
    .await
    .map_err(|e| BuildError::Internal(e.to_string()))??;
    let r = b.make_image(st, stored, cc, id.to_string()).await;
    drop(guard);
    tracing::debug!(container = %id, image = %st.image.as_ref().map(|i| short(&i.id)).unwrap_or_default(), "RUN step committed");
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_utf8_is_carried() {
        let mut c = Utf8Carry::default();
        let e = "é".as_bytes();
        assert_eq!(c.take(&[b'a', e[0]]), "a");
        assert_eq!(c.take(&[e[1], b'b']), "éb");
        assert_eq!(c.take(&[0xff, b'c']), "\u{fffd}c");
    }
}
