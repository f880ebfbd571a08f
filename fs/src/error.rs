//! Errors of this crate: one variant per failing step, each naming the path involved
//! (as the container sees it) and keeping the kernel's errno, so that callers can tell a
//! missing file from a refused one.

use nix::errno::Errno;
use std::path::PathBuf;

/// An operation on a root failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A trusted host directory could not be opened as a root.
    #[error("opening {path}: {errno}")]
    OpenRoot {
        /// The host directory.
        path: PathBuf,
        /// Why.
        errno: Errno,
    },
    /// A path could not be resolved inside its root.
    #[error("resolving {path}: {errno}")]
    Resolve {
        /// The path, relative to the root.
        path: String,
        /// Why (ENOENT: it does not exist; ELOOP, EXDEV: it would leave the root).
        errno: Errno,
    },
    /// A file, directory or link could not be created.
    #[error("creating {path}: {errno}")]
    Create {
        /// The path, relative to the root.
        path: String,
        /// Why.
        errno: Errno,
    },
    /// Reading a file or a directory failed.
    #[error("reading {path}: {errno}")]
    Read {
        /// The path, relative to the root.
        path: String,
        /// Why.
        errno: Errno,
    },
    /// Writing a file failed.
    #[error("writing {path}: {errno}")]
    Write {
        /// The path, relative to the root.
        path: String,
        /// Why.
        errno: Errno,
    },
    /// Owner, mode, times or extended attributes could not be set.
    #[error("setting the metadata of {path}: {errno}")]
    Metadata {
        /// The path, relative to the root.
        path: String,
        /// Why.
        errno: Errno,
    },
    /// A tree nests deeper than a copy follows (a hostile image could nest without end).
    #[error("{path}: directories nested more than {limit} deep")]
    TooDeep {
        /// Where the limit was reached.
        path: String,
        /// The limit.
        limit: usize,
    },
    /// A path is not what it must be (a directory, a regular file).
    #[error("{path}: {what}")]
    WrongKind {
        /// The path, relative to the root.
        path: String,
        /// What it should have been.
        what: &'static str,
    },
    /// A file is larger than the caller allows.
    #[error("{path}: larger than {limit} bytes")]
    TooLarge {
        /// The path, relative to the root.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// Mounting the read-only view of an image's layers failed.
    #[error("mounting the image's layers: {errno}")]
    Mount {
        /// Why.
        errno: Errno,
    },
    /// A container path is not one dockerd would take.
    #[error("{0}")]
    InvalidPath(String),
}

impl Error {
    /// The kernel's errno behind this error, if one is.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Self::OpenRoot { errno, .. }
            | Self::Resolve { errno, .. }
            | Self::Create { errno, .. }
            | Self::Read { errno, .. }
            | Self::Write { errno, .. }
            | Self::Metadata { errno, .. }
            | Self::Mount { errno } => Some(*errno),
            _ => None,
        }
    }

    /// Whether the error says the path does not exist (or a component of it is not a
    /// directory), as a missing file in a container is reported.
    pub fn is_not_found(&self) -> bool {
        matches!(self.errno(), Some(Errno::ENOENT | Errno::ENOTDIR))
    }
}

/// Result of this crate's operations.
pub type Result<T> = std::result::Result<T, Error>;

/// The errno of an `io::Error` (EIO when it carries none).
pub(crate) fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}
