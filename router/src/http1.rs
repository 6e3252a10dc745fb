//! The client side of HTTP/1.1: one connection's requests read, proxied and answered in its
//! own task, one after another (pipelined requests wait their turn).
//!
//! A request head is parsed in place ([`RequestHead`]: spans into its bytes, no header map);
//! its body ([`ClientBody`]) is read from the connection only as the backend takes it; the
//! answer is written with the first part of its body in the same write. Like nginx, and
//! unlike a general HTTP server library, nothing is converted to a header map and back on
//! the way through.
//!
//! Bad input closes the connection after a page: a malformed head (400), one longer than
//! `max_header_bytes` (431), one not finished within `header_read_timeout` (408), a request
//! whose body length is unknowable (400: `Transfer-Encoding` other than chunked, or with a
//! `Content-Length`, or conflicting lengths).

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::{Method, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::body::{BoxError, LogGuard, TooLarge};
use crate::chunked::{self, Decoder, Step};
use crate::pages;
use crate::proxy::{self, ConnInfo, Reply, Shared};

/// The most header lines a request may have.
const MAX_HEADERS: usize = 100;
/// Read size for the connection's buffer.
const READ_CHUNK: usize = 8 * 1024;
/// Body bytes written together with the response head when they are already at hand.
const COALESCE: usize = 16 * 1024;

/// A parsed request head; names, values and the target are spans of its bytes.
#[derive(Debug)]
pub struct RequestHead {
    bytes: Bytes,
    /// The method.
    pub method: Method,
    target: (u32, u32),
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    spans: Vec<[u32; 4]>,
}

impl RequestHead {
    fn slice(&self, (at, len): (u32, u32)) -> &[u8] {
        &self.bytes[at as usize..(at + len) as usize]
    }

    /// The request target as sent (origin-form `/path?q`, absolute-form, `*`, ...).
    pub fn target(&self) -> &str {
        // httparse accepts only visible ASCII in the target.
        std::str::from_utf8(self.slice(self.target)).unwrap_or("/")
    }

    /// The path and query: the target without a scheme and authority.
    pub fn path_and_query(&self) -> &str {
        let t = self.target();
        if t.starts_with('/') || t == "*" {
            return t;
        }
        match t.find("://") {
            Some(i) => {
                let rest = &t[i + 3..];
                rest.find(['/', '?']).map_or("/", |j| &rest[j..])
            }
            None => t,
        }
    }

    /// The authority of an absolute-form target, if it is one.
    pub fn target_authority(&self) -> Option<&str> {
        let t = self.target();
        let rest = &t[t.find("://")? + 3..];
        Some(&rest[..rest.find(['/', '?']).unwrap_or(rest.len())])
    }

    /// Every header line: name (as sent) and value.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.spans.iter().map(|&[n, nl, v, vl]| {
            let name = std::str::from_utf8(self.slice((n, nl))).unwrap_or("");
            (name, self.slice((v, vl)))
        })
    }

    /// The values of the header `name` (any case).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first value of the header `name` (any case).
    pub fn get<'a>(&'a self, name: &'a str) -> Option<&'a [u8]> {
        self.get_all(name).next()
    }

    /// The first value of `name` as text, if it is.
    pub fn get_str<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Whether a comma-separated header (`Connection`) lists `token`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name)
            .filter_map(|v| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    fn into_spans(self) -> Vec<[u32; 4]> {
        self.spans
    }

    /// A complete head from `bytes` (tests).
    #[cfg(test)]
    pub fn parse_for_test(bytes: &[u8]) -> RequestHead {
        let mut buf = BytesMut::from(bytes);
        parse_head(&mut buf, &mut Vec::new())
            .expect("a valid head")
            .expect("a complete head")
    }
}

/// Why a head could not be read.
#[derive(Debug)]
enum HeadError {
    /// Malformed: 400.
    Bad(String),
    /// Longer than the limit: 431.
    TooLarge,
    /// Not complete within the header timeout: 408.
    Timeout,
    /// The connection failed or closed mid-head: nothing to answer.
    Gone,
}

