//! Shared set-up for the controller's integration tests: stores on both backends.

#![allow(dead_code)]

use std::sync::Arc;

use workflow_controller::domain::{Controller, RegistrationMode, Settings};
use workflow_controller::runtime::{LedgerOnly, Runtime};
use workflow_controller::store::Store;

/// The builder key tests use.
pub const BUILDER_KEY: &str = "test-builder-key";

/// A store on a fresh SQLite file; the directory lives as long as the store is used.
pub fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        Store::open(dir.path().join("c.db").to_str().expect("utf-8 path")).expect("open sqlite");
    // (SQLite opens without a network round trip, so the blocking open is fine here.)
    (store, dir)
}

/// A store on a fresh PostgreSQL database, if `WORKFLOW_TEST_POSTGRES_URL` names a server.
/// Under CI (`CI` set) a missing server is a failure, not a skip.
pub async fn postgres() -> Option<Store> {
    let Ok(admin_url) = std::env::var("WORKFLOW_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "WORKFLOW_TEST_POSTGRES_URL is not set under CI: scripts/test must start PostgreSQL"
        );
        eprintln!("skipping PostgreSQL: set WORKFLOW_TEST_POSTGRES_URL (scripts/test does)");
        return None;
    };
    let db = format!("wf_test_{}", uuid::Uuid::new_v4().simple());
    let (admin, create) = (admin_url.clone(), format!("CREATE DATABASE {db}"));
    tokio::task::spawn_blocking(move || {
        let mut admin = postgres::Client::connect(&admin, postgres::NoTls)
            .expect("connect to the PostgreSQL test server");
        admin.batch_execute(&create).expect("create test database");
    })
    .await
    .expect("create database task");
    let url = match admin_url.rfind('/') {
        Some(i) if admin_url[..i].contains("://") && i > admin_url.find("://").unwrap_or(0) + 2 => {
            format!("{}/{db}", &admin_url[..i])
        }
        _ => format!("{admin_url}/{db}"),
    };
    Some(Store::connect(&url).await.expect("open postgres store"))
}

/// A controller over `store` with the given runtime.
pub fn controller_with(store: Store, runtime: Arc<dyn Runtime>) -> Arc<Controller> {
    Arc::new(Controller::new(
        store,
        runtime,
        Settings {
            registration: RegistrationMode::Enabled,
            builder_key: BUILDER_KEY.into(),
        },
    ))
}

/// A controller over `store` that runs nothing.
pub fn controller(store: Store) -> Arc<Controller> {
    controller_with(store, Arc::new(LedgerOnly))
}

/// Runs the reconcile loop's step for `app` (by name) until its newest release is no longer
/// pending, as the loop would; returns how many steps it took. Panics after 50 steps.
pub async fn settle(
    ctl: &Controller,
    caller: &workflow_controller::model::User,
    app: &str,
) -> usize {
    let uuid = ctl.get_app(caller, app).await.expect("app").uuid;
    for step in 1..=50 {
        ctl.reconcile(&uuid).await.expect("reconcile");
        let newest = ctl
            .list_releases(
                caller,
                app,
                workflow_controller::model::PageRequest::new(1, 0),
            )
            .await
            .expect("releases");
        if newest.results.first().is_none_or(|r| r.state != "pending") {
            return step;
        }
    }
    panic!("{app} did not settle in 50 reconcile steps");
}
