//! `git push` to the builder end to end: the real git client over smart HTTP, the real
//! controller (SQLite) recording builds and releases, the builder's pre-receive hook.
//!
//! The image builder is [`ScriptedBuilder`] until the build engine is merged; switching
//! is the one line in [`start_builder`] that makes the `Parts`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use workflow_builder::build::{BuildKind, BuildRequest, BuiltImage, ImageBuilder, Output};
use workflow_tests::RunningController;

/// Builds by rules the pushed tree states: a `FAIL` file fails the build, a `SLOW` file
/// waits for the test to open the gate.
#[derive(Debug, Default)]
struct ScriptedBuilder {
    started: tokio::sync::Notify,
    gate: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl ImageBuilder for ScriptedBuilder {
    async fn build(&self, r: &BuildRequest, out: &Output) -> Result<BuiltImage, String> {
        let _ = out.send("-----> Procfile app detected".to_string()).await;
        if r.source_dir.join("SLOW").exists() {
            self.started.notify_one();
            self.gate.notified().await;
        }
        if r.source_dir.join("FAIL").exists() {
            let _ = out.send("compile: error in main.rs".to_string()).await;
            return Err("the compile step exited with status 1".into());
        }
        let digest = format!(
            "sha256:{}",
            r.sha.repeat(2).chars().take(64).collect::<String>()
        );
        Ok(BuiltImage {
            reference: format!("127.0.0.1:5000/{}@{digest}", r.app),
            digest,
            process_types: [("web".to_string(), "./serve".to_string())].into(),
            kind: BuildKind::Buildpack,
            layers: 2,
            size: 1234,
            port: Some(8080),
        })
    }
}

struct Platform {
    ctl: RunningController,
    http: reqwest::Client,
    git_url: String,
    builder: Arc<ScriptedBuilder>,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
    home: PathBuf,
}

impl Platform {
    async fn rest(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.ctl.http));
        if let Some(t) = token {
            r = r.header("Authorization", format!("token {t}"));
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn user(&self, name: &str) -> String {
        self.rest(
            reqwest::Method::POST,
            "/v2/auth/register/",
            None,
            Some(
                json!({"username": name, "password": "pw", "email": format!("{name}@example.com")}),
            ),
        )
        .await;
        let v = self
            .rest(
                reqwest::Method::POST,
                "/v2/auth/login/",
                None,
                Some(json!({"username": name, "password": "pw"})),
            )
            .await;
        v["token"].as_str().unwrap().to_string()
    }

    fn remote(&self, user: &str, token: &str, app: &str) -> String {
        self.git_url
            .replacen("http://", &format!("http://{user}:{token}@"), 1)
            + &format!("/{app}.git")
    }

    async fn releases(&self, app: &str, token: &str) -> u64 {
        let v = self
            .rest(
                reqwest::Method::GET,
                &format!("/v2/apps/{app}/releases/"),
                Some(token),
                None,
            )
            .await;
        v["count"].as_u64().unwrap()
    }
}

async fn start(push_wait: Duration) -> Platform {
    let ctl = RunningController::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let builder = Arc::new(ScriptedBuilder::default());
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let git_url = format!("http://{}", http.local_addr().unwrap());
    let config = workflow_builder::Config {
        data_dir: dir.path().join("builder"),
        controller_url: ctl.grpc.clone(),
        builder_key: ctl.builder_key.clone(),
        hook_program: Some(PathBuf::from(env!("CARGO_BIN_EXE_git-hook"))),
        push_wait,
        ..Default::default()
    };
    let platform =
        workflow_builder::platform::GrpcPlatform::new(&ctl.grpc, &ctl.builder_key).unwrap();
    let parts = workflow_builder::Parts {
        // After the merge: the real build engine here.
        builder: builder.clone(),
        platform: Arc::new(platform),
    };
    let stop = CancellationToken::new();
    let shutdown = workflow_builder::Shutdown::new(stop.clone(), Duration::from_secs(2));
    tokio::spawn(workflow_builder::serve(
        config,
        workflow_builder::Listeners {
            grpc,
            http: Some(http),
            ssh: None,
        },
        shutdown,
        parts,
    ));
    Platform {
        ctl,
        http: reqwest::Client::new(),
        git_url,
        builder,
        stop,
        _dir: dir,
        home,
    }
}

/// Runs git in `dir` with an isolated HOME; answers (success, stdout + stderr).
fn git(home: &Path, dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn agit(home: &Path, dir: &Path, args: &[&str]) -> (bool, String) {
    let (home, dir) = (home.to_path_buf(), dir.to_path_buf());
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        git(&home, &dir, &a)
    })
    .await
    .unwrap()
}

fn checkout(home: &Path, root: &Path, name: &str) -> PathBuf {
    let d = root.join(name);
    std::fs::create_dir_all(&d).unwrap();
    assert!(git(home, &d, &["init", "-q", "-b", "main"]).0);
    std::fs::write(d.join("Procfile"), "web: ./serve\n").unwrap();
    commit(home, &d, "first");
    d
}

fn commit(home: &Path, d: &Path, msg: &str) {
    assert!(git(home, d, &["add", "-A"]).0);
    let (ok, out) = git(home, d, &["commit", "-q", "--allow-empty", "-m", msg]);
    assert!(ok, "{out}");
}

