//! Router vs nginx vs direct: the same small backend on loopback, the same load generator (wrk,
//! fixed connections), in the same run; prints requests/s, p50 and p99 and the ratios against
//! nginx. Not part of the pass/fail suite.
//!
//! ```sh
//! apt-get install -y wrk nginx-light
//! cargo bench -p workflow-router --bench router_vs_nginx
//! # ROUTER_BENCH_SECS=10 ROUTER_BENCH_CONNS=64 ROUTER_BENCH_ROUNDS=2 to change the load
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use workflow_router::{AppRoutes, Config, Listeners, NoLog, RouteTable, Shutdown};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A backend answering a small body, on its own single-threaded runtime (like one app process).
fn start_backend() -> Result<SocketAddr> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("backend runtime");
        rt.block_on(async move {
            let listener = TcpListener::from_std(std_listener).expect("backend listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                            b"hello from the backend\n",
                        ))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
    });
    Ok(addr)
}

/// The router on a 2-worker runtime (nginx gets 2 worker processes).
fn start_router(backend: SocketAddr) -> Result<SocketAddr> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let table = RouteTable::new();
    table.set(AppRoutes {
        app: "bench".into(),
        domains: vec![],
        backends: vec![backend],
        maintenance: false,
        routable: true,
        whitelist: vec![],
        certs: Default::default(),
        https_only: false,
    });
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("router runtime");
        rt.block_on(async move {
            let listeners = Listeners {
                http: TcpListener::from_std(std_listener).expect("router listener"),
                https: None,
            };
            let shutdown = Shutdown::new(CancellationToken::new(), Duration::from_secs(1));
            let r = workflow_router::run_with_sink(
                Config::default(),
                listeners,
                table,
                std::sync::Arc::new(NoLog),
                shutdown,
            )
            .await;
            if let Err(e) = r {
                eprintln!("router: {e}");
            }
        });
    });
    Ok(addr)
}

/// nginx as a reverse proxy with upstream keep-alive, access log off (as the router here).
struct Nginx {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_nginx(backend: SocketAddr) -> Result<(Nginx, SocketAddr)> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let dir = tempfile::tempdir()?;
    let d = dir.path().display();
    let conf = format!(
        "daemon off;\nworker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           keepalive_requests 1000000;\n\
           upstream app {{ server {backend}; keepalive 256; }}\n\
           server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://app;\n\
               proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n\
               proxy_set_header Host $host;\n      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
               proxy_set_header X-Forwarded-Proto $scheme;\n      proxy_set_header X-Request-Start \"t=${{msec}}\";\n\
             }}\n  }}\n}}\n"
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf)?;
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting nginx")?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let nginx = Nginx { child, _dir: dir };
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok((nginx, addr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nginx did not start listening on {addr}")
}

#[derive(Debug, Clone, Copy)]
struct Stats {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn parse_latency(v: &str) -> Option<f64> {
    let v = v.trim();
    let (num, mult) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|x| x * mult)
}

fn wrk(addr: SocketAddr, host: &str, secs: u64, conns: u64) -> Result<Stats> {
    let out = Command::new("wrk")
        .args([
            "-t",
            "2",
            "-c",
            &conns.to_string(),
            "-d",
            &format!("{secs}s"),
            "--latency",
        ])
        .args(["-H", &format!("Host: {host}")])
        .arg(format!("http://{addr}/"))
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut stats = Stats {
        rps: 0.0,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
    };
    for line in text.lines() {
        let mut f = line.split_whitespace();
        match (f.next(), f.next()) {
            (Some("Requests/sec:"), Some(v)) => stats.rps = v.parse().unwrap_or(0.0),
            (Some("50%"), Some(v)) => stats.p50_ms = parse_latency(v).unwrap_or(f64::NAN),
            (Some("99%"), Some(v)) => stats.p99_ms = parse_latency(v).unwrap_or(f64::NAN),
            _ => {}
        }
    }
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        eprintln!("wrk reported errors for {addr}:\n{text}");
    }
    if stats.rps == 0.0 {
        bail!("wrk gave no result for {addr}:\n{text}");
    }
    Ok(stats)
}

fn main() -> Result<()> {
    if !have("wrk") || !have("nginx") {
        eprintln!(
            "skipping: the router benchmark needs wrk and nginx (apt-get install wrk nginx-light)"
        );
        return Ok(());
    }
    let secs = env_or("ROUTER_BENCH_SECS", 10);
    let conns = env_or("ROUTER_BENCH_CONNS", 64);
    let rounds = env_or("ROUTER_BENCH_ROUNDS", 2);
    let backend = start_backend()?;
    let router = start_router(backend)?;
    let (_nginx, nginx) = start_nginx(backend)?;
    // Warm up every path (connection pools, page cache).
    for (addr, host) in [
        (backend, "x"),
        (nginx, "bench.localhost"),
        (router, "bench.localhost"),
    ] {
        wrk(addr, host, 2, conns)?;
    }
    let mut results: Vec<(&str, Vec<Stats>)> =
        vec![("direct", vec![]), ("nginx", vec![]), ("router", vec![])];
    // Interleaved rounds, so background load on a shared machine hits all three alike.
    for _ in 0..rounds {
        for (name, runs) in results.iter_mut() {
            let (addr, host) = match *name {
                "direct" => (backend, "x"),
                "nginx" => (nginx, "bench.localhost"),
                _ => (router, "bench.localhost"),
            };
            runs.push(wrk(addr, host, secs, conns)?);
        }
    }
    let median = |runs: &[Stats]| {
        let mut v = runs.to_vec();
        v.sort_by(|a, b| a.rps.total_cmp(&b.rps));
        v[v.len() / 2]
    };
    let summary: Vec<(&str, Stats)> = results.iter().map(|(n, r)| (*n, median(r))).collect();
    let base = summary[1].1;
    println!(
        "wrk -t2 -c{conns} -d{secs}s, {rounds} interleaved rounds (median by throughput), small GET"
    );
    println!(
        "{:<8} {:>12} {:>10} {:>10} {:>14} {:>12}",
        "target", "req/s", "p50 ms", "p99 ms", "req/s vs nginx", "p99 vs nginx"
    );
    for (name, s) in &summary {
        println!(
            "{:<8} {:>12.0} {:>10.3} {:>10.3} {:>14.2} {:>12.2}",
            name,
            s.rps,
            s.p50_ms,
            s.p99_ms,
            s.rps / base.rps,
            s.p99_ms / base.p99_ms
        );
    }
    Ok(())
}
