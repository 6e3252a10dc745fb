//! The Deis v2 REST API over real HTTP requests (through the router, no network):
//! every endpoint's success and failure paths, shapes, codes and headers.

mod common;

use axum::body::Body;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

use futures::StreamExt;
use workflow_controller::domain::{Controller, RegistrationMode, Settings};
use workflow_controller::images::{ImageImporter, Imported, Progress};
use workflow_controller::logs::{LineStream, LogQuery, LogSource};
use workflow_controller::rest::{self, RestState};
use workflow_controller::runtime::LedgerOnly;

/// An in-memory log source (unit-test fake; the real aggregator is tested end to end).
#[derive(Default)]
struct FakeLogs {
    lines: Mutex<Vec<String>>,
    new: Mutex<Option<tokio::sync::mpsc::UnboundedSender<String>>>,
    searched: Mutex<Option<LogQuery>>,
}

#[tonic::async_trait]
impl LogSource for FakeLogs {
    async fn tail(
        &self,
        _app: &str,
        n: u32,
        _since: i64,
    ) -> workflow_controller::Result<(Vec<String>, u64)> {
        let lines = self.lines.lock().unwrap();
        let start = lines.len().saturating_sub(n as usize);
        Ok((lines[start..].to_vec(), lines.len() as u64))
    }
    async fn follow(
        &self,
        _app: &str,
        _cursor: u64,
        _since: i64,
    ) -> workflow_controller::Result<LineStream> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        *self.new.lock().unwrap() = Some(tx);
        Ok(Box::pin(
            tokio_stream::wrappers::UnboundedReceiverStream::new(rx).map(Ok),
        ))
    }
    async fn search(
        &self,
        _app: &str,
        q: LogQuery,
        _since: i64,
    ) -> workflow_controller::Result<(Vec<String>, Option<String>)> {
        *self.searched.lock().unwrap() = Some(q);
        let mut hits = self.lines.lock().unwrap().clone();
        hits.reverse();
        Ok((hits, Some("page2".into())))
    }
}

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDLjnHVq5yBmHIwRD1OElJWUVPy0ShFQLWR2pbzq6chE alice@laptop";

struct Api {
    router: axum::Router,
    _dir: tempfile::TempDir,
}

struct Res {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Value,
    text: String,
}

impl Api {
    fn new() -> Api {
        let (store, dir) = common::sqlite();
        let ctl = common::controller(store);
        Api {
            router: rest::router(RestState { ctl }),
            _dir: dir,
        }
    }

