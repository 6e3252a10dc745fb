//! Helpers shared by the end-to-end stories: `workflow up` in a temp dir, `deis` as a user
//! with its own HOME, and polling for what the reconcile loop does asynchronously.

#![allow(dead_code)]

/// Build fixtures shared with the engine tests of `workflow-tests`.
#[path = "../../../tests/src/fixtures.rs"]
pub mod fixtures;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running `workflow up`, killed on drop with the apps it ran (host processes and
/// containers outlive `workflow up` by design, to be adopted by the next one; a test's are
/// not left running on the machine, even when the test fails).
pub struct Platform {
    pub child: Child,
    pub data: PathBuf,
    /// Whether dropping stops the apps' processes too (see [`Platform::detach`]).
    pub stop_apps: bool,
}

impl Drop for Platform {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.stop_apps {
            stop_apps(&self.data);
        }
    }
}

impl Platform {
    /// Kills `workflow up` only, leaving its apps running for a `workflow up` started again
    /// on the same data dir to adopt.
    pub fn detach(mut self) {
        self.stop_apps = false;
    }
}

/// Every number under `key` anywhere in `v`.
pub fn find_numbers(v: &serde_json::Value, key: &str) -> Vec<u64> {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .flat_map(|(k, v)| match v.as_u64() {
                Some(n) if k == key => vec![n],
                _ => find_numbers(v, key),
            })
            .collect(),
        serde_json::Value::Array(a) => a.iter().flat_map(|v| find_numbers(v, key)).collect(),
        _ => Vec::new(),
    }
}

/// Every string under `key` anywhere in `v`.
pub fn find_strings(v: &serde_json::Value, key: &str) -> Vec<String> {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .flat_map(|(k, v)| match v.as_str() {
                Some(s) if k == key => vec![s.to_string()],
                _ => find_strings(v, key),
            })
            .collect(),
        serde_json::Value::Array(a) => a.iter().flat_map(|v| find_strings(v, key)).collect(),
        _ => Vec::new(),
    }
}

/// The app uuids the runtime keeps state for under `data` (`runtime/apps/<uuid>/`).
pub fn runtime_apps(data: &Path) -> Vec<String> {
    let Ok(dirs) = std::fs::read_dir(data.join("runtime").join("apps")) else {
        return Vec::new();
    };
    dirs.flatten()
        .filter_map(|d| d.file_name().into_string().ok())
        .collect()
}

/// The runtime's state files under `data` (`runtime/apps/<uuid>/state.json`), parsed.
pub fn runtime_states(data: &Path) -> Vec<serde_json::Value> {
    let Ok(dirs) = std::fs::read_dir(data.join("runtime").join("apps")) else {
        return Vec::new();
    };
    dirs.flatten()
        .filter_map(|d| std::fs::read_to_string(d.path().join("state.json")).ok())
        .filter_map(|t| serde_json::from_str(&t).ok())
        .collect()
}

