//! Real clients against registry-sync, with the filesystem and the S3 store: skopeo copies in
//! and out (OCI and Docker schema 2, single images and indexes, with auth), docker push/pull
//! through the engine, buildah push.

mod common;

use std::sync::Arc;

use common::{Backend, TestImage, run_async, run_async_env, start, write_oci_layout};
use workflow_registry_sync::auth::{Authenticator, StaticAccess};

fn auth() -> Authenticator {
    Authenticator::new(
        Some(Box::new(StaticAccess::new().user(
            "alice",
            "tok-a",
            &[],
            &["*"],
        ))),
        Some(("node".into(), "node-pw".into())),
    )
}

fn manifest_digest(oci_dir: &std::path::Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci_dir.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn skopeo_suite(kind: Backend) {
    if !common::tool("skopeo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(store) = common::store(kind, dir.path()).await else {
        return;
    };
    let reg = start(store, auth()).await;
    let host = reg.host();
    let d = |p: &str| dir.path().join(p).display().to_string();

    // A 3-layer OCI image in, by digest-preserving copy; back out, same digest.
    let img = TestImage::small(3, "skopeo", "amd64");
    write_oci_layout(&dir.path().join("src"), &[(&img, "amd64")], "v1", false);
    let dst = format!("docker://{host}/app:v1");
    run_async(
        "skopeo",
        &[
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:tok-a",
            &format!("oci:{}:v1", d("src")),
            &dst,
        ],
    )
    .await;
    run_async(
        "skopeo",
        &[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--src-creds",
            "node:node-pw",
            &dst,
            &format!("oci:{}:v1", d("out")),
        ],
    )
    .await;
    let raw = run_async(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            "alice:tok-a",
            &dst,
        ],
    )
    .await;
    assert_eq!(raw.as_bytes(), &img.manifest[..]);
    assert_eq!(manifest_digest(&dir.path().join("out")), img.digest());
    // Pushing again skips every blob (HEAD hits), and still succeeds.
    run_async(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:tok-a",
            &format!("oci:{}:v1", d("src")),
            &dst,
        ],
    )
    .await;

    // The node credential is read-only.
    let mut push = tokio::process::Command::new("skopeo");
    push.args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "node:node-pw",
        &format!("oci:{}:v1", d("src")),
        &format!("docker://{host}/app:node"),
    ]);
    assert!(
        !push.output().await.unwrap().status.success(),
        "node credential pushed"
    );

    // Docker schema 2 conversion in; inspect out.
    run_async(
        "skopeo",
        &[
            "copy",
            "--format",
            "v2s2",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:tok-a",
            &format!("oci:{}:v1", d("src")),
            &format!("docker://{host}/app:docker"),
        ],
    )
    .await;
    let raw = run_async(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            "alice:tok-a",
            &format!("docker://{host}/app:docker"),
        ],
    )
    .await;
    assert!(
        raw.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{raw}"
    );
    // Cross-repository: a copy between two repositories of this registry (mounts).
    run_async(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--src-creds",
            "alice:tok-a",
            "--dest-creds",
            "alice:tok-a",
            &dst,
            &format!("docker://{host}/other/app:v1"),
        ],
    )
    .await;

    // An index of two platforms, copied whole in and out.
    let arm = TestImage::small(2, "skopeo-arm", "arm64");
    let index_digest = write_oci_layout(
        &dir.path().join("multi"),
        &[(&img, "amd64"), (&arm, "arm64")],
        "m",
        true,
    );
    run_async(
        "skopeo",
        &[
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:tok-a",
            &format!("oci:{}:m", d("multi")),
            &format!("docker://{host}/app:multi"),
        ],
    )
    .await;
    run_async(
        "skopeo",
        &[
            "copy",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--src-creds",
            "alice:tok-a",
            &format!("docker://{host}/app:multi"),
            &format!("oci:{}:m", d("multi-out")),
        ],
    )
    .await;
    assert_eq!(manifest_digest(&dir.path().join("multi-out")), index_digest);
    let tags = run_async(
        "skopeo",
        &[
            "list-tags",
            "--tls-verify=false",
            "--creds",
            "alice:tok-a",
            &format!("docker://{host}/app"),
        ],
    )
    .await;
    for t in ["v1", "docker", "multi"] {
        assert!(tags.contains(t), "{tags}");
    }
    // Delete, then the tag is gone.
    run_async(
        "skopeo",
        &[
            "delete",
            "--tls-verify=false",
            "--creds",
            "alice:tok-a",
            &format!("docker://{host}/app:docker"),
        ],
    )
    .await;
    let tags = run_async(
        "skopeo",
        &[
            "list-tags",
            "--tls-verify=false",
            "--creds",
            "alice:tok-a",
            &format!("docker://{host}/app"),
        ],
    )
    .await;
    assert!(!tags.contains("\"docker\""), "{tags}");
    reg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copy_in_and_out_fs_store() {
    skopeo_suite(Backend::Fs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copy_in_and_out_s3_store() {
    skopeo_suite(Backend::S3).await;
}

/// docker push and pull through the engine, then buildah push and podman push/pull, on one store.
async fn engine_suite(kind: Backend) {
    if !common::tool("docker") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(store) = common::store(kind, dir.path()).await else {
        return;
    };
    let reg = start(Arc::clone(&store), auth()).await;
    let host = reg.host();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let image = format!("{host}/dockerapp:{}", &id[..12]);

    // A tiny base image made locally (the engine cannot pull).
    let rootfs = dir.path().join("rootfs.tar");
    std::fs::write(
        &rootfs,
        common::tar_layer("hello.txt", format!("hello {id}\n").as_bytes(), 0o644),
    )
    .unwrap();
    // Credentials go to a config of this test's own (tests run concurrently).
    let docker_config = dir.path().join("docker-config");
    std::fs::create_dir_all(&docker_config).unwrap();
    let docker_config = docker_config.display().to_string();
    let env = [("DOCKER_CONFIG", docker_config.as_str())];
    run_async("docker", &["import", &rootfs.display().to_string(), &image]).await;
    let login = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf tok-a | docker login -u alice --password-stdin {host}"
        ))
        .env("DOCKER_CONFIG", &docker_config)
        .output()
        .await
        .unwrap();
    assert!(
        login.status.success(),
        "docker login: {}",
        String::from_utf8_lossy(&login.stderr)
    );
    run_async_env("docker", &["push", &image], &env).await;
    run_async("docker", &["rmi", &image]).await;
    run_async_env("docker", &["pull", &image], &env).await;
    let out = run_async(
        "docker",
        &["image", "inspect", "--format", "{{.Id}}", &image],
    )
    .await;
    assert!(out.trim().starts_with("sha256:"), "{out}");
    run_async("docker", &["rmi", &image]).await;

    if common::tool("buildah") {
        // buildah names pulled layouts after their path, which must be lowercase.
        let src = std::path::PathBuf::from(format!("/tmp/wf-buildah-{id}"));
        let img = TestImage::small(2, &id, "amd64");
        write_oci_layout(&src, &[(&img, "amd64")], "b", false);
        let image_id = run_async(
            "buildah",
            &["pull", "--quiet", &format!("oci:{}:b", src.display())],
        )
        .await;
        let image_id = image_id.trim().to_string();
        run_async(
            "buildah",
            &[
                "push",
                "--tls-verify=false",
                "--creds",
                "alice:tok-a",
                &image_id,
                &format!("docker://{host}/buildahapp:v1"),
            ],
        )
        .await;
        let raw = run_async(
            "skopeo",
            &[
                "inspect",
                "--tls-verify=false",
                "--creds",
                "alice:tok-a",
                &format!("docker://{host}/buildahapp:v1"),
            ],
        )
        .await;
        assert!(raw.contains("\"Layers\""), "{raw}");
        if common::tool("podman") {
            // podman shares buildah's image storage: push the same image, then pull it back.
            let target = format!("{host}/podmanapp:v1");
            run_async(
                "podman",
                &[
                    "push",
                    "--tls-verify=false",
                    "--creds",
                    "alice:tok-a",
                    &image_id,
                    &format!("docker://{target}"),
                ],
            )
            .await;
            run_async(
                "podman",
                &[
                    "pull",
                    "--tls-verify=false",
                    "--creds",
                    "alice:tok-a",
                    &target,
                ],
            )
            .await;
            let _ = tokio::process::Command::new("podman")
                .args(["rmi", "-f", &target])
                .output()
                .await;
        }
        let _ = tokio::process::Command::new("buildah")
            .args(["rmi", "-f", &image_id])
            .output()
            .await;
        let _ = std::fs::remove_dir_all(&src);
    }
    reg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_and_buildah_push_pull_fs_store() {
    engine_suite(Backend::Fs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_and_buildah_push_pull_s3_store() {
    engine_suite(Backend::S3).await;
}
