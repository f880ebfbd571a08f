//! The container records: in memory by ID with a name → ID index (a lookup by name or
//! ID prefix copies no record), and on disk one JSON file per container
//! (`<data-root>/containers/ID/config.v2.json`, 0600: records hold environments),
//! written crash-safe as the content store writes blobs: to a temporary file, fsynced,
//! renamed into place, the directory fsynced. Disk work runs on the blocking pool, never
//! under the index's lock.

use super::container::Container;
use super::record::Record;
use super::{Error, Result};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

const RECORD: &str = "config.v2.json";

#[derive(Default)]
struct Index {
    by_id: HashMap<String, Arc<Container>>,
    /// Name (without `/`) → ID, for every container and every name being created.
    names: HashMap<String, String>,
}

/// The records.
pub struct Store {
    dir: PathBuf,
    index: RwLock<Index>,
}

/// Writes `bytes` to `dir/name` so that a crash leaves either the old file or the new
/// one, whole: temporary file, fsync, rename, fsync of the directory.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

impl Store {
    /// The store under `dir` (made 0710 if missing), with every readable record loaded;
    /// blocking.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o710))?;
        let mut index = Index::default();
        for e in std::fs::read_dir(dir)?.flatten() {
            let p = e.path().join(RECORD);
            let Ok(bytes) = std::fs::read(&p) else {
                remove_if_half_made(&e.path(), &p);
                continue;
            };
            let rec = match load(&bytes) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(path = %p.display(), error = %e, "unreadable container record");
                    continue;
                }
            };
            index.names.insert(rec.name.clone(), rec.id.clone());
            index
                .by_id
                .insert(rec.id.clone(), Arc::new(Container::new(rec)));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            index: RwLock::new(index),
        })
    }

    /// Where a container's directory goes to be removed: a crash while it is being
    /// removed leaves it there, not a container without its files, and the next start
    /// finishes the job.
    pub fn removing(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}{REMOVING}"))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The directory of a container's record, logs and upper dir.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Finds a container by full ID, name (with or without `/`) or unique ID prefix.
    pub fn find(&self, name: &str) -> Result<Arc<Container>> {
        let index = self.read();
        if let Some(c) = index.by_id.get(name) {
            return Ok(c.clone());
        }
        let n = name.strip_prefix('/').unwrap_or(name);
        if let Some(c) = index.names.get(n).and_then(|id| index.by_id.get(id)) {
            return Ok(c.clone());
        }
        let mut matches = index.by_id.iter().filter(|(id, _)| id.starts_with(name));
        match (matches.next(), matches.next()) {
            (Some((_, c)), None) if !name.is_empty() => Ok(c.clone()),
            (Some(_), Some(_)) => Err(Error::NotFound(format!(
                "No such container: {name} (multiple IDs found with that prefix)"
            ))),
            _ => Err(Error::NotFound(format!("No such container: {name}"))),
        }
    }

    /// Every container (unordered).
    pub fn all(&self) -> Vec<Arc<Container>> {
        self.read().by_id.values().cloned().collect()
    }

    /// Whether a container (or a create under way) has this name.
    pub fn name_taken(&self, name: &str) -> bool {
        self.read().names.contains_key(name)
    }

    /// Claims `name` for `id` (a container being created or renamed), or names the
    /// container that has it.
    pub fn reserve(&self, name: &str, id: &str) -> Result<()> {
        let mut index = self.write();
        if let Some(other) = index.names.get(name) {
            return Err(name_in_use(name, other));
        }
        index.names.insert(name.to_string(), id.to_string());
        Ok(())
    }

    /// Gives back a name that `id` holds.
    pub fn release(&self, name: &str, id: &str) {
        let mut index = self.write();
        if index.names.get(name).map(String::as_str) == Some(id) {
            index.names.remove(name);
        }
    }

    /// Adds a created container (its name reserved already).
    pub fn insert(&self, c: Arc<Container>) {
        self.write().by_id.insert(c.id.clone(), c);
    }

    /// Forgets a container and its name; whether it was known.
    pub fn remove(&self, id: &str) -> bool {
        let mut index = self.write();
        let Some(c) = index.by_id.remove(id) else {
            return false;
        };
        let name = c.name();
        if index.names.get(&name).map(String::as_str) == Some(id) {
            index.names.remove(&name);
        }
        true
    }

    /// Writes a container's record (the newest state: concurrent saves of one container
    /// are serialised and each writes what the record holds then).
    pub async fn save(&self, c: &Container) -> Result<()> {
        let _writing = c.saving.lock().await;
        let bytes = c.read(serde_json::to_vec);
        self.write_record(&c.id, bytes).await
    }

    /// Writes a container's record as `change` leaves a copy of it, the record held in
    /// memory unchanged (what is on disk runs ahead of what clients see, for a step
    /// that must survive a crash before it is shown).
    pub async fn save_with(&self, c: &Container, change: impl FnOnce(&mut Record)) -> Result<()> {
        let _writing = c.saving.lock().await;
        let mut rec = c.record();
        change(&mut rec);
        self.write_record(&c.id, serde_json::to_vec(&rec)).await
    }

    /// Writes an encoded record, on the blocking pool (the caller holds the
    /// container's `saving` lock).
    async fn write_record(&self, id: &str, bytes: serde_json::Result<Vec<u8>>) -> Result<()> {
        let bytes = bytes
            .map_err(|e| Error::Internal(format!("encoding the record of container {id}: {e}")))?;
        let dir = self.dir(id);
        tokio::task::spawn_blocking(move || write_atomic(&dir, RECORD, &bytes))
            .await
            .map_err(|e| Error::Internal(format!("writing container record: {e}")))?
            .map_err(|e| Error::Internal(format!("writing container record: {e}")))
    }

    /// Writes a new container's record in its directory, made here (0710, with the
    /// overlay's `upper` and `work`); blocking. On failure nothing is left.
    pub fn create_blocking(&self, rec: &Record) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.dir(&rec.id);
        let made = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(dir.join("upper"))?;
            std::fs::create_dir_all(dir.join("work"))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o710))?;
            let bytes = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
            write_atomic(&dir, RECORD, &bytes)
        })();
        made.map_err(|e| {
            let _ = std::fs::remove_dir_all(&dir);
            Error::Internal(format!("creating container directory: {e}"))
        })
    }
}

