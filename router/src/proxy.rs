//! One request through the router: find the app by host, apply its settings (routable,
//! whitelist, maintenance, `https_only`), pick a backend (round robin; another one when
//! connecting fails before anything was sent), forward with the `X-Forwarded-*` headers and
//! stream the answer back. Upgrades (WebSocket) become a byte tunnel between the two sides.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use workflow_common::shutdown::Shutdown;

use crate::access_log::{LogSink, RequestLog};
use crate::body::{LogGuard, RequestBody, ResponseBody};
use crate::config::Config;
use crate::error::UpstreamError;
use crate::io::{Activity, Gated};
use crate::pages;
use crate::pool::Pool;
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
    /// The connection's activity clock (upgraded tunnels keep the idle timeout).
    pub activity: Arc<Activity>,
    // An upgraded tunnel outlives hyper's connection future: it holds the listener's
    // connection slot until it ends.
    pub(crate) permit: Arc<OwnedSemaphorePermit>,
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
            permit: Arc::new(permit),
        }
    }
}

/// How a request was answered, for the log. Borrows from the request's host text: nothing is
/// copied for a log nobody keeps.
struct Outcome<'a> {
    response: Response<ResponseBody>,
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
            response: resp.map(ResponseBody::full),
            app: app.cloned(),
            server_name,
            upstream: None,
            upstream_time: None,
        }
    }
}

/// Serves one request.
pub async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let host_header = req.headers().get(header::HOST).cloned();
    let http_host: Cow<'_, str> = match &host_header {
        Some(v) => String::from_utf8_lossy(v.as_bytes()),
        None => req
            .uri()
            .authority()
            .map_or(Cow::Borrowed(""), |a| Cow::Owned(a.to_string())),
    };
    // What the log needs from the request, taken before the request moves on.
    let log = shared.sink.enabled().then(|| {
        let header_text = |name: HeaderName| {
            req.headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let request_line = format!(
            "{} {} {:?}",
            req.method(),
            req.uri().path_and_query().map_or("/", |p| p.as_str()),
            req.version()
        );
        (
            Instant::now(),
            Utc::now(),
            header_text(header::REFERER),
            header_text(header::USER_AGENT),
            request_line,
        )
    });
    // One await point, one level deep: every level of nested async fns holding the request
    // grows the future that is moved per request.
    let out = match route(&shared, &conn, &req, &http_host) {
        Route::Answered(out) => *out,
        Route::Forward(entry, host) => forward(&shared, &conn, req, entry, host, &http_host).await,
    };
    crate::metrics::count(conn.tls, out.response.status().as_u16());
    let Some((started, time, referer, user_agent, request_line)) = log else {
        return Ok(out.response);
    };
    let entry = RequestLog {
        time,
        app: out.app.map(|e| e.routes.app.clone()),
        remote: conn.peer.ip().to_canonical(),
        status: out.response.status().as_u16(),
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
    let log = LogGuard {
        entry: Some(entry),
        sink: shared.sink.clone(),
        started,
    };
    Ok(out.response.map(|b| b.with_log(log)))
}

/// The host a request names: lowercase, without port or trailing dot; `None` when it is not a
/// plausible host name. Borrowed from `raw` when that needs no lowercasing.
pub fn normalize_host(raw: &str) -> Option<Cow<'_, str>> {
    let host = if let Some(rest) = raw.strip_prefix('[') {
        let end = rest.find(']')?;
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
    req: &Request<Incoming>,
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
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let location = format!("https://{host}{port}{path}");
        return Outcome::page(pages::redirect(&location), Some(&entry), host).into();
    }
    if routes.backends.is_empty() {
        return Outcome::page(pages::no_backends(app), Some(&entry), host).into();
    }
    let limit = shared.config.max_body_bytes;
    if limit > 0
        && let Some(len) = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        && len > limit
    {
        return Outcome::page(pages::too_large(limit), Some(&entry), host).into();
    }
    Route::Forward(entry, host)
}

/// The headers a request's `Connection` header names as hop-by-hop (besides the standard
/// ones, which are never forwarded): they stay with this hop too.
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .filter(|n| !upstream::is_hop_by_hop(n.as_str()))
        .collect()
}

