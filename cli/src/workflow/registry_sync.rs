//! `workflow registry-sync`: flags over the daemon's loaded settings.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use workflow_registry_sync::{Config, Settings};

/// `workflow registry-sync` flags. Each overrides the config file and the environment
/// (`WORKFLOW_REGISTRY_*`, `AWS_ACCESS_KEY_ID`, ...; see the README).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// A TOML config file (keys as the flags, with `_`: `s3_bucket = "b"`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address of the OCI distribution API (HTTP) [default: 127.0.0.1:5000].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Address of the gRPC API [default: 127.0.0.1:8020].
    #[arg(long)]
    pub grpc_listen: Option<SocketAddr>,
    /// Public registry address used in image references [default: the listen address].
    #[arg(long)]
    pub registry_url: Option<String>,
    /// Directory of the filesystem store, used unless --s3-bucket is given [default: ./registry-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// S3 bucket: selects the S3 store.
    #[arg(long)]
    pub s3_bucket: Option<String>,
    /// S3 endpoint URL (non-AWS servers).
    #[arg(long)]
    pub s3_endpoint: Option<String>,
    /// S3 region [default: us-east-1].
    #[arg(long)]
    pub s3_region: Option<String>,
    /// Use path-style S3 addressing.
    #[arg(long)]
    pub s3_path_style: bool,
    /// Key prefix inside the bucket.
    #[arg(long)]
    pub s3_prefix: Option<String>,
    /// Create the bucket when missing.
    #[arg(long)]
    pub s3_create_bucket: bool,
    /// Controller gRPC URL for access checks (unset: open registry).
    #[arg(long)]
    pub controller_url: Option<String>,
    /// External registries reachable over plain HTTP (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub insecure_registry: Vec<String>,
    /// Idle uploads are discarded after this long (`90m`, `1h`) [default: 1h].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub upload_ttl: Option<std::time::Duration>,
    /// Time between garbage collections (`0s` = never) [default: never].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub gc_interval: Option<std::time::Duration>,
}

impl Args {
    /// The daemon's config: defaults, then the file, then the environment, then these flags.
    pub fn config(&self, env: &std::collections::HashMap<String, String>) -> Result<Config> {
        let file = workflow_common::config::read_file(self.config.as_deref())?;
        let mut s = Settings::load(
            file.as_ref().map(|(p, t)| (p.as_path(), t.as_str())),
            env,
            &Settings::default(),
        )?;
        let a = self.clone();
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = a.$field { s.$field = v; } )* };
        }
        set!(
            listen,
            grpc_listen,
            registry_url,
            data_dir,
            s3_bucket,
            s3_endpoint,
            s3_region,
            s3_prefix,
            controller_url,
            upload_ttl,
            gc_interval
        );
        s.s3_path_style |= a.s3_path_style;
        s.s3_create_bucket |= a.s3_create_bucket;
        if !a.insecure_registry.is_empty() {
            s.insecure_registries = a.insecure_registry;
        }
        s.into_config().context("registry-sync configuration")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use clap::Parser;
    use workflow_registry_sync::StorageConfig;

    use super::*;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn flags_beat_the_environment() {
        let env = HashMap::from([
            (
                "WORKFLOW_REGISTRY_S3_BUCKET".to_string(),
                "env-bucket".to_string(),
            ),
            (
                "WORKFLOW_REGISTRY_NODE_CREDENTIAL".to_string(),
                "node:pw".to_string(),
            ),
        ]);
        let c = Cmd::try_parse_from([
            "x",
            "--s3-bucket",
            "b",
            "--s3-path-style",
            "--gc-interval",
            "2h",
        ])
        .unwrap()
        .args
        .config(&env)
        .unwrap();
        assert!(matches!(c.storage, StorageConfig::S3(ref s) if s.bucket == "b" && s.path_style));
        assert_eq!(c.auth.node_credential, Some(("node".into(), "pw".into())));
        assert_eq!(c.gc_interval, Some(std::time::Duration::from_secs(7200)));
        assert_eq!(c.registry_url, "127.0.0.1:5000");
    }
}
