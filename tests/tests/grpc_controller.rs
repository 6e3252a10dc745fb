//! The controller's gRPC API end to end: health, reflection, auth metadata, the release
//! ledger and error codes, against a controller serving on loopback.

use tonic::Request;
use tonic::metadata::MetadataValue;
use workflow_proto::controller::v1 as pb;
use workflow_tests::RunningController;

fn authed<T>(msg: T, token: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("token {token}")).unwrap(),
    );
    r
}

#[tokio::test]
async fn release_ledger_over_grpc() -> anyhow::Result<()> {
    let ctl = RunningController::start().await?;
    let channel = tonic::transport::Endpoint::from_shared(ctl.grpc.clone())?
        .connect()
        .await?;

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "workflow.controller.v1.Auth".into(),
        })
        .await?
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let mut refl = tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
        channel.clone(),
    );
    let req = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut stream = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await?
        .into_inner();
    let answer = stream.message().await?.expect("a reflection answer");
    let listed = format!("{:?}", answer.message_response);
    for svc in [
        "workflow.controller.v1.Releases",
        "workflow.controller.v1.Hooks",
        "grpc.health.v1.Health",
    ] {
        assert!(listed.contains(svc), "reflection lists {svc}: {listed}");
    }

    let mut auth = pb::auth_client::AuthClient::new(channel.clone());
    auth.register(pb::RegisterRequest {
        username: "alice".into(),
        password: "s3cret".into(),
        ..Default::default()
    })
    .await?;
    let token = auth
        .login(pb::LoginRequest {
            username: "alice".into(),
            password: "s3cret".into(),
        })
        .await?
        .into_inner()
        .token;
    let unauth = auth.whoami(pb::Empty {}).await.unwrap_err();
    assert_eq!(unauth.code(), tonic::Code::Unauthenticated);
    assert_eq!(
        auth.whoami(authed(pb::Empty {}, &token))
            .await?
            .into_inner()
            .username,
        "alice"
    );

    let mut apps = pb::apps_client::AppsClient::new(channel.clone());
    apps.create(authed(pb::CreateAppRequest { id: "hello".into() }, &token))
        .await?;
    let bad = apps
        .create(authed(
            pb::CreateAppRequest {
                id: "Bad_Name".into(),
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("Bad_Name"), "{}", bad.message());

    let mut config = pb::config_service_client::ConfigServiceClient::new(channel.clone());
    let change = config
        .set(authed(
            pb::SetConfigRequest {
                app: "hello".into(),
                values: [("GREETING".to_string(), "hi".to_string())].into(),
            },
            &token,
        ))
        .await?
        .into_inner();
    assert_eq!(change.release.as_ref().map(|r| r.version), Some(2));
    let again = config
        .set(authed(
            pb::SetConfigRequest {
                app: "hello".into(),
                values: [("GREETING".to_string(), "hi".to_string())].into(),
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        again.code(),
        tonic::Code::AlreadyExists,
        "changed nothing: {}",
        again.message()
    );

    let mut releases = pb::releases_client::ReleasesClient::new(channel.clone());
    let rollback = |version| {
        authed(
            pb::RollbackRequest {
                app: "hello".into(),
                version,
            },
            &token,
        )
    };
    // v1 has no build: refused with Deis's text.
    let initial = releases.rollback(rollback(0)).await.unwrap_err();
    assert_eq!(initial.code(), tonic::Code::InvalidArgument);
    assert_eq!(initial.message(), "Cannot roll back to initial release.");
    config
        .set(authed(
            pb::SetConfigRequest {
                app: "hello".into(),
                values: [("GREETING".to_string(), "hello".to_string())].into(),
            },
            &token,
        ))
        .await?;
    let v4 = releases.rollback(rollback(0)).await?.into_inner();
    assert_eq!(
        (v4.version, v4.summary.as_str()),
        (4, "alice rolled back to v2")
    );
    let list = releases
        .list(authed(
            pb::ListForAppRequest {
                app: "hello".into(),
                page: None,
            },
            &token,
        ))
        .await?
        .into_inner();
    let summaries: Vec<_> = list.results.iter().map(|r| r.summary.as_str()).collect();
    assert_eq!(
        summaries,
        [
            "alice rolled back to v2",
            "alice changed GREETING",
            "alice added GREETING",
            "alice created initial release"
        ]
    );

    let mut hooks = pb::hooks_client::HooksClient::new(channel.clone());
    let denied = hooks
        .check_access(pb::CheckAccessRequest {
            username: "alice".into(),
            token: token.clone(),
            app: "hello".into(),
            action: "push".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        denied.code(),
        tonic::Code::Unauthenticated,
        "hooks need the builder key"
    );
    let mut req = Request::new(pb::CheckAccessRequest {
        username: "alice".into(),
        token: token.clone(),
        app: "hello".into(),
        action: "push".into(),
    });
    req.metadata_mut().insert(
        "x-deis-builder-auth",
        MetadataValue::try_from(ctl.builder_key.as_str())?,
    );
    assert!(hooks.check_access(req).await?.into_inner().allowed);

    ctl.stop().await
}
