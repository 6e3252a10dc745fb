//! Restart benchmark (not pass/fail): `workflow up` killed and started again on the same data
//! dir with `RESTART_APPS` (200) running apps, measured through the controller and router.
//!
//! One Procfile app (busybox httpd) is pushed over git; the others get the same image through
//! the controller's build hook (as the builder reports a build), so setting up is quick. Then:
//!
//! - first start: from the first hook call until every app's web process is `up` in
//!   `/v2/apps/<app>/pods` and every app answers 200 through the router (from scratch: unpack,
//!   start, probe, route);
//! - after SIGKILL of `workflow up`, and again after SIGTERM: from starting it again until
//!   the same, and how many processes got a new pid (restarted needlessly; must be 0).
//!
//! Ratios compare each restart with the first start.
//!
//! `cargo bench --profile dev -p workflow-cli --bench restart_converge` (needs busybox).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use workflow_clients::controller::ControllerHooks;
use workflow_common::grpc::PlatformCredential;
use workflow_proto::controller::v1::{BuildKind, HookBuildRequest};

use common::{HTTPD_WEB, Platform, checkout, git, ok, registered, token, up};

/// Every process's pid by name, from the runtime's state files.
fn pids(data: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(data.join("runtime/apps")) else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(text) = std::fs::read_to_string(e.path().join("state.json")) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&text).expect("state.json");
        for p in v["processes"].as_array().cloned().unwrap_or_default() {
            if let (Some(n), Some(pid)) = (p["name"].as_str(), p["pid"].as_u64()) {
                out.insert(n.to_string(), pid);
            }
        }
    }
    out
}

struct Probe {
    http: reqwest::Client,
    controller: String,
    router: String,
    token: String,
}

impl Probe {
    fn new(p: &Platform, token: &str, apps: &[String]) -> Probe {
        let eps = p.endpoints();
        let router = eps["router"].as_str().expect("router").to_string();
        let addr: std::net::SocketAddr = router
            .trim_start_matches("http://")
            .parse()
            .expect("router address");
        let mut b = reqwest::Client::builder().timeout(Duration::from_secs(10));
        for a in apps {
            b = b.resolve(&format!("{a}.localhost"), addr);
        }
        Probe {
            http: b.build().unwrap(),
            controller: eps["controller"].as_str().expect("controller").to_string(),
            router,
            token: token.to_string(),
        }
    }

    /// Whether the controller reports `app`'s web process up.
    async fn pods_up(&self, app: &str) -> bool {
        let Ok(r) = self
            .http
            .get(format!("{}/v2/apps/{app}/pods/", self.controller))
            .header("Authorization", format!("token {}", self.token))
            .send()
            .await
        else {
            return false;
        };
        let Ok(v) = r.json::<serde_json::Value>().await else {
            return false;
        };
        let list = v["results"].as_array().cloned().unwrap_or_default();
        !list.is_empty() && list.iter().all(|p| p["state"] == "up")
    }

