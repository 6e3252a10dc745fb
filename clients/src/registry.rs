//! registry-sync's API for the other daemons: image imports (`deis pull`) with their progress
//! events, repository deletion and garbage collection.

use serde::{Deserialize, Serialize};
use workflow_proto::registry::v1 as pb;
use workflow_proto::registry::v1::registry_sync_client::RegistrySyncClient;

use workflow_common::grpc::PlatformCredential;

use crate::channel::{CallOptions, Connection};
use crate::error::{ClientError, Result};

pub use pb::{GarbageCollectResponse, ImportRequest, ImportResult};

/// One progress step of an import, as the controller streams it to users
/// (`POST /v2/apps/<app>/builds/?progress=true`, one JSON object per line:
/// `{"message": "..."}` or `{"layer": {"digest": .., "size": .., "copied": .., "status": ..}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportEvent {
    /// A line of text for the user.
    Message(String),
    /// A layer's progress.
    Layer(LayerProgress),
}

/// How far one layer of an import is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerProgress {
    /// The layer's digest.
    pub digest: String,
    /// Its size in bytes, as the manifest announces it.
    pub size: u64,
    /// Bytes copied so far.
    pub copied: u64,
    /// `exists` (already stored, skipped), `copying` or `done`.
    pub status: String,
}

impl From<pb::LayerProgress> for LayerProgress {
    fn from(l: pb::LayerProgress) -> Self {
        LayerProgress {
            digest: l.digest,
            size: l.size,
            copied: l.copied,
            status: l.status,
        }
    }
}

/// registry-sync at a gRPC URL (connected on first use).
#[derive(Debug)]
pub struct RegistryClient {
    conn: Connection,
}

impl RegistryClient {
    /// A client of registry-sync at `url` (e.g. `http://127.0.0.1:8020`), presenting the
    /// platform credential.
    pub fn new(url: &str, credential: &PlatformCredential) -> Result<RegistryClient> {
        Ok(RegistryClient {
            conn: Connection::new("registry-sync", url, credential)?,
        })
    }

    /// Imports `request.image`, calling `on_event` for each progress event, and returns where
    /// the image now is in the platform registry. Not retried: an import reports progress.
    pub async fn import(
        &self,
        request: ImportRequest,
        mut on_event: impl FnMut(ImportEvent) + Send,
    ) -> Result<ImportResult> {
        let image = request.image.clone();
        let mut stream = self
            .conn
            .call("import", CallOptions::ONCE, |ch| {
                let request = request.clone();
                async move {
                    Ok(RegistrySyncClient::new(ch)
                        .import(request)
                        .await?
                        .into_inner())
                }
            })
            .await?;
        loop {
            let msg = stream
                .message()
                .await
                .map_err(|s| self.conn.error("import", &s))?;
            match msg.and_then(|m| m.event) {
                Some(pb::import_progress::Event::Message(m)) => on_event(ImportEvent::Message(m)),
                Some(pb::import_progress::Event::Layer(l)) => {
                    on_event(ImportEvent::Layer(l.into()))
                }
                Some(pb::import_progress::Event::Done(r)) => return Ok(r),
                None => {
                    return Err(ClientError::Protocol {
                        service: self.conn.service(),
                        op: "import",
                        message: format!("the import of {image:?} ended without a result"),
                    });
                }
            }
        }
    }

    /// Forgets an app's repository; returns how many manifests were removed.
    pub async fn delete_repository(&self, app: &str) -> Result<u64> {
        let r = self
            .conn
            .call("delete repository", CallOptions::READ, |ch| async move {
                let req = pb::DeleteRepositoryRequest {
                    app: app.to_string(),
                };
                Ok(RegistrySyncClient::new(ch)
                    .delete_repository(req)
                    .await?
                    .into_inner())
            })
            .await?;
        Ok(r.manifests_removed)
    }

    /// Runs a garbage collection (`dry_run` only reports).
    pub async fn garbage_collect(&self, dry_run: bool) -> Result<GarbageCollectResponse> {
        self.conn
            .call("garbage collect", CallOptions::ONCE, |ch| async move {
                let req = pb::GarbageCollectRequest { dry_run };
                Ok(RegistrySyncClient::new(ch)
                    .garbage_collect(req)
                    .await?
                    .into_inner())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_events_have_the_documented_json_shape() {
        let m = serde_json::to_string(&ImportEvent::Message("Pulling".into())).unwrap();
        assert_eq!(m, r#"{"message":"Pulling"}"#);
        let l = ImportEvent::Layer(LayerProgress {
            digest: "sha256:ab".into(),
            size: 3,
            copied: 1,
            status: "copying".into(),
        });
        let text = serde_json::to_string(&l).unwrap();
        assert_eq!(
            text,
            r#"{"layer":{"digest":"sha256:ab","size":3,"copied":1,"status":"copying"}}"#
        );
        assert_eq!(serde_json::from_str::<ImportEvent>(&text).unwrap(), l);
    }
}
