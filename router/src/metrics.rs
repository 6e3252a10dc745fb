//! The router's Prometheus metrics (bounded labels: scheme and status class).

use std::sync::OnceLock;

use prometheus::{IntCounter, IntCounterVec, Opts};

/// The router's counters, registered once in the process-wide registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Requests answered, by `scheme` (http, https) and `class` (1xx..5xx).
    pub requests: IntCounterVec,
    /// Backends that could not be reached (each failed attempt).
    pub upstream_failures: IntCounter,
}

/// The process-wide instance.
pub fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let requests = IntCounterVec::new(
            Opts::new(
                "workflow_router_requests_total",
                "Requests answered by the router",
            ),
            &["scheme", "class"],
        )
        .expect("valid metric definition");
        let upstream_failures = IntCounter::new(
            "workflow_router_upstream_failures_total",
            "Attempts to reach a backend that failed",
        )
        .expect("valid metric definition");
        workflow_common::metrics::register(&requests);
        workflow_common::metrics::register(&upstream_failures);
        Metrics {
            requests,
            upstream_failures,
        }
    })
}

/// Counts one answered request.
pub fn count(tls: bool, status: u16) {
    const CLASSES: [&str; 6] = ["0xx", "1xx", "2xx", "3xx", "4xx", "5xx"];
    let class = CLASSES[usize::from(status / 100).min(5)];
    metrics()
        .requests
        .with_label_values(&[if tls { "https" } else { "http" }, class])
        .inc();
}
