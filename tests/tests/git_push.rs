//! `git push` to the builder end to end: the real git client over smart HTTP, the real
//! controller (SQLite) recording builds and releases, the builder's pre-receive hook.

use std::time::Duration;

use workflow_tests::git::{agit, checkout, commit, git, head, start, start_with};

#[tokio::test]
async fn http_push_builds_the_deploy_branch_and_releases() {
    let p = start(Duration::from_secs(5), Duration::ZERO).await;
    let alice = p.user("alice").await;
    p.create_app(&alice, "hello").await;
    let src = checkout(&p.home, p.dir.path(), "hello");
    let remote = p.remote("alice", &alice, "hello");

    let (ok, out) = agit(&p.home, &src, &["push", &remote, "main"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("remote: -----> Procfile app detected"),
        "{out}"
    );
    assert!(
        out.contains("Launching... done, hello:v2 deployed"),
        "{out}"
    );
    assert_eq!(p.releases("hello", &alice).await, 2);

    // Another branch is stored, not built.
    assert!(git(&p.home, &src, &["checkout", "-q", "-b", "dev"]).0);
    commit(&p.home, &src, "on dev");
    let (ok, out) = agit(&p.home, &src, &["push", &remote, "dev"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("branch dev stored, not built"), "{out}");
    assert_eq!(p.releases("hello", &alice).await, 2);

    // A failed build rejects the push and leaves main where it was.
    assert!(git(&p.home, &src, &["checkout", "-q", "main"]).0);
    let before = head(&p.home, &src);
    std::fs::write(src.join("FAIL"), "").unwrap();
    commit(&p.home, &src, "broken");
    let (ok, out) = agit(&p.home, &src, &["push", &remote, "main"]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("compile: error in main.rs"), "{out}");
    assert!(out.contains("build of hello failed"), "{out}");
    let (_, refs) = agit(&p.home, &src, &["ls-remote", &remote, "refs/heads/main"]).await;
    assert!(refs.starts_with(&before), "main unchanged: {refs}");
    assert_eq!(p.releases("hello", &alice).await, 2);
    // ... and is recorded: state, reason and the output the pusher saw (deis builds:info).
    let builds = p
        .rest(
            reqwest::Method::GET,
            "/v2/apps/hello/builds/",
            Some(&alice),
            None,
        )
        .await;
    let failed = &builds["results"][0];
    assert_eq!(
        (failed["state"].as_str(), failed["kind"].as_str()),
        (Some("failed"), Some("buildpack")),
        "{builds}"
    );
    let uuid = failed["uuid"].as_str().unwrap();
    let shown = p
        .rest(
            reqwest::Method::GET,
            &format!("/v2/apps/hello/builds/{uuid}/"),
            Some(&alice),
            None,
        )
        .await;
    assert!(
        shown["log"]
            .as_str()
            .unwrap()
            .contains("compile: error in main.rs"),
        "{shown}"
    );
    assert!(
        shown["error"]
            .as_str()
            .unwrap()
            .contains("exited with status 1"),
        "{shown}"
    );
    assert_eq!(builds["results"][1]["state"], "succeeded", "{builds}");

    // Deleting the deploy branch is refused with the reason.
    let (ok, out) = agit(&p.home, &src, &["push", &remote, ":main"]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("deleting main, the deploy branch of hello, is refused"),
        "{out}"
    );

    // Fetching back works (upload-pack).
    let (ok, out) = agit(&p.home, p.dir.path(), &["clone", "-q", &remote, "cloned"]).await;
    assert!(ok, "{out}");
    assert_eq!(head(&p.home, &p.dir.path().join("cloned")), before);
    p.stop.cancel();
}

#[tokio::test]
async fn http_push_refuses_strangers_before_reading_the_pack() {
    let p = start(Duration::from_secs(5), Duration::ZERO).await;
    let alice = p.user("alice").await;
    let bob = p.user("bob").await;
    p.create_app(&alice, "hello").await;
    let src = checkout(&p.home, p.dir.path(), "hello");

    // Bob may not push to alice's app: the message names the app.
    let (ok, out) = agit(
        &p.home,
        &src,
        &["push", &p.remote("bob", &bob, "hello"), "main"],
    )
    .await;
    assert!(!ok, "{out}");
    assert!(out.contains("bob may not push to hello"), "{out}");
    // A wrong token: 401 (git would ask for credentials; here it may not).
    let (ok, out) = agit(
        &p.home,
        &src,
        &["push", &p.remote("alice", "nope", "hello"), "main"],
    )
    .await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("401") || out.contains("Authentication failed"),
        "{out}"
    );
    // No credentials at all: the server asks for them.
    let res = p
        .http
        .get(format!(
            "{}/hello.git/info/refs?service=git-receive-pack",
            p.git_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=")
    );
    assert_eq!(p.releases("hello", &alice).await, 1);
    p.stop.cancel();
}

#[tokio::test]
async fn second_push_to_a_busy_app_waits_then_is_refused() {
    let p = start(Duration::from_millis(500), Duration::ZERO).await;
    let alice = p.user("alice").await;
    p.create_app(&alice, "hello").await;
    let remote = p.remote("alice", &alice, "hello");
    let slow = checkout(&p.home, p.dir.path(), "slow");
    std::fs::write(slow.join("SLOW"), "").unwrap();
    commit(&p.home, &slow, "slow");
    let other = checkout(&p.home, p.dir.path(), "other");

    let first = tokio::spawn({
        let (home, slow, remote) = (p.home.clone(), slow.clone(), remote.clone());
        async move { agit(&home, &slow, &["push", &remote, "main"]).await }
    });
    p.builder.started.notified().await;
    let (ok, out) = agit(&p.home, &other, &["push", "--force", &remote, "main"]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("another push to hello is being built; waiting"),
        "{out}"
    );
    assert!(out.contains("still building"), "{out}");
    p.builder.gate.notify_one();
    let (ok, out) = first.await.unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("hello:v2 deployed"), "{out}");
    p.stop.cancel();
}

/// Guards issue 8's "no change": a push whose image digest equals the current release's
/// says so and makes no release; the branch still moves.
#[tokio::test]
async fn a_push_building_the_running_image_makes_no_release() {
    let p = start(Duration::from_secs(5), Duration::ZERO).await;
    let alice = p.user("alice").await;
    p.create_app(&alice, "hello").await;
    let src = checkout(&p.home, p.dir.path(), "hello");
    std::fs::write(src.join("SAME"), "").unwrap();
    commit(&p.home, &src, "reproducible");
    let remote = p.remote("alice", &alice, "hello");
    let (ok, out) = agit(&p.home, &src, &["push", &remote, "main"]).await;
    assert!(ok && out.contains("hello:v2 deployed"), "{out}");
    assert!(
        git(
            &p.home,
            &src,
            &["commit", "-q", "--allow-empty", "-m", "again"]
        )
        .0
    );
    let (ok, out) = agit(&p.home, &src, &["push", &remote, "main"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("No change: hello:v2 already runs this image (sha256:5555"),
        "{out}"
    );
    assert_eq!(p.releases("hello", &alice).await, 2);
    let (_, refs) = agit(&p.home, &src, &["ls-remote", &remote, "refs/heads/main"]).await;
    assert!(refs.starts_with(&head(&p.home, &src)), "main moved: {refs}");
    p.stop.cancel();
}

/// Guards `max_repo_bytes`: a push that would grow the repository over the limit is refused
/// with the sizes, the branch stays where it was, and the builder keeps serving pushes.
#[tokio::test]
async fn a_push_over_the_repository_size_limit_is_refused() {
    let p = start_with(Duration::ZERO, |c| c.max_repo_bytes = 400 * 1024).await;
    let alice = p.user("alice").await;
    p.create_app(&alice, "hello").await;
    let src = checkout(&p.home, p.dir.path(), "hello");
    let remote = p.remote("alice", &alice, "hello");
    let (ok, out) = agit(&p.home, &src, &["push", &remote, "main"]).await;
    assert!(ok, "{out}");
    let before = head(&p.home, &src);

    // Bytes git cannot compress.
    let noise = |seed: u64, len: usize| -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    // One pack over the limit: git itself stops reading it (receive.maxInputSize).
    std::fs::write(src.join("big.bin"), noise(1, 1 << 20)).unwrap();
    commit(&p.home, &src, "big");
    let (ok, out) = agit(&p.home, &src, &["push", &remote, "main"]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("pack exceeds maximum allowed size"), "{out}");
    let (_, refs) = agit(&p.home, &src, &["ls-remote", &remote, "refs/heads/main"]).await;
    assert!(refs.starts_with(&before), "main unchanged: {refs}");
    assert!(git(&p.home, &src, &["reset", "-q", "--hard", "HEAD~1"]).0);

    // Packs under the limit that would grow the repository over it: the builder refuses
    // with the sizes.
    std::fs::write(src.join("part1.bin"), noise(2, 250 * 1024)).unwrap();
    commit(&p.home, &src, "part 1");
    let (ok, out) = agit(&p.home, &src, &["push", &remote, "main"]).await;
    assert!(ok, "{out}");
    let before = head(&p.home, &src);
    std::fs::write(src.join("part2.bin"), noise(3, 250 * 1024)).unwrap();
    commit(&p.home, &src, "part 2");
    let (ok, out) = agit(&p.home, &src, &["push", &remote, "main"]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("over the limit of 409600 bytes: remove large files from the history"),
        "{out}"
    );
    let (_, refs) = agit(&p.home, &src, &["ls-remote", &remote, "refs/heads/main"]).await;
    assert!(refs.starts_with(&before), "main unchanged: {refs}");
    assert_eq!(p.releases("hello", &alice).await, 3);

    // The builder keeps serving: the same push without the blob goes through.
    assert!(git(&p.home, &src, &["reset", "-q", "--hard", "HEAD~1"]).0);
    commit(&p.home, &src, "small");
    let (ok, out) = agit(&p.home, &src, &["push", &remote, "main"]).await;
    assert!(ok, "{out}");
    assert_eq!(p.releases("hello", &alice).await, 4);
    p.stop.cancel();
}
