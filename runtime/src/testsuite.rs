//! The contract every [`Runtime`] passes (feature `testsuite`).
//!
//! Each check is an async function over a [`Harness`]: a factory of runtimes and of runnable
//! [`Desired`] states (the in-memory runtime needs no image; the local runtime needs one pushed
//! to a registry, so only the harness knows how to make one). A check panics with a message
//! naming the broken promise. [`run_all`] runs them all; a test file calls it once per runtime:
//!
//! ```ignore
//! #[tokio::test]
//! async fn memory_runtime_keeps_the_contract() {
//!     workflow_runtime::testsuite::run_all(&MemoryHarness).await;
//! }
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::{Desired, Error, Process, ProcessState, Restart, Rollout, Runtime};

/// What a harness's desired state does when run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Every process starts and becomes ready (web listens on `PORT`).
    Runs,
    /// Every process exits at once, again and again.
    CrashLoops,
}

/// Makes runtimes and desired states for the checks.
#[async_trait::async_trait]
pub trait Harness: Send + Sync {
    /// A fresh runtime that has never run anything.
    async fn runtime(&self) -> Arc<dyn Runtime>;
    /// A desired state for `app` at `version` with process types `web` (listening on `PORT`)
    /// and `worker`, one of each, whose processes behave as `flavor` says.
    async fn desired(&self, app: &str, version: i64, flavor: Flavor) -> Desired;
    /// How many `apply` steps a rollout may take before a check gives up.
    fn max_steps(&self) -> u32 {
        600
    }
    /// Pause between two `apply` steps.
    fn step_pause(&self) -> Duration {
        Duration::from_millis(50)
    }
}

/// Calls `apply` until the rollout is no longer `Progressing` and returns where it ended.
pub async fn converge<H: Harness + ?Sized>(h: &H, rt: &dyn Runtime, d: &Desired) -> Rollout {
    let mut last = String::new();
    for _ in 0..h.max_steps() {
        match rt.apply(d).await {
            Ok(Rollout::Progressing(why)) => last = why,
            Ok(done) => return done,
            Err(e) => panic!("apply of {} v{} failed: {e}", d.app, d.version),
        }
        tokio::time::sleep(h.step_pause()).await;
    }
    panic!(
        "apply of {} v{} still progressing after {} steps: {last}",
        d.app,
        d.version,
        h.max_steps()
    );
}

/// Converges and asserts the rollout is `Ready`.
pub async fn converge_ready<H: Harness + ?Sized>(h: &H, rt: &dyn Runtime, d: &Desired) {
    let r = converge(h, rt, d).await;
    assert_eq!(
        r,
        Rollout::Ready,
        "{} v{} did not become ready",
        d.app,
        d.version
    );
}

fn set_count(d: &mut Desired, kind: &str, count: u32) {
    d.processes
        .get_mut(kind)
        .unwrap_or_else(|| panic!("the harness's desired state has no {kind} process type"))
        .count = count;
}

/// (name, started, restarts) of each process: what must not change when nothing restarts.
fn identity(ps: &[Process]) -> Vec<(String, String, u32)> {
    ps.iter()
        .map(|p| (p.name.clone(), p.started.clone(), p.restarts))
        .collect()
}

fn names(ps: &[Process]) -> BTreeSet<String> {
    ps.iter().map(|p| p.name.clone()).collect()
}

fn of_kind<'a>(ps: &'a [Process], kind: &str) -> Vec<&'a Process> {
    ps.iter().filter(|p| p.kind == kind).collect()
}