    fn with_logs(logs: Arc<FakeLogs>) -> Api {
        let (store, dir) = common::sqlite();
        let ctl = Controller::new(
            store,
            Arc::new(LedgerOnly),
            Settings {
                registration: RegistrationMode::Enabled,
                builder_key: common::BUILDER_KEY.into(),
            },
        )
        .with_logs(logs);
        Api {
            router: rest::router(RestState { ctl: Arc::new(ctl) }),
            _dir: dir,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Res {
        self.raw(
            method,
            path,
            token.map(|t| format!("token {t}")),
            body.map(|b| b.to_string()),
            &[],
        )
        .await
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        auth: Option<String>,
        body: Option<String>,
        extra: &[(&str, &str)],
    ) -> Res {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "ctl.test");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let req = rest::normalize_path(req);
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Res {
            status,
            headers,
            body,
            text,
        }
    }

    async fn register(&self, name: &str) -> String {
        let r = self.call(Method::POST, "/v2/auth/register/", None, Some(json!({"username": name, "password": "pw", "email": format!("{name}@example.com")}))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let r = self
            .call(
                Method::POST,
                "/v2/auth/login/",
                None,
                Some(json!({"username": name, "password": "pw"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body["token"].as_str().unwrap().to_string()
    }
}

#[tokio::test]
async fn health_root_and_headers() {
    let api = Api::new();
    let r = api.call(Method::GET, "/healthz", None, None).await;
    assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, "OK"));
    let r = api.call(Method::GET, "/v2/", None, None).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "Deis clients probe /v2/ for a 401"
    );
    assert_eq!(r.headers["deis_api_version"], "2.3");
    assert!(r.headers.contains_key("deis_platform_version"));
    let t = api.register("alice").await;
    let r = api.call(Method::GET, "/v2/", Some(&t), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api.call(Method::GET, "/v2/nope/", Some(&t), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["detail"], "Not found.");
    assert_eq!(
        r.headers["deis_api_version"], "2.3",
        "headers on errors too"
    );
    let r = api.call(Method::PUT, "/v2/apps/", Some(&t), None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = api.call(Method::GET, "/metrics", None, None).await;
    assert!(
        r.text.contains("workflow_controller_http_requests_total"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn auth_endpoints() {
    let api = Api::new();
    let r = api
        .call(
            Method::POST,
            "/v2/auth/register/",
            None,
            Some(json!({"username": "bad user", "password": "pw"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["username"][0]
            .as_str()
            .unwrap()
            .starts_with("Enter a valid username")
    );
    assert!(
        r.body["detail"].as_str().unwrap().contains("bad user"),
        "the message names the value"
    );
    let r = api
        .raw(
            Method::POST,
            "/v2/auth/register/",
            None,
            Some("{not json".into()),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["detail"].as_str().unwrap().contains("invalid JSON"));
    let r = api
        .call(
            Method::POST,
            "/v2/auth/register/",
            None,
            Some(json!({"username": "x", "password": ""})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.get("password").is_some());
    let r = api
        .call(
            Method::POST,
            "/v2/auth/register/",
            None,
            Some(json!({"username": "x", "password": "p", "email": "nope"})),
        )
        .await;
    assert!(r.body.get("email").is_some(), "{}", r.text);

    let alice = api.register("alice").await;
    let r = api
        .call(
            Method::POST,
            "/v2/auth/register/",
            None,
            Some(json!({"username": "alice", "password": "pw"})),
        )
        .await;
    assert_eq!(
        r.body["username"][0],
        "A user with that username already exists."
    );
    let r = api
        .call(
            Method::POST,
            "/v2/auth/login/",
            None,
            Some(json!({"username": "alice", "password": "bad"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["non_field_errors"][0],
        "Unable to log in with provided credentials."
    );

    let r = api
        .call(Method::GET, "/v2/auth/whoami/", Some(&alice), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["username"], "alice");
    assert_eq!(r.body["is_superuser"], true);
    for field in [
        "id",
        "last_login",
        "email",
        "first_name",
        "last_name",
        "is_staff",
        "is_active",
        "date_joined",
    ] {
        assert!(r.body.get(field).is_some(), "user object has {field}");
    }
    let r = api
        .call(Method::GET, "/v2/auth/whoami/", Some("0000"), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = api
        .raw(
            Method::GET,
            "/v2/auth/whoami/",
            Some("Basic abc".into()),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = api.call(Method::GET, "/v2/auth/whoami/", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let bob = api.register("bob").await;
    let r = api
        .call(
            Method::POST,
            "/v2/auth/tokens/",
            Some(&bob),
            Some(json!({"username": "alice"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = api
        .call(Method::POST, "/v2/auth/tokens/", Some(&bob), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let bob = r.body["token"].as_str().unwrap().to_string();
    let r = api
        .call(
            Method::POST,
            "/v2/auth/passwd/",
            Some(&bob),
            Some(json!({"password": "wrong", "new_password": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api
        .call(
            Method::POST,
            "/v2/auth/passwd/",
            Some(&bob),
            Some(json!({"password": "pw", "new_password": "pw2"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let r = api.call(Method::GET, "/v2/users/", Some(&bob), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = api
        .call(Method::GET, "/v2/users/", Some(&alice), None)
        .await;
    assert_eq!(r.body["count"], 2);

    api.call(
        Method::POST,
        "/v2/apps/",
        Some(&bob),
        Some(json!({"id": "bobapp"})),
    )
    .await;
    let r = api
        .call(Method::DELETE, "/v2/auth/cancel/", Some(&bob), None)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("still has applications assigned")
    );
    api.call(Method::DELETE, "/v2/apps/bobapp/", Some(&bob), None)
        .await;
    let r = api
        .call(Method::DELETE, "/v2/auth/cancel/", Some(&bob), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api
        .call(Method::GET, "/v2/auth/whoami/", Some(&bob), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn keys_endpoints() {
    let api = Api::new();
    let t = api.register("alice").await;
    let r = api
        .call(
            Method::POST,
            "/v2/keys/",
            Some(&t),
            Some(json!({"id": "laptop", "public": KEY})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    for f in ["uuid", "id", "owner", "public", "created", "updated"] {
        assert!(r.body.get(f).is_some(), "key has {f}");
    }
    let r = api
        .call(
            Method::POST,
            "/v2/keys/",
            Some(&t),
            Some(json!({"id": "again", "public": KEY})),
        )
        .await;
    // Guards Deis parity (issue 10): the Deis SDK maps these exact shapes to its errors.
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["public"], json!(["Public Key is already in use"]));
    let r = api
        .call(
            Method::POST,
            "/v2/keys/",
            Some(&t),
            Some(json!({"id": "laptop", "public": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl other"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(
        r.body["id"],
        json!(["SSH Key with this id already exists."])
    );
    let r = api
        .call(
            Method::POST,
            "/v2/keys/",
            Some(&t),
            Some(json!({"id": "x", "public": "ssh-ed25519 %%%"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.get("public").is_some());
    let r = api.call(Method::GET, "/v2/keys/", Some(&t), None).await;
    assert_eq!(r.body["count"], 1);
    assert_eq!(r.body["results"][0]["id"], "laptop");
    let r = api
        .call(Method::GET, "/v2/keys/laptop/", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api
        .call(Method::GET, "/v2/keys/nope/", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api
        .call(Method::DELETE, "/v2/keys/laptop", Some(&t), None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "paths work without the trailing slash"
    );
    let r = api
        .call(Method::DELETE, "/v2/keys/laptop/", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn apps_endpoints_and_paging() {
    let api = Api::new();
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let r = api
        .call(
            Method::POST,
            "/v2/apps/",
            Some(&alice),
            Some(json!({"id": "hello"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    for f in ["uuid", "id", "owner", "structure", "created", "updated"] {
        assert!(r.body.get(f).is_some(), "app has {f}");
    }
    let r = api
        .call(Method::POST, "/v2/apps/", Some(&alice), None)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(
        r.body["id"].as_str().unwrap().contains('-'),
        "random name: {}",
        r.body["id"]
    );
    let r = api
        .call(
            Method::POST,
            "/v2/apps/",
            Some(&alice),
            Some(json!({"id": "hello"})),
        )
        .await;
    assert_eq!(r.body["id"][0], "Application with this id already exists.");
    let r = api
        .call(
            Method::POST,
            "/v2/apps/",
            Some(&alice),
            Some(json!({"id": "Bad_Name"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["id"][0],
        "App name can only contain a-z (lowercase), 0-9 and hyphens"
    );
    assert!(r.body["detail"].as_str().unwrap().contains("Bad_Name"));
    for i in 0..3 {
        api.call(
            Method::POST,
            "/v2/apps/",
            Some(&alice),
            Some(json!({"id": format!("p{i}")})),
        )
        .await;
    }
    let r = api
        .call(Method::GET, "/v2/apps/?limit=2", Some(&alice), None)
        .await;
    assert_eq!(r.body["count"], 5);
    assert_eq!(r.body["results"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["next"], "http://ctl.test/v2/apps/?limit=2&offset=2");
    assert_eq!(r.body["previous"], Value::Null);
    let r = api
        .call(
            Method::GET,
            "/v2/apps/?limit=2&offset=4",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(r.body["next"], Value::Null);
    assert_eq!(
        r.body["previous"],
        "http://ctl.test/v2/apps/?limit=2&offset=2"
    );
    let r = api
        .call(Method::GET, "/v2/apps/?limit=abc", Some(&alice), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api.call(Method::GET, "/v2/apps/", Some(&bob), None).await;
    assert_eq!(r.body["count"], 0, "bob sees none of alice's apps");
    let r = api
        .call(Method::GET, "/v2/apps/hello/", Some(&bob), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = api
        .call(Method::DELETE, "/v2/apps/hello/", Some(&bob), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = api
        .call(Method::GET, "/v2/apps/ghost/", Some(&alice), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api
        .call(Method::GET, "/v2/apps/hello/", Some(&alice), None)
        .await;
    assert_eq!(r.body["owner"], "alice");
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/",
            Some(&alice),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/",
            Some(&alice),
            Some(json!({"owner": "bob"})),
        )
        .await;
    assert_eq!(r.body["owner"], "bob");
    let r = api
        .call(Method::GET, "/v2/apps/hello/logs", Some(&bob), None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "no logger configured: {}",
        r.text
    );
    let r = api
        .call(
            Method::GET,
            "/v2/apps/hello/logs?log_lines=zero",
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api
        .call(Method::DELETE, "/v2/apps/hello/", Some(&bob), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api
        .call(Method::GET, "/v2/apps/hello/", Some(&bob), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn config_builds_releases_scale_pods() {
    let api = Api::new();
    let t = api.register("alice").await;
    let bob = api.register("bob").await;
    api.call(
        Method::POST,
        "/v2/apps/",
        Some(&t),
        Some(json!({"id": "hello"})),
    )
    .await;
    let r = api
        .call(Method::GET, "/v2/apps/hello/config/", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["values"], json!({}));
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/config/",
            Some(&t),
            Some(json!({"values": {"GREETING": "hi", "N": 3}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["values"]["N"], "3");
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/config/",
            Some(&t),
            Some(json!({"values": {"GREETING": "hi"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("changed nothing")
    );
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/config/",
            Some(&t),
            Some(json!({"values": {"NOPE": null}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/config/",
            Some(&t),
            Some(json!({"values": {"1BAD": "x"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["detail"].as_str().unwrap().contains("1BAD"));
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/config/",
            Some(&t),
            Some(json!({"values": "nope"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/config/",
            Some(&t),
            Some(json!({"registry": {"username": "bot", "password": "hunter2"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        r.body["registry"]["password"], "***",
        "registry passwords are never shown"
    );
    let r = api
        .call(Method::GET, "/v2/apps/hello/config/", Some(&bob), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/scale/",
            Some(&t),
            Some(json!({"web": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "no build yet");
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/builds/",
            Some(&t),
            Some(json!({"image": "NOT VALID"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.get("image").is_some());
    let r = api.call(Method::POST, "/v2/apps/hello/builds/", Some(&t), Some(json!({"image": "example.com/team/web:1.0", "procfile": {"web": "./web", "worker": "./work"}}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let build_uuid = r.body["uuid"].as_str().unwrap().to_string();
    for f in [
        "app", "created", "owner", "procfile", "uuid", "updated", "image",
    ] {
        assert!(r.body.get(f).is_some(), "build has {f}");
    }
    let r = api
        .call(
            Method::GET,
            &format!("/v2/apps/hello/builds/{build_uuid}/"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api
        .call(Method::GET, "/v2/apps/hello/builds/nope/", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api
        .call(Method::GET, "/v2/apps/hello/builds/", Some(&t), None)
        .await;
    assert_eq!(r.body["count"], 1);

    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/scale/",
            Some(&t),
            Some(json!({"web": 3, "worker": "2"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = api
        .call(Method::GET, "/v2/apps/hello/", Some(&t), None)
        .await;
    assert_eq!(r.body["structure"], json!({"web": 3, "worker": 2}));
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/scale/",
            Some(&t),
            Some(json!({"web": -1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/scale/",
            Some(&t),
            Some(json!({"web": "many"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/scale/",
            Some(&t),
            Some(json!({"db": 1})),
        )
        .await;
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );
    let r = api
        .call(Method::GET, "/v2/apps/hello/pods/", Some(&t), None)
        .await;
    assert_eq!(
        (r.status, r.body["count"].clone()),
        (StatusCode::OK, json!(0))
    );
    let r = api
        .call(Method::GET, "/v2/apps/hello/pods/web/", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);

    let r = api
        .call(
            Method::GET,
            "/v2/apps/hello/releases/?limit=2",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.body["count"], 4);
    assert_eq!(r.body["results"][0]["version"], 4);
    assert_eq!(
        r.body["results"][0]["summary"],
        "alice deployed example.com/team/web:1.0"
    );
    assert!(r.body["next"].as_str().unwrap().ends_with("offset=2"));
    for f in [
        "uuid", "app", "version", "owner", "build", "config", "summary", "created", "updated",
    ] {
        assert!(r.body["results"][0].get(f).is_some(), "release has {f}");
    }
    let r = api
        .call(Method::GET, "/v2/apps/hello/releases/v1/", Some(&t), None)
        .await;
    assert_eq!(r.body["summary"], "alice created initial release");
    assert_eq!(r.body["build"], Value::Null);
    let r = api
        .call(Method::GET, "/v2/apps/hello/releases/v99/", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api
        .call(Method::GET, "/v2/apps/hello/releases/vx/", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/releases/rollback/",
            Some(&t),
            Some(json!({"version": 0})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/releases/rollback/",
            Some(&t),
            Some(json!({"version": 2})),
        )
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (StatusCode::CREATED, json!({"version": 5}))
    );
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/releases/rollback/",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = api
        .call(Method::GET, "/v2/apps/hello/releases/v6/", Some(&t), None)
        .await;
    assert_eq!(r.body["summary"], "alice rolled back to v4");
}

#[tokio::test]
async fn perms_endpoints() {
    let api = Api::new();
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    api.call(
        Method::POST,
        "/v2/apps/",
        Some(&bob),
        Some(json!({"id": "shared"})),
    )
    .await;
    let r = api
        .call(
            Method::POST,
            "/v2/apps/shared/perms/",
            Some(&bob),
            Some(json!({"username": "carol"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = api
        .call(
            Method::POST,
            "/v2/apps/shared/perms/",
            Some(&bob),
            Some(json!({"username": "ghost"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api
        .call(
            Method::POST,
            "/v2/apps/shared/perms/",
            Some(&carol),
            Some(json!({"username": "alice"})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "collaborators cannot share further"
    );
    let r = api
        .call(Method::GET, "/v2/apps/shared/perms/", Some(&carol), None)
        .await;
    assert_eq!(r.body, json!({"users": ["carol"]}));
    let r = api
        .call(Method::GET, "/v2/apps/shared/", Some(&carol), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api
        .call(
            Method::DELETE,
            "/v2/apps/shared/perms/alice",
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api
        .call(
            Method::DELETE,
            "/v2/apps/shared/perms/carol",
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api
        .call(Method::GET, "/v2/apps/shared/", Some(&carol), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = api
        .call(Method::GET, "/v2/admin/perms/", Some(&bob), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = api
        .call(
            Method::POST,
            "/v2/admin/perms/",
            Some(&alice),
            Some(json!({"username": "bob"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = api
        .call(Method::GET, "/v2/admin/perms/", Some(&alice), None)
        .await;
    assert_eq!(r.body["count"], 2);
    assert_eq!(r.body["results"][1]["username"], "bob");
    let r = api
        .call(Method::DELETE, "/v2/admin/perms/alice", Some(&bob), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api
        .call(Method::DELETE, "/v2/admin/perms/bob", Some(&bob), None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "the last admin cannot leave"
    );
}

#[tokio::test]
async fn logs_tail_search_and_follow() {
    let logs = Arc::new(FakeLogs::default());
    *logs.lines.lock().unwrap() = (1..=5).map(|i| format!("line {i}")).collect();
    let api = Api::with_logs(logs.clone());
    let t = api.register("alice").await;
    let bob = api.register("bob").await;
    api.call(
        Method::POST,
        "/v2/apps/",
        Some(&t),
        Some(json!({"id": "hello"})),
    )
    .await;
    let r = api
        .call(
            Method::GET,
            "/v2/apps/hello/logs?log_lines=2",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (StatusCode::OK, "line 4\nline 5\n")
    );
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let r = api
        .call(Method::GET, "/v2/apps/hello/logs", Some(&bob), None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "logs follow the app's permissions"
    );
    let r = api
        .call(
            Method::GET,
            "/v2/apps/hello/logs?log_lines=0",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = api
        .call(
            Method::GET,
            "/v2/apps/hello/logs?search=timeout%20AND%20db&since=2h&type=web&limit=10",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.starts_with("line 5\n"), "newest first: {}", r.text);
    assert_eq!(r.headers["x-workflow-next-page"], "page2");
    let q = logs.searched.lock().unwrap().clone().unwrap();
    assert_eq!(
        (
            q.query.as_str(),
            q.since.as_deref(),
            q.process_type.as_deref(),
            q.limit
        ),
        ("timeout AND db", Some("2h"), Some("web"), 10)
    );
    let r = api
        .call(
            Method::GET,
            "/v2/apps/hello/logs?search=x&type=Bad_Type",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Follow: the tail first, then lines as they arrive, on one streamed body.
    let req = Request::builder()
        .uri("/v2/apps/hello/logs?log_lines=1&follow=true")
        .header("authorization", format!("token {t}"))
        .body(Body::empty())
        .unwrap();
    let res = api.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.into_body().into_data_stream();
    let first = body.next().await.unwrap().unwrap();
    assert_eq!(&first[..], b"line 5\n");
    let tx = logs.new.lock().unwrap().clone().expect("follow subscribed");
    tx.send("line 6".into()).unwrap();
    let next = body.next().await.unwrap().unwrap();
    assert_eq!(&next[..], b"line 6\n");
}

/// Hostile input never crashes the controller nor makes it answer 5xx: random paths,
/// methods and bodies against every route.
#[tokio::test]
async fn hostile_requests_get_4xx_never_5xx() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};

    let api = Api::new();
    let t = api.register("alice").await;
    api.call(
        Method::POST,
        "/v2/apps/",
        Some(&t),
        Some(json!({"id": "hello"})),
    )
    .await;
    let paths = prop_oneof![
        Just("/v2/apps/".to_string()),
        Just("/v2/apps/hello/".to_string()),
        Just("/v2/apps/hello/config/".to_string()),
        Just("/v2/apps/hello/builds/".to_string()),
        Just("/v2/apps/hello/releases/rollback/".to_string()),
        Just("/v2/apps/hello/scale/".to_string()),
        Just("/v2/apps/hello/perms/".to_string()),
        Just("/v2/keys/".to_string()),
        Just("/v2/auth/register/".to_string()),
        Just("/v2/auth/login/".to_string()),
        Just("/v2/auth/tokens/".to_string()),
        Just("/v2/auth/passwd/".to_string()),
        Just("/v2/admin/perms/".to_string()),
        "/v2/apps/[a-zA-Z0-9_%.-]{0,70}/releases/[v0-9a-z]{0,25}".prop_map(|p| p),
        "/v2/[a-z%/.]{0,40}".prop_map(|p| p),
    ];
    let bodies = prop_oneof![
        Just(String::new()),
        "\\PC{0,200}",
        Just(r#"{"values": {"A": {"nested": true}}}"#.to_string()),
        Just(r#"{"id": 12, "public": ["x"], "username": null}"#.to_string()),
        Just(r#"{"web": 1e30, "version": "v-1", "image": "a@sha256:zz"}"#.to_string()),
        Just(format!(
            r#"{{"values": {{"BIG": "{}"}}}}"#,
            "x".repeat(70_000)
        )),
        Just(r#"{"procfile": {"WEB": "", "web": "a\nb"}, "image": "ok"}"#.to_string()),
    ];
    let methods = prop_oneof![Just(Method::GET), Just(Method::POST), Just(Method::DELETE)];
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    let cases: Vec<(Method, String, String)> = (0..300)
        .map(|_| {
            let tree = (methods.clone(), paths.clone(), bodies.clone())
                .new_tree(&mut runner)
                .unwrap();
            tree.current()
        })
        .collect();
    for (m, p, b) in cases {
        let Ok(uri) = p.parse::<http::Uri>() else {
            continue;
        };
        let r = api
            .raw(
                m.clone(),
                &uri.to_string(),
                Some(format!("token {t}")),
                Some(b.clone()),
                &[],
            )
            .await;
        assert!(
            r.status.as_u16() < 500,
            "{m} {p} with {:?} answered {}: {}",
            b.chars().take(80).collect::<String>(),
            r.status,
            r.text
        );
    }
    // The store still answers (the random requests may have rotated the token: log in again).
    let r = api
        .call(
            Method::POST,
            "/v2/auth/login/",
            None,
            Some(json!({"username": "alice", "password": "pw"})),
        )
        .await;
    let t = r.body["token"]
        .as_str()
        .expect("login still works")
        .to_string();
    let r = api.call(Method::GET, "/v2/apps/", Some(&t), None).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// One import the fake saw: app, source image, registry login.
type ImportCall = (String, String, Option<(String, String)>);

/// An in-memory image importer (unit-test fake of registry-sync): "copies" every image to
/// `platform.test/<app>:imported` and reports one layer.
#[derive(Default)]
struct FakeImporter {
    imports: Mutex<Vec<ImportCall>>,
}

#[tonic::async_trait]
impl ImageImporter for FakeImporter {
    async fn import(
        &self,
        app: &str,
        image: &str,
        credentials: Option<(String, String)>,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> workflow_controller::Result<Imported> {
        self.imports
            .lock()
            .unwrap()
            .push((app.into(), image.into(), credentials));
        progress(Progress::Layer(workflow_clients::registry::LayerProgress {
            digest: format!("sha256:{}", "a".repeat(64)),
            size: 3,
            copied: 3,
            status: "done".into(),
        }));
        Ok(Imported {
            image: format!("platform.test/{app}:imported"),
            port: Some(8080),
        })
    }
}

fn authed<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("token {token}").parse().unwrap());
    r
}

/// Guards REST `POST builds` and gRPC `Builds.Create` taking the same domain path: both
/// import through registry-sync when it is configured, both record the image as given
/// when not, and both refuse the same bad input.
#[tokio::test]
async fn rest_and_grpc_create_builds_alike() {
    use workflow_proto::controller::v1::{self as pb, builds_server::Builds};
    const SOURCE: &str = "example.com/team/web:1.0";

    for importer in [None, Some(Arc::new(FakeImporter::default()))] {
        let (store, _dir) = common::sqlite();
        let mut ctl = Controller::new(
            store,
            Arc::new(LedgerOnly),
            Settings {
                registration: RegistrationMode::Enabled,
                builder_key: common::BUILDER_KEY.into(),
            },
        );
        if let Some(i) = &importer {
            ctl = ctl.with_images(i.clone());
        }
        let ctl = Arc::new(ctl);
        let api = Api {
            router: rest::router(RestState { ctl: ctl.clone() }),
            _dir,
        };
        let grpc = workflow_controller::grpc::Grpc::new(ctl);
        let t = api.register("alice").await;
        for app in ["viarest", "viagrpc"] {
            let r = api
                .call(
                    Method::POST,
                    "/v2/apps/",
                    Some(&t),
                    Some(json!({"id": app})),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            let r = api
                .call(
                    Method::POST,
                    &format!("/v2/apps/{app}/config/"),
                    Some(&t),
                    Some(json!({"registry": {"username": "bot", "password": "hunter2"}})),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        }

        let r = api
            .call(
                Method::POST,
                "/v2/apps/viarest/builds/",
                Some(&t),
                Some(json!({"image": SOURCE, "procfile": {"web": "./web"}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let via_rest = (
            r.body["image"].as_str().unwrap().replace("viarest", "APP"),
            r.body["procfile"].clone(),
        );
        let change = grpc
            .create(authed(
                pb::CreateBuildRequest {
                    app: "viagrpc".into(),
                    image: SOURCE.into(),
                    procfile: [("web".to_string(), "./web".to_string())].into(),
                },
                &t,
            ))
            .await
            .unwrap()
            .into_inner();
        let b = change.build.unwrap();
        let via_grpc = (b.image.replace("viagrpc", "APP"), json!(b.procfile));
        assert_eq!(via_rest, via_grpc, "imported: {}", importer.is_some());
        assert_eq!(change.release.map(|r| r.version), Some(3));
        let r = api
            .call(Method::GET, "/v2/apps/viarest/releases/v3/", Some(&t), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "REST released it too");

        match &importer {
            Some(i) => {
                assert_eq!(via_rest.0, "platform.test/APP:imported");
                let creds = Some(("bot".to_string(), "hunter2".to_string()));
                assert_eq!(
                    *i.imports.lock().unwrap(),
                    [
                        ("viarest".into(), SOURCE.into(), creds.clone()),
                        ("viagrpc".into(), SOURCE.into(), creds),
                    ],
                    "both imported with the app's registry login"
                );
            }
            None => assert_eq!(via_rest.0, SOURCE, "recorded as given"),
        }

        let r = api
            .call(
                Method::POST,
                "/v2/apps/viarest/builds/",
                Some(&t),
                Some(json!({"image": "NOT VALID"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let e = grpc
            .create(authed(
                pb::CreateBuildRequest {
                    app: "viagrpc".into(),
                    image: "NOT VALID".into(),
                    procfile: Default::default(),
                },
                &t,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{}", e.message());

        // `deis pull` streams: progress while importing, then the build and release.
        let r = api
            .call(
                Method::POST,
                "/v2/apps/viarest/builds/?progress=true",
                Some(&t),
                Some(json!({"image": SOURCE})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.headers["content-type"], "application/x-ndjson");
        let lines: Vec<Value> = r
            .text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines.len(),
            if importer.is_some() { 2 } else { 1 },
            "{}",
            r.text
        );
        if importer.is_some() {
            assert_eq!(lines[0]["layer"]["status"], "done");
        }
        let last = lines.last().unwrap();
        assert_eq!(last["release"]["version"], 4, "{}", r.text);
        assert!(last["build"]["image"].is_string(), "{}", r.text);
        let r = api
            .call(
                Method::POST,
                "/v2/apps/viagrpc/builds/?progress=true",
                Some(&api.register("mallory").await),
                Some(json!({"image": SOURCE})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "refused before the stream starts: {}",
            r.text
        );
    }
}

/// Guards the Deis texts the Deis SDK relies on: rollback below v1 says "version cannot be
/// below 0" (SDK: ErrInvalidVersion), to v1 "Cannot roll back to initial release."; and a blank
/// app id is a 400 naming it, not a random name.
#[tokio::test]
async fn deis_version_and_app_id_texts() {
    let api = Api::new();
    let t = api.register("alice").await;
    let r = api
        .call(
            Method::POST,
            "/v2/apps/",
            Some(&t),
            Some(json!({"id": " "})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(
        r.body["id"][0],
        "App name can only contain a-z (lowercase), 0-9 and hyphens"
    );
    assert!(
        r.body["detail"].as_str().unwrap().contains("\" \""),
        "{}",
        r.text
    );
    let r = api
        .call(
            Method::POST,
            "/v2/apps/",
            Some(&t),
            Some(json!({"id": "hello"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let rollback = "/v2/apps/hello/releases/rollback/";
    // Only v1 exists: the default target would be v0.
    let r = api.call(Method::POST, rollback, Some(&t), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("version cannot be below 0"),
        "{}",
        r.text
    );
    let r = api
        .call(
            Method::POST,
            rollback,
            Some(&t),
            Some(json!({"version": 0})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("version cannot be below 0"),
        "{}",
        r.text
    );
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/config/",
            Some(&t),
            Some(json!({"values": {"A": "1"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // At v2, the default target is v1, as is an explicit version 1.
    for body in [None, Some(json!({"version": 1}))] {
        let r = api.call(Method::POST, rollback, Some(&t), body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert_eq!(r.body["detail"], "Cannot roll back to initial release.");
    }
}

/// Guards Deis parity: healthchecks:unset removes the probe's key (no `null` left behind) and
/// answers 422 when there is nothing to unset.
#[tokio::test]
async fn healthcheck_unset_removes_the_probe() {
    let api = Api::new();
    let t = api.register("alice").await;
    let r = api
        .call(
            Method::POST,
            "/v2/apps/",
            Some(&t),
            Some(json!({"id": "hello"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let config = "/v2/apps/hello/config/";
    let probe = json!({"httpGet": {"path": "/", "port": 5000}});
    let both = json!({"healthcheck": {"web": {"livenessProbe": probe, "readinessProbe": probe}}});
    let r = api.call(Method::POST, config, Some(&t), Some(both)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let unset = json!({"healthcheck": {"web": {"livenessProbe": null}}});
    let r = api
        .call(Method::POST, config, Some(&t), Some(unset.clone()))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = api.call(Method::GET, config, Some(&t), None).await;
    assert_eq!(
        r.body["healthcheck"],
        json!({"web": {"readinessProbe": probe}}),
        "{}",
        r.text
    );
    let r = api.call(Method::POST, config, Some(&t), Some(unset)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = api
        .call(
            Method::POST,
            config,
            Some(&t),
            Some(json!({"healthcheck": {"web": {"readinessProbe": null}}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = api.call(Method::GET, config, Some(&t), None).await;
    assert_eq!(r.body["healthcheck"], json!({}), "{}", r.text);
}

/// Guards issue 10: every config section is capped, not only `values`; the 400 names the
/// section.
#[tokio::test]
async fn config_sections_are_capped_by_name() {
    let api = Api::new();
    let t = api.register("alice").await;
    let r = api
        .call(
            Method::POST,
            "/v2/apps/",
            Some(&t),
            Some(json!({"id": "hello"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let config = "/v2/apps/hello/config/";
    let big = "x".repeat(70 * 1024);
    let huge_probe =
        json!({"healthcheck": {"web": {"livenessProbe": {"exec": {"command": [big]}}}}});
    let many_tags: serde_json::Map<String, Value> = (0..40)
        .map(|i| (format!("TAG{i}"), Value::String("y".repeat(2000))))
        .collect();
    for (section, body) in [
        ("healthcheck", huge_probe),
        ("tags", json!({"tags": many_tags})),
    ] {
        let r = api.call(Method::POST, config, Some(&t), Some(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{section}: {}", r.text);
        assert!(r.text.contains(section), "{section}: {}", r.text);
    }
    let r = api.call(Method::GET, config, Some(&t), None).await;
    assert_eq!(
        r.body["healthcheck"],
        json!({}),
        "nothing stored: {}",
        r.text
    );
}

/// Domains, settings, whitelist, TLS, run and restarts: Deis's paths, shapes and codes,
/// and what they publish to the route table.
#[tokio::test]
async fn domains_settings_whitelist_tls_run_restart() {
    let (store, _dir) = common::sqlite();
    let ctl = common::controller(store);
    let api = Api {
        router: rest::router(RestState { ctl: ctl.clone() }),
        _dir,
    };
    let t = api.register("alice").await;
    let bob = api.register("bob").await;
    let r = api
        .call(
            Method::POST,
            "/v2/apps/",
            Some(&t),
            Some(json!({"id": "hello"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let uuid = r.body["uuid"].as_str().unwrap().to_string();

    // The default domain comes with the app.
    let r = api
        .call(Method::GET, "/v2/apps/hello/domains/", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["count"], 1);
    assert_eq!(r.body["results"][0]["domain"], "hello");
    assert_eq!(r.body["results"][0]["app"], "hello");
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/domains/",
            Some(&t),
            Some(json!({"domain": "www.example.com"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["domain"], "www.example.com");
    assert_eq!(r.body["owner"], "alice");
    for bad in ["Bad.Example.com", "-x.example.com", "1.2.3.4", "a b"] {
        let r = api
            .call(
                Method::POST,
                "/v2/apps/hello/domains/",
                Some(&t),
                Some(json!({"domain": bad})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
        assert!(r.text.contains(bad), "names the value: {}", r.text);
    }
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/domains/",
            Some(&t),
            Some(json!({"domain": "www.example.com"})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "a domain belongs to one app: {}",
        r.text
    );
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/domains/",
            Some(&bob),
            Some(json!({"domain": "bob.example.com"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Settings: stored, shown in Deis's shape, published to routes by the reconcile loop.
    let r = api
        .call(Method::GET, "/v2/apps/hello/settings/", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        (r.body["maintenance"].clone(), r.body["routable"].clone()),
        (json!(false), json!(true))
    );
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/settings/",
            Some(&t),
            Some(json!({"maintenance": true, "label": {"team": "web"}, "autoscale": {"web": {"min": 1, "max": 3, "cpu_percent": 50}}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["maintenance"], true);
    assert_eq!(r.body["label"]["team"], "web");
    assert_eq!(r.body["autoscale"]["web"]["max"], 3);
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/settings/",
            Some(&t),
            Some(json!({"label": {"team": null}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["label"], json!({}));
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/settings/",
            Some(&t),
            Some(json!({"autoscale": {"web": {"min": 5, "max": 1, "cpu_percent": 50}}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);

    // Whitelist: CIDRs validated.
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/whitelist/",
            Some(&t),
            Some(json!({"addresses": ["10.0.0.0/8", "1.2.3.4"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["addresses"], json!(["10.0.0.0/8", "1.2.3.4"]));
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/whitelist/",
            Some(&t),
            Some(json!({"addresses": ["10.0.0.0/40"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("10.0.0.0/40"), "{}", r.text);
    let r = api
        .call(
            Method::DELETE,
            "/v2/apps/hello/whitelist/",
            Some(&t),
            Some(json!({"addresses": ["1.2.3.4"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = api
        .call(Method::GET, "/v2/apps/hello/whitelist/", Some(&t), None)
        .await;
    assert_eq!(r.body["addresses"], json!(["10.0.0.0/8"]));

    // TLS.
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/tls/",
            Some(&t),
            Some(json!({"https_enforced": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["https_enforced"], true);
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/tls/",
            Some(&t),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // One reconcile step publishes all of it.
    ctl.reconcile(&uuid).await.unwrap();
    let routes = ctl.routes().snapshot()["hello"].clone();
    assert_eq!(
        routes.domains,
        vec!["hello".to_string(), "www.example.com".to_string()]
    );
    assert!(routes.maintenance && routes.https_only);
    assert_eq!(routes.whitelist.len(), 1);
    assert_eq!(routes.whitelist[0].prefix, 8);

    let r = api
        .call(
            Method::DELETE,
            "/v2/apps/hello/domains/www.example.com",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api
        .call(
            Method::DELETE,
            "/v2/apps/hello/domains/www.example.com",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Restarts answer with the (here: no) pods; run needs a build and a runtime.
    let r = api
        .call(Method::POST, "/v2/apps/hello/pods/restart/", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!([]));
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/pods/web/restart/",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/pods/web/hello-web-x/restart/",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/run/",
            Some(&t),
            Some(json!({"command": "ls"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("no build"), "{}", r.text);
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/run/",
            Some(&t),
            Some(json!({"command": ""})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Destroy removes the app's routes.
    let r = api
        .call(Method::DELETE, "/v2/apps/hello/", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(!ctl.routes().snapshot().contains_key("hello"));
}

/// Guards issue 8: `GET /v2/builder` tells an authenticated client where the builder's git
/// endpoints are (empty when not configured), and nobody else.
#[tokio::test]
async fn builder_endpoints_are_advertised_to_users() {
    let api = Api::new();
    let t = api.register("alice").await;
    let r = api.call(Method::GET, "/v2/builder/", Some(&t), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({"git_ssh": "", "git_http": ""}));

    let (store, _dir) = common::sqlite();
    let ctl = Controller::new(
        store,
        Arc::new(LedgerOnly),
        Settings {
            registration: RegistrationMode::Enabled,
            builder_key: common::BUILDER_KEY.into(),
        },
    )
    .with_builder_endpoints(workflow_controller::domain::BuilderEndpoints {
        git_ssh: "git.example.com:2222".into(),
        git_http: "https://git.example.com".into(),
    });
    let api = Api {
        router: rest::router(RestState { ctl: Arc::new(ctl) }),
        _dir,
    };
    let t = api.register("alice").await;
    let r = api.call(Method::GET, "/v2/builder", Some(&t), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["git_ssh"], "git.example.com:2222");
    assert_eq!(r.body["git_http"], "https://git.example.com");
    let r = api.call(Method::GET, "/v2/builder/", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
}

fn cert_pair(names: &[&str]) -> (String, String) {
    let c =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

/// Certificates: Deis's `/v2/certs` paths, shapes and codes; attaching one to a domain
/// publishes it to the route table; bad PEM and mismatched keys are 400s with the reason.
#[tokio::test]
async fn certs_add_attach_detach_delete() {
    let (store, dir) = common::sqlite();
    certs_scenario(store, dir).await;
}

/// The same on PostgreSQL (skipped without a server, failed under CI).
#[tokio::test]
async fn certs_add_attach_detach_delete_on_postgres() {
    let Some(store) = common::postgres().await else {
        return;
    };
    certs_scenario(store, tempfile::tempdir().unwrap()).await;
}

async fn certs_scenario(store: workflow_controller::store::Store, _dir: tempfile::TempDir) {
    let ctl = common::controller(store);
    let api = Api {
        router: rest::router(RestState { ctl: ctl.clone() }),
        _dir,
    };
    let t = api.register("alice").await;
    let bob = api.register("bob").await;
    let r = api
        .call(
            Method::POST,
            "/v2/apps/",
            Some(&t),
            Some(json!({"id": "hello"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let uuid = r.body["uuid"].as_str().unwrap().to_string();
    let r = api
        .call(
            Method::POST,
            "/v2/apps/hello/domains/",
            Some(&t),
            Some(json!({"domain": "www.example.com"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let (cert, key) = cert_pair(&["www.example.com"]);
    let (_, other_key) = cert_pair(&["other.example.com"]);
    // A key that is not the certificate's: 400 naming the field and the reason.
    let r = api
        .call(
            Method::POST,
            "/v2/certs/",
            Some(&t),
            Some(json!({"name": "www-example-com", "certificate": cert, "key": other_key})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.body["key"][0]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{}",
        r.text
    );
    for (body, field) in [
        (
            json!({"name": "www-example-com", "certificate": "nope", "key": key}),
            "certificate",
        ),
        (
            json!({"name": "www-example-com", "certificate": cert, "key": "nope"}),
            "key",
        ),
        (
            json!({"name": "Bad_Name", "certificate": cert, "key": key}),
            "name",
        ),
    ] {
        let r = api
            .call(Method::POST, "/v2/certs/", Some(&t), Some(body))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.body[field].is_array(), "{field}: {}", r.text);
    }

    let r = api
        .call(
            Method::POST,
            "/v2/certs/",
            Some(&t),
            Some(json!({"name": "www-example-com", "certificate": cert, "key": key})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["name"], "www-example-com");
    assert_eq!(r.body["owner"], "alice");
    assert_eq!(r.body["san"], json!(["www.example.com"]));
    assert!(r.body.get("key").is_none() && r.body.get("certificate").is_none());
    let r = api
        .call(
            Method::POST,
            "/v2/certs/",
            Some(&t),
            Some(json!({"name": "www-example-com", "certificate": cert, "key": key})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);

    // Listed for its owner, invisible to others.
    let r = api.call(Method::GET, "/v2/certs/", Some(&t), None).await;
    assert_eq!(r.body["count"], 1, "{}", r.text);
    let r = api.call(Method::GET, "/v2/certs/", Some(&bob), None).await;
    assert_eq!(r.body["count"], 0, "{}", r.text);
    let r = api
        .call(Method::GET, "/v2/certs/www-example-com", Some(&bob), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Attach: unknown domain 404, then 201, twice 409; the route table carries the PEMs.
    let r = api
        .call(
            Method::POST,
            "/v2/certs/www-example-com/domain/",
            Some(&t),
            Some(json!({"domain": "nope.example.com"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = api
        .call(
            Method::POST,
            "/v2/certs/www-example-com/domain/",
            Some(&t),
            Some(json!({"domain": "www.example.com"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = api
        .call(
            Method::POST,
            "/v2/certs/www-example-com/domain/",
            Some(&t),
            Some(json!({"domain": "www.example.com"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let r = api
        .call(Method::GET, "/v2/certs/www-example-com", Some(&t), None)
        .await;
    assert_eq!(r.body["domains"], json!(["www.example.com"]), "{}", r.text);
    ctl.reconcile(&uuid).await.unwrap();
    let routes = ctl.routes().snapshot()["hello"].clone();
    assert_eq!(routes.certs["www.example.com"].cert, cert);

    // Someone else's domain: bob's own certificate cannot take it.
    let (bob_cert, bob_key) = cert_pair(&["www.example.com"]);
    let r = api
        .call(
            Method::POST,
            "/v2/certs/",
            Some(&bob),
            Some(json!({"name": "bobs", "certificate": bob_cert, "key": bob_key})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = api
        .call(
            Method::POST,
            "/v2/certs/bobs/domain/",
            Some(&bob),
            Some(json!({"domain": "www.example.com"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // The administrator (the first user) sees every certificate.
    let r = api.call(Method::GET, "/v2/certs/", Some(&t), None).await;
    assert_eq!(r.body["count"], 2, "{}", r.text);
    let r = api
        .call(Method::DELETE, "/v2/certs/bobs", Some(&bob), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

    // Detach, then delete.
    let r = api
        .call(
            Method::DELETE,
            "/v2/certs/www-example-com/domain/www.example.com",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    ctl.reconcile(&uuid).await.unwrap();
    assert!(ctl.routes().snapshot()["hello"].certs.is_empty());
    let r = api
        .call(
            Method::DELETE,
            "/v2/certs/www-example-com",
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api
        .call(Method::DELETE, "/v2/certs/www-example-com", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api.call(Method::GET, "/v2/certs/", Some(&t), None).await;
    assert_eq!(r.body["count"], 0);
}
