//! The registry of tasks: each task's shim (client, binary, pidfd), its life (served,
//! being cleaned up after its dead shim, or stopped with the exit the supervisor
//! recorded), its exec'd processes, and whether its exit was delivered. The event bus
//! feeds it the exits it delivers (`Registry::exit_hook`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use berth_proto::v1 as pb;
use tokio::sync::watch;

use crate::bundle::{self, Exit};
use crate::error::{Error, Result};
use crate::events::ExitHook;
use crate::shim::ShimClient;
use crate::sys::PidFd;

/// A task's life as the supervisor sees it.
#[derive(Clone, Debug)]
pub enum Life {
    /// Its shim serves it.
    Alive,
    /// Its shim died; the supervisor is cleaning up after it.
    Dying,
    /// Its shim died and the clean-up is done: the init process's exit.
    Dead(Exit),
}

/// An exec'd process the supervisor started: its PID, and its exit once published.
#[derive(Clone, Debug, Default)]
pub(crate) struct ExecInfo {
    pub pid: u32,
    pub exit: Option<Exit>,
}

/// One task.
pub struct Task {
    /// Namespace.
    pub ns: String,
    /// Container ID.
    pub id: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// The shim's client; None once the shim is known dead (a task found stopped at
    /// recovery).
    pub(crate) shim: Option<ShimClient>,
    /// The shim binary (for its `delete` command).
    pub(crate) shim_binary: Option<PathBuf>,
    /// The shim's process.
    pub(crate) pidfd: Option<Arc<PidFd>>,
    /// The init process's PID.
    pub(crate) init_pid: u32,
    pub(crate) life: watch::Sender<Life>,
    pub(crate) execs: Mutex<HashMap<String, ExecInfo>>,
    /// The init's TaskExit went through the bus.
    pub(crate) init_reported: AtomicBool,
}

impl Task {
    /// A task whose shim serves it.
    pub(crate) fn live(
        ns: &str,
        id: &str,
        bundle: &Path,
        shim: ShimClient,
        shim_binary: Option<PathBuf>,
        pidfd: PidFd,
        init_pid: u32,
    ) -> Self {
        Self {
            ns: ns.into(),
            id: id.into(),
            bundle: bundle.to_path_buf(),
            shim: Some(shim),
            shim_binary,
            pidfd: Some(Arc::new(pidfd)),
            init_pid,
            life: watch::Sender::new(Life::Alive),
            execs: Mutex::new(HashMap::new()),
            init_reported: AtomicBool::new(bundle.join(bundle::EXIT_REPORTED).exists()),
        }
    }

    /// A stopped task whose shim died before (found so at recovery).
    pub(crate) fn stopped(ns: &str, id: &str, bundle: &Path, exit: Exit) -> Self {
        Self {
            ns: ns.into(),
            id: id.into(),
            bundle: bundle.to_path_buf(),
            shim: None,
            shim_binary: None,
            pidfd: None,
            init_pid: exit.pid,
            life: watch::Sender::new(Life::Dead(exit)),
            execs: Mutex::new(HashMap::new()),
            init_reported: AtomicBool::new(bundle.join(bundle::EXIT_REPORTED).exists()),
        }
    }

    /// The exit, once the shim died and was cleaned up after.
    pub(crate) fn dead(&self) -> Option<Exit> {
        match &*self.life.borrow() {
            Life::Dead(e) => Some(e.clone()),
            _ => None,
        }
    }

    pub(crate) fn execs(&self) -> std::sync::MutexGuard<'_, HashMap<String, ExecInfo>> {
        self.execs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The exit of a process of a task whose shim died: the init's, or an exec'd
    /// process's (its own exit if it had exited, else killed with the rest).
    pub(crate) fn exit_of(&self, exec_id: &str, init: &Exit) -> Result<Exit> {
        if exec_id.is_empty() {
            return Ok(init.clone());
        }
        let execs = self.execs();
        let info = execs.get(exec_id).ok_or_else(|| {
            Error::NotFound(format!("exec {exec_id} of task {}: not found", self.id))
        })?;
        Ok(info.exit.clone().unwrap_or_else(|| Exit {
            pid: info.pid,
            status: 137,
            at: init.at,
            reason: if init.reason.is_empty() {
                shim_died_reason(self.pidfd.as_ref().map(|p| p.pid()))
            } else {
                init.reason.clone()
            },
            oom: false,
        }))
    }

