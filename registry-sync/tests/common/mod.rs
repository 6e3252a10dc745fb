//! Shared test helpers: peers from the environment, an in-process registry-sync, image builders.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;
use workflow_registry_sync::auth::Authenticator;
use workflow_registry_sync::store::ObjectStore;
use workflow_registry_sync::store::s3::{S3Config, S3Store};
use workflow_registry_sync::{Config, StorageConfig};

/// The value of a peer's env var; `None` (after a skip notice) when unset outside CI, and a
/// failure when unset in CI.
pub fn peer(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("{var} is not set: start the peer (scripts/peers/*.sh) in CI");
            }
            eprintln!("skipping: {var} is not set (run scripts/peers/*.sh and eval its output)");
            None
        }
    }
}

/// Whether an external tool is on PATH; fails in CI when it is not.
pub fn tool(name: &str) -> bool {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("{name} is not installed");
        }
        eprintln!("skipping: {name} is not installed");
    }
    found
}

/// An S3 config for the moto peer, isolated under a fresh key prefix.
pub fn s3_config() -> Option<S3Config> {
    let endpoint = peer("WORKFLOW_TEST_S3_ENDPOINT")?;
    Some(S3Config {
        endpoint: Some(endpoint),
        bucket: std::env::var("WORKFLOW_TEST_S3_BUCKET").unwrap_or_else(|_| "workflow-test".into()),
        region: "us-east-1".into(),
        path_style: true,
        access_key_id: std::env::var("WORKFLOW_TEST_S3_ACCESS_KEY")
            .unwrap_or_else(|_| "test".into()),
        secret_access_key: std::env::var("WORKFLOW_TEST_S3_SECRET_KEY")
            .unwrap_or_else(|_| "test".into()),
        prefix: format!("t{}", uuid::Uuid::new_v4().simple()),
        create_bucket: true,
    })
}

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Fs,
    S3,
    Memory,
}

/// A store of the given kind (`None` when its peer is missing outside CI).
pub async fn store(kind: Backend, dir: &Path) -> Option<Arc<dyn ObjectStore>> {
    Some(match kind {
        Backend::Fs => Arc::new(
            workflow_registry_sync::store::fs::FsStore::open(dir.join("store"))
                .await
                .unwrap(),
        ),
        Backend::S3 => Arc::new(S3Store::connect(&s3_config()?).await.unwrap()),
        Backend::Memory => Arc::new(workflow_registry_sync::store::memory::MemoryStore::new()),
    })
}

/// A registry-sync running in-process.
pub struct Running {
    pub http: SocketAddr,
    pub grpc_url: String,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<workflow_registry_sync::Result<()>>,
    pub store: Arc<dyn ObjectStore>,
}

