//! Builder configuration.

use workflow_proto::builder::v1::InfoResponse;

/// What the builder is told at start.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Public git SSH URL prefix, empty while the SSH server is not enabled.
    pub git_ssh: String,
    /// Public git smart-HTTP URL prefix, empty while not enabled.
    pub git_http: String,
}

impl Config {
    /// The answer to `Info`.
    pub fn info(&self) -> InfoResponse {
        InfoResponse {
            version: workflow_common::VERSION.to_string(),
            git_ssh: self.git_ssh.clone(),
            git_http: self.git_http.clone(),
        }
    }
}
