//! `git push` over SSH end to end: the real `ssh` and `git` clients (keys made by
//! `ssh-keygen`), the builder's russh server, the real controller (SQLite) looking keys up and
//! recording builds, the builder's pre-receive hook.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use workflow_tests::git::{Platform, checkout, commit, git, head, start};

/// Whether an external tool is on PATH; fails in CI when it is not.
fn tool(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is not installed (apt-get install openssh-client)"
        );
        eprintln!("skipping: {name} is not installed (apt-get install openssh-client)");
    }
    found
}

fn have_ssh() -> bool {
    tool("ssh") && tool("ssh-keygen")
}

/// A fresh ed25519 key pair; answers the private key's path.
fn keygen(dir: &Path, name: &str) -> PathBuf {
    keygen_typed(dir, name, &["-t", "ed25519"])
}

/// A fresh key pair of the type `kind` names (`-t rsa -b 3072`, ...).
fn keygen_typed(dir: &Path, name: &str, kind: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(kind)
        .args(["-q", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen runs");
    assert!(out.status.success(), "{out:?}");
    path
}

fn public(key: &Path) -> String {
    std::fs::read_to_string(key.with_extension("pub"))
        .expect("public key")
        .trim()
        .to_string()
}

/// The ssh options every call uses: this key only, no host key checks, no prompts.
fn ssh_opts(key: &Path, port: u16) -> Vec<String> {
    [
        "-i",
        &key.display().to_string(),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=ERROR",
        "-p",
        &port.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `ssh [extra...] git@127.0.0.1 [command]` with an isolated HOME.
fn ssh(home: &Path, key: &Path, port: u16, extra: &[&str], command: Option<&str>) -> Output {
    let mut c = Command::new("ssh");
    c.args(ssh_opts(key, port))
        .args(extra)
        .arg("git@127.0.0.1")
        .env("HOME", home)
        .stdin(Stdio::null());
    if let Some(cmd) = command {
        c.arg(cmd);
    }
    c.output().expect("ssh runs")
}

/// git with `GIT_SSH_COMMAND` using `key`; answers (success, stdout + stderr).
fn sgit(home: &Path, dir: &Path, key: &Path, port: u16, args: &[&str]) -> (bool, String) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env(
            "GIT_SSH_COMMAND",
            format!("ssh {}", ssh_opts(key, port).join(" ")),
        )
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

async fn asgit(home: &Path, dir: &Path, key: &Path, port: u16, args: &[&str]) -> (bool, String) {
    let (home, dir, key) = (home.to_path_buf(), dir.to_path_buf(), key.to_path_buf());
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        sgit(&home, &dir, &key, port, &a)
    })
    .await
    .unwrap()
}

async fn assh(home: &Path, key: &Path, port: u16, extra: &[&str], command: Option<&str>) -> Output {
    let (home, key) = (home.to_path_buf(), key.to_path_buf());
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let command = command.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let e: Vec<&str> = extra.iter().map(String::as_str).collect();
        ssh(&home, &key, port, &e, command.as_deref())
    })
    .await
    .unwrap()
}

fn remote(p: &Platform, app: &str) -> String {
    format!("ssh://git@127.0.0.1:{}/{app}.git", p.ssh_port)
}

