//! `workflow up`'s logging path in one process: a local runtime writes CRI files with
//! [`ContainerLogWriter`], the shipper and the aggregator run in one `workflow_logger::run`
//! (role `both`), and
//! `workflow logger query` prints tail, search and follow output.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use workflow_cli::workflow::logger::{QueryArgs, query};
use workflow_common::shutdown::Shutdown;
use workflow_logger::parse::Stream;
use workflow_logger::writer::ContainerLogWriter;
use workflow_logger::{Config, Listeners, Role};

fn args(endpoint: &str) -> QueryArgs {
    QueryArgs {
        aggregator: endpoint.to_string(),
        credential: Some("test-platform-credential".into()),
        credential_file: None,
        app: "hello".into(),
        lines: 10,
        follow: false,
        search: None,
        since: None,
        process_type: None,
    }
}

async fn output(a: &QueryArgs) -> String {
    let mut out = Vec::new();
    query(a, CancellationToken::new(), &mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_runtime_logs_reach_tail_search_and_follow() {
    let dir = tempfile::tempdir().unwrap();
    let containers = dir.path().join("containers");
    let mut web = ContainerLogWriter::create(
        &containers,
        "hello",
        "hello-web-7f9c-x1",
        "web",
        "a1b2c3",
        1 << 20,
        3,
    )
    .unwrap();
    let mut worker = ContainerLogWriter::create(
        &containers,
        "hello",
        "hello-worker-5d-z9",
        "worker",
        "d4e5f6",
        1 << 20,
        3,
    )
    .unwrap();
    web.write(
        Stream::Stdout,
        1_700_000_000_000_000_000,
        b"listening on :5000\nGET / 200\n",
    )
    .unwrap();
    worker
        .write(
            Stream::Stderr,
            1_700_000_001_000_000_000,
            b"db timeout, retrying\n",
        )
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let mut config = Config {
        role: Role::Both,
        platform_credential: "test-platform-credential".into(),
        ..Config::default()
    };
    config.aggregate.data_dir = dir.path().join("logs");
    config.aggregate.commit_interval = Duration::from_millis(50);
    config.ship.log_dir = containers.clone();
    config.ship.state_dir = dir.path().join("shipper");
    config.ship.poll_interval = Duration::from_millis(20);
    let shutdown = CancellationToken::new();
    let listeners = Listeners {
        grpc: Some(listener),
    };
    let task = tokio::spawn(workflow_logger::run(
        config,
        listeners,
        Shutdown::new(shutdown.clone(), Duration::from_secs(5)),
    ));

    let mut text = String::new();
    for _ in 0..500 {
        let mut out = Vec::new();
        // Until the aggregator listens, connecting fails: retried.
        let _ = query(&args(&endpoint), CancellationToken::new(), &mut out).await;
        text = String::from_utf8(out).unwrap();
        if text.lines().count() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines.contains(&"2023-11-14T22:13:20.000Z hello[web.hello-web-7f9c-x1]: GET / 200"),
        "{text}"
    );
    assert!(lines.contains(&"2023-11-14T22:13:21.000Z hello[worker.hello-worker-5d-z9] stderr: db timeout, retrying"), "{text}");

    // Search: newest first, by type.
    let mut search = args(&endpoint);
    search.search = Some("timeout".into());
    search.process_type = Some("worker".into());
    let mut found = String::new();
    for _ in 0..500 {
        found = output(&search).await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(found.ends_with("db timeout, retrying\n"), "{found}");

    // Follow: the tail, then a line written afterwards.
    let mut follow = args(&endpoint);
    follow.follow = true;
    follow.lines = 1;
    let stop = CancellationToken::new();
    let shared = Shared::default();
    let following = {
        let (stop, mut out) = (stop.clone(), shared.clone());
        tokio::spawn(async move { query(&follow, stop, &mut out).await.unwrap() })
    };
    // The follow first prints the tail (one line), then what is written after.
    for _ in 0..500 {
        if shared.text().lines().count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    web.write(Stream::Stdout, 1_700_000_002_000_000_000, b"GET /new 201\n")
        .unwrap();
    for _ in 0..500 {
        if shared.text().contains("GET /new 201") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    following.await.unwrap();
    let followed = shared.text();
    assert_eq!(followed.lines().count(), 2, "{followed}");
    assert!(
        followed.ends_with("hello[web.hello-web-7f9c-x1]: GET /new 201\n"),
        "{followed}"
    );

    shutdown.cancel();
    task.await.unwrap().unwrap();
}

/// An output the test can read while the follow writes to it.
#[derive(Clone, Default)]
struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
