//! The controller's Prometheus metrics (bounded label sets only).

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let c = IntCounterVec::new(
        Opts::new(
            "workflow_controller_http_requests_total",
            "REST requests by method and status class",
        ),
        &["method", "status"],
    )
    .expect("valid metric");
    workflow_common::metrics::register(&c);
    c
});

static HTTP_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    let h = HistogramVec::new(
        HistogramOpts::new(
            "workflow_controller_http_request_seconds",
            "REST request latency",
        ),
        &["method"],
    )
    .expect("valid metric");
    workflow_common::metrics::register(&h);
    h
});

fn method_label(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        _ => "other",
    }
}

fn status_label(s: u16) -> &'static str {
    match s {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Records one REST request.
pub fn observe_http(method: &str, status: u16, elapsed: Duration) {
    let m = method_label(method);
    HTTP_REQUESTS
        .with_label_values(&[m, status_label(status)])
        .inc();
    HTTP_SECONDS
        .with_label_values(&[m])
        .observe(elapsed.as_secs_f64());
}
