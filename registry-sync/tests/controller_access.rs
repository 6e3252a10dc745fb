//! The real access check against a fake controller `Hooks` gRPC service: the builder key is
//! sent, answers map to allow / deny / bad credentials, and the registry enforces them.

mod common;

use std::net::SocketAddr;

use workflow_proto::controller::v1 as pb;
use workflow_proto::controller::v1::hooks_server::{Hooks, HooksServer};
use workflow_registry_sync::auth::{AccessCheck, Action, ControllerAccess, Decision};

struct FakeController;

#[tonic::async_trait]
impl Hooks for FakeController {
    async fn user_from_key(
        &self,
        _: tonic::Request<pb::KeyFingerprint>,
    ) -> Result<tonic::Response<pb::UserApps>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this fake"))
    }
    async fn app_config(
        &self,
        _: tonic::Request<pb::HookConfigRequest>,
    ) -> Result<tonic::Response<pb::Config>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this fake"))
    }
    async fn create_build(
        &self,
        _: tonic::Request<pb::HookBuildRequest>,
    ) -> Result<tonic::Response<pb::BuildChange>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this fake"))
    }
    async fn wait_release(
        &self,
        _: tonic::Request<pb::WaitReleaseRequest>,
    ) -> Result<tonic::Response<pb::Release>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this fake"))
    }
    async fn check_access(
        &self,
        request: tonic::Request<pb::CheckAccessRequest>,
    ) -> Result<tonic::Response<pb::CheckAccessResponse>, tonic::Status> {
        if request
            .metadata()
            .get(workflow_common::grpc::CREDENTIAL_HEADER)
            .and_then(|v| v.to_str().ok())
            != Some("bkey")
        {
            return Err(tonic::Status::permission_denied("bad builder key"));
        }
        let r = request.into_inner();
        if r.username != "alice" || r.token != "tok" {
            return Err(tonic::Status::unauthenticated(format!(
                "bad token for {:?}",
                r.username
            )));
        }
        let allowed =
            r.app.is_empty() || r.app == "api" || (r.app == "shared" && r.action == "pull");
        Ok(tonic::Response::new(pb::CheckAccessResponse {
            allowed,
            reason: if allowed {
                String::new()
            } else {
                format!("alice has no {} on {}", r.action, r.app)
            },
            app_uuid: String::new(),
        }))
    }
}

fn cred(secret: &str) -> workflow_clients::PlatformCredential {
    workflow_clients::PlatformCredential::new(secret).unwrap()
}

async fn fake_controller() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(HooksServer::new(FakeController))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    addr
}

#[tokio::test]
async fn controller_access_maps_answers() {
    let addr = fake_controller().await;
    let check = ControllerAccess::new(&format!("http://{addr}"), &cred("bkey")).unwrap();
    assert_eq!(
        check
            .check("alice", "tok", "api", Action::Push)
            .await
            .unwrap(),
        Decision::Allowed
    );
    assert_eq!(
        check.check("alice", "tok", "", Action::Pull).await.unwrap(),
        Decision::Allowed
    );
    assert_eq!(
        check
            .check("alice", "tok", "shared", Action::Pull)
            .await
            .unwrap(),
        Decision::Allowed
    );
    assert!(
        matches!(check.check("alice", "tok", "shared", Action::Push).await.unwrap(), Decision::Denied(r) if r.contains("push"))
    );
    assert!(matches!(
        check
            .check("alice", "bad", "api", Action::Pull)
            .await
            .unwrap(),
        Decision::BadCredentials(_)
    ));
    let wrong_key = ControllerAccess::new(&format!("http://{addr}"), &cred("other")).unwrap();
    assert!(matches!(
        wrong_key
            .check("alice", "tok", "api", Action::Pull)
            .await
            .unwrap(),
        Decision::Denied(_)
    ));
    // An unreachable controller is an error, not a decision.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = ControllerAccess::new(&format!("http://127.0.0.1:{port}"), &cred("bkey")).unwrap();
    assert!(
        down.check("alice", "tok", "api", Action::Pull)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn registry_enforces_controller_answers() {
    let addr = fake_controller().await;
    let auth = workflow_registry_sync::authenticator(&workflow_registry_sync::AuthConfig {
        controller_url: Some(format!("http://{addr}")),
        builder_key: "bkey".into(),
        node_credential: None,
    })
    .unwrap();
    let reg = common::start(
        std::sync::Arc::new(workflow_registry_sync::store::memory::MemoryStore::new()),
        auth,
    )
    .await;
    let http = reqwest::Client::new();
    let get = |path: &str, user: &str, pw: &str| {
        http.get(format!("{}{path}", reg.base()))
            .basic_auth(user, Some(pw))
            .send()
    };
    assert_eq!(get("/v2/", "alice", "tok").await.unwrap().status(), 200);
    assert_eq!(get("/v2/", "alice", "bad").await.unwrap().status(), 401);
    assert_eq!(
        get("/v2/api/tags/list", "alice", "tok")
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        get("/v2/secret/tags/list", "alice", "tok")
            .await
            .unwrap()
            .status(),
        403
    );
    let r = http
        .post(format!("{}/v2/shared/blobs/uploads/", reg.base()))
        .basic_auth("alice", Some("tok"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    reg.stop().await;
}
