//! registry-sync configuration.

use std::path::PathBuf;
use std::time::Duration;

use workflow_proto::registry::v1::InfoResponse;

pub use crate::store::s3::S3Config;

/// Where the registry keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// A directory (the embedded default).
    Filesystem(PathBuf),
    /// An S3 bucket.
    S3(S3Config),
    /// In memory, lost at exit (tests).
    Memory,
}

/// Who may use the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// Controller gRPC URL answering `Hooks.CheckAccess`; `None` (and no node credential)
    /// leaves the registry open, for single-user embedded setups.
    pub controller_url: Option<String>,
    /// Builder key sent as `x-deis-builder-auth` to the controller.
    pub builder_key: String,
    /// Read-only credential for nodes (kubelet pulls): username and password.
    pub node_credential: Option<(String, String)>,
}

/// What registry-sync is told at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Public address of the OCI registry (`host:port` or URL), used in image references.
    pub registry_url: String,
    /// Object storage.
    pub storage: StorageConfig,
    /// Authentication.
    pub auth: AuthConfig,
    /// External registries reachable over plain HTTP for imports (loopback always is).
    pub insecure_registries: Vec<String>,
    /// Uploads idle longer than this are discarded.
    pub upload_ttl: Duration,
    /// Period of the background garbage collection; `None` disables it.
    pub gc_interval: Option<Duration>,
    /// Blobs younger than this survive garbage collection (their manifest may be on its way).
    pub gc_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            registry_url: "127.0.0.1:5000".into(),
            storage: StorageConfig::Memory,
            auth: AuthConfig::default(),
            insecure_registries: Vec::new(),
            upload_ttl: Duration::from_secs(3600),
            gc_interval: None,
            gc_grace: Duration::from_secs(3600),
        }
    }
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
