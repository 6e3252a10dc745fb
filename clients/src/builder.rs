//! The builder's API for the other daemons: forgetting a destroyed app's repository, build
//! cache and source archives.

use workflow_common::grpc::PlatformCredential;
use workflow_proto::builder::v1 as pb;
use workflow_proto::builder::v1::builder_client::BuilderClient as Grpc;

use crate::channel::{CallOptions, Connection};
use crate::error::Result;

pub use pb::DeleteAppResponse;

/// The builder at a gRPC URL (connected on first use).
#[derive(Debug)]
pub struct BuilderClient {
    conn: Connection,
}

impl BuilderClient {
    /// A client of the builder at `url` (e.g. `http://127.0.0.1:8010`), presenting the
    /// platform credential.
    pub fn new(url: &str, credential: &PlatformCredential) -> Result<BuilderClient> {
        Ok(BuilderClient {
            conn: Connection::new("builder", url, credential)?,
        })
    }

    /// The builder's URL.
    pub fn url(&self) -> &str {
        self.conn.url()
    }

    /// Deletes the repository of app `app` and the build cache and source archives of the app
    /// with uuid `app_uuid`. Idempotent (deleting nothing succeeds), so it is retried.
    pub async fn delete_app(&self, app: &str, app_uuid: &str) -> Result<DeleteAppResponse> {
        self.conn
            .call("delete app", CallOptions::READ, |ch| async move {
                let req = pb::DeleteAppRequest {
                    app: app.to_string(),
                    app_uuid: app_uuid.to_string(),
                };
                Ok(Grpc::new(ch).delete_app(req).await?.into_inner())
            })
            .await
    }
}