/// Asserts the app runs exactly `counts` (type, count) of `version`, all up, well named.
fn assert_runs(app: &str, ps: &[Process], version: i64, counts: &[(&str, usize)]) {
    for (kind, count) in counts {
        let got = of_kind(ps, kind);
        assert_eq!(
            got.len(),
            *count,
            "{app}: want {count} {kind} processes, got {ps:#?}"
        );
    }
    let total: usize = counts.iter().map(|(_, c)| c).sum();
    assert_eq!(ps.len(), total, "{app}: unexpected processes: {ps:#?}");
    for p in ps {
        assert_eq!(
            p.version, version,
            "{app}: process of another version: {p:#?}"
        );
        assert_eq!(p.state, ProcessState::Up, "{app}: process not up: {p:#?}");
        let prefix = format!("{app}-{}-", p.kind);
        let suffix = p
            .name
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{app}: process name {} is not {prefix}<id>", p.name));
        assert!(
            suffix.len() == 5 && suffix.bytes().all(|b| b.is_ascii_hexdigit()),
            "{app}: process id of {} is not 5 hex digits",
            p.name
        );
        if p.kind == "web" {
            assert!(
                p.addr.is_some(),
                "{app}: web process without address: {p:#?}"
            );
        }
    }
    let mut sorted = ps.to_vec();
    sorted.sort_by(|a, b| a.kind.cmp(&b.kind).then_with(|| a.name.cmp(&b.name)));
    assert_eq!(
        sorted, ps,
        "{app}: processes are not sorted by type then name"
    );
}

/// `apply` converges to the desired processes, and re-applying the same state restarts nothing.
pub async fn apply_converges_and_is_idempotent<H: Harness + ?Sized>(h: &H) {
    let rt = h.runtime().await;
    let d = h.desired("conv", 1, Flavor::Runs).await;
    converge_ready(h, &*rt, &d).await;
    let before = rt.processes("conv").await.expect("processes");
    assert_runs("conv", &before, 1, &[("web", 1), ("worker", 1)]);
    for _ in 0..3 {
        assert_eq!(rt.apply(&d).await.expect("re-apply"), Rollout::Ready);
    }
    let after = rt.processes("conv").await.expect("processes");
    assert_eq!(
        identity(&before),
        identity(&after),
        "re-applying restarted processes"
    );
    rt.destroy("conv", &d.app_id).await.expect("destroy");
}

/// Scaling up keeps the running processes and adds new ones; scaling down removes some.
pub async fn scaling_up_and_down<H: Harness + ?Sized>(h: &H) {
    let rt = h.runtime().await;
    let mut d = h.desired("scale", 1, Flavor::Runs).await;
    converge_ready(h, &*rt, &d).await;
    let one = rt.processes("scale").await.expect("processes");
    let web1 = of_kind(&one, "web")[0].name.clone();

    set_count(&mut d, "web", 3);
    converge_ready(h, &*rt, &d).await;
    let three = rt.processes("scale").await.expect("processes");
    assert_runs("scale", &three, 1, &[("web", 3), ("worker", 1)]);
    assert!(
        names(&three).contains(&web1),
        "scaling up replaced the running web process"
    );

    set_count(&mut d, "web", 1);
    set_count(&mut d, "worker", 0);
    converge_ready(h, &*rt, &d).await;
    let down = rt.processes("scale").await.expect("processes");
    assert_runs("scale", &down, 1, &[("web", 1), ("worker", 0)]);
    assert!(
        names(&three).is_superset(&names(&down)),
        "scaling down started new processes"
    );
    rt.destroy("scale", &d.app_id).await.expect("destroy");
}

/// A new version replaces every process of the old one.
pub async fn new_version_replaces_old<H: Harness + ?Sized>(h: &H) {
    let rt = h.runtime().await;
    let v1 = h.desired("roll", 1, Flavor::Runs).await;
    converge_ready(h, &*rt, &v1).await;
    let old = rt.processes("roll").await.expect("processes");
    let mut v2 = h.desired("roll", 2, Flavor::Runs).await;
    v2.env.insert("GREETING".into(), "v2".into());
    converge_ready(h, &*rt, &v2).await;
    let new = rt.processes("roll").await.expect("processes");
    assert_runs("roll", &new, 2, &[("web", 1), ("worker", 1)]);
    assert!(
        names(&old).is_disjoint(&names(&new)),
        "v1 processes survived v2"
    );
    rt.destroy("roll", &v1.app_id).await.expect("destroy");
}

