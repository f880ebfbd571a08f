//! A container as the runtime knows it between commands: its state directory under `--root`.

mod create;
mod delete;
pub mod kill;
mod pause;
mod start;
mod state;
mod status;
pub mod update;

pub use create::{create, write_atomically, CreateOptions};
pub use state::{ContainerState, OciState};
pub use status::{process_start_time, Status};

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Context, Result, RuntimeError};

/// Name of the FIFO that `create` leaves the init process blocked on until `start`.
pub const EXEC_FIFO: &str = "exec.fifo";
const STATE_FILE: &str = "state.json";

/// Handle on one container's state directory.
#[derive(Debug, Clone)]
pub struct Container {
    /// The persisted state.
    pub state: ContainerState,
    dir: PathBuf,
}

/// Container IDs must be usable as a single path component and in cgroup names.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidId(id.to_string()))
    }
}

/// The state directory of container `id` under `root`.
pub fn state_dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

impl Container {
    /// Load an existing container, or fail with NotFound naming the id.
    pub fn load(root: &Path, id: &str) -> Result<Self> {
        validate_id(id)?;
        let dir = state_dir(root, id);
        let path = dir.join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(data) => data,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::NotFound(id.to_string()))
            }
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        let state: ContainerState = serde_json::from_slice(&data)
            .map_err(|e| RuntimeError::Other(format!("corrupt state {}: {e}", path.display())))?;
        Ok(Self { state, dir })
    }

    /// Wrap a freshly created state; `save` persists it.
    pub fn new(root: &Path, state: ContainerState) -> Self {
        let dir = state_dir(root, &state.id);
        Self { state, dir }
    }

    /// The container's state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the exec FIFO; it exists exactly while the container is `created`.
    pub fn exec_fifo(&self) -> PathBuf {
        self.dir.join(EXEC_FIFO)
    }

    /// Persist the state atomically (write a temp file, rename) so a crash of any
    /// process never leaves a half-written state.json. No fsync: the state describes
    /// processes and mounts that a reboot ends anyway (the root is normally a tmpfs
    /// under /run), and a sync costs milliseconds on every create when it is on a disk.
    pub fn save(&self) -> Result<()> {
        let tmp = self.dir.join(".state.json.tmp");
        let data = serde_json::to_vec(&self.state)
            .map_err(|e| RuntimeError::Other(format!("serialize state: {e}")))?;
        {
            use std::io::Write;
            let mut file =
                fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
            file.write_all(&data).context("write state")?;
        }
        fs::rename(&tmp, self.dir.join(STATE_FILE)).context("rename state")
    }

    /// The current status, derived from the kernel rather than stored, so it is never stale.
    pub fn status(&self) -> Status {
        Status::of(self)
    }

    /// The current status if it is one of `allowed`; otherwise the error naming what
    /// `action` needs, so every lifecycle verb refuses in the same words.
    pub(crate) fn require(&self, action: &'static str, allowed: &[Status]) -> Result<Status> {
        let status = self.status();
        if allowed.contains(&status) {
            return Ok(status);
        }
        let names: Vec<String> = allowed.iter().map(Status::to_string).collect();
        let wanted = match names.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => "nothing".into(),
        };
        Err(RuntimeError::WrongStatus {
            id: self.state.id.clone(),
            status: status.to_string(),
            action,
            wanted,
        })
    }

    /// The state JSON of the runtime spec, as `state` prints and hooks receive.
    pub fn oci_state(&self) -> OciState {
        let status = self.status();
        self.state.to_oci(status)
    }

    /// All container IDs under `root` (directories with a state file), sorted.
    pub fn list_ids(root: &Path) -> Result<Vec<String>> {
        let entries = match fs::read_dir(root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("read {}", root.display())),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_one_safe_path_component() {
        for good in ["a", "web-1", "x_y.z+1", "0123456789abcdef"] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é", "x\n"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }
}
