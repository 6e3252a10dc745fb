//! Test helpers: a router on port 0 over a fresh route table, real backends (hyper servers on
//! port 0) and route entries.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use workflow_router::{AppRoutes, Config, Listeners, LogSink, RouteTable, Shutdown};

/// A running router.
pub struct Router {
    pub http: SocketAddr,
    pub https: Option<SocketAddr>,
    pub table: RouteTable,
    pub shutdown: Shutdown,
    pub task: tokio::task::JoinHandle<workflow_router::Result<()>>,
}

impl Router {
    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }
}

/// Starts a router with `config` (listen addresses ignored: port 0 on loopback).
pub async fn router(config: Config, https: bool, sink: Option<Arc<dyn LogSink>>) -> Router {
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https_l = if https {
        Some(TcpListener::bind("127.0.0.1:0").await.unwrap())
    } else {
        None
    };
    let http_addr = http.local_addr().unwrap();
    let https_addr = https_l.as_ref().map(|l| l.local_addr().unwrap());
    let table = RouteTable::new();
    let shutdown = Shutdown::new(CancellationToken::new(), Duration::from_secs(2));
    let listeners = Listeners {
        http,
        https: https_l,
    };
    let (t, s) = (table.clone(), shutdown.clone());
    let task = tokio::spawn(async move {
        match sink {
            Some(sink) => workflow_router::run_with_sink(config, listeners, t, sink, s).await,
            None => workflow_router::run(config, listeners, t, s).await,
        }
    });
    Router {
        http: http_addr,
        https: https_addr,
        table,
        shutdown,
        task,
    }
}

/// Routes for `app` over `backends`, everything else default (routable, no whitelist).
pub fn app(name: &str, backends: &[SocketAddr]) -> AppRoutes {
    AppRoutes {
        app: name.into(),
        domains: vec![],
        backends: backends.to_vec(),
        maintenance: false,
        routable: true,
        whitelist: vec![],
        certs: BTreeMap::new(),
        https_only: false,
    }
}

/// A response body for backends.
pub type Body = BoxBody<Bytes, Infallible>;

/// Text as a backend body.
pub fn text(s: impl Into<Bytes>) -> Body {
    Full::new(s.into()).boxed()
}

/// Serves `handler` on a fresh loopback port (HTTP/1.1 with upgrades) until the test ends.
pub async fn backend<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let h = handler.clone();
                    async move { Ok::<_, Infallible>(h(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

/// A backend answering its `name`, echoing the request's forwarding headers as
/// `echo-<header>` response headers.
pub async fn named_backend(name: &'static str) -> SocketAddr {
    backend(move |req: Request<Incoming>| async move {
        let mut resp = Response::new(text(name));
        for (k, v) in req.headers() {
            let k = k.as_str();
            if k.starts_with("x-forwarded-") || k == "x-request-start" || k == "host" {
                let echo = http::HeaderName::from_bytes(format!("echo-{k}").as_bytes()).unwrap();
                resp.headers_mut().insert(echo, v.clone());
            }
        }
        resp.headers_mut().insert(
            "echo-path",
            http::HeaderValue::from_str(req.uri().path()).unwrap(),
        );
        resp
    })
    .await
}

/// A loopback port nothing listens on.
pub async fn closed_port() -> SocketAddr {
    // On 127.0.0.2, which no other test binds: a port freed on 127.0.0.1 could be handed to a
    // backend of a test running at the same time, and "dead" would answer.
    let l = TcpListener::bind("127.0.0.2:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

/// A plain HTTP client that does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// GET `path` on the router with `Host: host`; status and body text.
pub async fn get(r: &Router, host: &str, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let resp = client()
        .get(r.url(path))
        .header("host", host)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.text().await.unwrap(), headers)
}
