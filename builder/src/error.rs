//! Errors of the workflow-builder crate.

/// What can go wrong running this daemon.
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
    /// The configuration cannot be used.
    #[error("config: {0}")]
    Config(String),
}

/// Result with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
