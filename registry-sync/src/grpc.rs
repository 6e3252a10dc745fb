//! gRPC adapter: converts and delegates, no logic.

use workflow_proto::registry::v1::{InfoRequest, InfoResponse, registry_sync_server::RegistrySync};

/// The daemon's gRPC service.
#[derive(Debug, Clone, Default)]
pub struct Service {
    /// Filled into `Info` answers.
    pub info: InfoResponse,
}

#[tonic::async_trait]
impl RegistrySync for Service {
    async fn info(
        &self,
        _request: tonic::Request<InfoRequest>,
    ) -> Result<tonic::Response<InfoResponse>, tonic::Status> {
        Ok(tonic::Response::new(self.info.clone()))
    }
}
