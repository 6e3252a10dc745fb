//! Trust boundaries end to end (issue 10), with the controller and registry-sync on real ports:
//! a destroyed app's images are gone for whoever re-creates its name, and early rejects of the
//! controller and the registry never leave a half-read connection open for reuse.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const CREDENTIAL: &str = "e2e-platform-credential";

struct Platform {
    controller: String,
    registry: std::net::SocketAddr,
    http: reqwest::Client,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

async fn platform() -> Platform {
    let dir = tempfile::tempdir().unwrap();
    let bind = || TcpListener::bind("127.0.0.1:0");
    let (ctl_http, ctl_grpc) = (bind().await.unwrap(), bind().await.unwrap());
    let (reg_http, reg_grpc) = (bind().await.unwrap(), bind().await.unwrap());
    let controller = format!("http://{}", ctl_http.local_addr().unwrap());
    let registry = reg_http.local_addr().unwrap();
    let mut cfg = workflow_controller::Config::for_tests(
        &dir.path().join("c.db").to_string_lossy(),
        CREDENTIAL,
    );
    cfg.registry = Some(format!("http://{}", reg_grpc.local_addr().unwrap()));
    let ctl_grpc_url = format!("http://{}", ctl_grpc.local_addr().unwrap());
    let ctl = workflow_controller::open(&cfg, Arc::new(workflow_controller::runtime::LedgerOnly))
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let grace = Duration::from_secs(2);
    tokio::spawn(workflow_controller::serve(
        ctl,
        workflow_controller::Listeners {
            http: ctl_http,
            grpc: ctl_grpc,
        },
        workflow_controller::Shutdown::new(stop.clone(), grace),
    ));
    let reg_cfg = workflow_registry_sync::Config {
        registry_url: registry.to_string(),
        storage: workflow_registry_sync::StorageConfig::Memory,
        auth: workflow_registry_sync::AuthConfig {
            controller_url: Some(ctl_grpc_url),
            builder_key: CREDENTIAL.into(),
            node_credential: None,
        },
        ..Default::default()
    };
    tokio::spawn(workflow_registry_sync::run(
        reg_cfg,
        workflow_registry_sync::Listeners {
            http: reg_http,
            grpc: reg_grpc,
        },
        workflow_registry_sync::Shutdown::new(stop.clone(), grace),
    ));
    Platform {
        controller,
        registry,
        http: reqwest::Client::new(),
        stop,
        _dir: dir,
    }
}

impl Platform {
    async fn call(&self, method: reqwest::Method, path: &str, token: &str, body: Value) -> u16 {
        let r = self
            .http
            .request(method, format!("{}{path}", self.controller))
            .header("authorization", format!("token {token}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    }

    async fn register(&self, name: &str) -> String {
        let url = |p: &str| format!("{}{p}", self.controller);
        let r = self
            .http
            .post(url("/v2/auth/register/"))
            .json(&json!({"username": name, "password": "pw", "email": format!("{name}@example.com")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let r: Value = self
            .http
            .post(url("/v2/auth/login/"))
            .json(&json!({"username": name, "password": "pw"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["token"].as_str().unwrap().to_string()
    }

    fn reg(&self, path: &str) -> String {
        format!("http://{}{path}", self.registry)
    }
}

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// Guards issue 10: alice pushes an image to app `hello` and destroys it; bob creates `hello`
/// and sees no image and no tag of hers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_app_name_sees_nothing_of_the_destroyed_app() {
    let p = platform().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    assert_eq!(
        p.call(
            reqwest::Method::POST,
            "/v2/apps/",
            &alice,
            json!({"id": "hello"})
        )
        .await,
        201
    );
    // Push a config blob and a manifest tagged v1, as alice.
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let r = p
        .http
        .post(p.reg(&format!("/v2/hello/blobs/uploads/?digest={}", sha(config))))
        .basic_auth("alice", Some(&alice))
        .body(config.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": config.len()},
        "layers": []
    }))
    .unwrap();
    let r = p
        .http
        .put(p.reg("/v2/hello/manifests/v1"))
        .basic_auth("alice", Some(&alice))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());

    assert_eq!(
        p.call(
            reqwest::Method::DELETE,
            "/v2/apps/hello/",
            &alice,
            json!({})
        )
        .await,
        204
    );
    assert_eq!(
        p.call(
            reqwest::Method::POST,
            "/v2/apps/",
            &bob,
            json!({"id": "hello"})
        )
        .await,
        201
    );
    let r = p
        .http
        .get(p.reg("/v2/hello/manifests/v1"))
        .basic_auth("bob", Some(&bob))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "alice's tag is gone");
    let r = p
        .http
        .get(p.reg(&format!("/v2/hello/manifests/{}", sha(&manifest))))
        .basic_auth("bob", Some(&bob))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "alice's manifest is gone");
    let r = p
        .http
        .get(p.reg("/v2/hello/tags/list"))
        .basic_auth("bob", Some(&bob))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert!(
        status == 404 || !body.contains("v1"),
        "no tags of alice: {status} {body}"
    );
    p.stop.cancel();
}

/// Reads one answer's head (and its Content-Length body).
async fn read_head(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await.unwrap();
                assert!(n > 0, "EOF inside the body");
                buf.extend_from_slice(&chunk[..n]);
            }
            return head;
        }
        let n = s.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "EOF before an answer: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Writes headers, then the body 10 ms later (as Go's net/http does), reads the early answer,
/// and reuses the connection unless the answer said `Connection: close`.
async fn early_reject_then_reuse(addr: std::net::SocketAddr, request: &str, second: &str) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    s.write_all(&[b'x'; 64]).await.unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 4"), "an early reject: {head}");
    if head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("connection: close"))
    {
        return;
    }
    s.write_all(second.as_bytes()).await.unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 "), "{head}");
}

/// Guards issue 10: an early 401 of the registry and of the controller either reads the body
/// or says `Connection: close`; the connection is never silently poisoned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_rejects_do_not_poison_connections() {
    let p = platform().await;
    early_reject_then_reuse(
        p.registry,
        "PUT /v2/hello/manifests/v1 HTTP/1.1\r\nhost: r\r\ncontent-type: application/vnd.oci.image.manifest.v1+json\r\ncontent-length: 64\r\n\r\n",
        "GET /v2/ HTTP/1.1\r\nhost: r\r\n\r\n",
    )
    .await;
    let controller: std::net::SocketAddr =
        p.controller.trim_start_matches("http://").parse().unwrap();
    early_reject_then_reuse(
        controller,
        "POST /v2/apps/ HTTP/1.1\r\nhost: c\r\ncontent-type: application/json\r\ncontent-length: 64\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nhost: c\r\n\r\n",
    )
    .await;
    p.stop.cancel();
}
