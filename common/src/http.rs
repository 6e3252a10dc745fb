//! Serving an axum router on a bound listener with the daemons' shutdown, and the limits every
//! HTTP listener has (issue 10):
//!
//! - a connection cap per listener: past it, new connections wait in the kernel's accept queue
//!   (we stop accepting), so one flooded listener cannot use up the process's descriptors and
//!   starve the others;
//! - a header-read timeout, which also bounds idle keep-alive connections: hyper starts it
//!   whenever a connection waits for a request's head, first or next;
//! - early rejects: an answer sent before the request body was read (401, 400, 413...) says
//!   `Connection: close`, because clients such as Go's net/http write headers and body
//!   separately and would otherwise reuse a connection whose unread body is still in flight.
//!
//! [`raise_fd_limit`] lifts the process's open-file soft limit to the hard limit at start.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;

use crate::shutdown::Shutdown;

/// An axum-style service the listeners can serve: infallible, cloneable per connection, and
/// sendable with its futures. Implemented for every such service (axum's `Router` included).
pub trait HttpService:
    tower::Service<
        axum::extract::Request,
        Response = axum::response::Response,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S> HttpService for S where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// The limits of one HTTP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request's head must arrive within this long after the connection is ready for it
    /// (so idle keep-alive connections are closed after it too).
    pub header_read_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(30),
            max_connections: 2048,
        }
    }
}

/// Serves `app` on `listener` with the default [`Limits`] until `shutdown`, draining open
/// requests for the grace period and then cutting them (a follow that never ends does not
/// keep the process alive).
pub async fn serve<S>(
    listener: tokio::net::TcpListener,
    app: S,
    shutdown: &Shutdown,
    what: &'static str,
) -> std::io::Result<()>
where
    S: HttpService,
{
    serve_with(listener, app, shutdown, what, Limits::default()).await
}

/// [`serve`] with explicit limits.
pub async fn serve_with<S>(
    listener: tokio::net::TcpListener,
    app: S,
    shutdown: &Shutdown,
    what: &'static str,
    limits: Limits,
) -> std::io::Result<()>
where
    S: HttpService,
{
    let stop = shutdown.token().clone();
    let served = accept_loop(listener, app, stop, what, limits);
    shutdown.drain(what, served).await.unwrap_or(Ok(()))
}

async fn accept_loop<S>(
    listener: tokio::net::TcpListener,
    app: S,
    stop: tokio_util::sync::CancellationToken,
    what: &'static str,
    limits: Limits,
) -> std::io::Result<()>
where
    S: HttpService,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // Dropping the loop (the grace period ran out) aborts every connection with it.
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let slot = tokio::select! {
            () = stop.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            s = slots.clone().acquire_owned() => s.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning; the listener survives.
                    tracing::warn!(listener = what, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(EarlyReject(app.clone()));
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let first_byte = limits.header_read_timeout;
        conns.spawn(async move {
            // hyper's header-read timer starts only once the protocol is known, i.e. after the
            // first bytes: a client that never sends any would hold its slot forever.
            let mut probe = [0u8; 1];
            if !matches!(
                tokio::time::timeout(first_byte, stream.peek(&mut probe)).await,
                Ok(Ok(n)) if n > 0
            ) {
                tracing::debug!(listener = what, %peer, "closed: nothing sent within the header-read timeout");
                drop(slot);
                return;
            }
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(listener = what, %peer, error = %e, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// Adds `Connection: close` to answers given before the request body was read to its end.
#[derive(Debug, Clone)]
struct EarlyReject<S>(S);

impl<S> tower::Service<hyper::Request<hyper::body::Incoming>> for EarlyReject<S>
where
    S: HttpService,
{
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Each call clones the service, which is polled ready there.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        use http_body::Body as _;
        let read = Arc::new(AtomicBool::new(false));
        let body = req.body();
        let empty = body.is_end_stream() || body.size_hint().upper() == Some(0);
        let req = req.map(|b| {
            Body::new(Tracked {
                inner: b,
                read: read.clone(),
            })
        });
        let mut inner = self.0.clone();
        Box::pin(async move {
            let ready = std::future::poll_fn(|cx| inner.poll_ready(cx)).await;
            let Ok(()) = ready;
            let mut res = inner.call(req).await?;
            if !empty && !read.load(Ordering::Acquire) {
                res.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            Ok(res)
        })
    }
}

/// A request body that records when it was read to its end.
struct Tracked {
    inner: hyper::body::Incoming,
    read: Arc<AtomicBool>,
}

impl http_body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(r, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read.store(true, Ordering::Release);
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Raises the open-file soft limit to the hard limit (a daemon holding many connections and
/// files must not fail at the distribution's default of 1024); returns the new limit.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}
