//! The supervisor as the CRI uses it: the engine's `Supervisor` trait (berth-supervisor's
//! gRPC client, or the fake in unit tests) in the CRI's own namespace (`k8s.io`), so that
//! `docker ps` against berthd never lists pods. Exits are followed as the container core
//! follows them: from the supervisor's events of that namespace (subscribed before any
//! state is read), re-synced from the tasks' states when the stream breaks or reports
//! lost events. The engine's errors become the CRI's gRPC codes here, once.

use super::{Error, Result};
use crate::containers::supervisor::{self as sv, Event, NewTask, RootfsMount};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// A process's standard streams: FIFO paths the shim opens (None: none).
#[derive(Debug, Clone, Default)]
pub struct Stdio {
    /// stdin FIFO, if the process has one.
    pub stdin: Option<std::path::PathBuf>,
    /// stdout FIFO (the terminal's output with a terminal); None: /dev/null.
    pub stdout: Option<std::path::PathBuf>,
    /// stderr FIFO (unused with a terminal); None: /dev/null.
    pub stderr: Option<std::path::PathBuf>,
    /// Whether the process gets a pseudo-terminal.
    pub terminal: bool,
}

impl Stdio {
    /// The engine's form: an empty path is no stream (the shim's /dev/null).
    fn engine(&self) -> sv::Stdio {
        sv::Stdio {
            stdin: self.stdin.clone(),
            stdout: self.stdout.clone().unwrap_or_default(),
            stderr: self.stderr.clone().unwrap_or_default(),
            terminal: self.terminal,
        }
    }
}

/// A process's state in the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcStatus {
    /// Created, not started.
    Created,
    /// Running (or paused).
    Running,
    /// Exited with this status (128+signal if killed) at this time (ns since the epoch).
    Stopped(u32, i64),
    /// Its shim cannot be reached.
    Unknown,
}

/// An exit: its status and when (ns since the epoch).
type ExitStatus = (u32, i64);

/// (container ID, exec ID; empty for the init process).
type Key = (String, String);

/// Processes someone waits for, each with the watch its exit is sent on.
#[derive(Default)]
struct Exits {
    waiters: Mutex<HashMap<Key, watch::Sender<Option<ExitStatus>>>>,
}

impl Exits {
    fn watch(&self, key: Key) -> watch::Receiver<Option<ExitStatus>> {
        let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        w.entry(key)
            .or_insert_with(|| watch::channel(None).0)
            .subscribe()
    }

    /// Delivers an exit to whoever waits for it, and forgets the process.
    fn exited(&self, key: &Key, status: ExitStatus) {
        let tx = self
            .waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        if let Some(tx) = tx {
            tx.send_replace(Some(status));
        }
    }

    fn keys(&self) -> Vec<Key> {
        let w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        w.keys().cloned().collect()
    }

    fn forget_one(&self, key: &Key) {
        self.waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Forgets every process of a container (it is deleted).
    fn forget(&self, id: &str) {
        let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        w.retain(|(c, _), _| c != id);
    }
}

/// The supervisor, as the CRI uses it.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<dyn sv::Supervisor>,
    exits: Arc<Exits>,
}

fn map(what: &str) -> impl FnOnce(sv::Error) -> Error + '_ {
    move |e| {
        let msg = format!("{what}: {e}");
        match e {
            sv::Error::NotFound(_) => Error::NotFound(msg),
            sv::Error::Invalid(_) => Error::Invalid(msg),
            sv::Error::Conflict(_) => Error::FailedPrecondition(msg),
            sv::Error::Unavailable(_) => Error::Unavailable(msg),
            sv::Error::Lost(_) | sv::Error::Failed(_) => Error::Internal(msg),
        }
    }
}

