//! One contract suite for the metadata store, run against SQLite and PostgreSQL:
//! every domain operation must behave the same on both.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use workflow_controller::Error;
use workflow_controller::domain::{
    BuildOutcome, ConfigPatch, Controller, NewBuild, RegisterRequest, RegistryAction,
};
use workflow_controller::model::{BuildKind, PageRequest, User};
use workflow_controller::runtime::{
    Capabilities, Desired, Process, Restart, Rollout, RunOutput, Runtime,
};
use workflow_controller::store::{Store, StoreError};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDLjnHVq5yBmHIwRD1OElJWUVPy0ShFQLWR2pbzq6chE alice@laptop";

async fn user(ctl: &Controller, name: &str) -> (User, String) {
    let u = ctl
        .register(
            None,
            RegisterRequest {
                username: name.into(),
                password: "s3cret".into(),
                email: format!("{name}@example.com"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let token = ctl.login(name, "s3cret").await.unwrap();
    (u, token)
}

fn set(k: &str, v: &str) -> ConfigPatch {
    ConfigPatch::values([(k.to_string(), Some(v.to_string()))].into())
}

fn unset(k: &str) -> ConfigPatch {
    ConfigPatch::values([(k.to_string(), None)].into())
}

/// A runtime whose rollouts fail while `fail` is set.
#[derive(Debug, Default)]
struct Flaky {
    fail: AtomicBool,
}

#[async_trait::async_trait]
impl Runtime for Flaky {
    async fn apply(&self, d: &Desired) -> workflow_controller::runtime::Result<Rollout> {
        if self.fail.load(Ordering::SeqCst) {
            return Ok(Rollout::Failed(format!(
                "v{} never became ready",
                d.version
            )));
        }
        Ok(Rollout::Ready)
    }
    async fn destroy(&self, _app: &str, _id: &str) -> workflow_controller::runtime::Result<()> {
        Ok(())
    }
    async fn processes(&self, _app: &str) -> workflow_controller::runtime::Result<Vec<Process>> {
        Ok(vec![])
    }
    async fn restart(
        &self,
        _app: &str,
        _which: &Restart,
    ) -> workflow_controller::runtime::Result<Vec<Process>> {
        Ok(vec![])
    }
    async fn run(
        &self,
        _d: &Desired,
        _command: &str,
        _timeout: std::time::Duration,
    ) -> workflow_controller::runtime::Result<RunOutput> {
        Err(workflow_controller::runtime::Error::Invalid(
            "no one-offs".into(),
        ))
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            memory_limits: false,
            cpu_limits: false,
        }
    }
}

async fn users_and_tokens(store: Store) {
    let ctl = common::controller(store);
    let (alice, token) = user(&ctl, "alice").await;
    assert!(alice.is_superuser, "the first user is the administrator");
    let (bob, _) = user(&ctl, "bob").await;
    assert!(!bob.is_superuser);
    assert_eq!(ctl.authenticate(&token).await.unwrap().username, "alice");
    let dup = ctl
        .register(
            None,
            RegisterRequest {
                username: "alice".into(),
                password: "x".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(dup.to_string().contains("already exists"), "{dup}");
    assert!(matches!(
        ctl.login("alice", "wrong").await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        ctl.login("nobody", "x").await,
        Err(Error::Invalid { .. })
    ));
    let fresh = ctl
        .regenerate_token(&alice, None, false)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(ctl.authenticate(&token).await, Err(Error::Unauthorized(_))),
        "regenerate revokes old tokens"
    );
    assert_eq!(ctl.authenticate(&fresh).await.unwrap().id, alice.id);
    ctl.passwd(&alice, None, "s3cret", "n3w").await.unwrap();
    assert!(ctl.login("alice", "n3w").await.is_ok());
    assert!(matches!(
        ctl.passwd(&bob, Some("alice"), "", "x").await,
        Err(Error::Forbidden(_))
    ));
    ctl.cancel(&bob, None).await.unwrap();
    assert!(ctl.login("bob", "s3cret").await.is_err());
}

async fn release_ledger(store: Store) {
    let ctl = common::controller(store);
    let (alice, _) = user(&ctl, "alice").await;
    let app = ctl.create_app(&alice, Some("hello")).await.unwrap();
    assert_eq!(app.id, "hello");
    let v2 = ctl
        .set_config(&alice, "hello", set("GREETING", "hi"))
        .await
        .unwrap();
    assert_eq!(v2.release.version, 2);
    assert_eq!(v2.release.summary, "alice added GREETING");
    let nothing = ctl
        .set_config(&alice, "hello", set("GREETING", "hi"))
        .await
        .unwrap_err();
    assert!(
        matches!(nothing, Error::Conflict(ref m) if m.contains("changed nothing")),
        "{nothing}"
    );
    let missing = ctl
        .set_config(&alice, "hello", unset("NOPE"))
        .await
        .unwrap_err();
    assert!(matches!(missing, Error::Unprocessable(_)), "{missing}");
    // v1 has no build: Deis's exact text, by default and when named.
    for v in [None, Some(1)] {
        let e = ctl.rollback(&alice, "hello", v).await.unwrap_err();
        assert!(
            matches!(e, Error::BadRequest(ref m) if m == "Cannot roll back to initial release."),
            "{v:?}: {e}"
        );
    }
    let v3 = ctl
        .set_config(&alice, "hello", set("OTHER", "x"))
        .await
        .unwrap();
    assert_eq!(v3.release.summary, "alice added OTHER");
    let v4 = ctl.rollback(&alice, "hello", None).await.unwrap();
    assert_eq!(
        (v4.version, v4.summary.as_str()),
        (4, "alice rolled back to v2")
    );
    assert!(
        !ctl.get_config(&alice, "hello")
            .await
            .unwrap()
            .values
            .contains_key("OTHER"),
        "rollback restores v2's config"
    );
    let v5 = ctl.rollback(&alice, "hello", Some(3)).await.unwrap();
    assert_eq!(v5.summary, "alice rolled back to v3");
    assert_eq!(
        ctl.get_config(&alice, "hello").await.unwrap().values["GREETING"],
        "hi"
    );
    let v6 = ctl
        .set_config(&alice, "hello", unset("GREETING"))
        .await
        .unwrap();
    assert_eq!(v6.release.summary, "alice deleted GREETING");
    let page = ctl
        .list_releases(&alice, "hello", PageRequest::new(2, 0))
        .await
        .unwrap();
    assert_eq!(page.count, 6);
    assert_eq!(
        page.results.iter().map(|r| r.version).collect::<Vec<_>>(),
        vec![6, 5],
        "newest first"
    );
    let page = ctl
        .list_releases(&alice, "hello", PageRequest::new(2, 5))
        .await
        .unwrap();
    assert_eq!(
        page.results.iter().map(|r| r.version).collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(
        ctl.get_release(&alice, "hello", 1).await.unwrap().summary,
        "alice created initial release"
    );
    assert!(matches!(
        ctl.get_release(&alice, "hello", 99).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        ctl.rollback(&alice, "hello", Some(99)).await,
        Err(Error::NotFound(_))
    ));
    // An app at v1 has nothing to roll back to.
    ctl.create_app(&alice, Some("fresh")).await.unwrap();
    assert!(matches!(
        ctl.rollback(&alice, "fresh", None).await,
        Err(Error::BadRequest(_))
    ));
}

async fn builds_and_scale(store: Store) {
    let ctl = common::controller(store);
    let (alice, _) = user(&ctl, "alice").await;
    ctl.create_app(&alice, Some("api")).await.unwrap();
    let no_build = ctl
        .scale(&alice, "api", [("web".to_string(), 2)].into())
        .await
        .unwrap_err();
    assert!(matches!(no_build, Error::BadRequest(_)), "{no_build}");
    let (b, r) = ctl
        .create_build(
            &alice,
            "api",
            NewBuild {
                image: "busybox:1.36".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(r.summary, "alice deployed busybox:1.36");
    assert_eq!(r.build.as_deref(), Some(b.uuid.as_str()));
    assert_eq!(
        ctl.get_app(&alice, "api").await.unwrap().structure,
        BTreeMap::from([("cmd".to_string(), 1)])
    );
    let s = ctl
        .scale(&alice, "api", [("cmd".to_string(), 3)].into())
        .await
        .unwrap();
    assert_eq!(s["cmd"], 3);
    let wrong = ctl
        .scale(&alice, "api", [("web".to_string(), 1)].into())
        .await
        .unwrap_err();
    assert!(wrong.to_string().contains("does not exist"), "{wrong}");
    let procfile = BTreeMap::from([
        ("web".to_string(), "./server".to_string()),
        ("worker".to_string(), "./work".to_string()),
    ]);
    let (_, r) = ctl
        .create_build(
            &alice,
            "api",
            NewBuild {
                image: "registry.local/api:2".into(),
                procfile,
                sha: "0123456789abcdef".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(r.summary, "alice deployed 0123456");
    let st = ctl.get_app(&alice, "api").await.unwrap().structure;
    assert_eq!(
        st,
        BTreeMap::from([("web".to_string(), 0), ("worker".to_string(), 0)]),
        "cmd is gone; new types start at 0 once something ran"
    );
    let builds = ctl
        .list_builds(&alice, "api", PageRequest::default())
        .await
        .unwrap();
    assert_eq!(builds.count, 2);
    assert_eq!(
        builds.results[0].image, "registry.local/api:2",
        "newest first"
    );
    let bad = ctl
        .create_build(
            &alice,
            "api",
            NewBuild {
                image: "Not An Image".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(bad, Error::Invalid { field: "image", .. }),
        "{bad}"
    );
}

async fn permissions(store: Store) {
    let ctl = common::controller(store);
    let (alice, _) = user(&ctl, "alice").await;
    let (bob, bob_token) = user(&ctl, "bob").await;
    let (carol, _) = user(&ctl, "carol").await;
    ctl.create_app(&bob, Some("bobs")).await.unwrap();
    assert!(matches!(
        ctl.get_app(&carol, "bobs").await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        ctl.set_config(&carol, "bobs", set("X", "1")).await,
        Err(Error::Forbidden(_))
    ));
    assert_eq!(
        ctl.list_apps(&carol, PageRequest::default())
            .await
            .unwrap()
            .count,
        0
    );
    assert_eq!(
        ctl.list_apps(&alice, PageRequest::default())
            .await
            .unwrap()
            .count,
        1,
        "admins see every app"
    );
    ctl.grant_perm(&bob, "bobs", "carol").await.unwrap();
    assert!(matches!(
        ctl.grant_perm(&bob, "bobs", "carol").await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        ctl.grant_perm(&bob, "bobs", "nobody").await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        ctl.list_perms(&bob, "bobs").await.unwrap(),
        vec!["carol".to_string()]
    );
    ctl.set_config(&carol, "bobs", set("X", "1")).await.unwrap();
    assert!(
        matches!(
            ctl.destroy_app(&carol, "bobs").await,
            Err(Error::Forbidden(_))
        ),
        "collaborators cannot destroy"
    );
    assert!(matches!(
        ctl.grant_perm(&carol, "bobs", "alice").await,
        Err(Error::Forbidden(_))
    ));
    ctl.revoke_perm(&bob, "bobs", "carol").await.unwrap();
    assert!(matches!(
        ctl.get_app(&carol, "bobs").await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        ctl.get_app(&carol, "ghost").await,
        Err(Error::NotFound(_))
    ));
    ctl.transfer_app(&bob, "bobs", "carol").await.unwrap();
    assert_eq!(ctl.get_app(&carol, "bobs").await.unwrap().owner, "carol");
    assert!(
        matches!(ctl.cancel(&carol, None).await, Err(Error::Conflict(_))),
        "owners of apps cannot leave"
    );
    ctl.set_admin(&alice, "bob", true).await.unwrap();
    let bob = ctl.authenticate(&bob_token).await.unwrap();
    assert!(bob.is_superuser);
    assert_eq!(
        ctl.list_admins(&alice, PageRequest::default())
            .await
            .unwrap()
            .results,
        vec!["alice", "bob"]
    );
    ctl.set_admin(&bob, "alice", false).await.unwrap();
    assert!(
        matches!(
            ctl.set_admin(&bob, "bob", false).await,
            Err(Error::Conflict(_))
        ),
        "the last admin stays"
    );
    ctl.destroy_app(&carol, "bobs").await.unwrap();
    assert!(matches!(
        ctl.get_app(&carol, "bobs").await,
        Err(Error::NotFound(_))
    ));
}

async fn keys_and_hooks(store: Store) {
    let ctl = common::controller(store);
    let (alice, token) = user(&ctl, "alice").await;
    let (bob, bob_token) = user(&ctl, "bob").await;
    let k = ctl.add_key(&alice, "", KEY).await.unwrap();
    assert_eq!(k.id, "alice@laptop");
    let dup = ctl.add_key(&bob, "other", KEY).await.unwrap_err();
    assert!(dup.to_string().contains("already in use"), "{dup}");
    assert!(matches!(
        ctl.add_key(&alice, "x", "ssh-rsa nope").await,
        Err(Error::Invalid { .. })
    ));
    ctl.create_app(&alice, Some("web")).await.unwrap();
    let ua = ctl.user_from_key(&k.fingerprint).await.unwrap();
    assert_eq!(
        (ua.username.as_str(), ua.apps.clone()),
        ("alice", vec!["web".to_string()])
    );
    let sha = workflow_controller::sshkey::parse(KEY).unwrap().sha256;
    assert_eq!(ctl.user_from_key(&sha).await.unwrap().username, "alice");
    assert!(matches!(
        ctl.user_from_key("00:11").await,
        Err(Error::NotFound(_))
    ));
    let pushed = |digit: &str, log: &str| NewBuild {
        image: format!("127.0.0.1:5000/web@sha256:{}", digit.repeat(64)),
        sha: "ab12".into(),
        kind: Some(BuildKind::Buildpack),
        log: log.into(),
        ..Default::default()
    };
    let BuildOutcome::Released(done) = ctl
        .hook_build("alice", "web", pushed("0", "-----> built\n"), None)
        .await
        .unwrap()
    else {
        panic!("a first build is released")
    };
    let (b, r) = *done;
    assert_eq!(r.version, 2);
    assert_eq!(
        (b.kind.as_str(), b.state.as_str(), b.digest.len()),
        ("buildpack", "succeeded", 71)
    );
    // The same image again makes no release (issue 8: "no change").
    match ctl
        .hook_build("alice", "web", pushed("0", ""), None)
        .await
        .unwrap()
    {
        BuildOutcome::Unchanged(r) => assert_eq!(r.version, 2),
        other => panic!("expected no change, got {other:?}"),
    }
    // A failed build is recorded with its output and reason, and releases nothing.
    let BuildOutcome::Failed(f) = ctl
        .hook_build(
            "alice",
            "web",
            NewBuild {
                sha: "cd34".into(),
                kind: Some(BuildKind::Buildpack),
                log: "-----> compiling\nboom\n".into(),
                ..Default::default()
            },
            Some("build of web failed: compile exited with 1".into()),
        )
        .await
        .unwrap()
    else {
        panic!("a failure is recorded as failed")
    };
    assert_eq!((f.state.as_str(), f.image.as_str()), ("failed", ""));
    let shown = ctl.get_build(&alice, "web", &f.uuid).await.unwrap();
    assert_eq!(shown.log.as_deref(), Some("-----> compiling\nboom\n"));
    assert!(shown.error.contains("exited with 1"), "{shown:?}");
    let page = ctl
        .list_builds(&alice, "web", PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.count, 2);
    assert_eq!(page.results[0].state, "failed");
    assert_eq!(
        ctl.list_releases(&alice, "web", PageRequest::default())
            .await
            .unwrap()
            .count,
        2,
        "neither the unchanged nor the failed build made a release"
    );
    ctl.check_registry_access("alice", &token, "web", RegistryAction::Push)
        .await
        .unwrap();
    assert!(
        ctl.check_registry_access("bob", &bob_token, "web", RegistryAction::Pull)
            .await
            .is_err()
    );
    assert!(
        ctl.check_registry_access("alice", &bob_token, "web", RegistryAction::Pull)
            .await
            .is_err(),
        "a token proves only its own user"
    );
    assert!(ctl.check_builder_key("wrong").is_err());
    ctl.check_builder_key(common::BUILDER_KEY).unwrap();
    ctl.remove_key(&alice, "alice@laptop").await.unwrap();
    assert!(matches!(
        ctl.remove_key(&alice, "alice@laptop").await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        ctl.list_keys(&bob, PageRequest::default())
            .await
            .unwrap()
            .count,
        0
    );
}

async fn failed_rollout_keeps_previous(store: Store) {
    let runtime = Arc::new(Flaky::default());
    let ctl = common::controller_with(store, runtime.clone());
    let (alice, _) = user(&ctl, "alice").await;
    ctl.create_app(&alice, Some("app")).await.unwrap();
    ctl.set_config(&alice, "app", set("A", "1")).await.unwrap();
    common::settle(&ctl, &alice, "app").await;
    assert_eq!(
        ctl.get_release(&alice, "app", 2).await.unwrap().state,
        "deployed"
    );
    runtime.fail.store(true, Ordering::SeqCst);
    // The handler records the release and answers; the loop's rollout fails it.
    let v3 = ctl.set_config(&alice, "app", set("A", "2")).await.unwrap();
    assert_eq!(v3.release.state, "pending");
    common::settle(&ctl, &alice, "app").await;
    let v3 = ctl.get_release(&alice, "app", 3).await.unwrap();
    assert!(
        v3.failed && v3.exception.contains("never became ready"),
        "{v3:?}"
    );
    assert_eq!(v3.state, "failed");
    assert_eq!(
        ctl.get_config(&alice, "app").await.unwrap().values["A"],
        "2",
        "the config is what the user set, failed or not: the next change builds on it"
    );
    assert!(
        matches!(
            ctl.rollback(&alice, "app", Some(3)).await,
            Err(Error::BadRequest(_))
        ),
        "failed releases cannot be rolled back to"
    );
    runtime.fail.store(false, Ordering::SeqCst);
    // Setting the failed value again is a retry (it changes what runs), not "changed nothing".
    let v4 = ctl.set_config(&alice, "app", set("A", "2")).await.unwrap();
    assert_eq!(v4.release.version, 4);
    assert_eq!(v4.release.summary, "alice changed A");
    // The default rollback skips the failed v3 and goes to v2.
    assert_eq!(
        ctl.rollback(&alice, "app", None).await.unwrap().summary,
        "alice rolled back to v2"
    );
}

/// Guards the recovery from a bad config change: after its release failed, `config:unset`
/// of the key it set works (it answered 422), and so does a corrected `config:set`.
async fn failed_config_change_can_be_undone(store: Store) {
    let runtime = Arc::new(Flaky::default());
    let ctl = common::controller_with(store, runtime.clone());
    let (alice, _) = user(&ctl, "alice").await;
    ctl.create_app(&alice, Some("app")).await.unwrap();
    ctl.set_config(&alice, "app", set("A", "1")).await.unwrap();
    common::settle(&ctl, &alice, "app").await;
    runtime.fail.store(true, Ordering::SeqCst);
    ctl.set_config(&alice, "app", set("BAD", "1"))
        .await
        .unwrap();
    common::settle(&ctl, &alice, "app").await;
    ctl.set_config(&alice, "app", set("WORSE", "1"))
        .await
        .unwrap();
    common::settle(&ctl, &alice, "app").await;
    for v in [3, 4] {
        assert_eq!(
            ctl.get_release(&alice, "app", v).await.unwrap().state,
            "failed"
        );
    }
    let config = ctl.get_config(&alice, "app").await.unwrap();
    assert_eq!(
        (config.values.get("BAD"), config.values.get("WORSE")),
        (Some(&"1".to_string()), Some(&"1".to_string())),
        "the failed changes are the config the next one builds on"
    );
    runtime.fail.store(false, Ordering::SeqCst);
    let v5 = ctl.set_config(&alice, "app", unset("WORSE")).await.unwrap();
    assert_eq!(v5.release.version, 5);
    assert_eq!(v5.release.summary, "alice added BAD");
    common::settle(&ctl, &alice, "app").await;
    assert_eq!(
        ctl.get_release(&alice, "app", 5).await.unwrap().state,
        "deployed"
    );
    let v6 = ctl.set_config(&alice, "app", unset("BAD")).await.unwrap();
    assert_eq!(v6.release.summary, "alice deleted BAD");
    assert!(
        matches!(
            ctl.set_config(&alice, "app", unset("BAD")).await,
            Err(Error::Unprocessable(_))
        ),
        "unsetting a key that is not set is still refused"
    );
    assert!(
        matches!(
            ctl.set_config(&alice, "app", set("A", "1")).await,
            Err(Error::Conflict(_))
        ),
        "a change that changes nothing is still refused"
    );
    common::settle(&ctl, &alice, "app").await;
    let config = ctl.get_config(&alice, "app").await.unwrap();
    assert_eq!(config.values.keys().collect::<Vec<_>>(), vec!["A"]);
}

async fn concurrent_changes_get_distinct_versions(store: Store) {
    let ctl = common::controller(store);
    let (alice, _) = user(&ctl, "alice").await;
    ctl.create_app(&alice, Some("busy")).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (ctl, alice) = (ctl.clone(), alice.clone());
        tasks.push(tokio::spawn(async move {
            ctl.set_config(&alice, "busy", set(&format!("K{i}"), "v"))
                .await
                .map(|c| c.release.version)
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap().unwrap());
    }
    versions.sort();
    assert_eq!(versions, (2..=11).collect::<Vec<_>>());
    assert_eq!(
        ctl.get_config(&alice, "busy").await.unwrap().values.len(),
        10,
        "no change lost"
    );
}

/// A malformed JSON column is an error that names the table and column, not a silent default.
async fn malformed_json_is_an_error(store: Store) {
    let ctl = common::controller(store.clone());
    let (alice, _) = user(&ctl, "alice").await;
    ctl.create_app(&alice, Some("hello")).await.unwrap();
    store
        .write(|c| {
            c.execute(
                "UPDATE apps SET structure = $1 WHERE name = $2",
                &["{\"web\": 1".into(), "hello".into()],
            )
        })
        .await
        .unwrap();
    let err = ctl.get_app(&alice, "hello").await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Store(StoreError::Decode {
                column: "apps.structure",
                ..
            })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("apps.structure"), "{err}");
    assert_eq!(err.http_status(), 500);
}

/// Guards issue 10: config values are stored once by content and read back exactly, through
/// changes, builds and rollbacks; destroying the app collects the values only it used.
async fn config_values_stored_once(store: Store) {
    let ctl = common::controller(store.clone());
    let (alice, _) = user(&ctl, "alice").await;
    ctl.create_app(&alice, Some("hello")).await.unwrap();
    ctl.create_app(&alice, Some("other")).await.unwrap();
    let big = "x".repeat(60_000);
    ctl.set_config(&alice, "hello", set("BIG", &big))
        .await
        .unwrap();
    ctl.set_config(&alice, "other", set("BIG", &big))
        .await
        .unwrap();
    for v in ["1", "2", "3"] {
        ctl.set_config(&alice, "hello", set("STEP", v))
            .await
            .unwrap();
    }
    ctl.create_build(
        &alice,
        "hello",
        NewBuild {
            image: "registry.example.com/hello:1".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let count_big = |store: Store| async move {
        store
            .read(|c| {
                Ok::<_, StoreError>(
                    c.query(
                        "SELECT COUNT(*) FROM config_values WHERE value = $1",
                        &["x".repeat(60_000).into()],
                    )?[0]
                        .int(0),
                )
            })
            .await
            .unwrap()
    };
    assert_eq!(
        count_big(store.clone()).await,
        1,
        "stored once across releases and apps"
    );
    let config = ctl.get_config(&alice, "hello").await.unwrap();
    assert_eq!(config.values.get("BIG"), Some(&big));
    assert_eq!(config.values.get("STEP").map(String::as_str), Some("3"));
    // Rolling back to v3 (BIG + STEP=1) brings that config back exactly.
    ctl.rollback(&alice, "hello", Some(3)).await.unwrap();
    let config = ctl.get_config(&alice, "hello").await.unwrap();
    assert_eq!(config.values.len(), 2);
    assert_eq!(config.values.get("STEP").map(String::as_str), Some("1"));
    ctl.set_config(&alice, "hello", unset("BIG")).await.unwrap();
    let config = ctl.get_config(&alice, "hello").await.unwrap();
    assert!(!config.values.contains_key("BIG"));
    // `other` still uses the value: destroying `hello` keeps it, destroying `other` drops it.
    ctl.destroy_app(&alice, "hello").await.unwrap();
    assert_eq!(count_big(store.clone()).await, 1);
    assert_eq!(
        ctl.get_config(&alice, "other")
            .await
            .unwrap()
            .values
            .get("BIG"),
        Some(&big)
    );
    ctl.destroy_app(&alice, "other").await.unwrap();
    assert_eq!(count_big(store.clone()).await, 0);
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _dir) = super::common::sqlite();
                    super::$name(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(store) = super::common::postgres().await {
                        super::$name(store).await;
                    }
                }
            )*
        }
    };
}

contract!(
    users_and_tokens,
    release_ledger,
    builds_and_scale,
    permissions,
    keys_and_hooks,
    failed_rollout_keeps_previous,
    failed_config_change_can_be_undone,
    concurrent_changes_get_distinct_versions,
    malformed_json_is_an_error,
    config_values_stored_once,
);

/// Guards issue 10's migration: configs written before values were stored by content (values
/// inline in the body) are moved out when the store is opened, and read back the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_legacy_inline_config_values_are_moved() {
    let (store, dir) = common::sqlite();
    let ctl = common::controller(store.clone());
    let (alice, _) = user(&ctl, "alice").await;
    ctl.create_app(&alice, Some("hello")).await.unwrap();
    ctl.set_config(&alice, "hello", set("GREETING", "hi"))
        .await
        .unwrap();
    // Rewrite every config the old way.
    store
        .write(|c| {
            c.execute("DELETE FROM config_value_refs", &[])?;
            c.execute("DELETE FROM config_values", &[])?;
            c.execute(
                "UPDATE configs SET body = $1, values_by_hash = 0",
                &[r#"{"values":{"GREETING":"legacy"},"memory":{},"cpu":{},"tags":{},"registry":{},"healthcheck":{}}"#.into()],
            )
        })
        .await
        .unwrap();
    drop(ctl);
    drop(store);
    let store = Store::open(dir.path().join("c.db").to_str().unwrap()).unwrap();
    let ctl = common::controller(store.clone());
    let config = ctl.get_config(&alice, "hello").await.unwrap();
    assert_eq!(
        config.values.get("GREETING").map(String::as_str),
        Some("legacy")
    );
    let left = store
        .read(|c| {
            Ok::<_, StoreError>(
                c.query("SELECT COUNT(*) FROM configs WHERE values_by_hash = 0", &[])?[0].int(0),
            )
        })
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// Controllers starting together on one fresh PostgreSQL database all migrate it
/// (guards the migration lock: without it the losers failed on each other's tables).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_opens_all_migrate() {
    let Ok(admin_url) = std::env::var("WORKFLOW_TEST_POSTGRES_URL") else {
        eprintln!("skipping PostgreSQL: set WORKFLOW_TEST_POSTGRES_URL (scripts/test does)");
        return;
    };
    let db = format!("wf_test_{}", uuid::Uuid::new_v4().simple());
    let (admin, create) = (admin_url.clone(), format!("CREATE DATABASE {db}"));
    tokio::task::spawn_blocking(move || {
        ::postgres::Client::connect(&admin, ::postgres::NoTls)
            .expect("connect to the PostgreSQL test server")
            .batch_execute(&create)
            .expect("create test database");
    })
    .await
    .unwrap();
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(b, _)| b);
    let url = format!("{base}/{db}");
    let opens = (0..4).map(|_| Store::connect(&url));
    for (i, r) in futures::future::join_all(opens)
        .await
        .into_iter()
        .enumerate()
    {
        assert!(r.is_ok(), "open {i}: {:?}", r.err());
    }
}
