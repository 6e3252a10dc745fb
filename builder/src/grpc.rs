//! gRPC adapter: converts and delegates, no logic.

use std::sync::Arc;

use workflow_proto::builder::v1::{
    DeleteAppRequest, DeleteAppResponse, InfoRequest, InfoResponse, builder_server::Builder,
};

use crate::git::GitServer;

/// The daemon's gRPC service.
#[derive(Debug, Clone)]
pub struct Service {
    /// Filled into `Info` answers.
    pub info: InfoResponse,
    /// Repositories and builds, for `DeleteApp`.
    pub git: Arc<GitServer>,
}

#[tonic::async_trait]
impl Builder for Service {
    async fn info(
        &self,
        _request: tonic::Request<InfoRequest>,
    ) -> Result<tonic::Response<InfoResponse>, tonic::Status> {
        Ok(tonic::Response::new(self.info.clone()))
    }

    async fn delete_app(
        &self,
        request: tonic::Request<DeleteAppRequest>,
    ) -> Result<tonic::Response<DeleteAppResponse>, tonic::Status> {
        let r = request.into_inner();
        let (repository_deleted, objects_deleted) =
            self.git.delete_app(&r.app, &r.app_uuid).await?;
        Ok(tonic::Response::new(DeleteAppResponse {
            repository_deleted,
            objects_deleted,
        }))
    }
}
