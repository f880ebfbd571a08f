//! The supervisor's errors, mapped to gRPC codes once, at the edge.

/// Every way a supervisor call fails; each message names the thing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Unknown namespace, container, task or process.
    #[error("{0}")]
    NotFound(String),
    /// Duplicate ID.
    #[error("{0}")]
    AlreadyExists(String),
    /// Malformed request (bad ID, spec that is not an OCI spec, ...).
    #[error("{0}")]
    InvalidArgument(String),
    /// The system is not in a state that allows it (missing shim/runtime binary, task
    /// still running, ...).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Not supported.
    #[error("{0}")]
    Unimplemented(String),
    /// A shim cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::NotFound(_) => tonic::Status::not_found(msg),
            Error::AlreadyExists(_) => tonic::Status::already_exists(msg),
            Error::InvalidArgument(_) => tonic::Status::invalid_argument(msg),
            Error::FailedPrecondition(_) => tonic::Status::failed_precondition(msg),
            Error::Unimplemented(_) => tonic::Status::unimplemented(msg),
            Error::Unavailable(_) => tonic::Status::unavailable(msg),
            Error::Internal(_) => tonic::Status::internal(msg),
        }
    }
}

impl From<redb::Error> for Error {
    fn from(e: redb::Error) -> Self {
        Error::Internal(format!("metadata store: {e}"))
    }
}

macro_rules! redb_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Internal(format!("metadata store: {e}"))
            }
        }
    )*};
}
redb_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Check an object ID or namespace name: 1-76 of [A-Za-z0-9_.-], alphanumeric first.
pub fn check_id(kind: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 76
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{kind} {id:?}: must be 1-76 characters of [A-Za-z0-9_.-] starting with a letter or digit"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(check_id("container", "web-1.a_b").is_ok());
        for bad in ["", "-x", "a/b", "../x", &"a".repeat(77)] {
            assert!(check_id("container", bad).is_err(), "{bad}");
        }
    }
}
