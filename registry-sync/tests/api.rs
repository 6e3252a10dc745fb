//! The OCI distribution API over HTTP against an in-process registry (memory, fs and S3
//! stores): uploads, manifests, tags, mounts, referrers, deletes, auth, hostile input, GC.

mod common;

use std::time::Duration;

use common::{Backend, TestImage, sha, start};
use reqwest::StatusCode;
use workflow_registry_sync::auth::{Authenticator, StaticAccess};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

struct Api {
    http: reqwest::Client,
    base: String,
    user: Option<(String, String)>,
}

impl Api {
    fn req(&self, m: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(m, format!("{}{path}", self.base));
        match &self.user {
            Some((u, p)) => r.basic_auth(u, Some(p)),
            None => r,
        }
    }
    async fn push_blob(&self, repo: &str, data: &[u8]) -> StatusCode {
        self.req(
            reqwest::Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={}", sha(data)),
        )
        .body(data.to_vec())
        .send()
        .await
        .unwrap()
        .status()
    }
    async fn push_image(&self, repo: &str, img: &TestImage, tag: &str) -> reqwest::Response {
        assert_eq!(self.push_blob(repo, &img.config).await, StatusCode::CREATED);
        for l in &img.layers {
            assert_eq!(self.push_blob(repo, l).await, StatusCode::CREATED);
        }
        self.req(reqwest::Method::PUT, &format!("/v2/{repo}/manifests/{tag}"))
            .header("content-type", OCI_MANIFEST)
            .body(img.manifest.clone())
            .send()
            .await
            .unwrap()
    }
}

async fn code(r: reqwest::Response) -> (StatusCode, String) {
    let s = r.status();
    let v: serde_json::Value = r.json().await.unwrap_or_default();
    (s, v["errors"][0]["code"].as_str().unwrap_or("").to_string())
}

