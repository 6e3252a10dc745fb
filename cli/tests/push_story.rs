//! Guards issue 8 end to end, against the real `workflow up`, `deis`, `git`, `ssh`, `skopeo`
//! and Docker engine: a `BUILDPACK_URL` buildpack app pushed over SSH, then over HTTPS with a
//! warm cache; a Dockerfile app built by the engine and run; every release shows its image
//! digest and skopeo reads it with the user's token (and not with another user's); failed
//! pushes say why; `deis destroy` deletes the app's repository and build cache in the builder.

mod common;

use std::path::Path;
use std::process::Command;

use common::fixtures::{self, tool, write};
use common::{
    HTTPD_WEB, checkout, eventually, git, ok, pushed_digest, registered, registry_host, skopeo,
    ssh_command, ssh_keygen, token, try_git,
};
use workflow_proto::status::HasKind as _;

/// `deis releases` shows release `version` of `app` running `digest` (newest first), in JSON
/// and in the table; skopeo reads the image with alice's token and not with bob's.
fn release_runs(
    home: &Path,
    bob: &Path,
    cwd: &Path,
    registry: &str,
    app: &str,
    version: i64,
    digest: &str,
) {
    let out = ok(home, cwd, &["releases", "-a", app, "--json"]);
    let releases: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(releases[0]["version"], version, "{out}");
    assert_eq!(releases[0]["digest"], digest, "{out}");
    assert_eq!(
        releases[0]["image"],
        format!("{registry}/{app}@{digest}"),
        "{out}"
    );
    let table = ok(home, cwd, &["releases", "-a", app]);
    let row = table
        .lines()
        .find(|l| l.starts_with(&format!("v{version} ")))
        .unwrap_or_else(|| panic!("no v{version} row:\n{table}"));
    assert!(row.contains(digest), "{table}");

    let image = format!("docker://{registry}/{app}@{digest}");
    let o = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        &format!("alice:{}", token(home)),
        &image,
    ]);
    assert!(
        o.status.success(),
        "skopeo with alice's token: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["Digest"], digest);
    let o = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        &format!("bob:{}", token(bob)),
        &image,
    ]);
    assert!(!o.status.success(), "bob read alice's image");
}

/// Registers bob (another user) with his own HOME under `dir`; answers it.
fn bob(dir: &Path, controller: &str) -> std::path::PathBuf {
    let home = dir.join("bob");
    std::fs::create_dir_all(&home).unwrap();
    ok(
        &home,
        dir,
        &[
            "register",
            controller,
            "--username",
            "bob",
            "--password",
            "s3cret",
        ],
    );
    home
}