fn ns(t: Option<SystemTime>) -> i64 {
    t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Supervisor {
    /// Over the engine's supervisor in the CRI's namespace; follows its exits from now
    /// on (a task on the current runtime, until this is dropped).
    pub fn new(inner: Arc<dyn sv::Supervisor>) -> Self {
        let exits = Arc::new(Exits::default());
        tokio::spawn(follow(inner.clone(), Arc::downgrade(&exits)));
        Self { inner, exits }
    }

    /// Whether the supervisor answers (a question about no task: any answer but
    /// Unavailable will do).
    pub async fn ready(&self) -> Result<()> {
        match self.inner.state("berth-cri-readiness-probe", "").await {
            Err(e @ sv::Error::Unavailable(_)) => Err(map("the supervisor")(e)),
            _ => Ok(()),
        }
    }

    /// Records a container (its spec and the overlay of its root filesystem) and creates
    /// its task, the init process not started. On failure nothing is left behind.
    pub async fn create(
        &self,
        id: &str,
        spec: &oci_spec::runtime::Spec,
        rootfs_options: Vec<String>,
        runtime_binary: &str,
        stdio: &Stdio,
    ) -> Result<()> {
        self.inner
            .create(NewTask {
                id: id.into(),
                spec: spec.clone(),
                rootfs: vec![RootfsMount {
                    kind: "overlay".into(),
                    source: "overlay".into(),
                    options: rootfs_options,
                }],
                runtime_binary: runtime_binary.into(),
                stdio: stdio.engine(),
                // CRI logs are in the kubelet's format, written by berthd from the
                // FIFOs (the shim's log is dockerd's json-file).
                log: None,
            })
            .await
            .map_err(map("creating the task"))
    }

    /// Starts the init process (empty `exec_id`) or an exec'd one; its host PID.
    pub async fn start(&self, id: &str, exec_id: &str) -> Result<u32> {
        self.inner.start(id, exec_id).await.map_err(map("starting"))
    }

    /// Deletes the task (if any, once stopped) and the record (if any).
    pub async fn delete(&self, id: &str) -> Result<()> {
        self.inner
            .delete(id)
            .await
            .map_err(map("deleting the task"))?;
        self.exits.forget(id);
        Ok(())
    }

    /// Adds a process to a running task (started with `start`).
    pub async fn exec(
        &self,
        id: &str,
        exec_id: &str,
        process: &oci_spec::runtime::Process,
        stdio: &Stdio,
    ) -> Result<()> {
        self.inner
            .exec(id, exec_id, process, &stdio.engine())
            .await
            .map_err(map("adding the exec process"))
    }

    /// Forgets a stopped exec'd process (fine if it is gone).
    pub async fn delete_process(&self, id: &str, exec_id: &str) {
        let _ = self.inner.delete_process(id, exec_id).await;
        self.exits
            .forget_one(&(id.to_string(), exec_id.to_string()));
    }

    /// Signals a process, or with `all` every process of the container.
    pub async fn kill(&self, id: &str, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        self.inner
            .kill(id, exec_id, signal, all)
            .await
            .map_err(map("signalling"))
    }

    /// A process's PID and state; NotFound when there is no task.
    pub async fn state(&self, id: &str, exec_id: &str) -> Result<(u32, ProcStatus)> {
        let p = self
            .inner
            .state(id, exec_id)
            .await
            .map_err(map("reading the task's state"))?;
        let st = match p.status {
            sv::Status::Created => ProcStatus::Created,
            sv::Status::Running | sv::Status::Paused => ProcStatus::Running,
            sv::Status::Stopped => ProcStatus::Stopped(p.exit_status, ns(p.exited_at)),
            sv::Status::Unknown => ProcStatus::Unknown,
        };
        Ok((p.pid, st))
    }

    /// Waits for a process to exit: its exit status and when (ns since the epoch).
    /// NotFound if there is no such process. Cancel-safe.
    pub async fn wait(&self, id: &str, exec_id: &str) -> Result<(u32, i64)> {
        // Watched before its state is read: an exit in between comes either way.
        let key = (id.to_string(), exec_id.to_string());
        let mut rx = self.exits.watch(key.clone());
        match self.state(id, exec_id).await {
            Ok((_, ProcStatus::Running | ProcStatus::Created | ProcStatus::Unknown)) => {}
            done => {
                // Its exit event has passed, or it does not exist: nothing to watch
                // (other waiters of it read its state again).
                self.exits.forget_one(&key);
                let (_, st) = done?;
                if let ProcStatus::Stopped(status, at) = st {
                    return Ok((status, at));
                }
            }
        }
        loop {
            if let Some(exit) = *rx.borrow_and_update() {
                return Ok(exit);
            }
            if rx.changed().await.is_err() {
                // Forgotten (deleted) without an exit: read it again.
                return match self.state(id, exec_id).await? {
                    (_, ProcStatus::Stopped(status, at)) => Ok((status, at)),
                    _ => Err(Error::NotFound(format!(
                        "process {id} {exec_id} was deleted"
                    ))),
                };
            }
        }
    }

    /// Changes a running task's resource limits.
    pub async fn update(
        &self,
        id: &str,
        resources: &oci_spec::runtime::LinuxResources,
    ) -> Result<()> {
        self.inner
            .update(id, resources)
            .await
            .map_err(map("updating the resources"))
    }

    /// Resizes a process's terminal.
    pub async fn resize(&self, id: &str, exec_id: &str, width: u32, height: u32) -> Result<()> {
        self.inner
            .resize(id, exec_id, width, height)
            .await
            .map_err(map("resizing the terminal"))
    }

    /// Closes a process's stdin (it reads end-of-file).
    pub async fn close_stdin(&self, id: &str, exec_id: &str) -> Result<()> {
        self.inner
            .close_stdin(id, exec_id)
            .await
            .map_err(map("closing stdin"))
    }

    /// The host PIDs of the task's processes.
    pub async fn pids(&self, id: &str) -> Result<Vec<u32>> {
        self.inner
            .pids(id)
            .await
            .map_err(map("listing the processes"))
    }
}

/// Follows the namespace's events for as long as `exits` lives: each exit goes to its
/// waiters; after a broken stream or lost events, the waited-for processes' states are
/// read again (after subscribing anew, so nothing falls in between).
async fn follow(inner: Arc<dyn sv::Supervisor>, exits: Weak<Exits>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        if exits.strong_count() == 0 {
            return;
        }
        let mut events = match inner.subscribe().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "CRI: subscribing to the supervisor's events; again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        resync(inner.as_ref(), &exits).await;
        loop {
            // Checked now and then, so that the task ends with the CRI.
            let next = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
            let Some(exits) = exits.upgrade() else { return };
            match next {
                Err(_) => continue,
                Ok(Some(Ok(Event::Exit(e)))) => exits.exited(
                    &(e.container_id, e.exec_id.unwrap_or_default()),
                    (e.exit_status, ns(e.exited_at)),
                ),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(sv::Error::Lost(m)))) => {
                    tracing::warn!(lost = %m, "CRI: supervisor events lost; re-syncing");
                    resync(inner.as_ref(), &Arc::downgrade(&exits)).await;
                }
                Ok(Some(Err(e))) => {
                    tracing::warn!(error = %e, "CRI: supervisor event stream broke; again");
                    break;
                }
                Ok(None) => break,
            }
        }
        inner.reconnect().await;
    }
}

