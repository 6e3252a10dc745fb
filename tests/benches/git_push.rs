//! Push benchmark (not pass/fail): prints times and ratios measured in the same run.
//!
//! 1. No-change redeploy: an empty commit pushed to the deploy branch (build + release)
//!    beside the same kind of commit pushed to a branch that is stored, not built (same
//!    transport, auth and hook: the plain `git push` cost), and to a local bare repo.
//! 2. Four pushes to four apps at once vs one after another (each build takes 300 ms of
//!    simulated work, as the scripted image builder stands in for the real engine).
//!
//! `cargo bench -p workflow-tests --bench git_push`

use std::time::{Duration, Instant};

use serde_json::json;
use workflow_tests::git::{agit, checkout, commit, start};

const ROUNDS: usize = 5;

#[tokio::main]
async fn main() {
    let p = start(Duration::from_secs(60), Duration::from_millis(300)).await;
    let alice = p.user("alice").await;
    for app in ["hello", "a1", "a2", "a3", "a4"] {
        p.rest(
            reqwest::Method::POST,
            "/v2/apps/",
            Some(&alice),
            Some(json!({"id": app})),
        )
        .await;
    }
    let src = checkout(&p.home, p.dir.path(), "hello");
    let remote = p.remote("alice", &alice, "hello");
    let bare = p.dir.path().join("plain.git");
    let (ok, out) = agit(
        &p.home,
        p.dir.path(),
        &["init", "-q", "--bare", bare.to_str().unwrap()],
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = agit(&p.home, &src, &["push", "-q", &remote, "main"]).await;
    assert!(ok, "{out}");

    let mut deploy = Duration::ZERO;
    let mut stored = Duration::ZERO;
    let mut local = Duration::ZERO;
    for i in 0..ROUNDS {
        commit(&p.home, &src, &format!("redeploy {i}"));
        let t = Instant::now();
        let (ok, out) = agit(&p.home, &src, &["push", "-q", &remote, "main"]).await;
        deploy += t.elapsed();
        assert!(ok && out.contains("deployed"), "{out}");
        let t = Instant::now();
        let (ok, out) = agit(
            &p.home,
            &src,
            &["push", "-q", "--force", &remote, "main:refs/heads/plain"],
        )
        .await;
        stored += t.elapsed();
        assert!(ok, "{out}");
        let t = Instant::now();
        let (ok, out) = agit(
            &p.home,
            &src,
            &["push", "-q", "--force", bare.to_str().unwrap(), "main"],
        )
        .await;
        local += t.elapsed();
        assert!(ok, "{out}");
    }
    let n = ROUNDS as u32;
    let (d, s, l) = (deploy / n, stored / n, local / n);
    println!("redeploy (empty commit, build + release, 300 ms simulated build): {d:?} per push");
    println!("same push to a branch that is not built (HTTP, auth, hook):       {s:?} per push");
    println!("same push to a local bare repository (file transport):            {l:?} per push");
    println!(
        "ratio redeploy / stored push: {:.2}; (redeploy - 300 ms build) / stored push: {:.2}",
        d.as_secs_f64() / s.as_secs_f64(),
        (d.as_secs_f64() - 0.3) / s.as_secs_f64()
    );

    let apps = ["a1", "a2", "a3", "a4"];
    let mut dirs = Vec::new();
    for a in apps {
        dirs.push((
            checkout(&p.home, p.dir.path(), &format!("src-{a}")),
            p.remote("alice", &alice, a),
        ));
    }
    let t = Instant::now();
    for (d, r) in &dirs {
        let (ok, out) = agit(&p.home, d, &["push", "-q", r, "main"]).await;
        assert!(ok, "{out}");
    }
    let sequential = t.elapsed();
    for (d, _) in &dirs {
        commit(&p.home, d, "again");
    }
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (d, r) in dirs.clone() {
        let home = p.home.clone();
        set.spawn(async move { agit(&home, &d, &["push", "-q", &r, "main"]).await });
    }
    while let Some(r) = set.join_next().await {
        let (ok, out) = r.unwrap();
        assert!(ok, "{out}");
    }
    let parallel = t.elapsed();
    println!("4 pushes to 4 apps one after another: {sequential:?}; at once: {parallel:?}");
    println!(
        "ratio sequential / concurrent: {:.2}",
        sequential.as_secs_f64() / parallel.as_secs_f64()
    );
    p.stop.cancel();
}
