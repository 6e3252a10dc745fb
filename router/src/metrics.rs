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
    // `requests` resolved per label pair once: `with_label_values` hashes the labels and takes
    // the vector's lock on every call.
    by_label: [[IntCounter; CLASSES.len()]; 2],
}

const CLASSES: [&str; 6] = ["0xx", "1xx", "2xx", "3xx", "4xx", "5xx"];
const SCHEMES: [&str; 2] = ["http", "https"];

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
        let by_label =
            SCHEMES.map(|scheme| CLASSES.map(|class| requests.with_label_values(&[scheme, class])));
        Metrics {
            requests,
            upstream_failures,
            by_label,
        }
    })
}

/// Counts one answered request.
pub fn count(tls: bool, status: u16) {
    let class = usize::from(status / 100).min(CLASSES.len() - 1);
    metrics().by_label[usize::from(tls)][class].inc();
}
