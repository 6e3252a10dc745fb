//! Serving an axum router on a bound listener with the daemons' shutdown.

use crate::shutdown::Shutdown;

/// Serves `app` on `listener` until `shutdown`, draining open requests for the grace period and
/// then cutting them (a follow that never ends does not keep the process alive).
pub async fn serve<M, S>(
    listener: tokio::net::TcpListener,
    app: M,
    shutdown: &Shutdown,
    what: &'static str,
) -> std::io::Result<()>
where
    M: for<'a> tower::Service<
            axum::serve::IncomingStream<'a, tokio::net::TcpListener>,
            Error = std::convert::Infallible,
            Response = S,
        > + Send
        + 'static,
    for<'a> <M as tower::Service<axum::serve::IncomingStream<'a, tokio::net::TcpListener>>>::Future:
        Send,
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let stop = shutdown.token().clone().cancelled_owned();
    let server = axum::serve(listener, app).with_graceful_shutdown(stop);
    shutdown
        .drain(what, std::future::IntoFuture::into_future(server))
        .await
        .unwrap_or(Ok(()))
}