/// A user with a key registered through the REST API; answers (token, private key path).
async fn user_with_key(p: &Platform, name: &str) -> (String, PathBuf) {
    let token = p.user(name).await;
    let key = keygen(p.dir.path(), &format!("{name}_key"));
    p.rest(
        reqwest::Method::POST,
        "/v2/keys/",
        Some(&token),
        Some(json!({"id": format!("{name}@laptop"), "public": public(&key)})),
    )
    .await;
    (token, key)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn ssh_push_builds_the_deploy_branch_and_fetch_works() {
    if !have_ssh() {
        return;
    }
    let p = start(Duration::from_secs(5), Duration::ZERO).await;
    let (alice, key) = user_with_key(&p, "alice").await;
    p.create_app(&alice, "hello").await;
    let src = checkout(&p.home, p.dir.path(), "hello");
    let url = remote(&p, "hello");
    assert!(git(&p.home, &src, &["remote", "add", "deis", &url]).0);

    let (ok, out) = asgit(&p.home, &src, &key, p.ssh_port, &["push", "deis", "main"]).await;
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
    let sha = head(&p.home, &src);
    let (ok, refs) = asgit(&p.home, &src, &key, p.ssh_port, &["ls-remote", "deis"]).await;
    assert!(ok, "{refs}");
    assert!(refs.contains(&format!("{sha}\trefs/heads/main")), "{refs}");

    // The forms of the path git may send all name the app.
    for form in ["/hello.git", "hello.git", "hello"] {
        let u = format!("ssh://git@127.0.0.1:{}/{form}", p.ssh_port);
        let u = if form.starts_with('/') {
            format!("ssh://git@127.0.0.1:{}{form}", p.ssh_port)
        } else {
            u
        };
        let (ok, refs) = asgit(&p.home, &src, &key, p.ssh_port, &["ls-remote", &u]).await;
        assert!(ok && refs.contains(&sha), "{form}: {refs}");
    }

    // A failed build rejects the push over SSH too, with the build's output.
    std::fs::write(src.join("FAIL"), "").unwrap();
    commit(&p.home, &src, "broken");
    let (ok, out) = asgit(&p.home, &src, &key, p.ssh_port, &["push", "deis", "main"]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("compile: error in main.rs"), "{out}");
    assert_eq!(p.releases("hello", &alice).await, 2);

    // Clone and fetch (upload-pack), protocol v2 (GIT_PROTOCOL through SendEnv) and v0.
    let (ok, out) = asgit(
        &p.home,
        p.dir.path(),
        &key,
        p.ssh_port,
        &["-c", "protocol.version=2", "clone", "-q", &url, "cloned"],
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(head(&p.home, &p.dir.path().join("cloned")), sha);
    let (ok, out) = asgit(
        &p.home,
        &p.dir.path().join("cloned"),
        &key,
        p.ssh_port,
        &["-c", "protocol.version=0", "fetch", "-q", "origin"],
    )
    .await;
    assert!(ok, "{out}");
    p.stop.cancel();
}

/// Guards that users' RSA and ECDSA keys (not only ed25519) log in, clone and push.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_and_ecdsa_user_keys_work() {
    if !have_ssh() {
        return;
    }
    let p = start(Duration::from_secs(5), Duration::ZERO).await;
    let alice = p.user("alice").await;
    p.create_app(&alice, "hello").await;
    let kinds: [(&str, &[&str]); 3] = [
        ("rsa", &["-t", "rsa", "-b", "3072"]),
        ("ecdsa256", &["-t", "ecdsa", "-b", "256"]),
        ("ecdsa384", &["-t", "ecdsa", "-b", "384"]),
    ];
    for (i, (name, kind)) in kinds.into_iter().enumerate() {
        let key = keygen_typed(p.dir.path(), name, kind);
        p.rest(
            reqwest::Method::POST,
            "/v2/keys/",
            Some(&alice),
            Some(json!({"id": format!("alice@{name}"), "public": public(&key)})),
        )
        .await;
        let src = checkout(&p.home, p.dir.path(), &format!("src-{name}"));
        std::fs::write(src.join("round"), i.to_string()).unwrap();
        commit(&p.home, &src, name);
        let url = remote(&p, "hello");
        let (ok, out) = asgit(
            &p.home,
            &src,
            &key,
            p.ssh_port,
            &["push", "-f", &url, "HEAD:refs/heads/main"],
        )
        .await;
        assert!(ok, "{name}: {out}");
        assert!(out.contains("deployed"), "{name}: {out}");
        let (ok, refs) = asgit(&p.home, &src, &key, p.ssh_port, &["ls-remote", &url]).await;
        assert!(ok && refs.contains(&head(&p.home, &src)), "{name}: {refs}");
    }
    p.stop.cancel();
}

#[tokio::test]
async fn ssh_refuses_unknown_keys_strangers_and_everything_but_git() {
    if !have_ssh() {
        return;
    }
    let p = start(Duration::from_secs(5), Duration::ZERO).await;
    let (alice, alice_key) = user_with_key(&p, "alice").await;
    let (_bob, bob_key) = user_with_key(&p, "bob").await;
    p.create_app(&alice, "hello").await;
    let src = checkout(&p.home, p.dir.path(), "hello");
    let url = remote(&p, "hello");
    let port = p.ssh_port;
    let repo = p.dir.path().join("builder/repos/hello.git");

    // An unknown key never logs in.
    let stranger = keygen(p.dir.path(), "stranger_key");
    let (ok, out) = asgit(&p.home, &src, &stranger, port, &["push", &url, "main"]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("Permission denied"), "{out}");
    let o = assh(
        &p.home,
        &stranger,
        port,
        &[],
        Some("git-upload-pack 'hello.git'"),
    )
    .await;
    assert!(!o.status.success());
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));

    // Bob's key is known, but hello is not his: refused with the app named, nothing written.
    let (ok, out) = asgit(&p.home, &src, &bob_key, port, &["push", &url, "main"]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("deis: app \"hello\" does not exist or you (bob) may not push to it"),
        "{out}"
    );
    let (ok, out) = asgit(&p.home, p.dir.path(), &bob_key, port, &["clone", &url, "b"]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("may not fetch from it"), "{out}");
    assert!(
        !repo.join("refs/heads/main").exists(),
        "a refused push wrote nothing"
    );
    assert_eq!(p.releases("hello", &alice).await, 1);
    // An app that does not exist reads the same (no probing for names).
    let o = assh(
        &p.home,
        &bob_key,
        port,
        &[],
        Some("git-receive-pack 'nope.git'"),
    )
    .await;
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("app \"nope\" does not exist or you (bob) may not push to it"),
        "{}",
        stderr(&o)
    );

    // A shell, with or without a terminal, is refused.
    let o = assh(&p.home, &alice_key, port, &["-T"], None).await;
    assert!(!o.status.success());
    assert!(stderr(&o).contains("gives no shell"), "{}", stderr(&o));
    let o = assh(&p.home, &alice_key, port, &["-tt"], None).await;
    assert!(!o.status.success());

    // Commands other than git's, shell syntax included, are refused and run nothing.
    let marker = p.dir.path().join("pwned");
    for cmd in [
        format!("git-receive-pack 'x.git; touch {}'", marker.display()),
        format!("git-receive-pack 'hello.git'; touch {}", marker.display()),
        format!("touch {}", marker.display()),
        "git-upload-archive 'hello.git'".to_string(),
    ] {
        let o = assh(&p.home, &alice_key, port, &[], Some(&cmd)).await;
        assert!(!o.status.success(), "{cmd}");
        assert!(
            stderr(&o).contains("is not a command this server runs"),
            "{cmd}: {}",
            stderr(&o)
        );
    }
    assert!(!marker.exists());

    // Port forwarding: stdio (-W) and local (-L) forwards are refused, and so is -R.
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    target.set_nonblocking(true).unwrap();
    let target_addr = target.local_addr().unwrap().to_string();
    let o = assh(&p.home, &alice_key, port, &["-W", &target_addr], None).await;
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("forwarding failed") || stderr(&o).contains("prohibited"),
        "{}",
        stderr(&o)
    );
    let o = assh(
        &p.home,
        &alice_key,
        port,
        &[
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            "0:127.0.0.1:9",
        ],
        None,
    )
    .await;
    assert!(!o.status.success(), "{}", stderr(&o));
    let local = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let local_port = local.local_addr().unwrap().port();
    drop(local);
    let mut fwd = Command::new("ssh")
        .args(ssh_opts(&alice_key, port))
        .args([
            "-N",
            "-L",
            &format!("127.0.0.1:{local_port}:{target_addr}"),
            "git@127.0.0.1",
        ])
        .env("HOME", &p.home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut conn = loop {
        match std::net::TcpStream::connect(("127.0.0.1", local_port)) {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("ssh -L never listened: {e}"),
        }
    };
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    let n = std::io::Read::read(&mut conn, &mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the forwarded connection is closed, not served");
    assert!(
        target.accept().is_err(),
        "the builder never connected to the target"
    );
    let _ = fwd.kill();
    let _ = fwd.wait();

    // A password is never asked for: publickey is the only method offered.
    let o = assh(
        &p.home,
        &alice_key,
        port,
        &[
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
        ],
        Some("git-upload-pack 'hello.git'"),
    )
    .await;
    assert!(!o.status.success());
    assert!(stderr(&o).contains("publickey"), "{}", stderr(&o));

    // Alice still pushes; removing her key locks her out at once.
    let (ok, out) = asgit(&p.home, &src, &alice_key, port, &["push", &url, "main"]).await;
    assert!(ok, "{out}");
    let keys = p
        .rest(reqwest::Method::GET, "/v2/keys/", Some(&alice), None)
        .await;
    let id = keys["results"][0]["id"].as_str().unwrap().to_string();
    let res = p
        .http
        .delete(format!("{}/v2/keys/{id}", p.ctl.http))
        .header("Authorization", format!("token {alice}"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let (ok, out) = asgit(&p.home, &src, &alice_key, port, &["ls-remote", &url]).await;
    assert!(!ok, "{out}");
    p.stop.cancel();
}

/// Guards the SSH listener's limits: a silent client is cut at the authentication deadline,
/// connections past the cap wait to be accepted, an authenticated client running no git
/// command is cut at the idle timeout, and a stop closes idle connections at once.
// Blocking socket reads below: the server runs on the other worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_limits_and_shutdown() {
    use std::io::Read as _;
    use std::sync::Arc;
    use workflow_builder::git::ssh::{Limits, host_key, serve_with};

    if !have_ssh() {
        return;
    }
    let ctl = workflow_tests::RunningController::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let config = workflow_builder::Config {
        data_dir: dir.path().join("builder"),
        controller_url: ctl.grpc.clone(),
        platform_credential: ctl.builder_key.clone(),
        hook_program: Some(workflow_tests::git::hook_program()),
        ..Default::default()
    };
    let platform = workflow_builder::platform::GrpcPlatform::new(
        &ctl.grpc,
        &workflow_common::grpc::PlatformCredential::new(&ctl.builder_key).unwrap(),
    )
    .unwrap();
    let server = workflow_builder::git::GitServer::new(
        config,
        Arc::new(platform),
        Arc::new(workflow_tests::git::ScriptedBuilder::default()),
    )
    .unwrap();
    let key = host_key(&server).await.unwrap();

    // A user with a key, through the REST API.
    let http = reqwest::Client::new();
    let post = |path: &str, token: Option<&str>, body: serde_json::Value| {
        let mut r = http.post(format!("{}{path}", ctl.http)).json(&body);
        if let Some(t) = token {
            r = r.header("Authorization", format!("token {t}"));
        }
        r.send()
    };
    post(
        "/v2/auth/register/",
        None,
        json!({"username": "alice", "password": "pw", "email": "a@example.com"}),
    )
    .await
    .unwrap();
    let login: serde_json::Value = post(
        "/v2/auth/login/",
        None,
        json!({"username": "alice", "password": "pw"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token = login["token"].as_str().unwrap().to_string();
    let user_key = keygen(dir.path(), "alice_key");
    let res = post(
        "/v2/keys/",
        Some(&token),
        json!({"id": "alice", "public": public(&user_key)}),
    )
    .await
    .unwrap();
    assert!(res.status().is_success());

    let limits = Limits {
        max_connections: 1,
        auth_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = tokio_util::sync::CancellationToken::new();
    let shutdown = workflow_builder::Shutdown::new(stop.clone(), Duration::from_secs(2));
    let served = tokio::spawn(serve_with(
        server.clone(),
        listener,
        key.clone(),
        shutdown,
        limits,
    ));

    // A client that never authenticates holds the only slot until the deadline.
    let first = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut banner = [0u8; 64];
    let n = (&first).read(&mut banner).unwrap();
    assert!(banner[..n].starts_with(b"SSH-2.0-"), "{:?}", &banner[..n]);
    // Past the cap, a connection waits unanswered.
    let second = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    second
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(
        (&second).read(&mut banner).is_err(),
        "a connection past the cap is not served yet"
    );
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = (&first).read_to_end(&mut rest);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "a silent client is cut at the authentication deadline"
    );
    // Its slot goes to the waiting connection.
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let n = (&second).read(&mut banner).unwrap();
    assert!(banner[..n].starts_with(b"SSH-2.0-"));
    drop(second);

    // An authenticated client running no command is cut at the idle timeout.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let (h, k) = (home.clone(), user_key.clone());
    let o = tokio::task::spawn_blocking(move || {
        // The first value of an option wins: see the server's disconnect reason.
        Command::new("ssh")
            .args(["-o", "LogLevel=INFO"])
            .args(ssh_opts(&k, port))
            .args(["-N", "git@127.0.0.1"])
            .env("HOME", &h)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an idle connection is closed"
    );
    assert!(stderr(&o).contains("idle timeout"), "{}", stderr(&o));
    stop.cancel();
    served.await.unwrap().unwrap();

    // A stop closes idle connections at once, and the server returns.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = tokio_util::sync::CancellationToken::new();
    let shutdown = workflow_builder::Shutdown::new(stop.clone(), Duration::from_secs(30));
    let served = tokio::spawn(serve_with(
        server,
        listener,
        key,
        shutdown,
        Limits::default(),
    ));
    let mut idle = Command::new("ssh")
        .args(ssh_opts(&user_key, port))
        .args(["-N", "git@127.0.0.1"])
        .env("HOME", &home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Logged in: the server has it (an ssh that failed would have exited already).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(idle.try_wait().unwrap().is_none(), "ssh -N stays connected");
    let started = Instant::now();
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("the ssh server stops well within the grace period")
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while idle.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the idle client was disconnected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    ctl.shutdown.cancel();
}

/// Guards the SSH listener's drain: a push running when the builder is asked to stop may
/// finish within the grace period (its build output still reaches the client); one that
/// would outlast it is cut and rejected, not left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_lets_a_running_ssh_push_finish_within_the_grace_period() {
    if !have_ssh() {
        return;
    }
    let p = start(Duration::from_secs(5), Duration::ZERO).await;
    let (alice, key) = user_with_key(&p, "alice").await;
    p.create_app(&alice, "hello").await;
    let src = checkout(&p.home, p.dir.path(), "hello");
    std::fs::write(src.join("SLOW"), "").unwrap();
    commit(&p.home, &src, "slow");
    let url = remote(&p, "hello");
    let (home, src2, key2, port) = (p.home.clone(), src.clone(), key.clone(), p.ssh_port);
    let push = tokio::task::spawn_blocking(move || {
        sgit(&home, &src2, &key2, port, &["push", &url, "main"])
    });
    tokio::time::timeout(Duration::from_secs(30), p.builder.started.notified())
        .await
        .expect("the slow build started");
    p.stop.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.builder.gate.notify_one();
    let (ok, out) = push.await.unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("hello:v2 deployed"), "{out}");
    // The listener is closed now.
    let o = assh(
        &p.home,
        &key,
        p.ssh_port,
        &[],
        Some("git-upload-pack 'hello.git'"),
    )
    .await;
    assert!(!o.status.success());
}

/// Guards the other half of the drain: a push that outlasts the grace period is cut, its git
/// killed, and the branch is not updated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_cuts_an_ssh_push_that_outlasts_the_grace_period() {
    if !have_ssh() {
        return;
    }
    let p = start(Duration::from_secs(5), Duration::ZERO).await;
    let (alice, key) = user_with_key(&p, "alice").await;
    p.create_app(&alice, "hello").await;
    let src = checkout(&p.home, p.dir.path(), "hello");
    std::fs::write(src.join("SLOW"), "").unwrap();
    commit(&p.home, &src, "slow");
    let url = remote(&p, "hello");
    let (home, src2, key2, port) = (p.home.clone(), src.clone(), key.clone(), p.ssh_port);
    let push = tokio::task::spawn_blocking(move || {
        sgit(&home, &src2, &key2, port, &["push", &url, "main"])
    });
    tokio::time::timeout(Duration::from_secs(30), p.builder.started.notified())
        .await
        .expect("the slow build started");
    let stopped = Instant::now();
    p.stop.cancel();
    let (ok, out) = tokio::time::timeout(Duration::from_secs(15), push)
        .await
        .expect("the push is cut soon after the 2 s grace period")
        .unwrap();
    assert!(!ok, "{out}");
    assert!(stopped.elapsed() >= Duration::from_secs(1), "{out}");
    assert!(
        !p.dir
            .path()
            .join("builder/repos/hello.git/refs/heads/main")
            .exists(),
        "a cut push updates nothing: {out}"
    );
}

/// Guards issue 8: when the controller cannot be reached at login, the user is told so (SSH
/// itself could only say "Permission denied"), and nothing is pushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_controller_is_named_not_a_permission_denied() {
    if !have_ssh() {
        return;
    }
    let p = start(Duration::from_secs(5), Duration::ZERO).await;
    let (alice, key) = user_with_key(&p, "alice").await;
    p.create_app(&alice, "hello").await;
    let src = checkout(&p.home, p.dir.path(), "hello");
    let url = remote(&p, "hello");
    let repo = p.dir.path().join("builder/repos/hello.git");

    p.ctl.shutdown.cancel();
    let grpc = p.ctl.grpc.trim_start_matches("http://").to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(&grpc).await.is_ok() {
        assert!(Instant::now() < deadline, "the controller never stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (ok, out) = asgit(&p.home, &src, &key, p.ssh_port, &["push", &url, "main"]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("deis: cannot push to hello: the controller is unreachable"),
        "{out}"
    );
    assert!(!out.contains("Permission denied"), "{out}");
    assert!(!repo.exists(), "nothing was received");
    // An interactive login hears the same.
    let o = assh(&p.home, &key, p.ssh_port, &[], None).await;
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("the controller is unreachable"),
        "{}",
        stderr(&o)
    );
    // An unknown key learns the same (its key cannot be checked either), and gets nothing.
    let stranger = keygen(p.dir.path(), "stranger_key");
    let (ok, out) = asgit(
        &p.home,
        &src,
        &stranger,
        p.ssh_port,
        &["push", &url, "main"],
    )
    .await;
    assert!(!ok, "{out}");
    assert!(out.contains("the controller is unreachable"), "{out}");
    p.stop.cancel();
}
