//! What can go wrong in the CLI, each as one line a user can act on.

/// A CLI error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// berthd could not be reached (refused, no socket, timed out), in docker's words.
    #[error("Cannot connect to the Docker daemon at {host}. Is the docker daemon running?")]
    Connect {
        /// The address tried (`unix:///path`, `tcp://host:port`).
        host: String,
        /// Why.
        source: std::io::Error,
    },
    /// The socket is there but not for this user.
    #[error("permission denied while trying to connect to the Docker daemon socket at {host}")]
    Permission {
        /// The address tried.
        host: String,
    },
    /// The address or the TLS files cannot be used (docker's "Failed to initialize").
    #[error("Failed to initialize: {0}")]
    Init(String),
    /// The connection failed past the socket (TLS, a broken exchange), as docker words
    /// it: `error during connect: Get "https://host:port/v1.43/...": reason`.
    #[error("{context}: {method} \"{url}\": {reason}")]
    Transport {
        /// docker's lead-in ("error during connect", or its hint about client
        /// certificates).
        context: &'static str,
        /// The request's method, as Go writes it ("Get").
        method: String,
        /// The request's URL.
        url: String,
        /// What broke.
        reason: String,
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
    /// A flag's value docker refuses while parsing flags (`invalid argument "x" for
    /// "-m, --memory" flag: ...`): printed with the command's usage, exit 125.
    #[error("{0}")]
    Flag(String),
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

    /// docker's "unable to resolve docker endpoint" failure.
    pub fn endpoint(reason: impl std::fmt::Display) -> Self {
        Self::Init(format!("unable to resolve docker endpoint: {reason}"))
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

/// An OS error as Go prints it ("no such file or directory"), as docker's messages read.
pub fn os_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let desc = nix::errno::Errno::from_raw(n).desc();
            let mut chars = desc.chars();
            match chars.next() {
                Some(c) => c.to_lowercase().chain(chars).collect(),
                None => e.to_string(),
            }
        }
        None => e.to_string(),
    }
}
