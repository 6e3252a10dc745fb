//! One request through the router: find the app by host, apply its settings (routable,
//! whitelist, maintenance, `https_only`), pick a backend (round robin; another one when
//! connecting fails before anything was sent), forward with the `X-Forwarded-*` headers and
//! hand the backend's answer ([`Reply`]) to [`crate::http1`], which streams it back (or, for
//! an accepted upgrade, turns the connection into a byte tunnel).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http::header::HeaderValue;
use http::{Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use workflow_common::shutdown::Shutdown;

use crate::access_log::{LogSink, RequestLog};
use crate::body::LogGuard;
use crate::config::Config;
use crate::error::UpstreamError;
use crate::io::Activity;
use crate::pages;
use crate::pool::Pool;
use crate::request::{ClientBody, RequestHead};
use crate::state::{Entry, State};
use crate::upstream::{self, Exchange, SendError};

/// What every connection of the router shares.
pub struct Shared {
    /// Settings.
    pub config: Config,
    /// The compiled route table.
    pub state: Arc<State>,
    /// Upstream connections.
    pub pool: Arc<Pool>,
    /// Request logs.
    pub sink: Arc<dyn LogSink>,
    /// The port `https_only` redirects name (none: 443).
    pub https_port: Option<u16>,
    /// Stop requests (tunnels are cut after the grace period).
    pub shutdown: Shutdown,
}

/// One client connection, as the request handler needs it.
pub struct ConnInfo {
    /// The client.
    pub peer: SocketAddr,
    /// The port the client connected to.
    pub local_port: u16,
    /// Arrived over TLS.
    pub tls: bool,
    // The client's address and the port as header values, made once per connection rather than
    // formatted per request.
    client_ip: HeaderValue,
    port_header: HeaderValue,
    /// The connection's activity clock (for the idle timeout, tunnels included).
    pub activity: Arc<Activity>,
    // The listener's connection slot, held as long as the connection (tunnel included) lasts.
    _permit: OwnedSemaphorePermit,
}

impl ConnInfo {
    pub(crate) fn new(
        peer: SocketAddr,
        local_port: u16,
        tls: bool,
        permit: OwnedSemaphorePermit,
    ) -> ConnInfo {
        let ip = peer.ip().to_canonical().to_string();
        ConnInfo {
            peer,
            local_port,
            tls,
            client_ip: HeaderValue::from_str(&ip).expect("an IP address is a header value"),
            port_header: HeaderValue::from(local_port),
            activity: Arc::new(Activity::default()),
            _permit: permit,
        }
    }
}

/// What answers a request.
#[derive(Debug)]
pub enum Reply {
    /// One of the router's own pages.
    Page(Response<Bytes>),
    /// The backend's answer, its body still to be read.
    Upstream(Exchange),
    /// The backend switched protocols (the client asked to): the connection becomes a tunnel.
    Upgrade(Exchange),
}

/// A request's answer and its log entry (written once the answer has been sent).
#[derive(Debug)]
pub struct Answer {
    /// The answer.
    pub reply: Reply,
    /// The request log, if the router keeps one.
    pub log: Option<LogGuard>,
}

/// How a request was answered, for the log. Borrows from the request's host text: nothing is
/// copied for a log nobody keeps.
struct Outcome<'a> {
    reply: Reply,
    app: Option<Arc<Entry>>,
    server_name: Cow<'a, str>,
    upstream: Option<SocketAddr>,
    upstream_time: Option<Duration>,
}

impl<'a> Outcome<'a> {
    fn page(
        resp: Response<Bytes>,
        app: Option<&Arc<Entry>>,
        server_name: Cow<'a, str>,
    ) -> Outcome<'a> {
        Outcome {
            reply: Reply::Page(resp),
            app: app.cloned(),
            server_name,
            upstream: None,
            upstream_time: None,
        }
    }

    fn status(&self) -> u16 {
        match &self.reply {
            Reply::Page(p) => p.status().as_u16(),
            Reply::Upstream(e) | Reply::Upgrade(e) => e.head.status.as_u16(),
        }
    }
}

