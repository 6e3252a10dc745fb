//! The one mapping between errors and gRPC status codes.
//!
//! Every daemon says what kind of failure each of its errors is ([`Kind`]); servers turn that
//! into a [`tonic::Status`] with [`status`], and clients turn a received status back into a
//! [`Kind`] with [`Kind::from_code`]. No crate matches on `tonic::Code` by hand.

/// What kind of failure an error is, independent of transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The request is malformed or names a bad value.
    Invalid,
    /// No credentials, or credentials that are not valid.
    Unauthenticated,
    /// Authenticated, but not allowed.
    Denied,
    /// The named object does not exist (or is not visible to the caller).
    NotFound,
    /// The request conflicts with existing state.
    Conflict,
    /// The request cannot be done in the current state (precondition failed).
    FailedPrecondition,
    /// A dependency or the daemon itself is not answering; retrying later may work.
    Unavailable,
    /// Out of space or over a quota.
    Exhausted,
    /// Stored or received data failed verification.
    Corrupt,
    /// The operation is not supported.
    Unsupported,
    /// The deadline passed before the operation finished.
    Timeout,
    /// The caller gave up.
    Cancelled,
    /// A bug or an unexpected condition.
    Internal,
}

impl Kind {
    /// The gRPC status code of this kind.
    pub const fn code(self) -> tonic::Code {
        use tonic::Code;
        match self {
            Kind::Invalid => Code::InvalidArgument,
            Kind::Unauthenticated => Code::Unauthenticated,
            Kind::Denied => Code::PermissionDenied,
            Kind::NotFound => Code::NotFound,
            Kind::Conflict => Code::AlreadyExists,
            Kind::FailedPrecondition => Code::FailedPrecondition,
            Kind::Unavailable => Code::Unavailable,
            Kind::Exhausted => Code::ResourceExhausted,
            Kind::Corrupt => Code::DataLoss,
            Kind::Unsupported => Code::Unimplemented,
            Kind::Timeout => Code::DeadlineExceeded,
            Kind::Cancelled => Code::Cancelled,
            Kind::Internal => Code::Internal,
        }
    }

    /// The kind a received gRPC status code stands for.
    pub const fn from_code(code: tonic::Code) -> Kind {
        use tonic::Code;
        match code {
            Code::InvalidArgument | Code::OutOfRange => Kind::Invalid,
            Code::Unauthenticated => Kind::Unauthenticated,
            Code::PermissionDenied => Kind::Denied,
            Code::NotFound => Kind::NotFound,
            Code::AlreadyExists | Code::Aborted => Kind::Conflict,
            Code::FailedPrecondition => Kind::FailedPrecondition,
            Code::Unavailable => Kind::Unavailable,
            Code::ResourceExhausted => Kind::Exhausted,
            Code::DataLoss => Kind::Corrupt,
            Code::Unimplemented => Kind::Unsupported,
            Code::DeadlineExceeded => Kind::Timeout,
            Code::Cancelled => Kind::Cancelled,
            Code::Ok | Code::Unknown | Code::Internal => Kind::Internal,
        }
    }

    /// The HTTP status a REST or registry endpoint answers this kind with.
    pub const fn http_status(self) -> u16 {
        match self {
            Kind::Invalid => 400,
            Kind::Unauthenticated => 401,
            Kind::Denied => 403,
            Kind::NotFound => 404,
            Kind::Conflict => 409,
            Kind::FailedPrecondition => 412,
            Kind::Unavailable => 503,
            Kind::Exhausted => 507,
            Kind::Corrupt => 400,
            Kind::Unsupported => 405,
            Kind::Timeout => 504,
            Kind::Cancelled => 499,
            Kind::Internal => 500,
        }
    }

    /// Whether an idempotent call that failed with this kind may be retried.
    pub const fn is_transient(self) -> bool {
        matches!(self, Kind::Unavailable | Kind::Timeout)
    }
}

/// An error that knows its [`Kind`].
pub trait HasKind: std::fmt::Display {
    /// What kind of failure this is.
    fn kind(&self) -> Kind;
}

/// The status a server answers `error` with: its kind's code and its message.
pub fn status<E: HasKind + ?Sized>(error: &E) -> tonic::Status {
    tonic::Status::new(error.kind().code(), error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Kind; 13] = [
        Kind::Invalid,
        Kind::Unauthenticated,
        Kind::Denied,
        Kind::NotFound,
        Kind::Conflict,
        Kind::FailedPrecondition,
        Kind::Unavailable,
        Kind::Exhausted,
        Kind::Corrupt,
        Kind::Unsupported,
        Kind::Timeout,
        Kind::Cancelled,
        Kind::Internal,
    ];

    #[test]
    fn every_kind_survives_the_wire() {
        for k in ALL {
            assert_eq!(Kind::from_code(k.code()), k, "{k:?}");
        }
    }

    #[test]
    fn only_unavailable_and_timeout_are_retried() {
        let transient: Vec<_> = ALL.into_iter().filter(|k| k.is_transient()).collect();
        assert_eq!(transient, [Kind::Unavailable, Kind::Timeout]);
    }
}
