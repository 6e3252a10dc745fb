//! The router against real backends (hyper servers on port 0) and a real HTTP client:
//! routing by host, balancing, retries, the router's own pages, app settings, limits and
//! request logs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use workflow_router::{ChannelSink, Cidr, Config};

#[tokio::test]
async fn the_app_host_and_every_custom_domain_reach_the_app() {
    let r = router(Config::default(), false, None).await;
    let hello = named_backend("hello").await;
    let other = named_backend("other").await;
    let mut routes = app("hello", &[hello]);
    routes.domains = vec!["www.example.com".into(), "Shop.Example.Com".into()];
    r.table.set(routes);
    r.table.set(app("other", &[other]));

    for host in [
        "hello.localhost",
        &format!("hello.localhost:{}", r.http.port()),
        "HELLO.localhost.",
        "www.example.com",
        "shop.example.com",
    ] {
        let (status, body, _) = get(&r, host, "/").await;
        assert_eq!((status, body.as_str()), (200, "hello"), "host {host}");
    }
    let (status, body, _) = get(&r, "other.localhost", "/x?y=1").await;
    assert_eq!((status, body.as_str()), (200, "other"));
}

#[tokio::test]
async fn forwarding_headers_tell_the_app_about_the_client() {
    let r = router(Config::default(), false, None).await;
    let b = named_backend("hello").await;
    r.table.set(app("hello", &[b]));
    let host = format!("hello.localhost:{}", r.http.port());
    let resp = client()
        .get(r.url("/path?q=1"))
        .header("host", &host)
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    let v = |k: &str| {
        h.get(k)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert_eq!(v("echo-x-forwarded-for"), "203.0.113.9, 127.0.0.1");
    assert_eq!(v("echo-x-forwarded-proto"), "http");
    assert_eq!(v("echo-x-forwarded-port"), r.http.port().to_string());
    assert_eq!(v("echo-x-forwarded-host"), host);
    assert_eq!(
        v("echo-host"),
        host,
        "the app sees the host the user asked for"
    );
    assert_eq!(v("echo-path"), "/path");
    let start = v("echo-x-request-start");
    let secs: f64 = start.strip_prefix("t=").unwrap().parse().unwrap();
    assert!(secs > 1.6e9, "{start}");
}

#[tokio::test]
async fn requests_are_balanced_round_robin_across_three_backends() {
    let r = router(Config::default(), false, None).await;
    let backends = [
        named_backend("a").await,
        named_backend("b").await,
        named_backend("c").await,
    ];
    r.table.set(app("hello", &backends));
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..30 {
        let (status, body, _) = get(&r, "hello.localhost", "/").await;
        assert_eq!(status, 200);
        *counts.entry(body).or_insert(0) += 1;
    }
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        vec![("a".into(), 10), ("b".into(), 10), ("c".into(), 10)]
    );
}

#[tokio::test]
async fn a_backend_whose_port_is_closed_is_skipped_without_failing_requests() {
    let r = router(Config::default(), false, None).await;
    let dead = closed_port().await;
    let live = named_backend("live").await;
    r.table.set(app("hello", &[dead, live, dead]));
    for i in 0..9 {
        let (status, body, _) = get(&r, "hello.localhost", "/").await;
        assert_eq!((status, body.as_str()), (200, "live"), "request {i}");
    }
    // A request with a body is retried too: nothing had been sent.
    let resp = client()
        .post(r.url("/"))
        .header("host", "hello.localhost")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn only_dead_backends_give_a_502_page() {
    let r = router(Config::default(), false, None).await;
    r.table
        .set(app("hello", &[closed_port().await, closed_port().await]));
    let (status, body, _) = get(&r, "hello.localhost", "/").await;
    assert_eq!(status, 502);
    assert!(body.contains("hello"), "{body}");
}

/// Guards the router against a backend that hangs up after reading the request: the client
/// gets a 502 page, not a dropped connection (this path once panicked, unwritten).
#[tokio::test]
async fn a_backend_hanging_up_mid_request_gives_a_502_page() {
    use tokio::io::AsyncReadExt as _;
    let rude = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = rude.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = rude.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            drop(s);
        }
    });
    let r = router(Config::default(), false, None).await;
    r.table.set(app("hello", &[addr]));
    let (status, body, _) = get(&r, "hello.localhost", "/").await;
    assert_eq!(status, 502);
    assert!(body.contains("hello"), "{body}");
}

#[tokio::test]
async fn an_unknown_host_gets_a_404_page_naming_it_escaped() {
    let r = router(Config::default(), false, None).await;
    let (status, body, headers) = get(&r, "nope.localhost", "/").await;
    assert_eq!(status, 404);
    assert!(body.contains("<code>nope.localhost</code>"), "{body}");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    // Not a host at all: 400, and the text comes back escaped.
    let (status, body, _) = get(&r, "<b>x</b>", "/").await;
    assert_eq!(status, 400);
    assert!(body.contains("&lt;b&gt;x&lt;/b&gt;"), "{body}");
    assert!(!body.contains("<b>x"), "{body}");
}

