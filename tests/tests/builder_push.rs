//! The builder's engine pushing into a real registry-sync (in-process, with authentication
//! on), read back with skopeo: the built-in Procfile buildpack, a caching fixture buildpack
//! (the second build sees the cache), `BUILDPACK_URL` cloned with git, hostile input, and a
//! Dockerfile app on a busybox base made with `docker import`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use workflow_builder::build::push::{BUILDER_USER, RegistryTarget};
use workflow_builder::build::{BuildKind, BuildRequest, BuildSettings, Engine, ImageBuilder};
use workflow_registry_sync::auth::{Authenticator, StaticAccess};
use workflow_storage::ObjectStore;
use workflow_tests::fixtures::{busybox_image, caching_buildpack, tool, write};

const KEY: &str = "builder-secret";

struct Registry {
    host: String,
    shutdown: CancellationToken,
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn registry() -> Registry {
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = http.local_addr().unwrap().to_string();
    let shutdown = CancellationToken::new();
    let store: Arc<dyn ObjectStore> = Arc::new(workflow_storage::memory::MemoryStore::new());
    let auth = Authenticator::new(
        Some(Box::new(StaticAccess::new().user(
            "alice",
            "tok",
            &[],
            &["hello"],
        ))),
        None,
    )
    .with_builder_key(KEY);
    let config = workflow_registry_sync::Config {
        registry_url: host.clone(),
        storage: workflow_registry_sync::StorageConfig::Memory,
        auth: workflow_registry_sync::AuthConfig {
            builder_key: KEY.into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let serve = workflow_registry_sync::run_with(
        config,
        store,
        auth,
        workflow_registry_sync::Listeners { http, grpc },
        workflow_registry_sync::Shutdown::new(shutdown.clone(), std::time::Duration::from_secs(2)),
    );
    tokio::spawn(async move {
        if let Err(e) = serve.await {
            panic!("registry-sync stopped: {e}");
        }
    });
    Registry { host, shutdown }
}

struct Setup {
    registry: Registry,
    engine: Engine,
    store: Arc<dyn ObjectStore>,
    work: tempfile::TempDir,
    _store_dir: tempfile::TempDir,
}

async fn setup(tweak: impl FnOnce(&mut BuildSettings)) -> Setup {
    let registry = registry().await;
    let store_dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(
        workflow_storage::fs::FsStore::open(store_dir.path().to_path_buf())
            .await
            .unwrap(),
    );
    let work = tempfile::tempdir().unwrap();
    let mut settings = BuildSettings {
        registry: RegistryTarget {
            host: registry.host.clone(),
            insecure: true,
            builder_key: KEY.into(),
        },
        work_dir: work.path().to_path_buf(),
        ..Default::default()
    };
    tweak(&mut settings);
    let engine = Engine::new(settings, store.clone()).unwrap();
    Setup {
        registry,
        engine,
        store,
        work,
        _store_dir: store_dir,
    }
}

fn request(app: &str, dir: &Path, sha: &str, config: &[(&str, &str)]) -> BuildRequest {
    BuildRequest {
        app: app.into(),
        app_id: format!("{app}-id1"),
        source_dir: dir.to_path_buf(),
        sha: sha.into(),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// Builds and collects the output lines.
async fn build(
    engine: &Engine,
    req: &BuildRequest,
) -> (
    Result<workflow_builder::build::BuiltImage, String>,
    Vec<String>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let collector = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Some(l) = rx.recv().await {
            lines.push(l);
        }
        lines
    });
    let r = engine.build(req, &tx).await;
    drop(tx);
    (r, collector.await.unwrap())
}

fn skopeo_inspect(host: &str, reference: &str, config: bool) -> serde_json::Value {
    let mut c = std::process::Command::new("skopeo");
    c.args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        &format!("{BUILDER_USER}:{KEY}"),
    ]);
    if config {
        c.arg("--config");
    }
    let o = c
        .arg(format!("docker://{host}/{reference}"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn work_dir_is_empty(work: &Path) -> bool {
    std::fs::read_dir(work).unwrap().next().is_none()
}

fn procfile_app(dir: &Path) {
    write(
        dir,
        &[
            (
                "Procfile",
                "web: bin/server --port $PORT\nworker: bin/worker\n",
                0o644,
            ),
            ("bin/server", "#!/bin/sh\necho serving\n", 0o755),
            ("bin/worker", "#!/bin/sh\nsleep 1\n", 0o755),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn procfile_app_is_pushed_reproducibly_and_reads_back_with_skopeo() {
    if !tool("skopeo", "skopeo") {
        return;
    }
    let s = setup(|_| {}).await;
    let a = tempfile::tempdir().unwrap();
    procfile_app(a.path());
    let (r, lines) = build(
        &s.engine,
        &request("hello", a.path(), "0123456789abcdef", &[]),
    )
    .await;
    let built = r.unwrap_or_else(|e| panic!("{e}\n{}", lines.join("\n")));
    assert!(
        lines.iter().any(|l| l == "-----> Procfile app detected"),
        "{lines:#?}"
    );
    assert_eq!(built.kind, BuildKind::Buildpack);
    assert_eq!(built.process_types["web"], "bin/server --port $PORT");
    assert_eq!(built.layers, 1);
    assert_eq!(
        built.reference,
        format!("{}/hello@{}", s.registry.host, built.digest)
    );
    assert!(work_dir_is_empty(s.work.path()), "work dir left behind");

    let cfg = skopeo_inspect(&s.registry.host, &format!("hello@{}", built.digest), true);
    let labels = &cfg["config"]["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.revision"],
        "0123456789abcdef"
    );
    assert_eq!(labels["sh.deis.workflow.build-kind"], "buildpack");
    assert_eq!(cfg["config"]["WorkingDir"], "/app");
    let m = skopeo_inspect(&s.registry.host, "hello:git-0123456789ab", false);
    assert_eq!(m["Digest"], built.digest);

    // The same source, checked out again elsewhere later, gives the same digest.
    let b = tempfile::tempdir().unwrap();
    procfile_app(b.path());
    let (r, _) = build(
        &s.engine,
        &request("hello", b.path(), "0123456789abcdef", &[]),
    )
    .await;
    assert_eq!(r.unwrap().digest, built.digest);

    // The source archive was stored and reads back.
    let out = tempfile::tempdir().unwrap();
    workflow_builder::build::source::read_source(
        &s.store,
        "hello-id1",
        "0123456789abcdef",
        &out.path().join("src"),
    )
    .await
    .unwrap();
    assert!(out.path().join("src/bin/server").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caching_buildpack_sees_its_cache_on_the_second_build() {
    if !tool("skopeo", "skopeo") {
        return;
    }
    let bp = tempfile::tempdir().unwrap();
    caching_buildpack(bp.path());
    let bp_path = bp.path().to_string_lossy().into_owned();
    // Detection is in order: the counter comes first, or the second build (with a Procfile)
    // would be taken by the built-in Procfile buildpack.
    let s = setup(|st| st.buildpacks = vec![bp_path, "builtin:procfile".into()]).await;
    let app = tempfile::tempdir().unwrap();
    write(app.path(), &[("app.txt", "x", 0o644)]);
    let req = request(
        "counter",
        app.path(),
        "aaaaaaa1",
        &[("GREETING", "hi there")],
    );
    let (r, lines) = build(&s.engine, &req).await;
    let first = r.unwrap_or_else(|e| panic!("{e}\n{}", lines.join("\n")));
    assert!(
        lines.iter().any(|l| l == "       cache: cold"),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l == "-----> Counter app detected"),
        "{lines:#?}"
    );
    assert_eq!(first.process_types["web"], "./serve");
    assert_eq!(first.process_types["clock"], "./tick");
    assert!(
        s.store
            .head("apps/counter-id1/cache.tar.gz")
            .await
            .unwrap()
            .is_some()
    );

    // Second push: warm cache, Procfile overrides the release default.
    write(app.path(), &[("Procfile", "web: ./better\n", 0o644)]);
    std::fs::remove_file(app.path().join("greeting")).unwrap();
    let (r, lines) = build(
        &s.engine,
        &request("counter", app.path(), "aaaaaaa2", &[("GREETING", "hi")]),
    )
    .await;
    let second = r.unwrap_or_else(|e| panic!("{e}\n{}", lines.join("\n")));
    assert!(
        lines.iter().any(|l| l == "       cache: warm 1"),
        "{lines:#?}"
    );
    assert_eq!(second.process_types["web"], "./better");
    assert_eq!(second.process_types["clock"], "./tick");
    let cfg = skopeo_inspect(
        &s.registry.host,
        &format!("counter@{}", second.digest),
        true,
    );
    assert_eq!(
        cfg["config"]["Labels"]["org.opencontainers.image.revision"],
        "aaaaaaa2"
    );
    assert!(work_dir_is_empty(s.work.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buildpack_url_is_cloned_with_git_at_its_ref() {
    if !tool("git", "git") || !tool("skopeo", "skopeo") {
        return;
    }
    let bp = tempfile::tempdir().unwrap();
    caching_buildpack(bp.path());
    let git = |args: &[&str]| {
        let o = std::process::Command::new("git")
            .arg("-C")
            .arg(bp.path())
            .args(["-c", "user.email=t@e", "-c", "user.name=t"])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "bp"]);
    git(&["tag", "v1"]);
    let s = setup(|_| {}).await;
    let app = tempfile::tempdir().unwrap();
    write(app.path(), &[("app.txt", "x", 0o644)]);
    let url = format!("file://{}#v1", bp.path().display());
    let (r, lines) = build(
        &s.engine,
        &request(
            "viaurl",
            app.path(),
            "bbbbbbb1",
            &[("BUILDPACK_URL", &url), ("GREETING", "x")],
        ),
    )
    .await;
    r.unwrap_or_else(|e| panic!("{e}\n{}", lines.join("\n")));
    assert!(
        lines.iter().any(|l| l == "-----> Counter app detected"),
        "{lines:#?}"
    );
    let (r, _) = build(
        &s.engine,
        &request(
            "viaurl",
            app.path(),
            "bbbbbbb2",
            &[(
                "BUILDPACK_URL",
                &format!("file://{}#nope", bp.path().display()),
            )],
        ),
    )
    .await;
    let e = r.unwrap_err();
    assert!(e.contains("no ref \"nope\""), "{e}");
}

/// Makes one hostile source tree.
type Prepare = Box<dyn Fn(&Path)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_refused_and_nothing_is_pushed() {
    if !tool("skopeo", "skopeo") {
        return;
    }
    let hang = tempfile::tempdir().unwrap();
    write(
        hang.path(),
        &[
            ("bin/detect", "#!/bin/sh\necho Hang\n", 0o755),
            ("bin/compile", "#!/bin/sh\nsleep 600 &\nsleep 600\n", 0o755),
        ],
    );
    let flood = tempfile::tempdir().unwrap();
    write(
        flood.path(),
        &[
            (
                "bin/detect",
                "#!/bin/sh\n[ -f \"$1/flood\" ] && echo Flood\n",
                0o755,
            ),
            (
                "bin/compile",
                "#!/bin/sh\nyes 'gigabytes of output'\n",
                0o755,
            ),
        ],
    );
    let (h, f) = (
        hang.path().to_string_lossy().into_owned(),
        flood.path().to_string_lossy().into_owned(),
    );
    let s = setup(|st| {
        st.buildpacks = vec![f, h];
        st.step_timeout = std::time::Duration::from_secs(2);
        st.max_output = 1 << 20;
        st.max_file_size = 1000;
    })
    .await;
    let cases: Vec<(&str, Prepare, &str)> = vec![
        (
            "escape",
            Box::new(|d: &Path| {
                std::os::unix::fs::symlink("../../../etc/shadow", d.join("key")).unwrap()
            }),
            "symlink key points outside",
        ),
        (
            "big",
            Box::new(|d: &Path| std::fs::write(d.join("blob"), vec![0u8; 1001]).unwrap()),
            "file blob is 1001 bytes",
        ),
        (
            "hang",
            Box::new(|d: &Path| std::fs::write(d.join("x"), "x").unwrap()),
            "timed out after 2s",
        ),
        (
            "flood",
            Box::new(|d: &Path| std::fs::write(d.join("flood"), "x").unwrap()),
            "more than 1048576 bytes",
        ),
    ];
    for (app, make, want) in cases {
        let d = tempfile::tempdir().unwrap();
        make(d.path());
        let (r, lines) = build(&s.engine, &request(app, d.path(), "ccccccc1", &[])).await;
        let e = r.expect_err(app);
        assert!(e.contains(want), "{app}: {e}\n{}", lines.join("\n"));
        assert!(
            work_dir_is_empty(s.work.path()),
            "{app}: work dir left behind"
        );
        let o = std::process::Command::new("skopeo")
            .args([
                "list-tags",
                "--tls-verify=false",
                "--creds",
                &format!("{BUILDER_USER}:{KEY}"),
            ])
            .arg(format!("docker://{}/{app}", s.registry.host))
            .output()
            .unwrap();
        let tags = String::from_utf8_lossy(&o.stdout);
        assert!(
            !tags.contains("git-"),
            "{app}: something was pushed: {tags}"
        );
    }
    // A malformed Procfile names its line.
    let s = setup(|_| {}).await;
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        &[("Procfile", "web: ok\nthis is not a process\n", 0o644)],
    );
    let (r, _) = build(&s.engine, &request("badproc", d.path(), "ddddddd1", &[])).await;
    let e = r.unwrap_err();
    assert!(e.contains("line 2"), "{e}");
    // Bad request values are named.
    let (r, _) = build(&s.engine, &request("Bad_Name", d.path(), "ddddddd1", &[])).await;
    assert!(r.unwrap_err().contains("Bad_Name"));
    let (r, _) = build(&s.engine, &request("ok", d.path(), "../etc", &[])).await;
    assert!(r.unwrap_err().contains("../etc"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dockerfile_app_is_built_by_the_engine_and_pushed() {
    if !busybox_image() || !tool("skopeo", "skopeo") {
        return;
    }
    let s = setup(|_| {}).await;
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        &[
            (
                "Dockerfile",
                "FROM wf-build-busybox:test\nARG GREETING=none\nCOPY . /app\nRUN echo \"greeting=$GREETING\" > /app/greeting\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/app\"]\n",
                0o644,
            ),
            ("index.html", "<p>hi</p>", 0o644),
            ("secret.txt", "do not ship", 0o644),
            (".dockerignore", "secret.txt\n", 0o644),
        ],
    );
    let req = request(
        "dock",
        d.path(),
        "eeeeeee1",
        &[
            ("GREETING", "hello"),
            ("DEIS_DOCKER_BUILD_ARGS_ENABLED", "1"),
        ],
    );
    let (r, lines) = build(&s.engine, &req).await;
    let built = r.unwrap_or_else(|e| panic!("{e}\n{}", lines.join("\n")));
    assert_eq!(built.kind, BuildKind::Dockerfile);
    assert_eq!(built.port, Some(8080));
    assert!(built.layers >= 2, "{built:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Step") || l.contains("COPY")),
        "{lines:#?}"
    );
    let m = skopeo_inspect(&s.registry.host, &format!("dock@{}", built.digest), false);
    assert_eq!(m["Digest"], built.digest);
    assert!(work_dir_is_empty(s.work.path()));

    // A failing Dockerfile gives the engine's error.
    write(
        d.path(),
        &[(
            "Dockerfile",
            "FROM wf-build-busybox:test\nRUN false\n",
            0o644,
        )],
    );
    let (r, _) = build(&s.engine, &request("dock", d.path(), "eeeeeee2", &[])).await;
    let e = r.unwrap_err();
    assert!(
        e.contains("Dockerfile build failed") && e.contains("false"),
        "{e}"
    );

    // No engine: the error names the socket.
    let s2 = setup(|st| st.docker_socket = "unix:///nonexistent/docker.sock".into()).await;
    write(d.path(), &[("Dockerfile", "FROM scratch\n", 0o644)]);
    let (r, _) = build(&s2.engine, &request("dock", d.path(), "eeeeeee3", &[])).await;
    let e = r.unwrap_err();
    assert!(e.contains("/nonexistent/docker.sock"), "{e}");
}