/// `curl` through the router with `Host: <app>.localhost`; the body.
fn via_router(router: &str, app: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "-m",
            "5",
            "-H",
            &format!("Host: {app}.localhost"),
            router,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_buildpack_app_pushed_over_ssh_then_https_builds_with_a_warm_cache() {
    if !(tool("ssh", "openssh-client")
        && tool("ssh-keygen", "openssh-client")
        && tool("skopeo", "skopeo")
        && tool("busybox", "busybox-static"))
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (home, platform) = registered(dir.path());
    let eps = platform.endpoints();
    let registry = registry_host(&eps);
    let router = eps["router"].as_str().unwrap().to_string();
    let bob = bob(dir.path(), eps["controller"].as_str().unwrap());
    let key = ssh_keygen(dir.path(), "id_ed25519", "alice@laptop");
    ok(
        &home,
        dir.path(),
        &["keys:add", &key.with_extension("pub").display().to_string()],
    );

    let buildpack = dir.path().join("counter-buildpack");
    fixtures::caching_buildpack(&buildpack);
    let src = checkout(
        &home,
        &dir.path().join("counter"),
        &[
            ("app.txt", "x"),
            ("Procfile", HTTPD_WEB),
            ("index.html", "first push\n"),
        ],
    );
    // `deis create` adds the SSH remote; the buildpack is chosen by config.
    ok(&home, &src, &["create", "counter"]);
    let out = ok(
        &home,
        &src,
        &[
            "config:set",
            &format!("BUILDPACK_URL={}", buildpack.display()),
            "GREETING=hi",
            "-a",
            "counter",
        ],
    );
    assert!(out.contains("v2"), "{out}");

    // First push, over SSH: a cold cache.
    let ssh = ssh_command(&key);
    let (pushed, out) = try_git(
        &home,
        &src,
        &[("GIT_SSH_COMMAND", &ssh)],
        &["push", "deis", "main"],
    );
    assert!(pushed, "{out}");
    assert!(out.contains("remote: -----> Counter app detected"), "{out}");
    assert!(out.contains("cache: cold"), "{out}");
    assert!(out.contains("counter:v3 deployed"), "{out}");
    let first = pushed_digest(&out, "counter");
    release_runs(&home, &bob, &src, &registry, "counter", 3, &first);

    // Second push of a changed commit, over HTTPS with deis as git's credential helper: the
    // cache the first build left is there.
    ok(
        &home,
        &src,
        &["git:remote", "-a", "counter", "--https", "-f"],
    );
    std::fs::write(src.join("index.html"), "second push\n").unwrap();
    git(&home, &src, &["commit", "-q", "-am", "second"]);
    let (pushed, out) = try_git(&home, &src, &[], &["push", "deis", "main"]);
    assert!(pushed, "{out}");
    assert!(out.contains("remote: -----> Restoring cache"), "{out}");
    assert!(out.contains("cache: warm 1"), "{out}");
    assert!(out.contains("counter:v4 deployed"), "{out}");
    let second = pushed_digest(&out, "counter");
    assert_ne!(first, second, "a changed commit is a new image");
    release_runs(&home, &bob, &src, &registry, "counter", 4, &second);

    // The Procfile's web process runs the new build behind the router.
    eventually(&home, &src, &["ps", "-a", "counter"], "up (v4)");
    common::wait_until(30, "the router never served the second push", || {
        via_router(&router, "counter").contains("second push")
    });
}

/// Removes the containers (and their images) the local runtime made for an app, should the
/// test end before `deis destroy` did (a killed `workflow up` leaves them running), and the
/// images the builder tagged in the engine (`<registry>/<app>:git-...`).
struct Containers {
    app_id: String,
    repository: String,
}

impl Containers {
    /// The ids of the app's containers, running or not.
    fn ids(&self) -> Vec<String> {
        docker_words(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=app_id={}", self.app_id),
        ])
    }

    /// The engine's images of the app's repository (tags and pulled digests).
    fn images(&self) -> Vec<String> {
        docker_words(&[
            "images",
            "--digests",
            "--format",
            "{{.ID}}",
            &self.repository,
        ])
    }
}

