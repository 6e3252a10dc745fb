//! The clients' error: which daemon, which call, what kind of failure, and its message.

use workflow_proto::status::{HasKind, Kind};

/// A call to another daemon that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The endpoint URL is not usable.
    #[error("{service} at {url:?}: {message}")]
    Endpoint {
        /// The daemon (`logger`, `registry-sync`, `controller`).
        service: &'static str,
        /// The URL given.
        url: String,
        /// Why it is refused.
        message: String,
    },
    /// The daemon answered with an error status, or could not be reached.
    #[error("{service} {op}: {message}")]
    Status {
        /// The daemon.
        service: &'static str,
        /// The call (`tail`, `import`, ...).
        op: &'static str,
        /// What kind of failure the status code says.
        kind: Kind,
        /// The status message.
        message: String,
    },
    /// The daemon answered something the protocol does not allow.
    #[error("{service} {op}: {message}")]
    Protocol {
        /// The daemon.
        service: &'static str,
        /// The call.
        op: &'static str,
        /// What was wrong.
        message: String,
    },
}

impl ClientError {
    /// The error for a status received from `service` on `op`.
    pub fn from_status(service: &'static str, op: &'static str, status: &tonic::Status) -> Self {
        let message = if status.message().is_empty() {
            format!("{:?}", status.code())
        } else {
            status.message().to_string()
        };
        ClientError::Status {
            service,
            op,
            kind: Kind::from_code(status.code()),
            message,
        }
    }

    /// The message the daemon gave, without the service and call prefix.
    pub fn message(&self) -> &str {
        match self {
            ClientError::Endpoint { message, .. }
            | ClientError::Status { message, .. }
            | ClientError::Protocol { message, .. } => message,
        }
    }
}

impl HasKind for ClientError {
    fn kind(&self) -> Kind {
        match self {
            ClientError::Endpoint { .. } => Kind::Invalid,
            ClientError::Status { kind, .. } => *kind,
            ClientError::Protocol { .. } => Kind::Internal,
        }
    }
}

/// Result with the clients' error.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
