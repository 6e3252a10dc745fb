//! The in-memory runtime keeps the runtime contract, and its test hooks work.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use workflow_runtime::memory::MemoryRuntime;
use workflow_runtime::testsuite::{self, Flavor, Harness};
use workflow_runtime::{Desired, Image, ImageKind, ProcessSpec, Rollout, Runtime};

struct Memory;

fn spec(command: &str) -> ProcessSpec {
    ProcessSpec {
        command: Some(command.into()),
        count: 1,
        memory: None,
        cpu_millis: None,
        readiness: None,
        liveness: None,
    }
}

fn desired(app: &str, version: i64, flavor: Flavor) -> Desired {
    let image = match flavor {
        Flavor::Runs => format!("127.0.0.1:5000/{app}:v{version}"),
        Flavor::CrashLoops => format!("127.0.0.1:5000/{app}:crash-v{version}"),
    };
    Desired {
        app: app.into(),
        app_id: format!("id-{app}"),
        version,
        image: Some(Image {
            reference: image,
            kind: ImageKind::Buildpack,
            credentials: None,
        }),
        processes: BTreeMap::from([
            ("web".to_string(), spec("serve")),
            ("worker".to_string(), spec("work")),
        ]),
        env: BTreeMap::new(),
        port: 5000,
        tags: BTreeMap::new(),
        source_version: None,
        grace: Duration::from_secs(1),
    }
}

#[async_trait::async_trait]
impl Harness for Memory {
    async fn runtime(&self) -> Arc<dyn Runtime> {
        Arc::new(MemoryRuntime::new())
    }
    async fn desired(&self, app: &str, version: i64, flavor: Flavor) -> Desired {
        desired(app, version, flavor)
    }
}

#[tokio::test]
async fn memory_runtime_keeps_the_contract() {
    testsuite::run_all(&Memory).await;
}

#[tokio::test]
async fn fail_version_hook_fails_that_version_only() {
    let rt = MemoryRuntime::new();
    rt.fail_version("hook", 2, "readiness probe never passed");
    assert_eq!(
        rt.apply(&desired("hook", 1, Flavor::Runs)).await.unwrap(),
        Rollout::Ready
    );
    assert_eq!(
        rt.apply(&desired("hook", 2, Flavor::Runs)).await.unwrap(),
        Rollout::Failed("readiness probe never passed".into())
    );
    assert_eq!(rt.processes("hook").await.unwrap()[0].version, 1);
    assert_eq!(rt.apply_count(), 2);
}

#[tokio::test]
async fn names_are_deterministic() {
    let a = MemoryRuntime::new();
    let b = MemoryRuntime::new();
    a.apply(&desired("det", 1, Flavor::Runs)).await.unwrap();
    b.apply(&desired("det", 1, Flavor::Runs)).await.unwrap();
    assert_eq!(
        a.processes("det").await.unwrap(),
        b.processes("det").await.unwrap()
    );
}

#[tokio::test]
async fn same_name_with_another_id_is_refused() {
    let rt = MemoryRuntime::new();
    rt.apply(&desired("twin", 1, Flavor::Runs)).await.unwrap();
    let mut other = desired("twin", 1, Flavor::Runs);
    other.app_id = "another".into();
    let err = rt.apply(&other).await.unwrap_err().to_string();
    assert!(err.contains("another"), "{err}");
}