    pub(crate) fn shim(&self) -> Result<&ShimClient> {
        self.shim.as_ref().ok_or_else(|| self.gone())
    }

    /// The error of a call that needs a live shim.
    pub(crate) fn gone(&self) -> Error {
        Error::FailedPrecondition(format!(
            "task {}: its shim died and the task is stopped; delete it",
            self.id
        ))
    }
}

/// The reason given for a process the supervisor killed after its shim died.
pub(crate) fn shim_died_reason(shim_pid: Option<u32>) -> String {
    match shim_pid {
        Some(pid) => {
            format!("shim died (pid {pid}): berth-supervisor killed what was left of the container")
        }
        None => "shim died: berth-supervisor killed what was left of the container".into(),
    }
}

/// The live tasks, shared with the event bus (which records the exits it delivers).
pub struct Registry {
    state: PathBuf,
    map: Mutex<HashMap<(String, String), Arc<Task>>>,
}

impl Registry {
    /// An empty registry over the bundles under `state`.
    pub fn new(state: PathBuf) -> Self {
        Self {
            state,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<Task>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, ns: &str, id: &str) -> Option<Arc<Task>> {
        self.map().get(&(ns.to_string(), id.to_string())).cloned()
    }

    pub(crate) fn insert(&self, t: Arc<Task>) {
        self.map().insert((t.ns.clone(), t.id.clone()), t);
    }

    pub(crate) fn remove(&self, t: &Arc<Task>) {
        let mut map = self.map();
        let key = (t.ns.clone(), t.id.clone());
        if map.get(&key).is_some_and(|cur| Arc::ptr_eq(cur, t)) {
            map.remove(&key);
        }
    }

    /// Whether `t` is the task registered for its container.
    pub(crate) fn is_current(&self, t: &Arc<Task>) -> bool {
        self.get(&t.ns, &t.id)
            .is_some_and(|cur| Arc::ptr_eq(&cur, t))
    }

    pub(crate) fn ids(&self, ns: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .map()
            .keys()
            .filter(|(n, _)| n == ns)
            .map(|(_, i)| i.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Note an exit that goes through the bus: the init's is marked delivered (in the
    /// bundle too, for after a restart), an exec'd process's is kept for when its shim
    /// dies later.
    fn note_exit(&self, ns: &str, e: &pb::TaskExit) {
        let exit = Exit {
            pid: e.pid,
            status: e.exit_status,
            at: e
                .exited_at
                .as_ref()
                .map(|t| (t.seconds, t.nanos))
                .unwrap_or_default(),
            reason: e.exit_reason.clone(),
            oom: false,
        };
        if e.exec_id.is_empty() {
            let dir = bundle::dir(&self.state, ns, &e.container_id);
            if dir.exists() {
                let _ = std::fs::write(dir.join(bundle::EXIT_REPORTED), b"");
            }
            if let Some(t) = self.get(ns, &e.container_id) {
                t.init_reported.store(true, Ordering::SeqCst);
            }
        } else if let Some(t) = self.get(ns, &e.container_id) {
            let mut execs = t.execs();
            let info = execs.entry(e.exec_id.clone()).or_default();
            info.pid = e.pid;
            info.exit = Some(exit);
        }
    }

    /// The bus hook that feeds `note_exit`.
    pub fn exit_hook(self: &Arc<Self>) -> ExitHook {
        let this = self.clone();
        Arc::new(move |ns: &str, e: &pb::TaskExit| this.note_exit(ns, e))
    }
}
