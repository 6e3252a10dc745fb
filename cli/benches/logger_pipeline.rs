//! Logger benchmarks, each printed as a ratio against a baseline measured in the same run:
//!
//! - ship: CRI files -> acknowledged storage through a real shipper process and an in-process
//!   aggregator (segments + tantivy), vs `cat`-style copying of the same files into a TCP socket;
//!   also the shipper's peak RSS
//! - index: tantivy indexing throughput on one writer thread, vs a plain memchr line scan
//! - search: newest 100 hits of a selective term, median, vs ripgrep (`rg`) over the raw files
//!   (an in-process memmem scan when `rg` is not installed)
//! - follow: line written to a file -> received by a follow, p50/p99
//!
//! `cargo bench -p workflow-cli --bench logger_pipeline` (or `scripts/logger-bench.sh`) (size: `LOGGER_BENCH_MIB`, default 256).
//! Not part of the pass/fail suite.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use workflow_clients::logger::{LogClient, Search, now_unix_nanos};
use workflow_common::shutdown::Shutdown;
use workflow_logger::index::Indexer;
use workflow_logger::loggen::Rng;
use workflow_logger::parse::format_rfc3339_nanos;
use workflow_logger::store::{Store, StoreConfig};
use workflow_logger::{Config, Listeners, Role};

const BIN: &str = env!("CARGO_BIN_EXE_workflow");
const APP: &str = "bench";
const NEEDLE: &str = "xylophone";
const FILES: usize = 8;

fn mib(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64().max(1e-9)
}

/// Writes `total` bytes of CRI lines over FILES files; one line in 1000 holds NEEDLE.
fn generate(dir: &Path, total: u64) -> (u64, u64, Vec<PathBuf>) {
    let words = [
        "GET",
        "POST",
        "/api/v1/items",
        "200",
        "404",
        "timeout",
        "db",
        "cache",
        "miss",
        "user",
        "ok",
        "retry",
        "latency_ms=12",
        "request_id=af31",
        "worker",
        "queue",
        "done",
    ];
    let mut rng = Rng::new(1);
    let mut paths = Vec::new();
    let mut writers = Vec::new();
    for i in 0..FILES {
        let ty = if i % 2 == 0 { "web" } else { "worker" };
        let p = dir.join(format!("{APP}-{ty}-{i}_{APP}_{ty}-{i:012x}.log"));
        writers.push(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(&p).unwrap(),
        ));
        paths.push(p);
    }
    let (mut bytes, mut lines) = (0u64, 0u64);
    let mut t = 1_700_000_000_000_000_000i64;
    let mut line = Vec::with_capacity(512);
    while bytes < total {
        t += 1000;
        line.clear();
        line.extend_from_slice(format_rfc3339_nanos(t).as_bytes());
        line.extend_from_slice(b" stdout F ");
        for _ in 0..(12 + rng.below(20)) {
            line.extend_from_slice(words[rng.below(words.len() as u64) as usize].as_bytes());
            line.push(b' ');
        }
        if lines % 1000 == 0 {
            line.extend_from_slice(NEEDLE.as_bytes());
        }
        line.push(b'\n');
        writers[(lines % FILES as u64) as usize]
            .write_all(&line)
            .unwrap();
        bytes += line.len() as u64;
        lines += 1;
    }
    for w in &mut writers {
        w.flush().unwrap();
    }
    (bytes, lines, paths)
}

