//! Importing prebuilt images (`deis pull`) into the platform registry through
//! registry-sync, over gRPC.

use workflow_proto::registry::v1::ImportRequest;
use workflow_registry_sync::client::{ImportEvent, import};

use crate::error::{Error, Result};

/// One progress step of an import, for the user.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    /// A line of text.
    Message(String),
    /// A layer: `status` is `exists`, `copying` or `done`.
    Layer {
        /// Layer digest.
        digest: String,
        /// Size in bytes.
        size: u64,
        /// Bytes copied so far.
        copied: u64,
        /// State of the layer.
        status: String,
    },
}

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
}

/// registry-sync at a gRPC URL.
pub struct RegistrySync {
    url: String,
}

impl RegistrySync {
    /// registry-sync's gRPC URL (`http://127.0.0.1:8020`).
    pub fn new(url: &str) -> Self {
        RegistrySync {
            url: url.to_string(),
        }
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
        let result = import(&self.url, req, |e| match e {
            ImportEvent::Message(m) => progress(Progress::Message(m)),
            ImportEvent::Layer(l) => progress(Progress::Layer {
                digest: l.digest,
                size: l.size,
                copied: l.copied,
                status: l.status,
            }),
        })
        .await
        .map_err(|e| match &e {
            workflow_registry_sync::client::ClientError::Status(s, _)
                if matches!(
                    s.code(),
                    tonic::Code::InvalidArgument
                        | tonic::Code::NotFound
                        | tonic::Code::PermissionDenied
                        | tonic::Code::Unauthenticated
                ) =>
            {
                Error::BadRequest(format!("pulling {image}: {}", s.message()))
            }
            _ => Error::Unavailable(format!("pulling {image}: {e}")),
        })?;
        Ok(Imported {
            image: result.image,
            port: u16::try_from(result.port).ok().filter(|p| *p > 0),
        })
    }
}
