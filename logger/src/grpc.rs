//! gRPC adapter: converts and delegates, no logic.

use workflow_proto::logger::v1::{InfoRequest, InfoResponse, logger_server::Logger};

/// The daemon's gRPC service.
#[derive(Debug, Clone, Default)]
pub struct Service {
    /// Filled into `Info` answers.
    pub info: InfoResponse,
}

#[tonic::async_trait]
impl Logger for Service {
    async fn info(
        &self,
        _request: tonic::Request<InfoRequest>,
    ) -> Result<tonic::Response<InfoResponse>, tonic::Status> {
        Ok(tonic::Response::new(self.info.clone()))
    }
}
