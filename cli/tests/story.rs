//! The user story of the spine, verbatim, against the real `workflow` and `deis`
//! binaries: `workflow up`, register, create, config:set, releases, rollback.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    HTTPD_WEB, checkout, deis, eventually, git, ok, peer_registry, registered, skopeo, up,
};

#[test]
fn the_user_story_works_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let cwd = dir.path();
    let (mut platform, url) = up(dir.path());

    let out = ok(
        &home,
        cwd,
        &[
            "register",
            &url,
            "--username",
            "alice",
            "--password",
            "s3cret",
            "--email",
            "a@example.com",
        ],
    );
    assert!(out.contains("Logged in as alice"), "{out}");
    let profile = std::fs::read_to_string(home.join(".deis/client.json")).unwrap();
    let profile: serde_json::Value = serde_json::from_str(&profile).unwrap();
    assert_eq!(profile["controller"], url.as_str());
    assert_eq!(profile["username"], "alice");
    assert!(profile["token"].as_str().is_some_and(|t| t.len() == 40));

    let out = ok(&home, cwd, &["create", "hello", "--no-remote"]);
    assert!(out.contains("created hello"), "{out}");
    let out = ok(&home, cwd, &["config:set", "GREETING=hi", "-a", "hello"]);
    assert!(out.contains("v2"), "{out}");
    let out = ok(&home, cwd, &["releases", "-a", "hello"]);
    let v2 = out
        .lines()
        .position(|l| l.starts_with("v2") && l.ends_with("alice added GREETING"));
    let v1 = out
        .lines()
        .position(|l| l.starts_with("v1") && l.ends_with("alice created initial release"));
    assert!(
        matches!((v2, v1), (Some(a), Some(b)) if a < b),
        "newest first:\n{out}"
    );
    // v1 has no build: a second release first, then roll back to v2.
    let out = ok(&home, cwd, &["config:set", "OTHER=x", "-a", "hello"]);
    assert!(out.contains("v3"), "{out}");
    let out = ok(&home, cwd, &["rollback", "-a", "hello"]);
    assert!(out.contains("v4"), "{out}");
    let out = ok(&home, cwd, &["releases", "-a", "hello", "--json"]);
    let releases: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(releases[0]["version"], 4);
    assert_eq!(releases[0]["summary"], "alice rolled back to v2");

    // In a git checkout, create adds the remote and later commands infer the app from it.
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    assert!(
        Command::new("git")
            .args(["init", "-q"])
            .current_dir(&repo)
            .status()
            .unwrap()
            .success()
    );
    let out = ok(&home, &repo, &["create", "world"]);
    assert!(out.contains("Git remote deis"), "{out}");
    let out = ok(&home, &repo, &["config:set", "A=1"]);
    assert!(out.contains("world is now at v2"), "{out}");

    // Bad input: a clear error naming the value, and a failing exit code.
    let out = deis(&home, cwd, &["create", "Bad_Name", "--no-remote"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Bad_Name") && err.contains("\nError: "),
        "{err}"
    );
    let out = deis(&home, cwd, &["config:set", "GREETING=hi", "-a", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));

    // SIGTERM shuts down cleanly and removes endpoints.json.
    let pid = platform.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = platform.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "workflow did not stop within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    assert!(!platform.data.join("endpoints.json").exists());
}