/// Parses a complete request head off the front of `buf`; `None`: not complete yet.
fn parse_head(
    buf: &mut BytesMut,
    spans: &mut Vec<[u32; 4]>,
) -> Result<Option<RequestHead>, HeadError> {
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(e) => return Err(HeadError::Bad(e.to_string())),
    };
    let base = buf.as_ptr() as usize;
    let off = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
    let method = req.method.unwrap_or("GET");
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| HeadError::Bad(format!("method {method:?}")))?;
    let path = req.path.unwrap_or("/");
    // Origin-form, absolute-form, or `*` for OPTIONS: the router is no forward proxy
    // (CONNECT's authority-form) and forwards nothing it cannot make a path of.
    let usable = path.starts_with('/')
        || (path == "*" && method == Method::OPTIONS)
        || (method != Method::CONNECT
            && path.split_once("://").is_some_and(|(scheme, _)| {
                !scheme.is_empty()
                    && scheme
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            }));
    if !usable {
        return Err(HeadError::Bad(format!("request target {path:?}")));
    }
    let target = (off(path.as_bytes()), path.len() as u32);
    let version = if req.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    spans.clear();
    for h in req.headers.iter() {
        spans.push([
            off(h.name.as_bytes()),
            h.name.len() as u32,
            off(h.value),
            h.value.len() as u32,
        ]);
    }
    let bytes = buf.split_to(len).freeze();
    Ok(Some(RequestHead {
        bytes,
        method,
        target,
        version,
        spans: std::mem::take(spans),
    }))
}

/// How a request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked(Decoder),
}

fn framing_of(head: &RequestHead) -> Result<Framing, &'static str> {
    let mut length: Option<u64> = None;
    for v in head.get_all("content-length") {
        let v = std::str::from_utf8(v).map_err(|_| "an invalid Content-Length")?;
        for part in v.split(',').map(str::trim) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err("an invalid Content-Length");
            }
            let n: u64 = part.parse().map_err(|_| "an invalid Content-Length")?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length values");
            }
            length = Some(n);
        }
    }
    let te: Vec<&[u8]> = head.get_all("transfer-encoding").collect();
    if te.is_empty() {
        return Ok(Framing::Length(length.unwrap_or(0)));
    }
    if length.is_some() {
        return Err("both Transfer-Encoding and Content-Length");
    }
    let last = std::str::from_utf8(te[te.len() - 1])
        .ok()
        .and_then(|v| v.rsplit(',').next())
        .map(str::trim)
        .unwrap_or("");
    if last.eq_ignore_ascii_case("chunked") {
        Ok(Framing::Chunked(Decoder::default()))
    } else {
        Err("a Transfer-Encoding that does not end in chunked")
    }
}

/// The client's request body, read from its connection as it is polled (by the upstream
/// exchange sending it on); cut off past the size limit.
pub struct ClientBody<'c, I> {
    io: &'c mut I,
    buf: &'c mut BytesMut,
    framing: Framing,
    limit: u64,
    seen: u64,
    /// `100 Continue` still to send before the first read (the client waits for it).
    continue_pending: Option<usize>,
    failed: bool,
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

impl<I> std::fmt::Debug for ClientBody<'_, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBody")
            .field("framing", &self.framing)
            .field("seen", &self.seen)
            .finish()
    }
}

