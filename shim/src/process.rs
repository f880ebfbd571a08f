//! One process of the task (init or exec'd) and its explicit state machine:
//! created → running → stopped → deleted, with running ⇄ paused for init.

use std::fs::File;
use std::time::SystemTime;

use crate::stdio::StdinCloser;

/// Where a process is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Exec registered, runtime not run yet (exec'd processes only).
    Registered,
    /// Created by the runtime, program not started.
    Created,
    /// Running.
    Running,
    /// Frozen (init only).
    Paused,
    /// Exited; exit status known.
    Stopped,
}

impl State {
    /// Name for error messages.
    pub fn name(self) -> &'static str {
        match self {
            State::Registered => "registered",
            State::Created => "created",
            State::Running => "running",
            State::Paused => "paused",
            State::Stopped => "stopped",
        }
    }
}

/// One process.
pub struct Process {
    /// Empty for init.
    pub exec_id: String,
    /// Host PID (0 before created).
    pub pid: u32,
    /// State.
    pub state: State,
    /// Paths as given.
    pub stdin: String,
    /// Paths as given.
    pub stdout: String,
    /// Paths as given.
    pub stderr: String,
    /// Has a pty.
    pub terminal: bool,
    /// Exit status once stopped.
    pub exit_status: u32,
    /// Exit time once stopped.
    pub exited_at: Option<SystemTime>,
    /// The pty master, for resize.
    pub console: Option<File>,
    /// Ends stdin on CloseIO.
    pub stdin_closer: Option<StdinCloser>,
    /// The exec'd process's OCI process spec (JSON), until started.
    pub spec: Vec<u8>,
}

impl Process {
    /// A process with its stdio paths.
    pub fn new(exec_id: &str, stdin: &str, stdout: &str, stderr: &str, terminal: bool) -> Self {
        Self {
            exec_id: exec_id.to_string(),
            pid: 0,
            state: State::Registered,
            stdin: stdin.to_string(),
            stdout: stdout.to_string(),
            stderr: stderr.to_string(),
            terminal,
            exit_status: 0,
            exited_at: None,
            console: None,
            stdin_closer: None,
            spec: Vec::new(),
        }
    }

    /// Check that `op` is allowed in the current state.
    pub fn require(&self, op: &str, allowed: &[State]) -> Result<(), String> {
        if allowed.contains(&self.state) {
            Ok(())
        } else {
            let who = if self.exec_id.is_empty() {
                "task".to_string()
            } else {
                format!("exec {}", self.exec_id)
            };
            Err(format!("cannot {op} {who}: it is {}", self.state.name()))
        }
    }
}
