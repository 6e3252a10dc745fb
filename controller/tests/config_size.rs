//! How much the metadata store grows when configs are large (issue 10, "configs stored once"):
//! 11 `config:set` requests each sending ~1 MB of values (the whole `.env`, as deploy scripts do:
//! the same big values, one changed small one), then 20 releases that change no config
//! (builds). Prints the growth of each phase; the figure is the SQLite database's size
//! (`page_count * page_size`, WAL included), which does not depend on timing.
//!
//! Measured on 2026-11-26 (values of 10,811,846 bytes sent in all): before values were stored
//! by content (commit 736a94d) the 11 requests grew the database by 10,829,824 bytes, after by
//! 1,048,576; the 20 builds grew it by 12,288 bytes both times (builds and rollbacks already
//! reused the release's config row).

mod common;

use std::collections::BTreeMap;

use workflow_controller::domain::{ConfigPatch, NewBuild, RegisterRequest};
use workflow_controller::store::{Store, StoreError};

/// Values per request: 15 of 64 KiB (the per-value cap) fill the values section (1 MiB cap).
const BIG_VALUES: usize = 15;
const VALUE_BYTES: usize = 64 * 1024 - 16;

async fn db_bytes(store: &Store) -> i64 {
    store
        .read(|c| {
            let pages = c.query("PRAGMA page_count", &[])?[0].int(0);
            let size = c.query("PRAGMA page_size", &[])?[0].int(0);
            Ok::<_, StoreError>(pages * size)
        })
        .await
        .unwrap()
}

/// Guards issue 10: a config change stores the values it keeps once, not a copy per release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_storage_growth() {
    let (store, _dir) = common::sqlite();
    let ctl = common::controller(store.clone());
    let alice = ctl
        .register(
            None,
            RegisterRequest {
                username: "alice".into(),
                password: "s3cret".into(),
                email: "alice@example.com".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    ctl.create_app(&alice, Some("hello")).await.unwrap();
    let start = db_bytes(&store).await;
    let mut sent = 0usize;
    for i in 0..11 {
        let mut values: BTreeMap<String, Option<String>> = (0..BIG_VALUES)
            .map(|k| {
                let v = format!("{k:02}").repeat(VALUE_BYTES / 2);
                (format!("BIG_{k:02}"), Some(v))
            })
            .collect();
        values.insert("STEP".into(), Some(i.to_string()));
        sent += values
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, String::len))
            .sum::<usize>();
        ctl.set_config(&alice, "hello", ConfigPatch::values(values))
            .await
            .unwrap();
    }
    let after_config = db_bytes(&store).await;
    for i in 0..20 {
        ctl.create_build(
            &alice,
            "hello",
            NewBuild {
                image: format!("registry.example.com/hello:{i}"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    let after_builds = db_bytes(&store).await;
    let config_growth = after_config - start;
    let build_growth = after_builds - after_config;
    println!(
        "config storage: 11 config:set requests carrying {sent} bytes of values in all grew the \
         database by {config_growth} bytes; 20 builds after them grew it by {build_growth} bytes"
    );
    let one_request = (sent / 11) as i64;
    assert!(
        config_growth < 3 * one_request,
        "the big values are stored about once: {config_growth} bytes for 11 requests of {one_request}"
    );
    assert!(
        build_growth < one_request / 4,
        "releases that change no config copy none: {build_growth} bytes"
    );
}
