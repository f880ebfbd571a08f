//! The records of pods and containers: what the kubelet asked for and what became of
//! it. Each is a JSON file (`DATA/cri/sandboxes/ID.json`, `.../containers/ID.json`)
//! written to a temporary name and renamed into place, so a crash leaves the old
//! record or the new one, never half of one. All are loaded at start; the supervisor
//! tells which tasks still run (`Cri::recover`).

use super::{cri, internal, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A pod sandbox's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SandboxState {
    /// Its pause process runs and its network is set up.
    Ready,
    /// Stopped: the pause process is gone and its network torn down.
    NotReady,
}

/// A pod sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sandbox {
    /// 64 hex digits.
    pub id: String,
    /// `name_namespace_uid_attempt`, unique among sandboxes.
    pub name: String,
    /// What the kubelet asked for.
    pub config: cri::PodSandboxConfig,
    /// The runtime handler (an OCI runtime name; empty: the default).
    pub runtime_handler: String,
    /// Creation time, ns since the epoch.
    pub created_at: i64,
    /// Ready or not.
    pub state: SandboxState,
    /// The pinned network namespace (None with the host's network).
    pub netns: Option<PathBuf>,
    /// The pod's IP addresses from CNI, first the primary.
    pub ips: Vec<String>,
    /// The CNI ADD result (passed back as prevResult on DEL), while attached.
    pub cni_result: Option<serde_json::Value>,
    /// The network name CNI attached the pod to.
    pub cni_network: String,
    /// Host PID of the pause process while it runs.
    pub pid: u32,
    /// The pod's cgroup parent (the kubelet's, converted for the driver).
    pub cgroup_parent: String,
    /// The pause container's cgroups path (as the OCI spec gives it).
    pub cgroups_path: String,
    /// Whether /dev/shm is the pod's own tmpfs (mounted under the state dir).
    pub own_shm: bool,
}

/// A container's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerState {
    /// Made, never started.
    Created,
    /// Its process runs.
    Running,
    /// Its process has exited (or it failed to start).
    Exited,
    /// Its task cannot be found or reached.
    Unknown,
}

/// A container of a pod.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    /// 64 hex digits.
    pub id: String,
    /// Its pod.
    pub sandbox_id: String,
    /// `name_sandboxname_attempt`, unique among containers.
    pub name: String,
    /// What the kubelet asked for.
    pub config: cri::ContainerConfig,
    /// The image ID (`sha256:...`).
    pub image_id: String,
    /// Creation time, ns since the epoch.
    pub created_at: i64,
    /// Start time (0: never started).
    pub started_at: i64,
    /// Exit time (0: not exited).
    pub finished_at: i64,
    /// Exit code once exited.
    pub exit_code: i32,
    /// Why it exited: Completed, Error, OOMKilled, StartError, ...
    pub reason: String,
    /// A message about the exit (the start error).
    pub message: String,
    /// Its state.
    pub state: ContainerState,
    /// Host PID while it runs.
    pub pid: u32,
    /// The full path of its CRI log (empty: none).
    pub log_path: String,
    /// The resources it was given (and later updated to).
    pub resources: Option<cri::LinuxContainerResources>,
    /// The cgroups path of its OCI spec.
    pub cgroups_path: String,
    /// The signal StopContainer sends first (the image's STOPSIGNAL, else SIGTERM).
    pub stop_signal: u32,
    /// The uid, gid and groups it runs as.
    pub user: (u32, u32, Vec<u32>),
    /// Its OCI process (exec'd processes start from it).
    pub process: Option<oci_spec::runtime::Process>,
}

/// An object in memory with its lock for operations that must not interleave (start
/// and stop of one container).
pub struct Entry<T> {
    record: Mutex<T>,
    /// Held by operations on this object for their whole length.
    pub op: tokio::sync::Mutex<()>,
}

impl<T: Clone> Entry<T> {
    fn new(t: T) -> Self {
        Self {
            record: Mutex::new(t),
            op: tokio::sync::Mutex::new(()),
        }
    }

    /// A copy of the record.
    pub fn get(&self) -> T {
        self.record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, f: impl FnOnce(&mut T)) -> T {
        let mut g = self.record.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g);
        g.clone()
    }
}

type Map<T> = Mutex<HashMap<String, Arc<Entry<T>>>>;