/// The `Upgrade` a request asks for (with `Connection: upgrade`), if any.
fn upgrade_of(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if asks {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    }
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

async fn forward<'a>(
    shared: &Arc<Shared>,
    conn: &ConnInfo,
    mut req: Request<Incoming>,
    entry: Arc<Entry>,
    host: Cow<'a, str>,
    http_host: &str,
) -> Outcome<'a> {
    let app = entry.routes.app.as_str();
    let upgrade = upgrade_of(req.headers());
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();

    // The forwarding headers, written after the client's own (replacing any it sent).
    let headers = &parts.headers;
    let xff_appended;
    let xff = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
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
    let host_sent = headers.get(header::HOST).map(HeaderValue::as_bytes);
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
    if let Some(u) = &upgrade {
        add("connection", b"upgrade");
        add("upgrade", u.as_bytes());
    }
    let dropped = connection_named(headers);
    let forwarded = upstream::Forwarded {
        added: &added[..n],
        dropped: &dropped,
    };
    // The request line names only the path and query (`upstream` writes it): an absolute-form
    // request (a proxy request) loses its scheme and authority there.
    let mut body = if upgrade.is_some() {
        // An upgrade request's body (if any) is the tunnel's; nothing goes before the 101.
        drop(body);
        RequestBody::empty()
    } else {
        RequestBody::new(body, shared.config.max_body_bytes)
    };

    let backends = &entry.routes.backends;
    let n = backends.len();
    let attempts = (shared.config.retries + 1).min(n);
    let first = entry.start();
    let mut last_error: Option<UpstreamError> = None;
    'backends: for i in 0..attempts {
        let addr = backends[(first + i) % n];
        loop {
            let (upstream_conn, fresh) = match shared.pool.take_idle(addr) {
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
            let result = tokio::time::timeout(
                shared.config.upstream_timeout,
                upstream::send(upstream_conn, &parts, &forwarded, &mut body),
            )
            .await;
            let fail = |response: Response<Bytes>| Outcome {
                response: response.map(ResponseBody::full),
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
                    let response = respond(shared, conn, exchange, client_upgrade, app);
                    return Outcome {
                        response,
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
                Ok(Err(SendError::Failed { error, too_large })) => {
                    if too_large {
                        return fail(pages::too_large(shared.config.max_body_bytes));
                    }
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
        response: pages::bad_gateway(app).map(ResponseBody::full),
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

/// Turns the backend's response into the client's: hop-by-hop headers go, the body streams,
/// and an accepted upgrade becomes a tunnel.
fn respond(
    shared: &Arc<Shared>,
    conn: &ConnInfo,
    mut exchange: Exchange,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    app: &str,
) -> Response<ResponseBody> {
    let head = &mut exchange.head;
    let upgrade = head.upgrade.take();
    let mut builder = Response::builder().status(head.status);
    if let Some(h) = builder.headers_mut() {
        *h = std::mem::take(&mut head.headers);
    }
    if head.status == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client) = client_upgrade else {
            tracing::warn!(app, backend = %exchange.addr(), "backend switched protocols unasked");
            return pages::bad_gateway(app).map(ResponseBody::full);
        };
        if let Some(h) = builder.headers_mut() {
            h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            if let Some(u) = upgrade {
                h.insert(header::UPGRADE, u);
            }
        }
        let idle = shared.config.idle_timeout;
        let activity = conn.activity.clone();
        let permit = conn.permit.clone();
        let shutdown = shared.shutdown.clone();
        let app = app.to_string();
        let upstream = exchange.into_tunnel();
        tokio::spawn(async move {
            tunnel(client, upstream, idle, activity, shutdown, &app).await;
            drop(permit);
        });
        return builder
            .body(ResponseBody::full(Bytes::new()))
            .unwrap_or_else(|_| pages::bad_gateway("").map(ResponseBody::full));
    }
    let body = ResponseBody::upstream(exchange.into_body(Some(shared.pool.clone())));
    match builder.body(body) {
        Ok(r) => r,
        Err(_) => pages::bad_gateway(app).map(ResponseBody::full),
    }
}

/// Copies bytes both ways between an upgraded client and backend until either side closes,
/// the connection idles out, or the shutdown grace period ends.
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    (mut upstream, early): (tokio::net::TcpStream, Bytes),
    idle: Duration,
    activity: Arc<Activity>,
    shutdown: Shutdown,
    app: &str,
) {
    let client = match client.await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(app, error = %e, "upgrade did not complete");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    // What the backend sent right after its 101 goes first.
    if !early.is_empty()
        && let Err(e) = tokio::io::AsyncWriteExt::write_all(&mut client, &early).await
    {
        tracing::debug!(app, error = %e, "tunnel ended");
        return;
    }
    // Watched apart from the copy, which wakes the task on every chunk.
    let watch = Gated::new(async move {
        tokio::select! {
            () = activity.idle(idle) => true,
            () = shutdown.deadline() => false,
        }
    });
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
            if let Err(e) = r {
                tracing::debug!(app, error = %e, "tunnel ended");
            }
        }
        idled = watch => if idled {
            tracing::debug!(app, "tunnel idle; closing");
        },
    }
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
    }

    #[test]
    fn headers_the_connection_header_names_stay_behind() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret, Upgrade"),
        );
        let named = connection_named(&h);
        assert_eq!(named, vec![HeaderName::from_static("x-secret")]);
    }

    #[test]
    fn upgrades_need_connection_upgrade() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert_eq!(upgrade_of(&h), None);
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert_eq!(upgrade_of(&h).unwrap(), "websocket");
    }
}
