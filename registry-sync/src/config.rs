//! registry-sync configuration: [`Config`] and its one pure loader ([`Config::load`]: a TOML
//! file, then environment variables, then defaults, through the flat [`Settings`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
pub use workflow_common::config::ConfigError;

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
    /// The platform credential (formerly the builder key): presented to the controller, and
    /// required of every call to registry-sync's gRPC API.
    pub builder_key: String,
    /// Read-only credential for nodes (kubelet pulls): username and password.
    pub node_credential: Option<(String, String)>,
}

/// What registry-sync is told at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Listen address of the OCI distribution API (standalone `workflow registry-sync`).
    pub listen: SocketAddr,
    /// Listen address of the gRPC API (standalone `workflow registry-sync`).
    pub grpc_listen: SocketAddr,
    /// How long open connections may finish after a stop request before they are cut.
    pub shutdown_grace: Duration,
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
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 8020)),
            shutdown_grace: workflow_common::shutdown::DEFAULT_GRACE,
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

/// The configuration as a file and the environment spell it (flat keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address of the OCI distribution API (HTTP).
    pub listen: SocketAddr,
    /// Address of the gRPC API.
    pub grpc_listen: SocketAddr,
    /// Public registry address used in image references (empty: the listen address).
    pub registry_url: String,
    /// Directory of the filesystem store (used unless `s3_bucket` is set).
    pub data_dir: PathBuf,
    /// S3 bucket: selects the S3 store.
    pub s3_bucket: String,
    /// S3 endpoint URL (non-AWS servers).
    pub s3_endpoint: String,
    /// S3 region.
    pub s3_region: String,
    /// Path-style S3 addressing.
    pub s3_path_style: bool,
    /// S3 access key id.
    pub s3_access_key_id: String,
    /// S3 secret access key.
    pub s3_secret_access_key: String,
    /// Key prefix inside the bucket.
    pub s3_prefix: String,
    /// Create the bucket when missing.
    pub s3_create_bucket: bool,
    /// Controller gRPC URL for access checks (empty: open registry).
    pub controller_url: String,
    /// The platform credential (`platform_credential` in files; `builder_key`, its old name,
    /// still works): presented to the controller and required on the gRPC API.
    #[serde(alias = "platform_credential")]
    pub builder_key: String,
    /// Read-only node credential as `user:password` (empty: none).
    pub node_credential: String,
    /// External registries reachable over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Idle uploads are discarded after this long.
    #[serde(with = "humantime_serde")]
    pub upload_ttl: Duration,
    /// Time between garbage collections (`0s`: never).
    #[serde(with = "humantime_serde")]
    pub gc_interval: Duration,
    /// How long open connections may finish after a stop request before they are cut.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        let c = Config::default();
        Settings {
            listen: c.listen,
            grpc_listen: c.grpc_listen,
            registry_url: String::new(),
            data_dir: "./registry-data".into(),
            s3_bucket: String::new(),
            s3_endpoint: String::new(),
            s3_region: "us-east-1".into(),
            s3_path_style: false,
            s3_access_key_id: String::new(),
            s3_secret_access_key: String::new(),
            s3_prefix: String::new(),
            s3_create_bucket: false,
            controller_url: String::new(),
            builder_key: String::new(),
            node_credential: String::new(),
            insecure_registries: Vec::new(),
            upload_ttl: c.upload_ttl,
            gc_interval: Duration::ZERO,
            shutdown_grace: c.shutdown_grace,
        }
    }
}

/// Environment variables and the keys they set.
pub const ENV: &[(&str, &str)] = &[
    ("WORKFLOW_REGISTRY_LISTEN", "listen"),
    ("WORKFLOW_REGISTRY_GRPC_LISTEN", "grpc_listen"),
    ("WORKFLOW_REGISTRY_URL", "registry_url"),
    ("WORKFLOW_REGISTRY_DATA_DIR", "data_dir"),
    ("WORKFLOW_REGISTRY_S3_BUCKET", "s3_bucket"),
    ("WORKFLOW_REGISTRY_S3_ENDPOINT", "s3_endpoint"),
    ("WORKFLOW_REGISTRY_S3_REGION", "s3_region"),
    ("WORKFLOW_REGISTRY_S3_PATH_STYLE", "s3_path_style"),
    ("AWS_ACCESS_KEY_ID", "s3_access_key_id"),
    ("AWS_SECRET_ACCESS_KEY", "s3_secret_access_key"),
    ("WORKFLOW_REGISTRY_S3_PREFIX", "s3_prefix"),
    ("WORKFLOW_REGISTRY_S3_CREATE_BUCKET", "s3_create_bucket"),
    ("WORKFLOW_CONTROLLER_GRPC_URL", "controller_url"),
    ("WORKFLOW_BUILDER_KEY", "builder_key"),
    ("WORKFLOW_PLATFORM_CREDENTIAL", "builder_key"),
    ("WORKFLOW_REGISTRY_NODE_CREDENTIAL", "node_credential"),
    ("WORKFLOW_REGISTRY_INSECURE", "insecure_registries"),
    ("WORKFLOW_REGISTRY_UPLOAD_TTL", "upload_ttl"),
    ("WORKFLOW_REGISTRY_GC_INTERVAL", "gc_interval"),
    ("WORKFLOW_SHUTDOWN_GRACE", "shutdown_grace"),
];

