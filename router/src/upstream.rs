//! HTTP/1.1 to a backend, driven inside the client request's own task.
//!
//! A generic client runs each upstream connection as a task of its own and hands requests,
//! responses and body chunks to it over channels: three or four task wake-ups per request on
//! top of the socket's. Here the request's task writes the head, reads the response head and
//! the body straight from the socket, as nginx's event loop does, and the connection goes back
//! to the pool when the body has been read to its end.
//!
//! Framing follows RFC 9112: the request carries the length the client declared (written by
//! the router from the parsed value), or is sent chunked when its length is unknown; the
//! response is delimited by no body (HEAD, 1xx, 204,
//! 304), `Transfer-Encoding: chunked`, `Content-Length`, or the connection's close (then the
//! connection is not reused). Interim responses (`100 Continue`) are skipped; `101` hands the
//! connection over for a tunnel.

use std::future::poll_fn;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use http::{Method, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::body::BoxError;
use crate::error::UpstreamError;
use crate::framing::{self, Decoder, Framing, Step};
use crate::pool::{Conn, Pool};
use crate::request::RequestHead;
use crate::wire::{
    RawHeaders, content_length, has_no_body, header_line, is_hop_by_hop, length_line, only_chunked,
    place,
};

/// The most header lines a backend's response head may have.
const MAX_HEADERS: usize = 100;
/// The longest a backend's response head may be.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Read size for bodies (the buffer grows to it once, then is reused).
const READ_CHUNK: usize = 16 * 1024;

/// How the request body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReqFraming {
    /// No body.
    Empty,
    /// This many bytes (the length the client declared, written anew by the router).
    Length(u64),
    /// Length unknown: sent chunked.
    Chunked,
}

/// A response head from the backend.
#[derive(Debug)]
pub struct Head {
    /// Status.
    pub status: StatusCode,
    /// The backend's HTTP version.
    pub version: Version,
    /// The end-to-end headers: hop-by-hop ones (RFC 9110 7.6.1), and those its `Connection`
    /// header names, are left out.
    pub headers: RawHeaders,
    /// Its `Upgrade` header (for a `101`).
    pub upgrade: Option<Bytes>,
    /// `Connection: close`.
    close: bool,
    /// `Connection: keep-alive` (what an HTTP/1.0 backend must say to keep it open).
    keep_alive: bool,
    /// `Transfer-Encoding`, if any: whether `chunked` is its only coding.
    chunked: Option<bool>,
    /// `Content-Length`, if any (or why it is unusable).
    length: Result<Option<u64>, &'static str>,
}

impl Head {
    /// The `Content-Length` the backend declared (for a HEAD request: of the body a GET
    /// would get), if it did.
    pub fn declared_length(&self) -> Option<u64> {
        self.length.ok().flatten()
    }
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum SendError {
    /// The backend never saw a complete request (or, on a reused connection, closed it
    /// before answering a request that can be repeated): it can go to another connection.
    Retry(UpstreamError),
    /// The exchange failed once the request was on its way.
    Failed {
        /// Why.
        error: UpstreamError,
    },
    /// The client's body failed (cut off, malformed chunks, over the limit): the client's
    /// fault, not the backend's.
    Client {
        /// Why.
        error: BoxError,
    },
}

/// A response head read from a backend, with its connection and how its body is delimited.
#[derive(Debug)]
pub struct Exchange {
    /// The head.
    pub head: Head,
    conn: Conn,
    framing: Framing,
    reusable: bool,
}

impl Exchange {
    /// The backend.
    pub fn addr(&self) -> SocketAddr {
        self.conn.addr
    }

    /// The head, the body's length if known, and the body, read from the connection; `pool`
    /// gets the connection back once the body has ended, if it can carry another request.
    pub fn into_response(
        self,
        pool: Option<std::sync::Arc<Pool>>,
    ) -> (Head, Option<u64>, UpstreamBody) {
        let Exchange {
            head,
            conn,
            framing,
            reusable,
        } = self;
        let body = UpstreamBody {
            conn: Some(conn),
            framing,
            pool: pool.filter(|_| reusable),
        };
        (head, framing.remaining(), body)
    }