/// Every record, in memory and on disk.
pub struct Store {
    dir: PathBuf,
    sandboxes: Map<Sandbox>,
    containers: Map<Container>,
}

fn load<T: for<'de> Deserialize<'de>>(dir: &Path) -> Result<Vec<T>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(internal(format!("reading {}", dir.display())))?;
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            // A temporary file of a write a crash cut short.
            let _ = std::fs::remove_file(&p);
            continue;
        }
        match std::fs::read(&p).map(|b| serde_json::from_slice::<T>(&b)) {
            Ok(Ok(t)) => out.push(t),
            Ok(Err(e)) => tracing::warn!(path = %p.display(), error = %e, "unreadable CRI record"),
            Err(e) => tracing::warn!(path = %p.display(), error = %e, "unreadable CRI record"),
        }
    }
    Ok(out)
}

/// Writes `DIR/ID.json` (0600), whole or not at all (written beside it, renamed).
pub(crate) fn write<T: Serialize>(dir: &Path, id: &str, t: &T) -> Result<()> {
    let bytes = serde_json::to_vec(t).map_err(internal("encoding a CRI record"))?;
    let tmp = dir.join(format!(".{id}.tmp"));
    let path = dir.join(format!("{id}.json"));
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(internal(format!("writing {}", tmp.display())))?;
        f.write_all(&bytes)
            .map_err(internal(format!("writing {}", tmp.display())))?;
    }
    std::fs::rename(&tmp, &path).map_err(internal(format!("renaming {}", path.display())))
}

/// Finds an entry by full ID or unique prefix (as crictl and containerd accept).
fn find<T>(map: &Map<T>, id: &str, what: &str) -> Result<Arc<Entry<T>>> {
    if id.is_empty() {
        return Err(Error::Invalid(format!("{what} ID is empty")));
    }
    let g = map.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = g.get(id) {
        return Ok(e.clone());
    }
    let mut hits = g.iter().filter(|(k, _)| k.starts_with(id));
    match (hits.next(), hits.next()) {
        (Some((_, e)), None) => Ok(e.clone()),
        (Some(_), Some(_)) => Err(Error::Invalid(format!(
            "{what} ID prefix {id:?} is ambiguous"
        ))),
        (None, _) => Err(Error::NotFound(format!("{what} {id:?} not found"))),
    }
}

impl Store {
    /// Loads the records under `dir` (`DATA/cri`).
    pub fn open(dir: &Path) -> Result<Self> {
        let sb = dir.join("sandboxes");
        let ct = dir.join("containers");
        for d in [&sb, &ct] {
            std::fs::create_dir_all(d).map_err(internal(format!("creating {}", d.display())))?;
        }
        let sandboxes = load::<Sandbox>(&sb)?
            .into_iter()
            .map(|s| (s.id.clone(), Arc::new(Entry::new(s))))
            .collect();
        let containers = load::<Container>(&ct)?
            .into_iter()
            .map(|c| (c.id.clone(), Arc::new(Entry::new(c))))
            .collect();
        Ok(Self {
            dir: dir.to_path_buf(),
            sandboxes: Mutex::new(sandboxes),
            containers: Mutex::new(containers),
        })
    }

    /// Adds a sandbox (its name must be free) and writes it.
    pub fn add_sandbox(&self, s: Sandbox) -> Result<Arc<Entry<Sandbox>>> {
        let e = {
            let mut g = self.sandboxes.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(other) = g.values().find(|o| o.get().name == s.name) {
                return Err(Error::AlreadyExists(format!(
                    "pod sandbox name {:?} is already used by {}",
                    s.name,
                    other.get().id
                )));
            }
            let e = Arc::new(Entry::new(s.clone()));
            g.insert(s.id.clone(), e.clone());
            e
        };
        write(&self.dir.join("sandboxes"), &s.id, &s)?;
        Ok(e)
    }

    /// Changes a sandbox and writes it.
    pub fn update_sandbox(
        &self,
        e: &Entry<Sandbox>,
        f: impl FnOnce(&mut Sandbox),
    ) -> Result<Sandbox> {
        let s = e.set(f);
        write(&self.dir.join("sandboxes"), &s.id, &s)?;
        Ok(s)
    }

