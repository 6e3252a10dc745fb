//! gRPC adapter: converts and delegates, no logic.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::mpsc;
use workflow_proto::registry::v1 as pb;
use workflow_proto::registry::v1::registry_sync_server::RegistrySync;

use crate::import::{self, ImportSettings, Progress};
use crate::registry::Registry;

/// The daemon's gRPC service.
#[derive(Debug, Clone)]
pub struct Service {
    /// Filled into `Info` answers.
    pub info: pb::InfoResponse,
    /// The registry's data.
    pub registry: Arc<Registry>,
    /// Import settings.
    pub import: ImportSettings,
    /// Grace period of garbage collection.
    pub gc_grace: std::time::Duration,
}

fn progress_to_pb(p: Progress) -> pb::ImportProgress {
    use pb::import_progress::Event;
    let event = match p {
        Progress::Message(m) => Event::Message(m),
        Progress::Layer {
            digest,
            size,
            copied,
            status,
        } => Event::Layer(pb::LayerProgress {
            digest,
            size,
            copied,
            status: status.to_string(),
        }),
    };
    pb::ImportProgress { event: Some(event) }
}

fn outcome_to_pb(o: import::ImportOutcome) -> pb::ImportProgress {
    pb::ImportProgress {
        event: Some(pb::import_progress::Event::Done(pb::ImportResult {
            digest: o.digest,
            image: o.image,
            entrypoint: o.entrypoint,
            cmd: o.cmd,
            port: o.port.unwrap_or(0),
            exposed_ports: o.exposed_ports,
            source_digest: o.source_digest,
            tag: o.tag,
        })),
    }
}

type ImportStream = Pin<Box<dyn Stream<Item = Result<pb::ImportProgress, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl RegistrySync for Service {
    async fn info(
        &self,
        _request: tonic::Request<pb::InfoRequest>,
    ) -> Result<tonic::Response<pb::InfoResponse>, tonic::Status> {
        Ok(tonic::Response::new(self.info.clone()))
    }

    type ImportStream = ImportStream;

    async fn import(
        &self,
        request: tonic::Request<pb::ImportRequest>,
    ) -> Result<tonic::Response<Self::ImportStream>, tonic::Status> {
        let r = request.into_inner();
        let req = import::ImportRequest {
            app: r.app,
            image: r.image,
            username: r.username,
            password: r.password,
            insecure: r.insecure,
            tag: r.tag,
        };
        let (out_tx, out_rx) = mpsc::channel(64);
        let (p_tx, mut p_rx) = mpsc::channel(64);
        let registry = self.registry.clone();
        let settings = self.import.clone();
        tokio::spawn(async move {
            let fwd_tx = out_tx.clone();
            let forward = tokio::spawn(async move {
                while let Some(p) = p_rx.recv().await {
                    if fwd_tx.send(Ok(progress_to_pb(p))).await.is_err() {
                        break;
                    }
                }
            });
            let result = import::import(&registry, &settings, &req, p_tx).await;
            // All progress is out before the result.
            let _ = forward.await;
            let last = match result {
                Ok(o) => {
                    tracing::info!(app = %req.app, image = %req.image, digest = %o.digest, "image imported");
                    Ok(outcome_to_pb(o))
                }
                Err(e) => {
                    tracing::warn!(app = %req.app, image = %req.image, error = %e, "import failed");
                    Err(tonic::Status::from(e))
                }
            };
            let _ = out_tx.send(last).await;
        });
        Ok(tonic::Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(out_rx),
        )))
    }

    async fn garbage_collect(
        &self,
        request: tonic::Request<pb::GarbageCollectRequest>,
    ) -> Result<tonic::Response<pb::GarbageCollectResponse>, tonic::Status> {
        let r = self
            .registry
            .garbage_collect(self.gc_grace, request.into_inner().dry_run)
            .await?;
        Ok(tonic::Response::new(pb::GarbageCollectResponse {
            blobs_kept: r.kept,
            blobs_removed: r.removed,
            bytes_removed: r.bytes_removed,
        }))
    }

    async fn delete_repository(
        &self,
        request: tonic::Request<pb::DeleteRepositoryRequest>,
    ) -> Result<tonic::Response<pb::DeleteRepositoryResponse>, tonic::Status> {
        let n = self
            .registry
            .delete_repository(&request.into_inner().app)
            .await?;
        Ok(tonic::Response::new(pb::DeleteRepositoryResponse {
            manifests_removed: n,
        }))
    }
}