    /// The connection after a `101`, for a tunnel: the socket and the bytes the backend
    /// already sent past the head.
    pub fn into_tunnel(self) -> (TcpStream, Bytes) {
        self.conn.into_parts()
    }
}

/// What the router writes in a forwarded request's head besides the client's own headers.
#[derive(Debug, Default)]
pub struct Forwarded<'a> {
    /// Header lines written after the client's; each replaces any the client sent by that
    /// name. Names in lowercase.
    pub added: &'a [(&'a str, &'a [u8])],
    /// Client headers left out besides the hop-by-hop ones: those its `Connection` names.
    pub dropped: &'a [&'a str],
}

/// Sends the request `parts` with `body` on `conn` and reads the response head.
///
/// The head is written first; a body is then streamed while the response head is awaited, so
/// a backend answering early (a 413, a redirect) is heard.
pub async fn send<B>(
    mut conn: Conn,
    req: &RequestHead,
    forwarded: &Forwarded<'_>,
    body: &mut B,
) -> Result<Exchange, SendError>
where
    B: Body<Data = Bytes, Error = BoxError> + Unpin,
{
    let framing = if body.is_end_stream() {
        ReqFraming::Empty
    } else if let Some(n) = body.size_hint().exact() {
        ReqFraming::Length(n)
    } else {
        ReqFraming::Chunked
    };
    let addr = conn.addr;
    let reused = conn.served > 0;
    let failed = |error: UpstreamError| SendError::Failed { error };
    encode_head(&mut conn.wbuf, req, forwarded, framing);
    if let Err(e) = conn.io.write_all(&conn.wbuf).await {
        // Part of a head is no request: the backend answers nothing to it.
        return Err(SendError::Retry(io_error(addr, "writing the request", &e)));
    }
    let mut body_sent = true;
    let result = if framing == ReqFraming::Empty {
        read_head(&mut conn.io, &mut conn.rbuf).await
    } else {
        let (mut rd, mut wr) = conn.io.split();
        let write = write_body(&mut wr, body, framing == ReqFraming::Chunked);
        let read = read_head(&mut rd, &mut conn.rbuf);
        tokio::pin!(write, read);
        body_sent = false;
        let mut writing = true;
        loop {
            tokio::select! {
                biased;
                r = &mut read => break r,
                w = &mut write, if writing => match w {
                    Ok(()) => {
                        writing = false;
                        body_sent = true;
                    }
                    Err(BodyError::Client(error)) => return Err(SendError::Client { error }),
                    // The backend stopped reading: it may still have answered.
                    Err(BodyError::Io) => writing = false,
                },
            }
        }
    };
    let head = match result {
        Ok(head) => head,
        Err(HeadError::Closed { received }) => {
            let error = UpstreamError::Http {
                addr,
                message: "closed the connection without answering".into(),
            };
            let repeatable = framing == ReqFraming::Empty && idempotent(&req.method);
            return Err(if reused && received == 0 && repeatable {
                SendError::Retry(error)
            } else {
                failed(error)
            });
        }
        Err(HeadError::Io(e)) => return Err(failed(io_error(addr, "reading the response", &e))),
        Err(HeadError::Malformed(why)) => {
            return Err(failed(UpstreamError::Http {
                addr,
                message: format!("malformed response head: {why}"),
            }));
        }
    };
    let no_body = req.method == Method::HEAD || has_no_body(head.status);
    let framing = match (no_body, head.chunked, head.length) {
        (true, _, _) => Framing::Length(0),
        (false, Some(true), _) => Framing::Chunked(Decoder::default()),
        (false, Some(false), _) => {
            return Err(failed(UpstreamError::Http {
                addr,
                message: "a transfer coding other than chunked".into(),
            }));
        }
        (false, None, Ok(Some(n))) => Framing::Length(n),
        (false, None, Ok(None)) => Framing::Eof,
        (false, None, Err(why)) => {
            return Err(failed(UpstreamError::Http {
                addr,
                message: why.into(),
            }));
        }
    };
    let keeps_alive = if head.version == Version::HTTP_10 {
        head.keep_alive
    } else {
        !head.close
    };
    let reusable = body_sent
        && keeps_alive
        && framing != Framing::Eof
        && head.status != StatusCode::SWITCHING_PROTOCOLS
        // Both framings at once: a smuggling attempt or a broken backend, not to be trusted twice.
        && (head.chunked.is_none() || matches!(head.length, Ok(None)));
    conn.served += 1;
    Ok(Exchange {
        head,
        conn,
        framing,
        reusable,
    })
}