/// What `docker ARGS` prints, word by word.
fn docker_words(args: &[&str]) -> Vec<String> {
    let out = Command::new("docker").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

impl Drop for Containers {
    fn drop(&mut self) {
        for id in self.ids() {
            let image = Command::new("docker")
                .args(["inspect", "--format", "{{.Config.Image}}", &id])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            let _ = Command::new("docker").args(["rm", "-f", &id]).output();
            if !image.is_empty() {
                let _ = Command::new("docker").args(["rmi", &image]).output();
            }
        }
        let tagged = Command::new("docker")
            .args([
                "images",
                "--format",
                "{{.Repository}}:{{.Tag}}",
                &self.repository,
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for image in tagged.split_whitespace() {
            let _ = Command::new("docker").args(["rmi", image]).output();
        }
    }
}

#[test]
fn a_dockerfile_app_is_built_by_the_docker_engine_and_runs() {
    if !(fixtures::busybox_image() && tool("skopeo", "skopeo")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (home, platform) = registered(dir.path());
    let eps = platform.endpoints();
    let registry = registry_host(&eps);
    let router = eps["router"].as_str().unwrap().to_string();
    let bob = bob(dir.path(), eps["controller"].as_str().unwrap());
    let dockerfile = format!(
        "FROM {}\nCOPY index.html /www/index.html\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
        fixtures::BUSYBOX_IMAGE
    );
    let src = checkout(
        &home,
        &dir.path().join("dock"),
        &[
            ("Dockerfile", &dockerfile),
            ("index.html", "built by the engine\n"),
        ],
    );
    ok(&home, &src, &["create", "dock", "--no-remote"]);
    let info: serde_json::Value =
        serde_json::from_str(&ok(&home, &src, &["info", "-a", "dock", "--json"])).unwrap();
    let containers = Containers {
        app_id: info["app"]["uuid"]
            .as_str()
            .expect("the app's uuid")
            .to_string(),
        repository: format!("{registry}/dock"),
    };
    ok(&home, &src, &["git:remote", "-a", "dock", "--https"]);
    let (pushed, out) = try_git(&home, &src, &[], &["push", "deis", "main"]);
    assert!(pushed, "{out}");
    assert!(
        out.contains("remote: -----> Dockerfile app detected"),
        "{out}"
    );
    assert!(out.contains("dock:v2 deployed"), "{out}");
    let digest = pushed_digest(&out, "dock");
    release_runs(&home, &bob, &src, &registry, "dock", 2, &digest);

    // The image runs as a container on the engine, behind the router.
    eventually(&home, &src, &["ps", "-a", "dock"], "up (v2)");
    common::wait_until(60, "the router never served the Dockerfile app", || {
        via_router(&router, "dock").contains("built by the engine")
    });
    assert!(!containers.ids().is_empty(), "no container runs the app");
    assert!(!containers.images().is_empty(), "the engine has no image");
    ok(&home, &src, &["destroy", "-a", "dock", "--confirm", "dock"]);
    assert!(
        containers.ids().is_empty(),
        "destroy left the app's containers"
    );
    // Nor its images: the builder's tag (layer cache) and the runtime's pulled image.
    assert_eq!(
        containers.images(),
        Vec::<String>::new(),
        "destroy left the app's images in the engine"
    );
}

/// The failure paths a user meets at `git push`, each with the message they see; none makes a
/// release. (A non-deploy branch, stored and not built, is in `story.rs`.)
#[test]
fn failed_pushes_say_why_and_release_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (home, _platform) = registered(dir.path());
    let src = dir.path().join("oops");
    std::fs::create_dir_all(&src).unwrap();
    git(&home, &src, &["init", "-q", "-b", "main"]);
    ok(&home, &src, &["create", "oops", "--no-remote"]);
    ok(&home, &src, &["git:remote", "-a", "oops", "--https"]);
    let push_fails = |files: &[(&str, &str, u32)], want: &[&str]| {
        write(&src, files);
        git(&home, &src, &["add", "-A"]);
        git(&home, &src, &["commit", "-q", "-m", want[0]]);
        let (pushed, out) = try_git(&home, &src, &[], &["push", "deis", "main"]);
        assert!(!pushed, "the push succeeded:\n{out}");
        assert!(out.contains("[remote rejected]"), "{out}");
        for w in want {
            assert!(out.contains(w), "{w:?} not in:\n{out}");
        }
        // Nothing was released, and the branch did not move.
        let releases = ok(&home, &src, &["releases", "-a", "oops", "--json"]);
        let releases: serde_json::Value = serde_json::from_str(&releases).unwrap();
        assert_eq!(releases[0]["version"], 1, "{releases}");
        let refs = git(&home, &src, &["ls-remote", "deis"]);
        assert!(!refs.contains("refs/heads/main"), "{refs}");
        out
    };

    // No buildpack detects the tree: the message lists what was tried.
    push_fails(
        &[("notes.md", "nothing to run here\n", 0o644)],
        &[
            "no buildpack detected this app (tried, in order: ",
            "add a Procfile, or set BUILDPACK_URL",
        ],
    );
    // A malformed Procfile: the line is named.
    push_fails(
        &[("Procfile", "web: ./serve\nthis is not a process\n", 0o644)],
        &["procfile line 2"],
    );
    std::fs::remove_file(src.join("Procfile")).unwrap();
    // A failing Dockerfile step: the engine's error.
    if fixtures::busybox_image() {
        let dockerfile = format!(
            "FROM {}\nRUN echo about to fail && false\n",
            fixtures::BUSYBOX_IMAGE
        );
        push_fails(
            &[("Dockerfile", &dockerfile, 0o644)],
            &["Dockerfile build failed", "false"],
        );
    }
}

/// `deis destroy` deletes the app's repository, build cache and source archives in the builder
/// (over its gRPC API, with the platform credential); an app created again under the name
/// starts with an empty repository.
#[test]
fn destroy_deletes_the_apps_repository_and_build_cache_in_the_builder() {
    let dir = tempfile::tempdir().unwrap();
    let (home, platform) = registered(dir.path());
    let eps = platform.endpoints();
    let src = dir.path().join("hello");
    std::fs::create_dir_all(&src).unwrap();
    git(&home, &src, &["init", "-q", "-b", "main"]);
    write(&src, &[("Procfile", "worker: exec sleep 600\n", 0o644)]);
    git(&home, &src, &["add", "-A"]);
    git(&home, &src, &["commit", "-q", "-m", "first"]);
    ok(&home, &src, &["create", "hello", "--no-remote"]);
    ok(&home, &src, &["git:remote", "-a", "hello", "--https"]);
    let info: serde_json::Value =
        serde_json::from_str(&ok(&home, &src, &["info", "-a", "hello", "--json"])).unwrap();
    let uuid = info["app"]["uuid"]
        .as_str()
        .expect("the app's uuid")
        .to_string();
    let (pushed, out) = try_git(&home, &src, &[], &["push", "deis", "main"]);
    assert!(pushed, "{out}");
    assert!(out.contains("hello:v2"), "{out}");
    let repo = platform.data.join("builder/repos/hello.git");
    let objects = platform.data.join("builder/objects/apps").join(&uuid);
    assert!(
        repo.join("HEAD").is_file(),
        "no repository at {}",
        repo.display()
    );
    assert!(
        objects.join("sources").is_dir(),
        "no source archives at {}",
        objects.display()
    );

    // The builder's gRPC API refuses callers without the platform credential.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let wrong = workflow_clients::PlatformCredential::new("not-the-credential").unwrap();
    let client = workflow_clients::builder::BuilderClient::new(
        eps["builder_grpc"].as_str().unwrap(),
        &wrong,
    )
    .unwrap();
    let e = rt
        .block_on(client.delete_app("hello", &uuid))
        .expect_err("deleting without the platform credential");
    assert_eq!(e.kind(), workflow_clients::Kind::Unauthenticated, "{e}");
    assert!(
        repo.join("HEAD").is_file(),
        "a refused call deleted the repository"
    );

    ok(
        &home,
        &src,
        &["destroy", "-a", "hello", "--confirm", "hello"],
    );
    assert!(!repo.exists(), "the repository outlived destroy");
    assert!(
        !objects.exists(),
        "the build cache and sources outlived destroy"
    );
    let left: Vec<_> = std::fs::read_dir(platform.data.join("builder/repos"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left beside: {left:?}");

    // The name again (destroy removed the remote, as Deis does): an empty repository.
    ok(&home, &src, &["create", "hello", "--no-remote"]);
    ok(&home, &src, &["git:remote", "-a", "hello", "--https"]);
    let refs = git(&home, &src, &["ls-remote", "deis"]);
    assert!(refs.trim().is_empty(), "the new app sees refs: {refs}");
    let (fetched, out) = try_git(&home, &src, &[], &["fetch", "--prune", "deis"]);
    assert!(fetched, "{out}");
    let (found, out) = try_git(
        &home,
        &src,
        &[],
        &["rev-parse", "--verify", "-q", "refs/remotes/deis/main"],
    );
    assert!(!found, "the destroyed app's branch is still there: {out}");
}
