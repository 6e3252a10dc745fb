//! Adoption at scale: N apps (default 200, each a busybox httpd web process and a sleeping
//! worker) run in a LocalRuntime; the runtime is dropped, a new one opens the same data dir
//! and every app is applied again. Prints the time to converge from scratch (the baseline,
//! same run), the time to adopt and re-converge, their ratio, and how many processes were
//! restarted by the restart (must be 0). Asserts nothing but prints MISSED when restarts > 0.
//!
//!   cargo bench -p workflow-runtime --bench adopt [-- APPS]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use workflow_runtime::local::LocalRuntime;
use workflow_runtime::testsuite::{self, Flavor, Harness};
use workflow_runtime::{Desired, Process, Runtime};

struct Bench;

#[async_trait::async_trait]
impl Harness for Bench {
    async fn runtime(&self) -> Arc<dyn Runtime> {
        unreachable!("the benchmark makes its own runtimes")
    }
    async fn desired(&self, _: &str, _: i64, _: Flavor) -> Desired {
        unreachable!("the benchmark makes its own desired states")
    }
    fn max_steps(&self) -> u32 {
        10_000
    }
}

async fn converge_all(rt: &LocalRuntime, apps: &[Desired]) -> Duration {
    let t = Instant::now();
    futures::stream::iter(apps)
        .for_each_concurrent(32, |d| async move {
            testsuite::converge_ready(&Bench, rt, d).await
        })
        .await;
    t.elapsed()
}

async fn snapshot(rt: &LocalRuntime, apps: &[Desired]) -> BTreeMap<String, Vec<Process>> {
    let mut out = BTreeMap::new();
    for d in apps {
        out.insert(
            d.app.clone(),
            rt.processes(&d.app).await.expect("processes"),
        );
    }
    out
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(run(n));
}

async fn run(n: usize) {
    let (addr, reg) = common::start_registry().await;
    let md = common::push(&reg, &[common::small_layer()], None);
    let image = format!("{addr}/bench/app@{md}");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = common::config(dir.path());
    cfg.poll = Duration::from_millis(200);
    cfg.ports = 31_000..39_000;
    let apps: Vec<Desired> = (0..n)
        .map(|i| {
            let mut d = common::desired(&format!("bench{i}"), 1, &image, Flavor::Runs);
            d.processes.get_mut("web").expect("web").command =
                Some("exec /usr/bin/busybox httpd -f -p 127.0.0.1:$PORT -h ./www".into());
            d.processes.get_mut("worker").expect("worker").command =
                Some("exec /usr/bin/busybox sleep 100000".into());
            d
        })
        .collect();

    let first = LocalRuntime::new(cfg.clone()).await.expect("runtime");
    let cold = converge_all(&first, &apps).await;
    let before = snapshot(&first, &apps).await;
    drop(first);

    let t = Instant::now();
    let second = LocalRuntime::new(cfg).await.expect("runtime");
    let open = t.elapsed();
    let warm = converge_all(&second, &apps).await + open;
    let after = snapshot(&second, &apps).await;

    let processes: usize = before.values().map(Vec::len).sum();
    let mut restarted = 0;
    for (app, ps) in &before {
        let now = &after[app];
        for p in ps {
            let same = now
                .iter()
                .any(|q| q.name == p.name && q.started == p.started && q.restarts == p.restarts);
            if !same {
                restarted += 1;
            }
        }
        restarted += now.len().saturating_sub(ps.len());
    }
    println!("apps: {n}, processes: {processes}");
    println!(
        "cold start, converge all:        {:>8.2} s",
        cold.as_secs_f64()
    );
    println!(
        "new runtime, adopt + re-apply:   {:>8.2} s  (opening the data dir: {:.3} s)",
        warm.as_secs_f64(),
        open.as_secs_f64()
    );
    println!(
        "ratio adopt / cold:              {:>8.3}",
        warm.as_secs_f64() / cold.as_secs_f64()
    );
    println!(
        "processes restarted by adoption: {restarted} ({})",
        if restarted == 0 { "met" } else { "MISSED" }
    );

    let t = Instant::now();
    futures::stream::iter(&apps)
        .for_each_concurrent(32, |d| {
            let rt = &second;
            async move { rt.destroy(&d.app, &d.app_id).await.expect("destroy") }
        })
        .await;
    println!(
        "destroy all:                     {:>8.2} s",
        t.elapsed().as_secs_f64()
    );
}