/// Serves one request: routes it, forwards it (its body read from `body` as the backend
/// takes it) or answers it with a page of the router's own.
pub async fn handle<I>(
    shared: &Arc<Shared>,
    conn: &ConnInfo,
    req: &RequestHead,
    body: &mut ClientBody<'_, I>,
) -> Answer
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let http_host: &str = match req.headers.get("host") {
        // Not text: the bad-host page names what it can.
        Some(v) => std::str::from_utf8(v).unwrap_or("?"),
        None => req.target_authority().unwrap_or(""),
    };
    // What the log needs from the request.
    let log = shared.sink.enabled().then(|| {
        let header_text = |name: &str| {
            req.headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let request_line = format!("{} {} {:?}", req.method, req.path_and_query(), req.version);
        (
            Instant::now(),
            Utc::now(),
            header_text("referer"),
            header_text("user-agent"),
            request_line,
        )
    });
    let out = match route(shared, conn, req, body.declared_length(), http_host) {
        Route::Answered(out) => *out,
        Route::Forward(entry, host) => {
            forward(shared, conn, req, body, entry, host, http_host).await
        }
    };
    let status = out.status();
    crate::metrics::count(conn.tls, status);
    let Some((started, time, referer, user_agent, request_line)) = log else {
        return Answer {
            reply: out.reply,
            log: None,
        };
    };
    let entry = RequestLog {
        time,
        app: out.app.map(|e| e.routes.app.clone()),
        remote: conn.peer.ip().to_canonical(),
        status,
        request: request_line,
        bytes_sent: 0,
        referer,
        user_agent,
        server_name: out.server_name.into_owned(),
        upstream: out.upstream,
        http_host: http_host.to_string(),
        upstream_response_time: out.upstream_time,
        request_time: Duration::ZERO,
    };
    Answer {
        reply: out.reply,
        log: Some(LogGuard {
            entry: Some(entry),
            sink: shared.sink.clone(),
            started,
        }),
    }
}

/// The host a request names: lowercase, without port or trailing dot; `None` when it is not a
/// plausible host name. Borrowed from `raw` when that needs no lowercasing.
pub fn normalize_host(raw: &str) -> Option<Cow<'_, str>> {
    let host = if let Some(rest) = raw.strip_prefix('[') {
        let end = rest.find(']')?;
        // After the bracket: nothing, or a port.
        match &rest[end + 1..] {
            "" => {}
            p if p
                .strip_prefix(':')
                .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit())) => {}
            _ => return None,
        }
        &raw[..end + 2]
    } else {
        match raw.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            Some(_) => return None,
            None => raw,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'[' | b']' | b':')
        });
    if !ok {
        return None;
    }
    Some(if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    })
}

/// Where a request goes: answered by the router itself, or forwarded to the app.
enum Route<'a> {
    // Boxed: the router's own pages are the rare path.
    Answered(Box<Outcome<'a>>),
    Forward(Arc<Entry>, Cow<'a, str>),
}

impl<'a> From<Outcome<'a>> for Route<'a> {
    fn from(o: Outcome<'a>) -> Route<'a> {
        Route::Answered(Box::new(o))
    }
}

fn route<'a>(
    shared: &Arc<Shared>,
    conn: &ConnInfo,
    req: &RequestHead,
    declared_length: Option<u64>,
    http_host: &'a str,
) -> Route<'a> {
    let Some(host) = normalize_host(http_host) else {
        return Outcome::page(pages::bad_host(http_host), None, Cow::Borrowed(http_host)).into();
    };
    let compiled = shared.state.current();
    let Some(entry) = compiled.lookup(&host, shared.state.domain()).cloned() else {
        return Outcome::page(pages::unknown_host(&host), None, host).into();
    };
    drop(compiled);
    let routes = &entry.routes;
    let app = routes.app.as_str();
    if !routes.routable {
        return Outcome::page(pages::unknown_host(&host), Some(&entry), host).into();
    }
    let client_ip = conn.peer.ip().to_canonical();
    if !routes.whitelist.is_empty() && !routes.whitelist.iter().any(|c| c.contains(client_ip)) {
        return Outcome::page(
            pages::forbidden(app, &client_ip.to_string()),
            Some(&entry),
            host,
        )
        .into();
    }
    if routes.maintenance {
        return Outcome::page(pages::maintenance(app), Some(&entry), host).into();
    }
    if routes.https_only && !conn.tls {
        let port = match shared.https_port {
            Some(p) if p != 443 => format!(":{p}"),
            _ => String::new(),
        };
        let path = req.path_and_query();
        let location = format!("https://{host}{port}{path}");
        return Outcome::page(pages::redirect(&location), Some(&entry), host).into();
    }
    if routes.backends.is_empty() {
        return Outcome::page(pages::no_backends(app), Some(&entry), host).into();
    }
    let limit = shared.config.max_body_bytes;
    if limit > 0
        && let Some(len) = declared_length
        && len > limit
    {
        return Outcome::page(pages::too_large(limit), Some(&entry), host).into();
    }
    Route::Forward(entry, host)
}

