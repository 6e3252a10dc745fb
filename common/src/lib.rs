//! Plumbing shared by every Workflow daemon; no domain logic lives here.
//!
//! - [`telemetry`]: tracing subscriber set-up (text or JSON)
//! - [`shutdown`]: SIGTERM/SIGINT into a cancelled token; drain, then cut after a grace period
//! - [`config`]: the one pure config loader (file, then environment, then defaults)
//! - [`http`]: serving an axum router with the same drain-then-cut shutdown
//! - [`grpc`]: a tonic server with health checking and reflection already attached
//! - [`metrics`]: the Prometheus registry and its `/metrics` endpoint
//! - [`endpoints`]: the `endpoints.json` file `workflow up` writes

pub mod config;
pub mod endpoints;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;

/// The platform version reported in headers and `Info` calls.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
