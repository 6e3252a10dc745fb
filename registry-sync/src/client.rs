//! Typed client for the controller: imports (`deis pull`) and maintenance calls.

use workflow_proto::registry::v1 as pb;
use workflow_proto::registry::v1::registry_sync_client::RegistrySyncClient;

pub use pb::{ImportRequest, ImportResult, LayerProgress};

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint URL is invalid or unreachable.
    #[error("connect to registry-sync at {url}: {message}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// registry-sync answered with an error (the status says what failed).
    #[error("registry-sync {op}: {0}", op = .1)]
    Status(tonic::Status, &'static str),
    /// The import stream ended without a result.
    #[error("registry-sync import of {0:?} ended without a result")]
    NoResult(String),
}

/// A progress event of an import, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportEvent {
    /// A line for the user.
    Message(String),
    /// A layer's progress.
    Layer(LayerProgress),
}

/// Connects (lazily) to registry-sync's gRPC URL, e.g. `http://127.0.0.1:8020`.
pub fn connect(url: &str) -> Result<RegistrySyncClient<tonic::transport::Channel>, ClientError> {
    let ep = tonic::transport::Endpoint::from_shared(url.to_string()).map_err(|e| {
        ClientError::Connect {
            url: url.to_string(),
            message: e.to_string(),
        }
    })?;
    Ok(RegistrySyncClient::new(ep.connect_lazy()))
}

/// Runs an import on registry-sync at `url`, calling `on_event` for each progress event, and
/// returns the result (digest in the platform registry, entrypoint/cmd, port).
pub async fn import(
    url: &str,
    request: ImportRequest,
    mut on_event: impl FnMut(ImportEvent) + Send,
) -> Result<ImportResult, ClientError> {
    let image = request.image.clone();
    let mut client = connect(url)?;
    let mut stream = client
        .import(request)
        .await
        .map_err(|s| ClientError::Status(s, "import"))?
        .into_inner();
    while let Some(msg) = stream
        .message()
        .await
        .map_err(|s| ClientError::Status(s, "import"))?
    {
        match msg.event {
            Some(pb::import_progress::Event::Message(m)) => on_event(ImportEvent::Message(m)),
            Some(pb::import_progress::Event::Layer(l)) => on_event(ImportEvent::Layer(l)),
            Some(pb::import_progress::Event::Done(r)) => return Ok(r),
            None => {}
        }
    }
    Err(ClientError::NoResult(image))
}

/// Forgets an app's repository (call when the app is destroyed).
pub async fn delete_repository(url: &str, app: &str) -> Result<u64, ClientError> {
    let r = connect(url)?
        .delete_repository(pb::DeleteRepositoryRequest {
            app: app.to_string(),
        })
        .await
        .map_err(|s| ClientError::Status(s, "delete repository"))?;
    Ok(r.into_inner().manifests_removed)
}

/// Runs a garbage collection.
pub async fn garbage_collect(
    url: &str,
    dry_run: bool,
) -> Result<pb::GarbageCollectResponse, ClientError> {
    let r = connect(url)?
        .garbage_collect(pb::GarbageCollectRequest { dry_run })
        .await
        .map_err(|s| ClientError::Status(s, "garbage collect"))?;
    Ok(r.into_inner())
}
