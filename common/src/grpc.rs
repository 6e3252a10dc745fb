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

static GRPC_REQUESTS: std::sync::LazyLock<prometheus::IntCounter> =
    std::sync::LazyLock::new(|| {
        let c = prometheus::IntCounter::new(
            "workflow_grpc_requests_total",
            "gRPC requests received by this process",
        )
        .expect("valid metric");
        crate::metrics::register(&c);
        c
    });

/// Counts every request into [`GRPC_REQUESTS`].
#[derive(Debug, Clone)]
pub struct Counted<S>(S);

impl<S, B> tower::Service<http::Request<B>> for Counted<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        GRPC_REQUESTS.inc();
        self.0.call(req)
    }
}

/// Serves `routes` on an already bound listener until `shutdown`, draining open calls for the
/// grace period and then cutting them.
pub async fn serve(
    routes: Routes,
    listener: tokio::net::TcpListener,
    shutdown: &crate::shutdown::Shutdown,
) -> Result<(), tonic::transport::Error> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let stop = shutdown.token().clone().cancelled_owned();
    let server = tonic::transport::Server::builder()
        .layer(tower::layer::layer_fn(Counted))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, stop);
    shutdown.drain("grpc", server).await.unwrap_or(Ok(()))
}