fn io_error(addr: SocketAddr, doing: &str, e: &std::io::Error) -> UpstreamError {
    UpstreamError::Http {
        addr,
        message: format!("{doing}: {e}"),
    }
}

/// Methods a backend must treat as safe to repeat (RFC 9110 9.2.2).
pub fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Writes the request line and headers into `buf` (cleared first): the client's end-to-end
/// headers as sent, then the router's.
fn encode_head(
    buf: &mut Vec<u8>,
    req: &RequestHead,
    forwarded: &Forwarded<'_>,
    framing: ReqFraming,
) {
    buf.clear();
    buf.extend_from_slice(req.method.as_str().as_bytes());
    buf.push(b' ');
    // Origin-form as sent; an absolute-form target (a proxy request) loses its scheme and
    // authority.
    buf.extend_from_slice(req.path_and_query().as_bytes());
    buf.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in req.headers.iter() {
        if is_hop_by_hop(name)
            // The length is written below from the parsed value, never passed on as sent.
            || name.eq_ignore_ascii_case(b"content-length")
            || forwarded
                .added
                .iter()
                .any(|(a, _)| a.as_bytes().eq_ignore_ascii_case(name))
            || forwarded
                .dropped
                .iter()
                .any(|d| d.as_bytes().eq_ignore_ascii_case(name))
        {
            continue;
        }
        header_line(buf, name, value);
    }
    for (name, value) in forwarded.added {
        header_line(buf, name.as_bytes(), value);
    }
    match framing {
        ReqFraming::Length(n) => length_line(buf, n),
        ReqFraming::Chunked => buf.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        // A body-less POST or PUT still says so: some servers wait for a length otherwise.
        ReqFraming::Empty if matches!(req.method, Method::POST | Method::PUT | Method::PATCH) => {
            length_line(buf, 0);
        }
        _ => {}
    }
    buf.extend_from_slice(b"\r\n");
}

enum BodyError {
    /// The client's body failed (cut off, over the limit).
    Client(BoxError),
    /// Writing to the backend failed.
    Io,
}

/// Streams the client's body to the backend, chunk-encoded when `chunked`.
async fn write_body<W, B>(w: &mut W, body: &mut B, chunked: bool) -> Result<(), BodyError>
where
    W: tokio::io::AsyncWrite + Unpin,
    B: Body<Data = Bytes, Error = BoxError> + Unpin,
{
    let mut chunk = Vec::new();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await {
        let frame = frame.map_err(BodyError::Client)?;
        let Ok(data) = frame.into_data() else {
            // Trailers are not forwarded.
            continue;
        };
        let out = if chunked {
            chunk.clear();
            framing::encode_chunk(&mut chunk, &data);
            &chunk[..]
        } else {
            &data[..]
        };
        w.write_all(out).await.map_err(|_| BodyError::Io)?;
    }
    if chunked {
        w.write_all(framing::LAST_CHUNK)
            .await
            .map_err(|_| BodyError::Io)?;
    }
    Ok(())
}

#[derive(Debug)]
enum HeadError {
    /// The backend closed the connection; `received` bytes of a head had arrived.
    Closed {
        received: usize,
    },
    Io(std::io::Error),
    Malformed(String),
}