#[test]
fn logs_tail_search_and_follow_through_workflow_up() {
    use std::io::{BufRead, Write};

    let dir = tempfile::tempdir().unwrap();
    let (home, platform) = registered(dir.path());
    let cwd = dir.path();
    ok(&home, cwd, &["create", "hello", "--no-remote"]);

    // What the local runtime will write: kubelet's file layout, CRI lines.
    let file = platform.data.join("containers").join(format!(
        "hello-web-5d8c9-x7k2p_hello_web-{}.log",
        "ab".repeat(32)
    ));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .unwrap();
    let now = || {
        chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.9fZ")
            .to_string()
    };
    for i in 0..300 {
        writeln!(f, "{} stdout F request {i} ok", now()).unwrap();
    }
    writeln!(f, "{} stderr P timeout talking to ", now()).unwrap();
    writeln!(f, "{} stderr F db primary", now()).unwrap();
    f.flush().unwrap();

    let out = eventually(
        &home,
        cwd,
        &["logs", "-a", "hello", "-n", "200"],
        "timeout talking to db primary",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 200, "the last 200 lines:\n{out}");
    assert!(
        lines[0].contains("request 101 ok"),
        "oldest first: {}",
        lines[0]
    );
    assert!(
        lines[0].contains("hello[web.hello-web-5d8c9-x7k2p]"),
        "time, process and pod: {}",
        lines[0]
    );

    let out = eventually(
        &home,
        cwd,
        &[
            "logs",
            "-a",
            "hello",
            "--search",
            "timeout AND db",
            "--since",
            "2h",
            "--type",
            "web",
        ],
        "timeout talking to db primary",
    );
    assert_eq!(out.lines().count(), 1, "only the matching line: {out}");
    let out = deis(
        &home,
        cwd,
        &[
            "logs",
            "-a",
            "hello",
            "--search",
            "timeout",
            "--since",
            "yesterday-ish",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("yesterday-ish"));

    // Follow: the last line, then new lines as they are written.
    let mut follow = Command::new(env!("CARGO_BIN_EXE_deis"))
        .args(["logs", "-a", "hello", "-n", "1", "-f"])
        .env("HOME", &home)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(follow.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains("db primary"), "{line}");
    writeln!(f, "{} stdout F a brand new line", now()).unwrap();
    f.flush().unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains("a brand new line"), "{line}");
    let _ = follow.kill();
    let _ = follow.wait();

    // The operator's query command reads the same aggregator.
    let endpoints: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(platform.data.join("endpoints.json")).unwrap(),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_workflow"))
        .args([
            "logger",
            "query",
            "--aggregator",
            endpoints["logger"].as_str().unwrap(),
            "--app",
            "hello",
            "-n",
            "1",
        ])
        .arg("--credential-file")
        .arg(platform.data.join("platform-credential"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("a brand new line"));
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// Writes a one-layer linux/amd64 image (CMD + EXPOSE 8080) as an OCI layout, tag `t`;
/// with `index`, tag `t` is an image index of that image and a linux/arm64 one.
fn oci_layout(dir: &Path, seed: &str, index: bool) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| -> (String, usize) {
        let d = sha256(data);
        std::fs::write(blobs.join(d.trim_start_matches("sha256:")), data).unwrap();
        (d, data.len())
    };
    let root = dir.join("rootfs");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("hello.txt"), format!("hello from {seed}\n")).unwrap();
    let tar = dir.join("layer.tar");
    assert!(
        Command::new("tar")
            .arg("-cf")
            .arg(&tar)
            .arg("-C")
            .arg(&root)
            .arg("hello.txt")
            .status()
            .unwrap()
            .success()
    );
    let layer = std::fs::read(&tar).unwrap();
    let (layer_digest, layer_size) = put(&layer);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh", "-c", "serve"], "ExposedPorts": {"8080/tcp": {}}},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    })
    .to_string();
    let (config_digest, config_size) = put(config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}],
    })
    .to_string();
    let (manifest_digest, manifest_size) = put(manifest.as_bytes());
    let (manifest_digest, manifest_size, media_type) = if index {
        let arm_config = config.replace("amd64", "arm64");
        let (arm_config_digest, arm_config_size) = put(arm_config.as_bytes());
        // "arm64" is as long as "amd64": only the config's digest changes.
        assert_eq!(arm_config_size, config_size);
        let arm = manifest.replace(&config_digest, &arm_config_digest);
        let (arm_digest, arm_size) = put(arm.as_bytes());
        let list = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm_digest, "size": arm_size, "platform": {"architecture": "arm64", "os": "linux"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest_size, "platform": {"architecture": "amd64", "os": "linux"}},
            ],
        })
        .to_string();
        let (d, n) = put(list.as_bytes());
        (d, n, "application/vnd.oci.image.index.v1+json")
    } else {
        (
            manifest_digest,
            manifest_size,
            "application/vnd.oci.image.manifest.v1+json",
        )
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": media_type, "digest": manifest_digest, "size": manifest_size,
                       "annotations": {"org.opencontainers.image.ref.name": "t"}}],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