/// Baseline: copy the files into a TCP socket read by a byte-counting sink.
fn cat_into_socket(paths: &[PathBuf]) -> Duration {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sink = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        std::io::copy(&mut s, &mut std::io::sink()).unwrap()
    });
    let start = Instant::now();
    let mut out = std::net::TcpStream::connect(addr).unwrap();
    for p in paths {
        std::io::copy(&mut std::fs::File::open(p).unwrap(), &mut out).unwrap();
    }
    drop(out);
    sink.join().unwrap();
    start.elapsed()
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn spawn_shipper(logs: &Path, state: &Path, endpoint: &str) -> Child {
    Command::new(BIN)
        .args([
            "logger",
            "ship",
            "--node",
            "bench",
            "--aggregator",
            endpoint,
        ])
        .arg("--log-dir")
        .arg(logs)
        .arg("--state-dir")
        .arg(state)
        .env("RUST_LOG", "warn")
        .env("WORKFLOW_PLATFORM_CREDENTIAL", "bench-credential")
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let total: u64 = std::env::var("LOGGER_BENCH_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
        << 20;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (logs, state, data) = (
        dir.path().join("logs"),
        dir.path().join("state"),
        dir.path().join("data"),
    );
    std::fs::create_dir_all(&logs).unwrap();
    let (bytes, lines, paths) = generate(&logs, total);
    println!(
        "generated {:.0} MiB, {lines} lines in {FILES} files",
        bytes as f64 / 1048576.0
    );

    // --- ship ---
    let cat = cat_into_socket(&paths);
    let cat_rate = mib(bytes, cat);
    let shutdown = CancellationToken::new();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let mut config = Config {
        role: Role::Aggregate,
        platform_credential: "bench-credential".into(),
        ..Config::default()
    };
    config.aggregate.data_dir = data.clone();
    let agg = rt.spawn(workflow_logger::run(
        config,
        Listeners {
            grpc: Some(listener),
        },
        Shutdown::new(shutdown.clone(), Duration::from_secs(10)),
    ));
    let start = Instant::now();
    let mut shipper = spawn_shipper(&logs, &state, &endpoint);
    let pid = shipper.id();
    let mut peak_rss = 0;
    rt.block_on(async {
        let client = LogClient::new(
            &endpoint,
            &workflow_clients::PlatformCredential::new("bench-credential").unwrap(),
        )
        .unwrap();
        loop {
            peak_rss = peak_rss.max(rss_kib(pid, "VmRSS:"));
            let (_, next) = client.tail(APP, 0).await.unwrap();
            if next >= lines {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let ship = start.elapsed();
    peak_rss = peak_rss.max(rss_kib(pid, "VmHWM:"));
    let ship_rate = mib(bytes, ship);
    println!(
        "ship:   {ship_rate:8.1} MiB/s files -> acknowledged storage (indexing runs alongside) | baseline cat->socket {cat_rate:8.1} MiB/s | ratio {:.2}x",
        ship_rate / cat_rate
    );
    println!(
        "ship:   shipper peak RSS {:.1} MiB",
        peak_rss as f64 / 1024.0
    );

    // --- search ---
    rt.block_on(async {
        let client = LogClient::new(
            &endpoint,
            &workflow_clients::PlatformCredential::new("bench-credential").unwrap(),
        )
        .unwrap();
        let q = Search {
            query: NEEDLE.into(),
            limit: 100,
            ..Search::default()
        };
        // Wait until everything is indexed: the newest line is a hit of the match-all query.
        let want = lines.div_ceil(1000).min(100) as usize;
        let newest = Search {
            limit: 1,
            ..Search::default()
        };
        let deadline = Instant::now() + Duration::from_secs(600);
        while Instant::now() < deadline {
            let (top, _) = client.search(APP, &newest).await.unwrap();
            if top.first().is_some_and(|r| r.cursor + 1 >= lines) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!("search: index caught up {:.1} s after the last line was acknowledged", start.elapsed().as_secs_f64() - ship.as_secs_f64());
        let mut times = Vec::new();
        for _ in 0..30 {
            let s = Instant::now();
            let (hits, _) = client.search(APP, &q).await.unwrap();
            times.push(s.elapsed());
            assert_eq!(hits.len(), want);
        }
        let search = median(&mut times);
        let (baseline, what) = match Command::new("rg").arg("--version").output() {
            Ok(_) => {
                let s = Instant::now();
                let out = Command::new("rg").args(["-c", NEEDLE]).arg(&logs).output().unwrap();
                assert!(out.status.success());
                (s.elapsed(), "ripgrep")
            }
            Err(_) => {
                let s = Instant::now();
                let finder = memchr::memmem::Finder::new(NEEDLE);
                let mut n = 0;
                for p in &paths {
                    n += finder.find_iter(&std::fs::read(p).unwrap()).count();
                }
                assert!(n > 0);
                (s.elapsed(), "memmem scan")
            }
        };
        println!(
            "search: {:8.2} ms median for the newest 100 hits over {:.0} MiB | baseline {what} {:8.2} ms | ratio {:.1}x faster",
            search.as_secs_f64() * 1000.0,
            bytes as f64 / 1048576.0,
            baseline.as_secs_f64() * 1000.0,
            baseline.as_secs_f64() / search.as_secs_f64()
        );
    });

    // --- follow latency ---
    rt.block_on(async {
        let client = LogClient::new(
            &endpoint,
            &workflow_clients::PlatformCredential::new("bench-credential").unwrap(),
        )
        .unwrap();
        let (_, next) = client.tail(APP, 0).await.unwrap();
        let mut follow = client.follow(APP, next).await.unwrap();
        let path = logs.join(format!("{APP}-web-99_{APP}_web-{:012x}.log", 99));
        let writer = tokio::task::spawn_blocking(move || {
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
            for i in 0..200 {
                let now = now_unix_nanos();
                writeln!(f, "{} stdout F follow {i} sent={now}", format_rfc3339_nanos(now)).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let mut lat = Vec::new();
        while lat.len() < 200 {
            let r = follow.next().await.unwrap().unwrap();
            let got = now_unix_nanos();
            let msg = String::from_utf8_lossy(&r.message).into_owned();
            if let Some(sent) = msg.split("sent=").nth(1).and_then(|s| s.parse::<i64>().ok()) {
                lat.push(Duration::from_nanos((got - sent).max(0) as u64));
            }
        }
        writer.await.unwrap();
        println!(
            "follow: p50 {:6.1} ms, p99 {:6.1} ms (file write -> follow receives; shipper polls every 100 ms)",
            percentile(&mut lat, 0.5).as_secs_f64() * 1000.0,
            percentile(&mut lat, 0.99).as_secs_f64() * 1000.0
        );
    });
    shipper.kill().unwrap();
    let _ = shipper.wait();
    shutdown.cancel();
    rt.block_on(agg).unwrap().unwrap();

    // --- index ---
    let store = Store::open(StoreConfig::new(&data), None).unwrap();
    let log = store.app(APP).unwrap();
    let mut from = 0;
    let mut text_bytes = 0u64;
    loop {
        // Warms the page cache too, as the aggregator's indexer reads freshly written segments.
        let recs = log.read(from, 4096).unwrap();
        let Some(last) = recs.last() else { break };
        from = last.cursor + 1;
        text_bytes += recs.iter().map(|r| r.message.len() as u64).sum::<u64>();
    }
    let scan_start = Instant::now();
    let mut newlines = 0usize;
    for p in &paths {
        newlines += memchr::memchr_iter(b'\n', &std::fs::read(p).unwrap()).count();
    }
    let scan = scan_start.elapsed();
    assert!(newlines as u64 >= lines);
    let index_dir = dir.path().join("index-bench");
    let indexer = Indexer::open(&index_dir, Duration::from_secs(5), 256_000_000).unwrap();
    let start = Instant::now();
    indexer.track(&log);
    indexer.close();
    let index = start.elapsed();
    let index_rate = mib(bytes, index);
    println!(
        "index:  {index_rate:8.1} MiB/s of raw log lines ({:.1} MiB/s of message text) on one writer thread | baseline memchr line scan {:8.1} MiB/s | ratio {:.3}",
        mib(text_bytes, index),
        mib(bytes, scan),
        index_rate / mib(bytes, scan)
    );
}
