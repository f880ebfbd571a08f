//! `docker import`: a rootfs tarball (compressed or not) becomes a one-layer image.

use super::reference::Reference;
use super::store::{ImageRecord, LayerRecord};
use super::{Error, ImageService, Result};
use crate::archive;
use crate::content::Digest;
use serde_json::{json, Map, Value};
use std::io::{self, BufReader};
use std::path::Path;

/// What `POST /images/create?fromSrc=-` asks for besides the tarball.
#[derive(Debug, Default)]
pub struct ImportOptions {
    /// Repository and tag to give the image.
    pub reference: Option<Reference>,
    /// Commit message.
    pub message: String,
    /// Dockerfile-like instructions (`CMD`, `ENTRYPOINT`, `ENV`, `WORKDIR`, `USER`,
    /// `LABEL`, `EXPOSE`) applied to the config.
    pub changes: Vec<String>,
    /// Platform to record.
    pub platform: Option<super::Platform>,
}

/// Applies one `--change` instruction to a container config.
fn apply_change(config: &mut Map<String, Value>, change: &str) -> Result<()> {
    let (op, arg) = change
        .trim()
        .split_once(char::is_whitespace)
        .unwrap_or((change.trim(), ""));
    let arg = arg.trim();
    let words = || -> Value {
        match serde_json::from_str::<Vec<String>>(arg) {
            Ok(v) => json!(v),
            Err(_) => json!(["/bin/sh", "-c", arg]),
        }
    };
    let kv = |s: &str| -> (String, String) {
        let (k, v) = s
            .split_once('=')
            .or_else(|| s.split_once(' '))
            .unwrap_or((s, ""));
        (k.trim().to_string(), v.trim().trim_matches('"').to_string())
    };
    match op.to_ascii_uppercase().as_str() {
        "CMD" => {
            config.insert("Cmd".into(), words());
        }
        "ENTRYPOINT" => {
            config.insert("Entrypoint".into(), words());
        }
        "WORKDIR" => {
            config.insert("WorkingDir".into(), json!(arg));
        }
        "USER" => {
            config.insert("User".into(), json!(arg));
        }
        "ENV" => {
            let (k, v) = kv(arg);
            let env = config.entry("Env").or_insert_with(|| json!([]));
            if let Some(a) = env.as_array_mut() {
                a.retain(|e| !e.as_str().is_some_and(|e| e.starts_with(&format!("{k}="))));
                a.push(json!(format!("{k}={v}")));
            }
        }
        "LABEL" => {
            let (k, v) = kv(arg);
            let labels = config.entry("Labels").or_insert_with(|| json!({}));
            labels[k] = json!(v);
        }
        "EXPOSE" => {
            let ports = config.entry("ExposedPorts").or_insert_with(|| json!({}));
            for p in arg.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                };
                ports[p] = json!({});
            }
        }
        other => {
            return Err(Error::Invalid(format!(
                "{other} is not a valid change command"
            )))
        }
    }
    Ok(())
}

impl ImageService {
    /// Imports a rootfs tarball file as a new image (blocking). Returns the image ID.
    pub fn import(&self, tar_path: &Path, opts: &ImportOptions) -> Result<Digest> {
        let mut container_config = Map::new();
        for c in &opts.changes {
            apply_change(&mut container_config, c)?;
        }
        // The layer is stored uncompressed: its digest is then its diff ID.
        let f = std::fs::File::open(tar_path).map_err(Error::io("open upload"))?;
        let (_, mut plain) =
            archive::decompress(f).map_err(|e| Error::Invalid(format!("invalid tarball: {e}")))?;
        let mut writer = self.content.writer()?;
        io::copy(&mut plain, &mut writer)
            .map_err(|e| Error::Invalid(format!("invalid tarball: {e}")))?;
        let size = writer.written();
        let diff_id = writer.commit(None, None)?;
        let unpacked = match self.snapshots.exists(&diff_id) {
            true => Ok(self.snapshots.usage(&diff_id)),
            false => self.snapshots.unpack(
                &diff_id,
                None,
                &diff_id,
                BufReader::new(self.content.open_blob(&diff_id)?),
            ),
        };
        let unpacked_size = match unpacked {
            Ok(s) => s,
            Err(e) => {
                // Not a usable layer: keep nothing of it.
                let _ = self.content.delete(&diff_id);
                return Err(e.into());
            }
        };
        let now = super::now_rfc3339();
        let platform = opts.platform.clone().unwrap_or_else(super::Platform::host);
        let config = json!({
            "architecture": platform.arch,
            "os": platform.os,
            "created": now,
            "comment": opts.message,
            "config": container_config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": now, "comment": if opts.message.is_empty() { "Imported from -".to_string() } else { opts.message.clone() }}],
        });
        let config_bytes = serde_json::to_vec(&config).unwrap_or_default();
        let id = self.content.write_all(&config_bytes, None)?;
        let media_type = archive::Compression::None.layer_media_type();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": config_bytes.len(),
                "digest": id,
            },
            "layers": [{"mediaType": media_type, "size": size, "digest": diff_id}],
        });
        let manifest_bytes = serde_json::to_vec(&manifest).unwrap_or_default();
        let manifest_digest = self.content.write_all(&manifest_bytes, None)?;
        let rec = ImageRecord {
            id: id.clone(),
            manifest: manifest_digest,
            manifest_media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
            index: None,
            layers: vec![LayerRecord {
                digest: diff_id.clone(),
                media_type: media_type.into(),
                size,
                diff_id,
                unpacked_size,
            }],
            last_tag_time: now,
            parent: None,
        };
        let tags: Vec<Reference> = opts.reference.iter().cloned().collect();
        self.commit_image(&rec, &tags, &[])?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply() {
        let mut c = Map::new();
        apply_change(&mut c, r#"CMD ["/bin/sh"]"#).unwrap();
        apply_change(&mut c, "ENV A=b").unwrap();
        apply_change(&mut c, "WORKDIR /w").unwrap();
        assert_eq!(c["Cmd"], json!(["/bin/sh"]));
        assert_eq!(c["Env"], json!(["A=b"]));
        assert!(apply_change(&mut c, "RUN x").is_err());
    }
}
