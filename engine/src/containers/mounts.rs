//! A container's mounts: binds (`-v /host:/ctr`), volumes (named, anonymous, the image's
//! `VOLUME`s), `--mount` and `--tmpfs`; filled from the image when a volume is new
//! (copy-up, resolved inside the image), mounted while containers use them, and as OCI
//! mounts for the spec. Everything here touches disks or mounts: it runs on the
//! blocking pool.

use super::record::Record;
use super::{internal, random_hex, strs, ContainerService, Error, Result};
use oci_spec::runtime::{Mount, MountBuilder};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// dockerd's refusal of a second mount at the same place.
fn refuse_duplicate(mounts: &[Value], dst: &str) -> Result<()> {
    if mounts.iter().any(|m| m["Destination"] == dst) {
        return Err(Error::Invalid(format!("Duplicate mount point: {dst}")));
    }
    Ok(())
}

fn oci_mount(dst: &str, kind: &str, source: &str, options: Vec<String>) -> Result<Mount> {
    MountBuilder::default()
        .destination(dst)
        .typ(kind)
        .source(source)
        .options(options)
        .build()
        .map_err(|e| Error::Internal(format!("mount {dst}: {e}")))
}

impl ContainerService {
    /// Binds (`-v`), Mounts (`--mount`), Tmpfs, and an anonymous volume for every
    /// path of Config.Volumes (the image's VOLUME and `-v /path`) not mounted otherwise.
    /// Destinations are cleaned as dockerd cleans them (`/x/../data/` is `/data`) and a
    /// destination mounted twice is refused. `layers` are the image's, base first.
    /// Blocking. On failure the volumes it made are removed again.
    pub(crate) fn make_mounts(
        &self,
        hc: &Value,
        config: &Value,
        layers: &[PathBuf],
    ) -> Result<Vec<Value>> {
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
        hc: &Value,
        config: &Value,
        layers: &[PathBuf],
        made: &mut Vec<String>,
    ) -> Result<Vec<Value>> {
        let mut out: Vec<Value> = Vec::new();
        // The image's file system, opened once and only if a volume needs its content.
        let mut image_root: Option<berth_fs::Root> = None;
        let mut volume = |name: &str,
                          dst: &str,
                          rw: bool,
                          anon: bool,
                          nocopy: bool,
                          made: &mut Vec<String>|
         -> Result<Value> {
            if self.volumes.inspect(name).is_err() {
                made.push(name.to_string());
            }
            self.volumes.create(name, &Value::Null, &Value::Null)?;
            if !nocopy {
                self.copy_up(&mut image_root, layers, dst, name)?;
            }
            Ok(
                json!({"Type": "volume", "Name": name, "Source": self.volumes.data(name),
                "Destination": dst, "Driver": "local", "Mode": if rw { "" } else { "ro" },
                "RW": rw, "Propagation": "", "Anonymous": anon}),
            )
        };
        let destination = |path: &str, kind: &str| {
            berth_fs::clean::mount_destination(path, kind)
                .map_err(|e| Error::Invalid(e.to_string()))
        };
        for b in strs(&hc["Binds"]) {
            let parts: Vec<&str> = b.split(':').collect();
            if parts.len() < 2 || parts.len() > 3 || !parts[1].starts_with('/') {
                return Err(Error::Invalid(format!(
                    "invalid volume specification: '{b}'"
                )));
            }
            let mode = parts.get(2).copied().unwrap_or("");
            let rw = !mode.split(',').any(|o| o == "ro");
            let nocopy = mode.split(',').any(|o| o == "nocopy");
            let dst = berth_fs::clean::clean(parts[1]);
            refuse_duplicate(&out, &dst)?;
            if parts[0].starts_with('/') {
                out.push(
                    json!({"Type": "bind", "Source": parts[0], "Destination": dst,
                    "Mode": mode, "RW": rw, "Propagation": "rprivate", "Create": true}),
                );
            } else {
                out.push(volume(parts[0], &dst, rw, false, nocopy, made)?);
            }
        }
        for m in hc["Mounts"].as_array().into_iter().flatten() {
            let kind = m["Type"].as_str().unwrap_or("");
            let target = m["Target"].as_str().unwrap_or("");
            if !target.starts_with('/') {
                return Err(Error::Invalid(format!(
                    "invalid mount config: mount target must be an absolute path: {target:?}"
                )));
            }
            let dst = destination(target, kind)?;
            refuse_duplicate(&out, &dst)?;
            let rw = !m["ReadOnly"].as_bool().unwrap_or(false);
            let src = m["Source"].as_str().unwrap_or("");
            match kind {
                "bind" => {
                    if !Path::new(src).exists() {
                        return Err(Error::Invalid(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {src}"
                        )));
                    }
                    out.push(json!({"Type": "bind", "Source": src, "Destination": dst,
                        "Mode": "", "RW": rw, "Propagation": "rprivate"}));
                }
                "volume" => {
                    let (name, anon) = if src.is_empty() {
                        (random_hex(32), true)
                    } else {
                        (src.to_string(), false)
                    };
                    let nocopy = m["VolumeOptions"]["NoCopy"].as_bool().unwrap_or(false);
                    out.push(volume(&name, &dst, rw, anon, nocopy, made)?);
                }
                "tmpfs" => {
                    let mut opts = vec!["nosuid".to_string(), "nodev".into(), "noexec".into()];
                    if let Some(sz) = m["TmpfsOptions"]["SizeBytes"].as_u64() {
                        opts.push(format!("size={sz}"));
                    }
                    out.push(json!({"Type": "tmpfs", "Source": "", "Destination": dst,
                        "Mode": opts.join(","), "RW": rw, "Propagation": ""}));
                }
                other => {
                    return Err(Error::Invalid(format!(
                        "invalid mount config: mount type unknown: {other:?}"
                    )))
                }
            }
        }
        for (target, opts) in hc["Tmpfs"].as_object().into_iter().flatten() {
            let dst = destination(target, "tmpfs")?;
            refuse_duplicate(&out, &dst)?;
            let mut o = "nosuid,nodev,noexec".to_string();
            if let Some(extra) = opts.as_str().filter(|s| !s.is_empty()) {
                o = format!("{o},{extra}");
            }
            out.push(json!({"Type": "tmpfs", "Source": "", "Destination": dst,
                "Mode": o, "RW": true, "Propagation": ""}));
        }
        for target in config["Volumes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            let dst = destination(target, "volume")?;
            if !out.iter().any(|m| m["Destination"] == dst.as_str()) {
                out.push(volume(&random_hex(32), &dst, true, true, false, made)?);
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
            .filter(|c| {
                c.read(|r| {
                    r.mounts
                        .iter()
                        .any(|m| m["Type"] == "volume" && m["Name"] == name)
                })
            })
            .map(|c| c.id.clone())
            .collect()
    }

    /// The container's mounts as OCI mounts, its option volumes mounted and missing bind
    /// sources made (`-v` makes them, as dockerd). Blocking.
    pub(crate) fn oci_mounts(&self, rec: &Record) -> Result<Vec<Mount>> {
        let mut out = Vec::new();
        for m in &rec.mounts {
            if let Some(name) = m["Name"].as_str().filter(|_| m["Type"] == "volume") {
                // A volume made with options is mounted while a container uses it.
                self.volumes.activate(name)?;
            }
            let dst = m["Destination"].as_str().unwrap_or("");
            let src = m["Source"].as_str().unwrap_or("");
            let rw = m["RW"].as_bool().unwrap_or(true);
            if m["Type"] == "tmpfs" {
                let mut opts: Vec<String> = m["Mode"]
                    .as_str()
                    .unwrap_or("")
                    .split(',')
                    .filter(|o| !o.is_empty())
                    .map(String::from)
                    .collect();
                if !rw {
                    opts.push("ro".into());
                }
                out.push(oci_mount(dst, "tmpfs", "tmpfs", opts)?);
                continue;
            }
            if m["Create"] == true && !Path::new(src).exists() {
                std::fs::create_dir_all(src).map_err(internal(src))?;
            }
            let mut opts = vec!["rbind".to_string(), "rprivate".into()];
            if !rw {
                opts.push("ro".into());
            }
            out.push(oci_mount(dst, "bind", src, opts)?);
        }
        Ok(out)
    }

    /// Unmounts the option volumes of a stopped container that no running container
    /// still uses (dockerd's local driver counts its users the same way). Blocking.
    pub(crate) fn release_volumes(&self, rec: &Record) {
        for m in rec.mounts.iter().filter(|m| m["Type"] == "volume") {
            let Some(name) = m["Name"].as_str() else {
                continue;
            };
            let in_use = self.store.all().iter().any(|c| {
                c.id != rec.id
                    && c.running()
                    && c.read(|r| {
                        r.mounts
                            .iter()
                            .any(|m| m["Type"] == "volume" && m["Name"] == name)
                    })
            });
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
        for m in rec.mounts.iter().filter(|m| m["Anonymous"] == true) {
            if let Some(n) = m["Name"].as_str() {
                if self.volume_users(n).is_empty() {
                    let _ = self.volumes.remove(n);
                }
            }
        }
    }
}
