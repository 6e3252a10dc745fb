//! The client side of HTTP/1.1: one connection's requests read, proxied and answered in its
//! own task, one after another (pipelined requests wait their turn).
//!
//! A request head is parsed in place ([`crate::request`]: spans into its bytes, no header
//! map); its body is read from the connection only as the backend takes it; the answer is
//! written with the first part of its body in the same write. Like nginx, and
//! unlike a general HTTP server library, nothing is converted to a header map and back on
//! the way through.
//!
//! Bad input closes the connection after a page: a malformed head (400), one longer than
//! `max_header_bytes` (431), one not finished within `header_read_timeout` (408), a request
//! that cannot be trusted (400: more than one `Host`, a transfer coding other than chunked,
//! `Transfer-Encoding` with `Content-Length`, conflicting lengths, a target that is no path).
//! A connection closed while the client's body still arrives reads and drops it first
//! (lingering close), so the client gets the answer rather than a reset.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use http::{Method, StatusCode, Version};
use http_body::Body;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::framing::{self, Framing};
use crate::pages;
use crate::proxy::{self, ConnInfo, Reply, Shared};
use crate::request::{ClientBody, HeadError, READ_CHUNK, RequestHead, framing_of, parse_head};
use crate::wire::{RawHeaders, date_line, has_no_body, header_line, length_line};

/// Body bytes written together with the response head when they are already at hand.
const COALESCE: usize = 16 * 1024;

/// Serves one client connection until it closes, fails, idles out (the caller's watcher) or
/// the router drains.
pub async fn serve<I>(mut io: I, info: Arc<ConnInfo>, shared: Arc<Shared>)
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut wbuf: Vec<u8> = Vec::with_capacity(1024);
    // The first head must arrive within the header timeout of the accept; later ones within
    // the header timeout of their first byte (the wait between requests is the idle timeout).
    let mut deadline = Some(Instant::now() + shared.config.header_read_timeout);
    loop {
        // A head that cannot be read or trusted: a page saying why, then the close.
        let refused = match read_head(&mut io, &mut rbuf, &shared, deadline).await {
            Ok(Some(head)) => match framing_of(&head) {
                Ok(framing) => Ok((head, framing)),
                Err(why) => Err(pages::bad_request(why)),
            },
            Ok(None) | Err(HeadError::Gone) => return,
            Err(HeadError::Bad(why)) => Err(pages::bad_request(&format!("malformed head ({why})"))),
            Err(HeadError::TooLarge) => Err(pages::head_too_large(shared.config.max_header_bytes)),
            Err(HeadError::Timeout) => Err(pages::request_timeout()),
        };
        let (head, framing) = match refused {
            Ok(pair) => pair,
            Err(page) => {
                tracing::debug!(peer = %info.peer, status = page.status().as_u16(), "request refused");
                crate::metrics::count(info.tls, page.status().as_u16());
                let _ = write_page(&mut io, &mut wbuf, &page, false, Version::HTTP_11, true).await;
                return;
            }
        };
        deadline = None;
        let has_body = !matches!(framing, Framing::Length(0));
        let expects_continue = has_body
            && head.version == Version::HTTP_11
            && head
                .headers
                .get("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
        let client_keep_alive = if head.version == Version::HTTP_10 {
            // A chunked HTTP/1.0 message's framing is not to be trusted twice (RFC 9112 6.1).
            head.headers.has_token("connection", "keep-alive") && !head.has_transfer_encoding()
        } else {
            !head.headers.has_token("connection", "close")
        };
        let is_head = head.method == Method::HEAD;
        let mut body = ClientBody::new(
            &mut io,
            &mut rbuf,
            framing,
            shared.config.max_body_bytes,
            expects_continue,
        );
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
                answer_head(&mut wbuf, head.status, &head.headers);
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
                tunnel(io, rbuf, upstream, early).await;
                return;
            }
            Reply::Upstream(exchange) => {
                let body = exchange.into_response(Some(shared.pool.clone()));
                match write_upstream(&mut io, &mut wbuf, body, is_head, version, !keep).await {
                    Ok((n, closed)) => {
                        if let Some(l) = log.as_mut() {
                            l.sent(n);
                        }
                        keep && !closed
                    }
                    Err(_) => false,
                }
            }
        };
        drop(log);
        if !kept {
            let _ = io.shutdown().await;
            if !body_complete {
                linger(&mut io).await;
            }
            return;
        }
    }
}

