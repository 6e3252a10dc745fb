//! A client's request as the router reads it: the head parsed in place ([`RequestHead`]:
//! spans into its bytes, no header map), how its body is delimited, and the body itself
//! ([`ClientBody`]), read from the client connection only as the backend takes it.

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::{Method, Version};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::body::{BoxError, TooLarge};
use crate::framing::{Decoder, Framing, Step};
use crate::wire::{RawHeaders, content_length, only_chunked, place};

/// The most header lines a request may have.
const MAX_HEADERS: usize = 100;
/// Read size for a connection's buffer.
pub(crate) const READ_CHUNK: usize = 8 * 1024;

/// A parsed request head; the target and the header lines are spans of its bytes.
#[derive(Debug)]
pub struct RequestHead {
    /// The method.
    pub method: Method,
    /// Where the target sits in the head's bytes.
    target: (u32, u32),
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The header lines as sent.
    pub headers: RawHeaders,
}

impl RequestHead {
    /// The request target as sent (origin-form `/path?q`, absolute-form, `*`, ...).
    pub fn target(&self) -> &str {
        let (at, len) = self.target;
        let target = &self.headers.bytes()[at as usize..(at + len) as usize];
        // httparse accepts only visible ASCII in the target.
        std::str::from_utf8(target).unwrap_or("/")
    }

    /// The path and query: the target without a scheme and authority.
    pub fn path_and_query(&self) -> Cow<'_, str> {
        let t = self.target();
        if t.starts_with('/') || t == "*" {
            return Cow::Borrowed(t);
        }
        match t.find("://") {
            Some(i) => {
                let rest = &t[i + 3..];
                match rest.find(['/', '?']) {
                    Some(j) if rest[j..].starts_with('?') => Cow::Owned(format!("/{}", &rest[j..])),
                    Some(j) => Cow::Borrowed(&rest[j..]),
                    None => Cow::Borrowed("/"),
                }
            }
            None => Cow::Borrowed(t),
        }
    }

    /// The authority of an absolute-form target, if it is one.
    pub fn target_authority(&self) -> Option<&str> {
        let t = self.target();
        let rest = &t[t.find("://")? + 3..];
        Some(&rest[..rest.find(['/', '?']).unwrap_or(rest.len())])
    }

    /// The head's length in bytes.
    pub fn byte_len(&self) -> usize {
        self.headers.bytes().len()
    }

    /// Whether it carries a `Transfer-Encoding` (an HTTP/1.0 message that does must not keep
    /// its connection: RFC 9112 6.1).
    pub fn has_transfer_encoding(&self) -> bool {
        self.headers.get("transfer-encoding").is_some()
    }

    /// A complete head from `bytes` (tests).
    #[cfg(test)]
    pub fn parse_for_test(bytes: &[u8]) -> RequestHead {
        let mut buf = BytesMut::from(bytes);
        parse_head(&mut buf)
            .expect("a valid head")
            .expect("a complete head")
    }
}

/// Why a head could not be read.
#[derive(Debug)]
pub(crate) enum HeadError {
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
pub(crate) fn parse_head(buf: &mut BytesMut) -> Result<Option<RequestHead>, HeadError> {
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(e) => return Err(HeadError::Bad(e.to_string())),
    };
    let base = buf.as_ptr();
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
    let version = if req.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let spans = req
        .headers
        .iter()
        .map(|h| RawHeaders::span(base, h.name.as_bytes(), h.value))
        .collect();
    Ok(Some(RequestHead {
        method,
        target: place(base, path.as_bytes()),
        version,
        headers: RawHeaders::new(buf.split_to(len).freeze(), spans),
    }))
}

/// How the request's body is delimited, once the head is found trustworthy: one `Host` at
/// most (RFC 9112 3.2), not both `Content-Length` and `Transfer-Encoding`, lengths that agree,
/// and no transfer coding but chunked (the router would have to undo or forward codings it
/// does not know).
pub(crate) fn framing_of(head: &RequestHead) -> Result<Framing, &'static str> {
    if head.headers.get_all("host").nth(1).is_some() {
        return Err("more than one Host header");
    }
    let mut length: Option<u64> = None;
    for v in head.headers.get_all("content-length") {
        length = content_length(length, v)?;
    }
    let te: Vec<&[u8]> = head.headers.get_all("transfer-encoding").collect();
    if te.is_empty() {
        return Ok(Framing::Length(length.unwrap_or(0)));
    }
    if length.is_some() {
        return Err("both Transfer-Encoding and Content-Length");
    }
    if te.iter().all(|v| only_chunked(v)) {
        Ok(Framing::Chunked(Decoder::default()))
    } else {
        Err("a transfer coding other than chunked")
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

impl<'c, I> ClientBody<'c, I> {
    /// The body `framing` announces, read from `io` (bytes already read in `buf`), cut off
    /// past `limit` bytes (0: no limit); `expects_continue`: the client waits for
    /// `100 Continue` before sending it.
    pub(crate) fn new(
        io: &'c mut I,
        buf: &'c mut BytesMut,
        framing: Framing,
        limit: u64,
        expects_continue: bool,
    ) -> ClientBody<'c, I> {
        ClientBody {
            io,
            buf,
            framing,
            limit,
            seen: 0,
            continue_pending: expects_continue.then_some(0),
            failed: false,
        }
    }

    /// Whether the body was read to its end (the connection can take another request).
    pub fn is_complete(&self) -> bool {
        !self.failed && self.framing.is_done()
    }

    /// The length the client declared, if it did.
    pub fn declared_length(&self) -> Option<u64> {
        self.framing.remaining()
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
            let step = match this.framing.decode(this.buf) {
                Ok(s) => s,
                Err(why) => {
                    return this.fail(std::io::Error::new(std::io::ErrorKind::InvalidData, why));
                }
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
        self.framing
            .remaining()
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

impl<I> ClientBody<'_, I> {
    fn fail(&mut self, e: std::io::Error) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.failed = true;
        Poll::Ready(Some(Err(Box::new(e))))
    }
}
