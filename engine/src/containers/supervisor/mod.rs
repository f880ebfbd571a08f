//! berth-supervisor as berthd sees it: a trait over the operations the container core
//! needs (tasks, processes, their state and their events), with the gRPC client of a
//! real berth-supervisor (`grpc`) and, for unit tests that need no root, an in-memory
//! fake (`fake`). Types here are the engine's, not the wire's: gRPC codes and protobuf
//! messages stay in `grpc`.

pub mod grpc;

#[cfg(test)]
pub mod fake;

use std::path::PathBuf;
use std::pin::Pin;
use std::time::SystemTime;

/// The supervisor namespace berthd keeps its containers in.
pub const NAMESPACE: &str = "berth";

/// What the supervisor answered, by kind.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// No such task, process or container record.
    #[error("{0}")]
    NotFound(String),
    /// A request it refused as malformed (a spec the runtime rejects).
    #[error("{0}")]
    Invalid(String),
    /// Not in the state the request needs (paused, already exists, still running).
    #[error("{0}")]
    Conflict(String),
    /// It cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    /// Events were dropped (a slow subscriber): what berthd knows must be re-synced.
    #[error("events lost: {0}")]
    Lost(String),
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

/// Result of supervisor calls.
pub type Result<T> = std::result::Result<T, Error>;

/// A process's standard streams: FIFO paths the shim opens.
#[derive(Debug, Clone, Default)]
pub struct Stdio {
    /// stdin, when the process has one.
    pub stdin: Option<PathBuf>,
    /// stdout (the terminal's output with a terminal).
    pub stdout: PathBuf,
    /// stderr (unused with a terminal).
    pub stderr: PathBuf,
    /// Whether the process gets a pseudo-terminal.
    pub terminal: bool,
}

/// One mount of a container's root filesystem (the overlay of its layers).
#[derive(Debug, Clone)]
pub struct RootfsMount {
    /// Filesystem type (`overlay`).
    pub kind: String,
    /// Source (`overlay`).
    pub source: String,
    /// mount(8) options (`lowerdir=...`).
    pub options: Vec<String>,
}

/// The json-file log the shim writes for a task's init process (dockerd's format and
/// rotation), so that output is kept while berthd is down; berthd only reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The log file.
    pub path: PathBuf,
    /// Rotate at this many bytes; 0: never.
    pub max_size: u64,
    /// Files kept, the log included (0 or 1: one, truncated instead of rotated).
    pub max_file: u32,
}

/// A task to create: the container's record in the supervisor and its task, with the
/// init process created but not started.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// The container's ID.
    pub id: String,
    /// Its OCI spec.
    pub spec: oci_spec::runtime::Spec,
    /// Its root filesystem.
    pub rootfs: Vec<RootfsMount>,
    /// The OCI runtime binary (empty: berth-runtime, found by the supervisor).
    pub runtime_binary: String,
    /// The init process's streams.
    pub stdio: Stdio,
    /// The log the shim writes (None: the `none` log driver).
    pub log: Option<LogConfig>,
}

/// Where a process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Frozen (or being frozen).
    Paused,
    /// Exited.
    Stopped,
    /// Not known (its shim cannot be reached).
    Unknown,
}

/// A process's state.
#[derive(Debug, Clone)]
pub struct ProcessState {
    /// Host PID (0 before it exists).
    pub pid: u32,
    /// Its status.
    pub status: Status,
    /// Exit status once stopped (128+signal if killed by one).
    pub exit_status: u32,
    /// When it exited, once stopped.
    pub exited_at: Option<SystemTime>,
    /// Once stopped: the kernel's OOM killer killed a process of the container first
    /// (as the shim recorded it: seen even when the TaskOOM event was missed).
    pub oom_killed: bool,
    /// Once stopped: why, when not by itself (its shim died); empty otherwise.
    pub exit_reason: String,
}

/// A process exited.
#[derive(Debug, Clone, PartialEq)]
pub struct Exit {
    /// The container's ID.
    pub container_id: String,
    /// The exec ID, or None for the container's init process.
    pub exec_id: Option<String>,
    /// The host PID it had.
    pub pid: u32,
    /// Its exit status (128+signal if killed by one).
    pub exit_status: u32,
    /// When it exited.
    pub exited_at: Option<SystemTime>,
    /// Why, when not by itself (its shim died); empty otherwise.
    pub reason: String,
}

/// What the supervisor tells berthd as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A process exited.
    Exit(Exit),
    /// The kernel's OOM killer killed a process of the container.
    Oom {
        /// The container's ID.
        container_id: String,
    },
    /// The task was frozen.
    Paused {
        /// The container's ID.
        container_id: String,
    },
    /// The task was thawed.
    Resumed {
        /// The container's ID.
        container_id: String,
    },
}

/// The supervisor's events, in order. An `Err(Error::Lost)` item means events were
/// dropped (re-sync); any other error, or the end, means the connection is gone.
pub type EventStream = Pin<Box<dyn futures_util::Stream<Item = Result<Event>> + Send>>;

/// The supervisor's operations, as the container core uses them.
#[async_trait::async_trait]
pub trait Supervisor: Send + Sync {
    /// Creates the container's record and task (its init process created, not started).
    /// On failure nothing is left behind.
    async fn create(&self, task: NewTask) -> Result<()>;
    /// Starts the init process (empty `exec_id`) or an exec'd one; its host PID.
    async fn start(&self, id: &str, exec_id: &str) -> Result<u32>;
    /// Deletes a stopped task and the container's record; fine if there is neither.
    async fn delete(&self, id: &str) -> Result<()>;
    /// Adds a process to a running task (started with `start`).
    async fn exec(
        &self,
        id: &str,
        exec_id: &str,
        process: &oci_spec::runtime::Process,
        stdio: &Stdio,
    ) -> Result<()>;
    /// Forgets a stopped exec'd process.
    async fn delete_process(&self, id: &str, exec_id: &str) -> Result<()>;
    /// Signals a process, or with `all` every process of the container.
    async fn kill(&self, id: &str, exec_id: &str, signal: u32, all: bool) -> Result<()>;
    /// Freezes the task.
    async fn pause(&self, id: &str) -> Result<()>;
    /// Thaws the task.
    async fn resume(&self, id: &str) -> Result<()>;
    /// Resizes a process's terminal.
    async fn resize(&self, id: &str, exec_id: &str, width: u32, height: u32) -> Result<()>;
    /// Closes a process's stdin.
    async fn close_stdin(&self, id: &str, exec_id: &str) -> Result<()>;
    /// The host PIDs of the task's processes.
    async fn pids(&self, id: &str) -> Result<Vec<u32>>;
    /// Changes the running task's resource limits.
    async fn update(&self, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()>;
    /// A process's state.
    async fn state(&self, id: &str, exec_id: &str) -> Result<ProcessState>;
    /// Follows the events of berthd's namespace from now on.
    async fn subscribe(&self) -> Result<EventStream>;
    /// After the event stream broke: starts the supervisor again if berthd owns it and
    /// it died (its successor finds the shims again).
    async fn reconnect(&self);
    /// Stops the supervisor berthd started, if any (its shims and containers live on).
    async fn shutdown(&self);
}