/// How long, and for how many bytes, a connection closed with a body still arriving reads
/// and drops it first (nginx's lingering close).
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);
const LINGER_BYTES: usize = 1024 * 1024;

/// Reads and drops what the client still sends before the connection closes: closing with
/// unread bytes makes the kernel answer with a reset, which can destroy the answer the client
/// has not read yet (an early 413 or 401 to a client still uploading).
async fn linger<I: AsyncRead + Unpin>(io: &mut I) {
    let drain = async {
        let mut buf = [0u8; 8192];
        let mut total = 0;
        while total < LINGER_BYTES {
            match tokio::io::AsyncReadExt::read(io, &mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Reads the next request head; `None`: the client closed between requests, or the router
/// is draining.
async fn read_head<I: AsyncRead + Unpin>(
    io: &mut I,
    buf: &mut BytesMut,
    shared: &Shared,
    mut deadline: Option<Instant>,
) -> Result<Option<RequestHead>, HeadError> {
    loop {
        if !buf.is_empty() {
            if let Some(head) = parse_head(buf)? {
                // One read may bring a whole head past the limit.
                if head.byte_len() > shared.config.max_header_bytes {
                    return Err(HeadError::TooLarge);
                }
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

/// Starts `out` afresh with the status line.
fn status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Starts `out` afresh with a backend's status line and end-to-end headers (and a `Date`
/// when it sent none, as a proxy must: RFC 9110 6.6.1).
fn answer_head(out: &mut Vec<u8>, status: StatusCode, headers: &RawHeaders) {
    status_line(out, status);
    for (name, value) in headers.iter() {
        header_line(out, name, value);
    }
    if headers.get("date").is_none() {
        date_line(out);
    }
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

/// Writes one of the router's own pages; returns the body bytes sent.
async fn write_page<I: AsyncWrite + Unpin>(
    io: &mut I,
    wbuf: &mut Vec<u8>,
    page: &http::Response<Bytes>,
    is_head: bool,
    version: Version,
    close: bool,
) -> std::io::Result<u64> {
    status_line(wbuf, page.status());
    for (name, value) in page.headers() {
        if name != http::header::CONTENT_LENGTH {
            header_line(wbuf, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    date_line(wbuf);
    let body = page.body();
    let mut sent = 0;
    if !has_no_body(page.status()) {
        length_line(wbuf, body.len() as u64);
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

/// Writes a backend's answer: its head (with the length the router parsed, never the
/// backend's header as sent), then its body as it arrives (chunked for an HTTP/1.1 client when
/// the backend gave no length; to the close for HTTP/1.0). Returns the body bytes sent and
/// whether the connection must close after it; an error means it cannot go on.
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
) -> std::io::Result<(u64, bool)> {
    let status = head.status;
    let bodiless = is_head || has_no_body(status);
    // How the body goes to the client.
    let chunk = !bodiless && length.is_none() && version == Version::HTTP_11;
    if !bodiless && length.is_none() && !chunk {
        // An HTTP/1.0 client learns the end from the close.
        close = true;
    }
    answer_head(wbuf, status, &head.headers);
    let announced = if has_no_body(status) {
        None
    } else if is_head {
        head.declared_length()
    } else {
        length
    };
    if let Some(n) = announced {
        length_line(wbuf, n);
    }
    if chunk {
        header_line(wbuf, b"transfer-encoding", b"chunked");
    }
    connection_line(wbuf, close, version);
    wbuf.extend_from_slice(b"\r\n");
    if bodiless {
        drop(body);
        io.write_all(wbuf).await?;
        return Ok((0, close));
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
                framing::encode_chunk(wbuf, &data);
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
            framing::encode_chunk(wbuf, &data);
            io.write_all(wbuf).await?;
        } else {
            io.write_all(&data).await?;
        }
    }
    if chunk {
        if pending_head {
            wbuf.extend_from_slice(framing::LAST_CHUNK);
        } else {
            io.write_all(framing::LAST_CHUNK).await?;
        }
    }
    if pending_head {
        io.write_all(wbuf).await?;
    }
    Ok((sent, close))
}

/// Copies bytes both ways between an upgraded client and backend until either side closes
/// (the connection's watcher cuts it when idle or past the shutdown grace period).
async fn tunnel<I>(
    mut client: I,
    client_early: BytesMut,
    mut upstream: tokio::net::TcpStream,
    upstream_early: Bytes,
) where
    I: AsyncRead + AsyncWrite + Unpin,
{
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
