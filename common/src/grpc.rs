//! A tonic server builder with health checking and reflection attached, and the platform
//! credential every daemon-to-daemon call carries ([`PlatformCredential`], checked in constant
//! time by one layer, [`RequireCredential`], on every gRPC port; health and reflection stay open
//! so probes keep working).

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
/// grace period and then cutting them. Every call but health and reflection must carry the
/// platform credential as `guard` says. Uses the default [`GrpcLimits`].
pub async fn serve(
    routes: Routes,
    listener: tokio::net::TcpListener,
    shutdown: &crate::shutdown::Shutdown,
    guard: Guard,
) -> Result<(), tonic::transport::Error> {
    serve_with(routes, listener, shutdown, guard, GrpcLimits::default()).await
}

/// The connection limits of one gRPC port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcLimits {
    /// Connections served at once (more wait in the kernel's accept queue).
    pub max_connections: usize,
    /// A connection must have sent the HTTP/2 preface and its first frame header within this
    /// long of being accepted, or it is closed: silent or trickling peers hold no slot.
    pub handshake_timeout: std::time::Duration,
    /// How often an idle connection is pinged; one not answering within
    /// `keepalive_timeout` is closed.
    pub keepalive_interval: std::time::Duration,
    /// See `keepalive_interval`.
    pub keepalive_timeout: std::time::Duration,
}

impl Default for GrpcLimits {
    /// 1,024 connections, 10 s to complete the handshake, pings every 30 s answered within 10 s.
    fn default() -> Self {
        GrpcLimits {
            max_connections: MAX_CONNECTIONS,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            keepalive_interval: std::time::Duration::from_secs(30),
            keepalive_timeout: std::time::Duration::from_secs(10),
        }
    }
}

/// Default of [`GrpcLimits::handshake_timeout`].
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// [`serve`] with explicit limits.
pub async fn serve_with(
    routes: Routes,
    listener: tokio::net::TcpListener,
    shutdown: &crate::shutdown::Shutdown,
    guard: Guard,
    limits: GrpcLimits,
) -> Result<(), tonic::transport::Error> {
    let incoming = capped_incoming_with(
        listener,
        limits.max_connections,
        Some(limits.handshake_timeout),
    );
    let stop = shutdown.token().clone().cancelled_owned();
    let server = tonic::transport::Server::builder()
        // Dead or silent peers are found and dropped instead of holding a slot forever.
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        .layer(tower::layer::layer_fn(Counted))
        .layer(guard)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, stop);
    shutdown.drain("grpc", server).await.unwrap_or(Ok(()))
}

/// gRPC metadata key carrying the platform credential on daemon-to-daemon calls.
pub const CREDENTIAL_HEADER: &str = "x-workflow-platform-credential";

/// The older name of [`CREDENTIAL_HEADER`] on the controller's hooks (Deis's builder key);
/// accepted too, so existing builders keep working.
pub const LEGACY_CREDENTIAL_HEADER: &str = "x-deis-builder-auth";

/// Why a credential was refused at configuration time.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// Empty, or not printable ASCII (it travels as gRPC metadata).
    #[error("invalid platform credential ({len} bytes): {reason}")]
    Invalid {
        /// Its length (the value itself is a secret and never printed).
        len: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The shared secret every daemon presents to the others (`workflow up` generates it into the
/// data dir; a cluster configures it). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct PlatformCredential(std::sync::Arc<str>);

impl std::fmt::Debug for PlatformCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PlatformCredential(<{} bytes>)", self.0.len())
    }
}

impl PlatformCredential {
    /// Checks `secret` can travel as metadata: not empty, visible ASCII only.
    pub fn new(secret: &str) -> Result<PlatformCredential, CredentialError> {
        let bad = |reason| CredentialError::Invalid {
            len: secret.len(),
            reason,
        };
        if secret.is_empty() {
            return Err(bad("it is empty"));
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad("only visible ASCII characters are allowed"));
        }
        Ok(PlatformCredential(secret.into()))
    }

    /// The secret, to attach to a call.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this credential, in time independent of where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        // Hashing first makes the comparison length-independent as well.
        let want = sha2::Sha256::digest(self.0.as_bytes());
        let got = sha2::Sha256::digest(presented);
        want.ct_eq(&got).into()
    }
}

use sha2::Digest as _;

/// Which calls of a port need the platform credential.
#[derive(Debug, Clone)]
pub enum Protect {
    /// Every call but health checks and reflection (daemons only other daemons call).
    All,
    /// Only calls whose path starts with one of these (`/package.Service/`); the controller's
    /// user services authenticate users themselves.
    Services(&'static [&'static str]),
}

/// The credential check of one gRPC port, as a tower layer.
#[derive(Debug, Clone)]
pub struct Guard {
    credential: PlatformCredential,
    protect: Protect,
}

impl Guard {
    /// Requires `credential` on the calls `protect` names.
    pub fn new(credential: PlatformCredential, protect: Protect) -> Guard {
        Guard {
            credential,
            protect,
        }
    }

    fn needs_credential(&self, path: &str) -> bool {
        const OPEN: &[&str] = &["/grpc.health.v1.Health/", "/grpc.reflection."];
        if OPEN.iter().any(|p| path.starts_with(p)) {
            return false;
        }
        match &self.protect {
            Protect::All => true,
            Protect::Services(s) => s.iter().any(|p| path.starts_with(p)),
        }
    }

