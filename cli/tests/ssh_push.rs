//! Guards issue 8: the user's journey over SSH, as the README writes it, against the real
//! `workflow up`, `deis`, `ssh-keygen`, `ssh` and `git`: `deis keys:add`, `deis create` adds a
//! remote at the SSH address the controller advertises, and `git push deis main` builds,
//! releases and runs the app.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{deis, ok, up};

/// Whether a tool is installed; fails in CI when it is not.
fn tool(name: &str, package: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is missing (apt-get install {package})"
        );
        eprintln!("skipping: {name} is missing (apt-get install {package})");
    }
    found
}

#[test]
fn keys_add_create_and_git_push_over_ssh_build_and_deploy() {
    if !(tool("ssh", "openssh-client")
        && tool("ssh-keygen", "openssh-client")
        && tool("busybox", "busybox-static"))
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let (platform, controller) = up(dir.path());
    let eps = platform.endpoints();
    let git_ssh = eps["git_ssh"]
        .as_str()
        .expect("endpoints.json has git_ssh")
        .to_string();
    assert!(git_ssh.starts_with("127.0.0.1:"), "{git_ssh}");
    let port = git_ssh.rsplit(':').next().unwrap().to_string();

    ok(
        &home,
        dir.path(),
        &[
            "register",
            &controller,
            "--username",
            "alice",
            "--password",
            "s3cret",
        ],
    );
    let key = dir.path().join("id_ed25519");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let out = ok(
        &home,
        dir.path(),
        &["keys:add", &key.with_extension("pub").display().to_string()],
    );
    assert!(out.contains("alice@laptop"), "{out}");

    let src = dir.path().join("hello");
    std::fs::create_dir_all(&src).unwrap();
    let ssh_command = format!(
        "ssh -i {} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR",
        key.display()
    );
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(&src)
            .env("HOME", &home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_SSH_COMMAND", &ssh_command)
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
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(
        src.join("Procfile"),
        "web: exec busybox httpd -f -p $PORT -h .\n",
    )
    .unwrap();
    std::fs::write(src.join("index.html"), "hello over ssh\n").unwrap();
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "first"]);

    // `deis create` points the remote at the address the controller advertises.
    let out = ok(&home, &src, &["create", "hello"]);
    let want = format!("ssh://git@127.0.0.1:{port}/hello.git");
    assert!(out.contains(&want), "{out}");
    assert_eq!(git(&["remote", "get-url", "deis"]).trim(), want);
    // So does `deis git:remote` (replacing it with -f).
    let out = ok(&home, &src, &["git:remote", "-a", "hello", "-f"]);
    assert!(out.contains(&want), "{out}");

    let out = git(&["push", "deis", "main"]);
    assert!(
        out.contains("remote: -----> Procfile app detected"),
        "{out}"
    );
    assert!(out.contains("hello:v2 deployed"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = deis(&home, &src, &["ps", "-a", "hello"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("up (v2)") {
            break;
        }
        assert!(Instant::now() < deadline, "hello never ran v2: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
