//! The runtime's error type: one variant per failing step, each naming what failed.

use std::path::PathBuf;

/// Everything that can go wrong in berth-runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid container id {0:?}: use 1-1024 letters, digits, '_', '+', '-' or '.'")]
    InvalidId(String),
    #[error("container {0:?} already exists")]
    AlreadyExists(String),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container {id:?} is {status}: {action} needs it to be {wanted}")]
    WrongStatus {
        id: String,
        status: String,
        action: &'static str,
        wanted: String,
    },
    /// runc's exact words for signalling a stopped container: wrappers match them.
    #[error("container not running")]
    NotRunning,
    #[error("cannot read {path}: {source}")]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot parse {path}: {source}")]
    ParseConfig {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A name in a capability set that is no capability (serde's own message for it
    /// would only give a line and column).
    #[error("{path}: unknown capability {name:?} in {set}")]
    UnknownCapability {
        path: PathBuf,
        set: String,
        name: String,
    },
    #[error("invalid config.json: {0}")]
    InvalidConfig(String),
    #[error("rootfs {0} does not exist or is not a directory")]
    MissingRootfs(PathBuf),
    #[error("unknown signal {0:?}")]
    BadSignal(String),
    #[error("{hook} hook {path} failed: {reason}")]
    Hook {
        hook: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("cgroup {path}: {reason}")]
    Cgroup { path: PathBuf, reason: String },
    #[error("{0}")]
    Init(String),
    #[error("{context}: {source}")]
    Sys { context: String, source: nix::Error },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// Shorthand used throughout the runtime.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// Attach a human context to low-level errors at the point they happen.
pub trait Context<T> {
    /// Wrap the error with a description of what was being done.
    fn context(self, context: impl Into<String>) -> Result<T>;
    /// Like `context`, but only builds the message on failure.
    fn with_context<F: FnOnce() -> String>(self, f: F) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|source| RuntimeError::Sys {
            context: context.into(),
            source,
        })
    }
    fn with_context<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|source| RuntimeError::Sys {
            context: f(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|source| RuntimeError::Io {
            context: context.into(),
            source,
        })
    }
    fn with_context<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|source| RuntimeError::Io {
            context: f(),
            source,
        })
    }
}
