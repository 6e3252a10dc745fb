//! Builder benchmark (not pass/fail): cold vs warm build of a caching fixture buildpack (the
//! ratio), and peak RSS while building a 100 MiB tree (many small files + one 50 MiB blob),
//! which must stay well under 150 MiB because layers are streamed, never held in memory.
//!
//! Pushes into the OCI registry peer: `WORKFLOW_TEST_PEER_REGISTRY=host:port` (plain HTTP).
//! Run: `cargo bench -p workflow-builder --bench build`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use workflow_builder::build::push::RegistryTarget;
use workflow_builder::build::{BuildRequest, BuildSettings, Engine, ImageBuilder};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn write(p: &Path, data: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

async fn build(engine: &Engine, app: &str, dir: &Path, sha: &str) -> f64 {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let req = BuildRequest {
        app: app.into(),
        app_id: format!("{app}-bench"),
        source_dir: dir.to_path_buf(),
        sha: sha.into(),
        config: BTreeMap::new(),
    };
    let t = Instant::now();
    engine.build(&req, &tx).await.expect("build");
    t.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let Ok(host) = std::env::var("WORKFLOW_TEST_PEER_REGISTRY") else {
        eprintln!("skipping: WORKFLOW_TEST_PEER_REGISTRY is not set");
        return;
    };
    let base = tempfile::tempdir().unwrap();
    let store = Arc::new(
        workflow_storage::fs::FsStore::open(base.path().join("store"))
            .await
            .unwrap(),
    );
    // A buildpack whose cold compile does 1.5 s of "downloading" into the cache.
    let bp = base.path().join("bp");
    write(&bp.join("bin/detect"), b"#!/bin/sh\necho Slow\n", 0o755);
    write(
        &bp.join("bin/compile"),
        b"#!/bin/sh\nif [ ! -f \"$2/deps\" ]; then sleep 1.5; head -c 4000000 /dev/urandom > \"$2/deps\"; fi\ncp \"$2/deps\" \"$1/deps\"\n",
        0o755,
    );
    let settings = BuildSettings {
        registry: RegistryTarget {
            host,
            insecure: true,
            builder_key: String::new(),
        },
        buildpacks: vec![bp.to_string_lossy().into_owned()],
        work_dir: base.path().join("work"),
        ..Default::default()
    };
    let engine = Engine::new(settings, store).unwrap();

    let app = base.path().join("app");
    write(&app.join("main.txt"), b"hello", 0o644);
    let cold = build(&engine, "bench-cache", &app, "aaaaaaa1").await;
    std::fs::remove_file(app.join("deps")).unwrap();
    let warm = build(&engine, "bench-cache", &app, "aaaaaaa2").await;
    println!(
        "cold build {cold:.2}s, warm build {warm:.2}s, cold/warm ratio {:.2}",
        cold / warm
    );

    // 100 MiB: 50 MiB of 5 KiB files (10240 of them) + one 50 MiB blob (incompressible).
    let big = base.path().join("big");
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    for i in 0..10240 {
        write(
            &big.join(format!("d{}/f{i}.txt", i % 64)),
            &noise(5 * 1024),
            0o644,
        );
    }
    {
        // Written in 1 MiB pieces so the bench itself never holds the blob.
        use std::io::Write as _;
        let mut f = std::fs::File::create(big.join("blob.bin")).unwrap();
        for _ in 0..50 {
            f.write_all(&noise(1024 * 1024)).unwrap();
        }
    }
    let before = peak_rss_kib();
    let t = build(&engine, "bench-big", &big, "bbbbbbb1").await;
    let after = peak_rss_kib();
    println!(
        "100 MiB tree: built and pushed in {t:.2}s; peak RSS before {:.1} MiB, after {:.1} MiB (limit 150 MiB)",
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
}
