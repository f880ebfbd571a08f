//! The local volume driver: a named volume is `<data-root>/volumes/NAME/_data`, with its
//! labels, driver options and creation time in `<data-root>/volumes/NAME/volume.json`.
//! As dockerd's local driver, a volume made with options (`type`, `device`, `o`: a
//! tmpfs, a bind of a host directory, any mount(8) source) is mounted on its `_data`
//! while a container that uses it runs, and unmounted when the last one stops.

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
        // As dockerd: others may reach a volume's data (bind-mounted by path) but not
        // list the volumes.
        std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o701))?;
        Ok(Self {
            root,
            lock: std::sync::Mutex::new(()),
        })
    }

    /// The data directory of a volume.
    pub fn data(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    /// Creates a volume (or returns the existing one, as dockerd does); `options` are the
    /// local driver's (`type`, `device`, `o`), checked with dockerd's messages.
    pub fn create(&self, name: &str, labels: &Value, options: &Value) -> Result<Value> {
        if !valid(name) {
            return Err(Error::Invalid(format!(
                "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
            )));
        }
        let options = options.as_object().cloned().unwrap_or_default();
        for key in options.keys() {
            match key.as_str() {
                "type" | "device" | "o" => {}
                // dockerd takes `size` only on a filesystem with project quotas.
                "size" => {
                    return Err(Error::Invalid(format!(
                        "create {name}: quota size requested but no quota support"
                    )))
                }
                other => {
                    return Err(Error::Invalid(format!(
                        "create {name}: invalid option: {other:?}"
                    )))
                }
            }
        }
        // dockerd's mandatory companions: a device needs a type and the reverse, and
        // mount options need both.
        for (opt, needs) in [
            ("device", &["type"][..]),
            ("type", &["device"][..]),
            ("o", &["device", "type"][..]),
        ] {
            if options.contains_key(opt) {
                if let Some(missing) = needs.iter().find(|n| !options.contains_key(**n)) {
                    return Err(Error::Invalid(format!(
                        "create {name}: missing required option: {missing:?}"
                    )));
                }
            }
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
                "Options": if options.is_empty() { Value::Null } else { Value::Object(options) },
            });
            std::fs::write(&meta, m.to_string())
                .map_err(|e| Error::Internal(format!("create volume {name}: {e}")))?;
        }
        self.inspect(name)
    }

    /// A volume as the API shows it.
    pub fn inspect(&self, name: &str) -> Result<Value> {
        // A name that create would refuse (`..`, `a/b`) names no volume: it is never
        // joined onto the volumes directory.
        if !valid(name) {
            return Err(Error::NotFound(format!("get {name}: no such volume")));
        }
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
            "Options": m["Options"],
        }))
    }

    /// The bytes a volume's data holds.
    pub fn size(&self, name: &str) -> u64 {
        crate::disk_usage::disk_usage(&self.data(name))
    }

    /// Mounts a volume made with options on its data directory, unless it is mounted
    /// already (a container using it runs, or berthd restarted while one did).
    pub fn activate(&self, name: &str) -> Result<()> {
        let Some(opts) = self.options(name)? else {
            return Ok(());
        };
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let data = self.data(name);
        if is_mounted(&data) {
            return Ok(());
        }
        let str_of = |k: &str| opts[k].as_str().unwrap_or("").to_string();
        let (fstype, device) = (str_of("type"), str_of("device"));
        let (flags, data_opts) = mount_flags(&str_of("o"));
        let fstype = (!fstype.is_empty() && fstype != "none").then_some(fstype);
        let data_opts = (!data_opts.is_empty()).then_some(data_opts);
        nix::mount::mount(
            Some(device.as_str()),
            &data,
            fstype.as_deref(),
            flags,
            data_opts.as_deref(),
        )
        .map_err(|e| {
            Error::Internal(format!(
                "error while mounting volume '{}': failed to mount local volume: mount {device}:{}, flags: {:#x}, data: {}: {}",
                data.display(),
                data.display(),
                flags.bits(),
                data_opts.as_deref().unwrap_or(""),
                e.desc().to_lowercase()
            ))
        })
    }

    /// Unmounts a volume made with options (its last user stopped, or it is removed).
    pub fn deactivate(&self, name: &str) -> Result<()> {
        if self.options(name)?.is_none() {
            return Ok(());
        }
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let data = self.data(name);
        if !is_mounted(&data) {
            return Ok(());
        }
        nix::mount::umount2(&data, nix::mount::MntFlags::empty()).map_err(|e| {
            Error::Internal(format!(
                "error while unmounting volume path '{}': {}",
                data.display(),
                e.desc()
            ))
        })
    }

    /// A volume's driver options, if it was made with any.
    pub(crate) fn options(&self, name: &str) -> Result<Option<Value>> {
        let v = self.inspect(name)?;
        Ok(v["Options"]
            .as_object()
            .filter(|o| !o.is_empty())
            .map(|o| Value::Object(o.clone())))
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
        // Never delete through a mount: a bind volume's data is the host's directory.
        self.deactivate(name)?;
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if is_mounted(&self.data(name)) {
            return Err(Error::Conflict(format!(
                "remove {name}: volume is still mounted"
            )));
        }
        std::fs::remove_dir_all(self.root.join(name))
            .map_err(|e| Error::Internal(format!("remove {name}: {e}")))
    }
}

/// Whether something is mounted on `path` (per this process's mount table).
fn is_mounted(path: &Path) -> bool {
    let want = path.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|p| unescape_mountinfo(p) == want)
}

/// A mountinfo path with its octal escapes (`\040` for a space) decoded.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// mount(8)'s `-o` list split as dockerd's mount package splits it: flag words
/// (`bind`, `ro`, `nosuid`, ...) become mount flags, the rest (`size=10m`, ...) the
/// filesystem's data string.
fn mount_flags(o: &str) -> (nix::mount::MsFlags, String) {
    use nix::mount::MsFlags;
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|x| !x.is_empty()) {
        let (set, clear) = match opt {
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "defaults" | "async" | "atime" | "diratime" => (MsFlags::empty(), MsFlags::empty()),
            _ => {
                data.push(opt);
                continue;
            }
        };
        flags.insert(set);
        flags.remove(clear);
    }
    (flags, data.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_climb_name_no_volume() {
        let d = tempfile::tempdir().unwrap();
        let v = Volumes::open(d.path()).unwrap();
        std::fs::create_dir_all(d.path().join("evil")).unwrap();
        std::fs::write(d.path().join("evil/volume.json"), "{}").unwrap();
        for name in ["../evil", "..", "a/../../evil", "/etc"] {
            assert!(matches!(v.inspect(name), Err(Error::NotFound(_))), "{name}");
            assert!(v.remove(name).is_err(), "{name}");
        }
        assert!(d.path().join("evil/volume.json").exists());
    }

    #[test]
    fn splits_mount_options() {
        let (f, d) = mount_flags("size=10m,nosuid,uid=1000");
        assert_eq!(f, nix::mount::MsFlags::MS_NOSUID);
        assert_eq!(d, "size=10m,uid=1000");
        let (f, d) = mount_flags("bind");
        assert_eq!(f, nix::mount::MsFlags::MS_BIND);
        assert!(d.is_empty());
    }

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