/// Reads a final response head (interim 1xx heads other than 101 are skipped) from `r`,
/// leaving any bytes past it in `buf`.
async fn read_head<R>(r: &mut R, buf: &mut BytesMut) -> Result<Head, HeadError>
where
    R: AsyncRead + Unpin,
{
    let mut received = 0;
    loop {
        if !buf.is_empty() {
            match parse_head(buf)? {
                Some(head)
                    if head.status.is_informational()
                        && head.status != StatusCode::SWITCHING_PROTOCOLS =>
                {
                    continue;
                }
                Some(head) => return Ok(head),
                None => {}
            }
            if buf.len() >= MAX_HEAD_BYTES {
                return Err(HeadError::Malformed(format!(
                    "longer than {MAX_HEAD_BYTES} bytes"
                )));
            }
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(READ_CHUNK);
        }
        let n = tokio::io::AsyncReadExt::read_buf(r, buf)
            .await
            .map_err(HeadError::Io)?;
        if n == 0 {
            return Err(HeadError::Closed { received });
        }
        received += n;
    }
}

/// Parses a complete head at the start of `buf` and takes it out; `None`: not complete yet.
fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, HeadError> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    let code = resp.code.unwrap_or(0);
    let status = StatusCode::from_u16(code)
        .map_err(|_| HeadError::Malformed(format!("status code {code}")))?;
    let version = if resp.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let mut head = Head {
        status,
        version,
        headers: RawHeaders::default(),
        upgrade: None,
        close: false,
        keep_alive: false,
        chunked: None,
        length: Ok(None),
    };
    // Headers the backend's `Connection` names (rare) stay behind too.
    let mut named: Vec<&str> = Vec::new();
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            for token in std::str::from_utf8(h.value)
                .unwrap_or("")
                .split(',')
                .map(str::trim)
            {
                if token.eq_ignore_ascii_case("close") {
                    head.close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    head.keep_alive = true;
                } else if !token.is_empty() {
                    named.push(token);
                }
            }
        }
    }
    // Where each kept name and value sits in the head: they are written out from its bytes.
    let base = buf.as_ptr();
    let mut spans = Vec::with_capacity(resp.headers.len());
    let mut upgrade = None;
    for h in resp.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            // Parsed, and written anew for the client from the parsed value.
            head.length = head.length.and_then(|prev| content_length(prev, h.value));
            continue;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = Some(head.chunked.unwrap_or(true) && only_chunked(h.value));
            continue;
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade = Some(place(base, h.value));
            continue;
        }
        if is_hop_by_hop(name.as_bytes()) || named.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        spans.push(RawHeaders::span(base, name.as_bytes(), h.value));
    }
    let bytes = buf.split_to(len).freeze();
    if let Some((at, n)) = upgrade {
        head.upgrade = Some(bytes.slice(at as usize..(at + n) as usize));
    }
    head.headers = RawHeaders::new(bytes, spans);
    Ok(Some(head))
}

/// A backend's response body, read from its connection by whoever polls it.
#[derive(Debug)]
pub struct UpstreamBody {
    /// `None` once the body has ended (or failed).
    conn: Option<Conn>,
    framing: Framing,
    /// Where the connection goes after the end (none: it closes).
    pool: Option<std::sync::Arc<Pool>>,
}

/// A body error the client side sees as a cut response.
#[derive(Debug, thiserror::Error)]
#[error("backend {addr}: {what}")]
pub struct BodyFailed {
    addr: SocketAddr,
    what: String,
}