impl<I> ClientBody<'_, I> {
    /// Whether the body was read to its end (the connection can take another request).
    pub fn is_complete(&self) -> bool {
        !self.failed
            && match self.framing {
                Framing::Length(n) => n == 0,
                Framing::Chunked(d) => d.is_done(),
            }
    }

    /// The length the client declared, if it did.
    pub fn declared_length(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(n) => Some(n),
            Framing::Chunked(_) => None,
        }
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> Body for ClientBody<'_, I> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        while let Some(sent) = this.continue_pending {
            match ready!(Pin::new(&mut *this.io).poll_write(cx, &CONTINUE[sent..])) {
                Ok(n) if sent + n < CONTINUE.len() && n > 0 => {
                    this.continue_pending = Some(sent + n)
                }
                Ok(n) if n > 0 => this.continue_pending = None,
                Ok(_) => return this.fail(std::io::ErrorKind::WriteZero.into()),
                Err(e) => return this.fail(e),
            }
        }
        loop {
            let step = match &mut this.framing {
                Framing::Length(0) => return Poll::Ready(None),
                Framing::Length(left) => {
                    if this.buf.is_empty() {
                        Step::More
                    } else {
                        let n = (*left).min(this.buf.len() as u64);
                        *left -= n;
                        Step::Data(this.buf.split_to(n as usize).freeze())
                    }
                }
                Framing::Chunked(d) => match d.decode(this.buf) {
                    Ok(s) => s,
                    Err(why) => {
                        return this
                            .fail(std::io::Error::new(std::io::ErrorKind::InvalidData, why));
                    }
                },
            };
            match step {
                Step::Data(data) => {
                    this.seen += data.len() as u64;
                    if this.limit > 0 && this.seen > this.limit {
                        this.failed = true;
                        return Poll::Ready(Some(Err(Box::new(TooLarge { limit: this.limit }))));
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Step::End => return Poll::Ready(None),
                Step::More => {}
            }
            if this.buf.capacity() - this.buf.len() < 1024 {
                this.buf.reserve(READ_CHUNK);
            }
            match ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut *this.io),
                cx,
                &mut *this.buf
            )) {
                Ok(0) => return this.fail(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(e) => return this.fail(e),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || matches!(self.framing, Framing::Length(0))
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(n) => SizeHint::with_exact(n),
            Framing::Chunked(_) => SizeHint::default(),
        }
    }
}

impl<I> ClientBody<'_, I> {
    fn fail(&mut self, e: std::io::Error) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.failed = true;
        Poll::Ready(Some(Err(Box::new(e))))
    }
}

/// Serves one client connection until it closes, fails, idles out (the caller's watcher) or
/// the router drains.
pub async fn serve<I>(mut io: I, info: Arc<ConnInfo>, shared: Arc<Shared>)
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut wbuf: Vec<u8> = Vec::with_capacity(1024);
    let mut spans: Vec<[u32; 4]> = Vec::with_capacity(16);
    // The first head must arrive within the header timeout of the accept; later ones within
    // the header timeout of their first byte (the wait between requests is the idle timeout).
    let mut deadline = Some(Instant::now() + shared.config.header_read_timeout);
    loop {
        let head = match read_head(&mut io, &mut rbuf, &mut spans, &shared, deadline).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(e) => {
                let page = match e {
                    HeadError::Bad(why) => {
                        tracing::debug!(peer = %info.peer, error = %why, "malformed request head");
                        pages::bad_request(&format!("malformed head ({why})"))
                    }
                    HeadError::TooLarge => pages::head_too_large(shared.config.max_header_bytes),
                    HeadError::Timeout => pages::request_timeout(),
                    HeadError::Gone => return,
                };
                crate::metrics::count(info.tls, page.status().as_u16());
                let _ = write_page(&mut io, &mut wbuf, &page, false, Version::HTTP_11, true).await;
                return;
            }
        };
        deadline = None;
        let framing = match framing_of(&head) {
            Ok(f) => f,
            Err(why) => {
                tracing::debug!(peer = %info.peer, error = why, "request body length unknowable");
                let page = pages::bad_request(why);
                crate::metrics::count(info.tls, page.status().as_u16());
                let _ = write_page(&mut io, &mut wbuf, &page, false, head.version, true).await;
                return;
            }
        };
        let has_body = !matches!(framing, Framing::Length(0));
        let expects_continue = has_body
            && head.version == Version::HTTP_11
            && head
                .get("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
        let client_keep_alive = if head.version == Version::HTTP_10 {
            head.has_token("connection", "keep-alive")
        } else {
            !head.has_token("connection", "close")
        };
        let is_head = head.method == Method::HEAD;
        let mut body = ClientBody {
            io: &mut io,
            buf: &mut rbuf,
            framing,
            limit: shared.config.max_body_bytes,
            seen: 0,
            continue_pending: expects_continue.then_some(0),
            failed: false,
        };
        let answer = proxy::handle(&shared, &info, &head, &mut body).await;
        let body_complete = body.is_complete();
        let keep = client_keep_alive && body_complete && !shared.shutdown.is_cancelled();
        let version = head.version;
        let mut log = answer.log;
        let kept = match answer.reply {
            Reply::Page(page) => {
                let r = write_page(&mut io, &mut wbuf, &page, is_head, version, !keep).await;
                if let (Ok(n), Some(l)) = (&r, log.as_mut()) {
                    l.sent(*n);
                }
                r.is_ok() && keep
            }
            Reply::Upgrade(exchange) => {
                let head = &exchange.head;
                wbuf.clear();
                status_line(&mut wbuf, head.status);
                for (name, value) in head.headers.iter() {
                    header_line(&mut wbuf, name, value);
                }
                header_line(&mut wbuf, b"connection", b"upgrade");
                if let Some(u) = &head.upgrade {
                    header_line(&mut wbuf, b"upgrade", u);
                }
                wbuf.extend_from_slice(b"\r\n");
                if io.write_all(&wbuf).await.is_err() {
                    return;
                }
                drop(log);
                let (upstream, early) = exchange.into_tunnel();
                tunnel(io, rbuf, upstream, early, &shared).await;
                return;
            }
            Reply::Upstream(exchange) => {
                let body = exchange.into_response(Some(shared.pool.clone()));
                let r = write_upstream(&mut io, &mut wbuf, body, is_head, version, !keep).await;
                if let (Ok(n), Some(l)) = (&r, log.as_mut()) {
                    l.sent(*n);
                }
                r.is_ok() && keep
            }
        };
        drop(log);
        if !kept {
            let _ = io.shutdown().await;
            return;
        }
        spans = head.into_spans();
    }
}