/// The headers a request's `Connection` header names as hop-by-hop (besides the standard
/// ones, which are never forwarded): they stay with this hop too.
fn connection_named(req: &RequestHead) -> Vec<&str> {
    req.headers
        .get_all("connection")
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        // `Host` names the app: no client may make it vanish on the way. (`Content-Length`
        // is always the router's own.)
        .filter(|n| {
            !n.is_empty()
                && !crate::wire::is_hop_by_hop(n.as_bytes())
                && !n.eq_ignore_ascii_case("host")
        })
        .collect()
}

/// The `Upgrade` a request asks for (with `Connection: upgrade`), if any.
fn upgrade_of(req: &RequestHead) -> Option<&[u8]> {
    if req.headers.has_token("connection", "upgrade") {
        req.headers.get("upgrade")
    } else {
        None
    }
}

async fn forward<'a, I>(
    shared: &Arc<Shared>,
    conn: &ConnInfo,
    req: &RequestHead,
    body: &mut ClientBody<'_, I>,
    entry: Arc<Entry>,
    host: Cow<'a, str>,
    http_host: &str,
) -> Outcome<'a>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let app = entry.routes.app.as_str();
    let upgrade = upgrade_of(req);

    // The forwarding headers, written after the client's own (replacing any it sent).
    let xff_appended;
    let xff = match req.headers.get_str("x-forwarded-for") {
        Some(prev) if !prev.trim().is_empty() => {
            xff_appended = format!("{prev}, {}", conn.peer.ip().to_canonical());
            xff_appended.as_bytes()
        }
        _ => conn.client_ip.as_bytes(),
    };
    let proto: &[u8] = if conn.tls { b"https" } else { b"http" };
    let start = request_start();
    let mut added: [(&str, &[u8]); 8] = [("", b""); 8];
    let mut n = 0;
    let mut add = |name, value| {
        added[n] = (name, value);
        n += 1;
    };
    // The Host header as sent (it is plain ASCII: other hosts got the bad-host page), or the
    // request target's authority when there was none.
    let host_sent = req.headers.get("host");
    if host_sent.is_none() {
        add("host", http_host.as_bytes());
    }
    add("x-forwarded-for", xff);
    add("x-forwarded-proto", proto);
    add("x-forwarded-port", conn.port_header.as_bytes());
    add(
        "x-forwarded-host",
        host_sent.unwrap_or(http_host.as_bytes()),
    );
    add("x-request-start", start.as_bytes());
    if let Some(u) = upgrade {
        add("connection", b"upgrade");
        add("upgrade", u);
    }
    let dropped = connection_named(req);
    let forwarded = upstream::Forwarded {
        added: &added[..n],
        dropped: &dropped,
    };
    // An upgrade request's body (if any) is the tunnel's; nothing goes before the 101.
    let mut no_body = crate::body::Empty;

    // Whether the request may go out again after a pooled connection turned out closed.
    let repeatable = (upgrade.is_some() || body.declared_length() == Some(0))
        && upstream::idempotent(&req.method);
    let backends = &entry.routes.backends;
    let n = backends.len();
    let attempts = (shared.config.retries + 1).min(n);
    let first = entry.start();
    let mut last_error: Option<UpstreamError> = None;
    'backends: for i in 0..attempts {
        let addr = backends[(first + i) % n];
        loop {
            let (upstream_conn, fresh) = match shared.pool.take_idle(addr, repeatable) {
                Some(c) => (c, false),
                // Boxed: connecting is the rare path and its future is large; it stays out of
                // every request's future, which is moved by value per request.
                None => match Box::pin(shared.pool.connect(addr)).await {
                    Ok(c) => (c, true),
                    Err(e) => {
                        tracing::warn!(app, backend = %addr, error = %e, "backend unreachable; trying the next one");
                        crate::metrics::metrics().upstream_failures.inc();
                        last_error = Some(e);
                        continue 'backends;
                    }
                },
            };
            let sent_at = Instant::now();
            let exchange = async {
                if upgrade.is_some() {
                    upstream::send(upstream_conn, req, &forwarded, &mut no_body).await
                } else {
                    upstream::send(upstream_conn, req, &forwarded, &mut *body).await
                }
            };
            let result = tokio::time::timeout(shared.config.upstream_timeout, exchange).await;
            let fail = |response: Response<Bytes>| Outcome {
                reply: Reply::Page(response),
                app: Some(entry.clone()),
                server_name: host.clone(),
                upstream: Some(addr),
                upstream_time: Some(sent_at.elapsed()),
            };
            match result {
                Err(_) => {
                    tracing::warn!(app, backend = %addr, "backend did not answer within the upstream timeout");
                    return fail(pages::gateway_timeout(app));
                }
                Ok(Ok(exchange)) => {
                    let upstream_time = sent_at.elapsed();
                    return Outcome {
                        reply: respond(exchange, upgrade.is_some(), app),
                        app: Some(entry.clone()),
                        server_name: host,
                        upstream: Some(addr),
                        upstream_time: Some(upstream_time),
                    };
                }
                Ok(Err(SendError::Retry(e))) => {
                    if fresh {
                        tracing::warn!(app, backend = %addr, error = %e, "backend refused the request before it was sent; trying the next one");
                        last_error = Some(e);
                        continue 'backends;
                    }
                    // A pooled connection the backend had closed: try another one.
                    tracing::debug!(app, backend = %addr, error = %e, "pooled connection was closed; retrying");
                }
                Ok(Err(SendError::Client { error })) => {
                    if error.is::<crate::body::TooLarge>() {
                        return fail(pages::too_large(shared.config.max_body_bytes));
                    }
                    tracing::debug!(app, peer = %conn.peer, error = %error, "client's body failed");
                    return fail(pages::bad_request(&format!("its body: {error}")));
                }
                Ok(Err(SendError::Failed { error })) => {
                    tracing::warn!(app, backend = %addr, error = %error, "backend failed mid-request");
                    return fail(pages::bad_gateway(app));
                }
            }
        }
    }
    if let Some(e) = &last_error {
        tracing::warn!(app, error = %e, attempts, "no backend could take the request");
    }
    Outcome {
        reply: Reply::Page(pages::bad_gateway(app)),
        app: Some(entry.clone()),
        server_name: host,
        upstream: None,
        upstream_time: None,
    }
}

