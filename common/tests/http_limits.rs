//! The HTTP listeners' limits (issue 10) over real sockets: a flooded listener starves no
//! other, idle connections are closed after the header-read timeout, and an answer given
//! before the request body was read never leaves a half-read connection open for reuse.

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use workflow_common::http::{Limits, serve_with};
use workflow_common::shutdown::Shutdown;

fn app() -> Router {
    Router::new()
        .route("/ok", get(|| async { "ok" }))
        // Answers without reading the body, as an auth check does.
        .route(
            "/reject",
            post(|| async { (http::StatusCode::UNAUTHORIZED, "no") }),
        )
        // Reads the body first.
        .route("/echo", post(|body: String| async move { body }))
}

async fn start(limits: Limits, stop: &CancellationToken) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let shutdown = Shutdown::new(stop.clone(), Duration::from_secs(1));
    tokio::spawn(async move { serve_with(l, app(), &shutdown, "test", limits).await });
    addr
}

/// Reads one HTTP/1.1 answer with a Content-Length body; returns the head and the body.
async fn read_answer(s: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await.unwrap();
                assert!(n > 0, "EOF inside the body");
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
            return (head, body);
        }
        let n = s.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "EOF before an answer; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn get_ok(addr: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /ok HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    read_answer(&mut s).await.1
}

/// Guards issue 10: idle connections filling one listener's cap leave other listeners
/// answering, and are closed after the header-read timeout, which frees the cap.
#[tokio::test]
async fn a_flooded_listener_starves_no_other_and_idle_ones_are_closed() {
    let stop = CancellationToken::new();
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        max_connections: 8,
    };
    let flooded = start(limits, &stop).await;
    let other = start(Limits::default(), &stop).await;
    let mut idle = Vec::new();
    for _ in 0..64 {
        idle.push(TcpStream::connect(flooded).await.unwrap());
    }
    assert_eq!(get_ok(other).await, "ok");
    // Every idle connection is eventually closed (EOF), the queued ones after being accepted.
    for s in &mut idle {
        let mut b = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut b))
            .await
            .expect("an idle connection stays open")
            .unwrap_or(0);
        assert_eq!(n, 0, "an idle connection got data");
    }
    assert_eq!(get_ok(flooded).await, "ok");
    stop.cancel();
}

/// Guards issue 10: a client writing headers, then the body 10 ms later (Go's net/http), can
/// reuse the connection after an early 401 — or is told `Connection: close`.
#[tokio::test]
async fn an_early_reject_does_not_poison_the_connection() {
    let stop = CancellationToken::new();
    let addr = start(Limits::default(), &stop).await;
    for path in ["/reject", "/echo"] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        s.write_all(b"hello").await.unwrap();
        let (head, _) = read_answer(&mut s).await;
        let closes = head
            .lines()
            .any(|l| l.eq_ignore_ascii_case("connection: close"));
        if path == "/echo" {
            assert!(!closes, "a read body keeps the connection: {head}");
        }
        if !closes {
            s.write_all(b"GET /ok HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            let (head2, body) = read_answer(&mut s).await;
            assert!(head2.starts_with("HTTP/1.1 200"), "{path}: {head2}");
            assert_eq!(body, "ok");
        }
    }
    stop.cancel();
}
