//! Errors of the workflow-storage crate.

/// What can go wrong reading or writing object storage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad store configuration.
    #[error("config: {0}")]
    Config(String),
    /// An object key does not exist.
    #[error("object {0:?} not found")]
    NotFound(String),
    /// Filesystem store IO failed.
    #[error("{op} {key:?}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The object key or path.
        key: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An S3 call failed.
    #[error("s3 {op} {key:?}: {message}")]
    S3 {
        /// The S3 operation.
        op: &'static str,
        /// The object key.
        key: String,
        /// The SDK's error, rendered.
        message: String,
    },
    /// An object key that could escape the store.
    #[error("invalid object key {0:?}")]
    KeyInvalid(String),
    /// A request the store refuses (e.g. an object over a read limit).
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// Result with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an IO error with the operation and key; a missing file is [`Error::NotFound`].
    pub fn io(op: &'static str, key: impl Into<String>, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            return Error::NotFound(key.into());
        }
        Error::Io {
            op,
            key: key.into(),
            source,
        }
    }
}
