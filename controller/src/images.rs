//! Importing prebuilt images (`deis pull`) into the platform registry through
//! registry-sync, over gRPC.

use workflow_clients::registry::{ImportRequest, RegistryClient};
use workflow_clients::{ClientError, Kind};
use workflow_proto::status::HasKind;

use crate::error::{Error, Result};

/// One progress step of an import, for the user (streamed as JSON lines by `deis pull`).
pub use workflow_clients::registry::ImportEvent as Progress;

/// An image now in the platform registry.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// Pullable reference by digest in the platform registry.
    pub image: String,
    /// First exposed TCP port of the image, if any.
    pub port: Option<u16>,
}

/// Copies images from other registries into the platform's.
#[tonic::async_trait]
pub trait ImageImporter: Send + Sync + 'static {
    /// Imports `image` into the repository of `app`, reporting progress.
    async fn import(
        &self,
        app: &str,
        image: &str,
        credentials: Option<(String, String)>,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Imported>;

    /// Deletes the repository of `app` (its images and tags) when the app is destroyed, so a
    /// new app of the same name starts empty. The default has nothing to delete.
    async fn delete_repository(&self, app: &str) -> Result<()> {
        let _ = app;
        Ok(())
    }
}

/// registry-sync at a gRPC URL.
pub struct RegistrySync {
    client: RegistryClient,
}

impl RegistrySync {
    /// registry-sync's gRPC URL (`http://127.0.0.1:8020`).
    pub fn new(url: &str, credential: &workflow_clients::PlatformCredential) -> Result<Self> {
        let client = RegistryClient::new(url, credential)
            .map_err(|e| Error::Internal(format!("registry-sync client: {e}")))?;
        Ok(RegistrySync { client })
    }
}

#[tonic::async_trait]
impl ImageImporter for RegistrySync {
    async fn import(
        &self,
        app: &str,
        image: &str,
        credentials: Option<(String, String)>,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Imported> {
        let (username, password) = credentials.unwrap_or_default();
        let req = ImportRequest {
            app: app.to_string(),
            image: image.to_string(),
            username,
            password,
            insecure: false,
            tag: String::new(),
        };
        let result = self
            .client
            .import(req, progress)
            .await
            .map_err(|e| import_error(image, &e))?;
        Ok(Imported {
            image: result.image,
            port: u16::try_from(result.port).ok().filter(|p| *p > 0),
        })
    }

    async fn delete_repository(&self, app: &str) -> Result<()> {
        let removed = self.client.delete_repository(app).await.map_err(|e| {
            Error::Unavailable(format!("deleting the registry repository of {app}: {e}"))
        })?;
        tracing::info!(app, removed, "registry repository deleted");
        Ok(())
    }
}

/// What the user is told when an import fails: their mistake (400) or ours (503).
fn import_error(image: &str, e: &ClientError) -> Error {
    match e.kind() {
        Kind::Invalid | Kind::NotFound | Kind::Denied | Kind::Unauthenticated => {
            Error::BadRequest(format!("pulling {image}: {}", e.message()))
        }
        _ => Error::Unavailable(format!("pulling {image}: {e}")),
    }
}
