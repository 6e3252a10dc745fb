//! A tonic server builder with health checking and reflection attached.

use tonic::service::Routes;
use tonic_health::server::HealthReporter;

/// Health reporter plus the routes every daemon serves (health + reflection).
pub struct BaseRoutes {
    /// Marks services serving or not.
    pub health: HealthReporter,
    /// Health and reflection routes; add the daemon's services to it.
    pub routes: Routes,
}

/// Builds the health and reflection services for `workflow_proto`'s descriptors.
pub fn base_routes() -> BaseRoutes {
    let (health, health_service) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(workflow_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the compiled-in descriptor set is valid");
    let routes = Routes::new(health_service).add_service(reflection);
    BaseRoutes { health, routes }
}

/// Serves `routes` on an already bound listener until `shutdown` completes.
pub async fn serve(
    routes: Routes,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