/// A crash-looping release ends `Failed` with a reason; the previous version keeps running.
pub async fn crash_loop_fails_and_previous_keeps_running<H: Harness + ?Sized>(h: &H) {
    let rt = h.runtime().await;
    let v1 = h.desired("flaky", 1, Flavor::Runs).await;
    converge_ready(h, &*rt, &v1).await;
    let before = rt.processes("flaky").await.expect("processes");
    let v2 = h.desired("flaky", 2, Flavor::CrashLoops).await;
    match converge(h, &*rt, &v2).await {
        Rollout::Failed(reason) => assert!(!reason.trim().is_empty(), "failed without a reason"),
        other => panic!("a crash-looping release ended {other:?}"),
    }
    let after = rt.processes("flaky").await.expect("processes");
    assert_runs("flaky", &after, 1, &[("web", 1), ("worker", 1)]);
    assert_eq!(
        identity(&before),
        identity(&after),
        "v1 was disturbed by the failed v2"
    );
    // The controller goes back to v1: nothing restarts.
    converge_ready(h, &*rt, &v1).await;
    let back = rt.processes("flaky").await.expect("processes");
    assert_eq!(
        identity(&before),
        identity(&back),
        "re-applying v1 restarted it"
    );
    rt.destroy("flaky", &v1.app_id).await.expect("destroy");
}

/// `restart` by all, type and name gives new processes for exactly those chosen.
pub async fn restart_gives_new_processes<H: Harness + ?Sized>(h: &H) {
    let rt = h.runtime().await;
    let d = h.desired("rest", 1, Flavor::Runs).await;
    converge_ready(h, &*rt, &d).await;
    let p0 = rt.processes("rest").await.expect("processes");

    let p1 = rt
        .restart("rest", &Restart::All)
        .await
        .expect("restart all");
    assert_eq!(p1.len(), p0.len(), "restart all changed the count");
    assert!(
        names(&p0).is_disjoint(&names(&p1)),
        "restart all kept a process"
    );
    converge_ready(h, &*rt, &d).await;
    let p1 = rt.processes("rest").await.expect("processes");
    assert_runs("rest", &p1, 1, &[("web", 1), ("worker", 1)]);

    let p2 = rt
        .restart("rest", &Restart::Type("worker".into()))
        .await
        .expect("restart worker");
    converge_ready(h, &*rt, &d).await;
    let p2b = rt.processes("rest").await.expect("processes");
    assert_eq!(
        names(&p2),
        names(&p2b),
        "restart's answer differs from processes()"
    );
    assert_eq!(
        of_kind(&p1, "web")[0].name,
        of_kind(&p2, "web")[0].name,
        "web restarted"
    );
    assert_ne!(
        of_kind(&p1, "worker")[0].name,
        of_kind(&p2, "worker")[0].name
    );

    let web = of_kind(&p2, "web")[0].name.clone();
    let p3 = rt
        .restart("rest", &Restart::Name(web.clone()))
        .await
        .expect("restart by name");
    converge_ready(h, &*rt, &d).await;
    assert_ne!(
        of_kind(&p3, "web")[0].name,
        web,
        "the named process was not restarted"
    );
    assert_eq!(
        of_kind(&p3, "worker")[0].name,
        of_kind(&p2, "worker")[0].name
    );

    match rt
        .restart("rest", &Restart::Name("rest-web-zzzzz".into()))
        .await
    {
        Err(Error::NotFound(_)) => {}
        other => panic!("restart of an unknown process: {other:?}"),
    }
    rt.destroy("rest", &d.app_id).await.expect("destroy");
}