    /// Whether the router answers 200 for `app`.
    async fn routed(&self, app: &str) -> bool {
        let port = self.router.rsplit(':').next().unwrap_or_default();
        self.http
            .get(format!("http://{app}.localhost:{port}/"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    }

    /// Waits until every app is up in the controller's answer, then until every app answers
    /// through the router; answers both times since `t`.
    async fn converge(&self, apps: &[String], t: Instant) -> (Duration, Duration) {
        let mut waiting: Vec<String> = apps.to_vec();
        let mut up_at = None;
        let mut routed = false;
        loop {
            let checks = futures::stream::iter(waiting.clone())
                .map(|a| async move {
                    let ok = if routed {
                        self.routed(&a).await
                    } else {
                        self.pods_up(&a).await
                    };
                    (a, ok)
                })
                .buffer_unordered(32)
                .collect::<Vec<_>>()
                .await;
            waiting = checks
                .into_iter()
                .filter(|(_, ok)| !ok)
                .map(|(a, _)| a)
                .collect();
            if waiting.is_empty() {
                if routed {
                    return (up_at.unwrap_or_default(), t.elapsed());
                }
                up_at = Some(t.elapsed());
                routed = true;
                waiting = apps.to_vec();
                continue;
            }
            assert!(
                t.elapsed() < Duration::from_secs(600),
                "{} apps never converged, e.g. {}",
                waiting.len(),
                waiting[0]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::main]
async fn main() {
    if !Command::new("sh")
        .args(["-c", "command -v busybox"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("restart_converge bench: needs busybox (apt-get install busybox-static)");
        return;
    }
    let n: usize = std::env::var("RESTART_APPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let (home, mut platform) = registered(dir.path());
    let eps = platform.endpoints();
    let git_http = eps["git_http"].as_str().expect("git_http").to_string();
    let grpc = eps["controller_grpc"]
        .as_str()
        .expect("controller_grpc")
        .to_string();
    let token = token(&home);
    let apps: Vec<String> = (0..n).map(|i| format!("a{i:03}")).collect();

    // The first app is pushed; its build is what the others run.
    let src = checkout(
        &home,
        &dir.path().join("src"),
        &[("Procfile", HTTPD_WEB), ("index.html", "hi\n")],
    );
    ok(&home, &src, &["create", &apps[0], "--no-remote"]);
    ok(
        &home,
        &src,
        &[
            "git:remote",
            "-a",
            &apps[0],
            "--https",
            "--git-url",
            &git_http,
        ],
    );
    let out = git(&home, &src, &["push", "deis", "main"]);
    assert!(out.contains("deployed"), "{out}");
    let builds: serde_json::Value =
        serde_json::from_str(&ok(&home, &src, &["builds", "-a", &apps[0], "--json"]))
            .expect("builds JSON");
    let build = builds
        .get("results")
        .and_then(|r| r.get(0))
        .or_else(|| builds.get(0))
        .cloned()
        .expect("a build");
    let http = reqwest::Client::new();
    let controller = eps["controller"].as_str().unwrap().to_string();
    for a in &apps[1..] {
        let r = http
            .post(format!("{controller}/v2/apps/"))
            .header("Authorization", format!("token {token}"))
            .json(&serde_json::json!({ "id": a }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "creating {a}: {}", r.status());
    }
    let credential = std::fs::read_to_string(platform.data.join("platform-credential")).unwrap();
    let hooks =
        ControllerHooks::new(&grpc, &PlatformCredential::new(credential.trim()).unwrap()).unwrap();
    let procfile: std::collections::HashMap<String, String> =
        serde_json::from_value(build["procfile"].clone()).unwrap();
    let t = Instant::now();
    for a in &apps[1..] {
        hooks
            .create_build(HookBuildRequest {
                username: "alice".into(),
                app: a.clone(),
                image: build["image"].as_str().unwrap().to_string(),
                sha: build["sha"].as_str().unwrap().to_string(),
                procfile: procfile.clone(),
                kind: BuildKind::Buildpack as i32,
                digest: build["digest"].as_str().unwrap_or_default().to_string(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("build for {a}: {e}"));
    }
    let probe = Probe::new(&platform, &token, &apps);
    let (first_up, first_routed) = probe.converge(&apps, t).await;
    println!(
        "first start, {n} apps from scratch (release recorded -> up): pods up {first_up:.2?}, all answering through the router {first_routed:.2?}"
    );

    for signal in ["KILL", "TERM"] {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = pids(&platform.data);
        assert_eq!(before.len(), n, "one process per app: {before:?}");
        let pid = platform.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([&format!("-{signal}"), &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = platform.child.wait().unwrap();
        let _ = std::fs::remove_file(platform.data.join("endpoints.json"));
        let t = Instant::now();
        let (p, _) = up(dir.path());
        let started = t.elapsed();
        // The old `workflow up` is dead; its apps are the new one's to adopt.
        std::mem::replace(&mut platform, p).detach();
        let probe = Probe::new(&platform, &token, &apps);
        let (up_in, routed_in) = probe.converge(&apps, t).await;
        // Anything restarted late (a reconcile after convergence) counts too.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = pids(&platform.data);
        let restarted = before
            .iter()
            .filter(|(name, pid)| after.get(*name) != Some(pid))
            .count();
        let extra = after.keys().filter(|k| !before.contains_key(*k)).count();
        println!(
            "after SIG{signal} ({status}) and a new `workflow up`: controller answering {started:.2?}, pods up {up_in:.2?}, all answering through the router {routed_in:.2?}; processes restarted {restarted}, new {extra}{}",
            if restarted + extra > 0 || routed_in > Duration::from_secs(5) {
                "  MISSED"
            } else {
                ""
            }
        );
        println!(
            "  ratio restart / first start: pods up {:.2}, routed {:.2}",
            up_in.as_secs_f64() / first_up.as_secs_f64(),
            routed_in.as_secs_f64() / first_routed.as_secs_f64()
        );
    }
    drop(platform);
}
