//! Rollout benchmark (not pass/fail): what a user sees of a deploy through the router.
//!
//! 1. Push to answering: a Procfile app (busybox httpd) pushed over git smart HTTP to a
//!    fresh `workflow up`; the time from `git push` starting to the first 200 from the
//!    router at `<app>.localhost`, beside the push alone.
//! 2. Rollouts under load: the app scaled to `web=3`, `wrk` through the router for
//!    `ROLLOUT_SECS` (30) seconds while two `deis config:set` and a `deis ps:restart` roll the
//!    processes over; prints wrk's totals (requests, non-2xx, socket errors) and `MISSED`
//!    when any request failed.
//!
//! `cargo bench --profile dev -p workflow-cli --bench rollout` (needs busybox and wrk).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{HTTPD_WEB, checkout, git, ok, ps_list, registered, wait_until};

const APP: &str = "roll";

/// One GET of `/` at the router with `Host: <APP>.localhost`: the status (0: no answer).
fn status(router: &str) -> u16 {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-m", "5", "-w", "%{http_code}"])
        .args(["-H", &format!("Host: {APP}.localhost")])
        .arg(router)
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The newest release as `deis releases --json` shows it: (version, state).
fn newest(home: &Path, cwd: &Path) -> (i64, String) {
    let out = ok(home, cwd, &["releases", "-a", APP, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("releases JSON");
    (
        v[0]["version"].as_i64().unwrap_or(0),
        v[0]["state"].as_str().unwrap_or_default().to_string(),
    )
}

/// The app's web processes that are up, from `deis ps --json`.
fn web_up(home: &Path, cwd: &Path) -> Vec<String> {
    ps_list(home, cwd, APP)
        .iter()
        .filter(|p| p["type"] == "web" && p["state"] == "up")
        .map(|p| p["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The first number after `label` in wrk's output (0 when absent).
fn number_after(text: &str, label: &str) -> u64 {
    text.find(label)
        .map(|i| &text[i + label.len()..])
        .and_then(|rest| {
            rest.trim_start()
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let have = |cmd: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {cmd}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !have("busybox") || !have("wrk") || !have("curl") {
        eprintln!(
            "rollout bench: needs busybox, wrk and curl (apt-get install busybox-static wrk curl)"
        );
        return;
    }
    let secs: u64 = std::env::var("ROLLOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().unwrap();
    let (home, platform) = registered(dir.path());
    let eps = platform.endpoints();
    let router = eps["router"].as_str().expect("router").to_string();
    let git_http = eps["git_http"].as_str().expect("git_http").to_string();

    // 1. Push to answering.
    let src = checkout(
        &home,
        &dir.path().join(APP),
        &[
            ("Procfile", HTTPD_WEB),
            ("index.html", "hello from a rollout\n"),
        ],
    );
    ok(&home, &src, &["create", APP, "--no-remote"]);
    ok(
        &home,
        &src,
        &["git:remote", "-a", APP, "--https", "--git-url", &git_http],
    );
    let t = Instant::now();
    let out = git(&home, &src, &["push", "deis", "main"]);
    let pushed = t.elapsed();
    assert!(out.contains(&format!("{APP}:v2 deployed")), "{out}");
    while status(&router) != 200 {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the router never answered 200 for {APP}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let answering = t.elapsed();
    println!(
        "push to answering: git push took {pushed:.2?}; first 200 from the router after {answering:.2?}"
    );
    println!(
        "ratio push-to-200 / git push: {:.2}",
        answering.as_secs_f64() / pushed.as_secs_f64()
    );

    // 2. Rollouts under load.
    let cwd = src.as_path();
    ok(&home, cwd, &["scale", "web=3", "-a", APP]);
    wait_until(60, "three web processes up", || {
        web_up(&home, cwd).len() == 3
    });
    wait_until(30, "the router does not answer", || status(&router) == 200);
    let wrk = Command::new("wrk")
        .args(["-t2", "-c16", &format!("-d{secs}s"), "--timeout", "5s"])
        .args(["-H", &format!("Host: {APP}.localhost")])
        .arg(format!("{router}/"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wrk");
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let mut steps = Vec::new();
    for (i, args) in [
        vec!["config:set", "ROLL=1", "-a", APP],
        vec!["config:set", "ROLL=2", "-a", APP],
    ]
    .iter()
    .enumerate()
    {
        let t = Instant::now();
        ok(&home, cwd, args);
        let want = 3 + i as i64;
        wait_until(60, "the config change never deployed", || {
            newest(&home, cwd) == (want, "deployed".to_string())
        });
        let deployed = t.elapsed();
        // Deployed means the new processes serve; the old ones drain, then stop.
        wait_until(60, "the old processes never went", || {
            web_up(&home, cwd).len() == 3
        });
        steps.push(format!(
            "{} -> v{want} deployed in {deployed:.2?}",
            args[..2].join(" ")
        ));
    }
    let before = web_up(&home, cwd);
    let t = Instant::now();
    ok(&home, cwd, &["ps:restart", "web", "-a", APP]);
    let restarted = t.elapsed();
    wait_until(60, "the restart never finished", || {
        let now = web_up(&home, cwd);
        now.len() == 3 && now.iter().all(|n| !before.contains(n))
    });
    steps.push(format!("ps:restart web answered in {restarted:.2?}"));
    let in_window = start.elapsed();
    let out = wrk.wait_with_output().expect("wrk");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // "  123456 requests in 30.00s, 12.34MB read"
    let requests: u64 = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let non2xx = number_after(&text, "Non-2xx or 3xx responses:");
    // "  Socket errors: connect 0, read 3, write 0, timeout 0" (only when there are any)
    let socket = text
        .lines()
        .find(|l| l.contains("Socket errors:"))
        .unwrap_or_default();
    let (connect, read, write, timeout) = (
        number_after(socket, "connect "),
        number_after(socket, "read "),
        number_after(socket, "write "),
        number_after(socket, "timeout "),
    );
    for s in &steps {
        println!("  {s}");
    }
    println!(
        "rollouts under load ({secs} s of wrk -t2 -c16 through the router, rollouts done after {in_window:.1?}):"
    );
    println!(
        "  requests {requests}, non-2xx {non2xx}, socket errors: connect {connect}, read {read}, write {write}, timeout {timeout}"
    );
    let failed = non2xx + connect + read + write + timeout;
    if failed > 0 || !out.status.success() {
        println!("  MISSED: {failed} failed requests\n{text}");
    } else {
        println!("  OK: zero failed requests");
    }
    drop(platform);
}
