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
    /// The tar stream could not be read: not a tar, broken, or cut short.
    #[error("reading the archive: {source}")]
    Tar {
        /// What the reader said.
        source: std::io::Error,
    },
    /// An archive entry that the unpacking policy refuses.
    #[error("archive entry {entry:?}: {why}")]
    Refused {
        /// The entry's name as written in the archive.
        entry: String,
        /// Why.
        why: Refusal,
    },
    /// An entry would replace a directory with a non-directory, which the caller forbade
    /// (dockerd's `noOverwriteDirNonDir`, in its words).
    #[error("cannot overwrite directory {path:?} with non-directory {dest:?}")]
    OverwriteDir {
        /// The directory that exists, as the caller shows it.
        path: String,
        /// The extraction directory, as the caller shows it.
        dest: String,
    },
    /// An entry would replace a non-directory with a directory, which the caller forbade.
    #[error("cannot overwrite non-directory {path:?} with directory {dest:?}")]
    OverwriteNonDir {
        /// The non-directory that exists, as the caller shows it.
        path: String,
        /// The extraction directory, as the caller shows it.
        dest: String,
    },
}

/// Why an archive entry is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its name has a `..` component where none may be.
    DotDot,
    /// Its name climbs above the extraction directory.
    ClimbsOut,
    /// Its name is absolute where it may not be.
    Absolute,
    /// One of its parents is a symlink or not a directory, and nothing is written
    /// through one.
    ParentNotDir,
    /// A hard link whose target is outside the extraction directory.
    HardlinkOutside,
    /// A hard link whose target is no file unpacked there.
    HardlinkMissing,
    /// A symlink or hard link without a target.
    NoTarget,
    /// A whiteout that names no plain file.
    BadWhiteout,
    /// It is not under the top directory the caller expects.
    NotUnderTop,
    /// It names the extraction directory itself but is not a directory.
    ReplacesDestination,
    /// A sparse file longer than [`crate::untar::MAX_SPARSE`].
    SparseTooLarge,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::DotDot => "contains ..",
            Self::ClimbsOut => "is outside of the extraction directory",
            Self::Absolute => "is absolute",
            Self::ParentNotDir => "its parent is a symlink or not a directory",
            Self::HardlinkOutside => "hardlink target is outside the extraction directory",
            Self::HardlinkMissing => "hardlink target is not in the extraction directory",
            Self::NoTarget => "link without a target",
            Self::BadWhiteout => "whiteout of an invalid name",
            Self::NotUnderTop => "not under the copied path",
            Self::ReplacesDestination => "not a directory but would replace the destination",
            Self::SparseTooLarge => "sparse file longer than Berth unpacks",
        })
    }
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