impl UpstreamBody {
    fn fail(&mut self, what: impl Into<String>) -> BoxError {
        let addr = self
            .conn
            .take()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.addr);
        Box::new(BodyFailed {
            addr,
            what: what.into(),
        })
    }

    fn finish(&mut self) {
        if let Some(mut conn) = self.conn.take()
            && let Some(pool) = self.pool.take()
            && conn.rbuf.is_empty()
        {
            conn.idle_since = Instant::now();
            pool.put(conn);
        }
    }

    /// Takes what the buffer holds of the body.
    fn step(&mut self) -> Result<Step, String> {
        match self.conn.as_mut() {
            Some(conn) => self.framing.decode(&mut conn.rbuf),
            None => Ok(Step::End),
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            match this.step() {
                Ok(Step::Data(d)) => return Poll::Ready(Some(Ok(Frame::data(d)))),
                Ok(Step::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Step::More) => {}
                Err(why) => return Poll::Ready(Some(Err(this.fail(why)))),
            }
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            let want = this
                .framing
                .remaining()
                .map_or(READ_CHUNK, |left| (left as usize).clamp(1, READ_CHUNK));
            if conn.rbuf.capacity() - conn.rbuf.len() < want.min(1024) {
                conn.rbuf.reserve(want);
            }
            match ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut conn.io),
                cx,
                &mut conn.rbuf
            )) {
                Ok(0) => {
                    if this.framing == Framing::Eof {
                        // A close-delimited body ends here; the connection is spent.
                        this.conn = None;
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Err(
                        this.fail("closed the connection before the body ended")
                    )));
                }
                Ok(_) => {}
                Err(e) => {
                    return Poll::Ready(Some(Err(this.fail(format!("reading the body: {e}")))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_none() || self.framing.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None if self.conn.is_none() => SizeHint::with_exact(0),
            None => SizeHint::default(),
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // A body may be dropped without being polled past its last byte (HEAD, 204, 304, or a
        // known length fully read): its connection is still good when the body has ended.
        if self.framing.is_done() {
            self.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http_body_util::BodyExt;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    use tokio::net::TcpListener;

    use super::*;
    use crate::pool::Pool;

    fn get() -> RequestHead {
        RequestHead::parse_for_test(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    }

    #[test]
    fn the_request_head_keeps_end_to_end_headers_and_adds_the_routers() {
        let req = RequestHead::parse_for_test(
            b"POST http://hello.localhost/a?b=1 HTTP/1.1\r\nHost: hello.localhost\r\n\
              Connection: keep-alive, x-secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n\
              Content-Length: 0\r\nX-Forwarded-Proto: forged\r\nAccept: */*\r\n\r\n",
        );
        let fwd = Forwarded {
            added: &[("x-forwarded-proto", b"http")],
            dropped: &["x-secret"],
        };
        let mut buf = Vec::new();
        encode_head(&mut buf, &req, &fwd, ReqFraming::Empty);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "POST /a?b=1 HTTP/1.1\r\nHost: hello.localhost\r\nAccept: */*\r\n\
             x-forwarded-proto: http\r\ncontent-length: 0\r\n\r\n"
        );
        let mut buf = Vec::new();
        encode_head(&mut buf, &req, &Forwarded::default(), ReqFraming::Chunked);
        assert!(
            String::from_utf8(buf)
                .unwrap()
                .ends_with("transfer-encoding: chunked\r\n\r\n")
        );
    }

    #[test]
    fn response_heads_lose_hop_by_hop_headers_and_keep_what_follows() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close, x-hop\r\n\
               X-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Kept: yes\r\n\r\nhello"[..],
        );
        let head = parse_head(&mut buf).unwrap().unwrap();
        assert_eq!(head.status, StatusCode::OK);
        assert!(head.close);
        assert_eq!(head.length, Ok(Some(5)));
        assert_eq!(head.headers.iter().count(), 1, "{:?}", head.headers);
        assert_eq!(head.headers.get("x-kept"), Some(&b"yes"[..]));
        assert_eq!(&buf[..], b"hello");

        let mut partial = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Le"[..]);
        assert!(parse_head(&mut partial).unwrap().is_none());

        // A coding besides chunked is one the router could not pass on.
        let mut te =
            BytesMut::from(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"[..]);
        assert_eq!(parse_head(&mut te).unwrap().unwrap().chunked, Some(false));
        let mut te = BytesMut::from(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"[..]);
        assert_eq!(parse_head(&mut te).unwrap().unwrap().chunked, Some(true));

        let mut bad = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"[..],
        );
        assert!(parse_head(&mut bad).unwrap().unwrap().length.is_err());
        let mut bad = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"[..]);
        assert!(parse_head(&mut bad).unwrap().unwrap().length.is_err());
        let mut garbage = BytesMut::from(&b"SSH-2.0-OpenSSH\r\n\r\n"[..]);
        assert!(parse_head(&mut garbage).is_err());
    }

    /// A backend that answers each connection's first request with `answer`, written in
    /// pieces, then closes the connection (`close`) or keeps it open reading.
    async fn backend(answer: &'static [&'static [u8]], close: bool) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    for piece in answer {
                        if s.write_all(piece).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    while !close && matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                });
            }
        });
        addr
    }

    fn pool() -> Arc<Pool> {
        Arc::new(Pool::new(4, Duration::from_secs(5)))
    }

    /// How many connections the pool kept for reuse.
    fn kept(pool: &Pool) -> usize {
        pool.sweep(Duration::from_secs(60))
    }

    async fn fetch(addr: SocketAddr, pool: &Arc<Pool>) -> (Head, Bytes) {
        let conn = Conn::connect(addr, Duration::from_secs(5)).await.unwrap();
        let ex = send(conn, &get(), &Forwarded::default(), &mut crate::body::Empty)
            .await
            .unwrap();
        let (head, _, body) = ex.into_response(Some(pool.clone()));
        let bytes = body.collect().await.unwrap().to_bytes();
        (head, bytes)
    }

    #[tokio::test]
    async fn chunked_bodies_are_decoded_across_reads_and_the_connection_is_reused() {
        let addr = backend(
            &[
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel",
                b"lo\r\n",
                b"6\r\n world\r\n0\r\nX-Trailer: t\r\n",
                b"\r\n",
            ],
            false,
        )
        .await;
        let pool = pool();
        let (head, body) = fetch(addr, &pool).await;
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(&body[..], b"hello world");
        assert_eq!(kept(&pool), 1, "kept for reuse");
    }

    #[tokio::test]
    async fn a_length_body_is_read_to_its_end_and_reused() {
        let addr = backend(
            &[
                b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello",
                b" world",
            ],
            false,
        )
        .await;
        let pool = pool();
        let (_, body) = fetch(addr, &pool).await;
        assert_eq!(&body[..], b"hello world");
        assert_eq!(kept(&pool), 1);
        assert!(pool.take_idle(addr, true).is_some());
        // An unrepeatable request takes no connection that idled too long.
        let (_, _) = fetch(addr, &pool).await;
        tokio::time::sleep(crate::pool::UNREPEATABLE_MAX_IDLE).await;
        assert!(pool.take_idle(addr, false).is_none());
        assert!(pool.take_idle(addr, true).is_some());
    }

    #[tokio::test]
    async fn close_delimited_and_connection_close_bodies_are_not_reused() {
        let pool = pool();
        let addr = backend(
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"],
            false,
        )
        .await;
        let (_, body) = fetch(addr, &pool).await;
        assert_eq!(&body[..], b"ok");
        assert_eq!(kept(&pool), 0);

        // No length, no chunking: the body runs to the close.
        let addr = backend(&[b"HTTP/1.0 200 OK\r\n\r\nall of it"], true).await;
        let (_, body) = fetch(addr, &pool).await;
        assert_eq!(&body[..], b"all of it");
        assert_eq!(kept(&pool), 0);
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error_and_the_connection_is_dropped() {
        let addr = backend(
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"],
            true,
        )
        .await;
        let pool = pool();
        let conn = Conn::connect(addr, Duration::from_secs(5)).await.unwrap();
        let ex = send(conn, &get(), &Forwarded::default(), &mut crate::body::Empty)
            .await
            .unwrap();
        let err = ex
            .into_response(Some(pool.clone()))
            .2
            .collect()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("before the body ended"), "{err}");
        assert_eq!(kept(&pool), 0);
    }

    #[tokio::test]
    async fn interim_responses_are_skipped() {
        let addr = backend(
            &[
                b"HTTP/1.1 100 Continue\r\n\r\n",
                b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
            ],
            false,
        )
        .await;
        let pool = pool();
        let (head, body) = fetch(addr, &pool).await;
        assert_eq!(head.status, StatusCode::NO_CONTENT);
        assert_eq!(head.headers.get("x-a"), Some(&b"1"[..]));
        assert!(body.is_empty());
        assert_eq!(kept(&pool), 1);
    }

    #[tokio::test]
    async fn a_pooled_connection_the_backend_closed_is_not_handed_out() {
        let addr = backend(&[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"], true).await;
        let pool = pool();
        let (_, body) = fetch(addr, &pool).await;
        assert_eq!(&body[..], b"ok");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(pool.take_idle(addr, true).is_none());
    }
}
