//! The client side of the router's HTTP/1.1, byte for byte: pipelining, HTTP/1.0 clients,
//! chunked and `Expect: 100-continue` request bodies, HEAD, and requests whose framing
//! cannot be trusted.

mod common;

use std::time::Duration;

use common::*;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use workflow_router::Config;

/// Reads until `done` says the bytes so far are complete (or the router closes).
async fn read_until(s: &mut TcpStream, done: impl Fn(&str) -> bool) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if done(&text) {
            return text;
        }
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return text,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("no complete answer in 5 s; got {text:?}"),
        }
    }
}

/// An echo backend: answers the request body, and the method and path in headers.
async fn echo() -> std::net::SocketAddr {
    backend(|req: hyper::Request<hyper::body::Incoming>| async move {
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let mut resp = hyper::Response::new(text(body));
        resp.headers_mut()
            .insert("echo-method", method.parse().unwrap());
        resp.headers_mut()
            .insert("echo-path", path.parse().unwrap());
        resp
    })
    .await
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let r = router(Config::default(), false, None).await;
    r.table.set(app("hello", &[echo().await]));
    let mut s = TcpStream::connect(r.http).await.unwrap();
    s.write_all(
        b"GET /one HTTP/1.1\r\nHost: hello.localhost\r\n\r\n\
          POST /two HTTP/1.1\r\nHost: hello.localhost\r\nContent-Length: 3\r\n\r\nabc\
          GET /three HTTP/1.1\r\nHost: hello.localhost\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    // The last request asked for the close: everything up to it.
    let text = read_until(&mut s, |_| false).await;
    let one = text.find("echo-path: /one").expect(&text);
    let two = text.find("echo-path: /two").expect(&text);
    let three = text.find("echo-path: /three").expect(&text);
    assert!(one < two && two < three, "{text}");
    assert!(text.contains("abc"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
}

#[tokio::test]
async fn http_1_0_clients_get_a_length_or_the_close() {
    let r = router(Config::default(), false, None).await;
    r.table.set(app("hello", &[echo().await]));
    let mut s = TcpStream::connect(r.http).await.unwrap();
    s.write_all(b"GET /old HTTP/1.0\r\nHost: hello.localhost\r\n\r\n")
        .await
        .unwrap();
    // No keep-alive asked: the router closes after the answer.
    let text = read_until(&mut s, |_| false).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("connection: close"), "{text}");

    let mut s = TcpStream::connect(r.http).await.unwrap();
    s.write_all(b"GET /a HTTP/1.0\r\nHost: hello.localhost\r\nConnection: keep-alive\r\n\r\n")
        .await
        .unwrap();
    let text = read_until(&mut s, |t| t.contains("\r\n\r\n")).await;
    assert!(text.contains("connection: keep-alive"), "{text}");
}

#[tokio::test]
async fn chunked_and_expect_continue_bodies_reach_the_backend() {
    let r = router(Config::default(), false, None).await;
    r.table.set(app("hello", &[echo().await]));
    let mut s = TcpStream::connect(r.http).await.unwrap();
    s.write_all(
        b"POST /c HTTP/1.1\r\nHost: hello.localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .await
    .unwrap();
    let text = read_until(&mut s, |t| t.contains("hello world")).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");

    let mut s = TcpStream::connect(r.http).await.unwrap();
    s.write_all(
        b"PUT /e HTTP/1.1\r\nHost: hello.localhost\r\nContent-Length: 4\r\n\
          Expect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let interim = read_until(&mut s, |t| t.contains("\r\n\r\n")).await;
    assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
    s.write_all(b"data").await.unwrap();
    let text = read_until(&mut s, |t| t.contains("data")).await;
    assert!(text.contains("HTTP/1.1 200"), "{text}");
}

#[tokio::test]
async fn a_malformed_chunked_body_is_the_clients_fault() {
    let r = router(Config::default(), false, None).await;
    r.table.set(app("hello", &[echo().await]));
    let mut s = TcpStream::connect(r.http).await.unwrap();
    s.write_all(
        b"POST /c HTTP/1.1\r\nHost: hello.localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\nzz\r\n",
    )
    .await
    .unwrap();
    let text = read_until(&mut s, |_| false).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("chunk size"), "{text}");
}

#[tokio::test]
async fn head_answers_carry_the_length_but_no_body() {
    let r = router(Config::default(), false, None).await;
    r.table.set(app("hello", &[named_backend("hello").await]));
    let mut s = TcpStream::connect(r.http).await.unwrap();
    s.write_all(
        b"HEAD / HTTP/1.1\r\nHost: hello.localhost\r\n\r\n\
          GET / HTTP/1.1\r\nHost: hello.localhost\r\n\r\n",
    )
    .await
    .unwrap();
    let text = read_until(&mut s, |t| t.ends_with("hello")).await;
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
    assert_eq!(text.matches("content-length: 5").count(), 2, "{text}");
    // The HEAD answer's head is followed at once by the GET answer's.
    assert_eq!(text.matches("\r\n\r\nhello").count(), 1, "{text}");
    assert!(text.ends_with("\r\n\r\nhello"), "{text}");
}

#[tokio::test]
async fn requests_with_untrustworthy_framing_or_heads_get_a_400_and_the_close() {
    let r = router(Config::default(), false, None).await;
    r.table.set(app("hello", &[echo().await]));
    for bad in [
        &b"POST / HTTP/1.1\r\nHost: hello.localhost\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: hello.localhost\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: hello.localhost\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost hello.localhost\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: hello.localhost\r\nX-Folded: a\r\n b\r\n\r\n",
        b"GET hello HTTP/1.1\r\nHost: hello.localhost\r\n\r\n",
        b"CONNECT hello.localhost:80 HTTP/1.1\r\nHost: hello.localhost\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: hello.localhost\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(r.http).await.unwrap();
        s.write_all(bad).await.unwrap();
        let text = read_until(&mut s, |_| false).await;
        assert!(
            text.starts_with("HTTP/1.1 400"),
            "{:?} got {text}",
            String::from_utf8_lossy(bad)
        );
        assert!(text.contains("connection: close"), "{text}");
        assert!(text.contains("\r\ndate: "), "{text}");
    }
}

#[tokio::test]
async fn a_backend_without_length_streams_chunked_to_the_client() {
    let raw = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = raw.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = raw.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
                .await;
        }
    });
    let r = router(Config::default(), false, None).await;
    r.table.set(app("hello", &[addr]));
    let mut s = TcpStream::connect(r.http).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: hello.localhost\r\n\r\n")
        .await
        .unwrap();
    let text = read_until(&mut s, |t| t.ends_with("0\r\n\r\n")).await;
    assert!(text.contains("transfer-encoding: chunked"), "{text}");
    // The backend sent no Date: the router adds one, as a proxy must.
    assert!(text.contains("\r\ndate: "), "{text}");
    assert!(text.contains("d\r\nuntil the end\r\n0\r\n\r\n"), "{text}");
    // The backend's close is not the client's: the connection takes another request.
    s.write_all(b"GET / HTTP/1.1\r\nHost: hello.localhost\r\n\r\n")
        .await
        .unwrap();
    let text = read_until(&mut s, |t| t.ends_with("0\r\n\r\n")).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

/// Guards draining: when the router is told to stop, an idle keep-alive connection is closed
/// at once, a request in flight still gets its whole answer (with `connection: close`), an
/// upgraded tunnel keeps working until the grace period (2 s here) ends and is then cut, and
/// the router finishes.
#[tokio::test]
async fn stopping_drains_requests_in_flight_and_cuts_tunnels_after_the_grace_period() {
    let r = router(Config::default(), false, None).await;
    let slow = backend(|_req: hyper::Request<hyper::body::Incoming>| async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        hyper::Response::new(text("slow answer"))
    })
    .await;
    // A raw backend that switches protocols and then echoes.
    let raw = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tun = raw.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = raw.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n")
                    .await;
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    r.table.set(app("fast", &[named_backend("fast").await]));
    r.table.set(app("slow", &[slow]));
    r.table.set(app("tun", &[tun]));

    let mut idle = TcpStream::connect(r.http).await.unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: fast.localhost\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut idle, |t| t.ends_with("fast")).await;

    let mut tunnel = TcpStream::connect(r.http).await.unwrap();
    tunnel
        .write_all(b"GET / HTTP/1.1\r\nHost: tun.localhost\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let switched = read_until(&mut tunnel, |t| t.contains("\r\n\r\n")).await;
    assert!(switched.starts_with("HTTP/1.1 101"), "{switched}");

    let mut inflight = TcpStream::connect(r.http).await.unwrap();
    inflight
        .write_all(b"GET / HTTP/1.1\r\nHost: slow.localhost\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopped_at = std::time::Instant::now();
    r.shutdown.cancel();

    // The idle connection goes at once.
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(1), idle.read(&mut buf))
        .await
        .expect("the idle connection is closed at once")
        .unwrap_or(0);
    assert_eq!(n, 0);
    // The request in flight is answered whole, and told the connection ends.
    let answer = read_until(&mut inflight, |_| false).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("slow answer"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    // The tunnel still carries bytes within the grace period...
    tunnel.write_all(b"ping").await.unwrap();
    let echoed = read_until(&mut tunnel, |t| t.ends_with("ping")).await;
    assert!(echoed.ends_with("ping"), "{echoed}");
    // ...and is cut when it ends.
    let n = tokio::time::timeout(Duration::from_secs(5), tunnel.read(&mut buf))
        .await
        .expect("the tunnel is cut after the grace period")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(
        stopped_at.elapsed() >= Duration::from_millis(1500),
        "cut before the grace period"
    );
    tokio::time::timeout(Duration::from_secs(5), r.task)
        .await
        .expect("the router finishes")
        .unwrap()
        .unwrap();
}
