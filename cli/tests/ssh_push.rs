//! Guards issue 8: the user's journey over SSH, as the README writes it, against the real
//! `workflow up`, `deis`, `ssh-keygen`, `ssh` and `git`: `deis keys:add`, `deis create` adds a
//! remote at the SSH address the controller advertises, and `git push deis main` builds,
//! releases and runs the app.

mod common;

use std::time::{Duration, Instant};

use common::fixtures::tool;
use common::{
    HTTPD_WEB, checkout, deis, ok, pushed_digest, registry_host, skopeo, ssh_command, ssh_keygen,
    token, try_git, up,
};

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
    let key = ssh_keygen(dir.path(), "id_ed25519", "alice@laptop");
    let out = ok(
        &home,
        dir.path(),
        &["keys:add", &key.with_extension("pub").display().to_string()],
    );
    assert!(out.contains("alice@laptop"), "{out}");

    let src = checkout(
        &home,
        &dir.path().join("hello"),
        &[("Procfile", HTTPD_WEB), ("index.html", "hello over ssh\n")],
    );
    let ssh = ssh_command(&key);
    let git = |args: &[&str]| {
        let (pushed, text) = try_git(&home, &src, &[("GIT_SSH_COMMAND", &ssh)], args);
        assert!(pushed, "git {args:?}: {text}");
        text
    };

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
    // The release records the image the push printed; skopeo reads it with alice's token.
    let digest = pushed_digest(&out, "hello");
    let releases: serde_json::Value =
        serde_json::from_str(&ok(&home, &src, &["releases", "-a", "hello", "--json"])).unwrap();
    assert_eq!(releases[0]["version"], 2, "{releases}");
    assert_eq!(releases[0]["digest"], digest.as_str(), "{releases}");
    if tool("skopeo", "skopeo") {
        let o = skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &format!("alice:{}", token(&home)),
            &format!("docker://{}/hello@{digest}", registry_host(&eps)),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
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
