//! Typed gRPC clients of the Workflow daemons. Daemons meet only through these and the
//! generated code in `workflow-proto`: no daemon crate depends on another.
//!
//! - [`error`]: [`ClientError`], built from a received status through the one mapping in
//!   `workflow_proto::status`
//! - `channel`: lazily connected channels with connect timeouts and keep-alives, per-call
//!   deadlines, and retries of idempotent calls on transient failures
//! - [`logger`]: the aggregator's tail, follow and search, and the printed line format
//! - [`registry`]: registry-sync's image import (`deis pull`) and its progress events
//! - [`controller`]: the controller's hooks for the other daemons (registry access checks)
//! - [`builder`]: the builder's cleanup of a destroyed app

pub mod builder;
mod channel;
pub mod controller;
pub mod error;
pub mod logger;
pub mod registry;

pub use channel::{AuthChannel, CallOptions, Connection};
pub use error::{ClientError, Result};
pub use workflow_common::grpc::PlatformCredential;
pub use workflow_proto::status::Kind;
