//! Errors of the workflow-registry-sync crate, and their one mapping to OCI error codes,
//! HTTP statuses and gRPC statuses.

use http::StatusCode;
use workflow_storage::Error as S;

/// What can go wrong in the registry, its storage and imports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The gRPC server failed.
    #[error("grpc server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    /// A listener or server socket failed.
    #[error("{op}: {source}")]
    Serve {
        /// What was being done.
        op: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// Bad configuration.
    #[error("config: {0}")]
    Config(String),
    /// The object store failed or has no such key (a missing key answers `BLOB_UNKNOWN` / 404).
    #[error(transparent)]
    Store(#[from] workflow_storage::Error),
    /// Content did not hash to the digest it was announced with.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The announced digest.
        expected: String,
        /// What the content hashes to.
        actual: String,
    },
    /// A string that is not a valid digest.
    #[error("invalid digest {0:?}")]
    DigestInvalid(String),
    /// A repository name that breaks the distribution grammar.
    #[error("invalid repository name {0:?}")]
    NameInvalid(String),
    /// A tag that breaks the distribution grammar.
    #[error("invalid tag {0:?}")]
    TagInvalid(String),
    /// A malformed, unsupported or oversized manifest.
    #[error("invalid manifest: {0}")]
    ManifestInvalid(String),
    /// A manifest names a blob or child manifest the repository does not have.
    #[error("manifest references unknown blob {0}")]
    ManifestBlobUnknown(String),
    /// No such repository.
    #[error("repository {0:?} not found")]
    NameUnknown(String),
    /// No such manifest.
    #[error("manifest {0} not found")]
    ManifestUnknown(String),
    /// No such blob in the repository.
    #[error("blob {0} not found")]
    BlobUnknown(String),
    /// No such upload session.
    #[error("upload {0:?} not found")]
    UploadUnknown(String),
    /// A chunk out of order or a bad Content-Range.
    #[error("invalid range: {0}")]
    RangeInvalid(String),
    /// A request the registry cannot satisfy (bad parameter, content length).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// No or bad credentials.
    #[error("authentication required: {0}")]
    Unauthorized(String),
    /// Valid credentials without the right.
    #[error("access denied: {0}")]
    Denied(String),
    /// The access checker (controller) could not be asked.
    #[error("access check: {0}")]
    AccessCheck(String),
    /// An operation this registry does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// An external registry refused an import's request (a 4xx: unknown image or tag, bad
    /// credentials): the user's mistake, reported as such, not as an outage.
    #[error("{op} {target}: the source registry answered {message}")]
    UpstreamRefused {
        /// What was being fetched.
        op: &'static str,
        /// The URL or reference.
        target: String,
        /// The status and what the source said.
        message: String,
    },
    /// An external registry failed or misbehaved during an import.
    #[error("upstream {op} {target}: {message}")]
    Upstream {
        /// What was being fetched.
        op: &'static str,
        /// The URL or reference.
        target: String,
        /// Why it failed.
        message: String,
    },
    /// An image reference that cannot be parsed.
    #[error("invalid image reference {0:?}: {1}")]
    ReferenceInvalid(String, String),
}

/// Result with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The OCI distribution error code.
    pub fn oci_code(&self) -> &'static str {
        match self {
            Error::DigestMismatch { .. } | Error::DigestInvalid(_) => "DIGEST_INVALID",
            Error::NameInvalid(_) => "NAME_INVALID",
            Error::NameUnknown(_) => "NAME_UNKNOWN",
            Error::TagInvalid(_) => "TAG_INVALID",
            Error::ManifestInvalid(_) => "MANIFEST_INVALID",
            Error::ManifestBlobUnknown(_) => "MANIFEST_BLOB_UNKNOWN",
            Error::ManifestUnknown(_) => "MANIFEST_UNKNOWN",
            Error::BlobUnknown(_) | Error::Store(S::NotFound(_)) => "BLOB_UNKNOWN",
            Error::UploadUnknown(_) => "BLOB_UPLOAD_UNKNOWN",
            Error::RangeInvalid(_) => "BLOB_UPLOAD_INVALID",
            Error::Invalid(_) | Error::ReferenceInvalid(..) | Error::Store(S::Invalid(_)) => {
                "SIZE_INVALID"
            }
            Error::Unauthorized(_) => "UNAUTHORIZED",
            Error::Denied(_) => "DENIED",
            Error::Unsupported(_) => "UNSUPPORTED",
            _ => "UNKNOWN",
        }
    }

    /// The HTTP status of the error on the distribution API.
    pub fn http_status(&self) -> StatusCode {
        match self {
            Error::DigestMismatch { .. }
            | Error::DigestInvalid(_)
            | Error::NameInvalid(_)
            | Error::TagInvalid(_)
            | Error::ManifestInvalid(_)
            | Error::ManifestBlobUnknown(_)
            | Error::Invalid(_)
            | Error::Store(S::Invalid(_))
            | Error::ReferenceInvalid(..) => StatusCode::BAD_REQUEST,
            Error::ManifestUnknown(_)
            | Error::NameUnknown(_)
            | Error::BlobUnknown(_)
            | Error::Store(S::NotFound(_))
            | Error::UploadUnknown(_) => StatusCode::NOT_FOUND,
            Error::RangeInvalid(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Denied(_) => StatusCode::FORBIDDEN,
            Error::Unsupported(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::AccessCheck(_) | Error::Upstream { .. } => StatusCode::BAD_GATEWAY,
            Error::UpstreamRefused { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl workflow_proto::status::HasKind for Error {
    fn kind(&self) -> workflow_proto::status::Kind {
        use workflow_proto::status::Kind;
        match self {
            Error::Store(S::NotFound(_))
            | Error::NameUnknown(_)
            | Error::ManifestUnknown(_)
            | Error::BlobUnknown(_)
            | Error::UploadUnknown(_) => Kind::NotFound,
            Error::Unauthorized(_) => Kind::Unauthenticated,
            Error::Denied(_) => Kind::Denied,
            Error::Upstream { .. } | Error::AccessCheck(_) => Kind::Unavailable,
            Error::DigestMismatch { .. } => Kind::Corrupt,
            Error::Unsupported(_) => Kind::Unsupported,
            Error::Store(S::Invalid(_)) => Kind::Invalid,
            Error::Store(_) | Error::Grpc(_) | Error::Serve { .. } => Kind::Internal,
            _ => Kind::Invalid,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        workflow_proto::status::status(&e)
    }
}
