//! Errors of the workflow-logger crate, and their one mapping to gRPC status codes.

use std::path::PathBuf;

/// What can go wrong shipping, storing or reading logs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The gRPC server failed.
    #[error("grpc server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation, e.g. "append to segment".
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An app name that is not an RFC 1123 label.
    #[error("invalid app name {0:?}: must be 1-63 lowercase letters, digits or '-'")]
    InvalidApp(String),
    /// A malformed request.
    #[error("invalid {what}: {value}")]
    Invalid {
        /// What was wrong.
        what: &'static str,
        /// The offending value.
        value: String,
    },
    /// A search query tantivy cannot parse.
    #[error("invalid search query {query:?}: {reason}")]
    Query {
        /// The query.
        query: String,
        /// Why.
        reason: String,
    },
    /// The index failed.
    #[error("index {op}: {reason}")]
    Index {
        /// The operation.
        op: &'static str,
        /// Why.
        reason: String,
    },
    /// A segment that cannot be decoded.
    #[error("corrupt segment {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// Why.
        reason: String,
    },
    /// The aggregator refused or dropped a shipping stream.
    #[error("ship to {endpoint}: {reason}")]
    Ship {
        /// The aggregator.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The aggregator is shutting down or its storage is unusable.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl Error {
    /// Builds an [`Error::Io`].
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

impl workflow_proto::status::HasKind for Error {
    fn kind(&self) -> workflow_proto::status::Kind {
        use workflow_proto::status::Kind;
        match self {
            Error::InvalidApp(_) | Error::Invalid { .. } | Error::Query { .. } => Kind::Invalid,
            Error::Io { source, .. }
                if source.kind() == std::io::ErrorKind::StorageFull
                    || source.kind() == std::io::ErrorKind::QuotaExceeded =>
            {
                Kind::Exhausted
            }
            Error::Unavailable(_) | Error::Io { .. } | Error::Ship { .. } => Kind::Unavailable,
            Error::Grpc(_) | Error::Index { .. } | Error::Corrupt { .. } => Kind::Internal,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        workflow_proto::status::status(&e)
    }
}

/// Result with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
