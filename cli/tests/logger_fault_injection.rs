//! Nothing lost, nothing duplicated: lines written across many files, with partial lines and both
//! rotation styles, while the shipper (a real child process) is killed with SIGKILL again and
//! again and the aggregator (also a child) is killed and restarted; afterwards every line is
//! stored exactly once and in order per container.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use workflow_clients::logger::{LogClient, Search};
use workflow_logger::loggen::{GenFile, Rng, Rotation, parse_message};
use workflow_logger::store::{Store, StoreConfig};

/// The platform credential the started daemons are configured with.
const CREDENTIAL: &str = "test-platform-credential";

fn credential() -> workflow_clients::PlatformCredential {
    workflow_clients::PlatformCredential::new(CREDENTIAL).unwrap()
}

const BIN: &str = env!("CARGO_BIN_EXE_workflow");
const APPS: [&str; 3] = ["alpha", "beta", "gamma"];
const FILES: usize = 9;
const ROUNDS: usize = 200;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn spawn_aggregator(data: &Path, port: u16) -> Child {
    Command::new(BIN)
        .args(["logger", "aggregate", "--commit-ms", "100", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .env("WORKFLOW_PLATFORM_CREDENTIAL", CREDENTIAL)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn spawn_shipper(logs: &Path, state: &Path, port: u16) -> Child {
    Command::new(BIN)
        .args([
            "logger",
            "ship",
            "--poll-ms",
            "20",
            "--missing-grace-ms",
            "3000",
            "--max-line-bytes",
            "4096",
        ])
        .arg("--max-inflight-bytes")
        .arg("65536")
        .arg("--log-dir")
        .arg(logs)
        .arg("--state-dir")
        .arg(state)
        .arg("--aggregator")
        .arg(format!("http://127.0.0.1:{port}"))
        .arg("--node")
        .arg("node-1")
        .env("RUST_LOG", "warn")
        .env("WORKFLOW_PLATFORM_CREDENTIAL", CREDENTIAL)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn kill(child: &mut Child) {
    // std's kill is SIGKILL on Unix.
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_exactly_once_in_order_despite_kills_and_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, state, data) = (
        dir.path().join("logs"),
        dir.path().join("state"),
        dir.path().join("data"),
    );
    std::fs::create_dir_all(&logs).unwrap();
    let port = free_port();
    let mut aggregator = spawn_aggregator(&data, port);
    let mut shipper = spawn_shipper(&logs, &state, port);

    let mut files: Vec<GenFile> = (0..FILES)
        .map(|i| {
            GenFile::create(
                &logs,
                i,
                APPS[i % APPS.len()],
                ["web", "worker", "clock"][i % 3],
            )
            .unwrap()
        })
        .collect();
    let mut rng = Rng::new(7);
    let mut time = 1_700_000_000_000_000_000i64;
    let (mut shipper_kills, mut aggregator_kills, mut rotations) = (0, 0, 0);
    let mut written: HashMap<(usize, u64), Vec<u8>> = HashMap::new();
    for round in 0..ROUNDS {
        for f in &mut files {
            for _ in 0..rng.below(12) {
                time += 1_000_000;
                let pieces = if rng.below(5) == 0 {
                    1 + rng.below(4) as usize
                } else {
                    1
                };
                let m = f
                    .write_line(time, rng.below(300) as usize, pieces, rng.below(4) == 0)
                    .unwrap();
                written.insert((f.index, f.lines - 1), m);
            }
        }
        if rng.below(3) == 0 {
            let i = rng.below(FILES as u64) as usize;
            let how = if rotations % 2 == 0 {
                Rotation::Rename
            } else {
                Rotation::CopyTruncate
            };
            files[i].rotate(how).unwrap();
            rotations += 1;
        }
        tokio::time::sleep(Duration::from_millis(10 + rng.below(40))).await;
        if rng.below(4) == 0 {
            kill(&mut shipper);
            shipper_kills += 1;
            shipper = spawn_shipper(&logs, &state, port);
        }
        // The aggregator goes down for a few rounds now and then: the shipper backs off and resumes.
        match round % 40 {
            20 => {
                kill(&mut aggregator);
                aggregator_kills += 1;
            }
            24 => aggregator = spawn_aggregator(&data, port),
            _ => {}
        }
    }
    let expected: HashMap<&str, u64> = APPS
        .iter()
        .map(|app| {
            (
                *app,
                files
                    .iter()
                    .filter(|f| APPS[f.index % APPS.len()] == *app)
                    .map(|f| f.lines)
                    .sum(),
            )
        })
        .collect();

    // Wait until the aggregator holds as many lines as were written (bounded, not a threshold).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut done = true;
        if let Ok(client) = LogClient::new(&format!("http://127.0.0.1:{port}"), &credential()) {
            for app in APPS {
                match client.tail(app, 10_000).await {
                    Ok((records, _)) if records.len() as u64 >= expected[app] => {}
                    _ => done = false,
                }
            }
        } else {
            done = false;
        }
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    kill(&mut shipper);
    kill(&mut aggregator);
    eprintln!(
        "shipper killed {shipper_kills} times, aggregator {aggregator_kills} times, {rotations} rotations"
    );
    assert!(shipper_kills >= 30 && aggregator_kills >= 4 && rotations >= 40);

    // Check the durable state itself.
    let store = Store::open(StoreConfig::new(&data), None).unwrap();
    for app in APPS {
        let records = store.app(app).unwrap().read(0, 1_000_000).unwrap();
        let mut next: HashMap<usize, u64> = HashMap::new();
        for r in &records {
            let (f, n) = parse_message(&r.message).unwrap_or_else(|| {
                panic!("unexpected line {:?}", String::from_utf8_lossy(&r.message))
            });
            let want = next.entry(f).or_insert(0);
            assert_eq!(
                n, *want,
                "app {app} file {f}: line {n} where {want} was due (lost, repeated or reordered)"
            );
            assert_eq!(
                Some(&r.message),
                written.get(&(f, n)),
                "app {app} file {f} line {n}: content differs"
            );
            assert!(!r.partial, "app {app} file {f} line {n} was cut");
            *want += 1;
        }
        for f in files.iter().filter(|f| APPS[f.index % APPS.len()] == app) {
            assert_eq!(
                next.get(&f.index).copied().unwrap_or(0),
                f.lines,
                "app {app} file {}: lines missing",
                f.index
            );
        }
        assert_eq!(records.len() as u64, expected[app], "app {app}");
        let partial_sources: std::collections::HashSet<&str> =
            records.iter().map(|r| r.source.as_str()).collect();
        eprintln!(
            "app {app}: {} lines from {} sources, all exactly once and in order",
            records.len(),
            partial_sources.len()
        );
    }

    drop(store);

    // The index, rebuilt from the segments after kill -9s, also holds every line exactly once.
    let mut aggregator = spawn_aggregator(&data, port);
    let all = Search {
        limit: 10_000,
        ..Search::default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut counts = HashMap::new();
    while Instant::now() < deadline {
        if let Ok(client) = LogClient::new(&format!("http://127.0.0.1:{port}"), &credential()) {
            for app in APPS {
                if let Ok((hits, _)) = client.search(app, &all).await {
                    counts.insert(app, hits.len() as u64);
                }
            }
        }
        if APPS.iter().all(|a| counts.get(a) == Some(&expected[a])) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    kill(&mut aggregator);
    for app in APPS {
        assert_eq!(
            counts.get(app),
            Some(&expected[app]),
            "indexed lines of {app}"
        );
    }
}
