//! Benchmark: registry-sync (filesystem store) against Debian's docker-registry on the same
//! disk, measured in the same run. skopeo pushes and pulls a generated 1 GiB, 10-layer image
//! to and from each; prints times, ratios, registry-sync's peak RSS during the push, and
//! runs 50 concurrent pulls of one image.
//!
//! `cargo bench -p workflow-registry-sync --bench registry` (needs skopeo and docker-registry;
//! `BENCH_MIB` changes the image size, default 1024).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;
use workflow_registry_sync::auth::Authenticator;

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Writes an OCI layout of `layers` layers totalling `mib` MiB of incompressible bytes.
fn generate(dir: &Path, mib: usize, layers: usize) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let per = mib * 1024 * 1024 / layers;
    let mut descs = Vec::new();
    let mut state: u64 = 0x9e3779b97f4a7c15;
    for i in 0..layers {
        let mut data = vec![0u8; per];
        for chunk in data.chunks_mut(8) {
            // xorshift64*: fast, incompressible enough.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let v = state.wrapping_mul(0x2545f4914f6cdd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        data[0] = i as u8;
        let d = sha(&data);
        std::fs::write(dir.join("blobs/sha256").join(&d[7..]), &data).unwrap();
        descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": per}));
    }
    let config = serde_json::to_vec(&serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": descs.iter().map(|d| d["digest"].clone()).collect::<Vec<_>>()}})).unwrap();
    std::fs::write(dir.join("blobs/sha256").join(&sha(&config)[7..]), &config).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
        "layers": descs,
    })).unwrap();
    std::fs::write(
        dir.join("blobs/sha256").join(&sha(&manifest)[7..]),
        &manifest,
    )
    .unwrap();
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&manifest), "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "bench"}}]})).unwrap()).unwrap();
}

async fn skopeo(args: &[&str]) -> Duration {
    let t = Instant::now();
    let out = tokio::process::Command::new("skopeo")
        .args(args)
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .await
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed()
}

fn vm_hwm_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn reset_hwm() {
    // "5" resets the peak resident set size (VmHWM) of the process.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Baseline {
    child: std::process::Child,
    addr: String,
}

fn start_docker_registry(dir: &Path, port: u16) -> Baseline {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let cfg = dir.join("config.yml");
    std::fs::write(&cfg, format!("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n", dir.join("data").display())).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&cfg)
        .env_remove("AWS_CA_BUNDLE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start docker-registry");
    let addr = format!("127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Baseline { child, addr }
}

/// registry-sync in this process, on the filesystem store.
struct Ours {
    addr: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<workflow_registry_sync::Result<()>>,
}

impl Ours {
    async fn start(dir: &Path) -> Self {
        let store = std::sync::Arc::new(
            workflow_registry_sync::store::fs::FsStore::open(dir)
                .await
                .unwrap(),
        );
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = http.local_addr().unwrap().to_string();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(workflow_registry_sync::run_with(
            workflow_registry_sync::Config::default(),
            store,
            Authenticator::new(None, None),
            workflow_registry_sync::Listeners { http, grpc },
            workflow_registry_sync::Shutdown::new(
                shutdown.clone(),
                std::time::Duration::from_secs(5),
            ),
        ));
        Ours {
            addr,
            shutdown,
            task,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

async fn push_pull(src: &Path, host: &str, out: &Path, label: &str) -> (Duration, Duration) {
    let src = format!("oci:{}:bench", src.display());
    let dst = format!("docker://{host}/bench/{label}:v1");
    let push = skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &src,
        &dst,
    ])
    .await;
    let _ = std::fs::remove_dir_all(out);
    let pull = skopeo(&[
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        &dst,
        &format!("oci:{}:bench", out.display()),
    ])
    .await;
    (push, pull)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mib: usize = std::env::var("BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let base: PathBuf = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let work = tempfile::tempdir_in(base).unwrap();
    let image = work.path().join("image");
    println!("generating a {mib} MiB 10-layer image ...");
    generate(&image, mib, 10);

    // Alternate which registry goes first and keep each one's best round: the machine is
    // shared, so single runs are noisy. Every round starts both registries afresh on new
    // ports and empty stores, so skopeo's blob-info cache cannot turn uploads into mounts.
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let rss_before = vm_hwm_kib();
    let (mut b_push, mut b_pull, mut o_push, mut o_pull) =
        (Duration::MAX, Duration::MAX, Duration::MAX, Duration::MAX);
    let mut rss_peak = 0;
    for round in 0..rounds {
        let round_dir = work.path().join(format!("round{round}"));
        let ours = Ours::start(&round_dir.join("ours")).await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut baseline = start_docker_registry(&round_dir.join("baseline"), port);
        let mut run_baseline = async || {
            let (p, l) =
                push_pull(&image, &baseline.addr, &round_dir.join("out-b"), "baseline").await;
            (b_push, b_pull) = (b_push.min(p), b_pull.min(l));
        };
        if round % 2 == 0 {
            run_baseline().await;
        }
        reset_hwm();
        let (p, l) = push_pull(&image, &ours.addr, &round_dir.join("out-o"), "ours").await;
        rss_peak = rss_peak.max(vm_hwm_kib());
        (o_push, o_pull) = (o_push.min(p), o_pull.min(l));
        if round % 2 == 1 {
            run_baseline().await;
        }
        ours.stop().await;
        let _ = baseline.child.kill();
        let _ = baseline.child.wait();
        let _ = std::fs::remove_dir_all(&round_dir);
        println!("round {round}: done");
    }
    let ours = Ours::start(&work.path().join("ours")).await;
    let ours_addr = ours.addr.clone();
    let ours_stop = ours;

    // 50 concurrent pulls of one (smaller) image from registry-sync.
    let small = work.path().join("small");
    generate(&small, 20, 10);
    let dst = format!("docker://{ours_addr}/bench/small:v1");
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{}:bench", small.display()),
        &dst,
    ])
    .await;
    let t = Instant::now();
    let mut pulls = Vec::new();
    for i in 0..50 {
        let dst = dst.clone();
        let out = work.path().join(format!("pull-{i}"));
        pulls.push(tokio::spawn(async move {
            skopeo(&[
                "copy",
                "--src-tls-verify=false",
                &dst,
                &format!("oci:{}:x", out.display()),
            ])
            .await
        }));
    }
    for p in pulls {
        p.await.expect("concurrent pull");
    }
    let concurrent = t.elapsed();

    let secs = |d: Duration| d.as_secs_f64();
    println!(
        "image: {mib} MiB in 10 layers, skopeo copy, filesystem stores on one disk, best of {rounds} rounds"
    );
    println!(
        "push: docker-registry {:.2}s, registry-sync {:.2}s, speedup {:.2}x",
        secs(b_push),
        secs(o_push),
        secs(b_push) / secs(o_push)
    );
    println!(
        "pull: docker-registry {:.2}s, registry-sync {:.2}s, speedup {:.2}x",
        secs(b_pull),
        secs(o_pull),
        secs(b_pull) / secs(o_pull)
    );
    println!(
        "registry-sync process peak RSS during push+pull: {} MiB (before: {} MiB)",
        rss_peak / 1024,
        rss_before / 1024
    );
    println!(
        "50 concurrent pulls of a 20 MiB image: all succeeded in {:.2}s",
        secs(concurrent)
    );

    ours_stop.stop().await;
}