    fn admits<B>(&self, req: &http::Request<B>) -> bool {
        if !self.needs_credential(req.uri().path()) {
            return true;
        }
        let h = req.headers();
        h.get(CREDENTIAL_HEADER)
            .or_else(|| h.get(LEGACY_CREDENTIAL_HEADER))
            .is_some_and(|v| self.credential.matches(v.as_bytes()))
    }
}

impl<S> tower::Layer<S> for Guard {
    type Service = RequireCredential<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequireCredential {
            guard: self.clone(),
            inner,
        }
    }
}

/// Answers `UNAUTHENTICATED` to calls without the platform credential (see [`Guard`]).
#[derive(Debug, Clone)]
pub struct RequireCredential<S> {
    guard: Guard,
    inner: S,
}

type BoxFuture<T, E> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for RequireCredential<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<S::Response, S::Error>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if self.guard.admits(&req) {
            return Box::pin(self.inner.call(req));
        }
        let path = req.uri().path().to_string();
        tracing::warn!(%path, "refused a gRPC call without the platform credential");
        let status = tonic::Status::unauthenticated(format!(
            "{path}: missing or wrong platform credential (metadata {CREDENTIAL_HEADER})"
        ));
        Box::pin(std::future::ready(Ok(status.into_http())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_must_be_visible_ascii() {
        assert!(PlatformCredential::new("").is_err());
        assert!(PlatformCredential::new("a b").is_err());
        let e = PlatformCredential::new("s3cr\u{e9}t")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3cr"), "the secret is never printed: {e}");
        let c = PlatformCredential::new("s3cret").unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(c.matches(b"s3cret"));
        assert!(!c.matches(b"s3cre"));
        assert!(!c.matches(b""));
    }

    #[test]
    fn health_and_reflection_stay_open() {
        let c = PlatformCredential::new("k").unwrap();
        let all = Guard::new(c.clone(), Protect::All);
        assert!(!all.needs_credential("/grpc.health.v1.Health/Check"));
        assert!(!all.needs_credential("/grpc.reflection.v1.ServerReflection/Info"));
        assert!(all.needs_credential("/workflow.logger.v1.Logger/Tail"));
        let hooks = Guard::new(c, Protect::Services(&["/workflow.controller.v1.Hooks/"]));
        assert!(hooks.needs_credential("/workflow.controller.v1.Hooks/CheckAccess"));
        assert!(!hooks.needs_credential("/workflow.controller.v1.Apps/List"));
    }
}

/// Connections one gRPC port serves at once; more wait in the kernel's accept queue, so a
/// flood of one port leaves the process's descriptors to the others.
pub const MAX_CONNECTIONS: usize = 1024;

/// Bytes a client sends first on an HTTP/2 connection: the 24-byte preface and the 9-byte
/// header of its SETTINGS frame.
pub const HANDSHAKE_BYTES: usize = 24 + 9;

/// A served connection holding its slot of the port's cap until it closes, and closed (reads
/// fail with `TimedOut`) if its first [`HANDSHAKE_BYTES`] do not arrive before its deadline.
#[derive(Debug)]
pub struct CappedIo {
    io: tokio::net::TcpStream,
    _slot: tokio::sync::OwnedSemaphorePermit,
    /// Until the handshake bytes are in; `None` after (or with no timeout).
    handshake: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    received: usize,
}

impl tokio::io::AsyncRead for CappedIo {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut this.io).poll_read(cx, buf);
        let Some(deadline) = this.handshake.as_mut() else {
            return polled;
        };
        match polled {
            Poll::Ready(Ok(())) => {
                this.received += buf.filled().len() - before;
                if this.received >= HANDSHAKE_BYTES {
                    this.handshake = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // Polling the deadline registers the waker, so a silent peer is woken up for.
            Poll::Pending => match deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    tracing::debug!(
                        received = this.received,
                        "closing a gRPC connection that did not complete the HTTP/2 handshake in time"
                    );
                    Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the HTTP/2 handshake did not complete in time",
                    )))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl tokio::io::AsyncWrite for CappedIo {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for CappedIo {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// Accepts connections from `listener`, at most `cap` open at once: past it, accepting waits
/// for a connection to close. Accept errors (EMFILE...) back off instead of ending the server.
pub fn capped_incoming(
    listener: tokio::net::TcpListener,
    cap: usize,
) -> impl futures::Stream<Item = std::io::Result<CappedIo>> + Send + 'static {
    capped_incoming_with(listener, cap, None)
}

/// [`capped_incoming`] whose connections must complete the HTTP/2 handshake within
/// `handshake_timeout` of being accepted.
pub fn capped_incoming_with(
    listener: tokio::net::TcpListener,
    cap: usize,
    handshake_timeout: Option<std::time::Duration>,
) -> impl futures::Stream<Item = std::io::Result<CappedIo>> + Send + 'static {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(cap.max(1)));
    futures::stream::unfold((listener, slots), move |(listener, slots)| async move {
        let slot = slots.clone().acquire_owned().await.ok()?;
        loop {
            match listener.accept().await {
                Ok((io, _)) => {
                    let _ = io.set_nodelay(true);
                    let handshake = handshake_timeout.map(|t| Box::pin(tokio::time::sleep(t)));
                    let io = CappedIo {
                        io,
                        _slot: slot,
                        handshake,
                        received: 0,
                    };
                    return Some((Ok(io), (listener, slots)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "gRPC accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    })
}