fn head(home: &Path, d: &Path) -> String {
    git(home, d, &["rev-parse", "HEAD"]).1.trim().to_string()
}

#[tokio::test]
async fn http_push_builds_the_deploy_branch_and_releases() {
    let p = start(Duration::from_secs(5)).await;
    let alice = p.user("alice").await;
    p.rest(
        reqwest::Method::POST,
        "/v2/apps/",
        Some(&alice),
        Some(json!({"id": "hello"})),
    )
    .await;
    let src = checkout(&p.home, p._dir.path(), "hello");
    let remote = p.remote("alice", &alice, "hello");

    let (ok, out) = agit(&p.home, &src, &["push", &remote, "main"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("remote: -----> Procfile app detected"),
        "{out}"
    );
    assert!(
        out.contains("Launching... done, hello:v2 deployed"),
        "{out}"
    );
    assert_eq!(p.releases("hello", &alice).await, 2);

    // Another branch is stored, not built.
    assert!(git(&p.home, &src, &["checkout", "-q", "-b", "dev"]).0);
    commit(&p.home, &src, "on dev");
    let (ok, out) = agit(&p.home, &src, &["push", &remote, "dev"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("branch dev stored, not built"), "{out}");
    assert_eq!(p.releases("hello", &alice).await, 2);

    // A failed build rejects the push and leaves main where it was.
    assert!(git(&p.home, &src, &["checkout", "-q", "main"]).0);
    let before = head(&p.home, &src);
    std::fs::write(src.join("FAIL"), "").unwrap();
    commit(&p.home, &src, "broken");
    let (ok, out) = agit(&p.home, &src, &["push", &remote, "main"]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("compile: error in main.rs"), "{out}");
    assert!(out.contains("build of hello failed"), "{out}");
    let (_, refs) = agit(&p.home, &src, &["ls-remote", &remote, "refs/heads/main"]).await;
    assert!(refs.starts_with(&before), "main unchanged: {refs}");
    assert_eq!(p.releases("hello", &alice).await, 2);

    // Deleting the deploy branch is refused with the reason.
    let (ok, out) = agit(&p.home, &src, &["push", &remote, ":main"]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("deleting main, the deploy branch of hello, is refused"),
        "{out}"
    );

    // Fetching back works (upload-pack).
    let (ok, out) = agit(&p.home, p._dir.path(), &["clone", "-q", &remote, "cloned"]).await;
    assert!(ok, "{out}");
    assert_eq!(head(&p.home, &p._dir.path().join("cloned")), before);
    p.stop.cancel();
}

#[tokio::test]
async fn http_push_refuses_strangers_before_reading_the_pack() {
    let p = start(Duration::from_secs(5)).await;
    let alice = p.user("alice").await;
    let bob = p.user("bob").await;
    p.rest(
        reqwest::Method::POST,
        "/v2/apps/",
        Some(&alice),
        Some(json!({"id": "hello"})),
    )
    .await;
    let src = checkout(&p.home, p._dir.path(), "hello");

    // Bob may not push to alice's app: the message names the app.
    let (ok, out) = agit(
        &p.home,
        &src,
        &["push", &p.remote("bob", &bob, "hello"), "main"],
    )
    .await;
    assert!(!ok, "{out}");
    assert!(out.contains("bob may not push to hello"), "{out}");
    // A wrong token: 401 (git would ask for credentials; here it may not).
    let (ok, out) = agit(
        &p.home,
        &src,
        &["push", &p.remote("alice", "nope", "hello"), "main"],
    )
    .await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("401") || out.contains("Authentication failed"),
        "{out}"
    );
    // No credentials at all: the server asks for them.
    let res = p
        .http
        .get(format!(
            "{}/hello.git/info/refs?service=git-receive-pack",
            p.git_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=")
    );
    assert_eq!(p.releases("hello", &alice).await, 1);
    p.stop.cancel();
}

#[tokio::test]
async fn second_push_to_a_busy_app_waits_then_is_refused() {
    let p = start(Duration::from_millis(500)).await;
    let alice = p.user("alice").await;
    p.rest(
        reqwest::Method::POST,
        "/v2/apps/",
        Some(&alice),
        Some(json!({"id": "hello"})),
    )
    .await;
    let remote = p.remote("alice", &alice, "hello");
    let slow = checkout(&p.home, p._dir.path(), "slow");
    std::fs::write(slow.join("SLOW"), "").unwrap();
    commit(&p.home, &slow, "slow");
    let other = checkout(&p.home, p._dir.path(), "other");

    let first = tokio::spawn({
        let (home, slow, remote) = (p.home.clone(), slow.clone(), remote.clone());
        async move { agit(&home, &slow, &["push", &remote, "main"]).await }
    });
    p.builder.started.notified().await;
    let (ok, out) = agit(&p.home, &other, &["push", "--force", &remote, "main"]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("another push to hello is being built; waiting"),
        "{out}"
    );
    assert!(out.contains("still building"), "{out}");
    p.builder.gate.notify_one();
    let (ok, out) = first.await.unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("hello:v2 deployed"), "{out}");
    p.stop.cancel();
}
