//! What bodies on both sides share: their error type, the size-limit error, the empty body,
//! and the request log written once an answer is done (or dropped: the client left). The
//! bodies themselves stream frame by frame, never buffered whole: the client's in
//! [`crate::request::ClientBody`], the backend's in [`crate::upstream::UpstreamBody`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::access_log::{LogSink, RequestLog};

/// The error of a streamed body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request body exceeded the limit.
#[derive(Debug, thiserror::Error)]
#[error("request body larger than {limit} bytes")]
pub struct TooLarge {
    /// The limit.
    pub limit: u64,
}

/// No body.
#[derive(Debug, Default, Clone, Copy)]
pub struct Empty;

impl Body for Empty {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        true
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(0)
    }
}

/// Writes the request log when the response is done.
pub struct LogGuard {
    /// The entry, completed on drop.
    pub entry: Option<RequestLog>,
    /// Where it goes.
    pub sink: Arc<dyn LogSink>,
    /// When the request arrived.
    pub started: tokio::time::Instant,
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGuard")
            .field("entry", &self.entry)
            .finish()
    }
}

impl LogGuard {
    /// Counts `n` more body bytes sent.
    pub fn sent(&mut self, n: u64) {
        if let Some(e) = self.entry.as_mut() {
            e.bytes_sent += n;
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(mut e) = self.entry.take() {
            e.request_time = self.started.elapsed();
            tracing::debug!(
                app = e.app.as_deref().unwrap_or("-"),
                status = e.status,
                host = %e.server_name,
                bytes = e.bytes_sent,
                "request"
            );
            self.sink.record(e);
        }
    }
}
