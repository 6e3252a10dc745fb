//! The aggregator over real gRPC: ship with acks and dedup, tail, follow continuing exactly where
//! the tail ended, indexed search with filters and paging, restart recovery, bad input.

use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use workflow_clients::logger::{LogClient, Search};
use workflow_common::shutdown::Shutdown;
use workflow_logger::{Config, Listeners, Role};
use workflow_proto::logger::v1::logger_client::LoggerClient;
use workflow_proto::logger::v1::{ShipAck, ShipBatch, ShippedLine};

/// The platform credential the test aggregators require.
const CREDENTIAL: &str = "test-platform-credential";

fn credential() -> workflow_clients::PlatformCredential {
    workflow_clients::PlatformCredential::new(CREDENTIAL).unwrap()
}

/// A raw client presenting `credential` (or none) on every call.
async fn raw_client(
    endpoint: &str,
    credential: Option<&'static str>,
) -> LoggerClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        impl tonic::service::Interceptor + Clone,
    >,
> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    LoggerClient::with_interceptor(channel, move |mut req: tonic::Request<()>| {
        if let Some(c) = credential {
            req.metadata_mut()
                .insert(workflow_common::grpc::CREDENTIAL_HEADER, c.parse().unwrap());
        }
        Ok(req)
    })
}

struct Running {
    endpoint: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<workflow_logger::Result<()>>,
}

async fn start(dir: &std::path::Path) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let mut config = Config {
        role: Role::Aggregate,
        platform_credential: CREDENTIAL.into(),
        ..Config::default()
    };
    config.aggregate.data_dir = dir.to_path_buf();
    config.aggregate.commit_interval = Duration::from_millis(50);
    let shutdown = CancellationToken::new();
    let listeners = Listeners {
        grpc: Some(listener),
    };
    let task = tokio::spawn(workflow_logger::run(
        config,
        listeners,
        Shutdown::new(shutdown.clone(), Duration::from_secs(5)),
    ));
    Running {
        endpoint,
        shutdown,
        task,
    }
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

fn batch(id: u64, source: &str, ty: &str, lines: &[(u64, &str)]) -> ShipBatch {
    ShipBatch {
        batch_id: id,
        source: source.into(),
        app: "hello".into(),
        process_type: ty.into(),
        pod: format!("hello-{ty}-1"),
        container: ty.into(),
        node: "n1".into(),
        lines: lines
            .iter()
            .map(|(n, m)| ShippedLine {
                offset: n * 100,
                end_offset: n * 100 + 100,
                time_unix_nanos: 1_000_000_000 * (*n as i64 + 1),
                stream: 1,
                partial: false,
                message: m.as_bytes().to_vec(),
            })
            .collect(),
    }
}

async fn ship(endpoint: &str, batches: Vec<ShipBatch>) -> Result<Vec<ShipAck>, tonic::Status> {
    let mut client = raw_client(endpoint, Some(CREDENTIAL)).await;
    let n = batches.len();
    let mut acks = client
        .ship(futures::stream::iter(batches))
        .await?
        .into_inner();
    let mut out = Vec::new();
    while out.len() < n {
        match acks.message().await? {
            Some(a) => out.push(a),
            None => break,
        }
    }
    Ok(out)
}

fn texts(r: &[workflow_proto::logger::v1::LogRecord]) -> Vec<String> {
    r.iter()
        .map(|r| String::from_utf8_lossy(&r.message).into_owned())
        .collect()
}