#[test]
fn deis_pull_from_a_registry_then_read_with_skopeo() {
    let Some(peer) = peer_registry() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let seed = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let layout = dir.path().join("layout");
    oci_layout(&layout, &seed, false);
    let source = format!("{peer}/e2e/api-{seed}:1.4");
    let out = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:t", layout.display()),
        &format!("docker://{source}"),
    ]);
    assert!(
        out.status.success(),
        "seeding the peer: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (home, platform) = registered(dir.path());
    let cwd = dir.path();
    ok(&home, cwd, &["create", "api", "--no-remote"]);
    let out = ok(&home, cwd, &["pull", &source, "-a", "api"]);
    assert!(out.contains("deployed api:v2"), "{out}");
    assert!(
        out.contains("layer ") && out.contains("copied"),
        "progress per layer: {out}"
    );
    let out = ok(&home, cwd, &["builds", "-a", "api", "--json"]);
    let builds: serde_json::Value = serde_json::from_str(&out).unwrap();
    let image = builds[0]["image"].as_str().unwrap().to_string();
    assert!(
        image.contains("/api@sha256:"),
        "the build runs the copy in the platform registry: {image}"
    );
    assert_eq!(builds[0]["port"], 8080, "PORT from EXPOSE");
    let info: serde_json::Value =
        serde_json::from_str(&ok(&home, cwd, &["info", "-a", "api", "--json"])).unwrap();
    assert_eq!(
        info["app"]["structure"],
        serde_json::json!({"cmd": 1}),
        "the image's command runs as `cmd`"
    );

    // Any OCI client reads it with the user's name and API token; nobody else can.
    let profile: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.join(".deis/client.json")).unwrap())
            .unwrap();
    let creds = format!("alice:{}", profile["token"].as_str().unwrap());
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("docker://{image}"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "alice:wrong",
        &format!("docker://{image}"),
    ]);
    assert!(!out.status.success(), "a wrong token is refused");

    // Pulling again skips what is already there; a missing image is a clear error.
    let out = ok(&home, cwd, &["pull", &source, "-a", "api"]);
    assert!(
        out.contains("already present") && out.contains("deployed api:v3"),
        "{out}"
    );
    let out = deis(
        &home,
        cwd,
        &["pull", &format!("{peer}/e2e/nothing-{seed}:1"), "-a", "api"],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing-"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(platform);
}

/// `deis git:remote --https` sets up the remote and `deis` as git's credential helper, so a
/// plain `git push deis BRANCH` asks nothing (a non-deploy branch: stored, not built).
#[test]
fn git_push_over_https_uses_the_deis_credential_helper() {
    let dir = tempfile::tempdir().unwrap();
    let (home, platform) = registered(dir.path());
    let eps: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(platform.data.join("endpoints.json")).unwrap(),
    )
    .unwrap();
    let git_http = eps["git_http"]
        .as_str()
        .expect("endpoints.json has git_http");
    let src = dir.path().join("hello");
    std::fs::create_dir_all(&src).unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(&src)
            .env("HOME", &home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "git {args:?}: {text}");
        text
    };
    git(&["init", "-q", "-b", "dev"]);
    std::fs::write(src.join("Procfile"), "web: ./serve\n").unwrap();
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "first"]);
    ok(&home, &src, &["create", "hello", "--no-remote"]);
    ok(
        &home,
        &src,
        &[
            "git:remote",
            "-a",
            "hello",
            "--https",
            "--git-url",
            git_http,
        ],
    );
    let out = git(&["push", "deis", "dev"]);
    assert!(out.contains("branch dev stored, not built"), "{out}");
    let refs = git(&["ls-remote", "deis"]);
    assert!(refs.contains("refs/heads/dev"), "{refs}");
}

/// Guards issues 8 and 9: `git push` of a Procfile app builds it with the built-in buildpack,
/// releases it, runs it on the local runtime, and the router answers for `<app>.localhost`;
/// a config change rolls out a new release that answers too.
#[test]
fn git_push_builds_runs_and_answers_through_the_router() {
    if Command::new("busybox").arg("true").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "busybox is missing (apt-get install busybox-static)"
        );
        eprintln!("skipping: busybox is missing (apt-get install busybox-static)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (home, platform) = registered(dir.path());
    let eps = platform.endpoints();
    let git_http = eps["git_http"].as_str().expect("git_http").to_string();
    let router = eps["router"].as_str().expect("router").to_string();
    let src = checkout(
        &home,
        &dir.path().join("hello"),
        &[
            ("Procfile", HTTPD_WEB),
            ("index.html", "hello from a push\n"),
        ],
    );
    ok(&home, &src, &["create", "hello", "--no-remote"]);
    ok(
        &home,
        &src,
        &[
            "git:remote",
            "-a",
            "hello",
            "--https",
            "--git-url",
            &git_http,
        ],
    );
    let out = git(&home, &src, &["push", "deis", "main"]);
    assert!(out.contains("Procfile app detected"), "{out}");
    assert!(out.contains("hello:v2 deployed"), "{out}");
    let releases = eventually(&home, &src, &["releases", "-a", "hello"], "deployed");
    assert!(releases.contains("v2"), "{releases}");
    eventually(&home, &src, &["ps", "-a", "hello"], "up (v2)");
    let get = || {
        let out = Command::new("curl")
            .args(["-s", "-m", "5", "-H", "Host: hello.localhost", &router])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !get().contains("hello from a push") {
        assert!(
            Instant::now() < deadline,
            "the router never answered with the app"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    ok(&home, &src, &["config:set", "GREETING=hi", "-a", "hello"]);
    eventually(&home, &src, &["ps", "-a", "hello"], "up (v3)");
    assert!(get().contains("hello from a push"));
    let unknown = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-m",
            "5",
            "-H",
            "Host: nope.localhost",
            &router,
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&unknown.stdout), "404");
}
