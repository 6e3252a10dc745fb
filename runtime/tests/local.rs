//! The local runtime with host processes: the contract suite, adoption after a restart,
//! CRI logs, one-off runs, image verification.

mod common;

use std::time::Duration;

use common::*;
use workflow_runtime::local::LocalRuntime;
use workflow_runtime::testsuite::{self, Flavor};
use workflow_runtime::{Error, ProcessState, Rollout, Runtime};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_runtime_keeps_the_contract() {
    if !have_busybox() {
        return;
    }
    let h = Local::new().await;
    testsuite::run_all(&h).await;
}

/// (name, pid) of every process, from the state file: what adoption must keep.
fn pids(data: &std::path::Path, app_id: &str) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(data.join("apps").join(app_id).join("state.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out: Vec<(String, u64)> = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["pid"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_runtime_adopts_running_processes() {
    if !have_busybox() {
        return;
    }
    let h = Local::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = desired("adopt", 1, &h.image, Flavor::Runs);
    d.processes.get_mut("web").unwrap().count = 2;
    let rt = LocalRuntime::new(config(dir.path())).await.unwrap();
    testsuite::converge_ready(&h, &rt, &d).await;
    let before = rt.processes("adopt").await.unwrap();
    let pids_before = pids(&dir.path().join("data"), &d.app_id);
    drop(rt);

    let rt = LocalRuntime::new(config(dir.path())).await.unwrap();
    assert_eq!(rt.apply(&d).await.unwrap(), Rollout::Ready);
    let after = rt.processes("adopt").await.unwrap();
    assert_eq!(before, after, "adoption changed the processes");
    assert!(
        after
            .iter()
            .all(|p| p.restarts == 0 && p.state == ProcessState::Up)
    );
    assert_eq!(
        pids_before,
        pids(&dir.path().join("data"), &d.app_id),
        "pids changed"
    );

    // The adopted web processes still serve.
    for p in after.iter().filter(|p| p.kind == "web") {
        let body = http_get(p.addr.unwrap()).await;
        assert!(body.contains("hello from the image"), "{body}");
    }

    // An adopted process that dies is restarted.
    let worker = pids(&dir.path().join("data"), &d.app_id)
        .into_iter()
        .find(|(n, _)| n.contains("-worker-"))
        .unwrap();
    std::process::Command::new("kill")
        .args(["-9", &worker.1.to_string()])
        .status()
        .unwrap();
    let mut restarted = false;
    for _ in 0..400 {
        let ps = rt.processes("adopt").await.unwrap();
        let w = ps.iter().find(|p| p.kind == "worker").unwrap();
        if w.restarts == 1 && w.state == ProcessState::Up {
            restarted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(restarted, "the killed adopted worker was not restarted");
    rt.destroy("adopt", &d.app_id).await.unwrap();
    assert!(!dir.path().join("data/apps").join(&d.app_id).exists());
}

/// Whether `pid` still runs (not a zombie).
fn running(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|st| !st.contains(") Z ") && !st.contains(") X "))
}

/// Guards zero-downtime rollouts: a replaced web process leaves the listing (and so the
/// routes) while it still runs and serves what was sent to it; it stops after its drain,
/// also when the runtime was restarted meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_web_processes_drain_before_they_stop() {
    if !have_busybox() {
        return;
    }
    let h = Local::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.drain = Duration::from_secs(3600);
    let data = dir.path().join("data");
    let v1 = desired("drain", 1, &h.image, Flavor::Runs);
    let rt = LocalRuntime::new(cfg.clone()).await.unwrap();
    testsuite::converge_ready(&h, &rt, &v1).await;
    let old = rt.processes("drain").await.unwrap();
    let old_web = old.iter().find(|p| p.kind == "web").unwrap().clone();
    let old_pids = pids(&data, &v1.app_id);
    let mut v2 = desired("drain", 2, &h.image, Flavor::Runs);
    v2.env.insert("GREETING".into(), "v2".into());
    let mut draining = false;
    for _ in 0..600 {
        match rt.apply(&v2).await.unwrap() {
            Rollout::Progressing(why) if why.contains("draining") => {
                draining = true;
                break;
            }
            Rollout::Progressing(_) => {}
            other => panic!("v2 ended {other:?} while v1's web process drains"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(draining, "v2 never got to draining v1");
    let listed = rt.processes("drain").await.unwrap();
    assert!(
        listed
            .iter()
            .all(|p| p.version == 2 && p.state == ProcessState::Up),
        "only v2, all up, is listed (and routed): {listed:#?}"
    );
    let body = http_get(old_web.addr.unwrap()).await;
    assert!(
        body.contains("hello from the image"),
        "v1 still serves: {body}"
    );
    // A restart of the runtime does not forget what drains.
    drop(rt);
    let rt = LocalRuntime::new(cfg).await.unwrap();
    testsuite::converge_ready(&h, &rt, &v2).await;
    for (name, pid) in old_pids {
        for _ in 0..400 {
            if !running(pid) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(!running(pid), "v1's {name} still runs");
    }
    rt.destroy("drain", &v1.app_id).await.unwrap();
}

async fn http_get(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_goes_to_cri_log_files_the_shipper_can_name() {
    if !have_busybox() {
        return;
    }
    let h = Local::new().await;
    let dir = tempfile::tempdir().unwrap();
    let rt = LocalRuntime::new(config(dir.path())).await.unwrap();
    let mut d = desired("logs", 1, &h.image, Flavor::Runs);
    d.processes.get_mut("web").unwrap().count = 0;
    d.processes.get_mut("worker").unwrap().command = Some(format!(
        "echo out-line; echo err-line >&2; printf 'x%.0s' $(seq 1 20000); echo; {WORKER}"
    ));
    testsuite::converge_ready(&h, &rt, &d).await;
    let worker = rt.processes("logs").await.unwrap().remove(0);
    let id = &worker.name[worker.name.len() - 5..];
    let file = dir
        .path()
        .join("logs")
        .join(format!("{}_logs_logs-worker-{id}.log", worker.name));
    let mut text = String::new();
    for _ in 0..400 {
        text = std::fs::read_to_string(&file).unwrap_or_default();
        if text.contains("worker logs v1 started") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let lines: Vec<&str> = text.lines().collect();
    let find = |needle: &str| lines.iter().find(|l| l.contains(needle)).copied();
    let out = find("out-line").expect("stdout line logged");
    let (time, rest) = out.split_once(' ').unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{out}");
    assert_eq!(rest, "stdout F out-line");
    assert!(find("stderr F err-line").is_some(), "{text}");
    assert!(
        find("stdout P xxxx").is_some(),
        "long line not split: {}",
        &text[..200.min(text.len())]
    );
    rt.destroy("logs", &d.app_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sees_the_release_env_and_is_killed_at_timeout() {
    if !have_busybox() {
        return;
    }
    let h = Local::new().await;
    let dir = tempfile::tempdir().unwrap();
    let rt = LocalRuntime::new(config(dir.path())).await.unwrap();
    let d = desired("oneoff", 4, &h.image, Flavor::Runs);
    let out = rt
        .run(
            &d,
            "echo $DEIS_APP $WORKFLOW_RELEASE $GREETING $SOURCE_VERSION; ls www",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{out:?}");
    assert!(out.output.contains("oneoff v4 hi abc123"), "{out:?}");
    assert!(out.output.contains("index.html"), "{out:?}");
    let out = rt
        .run(
            &d,
            "echo started; exec ./bin/busybox sleep 60",
            Duration::from_millis(500),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 137, "{out:?}");
    assert!(
        out.output.contains("started") && out.output.contains("killed after"),
        "{out:?}"
    );
    rt.destroy("oneoff", &d.app_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_layer_is_refused() {
    if !have_busybox() {
        return;
    }
    let (addr, reg) = start_registry().await;
    let md = push(&reg, &[layer(&[])], None);
    for b in reg.blobs.lock().unwrap().values_mut() {
        if b.len() > 1000 {
            b[500] ^= 0xff;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let rt = LocalRuntime::new(config(dir.path())).await.unwrap();
    let d = desired("tamper", 1, &format!("{addr}/test/app@{md}"), Flavor::Runs);
    match rt.apply(&d).await {
        Err(Error::Invalid(msg)) => assert!(msg.contains("digest"), "{msg}"),
        other => panic!("tampered layer: {other:?}"),
    }
    assert!(rt.processes("tamper").await.unwrap().is_empty());
    // Nothing half-unpacked stays behind.
    let releases = dir.path().join("data/apps/id-tamper/releases");
    let left: Vec<_> = std::fs::read_dir(&releases)
        .map(|r| r.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readiness_probe_gates_the_rollout() {
    if !have_busybox() {
        return;
    }
    let h = Local::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.ready_deadline = Duration::from_secs(2);
    let rt = LocalRuntime::new(cfg).await.unwrap();
    let v1 = desired("probe", 1, &h.image, Flavor::Runs);
    testsuite::converge_ready(&h, &rt, &v1).await;
    let mut v2 = desired("probe", 2, &h.image, Flavor::Runs);
    v2.processes.get_mut("web").unwrap().readiness = Some(workflow_runtime::Probe {
        action: workflow_runtime::ProbeAction::HttpGet {
            path: "/missing".into(),
            port: None,
            headers: vec![],
        },
        initial_delay: Duration::ZERO,
        timeout: Duration::from_secs(1),
        period: Duration::from_millis(50),
        success_threshold: 1,
        failure_threshold: 3,
    });
    match testsuite::converge(&h, &rt, &v2).await {
        Rollout::Failed(reason) => assert!(
            reason.contains("not ready") && reason.contains("404"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    let ps = rt.processes("probe").await.unwrap();
    assert!(
        ps.iter()
            .all(|p| p.version == 1 && p.state == ProcessState::Up),
        "{ps:#?}"
    );
    rt.destroy("probe", &v1.app_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limits_are_enforced_on_host_processes() {
    if !have_busybox() {
        return;
    }
    let h = Local::new().await;
    let dir = tempfile::tempdir().unwrap();
    let rt = LocalRuntime::new(config(dir.path())).await.unwrap();
    assert!(rt.capabilities().memory_limits);
    // dd allocates its 64 MiB block: fine without a limit, refused under 32 MiB.
    let big = "./bin/busybox dd if=/dev/zero of=/dev/null bs=64M count=1";
    let mut d = desired("limits", 1, &h.image, Flavor::Runs);
    let out = rt.run(&d, big, Duration::from_secs(30)).await.unwrap();
    assert_eq!(out.exit_code, 0, "{out:?}");
    d.processes.get_mut("web").unwrap().memory = Some(32 << 20);
    let out = rt.run(&d, big, Duration::from_secs(30)).await.unwrap();
    assert_ne!(
        out.exit_code, 0,
        "64 MiB allocated under a 32 MiB limit: {out:?}"
    );
    rt.destroy("limits", &d.app_id).await.unwrap();
}