async fn search_until(client: &mut LogClient, q: &Search, want: usize) -> Vec<String> {
    // The index commits on an interval: poll (bounded) instead of sleeping a fixed time.
    for _ in 0..1000 {
        let (r, _) = client.search("hello", q).await.unwrap();
        if r.len() >= want {
            return texts(&r);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("search {q:?} never found {want} hits");
}

#[tokio::test]
async fn ship_tail_follow_search_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let agg = start(dir.path()).await;
    let acks = ship(
        &agg.endpoint,
        vec![
            batch(
                1,
                "a",
                "web",
                &[(0, "GET / 200"), (1, "db timeout after 5s")],
            ),
            batch(
                2,
                "a",
                "web",
                &[(1, "db timeout after 5s"), (2, "GET /x 404")],
            ),
            batch(
                3,
                "b",
                "worker",
                &[(0, "job done"), (1, "db timeout in job")],
            ),
        ],
    )
    .await
    .unwrap();
    let counts: Vec<(u32, u32)> = acks.iter().map(|a| (a.stored, a.duplicates)).collect();
    assert_eq!(counts, [(2, 0), (1, 1), (2, 0)]);

    let mut client = LogClient::new(&agg.endpoint, &credential()).unwrap();
    let (tail, next) = client.tail("hello", 3).await.unwrap();
    assert_eq!(
        texts(&tail),
        ["GET /x 404", "job done", "db timeout in job"]
    );
    assert_eq!(next, 5);

    // Follow from where the tail ended: exactly the lines stored after it.
    let mut follow = client.follow("hello", next).await.unwrap();
    ship(
        &agg.endpoint,
        vec![batch(
            4,
            "a",
            "web",
            &[(2, "GET /x 404"), (3, "after tail")],
        )],
    )
    .await
    .unwrap();
    let got = follow.next().await.unwrap().unwrap();
    assert_eq!(
        (got.cursor, got.message.as_slice()),
        (5, &b"after tail"[..])
    );

    // Follow from the start replays everything in order, then continues live.
    let mut all = client.follow("hello", 0).await.unwrap();
    for want in 0..6 {
        assert_eq!(all.next().await.unwrap().unwrap().cursor, want);
    }

    let q = Search {
        query: "timeout AND db".into(),
        ..Search::default()
    };
    assert_eq!(
        search_until(&mut client, &q, 2).await,
        ["db timeout in job", "db timeout after 5s"],
        "newest first"
    );
    let typed = Search {
        process_type: Some("worker".into()),
        ..q.clone()
    };
    assert_eq!(
        search_until(&mut client, &typed, 1).await,
        ["db timeout in job"]
    );
    let since = Search {
        query: String::new(),
        since: Some(3_000_000_000),
        ..Search::default()
    };
    // Lines at n >= 2 of source a: "GET /x 404" (t=3s) and "after tail" (t=4s).
    let hits = search_until(&mut client, &since, 2).await;
    assert_eq!(hits, ["after tail", "GET /x 404"]);
    let page1 = Search {
        limit: 4,
        ..Search::default()
    };
    let (first, token) = client.search("hello", &page1).await.unwrap();
    assert_eq!(first.len(), 4);
    let page2 = Search {
        page: token,
        ..page1.clone()
    };
    let (second, token) = client.search("hello", &page2).await.unwrap();
    assert_eq!(second.len(), 2);
    assert!(token.is_none());
    assert_eq!(second.last().map(|r| r.cursor), Some(0));

    // Bad input gets a clear error, never a crash.
    let err = client.tail("Not_An_App", 1).await.unwrap_err().to_string();
    assert!(err.contains("Not_An_App"), "{err}");
    let bad = Search {
        query: "AND (".into(),
        ..Search::default()
    };
    assert!(client.search("hello", &bad).await.is_err());
    assert!(client.tail("nobody", 10).await.unwrap().0.is_empty());
    let mut evil = batch(9, "a", "web", &[(9, "x")]);
    evil.app = "../../etc".into();
    let status = ship(&agg.endpoint, vec![evil]).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    drop(follow);
    drop(all);
    agg.stop().await;

    // After a restart: same content, dedup positions and index survive.
    let agg = start(dir.path()).await;
    let acks = ship(
        &agg.endpoint,
        vec![batch(1, "a", "web", &[(3, "after tail"), (4, "new")])],
    )
    .await
    .unwrap();
    assert_eq!((acks[0].stored, acks[0].duplicates), (1, 1));
    let mut client = LogClient::new(&agg.endpoint, &credential()).unwrap();
    let (tail, next) = client.tail("hello", 100).await.unwrap();
    assert_eq!(tail.len(), 7);
    assert_eq!(next, 7);
    assert_eq!(search_until(&mut client, &q, 2).await.len(), 2);
    let new = Search {
        query: "new".into(),
        ..Search::default()
    };
    assert_eq!(search_until(&mut client, &new, 1).await, ["new"]);
    agg.stop().await;
}

#[tokio::test]
async fn hostile_lines_are_stored_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let agg = start(dir.path()).await;
    let big = vec![b'x'; 1 << 20];
    let mut b = batch(1, "h", "web", &[(0, "")]);
    b.lines[0].message = [&b"\xff\xfe\x00 bad utf8 "[..], &big].concat();
    let acks = ship(&agg.endpoint, vec![b]).await.unwrap();
    assert_eq!(acks[0].stored, 1);
    let mut client = LogClient::new(&agg.endpoint, &credential()).unwrap();
    let (tail, _) = client.tail("hello", 1).await.unwrap();
    assert_eq!(tail[0].message.len(), (1 << 20) + 13);
    assert!(tail[0].message.starts_with(b"\xff\xfe\x00 bad utf8 "));
    let q = Search {
        query: "utf8".into(),
        ..Search::default()
    };
    assert_eq!(search_until(&mut client, &q, 1).await.len(), 1);
    agg.stop().await;
}

