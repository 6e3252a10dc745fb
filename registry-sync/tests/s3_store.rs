//! The object-store contract against a real S3 server (the moto peer).

mod common;

use workflow_registry_sync::store::contract::run_contract;
use workflow_registry_sync::store::s3::S3Store;

#[tokio::test]
async fn s3_store_passes_the_contract() {
    let Some(config) = common::s3_config() else {
        return;
    };
    let store = S3Store::connect(&config).await.unwrap();
    run_contract(&store).await;
}

#[tokio::test]
async fn s3_store_without_prefix_and_bucket_creation_is_idempotent() {
    let Some(mut config) = common::s3_config() else {
        return;
    };
    config.prefix = String::new();
    config.bucket = format!("wf-{}", uuid::Uuid::new_v4().simple());
    let store = S3Store::connect(&config).await.unwrap();
    // Connecting again to the existing bucket works.
    S3Store::connect(&config).await.unwrap();
    run_contract(&store).await;
}

#[tokio::test]
async fn s3_errors_name_the_operation() {
    let Some(mut config) = common::s3_config() else {
        return;
    };
    config.bucket = format!("missing-{}", uuid::Uuid::new_v4().simple());
    config.create_bucket = false;
    let store = S3Store::connect(&config).await.unwrap();
    use workflow_registry_sync::store::ObjectStore;
    let e = store
        .put_bytes("k", bytes::Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("s3 put object \"k\""), "{e}");
}
