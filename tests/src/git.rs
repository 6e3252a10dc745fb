//! Helpers for `git push` end-to-end tests and the push benchmark: a controller and a
//! builder serving smart HTTP and SSH in this process, and the real git client with an
//! isolated HOME.
//!
//! The image builder is [`ScriptedBuilder`] until the build engine is merged; switching
//! is the one line in [`start`] that makes the `Parts`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::RunningController;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use workflow_builder::build::{BuildKind, BuildRequest, BuiltImage, ImageBuilder, Output};

/// Builds by rules the pushed tree states: a `FAIL` file fails the build, a `SLOW` file
/// waits for the test to open the gate, a `SAME` file gives the same digest whatever the
/// commit (as a reproducible build of an unchanged tree does).
#[derive(Debug, Default)]
pub struct ScriptedBuilder {
    /// Notified when a `SLOW` build starts.
    pub started: tokio::sync::Notify,
    /// Notify to let a `SLOW` build finish.
    pub gate: tokio::sync::Notify,
    /// Simulated build work.
    pub delay: std::time::Duration,
}

#[async_trait::async_trait]
impl ImageBuilder for ScriptedBuilder {
    async fn build(&self, r: &BuildRequest, out: &Output) -> Result<BuiltImage, String> {
        let _ = out.send("-----> Procfile app detected".to_string()).await;
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if r.source_dir.join("SLOW").exists() {
            self.started.notify_one();
            self.gate.notified().await;
        }
        if r.source_dir.join("FAIL").exists() {
            let _ = out.send("compile: error in main.rs".to_string()).await;
            return Err("the compile step exited with status 1".into());
        }
        let digest = if r.source_dir.join("SAME").exists() {
            format!("sha256:{}", "5".repeat(64))
        } else {
            format!(
                "sha256:{}",
                r.sha.repeat(2).chars().take(64).collect::<String>()
            )
        };
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

/// A controller and a builder on loopback.
pub struct Platform {
    /// Part of the platform.
    pub ctl: RunningController,
    /// Part of the platform.
    pub http: reqwest::Client,
    /// Part of the platform.
    pub git_url: String,
    /// The builder's SSH port on 127.0.0.1.
    pub ssh_port: u16,
    /// Part of the platform.
    pub builder: Arc<ScriptedBuilder>,
    /// Part of the platform.
    pub stop: CancellationToken,
    /// Scratch space (repositories, checkouts).
    pub dir: tempfile::TempDir,
    /// Part of the platform.
    pub home: PathBuf,
}

impl Platform {
    /// Helper.
    pub async fn rest(
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

    /// Helper.
    pub async fn user(&self, name: &str) -> String {
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

    /// Creates app `name` as the user whose API token is `token`.
    pub async fn create_app(&self, token: &str, name: &str) {
        self.rest(
            reqwest::Method::POST,
            "/v2/apps/",
            Some(token),
            Some(json!({ "id": name })),
        )
        .await;
    }

    /// Helper.
    pub fn remote(&self, user: &str, token: &str, app: &str) -> String {
        self.git_url
            .replacen("http://", &format!("http://{user}:{token}@"), 1)
            + &format!("/{app}.git")
    }

    /// Helper.
    pub async fn releases(&self, app: &str, token: &str) -> u64 {
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

/// Starts both daemons; a second push to a busy app waits `push_wait`.
pub async fn start(push_wait: Duration, delay: Duration) -> Platform {
    start_with(delay, |c| c.push_wait = push_wait).await
}

/// Starts both daemons, the builder's config changed by `tweak`; each scripted build takes
/// `delay`.
pub async fn start_with(
    delay: Duration,
    tweak: impl FnOnce(&mut workflow_builder::Config),
) -> Platform {
    let ctl = RunningController::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let builder = Arc::new(ScriptedBuilder {
        delay,
        ..Default::default()
    });
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let git_url = format!("http://{}", http.local_addr().unwrap());
    let ssh = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ssh_port = ssh.local_addr().unwrap().port();
    let mut config = workflow_builder::Config {
        data_dir: dir.path().join("builder"),
        controller_url: ctl.grpc.clone(),
        platform_credential: ctl.builder_key.clone(),
        hook_program: Some(hook_program()),
        ..Default::default()
    };
    tweak(&mut config);
    let platform = workflow_builder::platform::GrpcPlatform::new(
        &ctl.grpc,
        &workflow_common::grpc::PlatformCredential::new(&ctl.builder_key).unwrap(),
    )
    .unwrap();
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
            ssh: Some(ssh),
        },
        shutdown,
        parts,
    ));
    Platform {
        ctl,
        http: reqwest::Client::new(),
        git_url,
        ssh_port,
        builder,
        stop,
        dir,
        home,
    }
}

/// Runs git in `dir` with an isolated HOME; answers (success, stdout + stderr).
/// Git helper.
pub fn git(home: &Path, dir: &Path, args: &[&str]) -> (bool, String) {
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

/// Git helper.
pub async fn agit(home: &Path, dir: &Path, args: &[&str]) -> (bool, String) {
    let (home, dir) = (home.to_path_buf(), dir.to_path_buf());
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        git(&home, &dir, &a)
    })
    .await
    .unwrap()
}

/// Git helper.
pub fn checkout(home: &Path, root: &Path, name: &str) -> PathBuf {
    let d = root.join(name);
    std::fs::create_dir_all(&d).unwrap();
    assert!(git(home, &d, &["init", "-q", "-b", "main"]).0);
    std::fs::write(d.join("Procfile"), "web: ./serve\n").unwrap();
    commit(home, &d, "first");
    d
}

/// Git helper.
pub fn commit(home: &Path, d: &Path, msg: &str) {
    assert!(git(home, d, &["add", "-A"]).0);
    let (ok, out) = git(home, d, &["commit", "-q", "--allow-empty", "-m", msg]);
    assert!(ok, "{out}");
}

/// Git helper.
pub fn head(home: &Path, d: &Path) -> String {
    git(home, d, &["rev-parse", "HEAD"]).1.trim().to_string()
}

/// The hook binary built beside the test or bench binary (`target/debug/git-hook`).
pub fn hook_program() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("exe dir");
    // Tests and benches run from target/<profile>/deps; binaries sit one level up.
    let up = if dir.ends_with("deps") {
        dir.parent().expect("profile dir")
    } else {
        dir
    };
    up.join("git-hook")
}
