//! SIGTERM ends `workflow up` and every standalone daemon within the grace period, even while
//! clients hold streams open (a log follow, a shipper's stream, a request whose body never
//! comes, an idle connection).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use workflow_clients::logger::LogClient;
use workflow_proto::logger::v1::ShipBatch;
use workflow_proto::logger::v1::logger_client::LoggerClient;

/// The platform credential the started daemons are configured with.
const CREDENTIAL: &str = "test-platform-credential";

fn credential() -> workflow_clients::PlatformCredential {
    workflow_clients::PlatformCredential::new(CREDENTIAL).unwrap()
}

const GRACE: &str = "1s";
/// Generous: the grace period plus start-up noise on a loaded machine, far below "never".
const LIMIT: Duration = Duration::from_secs(20);

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn workflow(args: &[&str], dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_workflow"))
        .args(args)
        .current_dir(dir)
        .env("WORKFLOW_SHUTDOWN_GRACE", GRACE)
        .env("RUST_LOG", "warn")
        .env("WORKFLOW_PLATFORM_CREDENTIAL", CREDENTIAL)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start workflow")
}

async fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends SIGTERM and returns how long the process took to exit (and that it exited 0).
async fn terminate(child: &mut Child) -> Duration {
    let start = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exited with {status}");
            return start.elapsed();
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("still running {LIMIT:?} after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A follow and a shipper's stream held open against the aggregator at `url`.
async fn hold_logger_streams(url: &str) -> Vec<tokio::task::JoinHandle<()>> {
    let client = LogClient::new(url, &credential()).unwrap();
    let mut follow = client.follow("hello", 0).await.expect("follow opens");
    let follower = tokio::spawn(async move { while follow.next().await.is_some() {} });
    let (tx, rx) = tokio::sync::mpsc::channel::<ShipBatch>(1);
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut ship = LoggerClient::with_interceptor(channel, |mut req: tonic::Request<()>| {
        req.metadata_mut().insert(
            workflow_common::grpc::CREDENTIAL_HEADER,
            tonic::metadata::MetadataValue::from_static(CREDENTIAL),
        );
        Ok(req)
    });
    let acks = ship
        .ship(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("ship opens")
        .into_inner();
    let shipper = tokio::spawn(async move {
        // Keep the sending half alive as long as the stream lasts.
        let _tx = tx;
        let mut acks = acks;
        while let Ok(Some(_)) = acks.message().await {}
    });
    vec![follower, shipper]
}

/// An HTTP request whose body never comes, and an idle keep-alive connection.
async fn hold_http(addr: SocketAddr, path: &str) -> Vec<tokio::net::TcpStream> {
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head =
        format!("PATCH {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 1000000\r\n\r\npartial");
    slow.write_all(head.as_bytes()).await.unwrap();
    let idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    vec![slow, idle]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_workflow_up_with_streams_open() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("wf");
    let mut child = workflow(
        &["up", "--random-ports", "--data-dir", data.to_str().unwrap()],
        dir.path(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let endpoints = loop {
        if let Ok(eps) = workflow_common::endpoints::read(&data) {
            break eps;
        }
        assert!(
            Instant::now() < deadline,
            "workflow up wrote no endpoints.json"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _streams = hold_logger_streams(&endpoints["logger"]).await;
    let controller: SocketAddr = endpoints["controller"]
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let registry: SocketAddr = endpoints["registry"]
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let _held = (
        hold_http(controller, "/v2/apps/").await,
        hold_http(registry, "/v2/hello/blobs/uploads/x").await,
    );
    let took = terminate(&mut child).await;
    assert!(
        !data.join("endpoints.json").exists(),
        "endpoints.json is removed at exit"
    );
    eprintln!("workflow up stopped {took:?} after SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_each_standalone_daemon_with_streams_open() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_string_lossy().into_owned();

    // The logger's aggregator with a follower and a shipper connected.
    let logger = free_addr();
    let mut agg = workflow(
        &[
            "logger",
            "aggregate",
            "--listen",
            &logger.to_string(),
            "--data-dir",
            &d("logs"),
        ],
        dir.path(),
    );
    wait_listening(logger).await;
    let _streams = hold_logger_streams(&format!("http://{logger}")).await;

    // The controller with a slow request and an idle connection.
    let (rest, grpc) = (free_addr(), free_addr());
    let mut ctl = workflow(
        &[
            "controller",
            "--data-dir",
            &d("ctl"),
            "--listen",
            &rest.to_string(),
            "--grpc-listen",
            &grpc.to_string(),
        ],
        dir.path(),
    );
    wait_listening(rest).await;
    let _ctl_held = hold_http(rest, "/v2/apps/").await;

    // registry-sync with an upload whose body never comes.
    let (reg, reg_grpc) = (free_addr(), free_addr());
    let mut registry = workflow(
        &[
            "registry-sync",
            "--listen",
            &reg.to_string(),
            "--grpc-listen",
            &reg_grpc.to_string(),
            "--data-dir",
            &d("registry"),
        ],
        dir.path(),
    );
    wait_listening(reg).await;
    let _reg_held = hold_http(reg, "/v2/hello/blobs/uploads/x").await;

    // The builder with an idle connection.
    let builder = free_addr();
    let mut b = workflow(
        &["builder", "--grpc-listen", &builder.to_string()],
        dir.path(),
    );
    wait_listening(builder).await;
    let _idle = tokio::net::TcpStream::connect(builder).await.unwrap();

    for (name, child) in [
        ("logger aggregate", &mut agg),
        ("controller", &mut ctl),
        ("registry-sync", &mut registry),
        ("builder", &mut b),
    ] {
        let took = terminate(child).await;
        eprintln!("{name} stopped {took:?} after SIGTERM");
    }
}