/// The suffix of a container directory being removed.
const REMOVING: &str = ".removing";

/// At start-up, a directory without a record is what a crash left: one being removed
/// (renamed first), or one being made (the record is its last file). Either goes; a
/// directory that is no container's (not an ID) is left alone.
fn remove_if_half_made(dir: &Path, record: &Path) {
    let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let id = name.strip_suffix(REMOVING).unwrap_or(name);
    let is_id = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let half_made = name.ends_with(REMOVING) || !record.exists();
    if is_id && half_made {
        tracing::info!(dir = %dir.display(), "removing what a crash left of a container");
        if let Err(e) = std::fs::remove_dir_all(dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "removing a half-removed container");
        }
    }
}

/// dockerd's refusal of a name in use.
pub fn name_in_use(name: &str, id: &str) -> Error {
    Error::Conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

/// Reads a record, also one an older berthd wrote (its Config and HostConfig as the
/// client sent them, nulls included: read with Go's rules, as a request is).
fn load(bytes: &[u8]) -> std::result::Result<Record, String> {
    use berth_api::container::{Config, HostConfig};
    use berth_api::json::GoStruct;
    match serde_json::from_slice::<Record>(bytes) {
        Ok(r) => Ok(upgrade(r, bytes)),
        Err(first) => {
            let mut v: serde_json::Value =
                serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
            berth_api::json::check(&mut v["config"], &Config::SCHEMA)
                .map_err(|e| format!("{first}; {e}"))?;
            berth_api::json::check(&mut v["host_config"], &HostConfig::SCHEMA)
                .map_err(|e| format!("{first}; {e}"))?;
            let r = serde_json::from_value(v).map_err(|e| format!("{first}; {e}"))?;
            Ok(upgrade(r, bytes))
        }
    }
}

/// A record written by an older berthd: its status as a name (now dockerd's flags), its
/// whole OCI spec (of which only the process is needed now).
fn upgrade(mut rec: Record, bytes: &[u8]) -> Record {
    rec.state.upgrade();
    if rec.process.is_none() {
        #[derive(serde::Deserialize)]
        struct Old {
            #[serde(default)]
            spec: Option<oci_spec::runtime::Spec>,
        }
        if let Ok(Old { spec: Some(spec) }) = serde_json::from_slice::<Old>(bytes) {
            rec.process = spec.process().clone();
        }
    }
    rec
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(id: &str, name: &str) -> Record {
        Record {
            id: id.into(),
            name: name.into(),
            created: String::new(),
            image: "busybox".into(),
            image_id: "sha256:1".into(),
            path: "true".into(),
            args: Vec::new(),
            config: berth_api::container::Config {
                env: Some(vec!["SECRET=1".into()]),
                ..Default::default()
            },
            host_config: Default::default(),
            state: Default::default(),
            restart_count: 0,
            manual_stop: false,
            process: None,
            mounts: Vec::new(),
            endpoints: Default::default(),
        }
    }

    #[test]
    fn finds_by_id_name_and_prefix() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        for (id, name) in [("abc123", "web"), ("abd456", "db")] {
            s.reserve(name, id).unwrap();
            s.insert(Arc::new(Container::new(record(id, name))));
        }
        assert_eq!(s.find("abc123").unwrap().id, "abc123");
        assert_eq!(s.find("/db").unwrap().id, "abd456");
        assert_eq!(s.find("abc").unwrap().id, "abc123");
        let e = s.find("ab").err().unwrap().to_string();
        assert!(e.contains("multiple IDs"), "{e}");
        assert_eq!(
            s.find("zzz").err().unwrap().to_string(),
            "No such container: zzz"
        );
        assert!(s.find("").is_err());
        // A name in use, or being created, is refused until released.
        assert!(s.reserve("web", "x").is_err());
        s.reserve("new", "x").unwrap();
        assert!(s.name_taken("new"));
        s.release("new", "other");
        assert!(s.name_taken("new"));
        s.release("new", "x");
        assert!(!s.name_taken("new"));
        assert!(s.remove("abc123"));
        assert!(!s.name_taken("web"));
        assert!(!s.remove("abc123"));
    }

    #[tokio::test]
    async fn records_survive_a_reopen_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let rec = record("c1", "one");
        s.create_blocking(&rec).unwrap();
        let c = Arc::new(Container::new(rec));
        s.insert(c.clone());
        c.update(|r| r.restart_count = 7);
        s.save(&c).await.unwrap();
        let file = d.path().join("c1").join(RECORD);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!d.path().join("c1").join("config.v2.json.tmp").exists());
        let again = Store::open(d.path()).unwrap();
        let c = again.find("one").unwrap();
        assert_eq!(c.read(|r| r.restart_count), 7);
        // A torn temporary file from a crash is not read as the record.
        std::fs::write(d.path().join("c1").join("config.v2.json.tmp"), b"{").unwrap();
        assert_eq!(Store::open(d.path()).unwrap().all().len(), 1);
    }

    #[test]
    fn what_a_crash_left_of_a_removal_or_a_creation_goes_at_open() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let (kept, removed, made) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
        s.create_blocking(&record(&kept, "kept")).unwrap();
        s.create_blocking(&record(&removed, "removed")).unwrap();
        // Killed inside the removal: renamed, part of it removed.
        std::fs::rename(s.dir(&removed), s.removing(&removed)).unwrap();
        std::fs::remove_file(s.removing(&removed).join(RECORD)).unwrap();
        // Killed inside a creation: the directory made, not its record.
        std::fs::create_dir_all(s.dir(&made).join("upper")).unwrap();
        // Not a container's: left alone.
        std::fs::create_dir_all(d.path().join("notes")).unwrap();
        let again = Store::open(d.path()).unwrap();
        assert_eq!(again.all().len(), 1);
        assert!(again.find("kept").is_ok());
        let mut left: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec![kept, "notes".to_string()]);
    }

    #[test]
    fn records_of_an_older_berthd_load() {
        // As berthd wrote them before berth-api: Config and HostConfig as the client sent
        // them (nulls where the docker CLI sends nulls), the status a name, the spec whole.
        let old = json!({
            "id": "c2", "name": "two", "created": "2026-01-01T00:00:00Z", "image": "busybox",
            "image_id": "sha256:1", "path": "sh", "args": [],
            "config": {"Env": ["A=1"], "Cmd": ["sh"], "ExposedPorts": null, "Volumes": null,
                       "Labels": {"l": "v"}, "StopTimeout": null, "Healthcheck": null},
            "host_config": {"Binds": null, "Tmpfs": null, "Sysctls": null, "Mounts": null,
                            "Memory": 67108864, "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0},
                            "LogConfig": {"Type": "", "Config": {}}},
            "state": {"status": "running", "pid": 7, "exit_code": 0, "started_at": "t",
                      "finished_at": "", "error": "",
                      "health": {"Status": "healthy", "FailingStreak": 0, "Log": []}},
            "restart_count": 2, "manual_stop": false,
            "spec": {"ociVersion": "1.0.2", "process": {"cwd": "/w", "args": ["sh"], "user": {"uid": 0, "gid": 0}}},
            "mounts": [{"Type": "volume", "Name": "v1", "Source": "/d", "Destination": "/data",
                        "Driver": "local", "Mode": "", "RW": true, "Propagation": "", "Anonymous": true}],
        });
        let rec = load(&serde_json::to_vec(&old).unwrap()).unwrap();
        assert_eq!(
            rec.state.status(),
            crate::containers::state::Status::Running
        );
        assert_eq!(rec.config.env.as_deref(), Some(&["A=1".to_string()][..]));
        assert_eq!(rec.host_config.resources.memory, 64 << 20);
        assert_eq!(rec.host_config.restart_policy.name, "always");
        assert_eq!(rec.restart_count, 2);
        assert!(rec.mounts[0].anonymous);
        assert_eq!(rec.mounts[0].volume(), Some("v1"));
        let p = rec.process.unwrap();
        assert_eq!(p.cwd(), &std::path::PathBuf::from("/w"));
    }
}
