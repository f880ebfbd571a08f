//! A container's mounts: binds (`-v /host:/ctr`), volumes (named, anonymous, the image's
//! `VOLUME`s), `--mount` and `--tmpfs`; filled from the image when a volume is new
//! (copy-up, resolved inside the image), mounted while containers use them, and as OCI
//! mounts for the spec. Everything here touches disks or mounts: it runs on the
//! blocking pool.

use super::record::{MountRecord, Record};
use super::{internal, random_hex, ContainerService, Error, Result};
use berth_api::container::{Config, HostConfig, MountPoint};
use berth_api::mount::{MountError, MountKind};
use oci_spec::runtime::{Mount, MountBuilder};
use std::path::{Path, PathBuf};

fn oci_mount(dst: &str, kind: &str, source: &str, options: Vec<String>) -> Result<Mount> {
    MountBuilder::default()
        .destination(dst)
        .typ(kind)
        .source(source)
        .options(options)
        .build()
        .map_err(|e| Error::Internal(format!("mount {dst}: {e}")))
}

/// tmpfs options as berthd mounts them: never setuid, devices or executables unless
/// asked, then the request's (`size=1m`, `mode=700`); `ro`/`rw` are the mount's `RW`.
fn tmpfs_mode(given: &str) -> String {
    let mut opts = vec!["nosuid", "nodev", "noexec"];
    opts.extend(
        given
            .split(',')
            .filter(|o| !o.is_empty() && *o != "ro" && *o != "rw"),
    );
    opts.join(",")
}

impl ContainerService {
    /// The container's mounts, as dockerd registers them (berth-api's `collect`:
    /// Binds, Mounts, Tmpfs, parsed and checked in dockerd's words), then an anonymous
    /// volume for every path of Config.Volumes (the image's VOLUME and `-v /path`) not
    /// mounted otherwise. New volumes start with the image's content. `layers` are the
    /// image's, base first. Blocking. On failure the volumes it made are removed again.
    pub(crate) fn make_mounts(
        &self,
        hc: &HostConfig,
        config: &Config,
        layers: &[PathBuf],
    ) -> Result<Vec<MountRecord>> {
        let mut made = Vec::new();
        let r = self.make_mounts_into(hc, config, layers, &mut made);
        if r.is_err() {
            for name in made {
                let _ = self.volumes.remove(&name);
            }
        }
        r
    }

    fn make_mounts_into(
        &self,
        hc: &HostConfig,
        config: &Config,
        layers: &[PathBuf],
        made: &mut Vec<String>,
    ) -> Result<Vec<MountRecord>> {
        let specs = berth_api::mount::collect(hc).map_err(|e| Error::Invalid(e.to_string()))?;
        let mut out: Vec<MountRecord> = Vec::new();
        // The image's file system, opened once and only if a volume needs its content.
        let mut image_root: Option<berth_fs::Root> = None;
        let mut volume = |name: &str,
                          dst: &str,
                          rw: bool,
                          mode: &str,
                          anon: bool,
                          copy: bool,
                          made: &mut Vec<String>|
         -> Result<MountRecord> {
            if self.volumes.inspect(name).is_err() {
                made.push(name.to_string());
            }
            self.volumes
                .create(name, &serde_json::Value::Null, &serde_json::Value::Null)?;
            if copy {
                self.copy_up(&mut image_root, layers, dst, name)?;
            }
            Ok(MountRecord {
                point: MountPoint {
                    kind: "volume".into(),
                    name: name.into(),
                    source: self.volumes.data(name).display().to_string(),
                    destination: dst.into(),
                    driver: "local".into(),
                    mode: mode.into(),
                    rw,
                    propagation: String::new(),
                },
                anonymous: anon,
                create: false,
            })
        };
        // --volumes-from first, as dockerd: every mount of each named container at the
        // same place (read-only with `:ro`), not owned by this one; this container's own
        // binds and volumes then take their destinations over.
        for entry in hc.volumes_from.iter().flatten() {
            let (id, mode) = entry.split_once(':').unwrap_or((entry.as_str(), ""));
            if id.is_empty() {
                return Err(Error::Invalid(
                    "volumes-from specification cannot be an empty string".into(),
                ));
            }
            let rw = match mode {
                "" | "rw" => true,
                "ro" => false,
                other => return Err(Error::Invalid(format!("invalid mode: {other}"))),
            };
            let from = self.get(id)?;
            for m in from.read(|r| r.mounts.clone()) {
                out.retain(|o| o.point.destination != m.point.destination);
                out.push(MountRecord {
                    point: MountPoint {
                        rw: m.point.rw && rw,
                        mode: String::new(),
                        ..m.point
                    },
                    anonymous: false,
                    create: false,
                });
            }
        }
        for spec in specs {
            let dst = spec.destination.clone();
            out.retain(|o| o.point.destination != dst);
            match spec.kind {
                MountKind::Bind => {
                    if !spec.create_source && !Path::new(&spec.source).exists() {
                        return Err(Error::Invalid(
                            MountError::BindSourceDoesNotExist(spec.source).to_string(),
                        ));
                    }
                    out.push(MountRecord {
                        point: MountPoint {
                            kind: "bind".into(),
                            source: spec.source.clone(),
                            destination: dst,
                            mode: spec.mode.clone(),
                            rw: spec.rw,
                            propagation: spec.propagation.clone(),
                            ..Default::default()
                        },
                        anonymous: false,
                        create: spec.create_source,
                    });
                }
                MountKind::Volume => {
                    let (name, anon) = if spec.source.is_empty() {
                        (random_hex(32), true)
                    } else {
                        (spec.source.clone(), false)
                    };
                    let mode = if spec.mode.is_empty() && !spec.rw {
                        "ro"
                    } else {
                        spec.mode.as_str()
                    };
                    out.push(volume(
                        &name,
                        &dst,
                        spec.rw,
                        mode,
                        anon,
                        spec.copy_data,
                        made,
                    )?);
                }
                MountKind::Tmpfs => out.push(MountRecord {
                    point: MountPoint {
                        kind: "tmpfs".into(),
                        destination: dst,
                        mode: tmpfs_mode(&spec.tmpfs_options),
                        rw: spec.rw,
                        ..Default::default()
                    },
                    anonymous: false,
                    create: false,
                }),
            }
        }
        for target in config.volumes.iter().flat_map(|v| v.keys()) {
            if !target.starts_with('/') {
                let e = berth_api::mount::MountError::NotAbsolute {
                    kind: "volume".into(),
                    path: target.clone(),
                };
                return Err(Error::Invalid(e.to_string()));
            }
            let dst = berth_api::path::clean(target);
            if !out.iter().any(|m| m.point.destination == dst) {
                out.push(volume(&random_hex(32), &dst, true, "", true, true, made)?);
            }
        }
        Ok(out)
    }

