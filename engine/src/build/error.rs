//! Errors of a build, one variant per failing step, each in Docker's words where
//! dockerd has words for it. Errors before the first byte of output become an HTTP
//! status (see [`BuildError::status`]); later ones end the stream as `errorDetail`.

use super::dockerfile;

/// A build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A query parameter is malformed.
    #[error("{0}")]
    Options(String),
    /// The context tar is malformed or unsafe.
    #[error("{0}")]
    Context(String),
    /// The Dockerfile is missing or empty.
    #[error("{0}")]
    NoDockerfile(String),
    /// The Dockerfile does not parse (`failed to parse Dockerfile: ...`).
    #[error("failed to parse {name}: {source}")]
    Parse {
        /// The Dockerfile's name.
        name: String,
        /// Why.
        source: dockerfile::ParseError,
    },
    /// An instruction is not valid (`dockerfile parse error line 3: ...`).
    #[error("{0}")]
    Instruction(dockerfile::Error),
    /// `--target` names no stage.
    #[error("failed to reach build target {0} in Dockerfile")]
    Target(String),
    /// An instruction cannot be carried out (a bad argument found at dispatch).
    #[error("{0}")]
    Step(String),
    /// A RUN command exited with a non-zero code.
    #[error("{message}")]
    Run {
        /// The exit code (the CLI exits with it).
        code: i64,
        /// `The command '...' returned a non-zero code: N`.
        message: String,
    },
    /// A base image or `--from` image is missing and could not be pulled.
    #[error("{0}")]
    Image(String),
    /// COPY/ADD failed (`COPY failed: ...`).
    #[error("{0}")]
    Copy(String),
    /// The client went away or the daemon is stopping.
    #[error("Build cancelled")]
    Cancelled,
    /// Something on the daemon's side failed.
    #[error("{0}")]
    Internal(String),
}

impl BuildError {
    /// The HTTP status for an error reported before any output.
    pub fn status(&self) -> u16 {
        match self {
            Self::Options(_)
            | Self::Context(_)
            | Self::NoDockerfile(_)
            | Self::Parse { .. }
            | Self::Instruction(_)
            | Self::Target(_)
            | Self::Step(_)
            | Self::Copy(_) => 400,
            Self::Image(_) => 404,
            Self::Run { .. } | Self::Cancelled | Self::Internal(_) => 500,
        }
    }

    /// The exit code an error carries (a RUN's), for `errorDetail.code`.
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::Run { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Result of build steps.
pub type Result<T> = std::result::Result<T, BuildError>;
