//! Test fixtures for the local runtime: a minimal in-test OCI registry (plain HTTP GETs of
//! manifests and blobs, as the runtime fetches them) and a tiny image whose app is the
//! static busybox of the host (`busybox-static`), plus a harness for the contract suite.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use sha2::{Digest as _, Sha256};
use workflow_runtime::local::{LocalConfig, LocalRuntime};
use workflow_runtime::testsuite::{Flavor, Harness};
use workflow_runtime::{Desired, Image, ImageKind, ProcessSpec, Runtime};

/// Where busybox-static installs its binary.
pub const BUSYBOX: &str = "/usr/bin/busybox";

/// Whether the static busybox is installed; fails in CI when it is not.
pub fn have_busybox() -> bool {
    if Path::new(BUSYBOX).exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{BUSYBOX} is missing: apt-get install busybox-static");
    }
    eprintln!("skipping: {BUSYBOX} is missing (apt-get install busybox-static)");
    false
}

/// The registry's content: blobs and manifests by digest, tags to digests.
#[derive(Default)]
pub struct Registry {
    pub blobs: Mutex<HashMap<String, Vec<u8>>>,
    pub manifests: Mutex<HashMap<String, Vec<u8>>>,
    pub tags: Mutex<HashMap<String, String>>,
}

pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

async fn serve(State(reg): State<Arc<Registry>>, uri: Uri) -> Response {
    let path = uri.path();
    let not_found = || {
        Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::empty())
            .unwrap()
    };
    let Some(rest) = path.strip_prefix("/v2/") else {
        return not_found();
    };
    if let Some((_, r)) = rest.rsplit_once("/manifests/") {
        let d = reg
            .tags
            .lock()
            .unwrap()
            .get(r)
            .cloned()
            .unwrap_or(r.to_string());
        return match reg.manifests.lock().unwrap().get(&d) {
            Some(m) => Response::builder()
                .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                .header("docker-content-digest", d)
                .body(Body::from(m.clone()))
                .unwrap(),
            None => not_found(),
        };
    }
    if let Some((_, d)) = rest.rsplit_once("/blobs/") {
        return match reg.blobs.lock().unwrap().get(d) {
            Some(b) => Response::builder().body(Body::from(b.clone())).unwrap(),
            None => not_found(),
        };
    }
    not_found()
}

/// Starts the registry on a free loopback port.
pub async fn start_registry() -> (SocketAddr, Arc<Registry>) {
    let reg = Arc::new(Registry::default());
    let app = axum::Router::new().fallback(serve).with_state(reg.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, reg)
}

/// A gzipped layer with `bin/busybox`, `www/index.html` and the extra files given.
pub fn layer(extra: &[(&str, &str)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    b.append_path_with_name(BUSYBOX, "bin/busybox").unwrap();
    let mut files = vec![("www/index.html", "hello from the image\n")];
    files.extend_from_slice(extra);
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_cksum();
        b.append_data(&mut h, path, data.as_bytes()).unwrap();
    }
    let mut gz = b.into_inner().unwrap();
    gz.flush().unwrap();
    gz.finish().unwrap()
}

/// Stores an image made of `layers` and returns its manifest digest.
pub fn push(reg: &Registry, layers: &[Vec<u8>], working_dir: Option<&str>) -> String {
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["./bin/busybox", "sleep", "100000"], "WorkingDir": working_dir.unwrap_or("")},
        "rootfs": {"type": "layers", "diff_ids": []},
    })
    .to_string()
    .into_bytes();
    let cd = digest(&config);
    let mut blobs = reg.blobs.lock().unwrap();
    blobs.insert(cd.clone(), config.clone());
    let mut descs = Vec::new();
    for l in layers {
        let d = digest(l);
        blobs.insert(d.clone(), l.clone());
        descs.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": l.len()
        }));
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": descs,
    })
    .to_string()
    .into_bytes();
    let md = digest(&manifest);
    reg.manifests.lock().unwrap().insert(md.clone(), manifest);
    md
}

/// Commands of the test app.
pub const WEB: &str = "exec ./bin/busybox httpd -f -p 127.0.0.1:$PORT -h ./www";
pub const WORKER: &str =
    "echo worker $DEIS_APP $WORKFLOW_RELEASE started; exec ./bin/busybox sleep 100000";
pub const CRASH: &str = "echo boom >&2; exit 3";

pub fn spec(command: &str) -> ProcessSpec {
    ProcessSpec {
        command: Some(command.into()),
        count: 1,
        memory: None,
        cpu_millis: None,
        readiness: None,
        liveness: None,
    }
}

/// A desired state running `image` (a full reference).
pub fn desired(app: &str, version: i64, image: &str, flavor: Flavor) -> Desired {
    let (web, worker) = match flavor {
        Flavor::Runs => (WEB, WORKER),
        Flavor::CrashLoops => (CRASH, CRASH),
    };
    Desired {
        app: app.into(),
        app_id: format!("id-{app}"),
        version,
        image: Some(Image {
            reference: image.into(),
            kind: ImageKind::Buildpack,
            credentials: None,
        }),
        processes: BTreeMap::from([
            ("web".to_string(), spec(web)),
            ("worker".to_string(), spec(worker)),
        ]),
        env: BTreeMap::from([("GREETING".to_string(), "hi".to_string())]),
        port: 5000,
        tags: BTreeMap::new(),
        source_version: Some("abc123".into()),
        grace: Duration::from_secs(2),
    }
}

/// Test settings: fast backoff and polling.
pub fn config(dir: &Path) -> LocalConfig {
    let mut cfg = LocalConfig::new(dir.join("data"), dir.join("logs"));
    cfg.backoff_base = Duration::from_millis(20);
    cfg.backoff_cap = Duration::from_millis(200);
    cfg.poll = Duration::from_millis(25);
    cfg.min_uptime = Duration::from_millis(300);
    cfg.ready_deadline = Duration::from_secs(60);
    cfg.crash_limit = 3;
    cfg.drain = Duration::from_millis(200);
    cfg
}

/// The contract suite's harness: a fresh data dir per runtime, one registry and image.
pub struct Local {
    pub image: String,
    pub dirs: Mutex<Vec<tempfile::TempDir>>,
}

impl Local {
    pub async fn new() -> Local {
        let (addr, reg) = start_registry().await;
        let md = push(&reg, &[layer(&[])], None);
        Local {
            image: format!("{addr}/test/app@{md}"),
            dirs: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait::async_trait]
impl Harness for Local {
    async fn runtime(&self) -> Arc<dyn Runtime> {
        let dir = tempfile::tempdir().unwrap();
        let rt = LocalRuntime::new(config(dir.path())).await.unwrap();
        self.dirs.lock().unwrap().push(dir);
        Arc::new(rt)
    }
    async fn desired(&self, app: &str, version: i64, flavor: Flavor) -> Desired {
        desired(app, version, &self.image, flavor)
    }
}

/// A layer with only `www/index.html`: apps that use the host's busybox by absolute path
/// (the benchmark unpacks hundreds of releases and wants them tiny).
pub fn small_layer() -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    let data = "hello\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "www/index.html", data.as_bytes())
        .unwrap();
    let mut gz = b.into_inner().unwrap();
    gz.flush().unwrap();
    gz.finish().unwrap()
}