/// Delivers the exits of waited-for processes that have stopped (or are gone).
async fn resync(inner: &dyn sv::Supervisor, exits: &Weak<Exits>) {
    let Some(keys) = exits.upgrade().map(|e| e.keys()) else {
        return;
    };
    for key in keys {
        let exit = match inner.state(&key.0, &key.1).await {
            Ok(p) if p.status == sv::Status::Stopped => (p.exit_status, ns(p.exited_at)),
            // Gone: deleted by its shim's cleanup; waiters read it themselves.
            Err(sv::Error::NotFound(_)) => {
                if let Some(e) = exits.upgrade() {
                    e.forget_one(&key);
                }
                continue;
            }
            _ => continue,
        };
        if let Some(e) = exits.upgrade() {
            e.exited(&key, exit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::supervisor::fake::Fake;

    fn spec() -> oci_spec::runtime::Spec {
        oci_spec::runtime::Spec::default()
    }

    #[tokio::test]
    async fn wait_returns_the_exit_whether_it_comes_before_or_after() {
        let fake = Arc::new(Fake::default());
        let s = Supervisor::new(fake.clone());
        s.create("c1", &spec(), vec![], "", &Stdio::default())
            .await
            .unwrap();
        s.start("c1", "").await.unwrap();
        let waiter = {
            let s = s.clone();
            tokio::spawn(async move { s.wait("c1", "").await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        fake.exit("c1", 7);
        let (status, at) = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("wait ended")
            .unwrap()
            .unwrap();
        assert_eq!(status, 7);
        assert!(at > 0);
        // Already exited: answered from the task's state.
        assert_eq!(s.wait("c1", "").await.unwrap().0, 7);
        assert!(s.exits.keys().is_empty(), "a waiter outlived its exit");
    }

    #[tokio::test]
    async fn unknown_processes_and_errors_keep_their_codes() {
        let fake = Arc::new(Fake::default());
        let s = Supervisor::new(fake.clone());
        assert!(matches!(s.wait("nope", "").await, Err(Error::NotFound(_))));
        assert!(s.exits.keys().is_empty(), "a waiter of nothing was kept");
        assert!(matches!(s.start("nope", "").await, Err(Error::NotFound(_))));
        s.create("c2", &spec(), vec![], "", &Stdio::default())
            .await
            .unwrap();
        assert!(matches!(
            s.create("c2", &spec(), vec![], "", &Stdio::default()).await,
            Err(Error::FailedPrecondition(_))
        ));
        // A deleted container's waiters are forgotten with it.
        let _ = s.exits.watch(("c2".into(), String::new()));
        s.kill("c2", "", 9, true).await.unwrap();
        s.delete("c2").await.unwrap();
        assert!(s.exits.keys().is_empty());
    }

    #[tokio::test]
    async fn exits_missed_while_events_were_lost_are_found_again() {
        let fake = Arc::new(Fake::default());
        let s = Supervisor::new(fake.clone());
        s.create("c3", &spec(), vec![], "", &Stdio::default())
            .await
            .unwrap();
        s.start("c3", "").await.unwrap();
        let waiter = {
            let s = s.clone();
            tokio::spawn(async move { s.wait("c3", "").await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        fake.exit_unseen("c3", 3);
        fake.disconnect();
        let (status, _) = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the exit was found by the re-sync")
            .unwrap()
            .unwrap();
        assert_eq!(status, 3);
    }
}
