//! What can go wrong in the CLI, each as one line a user can act on.

use std::path::PathBuf;

/// A CLI error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// berthd's socket could not be reached.
    #[error("cannot connect to berthd at {}: {source}; is berthd running?", path.display())]
    Connect {
        /// The socket tried.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// berthd answered with an error status; `message` is its `{"message": ...}`.
    #[error("Error response from daemon: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// berthd's message.
        message: String,
    },
    /// The command line asked for something impossible.
    #[error("{0}")]
    Usage(String),
    /// A local file or terminal operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The HTTP exchange with berthd broke.
    #[error("talking to berthd: {0}")]
    Http(#[from] hyper::Error),
    /// An operation failed with an exit code of its own (a build's failed RUN step:
    /// the CLI exits with the step's code, as docker does).
    #[error("{message}")]
    Exit {
        /// What failed, in berthd's words.
        message: String,
        /// The exit code.
        code: i32,
    },
    /// berthd sent something the CLI cannot read.
    #[error("unexpected response from berthd: {0}")]
    BadResponse(String),
}

impl Error {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// The HTTP status berthd answered with, if this is an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The CLI's result type.
pub type Result<T> = std::result::Result<T, Error>;
