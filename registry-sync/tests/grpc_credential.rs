//! registry-sync's gRPC API refuses calls without the platform credential (issue 10): nobody
//! who merely reaches the port deletes repositories, runs GC or imports images.

mod common;

use std::sync::Arc;

use workflow_proto::registry::v1 as pb;
use workflow_proto::registry::v1::registry_sync_client::RegistrySyncClient;
use workflow_registry_sync::auth::Authenticator;
use workflow_registry_sync::store::memory::MemoryStore;

type Client = RegistrySyncClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>,
    >,
>;

async fn client(url: &str, credential: Option<&'static str>) -> Client {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    RegistrySyncClient::with_interceptor(
        channel,
        Box::new(move |mut req: tonic::Request<()>| {
            if let Some(c) = credential {
                req.metadata_mut()
                    .insert(workflow_common::grpc::CREDENTIAL_HEADER, c.parse().unwrap());
            }
            Ok(req)
        }),
    )
}

/// Guards issue 10: DeleteRepository, GarbageCollect and Import need the platform credential.
#[tokio::test]
async fn calls_without_the_platform_credential_are_refused() {
    let reg = common::start(Arc::new(MemoryStore::new()), Authenticator::new(None, None)).await;
    for presented in [None, Some("wrong"), Some("test-platform-credential-")] {
        let mut c = client(&reg.grpc_url, presented).await;
        let e = c
            .delete_repository(pb::DeleteRepositoryRequest { app: "api".into() })
            .await
            .unwrap_err();
        assert_eq!(
            e.code(),
            tonic::Code::Unauthenticated,
            "{presented:?}: {e:?}"
        );
        let e = c
            .garbage_collect(pb::GarbageCollectRequest { dry_run: false })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        let e = c
            .import(pb::ImportRequest {
                app: "api".into(),
                image: "127.0.0.1:1/x:1".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
    }
    // The right credential gets through (nothing to delete in an empty registry).
    let mut c = client(&reg.grpc_url, Some(common::CREDENTIAL)).await;
    c.garbage_collect(pb::GarbageCollectRequest { dry_run: true })
        .await
        .unwrap();
    reg.stop().await;
}
