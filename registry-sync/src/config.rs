//! registry-sync configuration.

use workflow_proto::registry::v1::InfoResponse;

/// What registry-sync is told at start.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Public URL of the OCI registry, empty while it is not enabled.
    pub registry_url: String,
}

impl Config {
    /// The answer to `Info`.
    pub fn info(&self) -> InfoResponse {
        InfoResponse {
            version: workflow_common::VERSION.to_string(),
            registry_url: self.registry_url.clone(),
        }
    }
}
