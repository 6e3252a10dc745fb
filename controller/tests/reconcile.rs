//! The reconcile loop: handlers record and answer, the loop rolls out; failed rollouts keep
//! the previous release serving; every app is reconciled at start; two controllers on one
//! database never roll out one app at once; routes are published and removed.
//!
//! The runtime here is a scripted in-memory one (what it is told and when is the subject);
//! the stores are real SQLite files and, when configured, a real PostgreSQL.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use workflow_common::shutdown::Shutdown;
use workflow_controller::domain::{ConfigPatch, Controller, NewBuild, RegisterRequest};
use workflow_controller::model::User;
use workflow_controller::runtime::{
    Capabilities, Desired, Process, ProcessState, Restart, Rollout, RunOutput, Runtime,
};
use workflow_controller::store::Store;

type RtResult<T> = workflow_controller::runtime::Result<T>;

/// A runtime that records what it is asked, fails chosen versions, and checks that no two
/// `apply` calls for one app overlap.
#[derive(Debug, Default)]
struct Scripted {
    applied: Mutex<Vec<Desired>>,
    /// Versions whose rollout fails.
    fail: Mutex<Vec<i64>>,
    /// Versions that report `Progressing` this many more times before `Ready`.
    progressing: Mutex<HashMap<i64, u32>>,
    /// The version each app runs (the last one that became ready).
    running: Mutex<BTreeMap<String, Desired>>,
    in_apply: Mutex<HashMap<String, usize>>,
    overlaps: AtomicUsize,
    destroyed: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Runtime for Scripted {
    async fn apply(&self, d: &Desired) -> RtResult<Rollout> {
        {
            let mut in_apply = self.in_apply.lock().unwrap();
            let n = in_apply.entry(d.app.clone()).or_default();
            *n += 1;
            if *n > 1 {
                self.overlaps.fetch_add(1, Ordering::SeqCst);
            }
        }
        // Give a concurrent caller every chance to overlap.
        for _ in 0..5 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.applied.lock().unwrap().push(d.clone());
        let out = if self.fail.lock().unwrap().contains(&d.version) {
            Rollout::Failed(format!("v{} crashed on start", d.version))
        } else {
            let mut prog = self.progressing.lock().unwrap();
            match prog.get_mut(&d.version) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    Rollout::Progressing("waiting for readiness".into())
                }
                _ => {
                    self.running
                        .lock()
                        .unwrap()
                        .insert(d.app.clone(), d.clone());
                    Rollout::Ready
                }
            }
        };
        *self.in_apply.lock().unwrap().get_mut(&d.app).unwrap() -= 1;
        Ok(out)
    }
    async fn destroy(&self, app: &str, _app_id: &str) -> RtResult<()> {
        self.running.lock().unwrap().remove(app);
        self.destroyed.lock().unwrap().push(app.to_string());
        Ok(())
    }
    async fn processes(&self, app: &str) -> RtResult<Vec<Process>> {
        let running = self.running.lock().unwrap();
        let Some(d) = running.get(app) else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        for (kind, spec) in &d.processes {
            for i in 0..spec.count {
                out.push(Process {
                    name: format!("{app}-{kind}-{i}"),
                    kind: kind.clone(),
                    version: d.version,
                    state: ProcessState::Up,
                    started: "2026-11-26T00:00:00Z".into(),
                    restarts: 0,
                    reason: None,
                    addr: Some(SocketAddr::from(([127, 0, 0, 1], 20000 + i as u16))),
                });
            }
        }
        Ok(out)
    }
    async fn restart(&self, app: &str, _which: &Restart) -> RtResult<Vec<Process>> {
        self.processes(app).await
    }
    async fn run(&self, d: &Desired, command: &str, _t: Duration) -> RtResult<RunOutput> {
        Ok(RunOutput {
            exit_code: 0,
            output: format!("{} v{} ran {command}\n", d.app, d.version),
        })
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            memory_limits: true,
            cpu_limits: true,
        }
    }
}

impl Scripted {
    fn running_version(&self, app: &str) -> Option<i64> {
        self.running.lock().unwrap().get(app).map(|d| d.version)
    }
}

