//! Router vs nginx vs direct: the same small backend on loopback, the same load generator (wrk,
//! fixed connections), in the same run; prints requests/s, p50, p99 and the proxy's CPU time per
//! request, and the ratios against nginx. Not part of the pass/fail suite.
//!
//! Settings, the same for both proxies:
//! - worker threads: the router's `workers` (each a single-threaded event loop accepting on the
//!   shared listener, with its own upstream pool) = nginx's `worker_processes` = `WORKERS`
//! - keep-alive to the backend (nginx: `keepalive 256` per worker, HTTP/1.1, `Connection: ""`;
//!   the router: its pool, `max_idle_per_backend` 256 per worker)
//! - the same forwarding headers (`X-Forwarded-For`, `-Proto`, `-Port`, `-Host`,
//!   `X-Request-Start`, `Host`: what the router sends, as Deis's nginx router did)
//! - no access log (nginx `access_log off`; the router with no log sink)
//! - `TCP_NODELAY` on every socket (nginx's default for keep-alive connections)
//!
//! The backend is a hyper server on one thread (like one app process). Rounds are interleaved
//! (direct, nginx, router, ...) so background load on a shared machine hits all alike; the
//! summary gives each target's median and the median of the per-round ratios. CPU per request
//! counts the proxy's threads or processes only (from `/proc`), which moves less with
//! background load than throughput does.
//!
//! ```sh
//! apt-get install -y wrk nginx-light
//! cargo bench -p workflow-router --bench router_vs_nginx
//! # ROUTER_BENCH_SECS=10 ROUTER_BENCH_CONNS=64 ROUTER_BENCH_ROUNDS=3 ROUTER_BENCH_WORKERS=2
//! # ROUTER_BENCH_SHARED_RUNTIME=1 also measures the router with `workers = 0` on a
//! # WORKERS-thread tokio runtime ("router-rt").
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
    std::thread::Builder::new()
        .name("bench-backend".into())
        .spawn(move || {
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
        })?;
    Ok(addr)
}

/// How the router under test runs.
#[derive(Debug, Clone, Copy)]
enum RouterMode {
    /// `workers` threads of its own (the default configuration).
    Workers(usize),
    /// `workers = 0` on the caller's multi-thread tokio runtime of this many threads.
    SharedRuntime(usize),
}

