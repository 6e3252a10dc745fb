//! `deis pull` imports through the gRPC client: from the Debian docker-registry peer
//! (anonymous, Basic auth, single image and index) and from an in-test upstream that uses the
//! bearer-token flow, fails transiently, and lies about a digest.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{Backend, TestImage, run_async, sha, start, write_oci_layout};
use workflow_clients::registry::{ImportEvent, ImportRequest, ImportResult, RegistryClient};
use workflow_registry_sync::auth::Authenticator;

/// Imports through registry-sync's gRPC API at `url`, as the controller does.
async fn import(
    url: &str,
    request: ImportRequest,
    on_event: impl FnMut(ImportEvent) + Send,
) -> workflow_clients::Result<ImportResult> {
    RegistryClient::new(url, &common::credential())?
        .import(request, on_event)
        .await
}

fn request(app: &str, image: &str) -> ImportRequest {
    ImportRequest {
        app: app.into(),
        image: image.into(),
        ..Default::default()
    }
}

async fn peer_suite(kind: Backend) {
    let Some(peer) = common::peer("WORKFLOW_TEST_PEER_REGISTRY") else {
        return;
    };
    let Some(auth_peer) = common::peer("WORKFLOW_TEST_PEER_REGISTRY_AUTH") else {
        return;
    };
    let user =
        std::env::var("WORKFLOW_TEST_PEER_REGISTRY_USER").unwrap_or_else(|_| "puller".into());
    let pass =
        std::env::var("WORKFLOW_TEST_PEER_REGISTRY_PASSWORD").unwrap_or_else(|_| "pullpass".into());
    let dir = tempfile::tempdir().unwrap();
    let Some(store) = common::store(kind, dir.path()).await else {
        return;
    };
    let id = uuid::Uuid::new_v4().simple().to_string();

    // Seed the peers: one image, one two-platform index, one image behind Basic auth.
    let img = TestImage::small(3, &id, "amd64");
    let arm = TestImage::small(2, &format!("{id}-arm"), "arm64");
    let single = dir.path().join("single");
    let multi = dir.path().join("multi");
    write_oci_layout(&single, &[(&img, "amd64")], "t", false);
    let index_digest = write_oci_layout(&multi, &[(&img, "amd64"), (&arm, "arm64")], "t", true);
    let src = |p: &std::path::Path| format!("oci:{}:t", p.display());
    run_async(
        "skopeo",
        &[
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &src(&single),
            &format!("docker://{peer}/team/api-{id}:1.4"),
        ],
    )
    .await;
    run_async(
        "skopeo",
        &[
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &src(&multi),
            &format!("docker://{peer}/team/multi-{id}:2"),
        ],
    )
    .await;
    run_async(
        "skopeo",
        &[
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            &format!("{user}:{pass}"),
            &src(&single),
            &format!("docker://{auth_peer}/private/api-{id}:1"),
        ],
    )
    .await;

    let reg = start(store, Authenticator::new(None, None)).await;

    // Anonymous single image.
    let mut events = Vec::new();
    let r = import(
        &reg.grpc_url,
        request("api", &format!("{peer}/team/api-{id}:1.4")),
        |e| events.push(e),
    )
    .await
    .unwrap();
    assert_eq!(r.digest, img.digest());
    assert_eq!(r.source_digest, img.digest());
    assert_eq!(r.image, format!("{}/api@{}", reg.host(), img.digest()));
    assert_eq!(r.cmd, vec!["/hello", "serve"]);
    assert_eq!(r.port, 8080);
    assert_eq!(r.tag, "1.4");
    let copied = events
        .iter()
        .filter(|e| matches!(e, ImportEvent::Layer(l) if l.status == "done"))
        .count();
    assert_eq!(copied, 3, "{events:?}");
    // It is servable: skopeo reads it back from the platform registry.
    let raw = run_async(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}", r.image),
        ],
    )
    .await;
    assert_eq!(raw.as_bytes(), &img.manifest[..]);

    // Again, into another app: every blob already present is skipped.
    let mut events = Vec::new();
    import(
        &reg.grpc_url,
        request("api2", &format!("{peer}/team/api-{id}:1.4")),
        |e| events.push(e),
    )
    .await
    .unwrap();
    let skipped = events
        .iter()
        .filter(|e| matches!(e, ImportEvent::Layer(l) if l.status == "exists"))
        .count();
    assert_eq!(skipped, 3, "{events:?}");

    // An index: linux/amd64 is picked.
    let r = import(
        &reg.grpc_url,
        request("multi", &format!("{peer}/team/multi-{id}:2")),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(r.digest, img.digest());
    assert_eq!(r.source_digest, index_digest);
    // By digest.
    let r = import(
        &reg.grpc_url,
        request("multi", &format!("{peer}/team/multi-{id}@{index_digest}")),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(
        (r.digest.as_str(), r.tag.as_str()),
        (img.digest().as_str(), "latest")
    );

    // Basic auth: refused without credentials, works with them.
    let e = import(
        &reg.grpc_url,
        request("private", &format!("{auth_peer}/private/api-{id}:1")),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("unauthorized"), "{e}");
    let mut req = request("private", &format!("{auth_peer}/private/api-{id}:1"));
    req.username = user.clone();
    req.password = pass.clone();
    let r = import(&reg.grpc_url, req, |_| {}).await.unwrap();
    assert_eq!(r.digest, img.digest());

    // Bad input comes back as a clear error.
    for (app, image) in [
        ("Bad", "x/y:1"),
        ("ok", "UPPER/x"),
        ("ok", &format!("{peer}/team/missing:1") as &str),
    ] {
        let e = import(&reg.grpc_url, request(app, image), |_| {})
            .await
            .unwrap_err();
        assert!(!e.to_string().is_empty());
    }
    reg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_from_docker_registry_fs_store() {
    peer_suite(Backend::Fs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_from_docker_registry_s3_store() {
    peer_suite(Backend::S3).await;
}

/// An upstream registry with the distribution token flow, transient failures and a liar.
#[derive(Clone)]
struct Upstream {
    blobs: Arc<HashMap<String, Vec<u8>>>,
    manifests: Arc<HashMap<String, Vec<u8>>>,
    addr: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
}

async fn upstream_handler(
    axum::extract::State(u): axum::extract::State<Upstream>,
    req: axum::http::Request<axum::body::Body>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = req.uri().path().to_string();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if path == "/token" {
        // "dXNlcjpwdw==" is user:pw.
        if auth != "Basic dXNlcjpwdw==" {
            return (axum::http::StatusCode::UNAUTHORIZED, "bad creds").into_response();
        }
        let q = req.uri().query().unwrap_or("");
        assert!(
            q.contains("service=fake") && q.contains("scope=repository"),
            "{q}"
        );
        return axum::Json(serde_json::json!({"token": "T0K"})).into_response();
    }
    if auth != "Bearer T0K" {
        let realm = format!("http://{}/token", u.addr.lock().unwrap());
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            [(
                "www-authenticate",
                format!("Bearer realm=\"{realm}\",service=\"fake\",scope=\"repository:x:pull\""),
            )],
        )
            .into_response();
    }
    // Every third request fails transiently.
    if u.hits.fetch_add(1, Ordering::SeqCst) % 3 == 1 {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "try again").into_response();
    }
    if let Some(m) = path
        .split("/manifests/")
        .nth(1)
        .and_then(|r| u.manifests.get(r))
    {
        return (
            [("content-type", "application/vnd.oci.image.manifest.v1+json")],
            m.clone(),
        )
            .into_response();
    }
    if let Some(b) = path.split("/blobs/").nth(1).and_then(|d| u.blobs.get(d)) {
        return b.clone().into_response();
    }
    axum::http::StatusCode::NOT_FOUND.into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_uses_bearer_tokens_retries_and_catches_lies() {
    let good = TestImage::small(2, "good", "amd64");
    let liar = TestImage::small(1, "liar", "amd64");
    let mut blobs = HashMap::new();
    for l in good.layers.iter().chain([&good.config, &liar.config]) {
        blobs.insert(sha(l), l.clone());
    }
    // The liar's layer is served with other content.
    blobs.insert(
        sha(&liar.layers[0]),
        b"not the layer you asked for".to_vec(),
    );
    let mut manifests = HashMap::new();
    manifests.insert("v1".to_string(), good.manifest.clone());
    manifests.insert("lie".to_string(), liar.manifest.clone());
    let up = Upstream {
        blobs: Arc::new(blobs),
        manifests: Arc::new(manifests),
        addr: Arc::new(Mutex::new(String::new())),
        hits: Arc::new(AtomicUsize::new(0)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    *up.addr.lock().unwrap() = addr.clone();
    let app = axum::Router::new()
        .fallback(upstream_handler)
        .with_state(up);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let store = Arc::new(workflow_registry_sync::store::memory::MemoryStore::new());
    let reg = start(store.clone(), Authenticator::new(None, None)).await;
    let mut req = request("good", &format!("{addr}/team/good:v1"));
    req.username = "user".into();
    req.password = "pw".into();
    let r = import(&reg.grpc_url, req.clone(), |_| {}).await.unwrap();
    assert_eq!(r.digest, good.digest());

    // Wrong password: the token endpoint refuses.
    req.password = "nope".into();
    let e = import(&reg.grpc_url, req, |_| {}).await.unwrap_err();
    assert!(e.to_string().contains("credentials"), "{e}");

    // The liar is caught and nothing of the lie is stored.
    let mut req = request("liar", &format!("{addr}/team/liar:lie"));
    req.username = "user".into();
    req.password = "pw".into();
    let e = import(&reg.grpc_url, req, |_| {}).await.unwrap_err();
    assert!(e.to_string().contains("verify blob"), "{e}");
    use workflow_registry_sync::store::ObjectStore;
    let keys: Vec<String> = store
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert!(
        !keys
            .iter()
            .any(|k| k.contains(&sha(b"not the layer you asked for")[7..])),
        "{keys:?}"
    );
    assert!(
        !keys
            .iter()
            .any(|k| k.contains("repositories/liar/_manifests")),
        "{keys:?}"
    );
    assert!(!keys.iter().any(|k| k.starts_with("_uploads/")), "{keys:?}");
    reg.stop().await;
}