    /// As dockerd: a volume mounted where the image has a directory starts with that
    /// directory's content, if the volume is empty. `dst` is resolved inside the image's
    /// file system (a symlink there names the image's own path, never the host's) and the
    /// copy is made descriptor to descriptor into the volume. Volumes made with driver
    /// options (a tmpfs, a device) are mounted only while used and get no copy.
    fn copy_up(
        &self,
        image_root: &mut Option<berth_fs::Root>,
        layers: &[PathBuf],
        dst: &str,
        name: &str,
    ) -> Result<()> {
        if layers.is_empty() || self.volumes.options(name)?.is_some() {
            return Ok(());
        }
        let data = berth_fs::Root::open(&self.volumes.data(name))
            .map_err(|e| Error::Internal(format!("opening volume {name}: {e}")))?;
        let copying = |e: berth_fs::Error| {
            Error::Internal(format!("copying the image's {dst} into volume {name}: {e}"))
        };
        if !data.dir_is_empty(".").map_err(copying)? {
            return Ok(());
        }
        if image_root.is_none() {
            let top_first: Vec<PathBuf> = layers.iter().rev().cloned().collect();
            let root = berth_fs::view::open_layers(&top_first, &self.views_dir())
                .map_err(|e| Error::Internal(format!("reading the image's file system: {e}")))?;
            *image_root = Some(root);
        }
        let Some(root) = image_root.as_ref() else {
            return Ok(());
        };
        berth_fs::copy::copy_dir_contents(root, dst, &data).map_err(copying)?;
        Ok(())
    }

    /// The containers that use the named volume.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.store
            .all()
            .iter()
            .filter(|c| c.read(|r| r.uses_volume(name)))
            .map(|c| c.id.clone())
            .collect()
    }

    /// The container's mounts as OCI mounts, its option volumes mounted and missing bind
    /// sources made (`-v` makes them, as dockerd). Blocking.
    pub(crate) fn oci_mounts(&self, rec: &Record) -> Result<Vec<Mount>> {
        let mut out = Vec::new();
        for m in &rec.mounts {
            if let Some(name) = m.volume() {
                // A volume made with options is mounted while a container uses it.
                self.volumes.activate(name)?;
            }
            let p = &m.point;
            if p.kind == "tmpfs" {
                let mut opts: Vec<String> = p
                    .mode
                    .split(',')
                    .filter(|o| !o.is_empty())
                    .map(String::from)
                    .collect();
                if !p.rw {
                    opts.push("ro".into());
                }
                out.push(oci_mount(&p.destination, "tmpfs", "tmpfs", opts)?);
                continue;
            }
            if m.create && !Path::new(&p.source).exists() {
                std::fs::create_dir_all(&p.source).map_err(internal(&p.source))?;
            }
            let propagation = if p.propagation.is_empty() {
                "rprivate"
            } else {
                p.propagation.as_str()
            };
            let mut opts = vec!["rbind".to_string(), propagation.to_string()];
            if !p.rw {
                opts.push("ro".into());
            }
            out.push(oci_mount(&p.destination, "bind", &p.source, opts)?);
        }
        Ok(out)
    }

    /// Unmounts the option volumes of a stopped container that no running container
    /// still uses (dockerd's local driver counts its users the same way). Blocking.
    pub(crate) fn release_volumes(&self, rec: &Record) {
        for name in rec.mounts.iter().filter_map(MountRecord::volume) {
            let in_use = self
                .store
                .all()
                .iter()
                .any(|c| c.id != rec.id && c.running() && c.read(|r| r.uses_volume(name)));
            if !in_use {
                if let Err(e) = self.volumes.deactivate(name) {
                    tracing::warn!(volume = name, error = %e, "unmounting volume");
                }
            }
        }
    }

    /// Removes the anonymous volumes of a removed container that nothing else uses.
    /// Blocking.
    pub(crate) fn remove_anonymous_volumes(&self, rec: &Record) {
        for n in rec
            .mounts
            .iter()
            .filter(|m| m.anonymous)
            .filter_map(MountRecord::volume)
        {
            if self.volume_users(n).is_empty() {
                let _ = self.volumes.remove(n);
            }
        }
    }
}