    /// Forgets a sandbox.
    pub fn remove_sandbox(&self, id: &str) -> Result<()> {
        self.sandboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        match std::fs::remove_file(self.dir.join("sandboxes").join(format!("{id}.json"))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(internal("removing the sandbox record")(e))
            }
            _ => Ok(()),
        }
    }

    /// The sandbox with this ID (or unique prefix).
    pub fn sandbox(&self, id: &str) -> Result<Arc<Entry<Sandbox>>> {
        find(&self.sandboxes, id, "pod sandbox")
    }

    /// Every sandbox.
    pub fn sandboxes(&self) -> Vec<Arc<Entry<Sandbox>>> {
        self.sandboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Adds a container (its name must be free) and writes it.
    pub fn add_container(&self, c: Container) -> Result<Arc<Entry<Container>>> {
        let e = {
            let mut g = self.containers.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(other) = g.values().find(|o| o.get().name == c.name) {
                return Err(Error::AlreadyExists(format!(
                    "container name {:?} is already used by {}",
                    c.name,
                    other.get().id
                )));
            }
            let e = Arc::new(Entry::new(c.clone()));
            g.insert(c.id.clone(), e.clone());
            e
        };
        write(&self.dir.join("containers"), &c.id, &c)?;
        Ok(e)
    }

    /// Changes a container and writes it.
    pub fn update_container(
        &self,
        e: &Entry<Container>,
        f: impl FnOnce(&mut Container),
    ) -> Result<Container> {
        let c = e.set(f);
        write(&self.dir.join("containers"), &c.id, &c)?;
        Ok(c)
    }

    /// Forgets a container.
    pub fn remove_container(&self, id: &str) -> Result<()> {
        self.containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        match std::fs::remove_file(self.dir.join("containers").join(format!("{id}.json"))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(internal("removing the container record")(e))
            }
            _ => Ok(()),
        }
    }

    /// The container with this ID (or unique prefix).
    pub fn container(&self, id: &str) -> Result<Arc<Entry<Container>>> {
        find(&self.containers, id, "container")
    }

    /// Every container.
    pub fn containers(&self) -> Vec<Arc<Entry<Container>>> {
        self.containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The containers of one sandbox.
    pub fn containers_of(&self, sandbox_id: &str) -> Vec<Arc<Entry<Container>>> {
        self.containers()
            .into_iter()
            .filter(|c| c.get().sandbox_id == sandbox_id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(id: &str, name: &str) -> Sandbox {
        Sandbox {
            id: id.into(),
            name: name.into(),
            config: Default::default(),
            runtime_handler: String::new(),
            created_at: 1,
            state: SandboxState::Ready,
            netns: None,
            ips: vec!["10.0.0.2".into()],
            cni_result: None,
            cni_network: String::new(),
            pid: 42,
            cgroup_parent: String::new(),
            cgroups_path: String::new(),
            own_shm: false,
        }
    }

    #[test]
    fn records_survive_a_reopen_and_names_stay_unique() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let e = s.add_sandbox(sandbox("abcdef", "a_b_c_0")).unwrap();
        assert!(matches!(
            s.add_sandbox(sandbox("123456", "a_b_c_0")),
            Err(Error::AlreadyExists(_))
        ));
        s.update_sandbox(&e, |r| r.state = SandboxState::NotReady)
            .unwrap();
        // A write a crash cut short leaves a temporary file: ignored and removed.
        std::fs::write(dir.path().join("sandboxes/.zzz.tmp"), b"{").unwrap();
        let again = Store::open(dir.path()).unwrap();
        let r = again.sandbox("abc").unwrap().get();
        assert_eq!(r.state, SandboxState::NotReady);
        assert_eq!(r.ips, vec!["10.0.0.2".to_string()]);
        assert!(!dir.path().join("sandboxes/.zzz.tmp").exists());
        assert!(matches!(again.sandbox("nope"), Err(Error::NotFound(_))));
        assert!(matches!(again.sandbox(""), Err(Error::Invalid(_))));
        again.remove_sandbox("abcdef").unwrap();
        assert!(Store::open(dir.path()).unwrap().sandboxes().is_empty());
    }

    #[test]
    fn ambiguous_prefixes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.add_sandbox(sandbox("ab1", "n1")).unwrap();
        s.add_sandbox(sandbox("ab2", "n2")).unwrap();
        assert!(matches!(s.sandbox("ab"), Err(Error::Invalid(_))));
        assert_eq!(s.sandbox("ab2").unwrap().get().name, "n2");
    }
}