/// Guards issue 10: without the platform credential nobody reads, ships or follows any app's logs.
#[tokio::test]
async fn calls_without_the_platform_credential_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let agg = start(dir.path()).await;
    for presented in [
        None,
        Some("wrong-credential"),
        Some("test-platform-credentia"),
    ] {
        let mut c = raw_client(&agg.endpoint, presented).await;
        let tail = c
            .tail(workflow_proto::logger::v1::TailRequest {
                app: "hello".into(),
                lines: 10,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(
            tail.code(),
            tonic::Code::Unauthenticated,
            "{presented:?}: {tail:?}"
        );
        let follow = c
            .follow(workflow_proto::logger::v1::FollowRequest {
                app: "hello".into(),
                from_cursor: 0,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(follow.code(), tonic::Code::Unauthenticated);
        let search = c
            .search(workflow_proto::logger::v1::SearchRequest {
                app: "hello".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(search.code(), tonic::Code::Unauthenticated);
        let delete = c
            .delete(workflow_proto::logger::v1::DeleteRequest {
                app: "hello".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(delete.code(), tonic::Code::Unauthenticated);
        let shipped = c
            .ship(futures::stream::iter(vec![batch(
                1,
                "a",
                "web",
                &[(0, "forged")],
            )]))
            .await;
        let code = match shipped {
            Err(s) => s.code(),
            Ok(r) => r.into_inner().message().await.unwrap_err().code(),
        };
        assert_eq!(code, tonic::Code::Unauthenticated);
    }
    // Health checks stay open for probes.
    let channel = tonic::transport::Endpoint::from_shared(agg.endpoint.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();
    // With the credential, nothing forged was stored.
    let (lines, _) = LogClient::new(&agg.endpoint, &credential())
        .unwrap()
        .tail("hello", 10)
        .await
        .unwrap();
    assert!(lines.is_empty(), "{lines:?}");
    agg.stop().await;
}

/// Guards issue 10: a tail above the cap is refused with an error naming the cap, never cut.
#[tokio::test]
async fn a_tail_above_the_cap_is_refused_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let agg = start(dir.path()).await;
    let client = LogClient::new(&agg.endpoint, &credential()).unwrap();
    client.tail("hello", 10_000).await.unwrap();
    let e = client.tail("hello", 100_000).await.unwrap_err();
    assert!(e.to_string().contains("10000"), "{e}");
    assert!(e.to_string().contains("100000"), "{e}");
    agg.stop().await;
}

/// Guards issue 10: Delete removes an app's lines from storage and the index, cursors keep
/// counting up (across a restart too), and tail/follow honour a since bound.
#[tokio::test]
async fn delete_removes_an_apps_lines_and_since_bounds_reads() {
    let dir = tempfile::tempdir().unwrap();
    let agg = start(dir.path()).await;
    ship(
        &agg.endpoint,
        vec![batch(1, "a", "web", &[(0, "old one"), (1, "old two")])],
    )
    .await
    .unwrap();
    let mut client = LogClient::new(&agg.endpoint, &credential()).unwrap();
    let q = Search {
        query: "old".into(),
        ..Search::default()
    };
    assert_eq!(search_until(&mut client, &q, 2).await.len(), 2);
    // Lines at 1 s and 2 s: a since of 2 s keeps only the second.
    let (kept, _) = client.tail_since("hello", 10, 2_000_000_000).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].message, b"old two");
    assert_eq!(client.delete("hello").await.unwrap(), 2);
    assert_eq!(client.delete("hello").await.unwrap(), 0, "idempotent");
    let (lines, next) = client.tail("hello", 10).await.unwrap();
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(next, 2, "cursors keep counting");
    // The index forgets them too.
    let mut gone = false;
    for _ in 0..100 {
        let (hits, _) = client.search("hello", &q).await.unwrap();
        if hits.is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "deleted lines are not searchable");
    agg.stop().await;
    // After a restart nothing comes back and new lines continue the cursors.
    let agg = start(dir.path()).await;
    ship(
        &agg.endpoint,
        vec![batch(2, "b", "web", &[(5, "new line")])],
    )
    .await
    .unwrap();
    let client = LogClient::new(&agg.endpoint, &credential()).unwrap();
    let (lines, next) = client.tail("hello", 10).await.unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].cursor, 2);
    assert_eq!(next, 3);
    // A follow with a since bound skips older lines.
    let mut follow = client
        .follow_since("hello", 0, 7_000_000_000)
        .await
        .unwrap();
    ship(&agg.endpoint, vec![batch(3, "c", "web", &[(6, "newest")])])
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), follow.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.message, b"newest");
    agg.stop().await;
}
