//! Controller benchmark: the newest page of releases of an app with 10,000 releases,
//! against the same query on an app with 10 releases (the baseline, same run); and the
//! point reads behind an authenticated `GET /v2/apps/<app>/` (token lookup, then app read).
//!
//! `cargo bench -p workflow-controller --bench controller` (SQLite; set
//! `WORKFLOW_TEST_POSTGRES_URL` to also measure PostgreSQL). Prints medians and ratios;
//! it asserts nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use workflow_controller::domain::{
    ConfigPatch, Controller, RegisterRequest, RegistrationMode, Settings,
};
use workflow_controller::model::{PageRequest, User};
use workflow_controller::runtime::LedgerOnly;
use workflow_controller::store::Store;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn fill(ctl: &Controller, user: &User, app: &str, releases: usize) {
    ctl.create_app(user, Some(app)).await.expect("create app");
    for i in 1..releases {
        let patch = ConfigPatch::values([("N".to_string(), Some(i.to_string()))].into());
        ctl.set_config(user, app, patch).await.expect("set config");
    }
}

async fn time_newest_page(ctl: &Controller, user: &User, app: &str, runs: usize) -> Duration {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let page = ctl
            .list_releases(user, app, PageRequest::new(100, 0))
            .await
            .expect("list");
        samples.push(t.elapsed());
        assert_eq!(page.results.len(), page.count.min(100) as usize);
    }
    median(samples)
}

/// Token -> user, then the app with its access check: what every authenticated app request does.
async fn time_point_read(ctl: &Controller, token: &str, app: &str, runs: usize) -> Duration {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let user = ctl.authenticate(token).await.expect("authenticate");
        let found = ctl.get_app(&user, app).await.expect("get app");
        samples.push(t.elapsed());
        assert_eq!(found.id, app);
    }
    median(samples)
}

async fn bench(label: &str, store: Store) {
    let ctl = Arc::new(Controller::new(
        store,
        Arc::new(LedgerOnly),
        Settings {
            registration: RegistrationMode::Enabled,
            builder_key: "bench".into(),
        },
    ));
    let user = ctl
        .register(
            None,
            RegisterRequest {
                username: "bench".into(),
                password: "pw".into(),
                ..Default::default()
            },
        )
        .await
        .expect("register");
    let t = Instant::now();
    fill(&ctl, &user, "big", 10_000).await;
    let fill_time = t.elapsed();
    fill(&ctl, &user, "small", 10).await;
    let big = time_newest_page(&ctl, &user, "big", 200).await;
    let small = time_newest_page(&ctl, &user, "small", 200).await;
    let token = ctl.login("bench", "pw").await.expect("login");
    let point = time_point_read(&ctl, &token, "big", 1000).await;
    println!(
        "{label}: newest page (100) of 10,000 releases: median {:.2} ms; of 10 releases (baseline): {:.2} ms; ratio {:.2}x; target < 20 ms: {}",
        big.as_secs_f64() * 1e3,
        small.as_secs_f64() * 1e3,
        big.as_secs_f64() / small.as_secs_f64(),
        if big < Duration::from_millis(20) {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "{label}: token lookup + app read (GET /v2/apps/<app>/): median {:.1} us; vs newest page of 10: {:.2}x",
        point.as_secs_f64() * 1e6,
        point.as_secs_f64() / small.as_secs_f64()
    );
    println!(
        "{label}: writing 10,000 releases took {:.1} s ({:.0} releases/s)",
        fill_time.as_secs_f64(),
        10_000.0 / fill_time.as_secs_f64()
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::connect(dir.path().join("bench.db").to_str().expect("utf-8"))
            .await
            .expect("sqlite");
        bench("sqlite", store).await;
        if let Ok(url) = std::env::var("WORKFLOW_TEST_POSTGRES_URL") {
            let db = format!("wf_bench_{}", uuid::Uuid::new_v4().simple());
            let admin = url.clone();
            let create = format!("CREATE DATABASE {db}");
            tokio::task::spawn_blocking(move || {
                let mut c = postgres::Client::connect(&admin, postgres::NoTls).expect("connect");
                c.batch_execute(&create).expect("create db");
            })
            .await
            .expect("task");
            let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
            let store = Store::connect(&format!("{base}/{db}"))
                .await
                .expect("postgres");
            bench("postgres", store).await;
        }
    });
}