/// `X-Request-Start: t=<unix seconds>.<milliseconds>` for now.
fn request_start() -> HeaderValue {
    use std::io::Write as _;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut buf = [0u8; 32];
    let mut w = &mut buf[..];
    let _ = write!(w, "t={}.{:03}", now.as_secs(), now.subsec_millis());
    let len = 32 - w.len();
    HeaderValue::from_bytes(&buf[..len]).expect("digits and a dot are a header value")
}

/// The backend's answer for the client: a `101` the client did not ask for is a broken
/// backend.
fn respond(exchange: Exchange, client_asked_upgrade: bool, app: &str) -> Reply {
    if exchange.head.status == StatusCode::SWITCHING_PROTOCOLS {
        if client_asked_upgrade {
            return Reply::Upgrade(exchange);
        }
        tracing::warn!(app, backend = %exchange.addr(), "backend switched protocols unasked");
        return Reply::Page(pages::bad_gateway(app));
    }
    Reply::Upstream(exchange)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalized_or_refused() {
        assert_eq!(
            normalize_host("Hello.Localhost:8080").as_deref(),
            Some("hello.localhost")
        );
        assert_eq!(
            normalize_host("hello.localhost.").as_deref(),
            Some("hello.localhost")
        );
        assert_eq!(normalize_host("[::1]:80").as_deref(), Some("[::1]"));
        assert_eq!(normalize_host("a b"), None);
        assert_eq!(normalize_host("<x>"), None);
        assert_eq!(normalize_host("host:port"), None);
        assert_eq!(normalize_host(""), None);
        assert_eq!(normalize_host("[::1"), None);
        assert_eq!(normalize_host("[::1]garbage"), None);
        assert_eq!(normalize_host("[::1]:8080").as_deref(), Some("[::1]"));
    }

    #[test]
    fn headers_the_connection_header_names_stay_behind() {
        let req = RequestHead::parse_for_test(
            b"GET / HTTP/1.1\r\nConnection: keep-alive, x-secret, Upgrade\r\n\r\n",
        );
        assert_eq!(connection_named(&req), vec!["x-secret"]);
    }

    #[test]
    fn upgrades_need_connection_upgrade() {
        let req = RequestHead::parse_for_test(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
        assert_eq!(upgrade_of(&req), None);
        let req = RequestHead::parse_for_test(
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n",
        );
        assert_eq!(upgrade_of(&req).unwrap(), b"websocket");
    }
}