impl Running {
    pub fn base(&self) -> String {
        format!("http://{}", self.http)
    }
    pub fn host(&self) -> String {
        self.http.to_string()
    }
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// The platform credential test registries require on their gRPC API.
pub const CREDENTIAL: &str = "test-platform-credential";

/// [`CREDENTIAL`] as the clients take it.
#[allow(dead_code)]
pub fn credential() -> workflow_clients::PlatformCredential {
    workflow_clients::PlatformCredential::new(CREDENTIAL).unwrap()
}

/// Starts registry-sync on ephemeral ports over `store`.
pub async fn start(store: Arc<dyn ObjectStore>, auth: Authenticator) -> Running {
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_addr = http.local_addr().unwrap();
    let grpc_addr = grpc.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let config = Config {
        registry_url: http_addr.to_string(),
        storage: StorageConfig::Memory,
        auth: workflow_registry_sync::AuthConfig {
            builder_key: CREDENTIAL.into(),
            ..Default::default()
        },
        ..Config::default()
    };
    let task = tokio::spawn(workflow_registry_sync::run_with(
        config,
        store.clone(),
        auth,
        workflow_registry_sync::Listeners { http, grpc },
        workflow_registry_sync::Shutdown::new(shutdown.clone(), std::time::Duration::from_secs(5)),
    ));
    Running {
        http: http_addr,
        grpc_url: format!("http://{grpc_addr}"),
        shutdown,
        task,
        store,
    }
}

pub fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A tar archive holding one file `name` with `content` (a valid image layer).
pub fn tar_layer(name: &str, content: &[u8], mode: u32) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let put_octal = |h: &mut [u8; 512], off: usize, len: usize, v: u64| {
        let s = format!("{:0width$o}\0", v, width = len - 1);
        h[off..off + len].copy_from_slice(s.as_bytes());
    };
    put_octal(&mut h, 100, 8, mode as u64);
    put_octal(&mut h, 108, 8, 0);
    put_octal(&mut h, 116, 8, 0);
    put_octal(&mut h, 124, 12, content.len() as u64);
    put_octal(&mut h, 136, 12, 1_700_000_000);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// An image made in memory: config + layers + manifest (OCI).
pub struct TestImage {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub manifest: Vec<u8>,
}

impl TestImage {
    /// An image of `layers`, whose config says Cmd and an exposed port, for `arch`.
    pub fn new(layers: Vec<Vec<u8>>, arch: &str) -> Self {
        let diff_ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/hello", "serve"], "ExposedPorts": {"8080/tcp": {}}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
            "layers": layers.iter().map(|l| serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(l), "size": l.len()
            })).collect::<Vec<_>>(),
        }))
        .unwrap();
        TestImage {
            config,
            layers,
            manifest,
        }
    }

    /// A small image with `n` distinct layers.
    pub fn small(n: usize, seed: &str, arch: &str) -> Self {
        let layers = (0..n)
            .map(|i| {
                tar_layer(
                    &format!("f{i}"),
                    format!("{seed} layer {i}\n").repeat(100 + i).as_bytes(),
                    0o644,
                )
            })
            .collect();
        Self::new(layers, arch)
    }

    pub fn digest(&self) -> String {
        sha(&self.manifest)
    }
}

fn write_blob(dir: &Path, data: &[u8]) {
    let d = sha(data);
    let p = dir.join("blobs/sha256").join(&d["sha256:".len()..]);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

/// Writes images into an OCI layout at `dir`; with more than one image (or `as_index`) the
/// layout's entry is an index of them (platforms from their configs), tagged `tag`.
pub fn write_oci_layout(
    dir: &Path,
    images: &[(&TestImage, &str)],
    tag: &str,
    as_index: bool,
) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    for (img, _) in images {
        write_blob(dir, &img.config);
        for l in &img.layers {
            write_blob(dir, l);
        }
        write_blob(dir, &img.manifest);
    }
    let entry = if as_index || images.len() > 1 {
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": images.iter().map(|(img, arch)| serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": img.digest(), "size": img.manifest.len(),
                "platform": {"os": "linux", "architecture": arch},
            })).collect::<Vec<_>>(),
        }))
        .unwrap();
        write_blob(dir, &index);
        serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(&index), "size": index.len(), "annotations": {"org.opencontainers.image.ref.name": tag}})
    } else {
        let img = images[0].0;
        serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": img.digest(), "size": img.manifest.len(), "annotations": {"org.opencontainers.image.ref.name": tag}})
    };
    let d = entry["digest"].as_str().unwrap().to_string();
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [entry]})).unwrap(),
    )
    .unwrap();
    d
}

/// Runs a command, failing the test with its output when it fails.
pub fn run(cmd: &mut std::process::Command) -> String {
    // Go programs must not pick up the machine's AWS CA bundle override.
    cmd.env_remove("AWS_CA_BUNDLE");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `tokio::process` flavour of [`run`] (the registry runs on this test's runtime).
pub async fn run_async(program: &str, args: &[&str]) -> String {
    run_async_env(program, args, &[]).await
}

/// [`run_async`] with extra environment variables.
pub async fn run_async_env(program: &str, args: &[&str], envs: &[(&str, &str)]) -> String {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).env_remove("AWS_CA_BUNDLE");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .await
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
