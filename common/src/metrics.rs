//! Prometheus metrics: one process-wide registry and its HTTP endpoint.

use axum::{Router, http::header, response::IntoResponse, routing::get};
use prometheus::{Encoder, TextEncoder};

/// The process-wide registry every daemon registers its metrics in.
pub fn registry() -> &'static prometheus::Registry {
    prometheus::default_registry()
}

/// Renders every registered metric in the text exposition format.
pub fn render() -> String {
    let mut buf = Vec::new();
    let families = registry().gather();
    // Encoding into a Vec cannot fail for well-formed families.
    let _ = TextEncoder::new().encode(&families, &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// A router serving `GET /metrics`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route(
        "/metrics",
        get(|| async {
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                render(),
            )
                .into_response()
        }),
    )
}

/// Registers `collector`, ignoring a duplicate registration (tests start daemons repeatedly).
pub fn register<C: prometheus::core::Collector + Clone + 'static>(collector: &C) {
    let _ = registry().register(Box::new(collector.clone()));
}
