//! Bodies on both sides of the proxy, streamed frame by frame, never buffered whole.
//!
//! - [`RequestBody`]: the client's body going upstream, cut off past the size limit
//! - [`ResponseBody`]: what goes to the client, either a page of the router's own or the
//!   backend's body (which returns its connection to the pool once it has ended); it writes
//!   the request log when it is done (or dropped: the client left)

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::access_log::{LogSink, RequestLog};
use crate::upstream::UpstreamBody;

/// The error of a streamed body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request body exceeded the limit.
#[derive(Debug, thiserror::Error)]
#[error("request body larger than {limit} bytes")]
pub struct TooLarge {
    /// The limit.
    pub limit: u64,
}

/// The client's body on its way upstream.
#[derive(Debug)]
pub struct RequestBody {
    inner: Option<Incoming>,
    limit: u64,
    seen: u64,
}

impl RequestBody {
    /// Streams `inner`, failing once more than `limit` bytes passed (0: no limit).
    pub fn new(inner: Incoming, limit: u64) -> RequestBody {
        RequestBody {
            inner: Some(inner),
            limit,
            seen: 0,
        }
    }

    /// No body.
    pub fn empty() -> RequestBody {
        RequestBody {
            inner: None,
            limit: 0,
            seen: 0,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen += data.len() as u64;
                    if this.limit > 0 && this.seen > this.limit {
                        this.inner = None;
                        return Poll::Ready(Some(Err(Box::new(TooLarge { limit: this.limit }))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
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

#[derive(Debug)]
enum Inner {
    Full(Option<Bytes>),
    Upstream(UpstreamBody),
}

/// What goes back to the client.
#[derive(Debug)]
pub struct ResponseBody {
    inner: Inner,
    // Boxed: the response is moved by value through several futures per request, and most
    // routers' responses carry no log.
    log: Option<Box<LogGuard>>,
}

impl ResponseBody {
    /// A body of the router's own.
    pub fn full(bytes: Bytes) -> ResponseBody {
        ResponseBody {
            inner: Inner::Full((!bytes.is_empty()).then_some(bytes)),
            log: None,
        }
    }

    /// A backend's body (it returns its connection to the pool at its end).
    pub fn upstream(body: UpstreamBody) -> ResponseBody {
        ResponseBody {
            inner: Inner::Upstream(body),
            log: None,
        }
    }

    /// Attaches the request log, written when this body is done or dropped.
    pub fn with_log(mut self, log: LogGuard) -> ResponseBody {
        self.log = Some(Box::new(log));
        self
    }

    fn count(&mut self, n: usize) {
        if let Some(e) = self.log.as_mut().and_then(|l| l.entry.as_mut()) {
            e.bytes_sent += n as u64;
        }
    }

    fn finished(&mut self) {
        // Log now rather than when hyper drops the body: the response is complete.
        self.log.take();
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = match &mut this.inner {
            Inner::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            // A broken upstream body is not reused; the client sees a cut response.
            Inner::Upstream(body) => Pin::new(body).poll_frame(cx),
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    let n = d.len();
                    this.count(n);
                }
            }
            Poll::Ready(None) => this.finished(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(b) => b.is_none(),
            Inner::Upstream(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Inner::Upstream(b) => b.size_hint(),
        }
    }
}