/// `run` returns the command's output and exit code.
pub async fn run_returns_output_and_exit_code<H: Harness + ?Sized>(h: &H) {
    let rt = h.runtime().await;
    let d = h.desired("oneoff", 1, Flavor::Runs).await;
    let out = rt
        .run(&d, "echo hello-from-run; exit 3", Duration::from_secs(60))
        .await
        .expect("run");
    assert_eq!(out.exit_code, 3, "exit code of run: {out:?}");
    assert!(
        out.output.contains("hello-from-run"),
        "output of run: {out:?}"
    );
    rt.destroy("oneoff", &d.app_id).await.expect("destroy");
}

/// `destroy` leaves nothing running, and is idempotent.
pub async fn destroy_leaves_nothing<H: Harness + ?Sized>(h: &H) {
    let rt = h.runtime().await;
    let d = h.desired("gone", 1, Flavor::Runs).await;
    converge_ready(h, &*rt, &d).await;
    rt.destroy("gone", &d.app_id).await.expect("destroy");
    assert!(rt.processes("gone").await.expect("processes").is_empty());
    rt.destroy("gone", &d.app_id).await.expect("second destroy");
}

/// Two apps' processes never mix, and destroying one leaves the other.
pub async fn apps_never_mix<H: Harness + ?Sized>(h: &H) {
    let rt = h.runtime().await;
    let mut a = h.desired("mix-a", 1, Flavor::Runs).await;
    set_count(&mut a, "web", 2);
    let mut b = h.desired("mix-b", 1, Flavor::Runs).await;
    set_count(&mut b, "worker", 0);
    converge_ready(h, &*rt, &a).await;
    converge_ready(h, &*rt, &b).await;
    let pa = rt.processes("mix-a").await.expect("processes");
    let pb = rt.processes("mix-b").await.expect("processes");
    assert_runs("mix-a", &pa, 1, &[("web", 2), ("worker", 1)]);
    assert_runs("mix-b", &pb, 1, &[("web", 1), ("worker", 0)]);
    rt.destroy("mix-a", &a.app_id).await.expect("destroy");
    assert_eq!(
        identity(&pb),
        identity(&rt.processes("mix-b").await.expect("processes")),
        "destroying mix-a touched mix-b"
    );
    rt.destroy("mix-b", &b.app_id).await.expect("destroy");
}

/// Hostile input is refused with `Invalid` naming the value, never acted on.
pub async fn bad_input_is_refused<H: Harness + ?Sized>(h: &H) {
    let rt = h.runtime().await;
    let good = h.desired("valid", 1, Flavor::Runs).await;
    let mut cases: Vec<(Desired, &str)> = Vec::new();
    let mut d = good.clone();
    d.app = "Bad_App".into();
    cases.push((d, "Bad_App"));
    let mut d = good.clone();
    d.app_id = "../../etc".into();
    cases.push((d, "../../etc"));
    let mut d = good.clone();
    let spec = d.processes["web"].clone();
    d.processes.insert("we;b".into(), spec);
    cases.push((d, "we;b"));
    let mut d = good.clone();
    d.env.insert("A=B".into(), "x".into());
    cases.push((d, "A=B"));
    let mut d = good.clone();
    set_count(&mut d, "web", 1_000_000);
    cases.push((d, "1000000"));
    for (d, value) in cases {
        match rt.apply(&d).await {
            Err(Error::Invalid(msg)) => {
                assert!(msg.contains(value), "error {msg:?} does not name {value:?}")
            }
            other => panic!("apply with bad value {value:?}: {other:?}"),
        }
    }
    assert!(rt.processes("valid").await.expect("processes").is_empty());
}

/// Runs every check, one after the other.
pub async fn run_all<H: Harness + ?Sized>(h: &H) {
    apply_converges_and_is_idempotent(h).await;
    scaling_up_and_down(h).await;
    new_version_replaces_old(h).await;
    crash_loop_fails_and_previous_keeps_running(h).await;
    restart_gives_new_processes(h).await;
    run_returns_output_and_exit_code(h).await;
    destroy_leaves_nothing(h).await;
    apps_never_mix(h).await;
    bad_input_is_refused(h).await;
}
