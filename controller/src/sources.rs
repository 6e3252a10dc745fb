//! What the builder keeps of an app (its git repository, build cache and source archives),
//! deleted through the builder's gRPC API when the app is destroyed.

use workflow_clients::builder::BuilderClient;

use crate::error::{Error, Result};

/// Where an app's pushed source and build cache are kept.
#[tonic::async_trait]
pub trait SourceStore: Send + Sync + 'static {
    /// Deletes everything kept for the app named `app` with uuid `app_uuid`, so a new app of
    /// the same name starts empty. Deleting nothing succeeds.
    async fn delete_app(&self, app: &str, app_uuid: &str) -> Result<()>;
}

/// The builder at a gRPC URL.
pub struct Builder {
    client: BuilderClient,
}

impl Builder {
    /// The builder's gRPC URL (`http://127.0.0.1:8010`).
    pub fn new(url: &str, credential: &workflow_clients::PlatformCredential) -> Result<Self> {
        let client = BuilderClient::new(url, credential)
            .map_err(|e| Error::Internal(format!("builder client: {e}")))?;
        Ok(Builder { client })
    }
}

#[tonic::async_trait]
impl SourceStore for Builder {
    async fn delete_app(&self, app: &str, app_uuid: &str) -> Result<()> {
        let r = self.client.delete_app(app, app_uuid).await.map_err(|e| {
            Error::Unavailable(format!(
                "deleting the git repository and build cache of {app} in the builder at {}: {e}",
                self.client.url()
            ))
        })?;
        tracing::info!(
            app,
            repository = r.repository_deleted,
            objects = r.objects_deleted,
            "builder data deleted"
        );
        Ok(())
    }
}