/// The router with the default configuration but `workers`, on the bench's route table.
fn start_router(backend: SocketAddr, mode: RouterMode) -> Result<SocketAddr> {
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
    let (runtime, workers) = match mode {
        RouterMode::Workers(n) => (
            // Only awaits the router: its workers run their own event loops.
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            n,
        ),
        RouterMode::SharedRuntime(n) => (
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(n)
                .thread_name("router-rt")
                .enable_all()
                .build()?,
            0,
        ),
    };
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let listeners = Listeners {
                http: TcpListener::from_std(std_listener).expect("router listener"),
                https: None,
            };
            let config = Config {
                workers,
                ..Config::default()
            };
            let shutdown = Shutdown::new(CancellationToken::new(), Duration::from_secs(1));
            let r = workflow_router::run_with_sink(
                config,
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
        // SIGTERM: the master stops its workers (SIGKILL would leave them running, orphaned).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_nginx(backend: SocketAddr, workers: usize) -> Result<(Nginx, SocketAddr)> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let dir = tempfile::tempdir()?;
    let d = dir.path().display();
    let conf = format!(
        "daemon off;\nworker_processes {workers};\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  tcp_nodelay on;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           keepalive_requests 1000000;\n\
           upstream app {{ server {backend}; keepalive 256; }}\n\
           server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://app;\n\
               proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n\
               proxy_set_header Host $host;\n      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
               proxy_set_header X-Forwarded-Proto $scheme;\n      proxy_set_header X-Request-Start \"t=${{msec}}\";\n\
               proxy_set_header X-Forwarded-Port $server_port;\n      proxy_set_header X-Forwarded-Host $http_host;\n\
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

/// `utime + stime` in clock ticks from a `/proc/.../stat` line, and its parent pid.
fn stat_ticks(stat: &str) -> Option<(u64, u32)> {
    // The command name (field 2) may hold spaces; the fields after it do not.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ppid = f.get(1)?.parse().ok()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime, ppid))
}

/// CPU ticks used so far by this process's threads whose name starts with `prefix`.
fn thread_ticks(prefix: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|s| stat_ticks(&s).map(|(t, _)| t))
        .sum()
}

/// CPU ticks used so far by process `pid` and its children (nginx's master and workers).
fn process_tree_ticks(pid: u32) -> u64 {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0;
    };
    procs
        .flatten()
        .filter_map(|p| {
            let n: u32 = p.file_name().to_str()?.parse().ok()?;
            let (ticks, ppid) = stat_ticks(&std::fs::read_to_string(p.path().join("stat")).ok()?)?;
            (n == pid || ppid == pid).then_some(ticks)
        })
        .sum()
}

fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

#[derive(Debug, Clone, Copy)]
struct Stats {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU time of the proxy (for direct: the backend) per request, microseconds.
    cpu_us: f64,
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

/// Runs wrk against `addr`; `cpu` reads the CPU ticks of whatever is measured.
fn wrk(
    addr: SocketAddr,
    host: &str,
    secs: u64,
    conns: u64,
    cpu: &dyn Fn() -> u64,
    tick: f64,
) -> Result<Stats> {
    let before = cpu();
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
    let ticks = cpu().saturating_sub(before);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut stats = Stats {
        rps: 0.0,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        cpu_us: f64::NAN,
    };
    let mut requests = 0.0;
    for line in text.lines() {
        let mut f = line.split_whitespace();
        match (f.next(), f.next(), f.next()) {
            (Some("Requests/sec:"), Some(v), _) => stats.rps = v.parse().unwrap_or(0.0),
            (Some("50%"), Some(v), _) => stats.p50_ms = parse_latency(v).unwrap_or(f64::NAN),
            (Some("99%"), Some(v), _) => stats.p99_ms = parse_latency(v).unwrap_or(f64::NAN),
            (Some(n), Some("requests"), Some("in")) => requests = n.parse().unwrap_or(0.0),
            _ => {}
        }
    }
    if requests > 0.0 {
        stats.cpu_us = ticks as f64 / tick * 1e6 / requests;
    }
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        eprintln!("wrk reported errors for {addr}:\n{text}");
    }
    if stats.rps == 0.0 {
        bail!("wrk gave no result for {addr}:\n{text}");
    }
    Ok(stats)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

struct Target<'a> {
    name: &'static str,
    addr: SocketAddr,
    host: &'static str,
    cpu: Box<dyn Fn() -> u64 + 'a>,
    runs: Vec<Stats>,
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
    let rounds = env_or("ROUTER_BENCH_ROUNDS", 3).max(1);
    let workers = usize::try_from(env_or("ROUTER_BENCH_WORKERS", 2))?.max(1);
    let shared_runtime = std::env::var_os("ROUTER_BENCH_SHARED_RUNTIME").is_some();
    let tick = clock_ticks_per_sec();
    let backend = start_backend()?;
    let router = start_router(backend, RouterMode::Workers(workers))?;
    let router_rt = if shared_runtime {
        Some(start_router(backend, RouterMode::SharedRuntime(workers))?)
    } else {
        None
    };
    let (nginx_proc, nginx) = start_nginx(backend, workers)?;
    let nginx_pid = nginx_proc.child.id();
    let mut targets = vec![
        Target {
            name: "direct",
            addr: backend,
            host: "x",
            cpu: Box::new(|| thread_ticks("bench-backend")),
            runs: vec![],
        },
        Target {
            name: "nginx",
            addr: nginx,
            host: "bench.localhost",
            cpu: Box::new(move || process_tree_ticks(nginx_pid)),
            runs: vec![],
        },
        Target {
            name: "router",
            addr: router,
            host: "bench.localhost",
            cpu: Box::new(|| thread_ticks("router-worker")),
            runs: vec![],
        },
    ];
    if let Some(addr) = router_rt {
        targets.push(Target {
            name: "router-rt",
            addr,
            host: "bench.localhost",
            cpu: Box::new(|| thread_ticks("router-rt")),
            runs: vec![],
        });
    }
    println!(
        "wrk -t2 -c{conns} -d{secs}s, small GET, {rounds} interleaved rounds; router workers = \
         nginx worker_processes = {workers}; keep-alive to the backend on both; no access logs"
    );
    // Warm up every path (connection pools, page cache).
    for t in &targets {
        wrk(t.addr, t.host, 2, conns, &*t.cpu, tick)?;
    }
    println!(
        "{:<6} {:<10} {:>9} {:>8} {:>8} {:>8} {:>10} {:>10}",
        "round", "target", "req/s", "p50 ms", "p99 ms", "cpu us", "req/s/ngx", "p99/ngx"
    );
    for round in 1..=rounds {
        for t in targets.iter_mut() {
            let s = wrk(t.addr, t.host, secs, conns, &*t.cpu, tick)?;
            t.runs.push(s);
        }
        let base = targets[1].runs[targets[1].runs.len() - 1];
        for t in &targets {
            let s = t.runs[t.runs.len() - 1];
            println!(
                "{:<6} {:<10} {:>9.0} {:>8.3} {:>8.3} {:>8.1} {:>10.2} {:>10.2}",
                round,
                t.name,
                s.rps,
                s.p50_ms,
                s.p99_ms,
                s.cpu_us,
                s.rps / base.rps,
                s.p99_ms / base.p99_ms
            );
        }
    }
    println!();
    println!(
        "medians over {rounds} rounds (cpu us: the proxy's CPU time per request; direct: the backend's)"
    );
    println!(
        "{:<10} {:>9} {:>8} {:>8} {:>8} {:>10} {:>10} {:>10}",
        "target", "req/s", "p50 ms", "p99 ms", "cpu us", "req/s/ngx", "p99/ngx", "cpu/ngx"
    );
    let nginx_runs = targets[1].runs.clone();
    for t in &targets {
        let col = |f: fn(&Stats) -> f64| median(t.runs.iter().map(f).collect());
        let ratio = |f: fn(&Stats) -> f64| {
            median(
                t.runs
                    .iter()
                    .zip(&nginx_runs)
                    .map(|(s, n)| f(s) / f(n))
                    .collect(),
            )
        };
        println!(
            "{:<10} {:>9.0} {:>8.3} {:>8.3} {:>8.1} {:>10.2} {:>10.2} {:>10.2}",
            t.name,
            col(|s| s.rps),
            col(|s| s.p50_ms),
            col(|s| s.p99_ms),
            col(|s| s.cpu_us),
            ratio(|s| s.rps),
            ratio(|s| s.p99_ms),
            ratio(|s| s.cpu_us),
        );
    }
    Ok(())
}
