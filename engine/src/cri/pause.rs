//! The internal sandbox image: berth-pause (built statically with berthd, see
//! `engine/pause/pause.rs` and `engine/build.rs`, and embedded in it) as a one-layer
//! image in the engine's store, tagged `berth.local/pause:VERSION`. Nothing is pulled:
//! the image is made from the binary when it is missing or stale, and the kubelet is
//! told it is pinned (never to be garbage collected).

use super::{Cri, Error, Result};
use crate::content::Digest;
use crate::images::{reference::Reference, ImportOptions};
use sha2::Digest as _;

/// The static berth-pause binary.
pub static PAUSE_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth-pause"));

/// The internal image's name.
pub fn image_name() -> String {
    format!("berth.local/pause:{}", env!("CARGO_PKG_VERSION"))
}

/// The layer: `/pause`, root-owned, 0755, time 0 (the same bytes for the same binary).
fn layer() -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(PAUSE_BINARY.len() as u64);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "pause", PAUSE_BINARY)?;
    b.into_inner()
}

impl Cri {
    /// The sandbox image's ID: the configured one (which must have been pulled), or
    /// the internal image, made now if it is missing or was made from another binary.
    pub(crate) async fn sandbox_image(&self) -> Result<String> {
        if let Some(name) = &self.opts.sandbox_image {
            return self
                .images
                .resolve(name)
                .map(|r| r.id.to_string())
                .map_err(|_| {
                    Error::NotFound(format!("sandbox image {name:?} not found: pull it first"))
                });
        }
        let name = image_name();
        let tar = layer().map_err(super::internal("making the pause layer"))?;
        let diff_id = Digest::parse(&format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(&tar))
        ))
        .map_err(super::internal("pause layer digest"))?;
        if let Ok(rec) = self.images.resolve(&name) {
            if rec.layers.len() == 1 && rec.layers[0].diff_id == diff_id {
                return Ok(rec.id.to_string());
            }
        }
        let images = self.images.clone();
        let reference = Reference::parse(&name).map_err(|e| Error::Internal(e.to_string()))?;
        let path = images
            .tmp_dir()
            .join(format!("pause-{}.tar", super::new_id()));
        let id = tokio::task::spawn_blocking(move || {
            std::fs::write(&path, &tar).map_err(|e| e.to_string())?;
            let r = images
                .import(
                    &path,
                    &ImportOptions {
                        reference: Some(reference),
                        message: "berth-pause".into(),
                        changes: vec!["ENTRYPOINT [\"/pause\"]".into(), "USER 65535:65535".into()],
                        platform: None,
                    },
                )
                .map_err(|e| e.to_string());
            let _ = std::fs::remove_file(&path);
            r
        })
        .await
        .map_err(super::internal("making the pause image"))?
        .map_err(|e| Error::Internal(format!("making the pause image: {e}")))?;
        tracing::info!(image = %name, id = %id, "made the internal sandbox image");
        Ok(id.to_string())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_pause_is_a_static_executable() {
        let b = super::PAUSE_BINARY;
        assert_eq!(&b[..4], b"\x7fELF");
        // No program interpreter (PT_INTERP = 3): it needs nothing from the image.
        let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
        let phentsize = u16::from_le_bytes(b[54..56].try_into().unwrap()) as usize;
        let phnum = u16::from_le_bytes(b[56..58].try_into().unwrap()) as usize;
        for i in 0..phnum {
            let off = phoff + i * phentsize;
            let typ = u32::from_le_bytes(b[off..off + 4].try_into().unwrap());
            assert_ne!(typ, 3, "berth-pause must not need a dynamic loader");
        }
        assert_eq!(
            super::layer().unwrap(),
            super::layer().unwrap(),
            "the layer is reproducible"
        );
    }
}