async fn user(ctl: &Controller, name: &str) -> User {
    ctl.register(
        None,
        RegisterRequest {
            username: name.into(),
            password: "s3cret".into(),
            email: format!("{name}@example.com"),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

fn set(k: &str, v: &str) -> ConfigPatch {
    ConfigPatch::values([(k.to_string(), Some(v.to_string()))].into())
}

fn web_build() -> NewBuild {
    NewBuild {
        image: "127.0.0.1:5000/hello@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
        procfile: [("web".to_string(), "bin/web".to_string())].into(),
        sha: "abc1234".into(),
        ..Default::default()
    }
}

fn shutdown() -> Shutdown {
    Shutdown::new(
        tokio_util::sync::CancellationToken::new(),
        Duration::from_secs(1),
    )
}

/// Waits (bounded) until `check` holds; the bound only keeps a broken loop from hanging CI.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}

async fn state_of(ctl: &Controller, u: &User, app: &str, v: i64) -> String {
    ctl.get_release(u, app, v).await.unwrap().state
}

/// Handlers answer with a pending release; the running loop rolls it out and marks it
/// deployed; a failed rollout marks the release failed and the runtime converges back to
/// the previous release; routes carry the ready web backends.
async fn loop_rolls_out_and_recovers(store: Store) {
    let rt = Arc::new(Scripted::default());
    let ctl = common::controller_with(store, rt.clone());
    let stop = shutdown();
    ctl.spawn_reconciler(&stop).expect("first loop");
    assert!(
        ctl.spawn_reconciler(&stop).is_none(),
        "one loop per controller"
    );
    let alice = user(&ctl, "alice").await;
    ctl.create_app(&alice, Some("hello")).await.unwrap();
    let (_, v2) = ctl
        .create_build(&alice, "hello", web_build())
        .await
        .unwrap();
    assert_eq!((v2.version, v2.state.as_str()), (2, "pending"));
    eventually("v2 deployed", async || {
        state_of(&ctl, &alice, "hello", 2).await == "deployed"
    })
    .await;
    assert_eq!(rt.running_version("hello"), Some(2));
    let d = rt.running.lock().unwrap()["hello"].clone();
    assert_eq!(d.processes["web"].count, 1, "a first build starts one web");
    assert_eq!(d.processes["web"].command.as_deref(), Some("bin/web"));
    eventually("routes published", async || {
        ctl.routes()
            .snapshot()
            .get("hello")
            .is_some_and(|r| r.backends.len() == 1)
    })
    .await;
    let routes = ctl.routes().snapshot()["hello"].clone();
    assert_eq!(
        routes.domains,
        vec!["hello".to_string()],
        "the default domain"
    );
    assert!(routes.routable && !routes.maintenance);

    rt.fail.lock().unwrap().push(3);
    let v3 = ctl
        .set_config(&alice, "hello", set("A", "1"))
        .await
        .unwrap();
    assert_eq!(v3.release.state, "pending", "answered before the rollout");
    eventually("v3 failed", async || {
        state_of(&ctl, &alice, "hello", 3).await == "failed"
    })
    .await;
    let v3 = ctl.get_release(&alice, "hello", 3).await.unwrap();
    assert!(
        v3.failed && v3.exception.contains("crashed on start"),
        "{v3:?}"
    );
    assert_eq!(rt.running_version("hello"), Some(2), "v2 keeps serving");
    // After the failure the loop converges to v2 again (its Desired is applied once more).
    eventually("re-applied v2 after the failure", async || {
        let applied = rt.applied.lock().unwrap();
        let pos = applied.iter().position(|d| d.version == 3);
        pos.is_some_and(|p| applied[p + 1..].iter().any(|d| d.version == 2))
    })
    .await;

    // Scale makes no release; the loop applies the new count to the serving release.
    ctl.scale(&alice, "hello", [("web".to_string(), 3)].into())
        .await
        .unwrap();
    eventually("scaled to 3", async || {
        rt.running.lock().unwrap()["hello"].processes["web"].count == 3
    })
    .await;
    eventually("3 backends", async || {
        ctl.routes().snapshot()["hello"].backends.len() == 3
    })
    .await;
    let ps = ctl.processes(&alice, "hello", None).await.unwrap();
    assert_eq!(ps.len(), 3);
    assert_eq!((ps[0].release.as_str(), ps[0].state.as_str()), ("v2", "up"));

    ctl.destroy_app(&alice, "hello").await.unwrap();
    assert!(
        !ctl.routes().snapshot().contains_key("hello"),
        "routes removed on destroy"
    );
    assert_eq!(*rt.destroyed.lock().unwrap(), vec!["hello".to_string()]);
    assert_eq!(rt.overlaps.load(Ordering::SeqCst), 0);
    stop.cancel();
}

/// A release still converging is requeued until ready, then deployed.
async fn progressing_is_polled_until_ready(store: Store) {
    let rt = Arc::new(Scripted::default());
    rt.progressing.lock().unwrap().insert(2, 3);
    let ctl = common::controller_with(store, rt.clone());
    let alice = user(&ctl, "alice").await;
    ctl.create_app(&alice, Some("slow")).await.unwrap();
    ctl.create_build(&alice, "slow", web_build()).await.unwrap();
    let steps = common::settle(&ctl, &alice, "slow").await;
    assert_eq!(steps, 4, "three progressing steps, then ready");
    assert_eq!(state_of(&ctl, &alice, "slow", 2).await, "deployed");
    // Idempotent: another step changes nothing but applies the same state again.
    let uuid = ctl.get_app(&alice, "slow").await.unwrap().uuid;
    ctl.reconcile(&uuid).await.unwrap();
    let applied = rt.applied.lock().unwrap();
    assert_eq!(applied[applied.len() - 1], applied[applied.len() - 2]);
}

/// After a controller restart every app is reconciled: a release recorded while no loop
/// ran (the old controller died after recording it) is rolled out by the new one.
async fn restart_reconciles_every_app(store: Store) {
    let old = common::controller_with(store.clone(), Arc::new(Scripted::default()));
    let alice = user(&old, "alice").await;
    for app in ["one", "two"] {
        old.create_app(&alice, Some(app)).await.unwrap();
        old.create_build(&alice, app, web_build()).await.unwrap();
    }
    drop(old);
    let rt = Arc::new(Scripted::default());
    let new = common::controller_with(store, rt.clone());
    let stop = shutdown();
    new.spawn_reconciler(&stop);
    eventually("both apps deployed after the restart", async || {
        state_of(&new, &alice, "one", 2).await == "deployed"
            && state_of(&new, &alice, "two", 2).await == "deployed"
    })
    .await;
    assert_eq!(rt.running_version("one"), Some(2));
    assert_eq!(rt.running_version("two"), Some(2));
    stop.cancel();
}

/// Two controllers on one database, both reconciling the same apps as fast as they can,
/// never apply one app at the same time (the deploy lease), and both converge.
async fn two_controllers_never_overlap(store: Store) {
    let rt = Arc::new(Scripted::default());
    let a = common::controller_with(store.clone(), rt.clone());
    let b = common::controller_with(store, rt.clone());
    let alice = user(&a, "alice").await;
    let mut uuids = Vec::new();
    for app in ["shared", "other"] {
        a.create_app(&alice, Some(app)).await.unwrap();
        a.create_build(&alice, app, web_build()).await.unwrap();
        uuids.push(a.get_app(&alice, app).await.unwrap().uuid);
    }
    let mut tasks = Vec::new();
    for ctl in [a.clone(), b.clone()] {
        for uuid in uuids.clone() {
            let ctl = ctl.clone();
            tasks.push(tokio::spawn(async move {
                let mut held_off = 0;
                for _ in 0..15 {
                    let action = ctl.reconcile(&uuid).await.unwrap();
                    if action.requeue_after() == Some(Duration::from_secs(2)) {
                        held_off += 1;
                    }
                }
                held_off
            }));
        }
    }
    let mut held_off = 0;
    for t in tasks {
        held_off += t.await.unwrap();
    }
    assert_eq!(
        rt.overlaps.load(Ordering::SeqCst),
        0,
        "applies of one app overlapped"
    );
    assert!(
        held_off > 0,
        "the controllers never contended; the test proves nothing"
    );
    for app in ["shared", "other"] {
        assert_eq!(state_of(&b, &alice, app, 2).await, "deployed");
    }
    eprintln!("lease contention: {held_off} steps held off");
}

macro_rules! both_stores {
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

both_stores!(
    loop_rolls_out_and_recovers,
    progressing_is_polled_until_ready,
    restart_reconciles_every_app,
    two_controllers_never_overlap,
);
