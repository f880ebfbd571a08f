//! The local volume driver: a named volume is `<data-root>/volumes/NAME/_data`, with its
//! labels and creation time in `<data-root>/volumes/NAME/volume.json`.

use super::{Error, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Named volumes on the local disk.
pub struct Volumes {
    root: PathBuf,
    lock: std::sync::Mutex<()>,
}

fn valid(name: &str) -> bool {
    name.len() >= 2
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl Volumes {
    /// Opens `<data-root>/volumes`.
    pub fn open(data_root: &Path) -> std::io::Result<Self> {
        let root = data_root.join("volumes");
        std::fs::create_dir_all(&root)?;
        Ok(Self {
            root,
            lock: std::sync::Mutex::new(()),
        })
    }

    /// The data directory of a volume.
    pub fn data(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    /// Creates a volume (or returns the existing one, as dockerd does).
    pub fn create(&self, name: &str, labels: &Value) -> Result<Value> {
        if !valid(name) {
            return Err(Error::Invalid(format!(
                "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
            )));
        }
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let dir = self.root.join(name);
        let meta = dir.join("volume.json");
        if !meta.exists() {
            std::fs::create_dir_all(dir.join("_data"))
                .map_err(|e| Error::Internal(format!("create volume {name}: {e}")))?;
            let m = json!({
                "CreatedAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "Labels": if labels.is_object() { labels.clone() } else { json!({}) },
            });
            std::fs::write(&meta, m.to_string())
                .map_err(|e| Error::Internal(format!("create volume {name}: {e}")))?;
        }
        self.inspect(name)
    }

    /// A volume as the API shows it.
    pub fn inspect(&self, name: &str) -> Result<Value> {
        let meta = self.root.join(name).join("volume.json");
        let m: Value = std::fs::read(&meta)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| Error::NotFound(format!("get {name}: no such volume")))?;
        Ok(json!({
            "Name": name,
            "Driver": "local",
            "Mountpoint": self.data(name),
            "CreatedAt": m["CreatedAt"],
            "Labels": m["Labels"],
            "Scope": "local",
            "Options": null,
        }))
    }

    /// Every volume.
    pub fn list(&self) -> Vec<Value> {
        let mut names: Vec<String> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names.iter().filter_map(|n| self.inspect(n).ok()).collect()
    }

    /// Removes a volume (the caller checked it is unused).
    pub fn remove(&self, name: &str) -> Result<()> {
        self.inspect(name)?;
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        std::fs::remove_dir_all(self.root.join(name))
            .map_err(|e| Error::Internal(format!("remove {name}: {e}")))
    }
}