impl Settings {
    /// `defaults`, overridden by the TOML `file` (path and text), overridden by [`ENV`].
    pub fn load(
        file: Option<(&Path, &str)>,
        env: &HashMap<String, String>,
        defaults: &Settings,
    ) -> Result<Settings, ConfigError> {
        workflow_common::config::load(defaults, file, env, ENV)
    }

    /// The daemon configuration these settings describe.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        };
        let non_empty = |s: String| (!s.is_empty()).then_some(s);
        let storage = match non_empty(self.s3_bucket) {
            Some(bucket) => StorageConfig::S3(S3Config {
                endpoint: non_empty(self.s3_endpoint),
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
        let node_credential = match non_empty(self.node_credential) {
            None => None,
            Some(s) => {
                let (u, p) = s
                    .split_once(':')
                    .ok_or_else(|| invalid("node_credential", "must be user:password"))?;
                if u.is_empty() || p.is_empty() {
                    return Err(invalid(
                        "node_credential",
                        "has an empty user or password (want user:password)",
                    ));
                }
                Some((u.to_string(), p.to_string()))
            }
        };
        if self.upload_ttl.is_zero() {
            return Err(invalid("upload_ttl", "must be longer than 0s"));
        }
        Ok(Config {
            listen: self.listen,
            grpc_listen: self.grpc_listen,
            shutdown_grace: self.shutdown_grace,
            registry_url: non_empty(self.registry_url).unwrap_or_else(|| self.listen.to_string()),
            storage,
            auth: AuthConfig {
                controller_url: non_empty(self.controller_url),
                builder_key: self.builder_key,
                node_credential,
            },
            insecure_registries: self.insecure_registries,
            upload_ttl: self.upload_ttl,
            gc_interval: (!self.gc_interval.is_zero()).then_some(self.gc_interval),
            ..Config::default()
        })
    }
}

impl Config {
    /// Loads [`Settings`] (file, then environment, then `defaults`) and turns them into a config.
    pub fn load(
        file: Option<(&Path, &str)>,
        env: &HashMap<String, String>,
        defaults: &Settings,
    ) -> Result<Config, ConfigError> {
        Settings::load(file, env, defaults)?.into_config()
    }

    /// The answer to `Info`.
    pub fn info(&self) -> InfoResponse {
        InfoResponse {
            version: workflow_common::VERSION.to_string(),
            registry_url: self.registry_url.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_and_file_become_config() {
        let file = "s3_bucket = \"b\"\ns3_path_style = true\ngc_interval = \"1h\"\n";
        let c = Config::load(
            Some((Path::new("r.toml"), file)),
            &env(&[
                ("WORKFLOW_REGISTRY_NODE_CREDENTIAL", "node:pw"),
                ("WORKFLOW_REGISTRY_INSECURE", "a:5000,b:5000"),
            ]),
            &Settings::default(),
        )
        .unwrap();
        assert!(matches!(c.storage, StorageConfig::S3(ref s) if s.bucket == "b" && s.path_style));
        assert_eq!(c.auth.node_credential, Some(("node".into(), "pw".into())));
        assert_eq!(c.registry_url, "127.0.0.1:5000");
        assert_eq!(c.gc_interval, Some(Duration::from_secs(3600)));
        assert_eq!(c.insecure_registries, ["a:5000", "b:5000"]);
        let c = Config::load(None, &HashMap::new(), &Settings::default()).unwrap();
        assert_eq!(
            c.storage,
            StorageConfig::Filesystem("./registry-data".into())
        );
        assert_eq!(c.gc_interval, None);
    }

    #[test]
    fn bad_values_name_the_key() {
        for (var, value, needle) in [
            (
                "WORKFLOW_REGISTRY_NODE_CREDENTIAL",
                "nopw",
                "node_credential",
            ),
            ("WORKFLOW_REGISTRY_UPLOAD_TTL", "0s", "upload_ttl"),
            ("WORKFLOW_REGISTRY_UPLOAD_TTL", "forever", "forever"),
            (
                "WORKFLOW_REGISTRY_S3_PATH_STYLE",
                "maybe",
                "WORKFLOW_REGISTRY_S3_PATH_STYLE",
            ),
        ] {
            let e = Config::load(None, &env(&[(var, value)]), &Settings::default()).unwrap_err();
            assert!(e.to_string().contains(needle), "{var}={value}: {e}");
        }
        let e = Config::load(
            Some((Path::new("r.toml"), "s3_buckett = \"x\"")),
            &HashMap::new(),
            &Settings::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("s3_buckett"), "{e}");
    }
}
