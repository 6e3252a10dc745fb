//! The local runtime with container releases on the real Docker engine: the contract checks
//! (one-off runs included), labels and limits, adoption of running containers. The image is
//! busybox-static imported with `docker import` (the engine here cannot pull).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use workflow_runtime::local::LocalRuntime;
use workflow_runtime::testsuite::{self, Flavor, Harness};
use workflow_runtime::{Desired, ImageKind, Rollout, Runtime};

/// Whether the Docker engine answers; fails in CI when it does not.
fn have_docker() -> bool {
    let ok = std::process::Command::new("docker")
        .arg("info")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("the Docker engine is not reachable");
        }
        eprintln!("skipping: the Docker engine is not reachable");
    }
    ok && have_busybox()
}

/// Imports a busybox rootfs (with `/bin/sh` and `/www/index.html`) and returns its id.
fn import_image() -> String {
    let mut b = tar::Builder::new(Vec::new());
    b.append_path_with_name(BUSYBOX, "bin/busybox").unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "bin/sh", "busybox").unwrap();
    let data = "hello from the image\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "www/index.html", data.as_bytes())
        .unwrap();
    let rootfs = b.into_inner().unwrap();
    let mut child = std::process::Command::new("docker")
        .args(["import", "-", "workflow-runtime-test:busybox"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&rootfs).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "docker import failed");
    "workflow-runtime-test:busybox".to_string()
}

fn container_desired(app: &str, version: i64, image: &str, flavor: Flavor) -> Desired {
    let mut d = desired(app, version, image, flavor);
    d.image.as_mut().unwrap().kind = ImageKind::Container;
    if flavor == Flavor::Runs {
        d.processes.get_mut("web").unwrap().command =
            Some("exec /bin/busybox httpd -f -p 0.0.0.0:$PORT -h /www".into());
        d.processes.get_mut("worker").unwrap().command = Some(
            "echo worker $DEIS_APP $WORKFLOW_RELEASE started; exec /bin/busybox sleep 100000"
                .into(),
        );
    }
    d.grace = std::time::Duration::from_secs(1);
    d
}

struct Containers {
    image: String,
    dirs: Mutex<Vec<tempfile::TempDir>>,
}

#[async_trait::async_trait]
impl Harness for Containers {
    async fn runtime(&self) -> Arc<dyn Runtime> {
        let dir = tempfile::tempdir().unwrap();
        let rt = LocalRuntime::new(config(dir.path())).await.unwrap();
        self.dirs.lock().unwrap().push(dir);
        Arc::new(rt)
    }
    async fn desired(&self, app: &str, version: i64, flavor: Flavor) -> Desired {
        // Apps get a per-test prefix: containers are named after processes engine-wide.
        container_desired(&format!("dk{app}"), version, &self.image, flavor)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_keep_the_contract() {
    if !have_docker() {
        return;
    }
    let h = Containers {
        image: import_image(),
        dirs: Mutex::new(Vec::new()),
    };
    // The suite's checks address apps by the names they pass in; the harness prefixes
    // them, so the checks that look processes up by name run against prefixed desired
    // states through this thin wrapper.
    let wrapped = Prefixless(&h);
    testsuite::apply_converges_and_is_idempotent(&wrapped).await;
    testsuite::scaling_up_and_down(&wrapped).await;
    testsuite::new_version_replaces_old(&wrapped).await;
    testsuite::crash_loop_fails_and_previous_keeps_running(&wrapped).await;
    testsuite::restart_gives_new_processes(&wrapped).await;
    testsuite::run_returns_output_and_exit_code(&wrapped).await;
    // The one-off container is removed once it exited.
    let left = std::process::Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            "label=app=oneoff",
            "--filter",
            "label=type=run",
        ])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "one-off containers left: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    testsuite::destroy_leaves_nothing(&wrapped).await;
    testsuite::apps_never_mix(&wrapped).await;
}

/// The harness without the prefix (the suite's app names are already distinct).
struct Prefixless<'a>(&'a Containers);

#[async_trait::async_trait]
impl Harness for Prefixless<'_> {
    async fn runtime(&self) -> Arc<dyn Runtime> {
        self.0.runtime().await
    }
    async fn desired(&self, app: &str, version: i64, flavor: Flavor) -> Desired {
        container_desired(app, version, &self.0.image, flavor)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_carry_labels_limits_and_are_adopted() {
    if !have_docker() {
        return;
    }
    let image = import_image();
    let h = Prefixless(&Containers {
        image: image.clone(),
        dirs: Mutex::new(Vec::new()),
    });
    let dir = tempfile::tempdir().unwrap();
    let mut d = container_desired("dkadopt", 3, &image, Flavor::Runs);
    d.processes.get_mut("web").unwrap().memory = Some(64 << 20);
    d.processes.get_mut("web").unwrap().cpu_millis = Some(500);
    let rt = LocalRuntime::new(config(dir.path())).await.unwrap();
    testsuite::converge_ready(&h, &rt, &d).await;
    let before = rt.processes("dkadopt").await.unwrap();
    let web = before.iter().find(|p| p.kind == "web").unwrap().clone();

    let inspect = std::process::Command::new("docker")
        .args([
            "inspect",
            "--format",
            "{{index .Config.Labels \"app\"}} {{index .Config.Labels \"type\"}} {{index .Config.Labels \"version\"}} {{index .Config.Labels \"heritage\"}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
            &web.name,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&inspect.stdout).trim().to_string();
    assert_eq!(
        text,
        format!("dkadopt web 3 workflow {} 500000000", 64 << 20)
    );

    drop(rt);
    let rt = LocalRuntime::new(config(dir.path())).await.unwrap();
    assert_eq!(rt.apply(&d).await.unwrap(), Rollout::Ready);
    assert_eq!(
        before,
        rt.processes("dkadopt").await.unwrap(),
        "adoption restarted containers"
    );

    // The published port serves the image's file.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(web.addr.unwrap())
        .await
        .unwrap();
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    assert!(body.contains("hello from the image"), "{body}");

    rt.destroy("dkadopt", &d.app_id).await.unwrap();
    for p in &before {
        let left = std::process::Command::new("docker")
            .args(["ps", "-aq", "--filter", &format!("name=^{}$", p.name)])
            .output()
            .unwrap();
        assert!(
            left.stdout.is_empty(),
            "container {} left after destroy",
            p.name
        );
    }
}
