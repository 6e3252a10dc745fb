//! A hostile client or backend against the router's HTTP/1.1: smuggling through
//! `Connection`-named framing headers, lengths another parser reads differently, duplicate
//! hosts, transfer codings it cannot pass on, and HTTP/1.0 framing rules.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use workflow_router::Config;

async fn read_for(s: &mut TcpStream, dur: Duration) -> (String, bool) {
    // Reads for `dur`; returns (text, closed).
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let end = tokio::time::Instant::now() + dur;
    loop {
        match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into(), false),
        }
    }
}

/// A raw backend: records everything each connection sends, answers `answer` to each read.
async fn raw_backend(answer: &'static [u8]) -> (std::net::SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let seen = seen2.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            seen.lock().unwrap().extend_from_slice(&buf[..n]);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            if s.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// What one request through the router did: the client's answer (read for `wait`), whether
/// the router closed the connection, and every byte the backend received.
struct Trace {
    client: String,
    closed: bool,
    backend: String,
}

/// Sends `request` to a router whose app `hello` is a raw backend answering `answer`.
async fn trace(answer: &'static [u8], request: &[u8], wait: Duration) -> Trace {
    let (b, seen) = raw_backend(answer).await;
    let r = router(Config::default(), false, None).await;
    r.table.set(app("hello", &[b]));
    let mut s = TcpStream::connect(r.http).await.unwrap();
    s.write_all(request).await.unwrap();
    let (client, closed) = read_for(&mut s, wait).await;
    let backend = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    Trace {
        client,
        closed,
        backend,
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const SHORT: Duration = Duration::from_millis(500);

#[tokio::test]
async fn connection_named_content_length_smuggles_nothing() {
    let paths = Arc::new(Mutex::new(Vec::<String>::new()));
    let p = paths.clone();
    let b = backend(move |req: hyper::Request<hyper::body::Incoming>| {
        let p = p.clone();
        async move {
            p.lock().unwrap().push(format!(
                "{} {} xff={:?}",
                req.method(),
                req.uri(),
                req.headers().get("x-forwarded-for")
            ));
            hyper::Response::new(text("ok"))
        }
    })
    .await;
    let r = router(Config::default(), false, None).await;
    r.table.set(app("hello", &[b]));
    let smuggled =
        b"GET /smuggled HTTP/1.1\r\nHost: hello.localhost\r\nX-Forwarded-For: 10.9.9.9\r\n\r\n";
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: hello.localhost\r\nConnection: content-length\r\nContent-Length: {}\r\n\r\n",
        smuggled.len()
    )
    .into_bytes();
    req.extend_from_slice(smuggled);
    let mut s = TcpStream::connect(r.http).await.unwrap();
    s.write_all(&req).await.unwrap();
    let (text, _) = read_for(&mut s, Duration::from_millis(500)).await;
    let seen = paths.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "backend saw {seen:?}; client got {text:?}");
}

#[tokio::test]
async fn a_backends_connection_named_length_still_frames_the_answer() {
    let t = trace(
        b"HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\nhello",
        b"GET / HTTP/1.1\r\nHost: hello.localhost\r\n\r\n",
        SHORT,
    )
    .await;
    let head = t
        .client
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        t.closed || head.contains("content-length: 5"),
        "keep-alive answer without framing: {:?}",
        t.client
    );
}

#[tokio::test]
async fn an_http_1_0_client_gets_the_close_it_was_told_of() {
    let t = trace(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: hello.localhost\r\nConnection: keep-alive\r\n\r\n",
        Duration::from_secs(2),
    )
    .await;
    assert!(t.client.contains("connection: close"), "{:?}", t.client);
    assert!(t.closed, "told of the close, but kept open: {:?}", t.client);
}

#[tokio::test]
async fn non_ascii_whitespace_in_content_length_is_a_400() {
    let t = trace(
        OK,
        b"POST / HTTP/1.1\r\nHost: hello.localhost\r\nContent-Length: 3\xc2\xa0\r\n\r\nabc",
        SHORT,
    )
    .await;
    assert!(t.client.starts_with("HTTP/1.1 400"), "{:?}", t.client);
    assert!(t.backend.is_empty(), "{:?}", t.backend);
}

#[tokio::test]
async fn absolute_form_without_path_but_with_query_gets_a_slash() {
    let t = trace(
        OK,
        b"GET http://hello.localhost?x=1 HTTP/1.1\r\nHost: hello.localhost\r\n\r\n",
        SHORT,
    )
    .await;
    assert!(
        t.backend.starts_with("GET /?x=1 HTTP/1.1"),
        "{:?}",
        t.backend
    );
}

#[tokio::test]
async fn response_transfer_codings_other_than_chunked_are_a_502() {
    let t = trace(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\n\x1f\x8b\x08\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: hello.localhost\r\n\r\n",
        SHORT,
    )
    .await;
    // The router cannot pass on a coding it would have to undo: the backend is broken.
    assert!(t.client.starts_with("HTTP/1.1 502"), "{:?}", t.client);
}

#[tokio::test]
async fn duplicate_host_headers_are_a_400() {
    let t = trace(
        OK,
        b"GET / HTTP/1.1\r\nHost: hello.localhost\r\nHost: other.localhost\r\n\r\n",
        SHORT,
    )
    .await;
    assert!(t.client.starts_with("HTTP/1.1 400"), "{:?}", t.client);
    assert!(t.backend.is_empty(), "{:?}", t.backend);
}

#[tokio::test]
async fn connection_named_host_still_reaches_the_app() {
    let t = trace(
        OK,
        b"GET / HTTP/1.1\r\nHost: hello.localhost\r\nConnection: host\r\n\r\n",
        SHORT,
    )
    .await;
    assert!(
        t.backend
            .to_ascii_lowercase()
            .contains("\r\nhost: hello.localhost"),
        "{:?}",
        t.backend
    );
}

#[tokio::test]
async fn a_chunked_http_1_0_request_closes_the_connection() {
    let t = trace(
        OK,
        b"POST / HTTP/1.0\r\nHost: hello.localhost\r\nConnection: keep-alive\r\n\
          Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
        Duration::from_secs(1),
    )
    .await;
    assert!(t.closed, "{:?}", t.client);
}

/// A backend answering at once without reading the body: the client, still uploading, gets
/// the answer (the router reads and drops the rest of the body before it closes, so no reset
/// destroys the answer).
#[tokio::test]
async fn an_early_answer_reaches_a_client_still_sending_its_body() {
    let t0 = raw_backend(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\nnope").await;
    let r = router(Config::default(), false, None).await;
    r.table.set(app("hello", &[t0.0]));
    for attempt in 0..5 {
        let s = TcpStream::connect(r.http).await.unwrap();
        let (mut rd, mut wr) = s.into_split();
        let n = 1_000_000;
        let writer = tokio::spawn(async move {
            let head =
                format!("POST / HTTP/1.1\r\nHost: hello.localhost\r\nContent-Length: {n}\r\n\r\n");
            let _ = wr.write_all(head.as_bytes()).await;
            let chunk = vec![b'x'; 64 * 1024];
            let mut sent = 0;
            while sent < n {
                let k = chunk.len().min(n - sent);
                if wr.write_all(&chunk[..k]).await.is_err() {
                    break;
                }
                sent += k;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(Ok(k)) = tokio::time::timeout(Duration::from_secs(3), rd.read(&mut buf)).await
        {
            if k == 0 {
                break;
            }
            out.extend_from_slice(&buf[..k]);
        }
        writer.abort();
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("HTTP/1.1 401"),
            "attempt {attempt}: {text:?}"
        );
    }
}
