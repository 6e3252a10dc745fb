//! The controller's error type and its one mapping to HTTP and gRPC status codes.

use crate::store::StoreError;

/// Everything a controller operation can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of the request is invalid; `message` is Deis's wording, `value` what was sent.
    #[error("invalid {field} {value:?}: {message}")]
    Invalid {
        /// The request field, as named in the API (`id`, `username`, `values`, ...).
        field: &'static str,
        /// What was sent (truncated for display).
        value: String,
        /// Why it is refused.
        message: String,
    },
    /// A request that is well-formed but cannot be done now (no build to scale, ...).
    #[error("{0}")]
    BadRequest(String),
    /// No credentials, or credentials that are not valid.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// The named object does not exist (or is not visible to the caller).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with existing state (duplicate name, "changed nothing", ...).
    #[error("{0}")]
    Conflict(String),
    /// The request is understood but refers to something absent inside it (unset of a missing key).
    #[error("{0}")]
    Unprocessable(String),
    /// The runtime could not roll out a release; the release is marked failed.
    #[error("deploy failed: {0}")]
    Deploy(String),
    /// A daemon the controller depends on did not answer.
    #[error("{0}")]
    Unavailable(String),
    /// The metadata store failed.
    #[error("metadata store: {0}")]
    Store(#[from] StoreError),
    /// A bug or an unexpected condition.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result with the controller's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An invalid-field error; `value` is cut to 200 characters for display.
    pub fn invalid(field: &'static str, value: &str, message: impl Into<String>) -> Self {
        let mut v: String = value.chars().take(200).collect();
        if v.len() < value.len() {
            v.push('…');
        }
        Error::Invalid {
            field,
            value: v,
            message: message.into(),
        }
    }

    /// The HTTP status the REST API answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Invalid { .. } | Error::BadRequest(_) | Error::Deploy(_) => 400,
            Error::Unauthorized(_) => 401,
            Error::Forbidden(_) => 403,
            Error::NotFound(_) => 404,
            Error::Conflict(_) => 409,
            Error::Unprocessable(_) => 422,
            Error::Unavailable(_) => 503,
            Error::Store(StoreError::Unique(_)) => 409,
            Error::Store(_) | Error::Internal(_) => 500,
        }
    }

    /// The gRPC status code the gRPC API answers with.
    pub fn grpc_code(&self) -> tonic::Code {
        workflow_proto::status::HasKind::kind(self).code()
    }
}

impl workflow_proto::status::HasKind for Error {
    fn kind(&self) -> workflow_proto::status::Kind {
        use workflow_proto::status::Kind;
        match self {
            Error::Invalid { .. }
            | Error::BadRequest(_)
            | Error::Deploy(_)
            | Error::Unprocessable(_) => Kind::Invalid,
            Error::Unauthorized(_) => Kind::Unauthenticated,
            Error::Forbidden(_) => Kind::Denied,
            Error::NotFound(_) => Kind::NotFound,
            Error::Conflict(_) | Error::Store(StoreError::Unique(_)) => Kind::Conflict,
            Error::Unavailable(_) => Kind::Unavailable,
            Error::Store(_) | Error::Internal(_) => Kind::Internal,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        workflow_proto::status::status(&e)
    }
}