#[tokio::test]
async fn maintenance_and_no_ready_backend_answer_503_saying_which() {
    let r = router(Config::default(), false, None).await;
    let b = named_backend("hello").await;
    let mut routes = app("hello", &[b]);
    routes.maintenance = true;
    r.table.set(routes);
    let (status, body, _) = get(&r, "hello.localhost", "/").await;
    assert_eq!(status, 503);
    assert!(body.contains("maintenance"), "{body}");

    r.table.set(app("hello", &[]));
    let (status, body, _) = get(&r, "hello.localhost", "/").await;
    assert_eq!(status, 503);
    assert!(body.contains("no web process ready"), "{body}");

    r.table.set(app("hello", &[b]));
    assert_eq!(
        get(&r, "hello.localhost", "/").await.0,
        200,
        "changes apply at once"
    );
}

#[tokio::test]
async fn routable_off_is_a_404() {
    let r = router(Config::default(), false, None).await;
    let b = named_backend("hello").await;
    let mut routes = app("hello", &[b]);
    routes.routable = false;
    r.table.set(routes);
    let (status, body, _) = get(&r, "hello.localhost", "/").await;
    assert_eq!(status, 404);
    assert!(body.contains("hello.localhost"), "{body}");
}

#[tokio::test]
async fn the_whitelist_is_checked_against_the_peer_address() {
    let r = router(Config::default(), false, None).await;
    let b = named_backend("hello").await;
    let mut routes = app("hello", &[b]);
    routes.whitelist = vec![Cidr {
        addr: "10.0.0.0".parse().unwrap(),
        prefix: 8,
    }];
    r.table.set(routes.clone());
    // A forged X-Forwarded-For does not get a client in.
    let resp = client()
        .get(r.url("/"))
        .header("host", "hello.localhost")
        .header("x-forwarded-for", "10.1.2.3")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("127.0.0.1"));

    routes.whitelist.push(Cidr {
        addr: "127.0.0.0".parse().unwrap(),
        prefix: 8,
    });
    r.table.set(routes);
    assert_eq!(get(&r, "hello.localhost", "/").await.0, 200);
}

#[tokio::test]
async fn oversized_bodies_and_heads_are_refused() {
    let config = Config {
        max_body_bytes: 1024,
        max_header_bytes: 8192,
        ..Config::default()
    };
    let r = router(config, false, None).await;
    let b = named_backend("hello").await;
    r.table.set(app("hello", &[b]));
    let resp = client()
        .post(r.url("/"))
        .header("host", "hello.localhost")
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let resp = client()
        .get(r.url("/"))
        .header("host", "hello.localhost")
        .header("x-big", "y".repeat(20_000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 431);
    // Within the limits all is well.
    let resp = client()
        .post(r.url("/"))
        .header("host", "hello.localhost")
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn every_request_is_logged_once_with_its_app_status_and_bytes() {
    let (sink, mut rx) = ChannelSink::new(64);
    let r = router(Config::default(), false, Some(Arc::new(sink))).await;
    let b = named_backend("hello").await;
    r.table.set(app("hello", &[b]));
    client()
        .get(r.url("/a?b=c"))
        .header("host", "hello.localhost")
        .header("user-agent", "test-agent")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.app.as_deref(), Some("hello"));
    assert_eq!(e.status, 200);
    assert_eq!(e.request, "GET /a?b=c HTTP/1.1");
    assert_eq!(e.bytes_sent, 5);
    assert_eq!(e.upstream, Some(b));
    assert_eq!(e.user_agent.as_deref(), Some("test-agent"));
    assert_eq!(e.server_name, "hello.localhost");
    let line = e.format();
    assert!(
        line.contains(" - hello - 127.0.0.1 - - - 200 - \"GET /a?b=c HTTP/1.1\" - 5 - "),
        "{line}"
    );

    get(&r, "nope.localhost", "/").await;
    let e = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((e.app, e.status), (None, 404));
}

#[tokio::test]
async fn request_logs_land_in_the_file_the_shipper_follows() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        log_dir: Some(dir.path().to_path_buf()),
        ..Config::default()
    };
    let r = router(config, false, None).await;
    let b = named_backend("hello").await;
    r.table.set(app("hello", &[b]));
    for _ in 0..3 {
        assert_eq!(get(&r, "hello.localhost", "/").await.0, 200);
    }
    // Stopping the router drops the sink; its writer flushes what is queued and ends.
    r.shutdown.cancel();
    r.task.await.unwrap().unwrap();
    let path = dir.path().join("hello-router_hello_hello-router-0.log");
    let mut text = String::new();
    for _ in 0..200 {
        text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.lines().count() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(text.lines().count(), 3, "{text}");
    for line in text.lines() {
        let (ts, rest) = line.split_once(' ').unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{line}");
        assert!(rest.starts_with("stdout F ["), "{line}");
        assert!(rest.contains(" - hello - 127.0.0.1 - "), "{line}");
    }
}
