//! Errors of the workflow-router crate.

use std::net::SocketAddr;

/// What can go wrong starting or running the router.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] workflow_common::config::ConfigError),
    /// A listener failed.
    #[error("router listener {addr}: {source}")]
    Listen {
        /// The listener's address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The request log directory cannot be used.
    #[error("router log dir {path}: {source}")]
    LogDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TLS could not be set up.
    #[error("router tls: {0}")]
    Tls(String),
    /// A worker thread (or its event loop) could not be started.
    #[error("starting router worker thread: {0}")]
    Worker(std::io::Error),
}

/// Why a request could not be proxied (mapped to a status code in `proxy`).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Connecting to a backend failed; the request was not sent.
    #[error("connecting to backend {addr}: {source}")]
    Connect {
        /// The backend.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Connecting took longer than `connect_timeout`.
    #[error("connecting to backend {addr}: timed out")]
    ConnectTimeout {
        /// The backend.
        addr: SocketAddr,
    },
    /// The HTTP exchange with the backend failed.
    #[error("backend {addr}: {message}")]
    Http {
        /// The backend.
        addr: SocketAddr,
        /// Why (hyper's error, which cannot be cloned, in words).
        message: String,
    },
    /// The backend sent no response head within `upstream_timeout`.
    #[error("backend {addr}: no response within the upstream timeout")]
    Timeout {
        /// The backend.
        addr: SocketAddr,
    },
}

/// Result with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