async fn api_suite(kind: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(store) = common::store(kind, dir.path()).await else {
        return;
    };
    let reg = start(store, Authenticator::new(None, None)).await;
    let api = Api {
        http: reqwest::Client::new(),
        base: reg.base(),
        user: None,
    };
    use reqwest::Method as M;

    // Ping.
    let r = api.req(M::GET, "/v2/").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );

    // Monolithic POST, then GET/HEAD with and without Range.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    assert_eq!(api.push_blob("app", &data).await, StatusCode::CREATED);
    let r = api
        .req(M::HEAD, &format!("/v2/app/blobs/{}", sha(&data)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"], data.len().to_string());
    assert_eq!(r.headers()["docker-content-digest"], sha(&data));
    let r = api
        .req(M::GET, &format!("/v2/app/blobs/{}", sha(&data)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), data);
    let r = api
        .req(M::GET, &format!("/v2/app/blobs/{}", sha(&data)))
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 100-199/{}", data.len())
    );
    assert_eq!(r.bytes().await.unwrap(), &data[100..200]);
    let r = api
        .req(M::GET, &format!("/v2/app/blobs/{}", sha(&data)))
        .header("range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), &data[data.len() - 10..]);
    let r = api
        .req(M::GET, &format!("/v2/app/blobs/{}", sha(&data)))
        .header("range", "bytes=999999999-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    // Not linked into another repository.
    let r = api
        .req(M::HEAD, &format!("/v2/other/blobs/{}", sha(&data)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Wrong digest: DIGEST_INVALID and nothing stored.
    let wrong = sha(b"something else");
    let r = api
        .req(M::POST, &format!("/v2/app/blobs/uploads/?digest={wrong}"))
        .body(b"payload".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID".into())
    );
    let r = api
        .req(M::HEAD, &format!("/v2/app/blobs/{wrong}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = api
        .req(M::HEAD, &format!("/v2/app/blobs/{}", sha(b"payload")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        reg.store
            .list("blobs/")
            .await
            .unwrap()
            .iter()
            .all(|m| !m.key.ends_with(&sha(b"payload")[7..]))
    );

    // Chunked upload: POST, PATCH x2 with Content-Range, status, out-of-order chunk, PUT.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let r = api
        .req(M::POST, "/v2/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    // Regression: a chunk whose Content-Range disagrees with its length is refused unread.
    let r = api
        .req(M::PATCH, &loc)
        .header("content-range", "0-9")
        .body(b"12345".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let r = api
        .req(M::PATCH, &loc)
        .header("content-range", "0-399999")
        .header("content-type", "application/octet-stream")
        .body(big[..400_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.headers()["range"], "0-399999");
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let r = api
        .req(M::PATCH, &loc)
        .header("content-range", "0-9")
        .body(big[..10].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let r = api
        .req(M::PATCH, &loc)
        .header("content-range", "400000-899999")
        .body(big[400_000..900_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = api.req(M::GET, &loc).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["range"], "0-899999");
    // Not visible before completion.
    let r = api
        .req(M::HEAD, &format!("/v2/app/blobs/{}", sha(&big)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = api
        .req(M::PUT, &format!("{loc}?digest={}", sha(&big)))
        .body(big[900_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = api
        .req(M::GET, &format!("/v2/app/blobs/{}", sha(&big)))
        .send()
        .await
        .unwrap();
    assert!(r.bytes().await.unwrap() == big);
    // The session is gone.
    let r = api.req(M::GET, &loc).send().await.unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN".into())
    );

    // Chunked upload with a wrong final digest is discarded; cancel removes a session.
    let r = api
        .req(M::POST, "/v2/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    api.req(M::PATCH, &loc)
        .body(b"abc".to_vec())
        .send()
        .await
        .unwrap();
    let r = api
        .req(M::PUT, &format!("{loc}?digest={}", sha(b"abd")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID".into())
    );
    let r = api
        .req(M::POST, "/v2/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    api.req(M::PATCH, &loc)
        .body(b"abc".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        api.req(M::DELETE, &loc).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.req(M::GET, &loc).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert!(
        reg.store.list("_uploads/").await.unwrap().is_empty(),
        "no parts left behind"
    );

    // Empty blob by POST-then-PUT.
    let r = api
        .req(M::POST, "/v2/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let r = api
        .req(M::PUT, &format!("{loc}?digest={}", sha(b"")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // Cross-repository mount.
    let r = api
        .req(
            M::POST,
            &format!("/v2/other/blobs/uploads/?mount={}&from=app", sha(&data)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        api.req(M::HEAD, &format!("/v2/other/blobs/{}", sha(&data)))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // Unmountable: falls back to an upload session.
    let r = api
        .req(
            M::POST,
            &format!("/v2/third/blobs/uploads/?mount={}&from=nowhere", sha(&data)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    // Manifests: missing blob, invalid, then a good one by tag; GET/HEAD by tag and digest.
    let img = TestImage::small(2, "api", "amd64");
    let r = api
        .req(M::PUT, "/v2/app/manifests/v1")
        .header("content-type", OCI_MANIFEST)
        .body(img.manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN".into())
    );
    let r = api
        .req(M::PUT, "/v2/app/manifests/v1")
        .header("content-type", OCI_MANIFEST)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::BAD_REQUEST, "MANIFEST_INVALID".into())
    );
    let r = api
        .req(M::PUT, "/v2/app/manifests/v1")
        .header("content-type", OCI_MANIFEST)
        .body(vec![b' '; 5 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::BAD_REQUEST, "MANIFEST_INVALID".into())
    );
    let r = api.push_image("app", &img, "v1").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["docker-content-digest"], img.digest());
    for reference in ["v1".to_string(), img.digest()] {
        let r = api
            .req(M::GET, &format!("/v2/app/manifests/{reference}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], OCI_MANIFEST);
        assert_eq!(r.bytes().await.unwrap(), img.manifest);
        let r = api
            .req(M::HEAD, &format!("/v2/app/manifests/{reference}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers()["content-length"],
            img.manifest.len().to_string()
        );
    }
    // PUT by a digest that does not match the body.
    let r = api
        .req(M::PUT, &format!("/v2/app/manifests/{}", sha(b"x")))
        .header("content-type", OCI_MANIFEST)
        .body(img.manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID".into())
    );
    let r = api
        .req(M::GET, "/v2/app/manifests/nope")
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN".into())
    );

    // Hostile names and digests.
    for path in [
        "/v2/UP/tags/list",
        "/v2/a..b/tags/list",
        "/v2/a/../b/tags/list",
        "/v2/-a/manifests/v1",
    ] {
        let r = api.req(M::GET, path).send().await.unwrap();
        assert!(
            r.status() == StatusCode::BAD_REQUEST || r.status() == StatusCode::NOT_FOUND,
            "{path}: {}",
            r.status()
        );
    }
    let r = api.req(M::GET, "/v2/Bad/tags/list").send().await.unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::BAD_REQUEST, "NAME_INVALID".into())
    );
    let r = api
        .req(M::GET, "/v2/app/blobs/sha256:../../etc")
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID".into())
    );

    // An index of two images; a Docker manifest list too.
    let arm = TestImage::small(1, "arm", "arm64");
    assert_eq!(
        api.push_image("app", &arm, &arm.digest()).await.status(),
        StatusCode::CREATED
    );
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": img.digest(), "size": img.manifest.len(), "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": arm.digest(), "size": arm.manifest.len(), "platform": {"os": "linux", "architecture": "arm64"}},
        ]
    })).unwrap();
    let r = api
        .req(M::PUT, "/v2/app/manifests/multi")
        .header("content-type", OCI_INDEX)
        .body(index.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = api
        .req(M::PUT, "/v2/other/manifests/multi")
        .header("content-type", OCI_INDEX)
        .body(index.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN".into())
    );

    // Tags with n/last.
    for t in ["a", "b", "c"] {
        assert_eq!(
            api.req(M::PUT, &format!("/v2/app/manifests/{t}"))
                .header("content-type", OCI_MANIFEST)
                .body(img.manifest.clone())
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::CREATED
        );
    }
    let v: serde_json::Value = api
        .req(M::GET, "/v2/app/tags/list")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["tags"], serde_json::json!(["a", "b", "c", "multi", "v1"]));
    let r = api
        .req(M::GET, "/v2/app/tags/list?n=2&last=a")
        .send()
        .await
        .unwrap();
    assert!(r.headers()["link"].to_str().unwrap().contains("last=c"));
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["tags"], serde_json::json!(["b", "c"]));
    let r = api
        .req(M::GET, "/v2/nothing/tags/list")
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::NOT_FOUND, "NAME_UNKNOWN".into())
    );

    // Catalog.
    let v: serde_json::Value = api
        .req(M::GET, "/v2/_catalog")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["repositories"], serde_json::json!(["app", "other"]));
    let v: serde_json::Value = api
        .req(M::GET, "/v2/_catalog?n=1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["repositories"], serde_json::json!(["app"]));

    // Referrers: a signature-like artifact whose subject is the image.
    let sig_blob = b"signature".to_vec();
    assert_eq!(api.push_blob("app", &sig_blob).await, StatusCode::CREATED);
    let artifact = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha(&sig_blob), "size": sig_blob.len()},
        "layers": [{"mediaType": "application/octet-stream", "digest": sha(&sig_blob), "size": sig_blob.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": img.digest(), "size": img.manifest.len()},
    })).unwrap();
    let r = api
        .req(M::PUT, &format!("/v2/app/manifests/{}", sha(&artifact)))
        .header("content-type", OCI_MANIFEST)
        .body(artifact.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["oci-subject"], img.digest());
    let v: serde_json::Value = api
        .req(M::GET, &format!("/v2/app/referrers/{}", img.digest()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["manifests"][0]["digest"], sha(&artifact));
    assert_eq!(
        v["manifests"][0]["artifactType"],
        "application/vnd.example.sig"
    );
    let r = api
        .req(
            M::GET,
            &format!("/v2/app/referrers/{}?artifactType=other", img.digest()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["oci-filters-applied"], "artifactType");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["manifests"], serde_json::json!([]));

    // Blob delete.
    assert_eq!(
        api.req(M::DELETE, &format!("/v2/other/blobs/{}", sha(&data)))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        api.req(M::HEAD, &format!("/v2/other/blobs/{}", sha(&data)))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    // GC keeps everything referenced (through the index too) and removes orphans.
    let orphan = b"orphan blob".to_vec();
    assert_eq!(api.push_blob("app", &orphan).await, StatusCode::CREATED);
    // The amd64 image is only referenced through the index once its tags go.
    for t in ["a", "b", "c", "v1"] {
        assert_eq!(
            api.req(M::DELETE, &format!("/v2/app/manifests/{t}"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::ACCEPTED
        );
    }
    let registry = workflow_registry_sync::registry::Registry::new(reg.store.clone());
    let report = registry
        .garbage_collect(Duration::ZERO, false)
        .await
        .unwrap();
    // The orphan and the blobs pushed above without a manifest (300 kB, 1 MB, empty) go.
    assert_eq!(
        (report.removed, report.bytes_removed),
        (4, 1_300_011),
        "{report:?}"
    );
    assert_eq!(
        api.req(M::HEAD, &format!("/v2/app/blobs/{}", sha(&orphan)))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    for l in img.layers.iter().chain(arm.layers.iter()) {
        assert_eq!(
            api.req(M::HEAD, &format!("/v2/app/blobs/{}", sha(l)))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    }
    let r = api
        .req(M::GET, "/v2/app/manifests/multi")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Regression (distribution's GC bug): an image reachable only through an index keeps its
    // blobs, even after its own revision is deleted.
    let r = api
        .req(M::DELETE, &format!("/v2/app/manifests/{}", arm.digest()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let report = registry
        .garbage_collect(Duration::ZERO, false)
        .await
        .unwrap();
    assert_eq!(report.removed, 0, "{report:?}");
    for b in arm.layers.iter().chain([&arm.config]) {
        let r = api
            .req(M::HEAD, &format!("/v2/app/blobs/{}", sha(b)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }

    // Delete by digest removes the manifest and tags pointing at it.
    assert_eq!(
        api.req(M::DELETE, &format!("/v2/app/manifests/{}", sha(&index)))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        api.req(M::GET, "/v2/app/manifests/multi")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    // Now each image's only reference is its own revision; after deleting them, GC frees them.
    for d in [img.digest()] {
        assert_eq!(
            api.req(M::DELETE, &format!("/v2/app/manifests/{d}"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::ACCEPTED
        );
    }
    registry
        .garbage_collect(Duration::ZERO, false)
        .await
        .unwrap();
    assert_eq!(
        api.req(M::HEAD, &format!("/v2/app/blobs/{}", sha(&arm.layers[0])))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.req(M::HEAD, &format!("/v2/app/blobs/{}", sha(&img.layers[0])))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    // The artifact still names its blob.
    assert_eq!(
        api.req(M::HEAD, &format!("/v2/app/blobs/{}", sha(&sig_blob)))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    reg.stop().await;
}

#[tokio::test]
async fn distribution_api_memory_store() {
    api_suite(Backend::Memory).await;
}

#[tokio::test]
async fn distribution_api_fs_store() {
    api_suite(Backend::Fs).await;
}

#[tokio::test]
async fn distribution_api_s3_store() {
    api_suite(Backend::S3).await;
}

#[tokio::test]
async fn auth_ties_repositories_to_users() {
    let store = std::sync::Arc::new(workflow_registry_sync::store::memory::MemoryStore::new());
    let auth = Authenticator::new(
        Some(Box::new(
            StaticAccess::new()
                .user("alice", "tok-a", &[], &["api"])
                .user("bob", "tok-b", &["api"], &[]),
        )),
        Some(("node".into(), "node-pw".into())),
    );
    let reg = start(store, auth).await;
    let mk = |u: Option<(&str, &str)>| Api {
        http: reqwest::Client::new(),
        base: reg.base(),
        user: u.map(|(a, b)| (a.to_string(), b.to_string())),
    };
    use reqwest::Method as M;

    let anon = mk(None);
    let r = anon.req(M::GET, "/v2/").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(code(r).await.1, "UNAUTHORIZED");

    let alice = mk(Some(("alice", "tok-a")));
    assert_eq!(
        alice.req(M::GET, "/v2/").send().await.unwrap().status(),
        StatusCode::OK
    );
    let img = TestImage::small(1, "auth", "amd64");
    assert_eq!(
        alice.push_image("api", &img, "v1").await.status(),
        StatusCode::CREATED
    );
    // Alice may not push elsewhere.
    let r = alice
        .req(M::POST, "/v2/web/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (StatusCode::FORBIDDEN, "DENIED".into()));

    let bob = mk(Some(("bob", "tok-b")));
    assert_eq!(
        bob.req(M::GET, "/v2/api/manifests/v1")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let r = bob
        .req(M::DELETE, "/v2/api/manifests/v1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let wrong = mk(Some(("bob", "nope")));
    assert_eq!(
        wrong
            .req(M::GET, "/v2/api/manifests/v1")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let node = mk(Some(("node", "node-pw")));
    assert_eq!(
        node.req(M::GET, "/v2/api/manifests/v1")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        node.req(M::POST, "/v2/api/blobs/uploads/")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let v: serde_json::Value = bob
        .req(M::GET, "/v2/_catalog")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["repositories"], serde_json::json!(["api"]));
    reg.stop().await;
}
