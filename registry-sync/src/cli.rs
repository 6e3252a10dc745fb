//! Flags of `workflow registry-sync` (clap derive), turned into a [`Config`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{AuthConfig, Config, S3Config, StorageConfig};
use crate::error::{Error, Result};

/// `workflow registry-sync` flags; every flag also reads an environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Address of the OCI distribution API (HTTP).
    #[arg(
        long,
        env = "WORKFLOW_REGISTRY_LISTEN",
        default_value = "127.0.0.1:5000"
    )]
    pub listen: SocketAddr,
    /// Address of the gRPC API.
    #[arg(
        long,
        env = "WORKFLOW_REGISTRY_GRPC_LISTEN",
        default_value = "127.0.0.1:8020"
    )]
    pub grpc_listen: SocketAddr,
    /// Public registry address used in image references (default: the listen address).
    #[arg(long, env = "WORKFLOW_REGISTRY_URL")]
    pub registry_url: Option<String>,
    /// Directory of the filesystem store (used unless --s3-bucket is given).
    #[arg(
        long,
        env = "WORKFLOW_REGISTRY_DATA_DIR",
        default_value = "./registry-data"
    )]
    pub data_dir: PathBuf,
    /// S3 bucket: selects the S3 store.
    #[arg(long, env = "WORKFLOW_REGISTRY_S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// S3 endpoint URL (non-AWS servers).
    #[arg(long, env = "WORKFLOW_REGISTRY_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 region.
    #[arg(long, env = "WORKFLOW_REGISTRY_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    /// Use path-style S3 addressing.
    #[arg(long, env = "WORKFLOW_REGISTRY_S3_PATH_STYLE", default_value_t = false)]
    pub s3_path_style: bool,
    /// S3 access key id.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", default_value = "")]
    pub s3_access_key_id: String,
    /// S3 secret access key.
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub s3_secret_access_key: String,
    /// Key prefix inside the bucket.
    #[arg(long, env = "WORKFLOW_REGISTRY_S3_PREFIX", default_value = "")]
    pub s3_prefix: String,
    /// Create the bucket when missing.
    #[arg(
        long,
        env = "WORKFLOW_REGISTRY_S3_CREATE_BUCKET",
        default_value_t = false
    )]
    pub s3_create_bucket: bool,
    /// Controller gRPC URL for access checks (unset: open registry).
    #[arg(long, env = "WORKFLOW_CONTROLLER_GRPC_URL")]
    pub controller_url: Option<String>,
    /// Builder key presented to the controller.
    #[arg(
        long,
        env = "WORKFLOW_BUILDER_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub builder_key: String,
    /// Read-only node credential as `user:password`.
    #[arg(
        long,
        env = "WORKFLOW_REGISTRY_NODE_CREDENTIAL",
        hide_env_values = true
    )]
    pub node_credential: Option<String>,
    /// External registries reachable over plain HTTP (repeatable or comma-separated).
    #[arg(long, env = "WORKFLOW_REGISTRY_INSECURE", value_delimiter = ',')]
    pub insecure_registry: Vec<String>,
    /// Seconds before idle uploads are discarded.
    #[arg(long, env = "WORKFLOW_REGISTRY_UPLOAD_TTL", default_value_t = 3600)]
    pub upload_ttl_secs: u64,
    /// Seconds between garbage collections (0 = never).
    #[arg(long, env = "WORKFLOW_REGISTRY_GC_INTERVAL", default_value_t = 0)]
    pub gc_interval_secs: u64,
}

impl Args {
    /// The daemon configuration these flags describe.
    pub fn into_config(self) -> Result<Config> {
        let storage = match self.s3_bucket {
            Some(bucket) => StorageConfig::S3(S3Config {
                endpoint: self.s3_endpoint,
                bucket,
                region: self.s3_region,
                path_style: self.s3_path_style,
                access_key_id: self.s3_access_key_id,
                secret_access_key: self.s3_secret_access_key,
                prefix: self.s3_prefix,
                create_bucket: self.s3_create_bucket,
            }),
            None => StorageConfig::Filesystem(self.data_dir),
        };
        let node_credential = match self.node_credential {
            None => None,
            Some(s) => {
                let (u, p) = s
                    .split_once(':')
                    .ok_or_else(|| Error::Config("node credential must be user:password".into()))?;
                if u.is_empty() || p.is_empty() {
                    return Err(Error::Config(
                        "node credential has an empty user or password".into(),
                    ));
                }
                Some((u.to_string(), p.to_string()))
            }
        };
        Ok(Config {
            registry_url: self.registry_url.unwrap_or_else(|| self.listen.to_string()),
            storage,
            auth: AuthConfig {
                controller_url: self.controller_url,
                builder_key: self.builder_key,
                node_credential,
            },
            insecure_registries: self.insecure_registry,
            upload_ttl: Duration::from_secs(self.upload_ttl_secs.max(1)),
            gc_interval: (self.gc_interval_secs > 0)
                .then(|| Duration::from_secs(self.gc_interval_secs)),
            ..Config::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn flags_become_config() {
        let c = Cmd::try_parse_from([
            "x",
            "--s3-bucket",
            "b",
            "--s3-path-style",
            "--node-credential",
            "node:pw",
        ])
        .unwrap()
        .args
        .into_config()
        .unwrap();
        assert!(matches!(c.storage, StorageConfig::S3(ref s) if s.bucket == "b" && s.path_style));
        assert_eq!(c.auth.node_credential, Some(("node".into(), "pw".into())));
        assert_eq!(c.registry_url, "127.0.0.1:5000");
        let bad = Cmd::try_parse_from(["x", "--node-credential", "nopw"])
            .unwrap()
            .args
            .into_config();
        assert!(bad.is_err());
    }
}
