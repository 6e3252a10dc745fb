//! Logger configuration.

use workflow_proto::logger::v1::InfoResponse;

/// What the logger is told at start.
#[derive(Debug, Clone, Default)]
pub struct Config {}

impl Config {
    /// The answer to `Info`.
    pub fn info(&self) -> InfoResponse {
        InfoResponse {
            version: workflow_common::VERSION.to_string(),
        }
    }
}
