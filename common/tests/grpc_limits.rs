//! The gRPC listeners' limits (issue 10) over real sockets: a connection that never completes
//! the HTTP/2 handshake is closed after the handshake timeout, while real clients keep working.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use workflow_common::grpc::{
    GrpcLimits, Guard, PlatformCredential, Protect, base_routes, serve_with,
};
use workflow_common::shutdown::Shutdown;

async fn start(limits: GrpcLimits, stop: &CancellationToken) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let shutdown = Shutdown::new(stop.clone(), Duration::from_secs(1));
    let guard = Guard::new(PlatformCredential::new("k").unwrap(), Protect::All);
    tokio::spawn(
        async move { serve_with(base_routes().routes, l, &shutdown, guard, limits).await },
    );
    addr
}

/// Reads until EOF or a reset; answers how long that took (bounded: never hangs the test).
async fn closed_after(mut s: TcpStream) -> Duration {
    let t = Instant::now();
    let mut buf = [0u8; 1024];
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                // The server's own preface and SETTINGS may come first.
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "the server never closed the connection");
    t.elapsed()
}

/// Guards issue 10: a silent TCP connection and one that stops inside the HTTP/2 preface are
/// both closed after the handshake timeout; a real client still works, past the timeout too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_complete_the_handshake_are_closed() {
    let stop = CancellationToken::new();
    let limits = GrpcLimits {
        handshake_timeout: Duration::from_millis(300),
        ..GrpcLimits::default()
    };
    let addr = start(limits, &stop).await;

    let silent = TcpStream::connect(addr).await.unwrap();
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let (a, b) = tokio::join!(closed_after(silent), closed_after(partial));
    println!("silent connection closed after {a:?}, partial preface after {b:?}");

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    health.check(HealthCheckRequest::default()).await.unwrap();
    // An established connection is past its handshake: idling longer than the timeout is fine.
    tokio::time::sleep(Duration::from_millis(700)).await;
    health.check(HealthCheckRequest::default()).await.unwrap();
    stop.cancel();
}