/// Removes the containers labelled with an app of the runtime under `data`; answers whether
/// there were any.
fn remove_labelled_containers(data: &Path) -> bool {
    let mut found = false;
    for uuid in runtime_apps(data) {
        let out = Command::new("docker")
            .args(["ps", "-aq", "--filter", &format!("label=app_id={uuid}")])
            .output();
        let ids = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            found = true;
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    found
}

/// Kills the host processes and removes the containers (and their images) the runtime's
/// state files name.
fn stop_apps(data: &Path) {
    // Containers by the app's label (every one the runtime makes has it), so one created
    // just before `workflow up` was killed, in no state file yet, goes too. The engine may
    // still finish a create the killed process had sent: once more after a moment.
    if remove_labelled_containers(data) {
        std::thread::sleep(Duration::from_millis(500));
        remove_labelled_containers(data);
    }
    for state in runtime_states(data) {
        for pid in find_numbers(&state, "pid") {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        // And the images containers ran, pulled from this platform's registry.
        let images = find_strings(&state, "image");
        if !images.is_empty() {
            let _ = Command::new("docker")
                .arg("rmi")
                .args(&images)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Platform {
    /// `DATA_DIR/endpoints.json`.
    pub fn endpoints(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.data.join("endpoints.json")).unwrap())
            .unwrap()
    }
}

/// `workflow up --random-ports` with its data under `dir/wf`; answers the controller URL.
pub fn up(dir: &Path) -> (Platform, String) {
    let data = dir.join("wf");
    let child = Command::new(env!("CARGO_BIN_EXE_workflow"))
        .args(["up", "--random-ports", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start workflow up");
    let platform = Platform {
        child,
        data: data.clone(),
        stop_apps: true,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(data.join("endpoints.json")) {
            let v: serde_json::Value = serde_json::from_str(&text).expect("endpoints.json is JSON");
            let url = v["controller"]
                .as_str()
                .expect("endpoints.json has controller")
                .to_string();
            return (platform, url);
        }
        assert!(
            Instant::now() < deadline,
            "workflow up did not write endpoints.json within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `deis ARGS` with `HOME=home` in `cwd`.
pub fn deis(home: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deis"))
        .args(args)
        .env("HOME", home)
        .env_remove("DEIS_PROFILE")
        .env_remove("BROWSER")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("run deis")
}

/// `deis ARGS`, which must succeed; answers stdout and stderr.
pub fn ok(home: &Path, cwd: &Path, args: &[&str]) -> String {
    let out = deis(home, cwd, args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "deis {args:?} failed:\n{stdout}\n{stderr}"
    );
    format!("{stdout}{stderr}")
}

/// `deis ARGS`, which must fail; answers stderr.
pub fn fails(home: &Path, cwd: &Path, args: &[&str]) -> String {
    let out = deis(home, cwd, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "deis {args:?} succeeded:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// `workflow up` in `dir`, with alice registered and logged in under `dir/home`.
pub fn registered(dir: &Path) -> (PathBuf, Platform) {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let (platform, url) = up(dir);
    ok(
        &home,
        dir,
        &[
            "register",
            &url,
            "--username",
            "alice",
            "--password",
            "s3cret",
        ],
    );
    (home, platform)
}

/// Waits until `deis` prints something containing `want` (retrying: shipping and
/// indexing are asynchronous), or fails with the last output.
pub fn eventually(home: &Path, cwd: &Path, args: &[&str], want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = deis(home, cwd, args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() && text.contains(want) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "deis {args:?} never printed {want:?}; last output:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Polls `f` until it answers true, or fails with `what` after `secs` seconds.
pub fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "{what} (waited {secs} s)");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `git ARGS` in `dir` as a test user with `HOME=home` and `env` added; answers whether it
/// succeeded and its stdout and stderr.
pub fn try_git(home: &Path, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
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
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `git ARGS` in `dir` as a test user with `HOME=home`; must succeed.
pub fn git(home: &Path, dir: &Path, args: &[&str]) -> String {
    let (ok, text) = try_git(home, dir, &[], args);
    assert!(ok, "git {args:?}: {text}");
    text
}

/// The app's processes as `deis ps --json` lists them.
pub fn ps_list(home: &Path, cwd: &Path, app: &str) -> Vec<serde_json::Value> {
    let out = ok(home, cwd, &["ps", "-a", app, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("ps JSON");
    v.get("results")
        .and_then(|r| r.as_array())
        .or_else(|| v.as_array())
        .cloned()
        .unwrap_or_default()
}

/// The peer registry's `host:port` (`WORKFLOW_TEST_PEER_REGISTRY`, started by
/// scripts/peers/docker-registry.sh); `None` to skip, which fails under CI.
pub fn peer_registry() -> Option<String> {
    let peer = std::env::var("WORKFLOW_TEST_PEER_REGISTRY").ok();
    if peer.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "WORKFLOW_TEST_PEER_REGISTRY is not set under CI: scripts/test starts docker-registry"
        );
        eprintln!("skipping: set WORKFLOW_TEST_PEER_REGISTRY (scripts/peers/docker-registry.sh)");
    }
    peer
}

/// A web process serving the checkout's files with busybox httpd on `PORT`.
pub const HTTPD_WEB: &str = "web: exec busybox httpd -f -p $PORT -h .\n";

/// A new git checkout `dir` (branch `main`) holding `files` (path, text) in one commit.
pub fn checkout(home: &Path, dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    git(home, dir, &["init", "-q", "-b", "main"]);
    for (path, text) in files {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, text).unwrap();
    }
    git(home, dir, &["add", "-A"]);
    git(home, dir, &["commit", "-q", "-m", "first"]);
    dir.to_path_buf()
}

/// A fresh passphrase-less ed25519 key pair `dir/name` (`ssh-keygen`) with `comment`; answers
/// the private key's path (the public key is beside it, `.pub`).
pub fn ssh_keygen(dir: &Path, name: &str, comment: &str) -> PathBuf {
    let key = dir.join(name);
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(&key)
        .status()
        .expect("run ssh-keygen");
    assert!(st.success(), "ssh-keygen failed");
    key
}

/// `GIT_SSH_COMMAND` offering only `key`, trusting any host key and never prompting.
pub fn ssh_command(key: &Path) -> String {
    format!(
        "ssh -i {} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR",
        key.display()
    )
}

/// The API token `deis` keeps in `home/.deis/client.json`.
pub fn token(home: &Path) -> String {
    let profile: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.join(".deis/client.json")).unwrap())
            .unwrap();
    profile["token"].as_str().expect("a token").to_string()
}

/// `skopeo ARGS` (without the machine's AWS CA bundle, which Go programs would trust alone).
pub fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo")
        .args(args)
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .expect("run skopeo")
}

/// Whether busybox (the apps' web server) is installed; fails under CI when it is not.
pub fn have_busybox() -> bool {
    if Command::new("busybox").arg("true").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "busybox is missing (apt-get install busybox-static)"
    );
    eprintln!("skipping: busybox is missing (apt-get install busybox-static)");
    false
}

/// The digest a push printed (`-----> Done: APP@sha256:...`).
pub fn pushed_digest(out: &str, app: &str) -> String {
    let mark = format!("-----> Done: {app}@");
    let line = out
        .lines()
        .find_map(|l| l.split_once(&mark).map(|(_, d)| d.trim().to_string()))
        .unwrap_or_else(|| panic!("the push printed no digest:\n{out}"));
    assert!(
        line.starts_with("sha256:") && line.len() == 71,
        "not a digest: {line}"
    );
    line
}

/// The registry's `host:port` from endpoints.json.
pub fn registry_host(eps: &serde_json::Value) -> String {
    eps["registry"]
        .as_str()
        .expect("endpoints.json has registry")
        .trim_start_matches("http://")
        .to_string()
}
