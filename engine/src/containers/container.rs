//! A container as the daemon holds it while it knows it: its record, what waiters and
//! attached clients watch, and the state of its current run (which process, its
//! streams, an exit that arrived before its start was recorded).

use super::io::{Chunk, Fifos};
use super::record::Record;
use super::state::{State, Status, TransitionError};
use super::supervisor::Exit;
use std::sync::Mutex;
use tokio::net::unix::pipe;
use tokio::sync::{broadcast, watch};

/// What waiters watch (`wait`, attach, health loops).
#[derive(Debug, Clone)]
pub struct Gen {
    /// Exits so far (a run's end, whether or not it will be restarted).
    pub exits: u64,
    /// The status, as the record has it.
    pub status: Status,
    /// Removed.
    pub removed: bool,
    /// Last exit code.
    pub exit_code: i64,
}

/// Where the current run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// No run.
    #[default]
    Idle,
    /// A start is under way: an exit that comes now waits for it.
    Starting,
    /// The init process runs with this PID.
    Running(u32),
    /// Its exit is being recorded.
    Exiting,
}

/// The streams of a run: the FIFOs, the copiers draining them, and how to tell them
/// the process has exited.
pub struct RunIo {
    /// The FIFOs.
    pub fifos: Fifos,
    /// Set once the exit is known: the copiers drain what is left, then end.
    pub exited: watch::Sender<bool>,
    /// The copiers; ends once both streams are drained.
    pub copiers: tokio::task::JoinHandle<()>,
}

/// The current run.
#[derive(Default)]
pub struct Run {
    /// Where it is.
    pub phase: Phase,
    /// An exit that arrived while the start was under way.
    pub pending: Option<Exit>,
    /// Its streams.
    pub io: Option<RunIo>,
    /// The kernel's OOM killer struck during it.
    pub oom: bool,
    /// Bumped by every start, stop and removal: a restart scheduled by an older one is
    /// void.
    pub epoch: u64,
    /// The restart policy's decisions and back-off (made from the record when first
    /// needed, and again after an update of the policy).
    pub restarts: Option<berth_api::state::RestartManager>,
}

/// A container known to the daemon.
pub struct Container {
    /// ID.
    pub id: String,
    rec: Mutex<Record>,
    /// Changes, for waiters.
    pub gen: watch::Sender<Gen>,
    /// Output of the current run, for attached clients.
    pub out: broadcast::Sender<Chunk>,
    /// stdin of the current run (OpenStdin).
    pub stdin: tokio::sync::Mutex<Option<pipe::Sender>>,
    /// Serialises what changes its life (start, stop, restart, remove).
    pub(crate) op: tokio::sync::Mutex<()>,
    /// Serialises writes of its record, so that the last one written is the newest.
    pub(crate) saving: tokio::sync::Mutex<()>,
    /// The current run.
    pub(crate) run: Mutex<Run>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Container {
    /// A container with this record.
    pub fn new(rec: Record) -> Self {
        let gen = Gen {
            exits: 0,
            status: rec.state.status(),
            removed: false,
            exit_code: rec.state.exit_code,
        };
        Self {
            id: rec.id.clone(),
            rec: Mutex::new(rec),
            gen: watch::Sender::new(gen),
            out: broadcast::channel(1024).0,
            stdin: tokio::sync::Mutex::new(None),
            op: tokio::sync::Mutex::new(()),
            saving: tokio::sync::Mutex::new(()),
            run: Mutex::new(Run::default()),
        }
    }

    /// A copy of the record.
    pub fn record(&self) -> Record {
        lock(&self.rec).clone()
    }

    /// Reads the record without copying it.
    pub fn read<R>(&self, f: impl FnOnce(&Record) -> R) -> R {
        f(&lock(&self.rec))
    }

    /// Changes the record (not its status: see `transition`).
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut Record) -> R) -> R {
        f(&mut lock(&self.rec))
    }

    /// Changes the state through one of its transitions; waiters see the new status.
    /// The one place a status is set.
    pub(crate) fn transition(&self, f: impl FnOnce(&mut State)) {
        let (status, code) = {
            let mut r = lock(&self.rec);
            f(&mut r.state);
            (r.state.status(), r.state.exit_code)
        };
        self.gen.send_modify(|g| {
            g.status = status;
            g.exit_code = code;
        });
    }

    /// A verb's check against the current state (berth-api's, in dockerd's words).
    pub(crate) fn check(
        &self,
        f: impl FnOnce(&berth_api::state::State) -> Result<(), TransitionError>,
    ) -> Result<(), TransitionError> {
        f(&lock(&self.rec).state.flags)
    }

    /// A run ended (its exit recorded in the state): waiters of the next exit go on.
    pub(crate) fn exited(&self) {
        self.gen.send_modify(|g| g.exits += 1);
    }

    /// The status.
    pub fn status(&self) -> Status {
        lock(&self.rec).state.status()
    }

    /// Whether its init process runs (paused or not).
    pub fn running(&self) -> bool {
        super::state::has_task(self.status())
    }

    /// The name, without `/`.
    pub fn name(&self) -> String {
        lock(&self.rec).name.clone()
    }

    /// Works on the restart policy's state (made from the record when first needed).
    pub(crate) fn restarts<R>(
        &self,
        f: impl FnOnce(&mut berth_api::state::RestartManager) -> R,
    ) -> R {
        let (policy, count) =
            self.read(|r| (r.host_config.restart_policy.clone(), r.restart_count));
        self.run(|r| {
            f(r.restarts
                .get_or_insert_with(|| berth_api::state::RestartManager::new(policy, count)))
        })
    }

    /// Works on the current run.
    pub(crate) fn run<R>(&self, f: impl FnOnce(&mut Run) -> R) -> R {
        f(&mut lock(&self.run))
    }
}
