//! Errors of the workflow-builder crate.

/// What can go wrong running this daemon or a build.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The gRPC server failed.
    #[error("grpc server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    /// The platform credential is missing or malformed.
    #[error("builder config platform_credential (WORKFLOW_PLATFORM_CREDENTIAL): {0}")]
    Credential(#[from] workflow_common::grpc::CredentialError),
    /// The git HTTP server failed.
    #[error("git http server: {0}")]
    Http(std::io::Error),
    /// The git side failed (repositories, hook socket).
    #[error("git: {0}")]
    Git(#[from] crate::git::GitError),
    /// A file operation failed.
    #[error("{op} {path:?}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Object storage (build cache, source archives) failed.
    #[error("object storage: {0}")]
    Storage(#[from] workflow_storage::Error),
    /// The pushed source is refused (escaping symlink, oversized file, special file).
    #[error("refused: {0}")]
    Hostile(String),
    /// A request value that is not valid (app name, commit, config key).
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        /// What the value is.
        what: &'static str,
        /// The value.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// No buildpack, a failing buildpack step, a bad Procfile or `bin/release` output.
    #[error("{0}")]
    Buildpack(String),
    /// A build step ran longer than allowed.
    #[error("{step} timed out after {secs}s (its processes were killed)")]
    Timeout {
        /// The step.
        step: String,
        /// The limit in seconds.
        secs: u64,
    },
    /// A build step wrote more output than allowed.
    #[error("{step} wrote more than {limit} bytes of output (its processes were killed)")]
    OutputLimit {
        /// The step.
        step: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// Pushing to or reading from the platform registry failed.
    #[error("registry {op} {target}: {message}")]
    Registry {
        /// The operation.
        op: &'static str,
        /// The repository or reference.
        target: String,
        /// Why.
        message: String,
    },
    /// The Docker or Podman engine failed or could not be reached.
    #[error("docker engine: {0}")]
    Docker(String),
    /// The configuration cannot be used.
    #[error("config: {0}")]
    Config(String),
}

/// Result with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an IO error with the operation and the path.
    pub fn io(op: &'static str, path: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// An invalid value.
    pub fn invalid(what: &'static str, value: &str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

impl workflow_proto::status::HasKind for Error {
    fn kind(&self) -> workflow_proto::status::Kind {
        use workflow_proto::status::Kind;
        match self {
            Error::Invalid { .. } | Error::Hostile(_) | Error::Buildpack(_) => Kind::Invalid,
            Error::Timeout { .. } => Kind::Timeout,
            Error::OutputLimit { .. } => Kind::Exhausted,
            Error::Registry { .. } | Error::Docker(_) => Kind::Unavailable,
            Error::Config(_) | Error::Credential(_) => Kind::FailedPrecondition,
            Error::Grpc(_)
            | Error::Http(_)
            | Error::Git(_)
            | Error::Io { .. }
            | Error::Storage(_) => Kind::Internal,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        workflow_proto::status::status(&e)
    }
}
