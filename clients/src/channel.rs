//! Connections to other daemons: lazily connected channels, per-call deadlines, and retries of
//! idempotent calls on transient failures (one place, so every client behaves alike).

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use workflow_common::grpc::{CREDENTIAL_HEADER, PlatformCredential};

use crate::error::{ClientError, Result};

/// How one call is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallOptions {
    /// Each attempt fails with `Timeout` after this long; `None` for streams that last.
    pub deadline: Option<Duration>,
    /// Extra attempts after a transient failure (`Unavailable`, `Timeout`); 0 for calls that
    /// are not idempotent.
    pub retries: usize,
}

impl CallOptions {
    /// An idempotent read: 10 s per attempt, 3 retries with backoff.
    pub const READ: CallOptions = CallOptions {
        deadline: Some(Duration::from_secs(10)),
        retries: 3,
    };
    /// A call that must not be repeated, with no deadline (long work reporting progress).
    pub const ONCE: CallOptions = CallOptions {
        deadline: None,
        retries: 0,
    };
}

/// Attaches the platform credential to every call of a channel.
#[derive(Debug, Clone)]
pub struct Attach(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Attach {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert(CREDENTIAL_HEADER, self.0.clone());
        Ok(req)
    }
}

/// A channel whose calls carry the platform credential.
pub type AuthChannel = InterceptedService<Channel, Attach>;

/// A lazily connected channel to one daemon.
#[derive(Debug)]
pub struct Connection {
    service: &'static str,
    url: String,
    endpoint: Endpoint,
    attach: Attach,
    // Made on first use: creating a channel needs a running async runtime.
    channel: OnceLock<Channel>,
}

impl Connection {
    /// A connection to `service` at `url` (e.g. `http://127.0.0.1:8030`), presenting
    /// `credential` on every call; nothing is dialled until the first call, so a daemon starts
    /// while its peers are still down.
    pub fn new(
        service: &'static str,
        url: &str,
        credential: &PlatformCredential,
    ) -> Result<Connection> {
        let bad = |message: String| ClientError::Endpoint {
            service,
            url: url.to_string(),
            message,
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad("expected an http:// or https:// URL".into()));
        }
        // PlatformCredential only holds visible ASCII, which is valid metadata.
        let attach = Attach(
            credential
                .expose()
                .parse()
                .map_err(|_| bad("the platform credential is not valid metadata".into()))?,
        );
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| bad(e.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .tcp_keepalive(Some(Duration::from_secs(30)))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        Ok(Connection {
            service,
            url: url.to_string(),
            endpoint,
            attach,
            channel: OnceLock::new(),
        })
    }

    /// The daemon's name, for messages.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The URL, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The channel (connected on first use, reconnected by tonic after failures), attaching
    /// the platform credential.
    pub fn channel(&self) -> AuthChannel {
        let ch = self
            .channel
            .get_or_init(|| self.endpoint.connect_lazy())
            .clone();
        InterceptedService::new(ch, self.attach.clone())
    }

    /// The error for `status` received on `op`.
    pub fn error(&self, op: &'static str, status: &tonic::Status) -> ClientError {
        ClientError::from_status(self.service, op, status)
    }

    /// Runs `call` on the channel with `options`: each attempt bounded by the deadline,
    /// transient failures retried with exponential backoff.
    pub async fn call<T, F, Fut>(
        &self,
        op: &'static str,
        options: CallOptions,
        mut call: F,
    ) -> Result<T>
    where
        F: FnMut(AuthChannel) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        let attempt = || {
            let fut = call(self.channel());
            async move {
                let outcome = match options.deadline {
                    Some(d) => match tokio::time::timeout(d, fut).await {
                        Ok(r) => r,
                        Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                            "no answer within {d:?}"
                        ))),
                    },
                    None => fut.await,
                };
                outcome.map_err(|s| self.error(op, &s))
            }
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(options.retries)
            .with_jitter();
        attempt
            .retry(backoff)
            .when(|e: &ClientError| {
                use workflow_proto::status::HasKind;
                e.kind().is_transient()
            })
            .notify(|e, wait| {
                tracing::debug!(service = self.service, op, error = %e, ?wait, "retrying");
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use workflow_proto::status::{HasKind, Kind};

    use super::*;

    fn cred() -> PlatformCredential {
        PlatformCredential::new("test-credential").unwrap()
    }

    #[test]
    fn refuses_urls_without_a_scheme() {
        let e = Connection::new("logger", "127.0.0.1:8030", &cred()).unwrap_err();
        assert!(e.to_string().contains("127.0.0.1:8030"), "{e}");
    }

    #[tokio::test]
    async fn retries_transient_failures_only() {
        let c = Connection::new("logger", "http://127.0.0.1:9", &cred()).unwrap();
        let tries = AtomicUsize::new(0);
        let r: Result<()> = c
            .call("tail", CallOptions::READ, |_| {
                tries.fetch_add(1, Ordering::SeqCst);
                async { Err(tonic::Status::unavailable("down")) }
            })
            .await;
        assert_eq!(r.unwrap_err().kind(), Kind::Unavailable);
        assert_eq!(tries.load(Ordering::SeqCst), 4);

        let tries = AtomicUsize::new(0);
        let r: Result<()> = c
            .call("tail", CallOptions::READ, |_| {
                tries.fetch_add(1, Ordering::SeqCst);
                async { Err(tonic::Status::invalid_argument("bad app")) }
            })
            .await;
        let e = r.unwrap_err();
        assert_eq!((e.kind(), e.message()), (Kind::Invalid, "bad app"));
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_deadline_ends_an_attempt() {
        let c = Connection::new("logger", "http://127.0.0.1:9", &cred()).unwrap();
        let r: Result<()> = c
            .call(
                "tail",
                CallOptions {
                    deadline: Some(Duration::from_millis(20)),
                    retries: 0,
                },
                |_| std::future::pending(),
            )
            .await;
        assert_eq!(r.unwrap_err().kind(), Kind::Timeout);
    }
}