/// Reads the next request head; `None`: the client closed between requests, or the router
/// is draining.
async fn read_head<I: AsyncRead + Unpin>(
    io: &mut I,
    buf: &mut BytesMut,
    spans: &mut Vec<[u32; 4]>,
    shared: &Shared,
    mut deadline: Option<Instant>,
) -> Result<Option<RequestHead>, HeadError> {
    loop {
        if !buf.is_empty() {
            if let Some(head) = parse_head(buf, spans)? {
                return Ok(Some(head));
            }
            if buf.len() >= shared.config.max_header_bytes {
                return Err(HeadError::TooLarge);
            }
            deadline.get_or_insert_with(|| Instant::now() + shared.config.header_read_timeout);
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(READ_CHUNK);
        }
        let read = tokio_util::io::read_buf(io, buf);
        let n = match deadline {
            Some(at) => match tokio::time::timeout_at(at, read).await {
                Ok(r) => r,
                Err(_) => return Err(HeadError::Timeout),
            },
            None => {
                // Between requests: a draining router closes idle connections.
                if shared.shutdown.is_cancelled() {
                    return Ok(None);
                }
                tokio::select! {
                    biased;
                    r = read => r,
                    () = shared.shutdown.cancelled() => return Ok(None),
                }
            }
        };
        match n {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) | Err(_) => return Err(HeadError::Gone),
            Ok(_) => {}
        }
    }
}

fn status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn header_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// `Connection` for the answer: `close` when the connection ends after it, `keep-alive`
/// for an HTTP/1.0 client that keeps it.
fn connection_line(out: &mut Vec<u8>, close: bool, version: Version) {
    if close {
        header_line(out, b"connection", b"close");
    } else if version == Version::HTTP_10 {
        header_line(out, b"connection", b"keep-alive");
    }
}

fn has_no_body(status: StatusCode) -> bool {
    status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// Writes one of the router's own pages; returns the body bytes sent.
async fn write_page<I: AsyncWrite + Unpin>(
    io: &mut I,
    wbuf: &mut Vec<u8>,
    page: &http::Response<Bytes>,
    is_head: bool,
    version: Version,
    close: bool,
) -> std::io::Result<u64> {
    wbuf.clear();
    status_line(wbuf, page.status());
    for (name, value) in page.headers() {
        if name != http::header::CONTENT_LENGTH {
            header_line(wbuf, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    let body = page.body();
    let mut sent = 0;
    if !has_no_body(page.status()) {
        let mut len = itoa_buf(body.len() as u64);
        header_line(wbuf, b"content-length", len.as_bytes_mut());
    }
    connection_line(wbuf, close, version);
    wbuf.extend_from_slice(b"\r\n");
    if !is_head && !has_no_body(page.status()) {
        wbuf.extend_from_slice(body);
        sent = body.len() as u64;
    }
    io.write_all(wbuf).await?;
    Ok(sent)
}

/// A number as text, without allocating.
struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(mut n: u64) -> Digits {
    let mut d = Digits {
        buf: [0; 20],
        start: 20,
    };
    loop {
        d.start -= 1;
        d.buf[d.start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return d;
        }
    }
}

/// Writes a backend's answer: its head, then its body as it arrives (chunked for an
/// HTTP/1.1 client when the backend gave no length; to the close for HTTP/1.0). Returns the
/// body bytes sent; an error means the connection cannot go on.
async fn write_upstream<I: AsyncWrite + Unpin>(
    io: &mut I,
    wbuf: &mut Vec<u8>,
    (head, length, mut body): (
        crate::upstream::Head,
        Option<u64>,
        crate::upstream::UpstreamBody,
    ),
    is_head: bool,
    version: Version,
    mut close: bool,
) -> std::io::Result<u64> {
    let status = head.status;
    let bodiless = is_head || has_no_body(status);
    // How the body goes to the client.
    let chunk = !bodiless && length.is_none() && version == Version::HTTP_11;
    if !bodiless && length.is_none() && !chunk {
        // An HTTP/1.0 client learns the end from the close.
        close = true;
    }
    wbuf.clear();
    status_line(wbuf, status);
    for (name, value) in head.headers.iter() {
        header_line(wbuf, name, value);
    }
    if chunk {
        header_line(wbuf, b"transfer-encoding", b"chunked");
    }
    connection_line(wbuf, close, version);
    wbuf.extend_from_slice(b"\r\n");
    if bodiless {
        drop(body);
        io.write_all(wbuf).await?;
        return Ok(0);
    }
    let mut sent = 0u64;
    // What the backend already sent goes with the head, in one write.
    let mut pending_head = true;
    loop {
        let frame = if pending_head {
            match poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await {
                Poll::Ready(f) => f,
                Poll::Pending => {
                    io.write_all(wbuf).await?;
                    pending_head = false;
                    poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
                }
            }
        } else {
            poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        };
        let data = match frame {
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(d) => d,
                Err(_) => continue,
            },
            Some(Err(e)) => {
                // The backend failed mid-body: the client sees a cut response.
                if pending_head {
                    let _ = io.write_all(wbuf).await;
                }
                return Err(std::io::Error::other(e));
            }
        };
        sent += data.len() as u64;
        if pending_head && wbuf.len() + data.len() <= COALESCE {
            if chunk {
                chunked::encode(wbuf, &data);
            } else {
                wbuf.extend_from_slice(&data);
            }
            continue;
        }
        if pending_head {
            io.write_all(wbuf).await?;
            pending_head = false;
        }
        if chunk {
            wbuf.clear();
            chunked::encode(wbuf, &data);
            io.write_all(wbuf).await?;
        } else {
            io.write_all(&data).await?;
        }
    }
    if chunk {
        if pending_head {
            wbuf.extend_from_slice(chunked::LAST);
        } else {
            io.write_all(chunked::LAST).await?;
        }
    }
    if pending_head {
        io.write_all(wbuf).await?;
    }
    Ok(sent)
}

/// Copies bytes both ways between an upgraded client and backend until either side closes
/// (the connection's watcher cuts it when idle or past the shutdown grace period).
async fn tunnel<I>(
    mut client: I,
    client_early: BytesMut,
    mut upstream: tokio::net::TcpStream,
    upstream_early: Bytes,
    shared: &Shared,
) where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let _ = shared;
    // What either side sent right after the heads goes first.
    if !upstream_early.is_empty() && client.write_all(&upstream_early).await.is_err() {
        return;
    }
    if !client_early.is_empty() && upstream.write_all(&client_early).await.is_err() {
        return;
    }
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(error = %e, "tunnel ended");
    }
}

impl LogGuard {
    fn sent(&mut self, n: u64) {
        if let Some(e) = self.entry.as_mut() {
            e.bytes_sent += n;
        }
    }
}
