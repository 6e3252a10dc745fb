//! Orphaned temporary files of the filesystem store (writes a crash cut short) do not survive
//! a restart, and are swept by age while running (issue 10).

use std::time::Duration;

use workflow_registry_sync::store::ObjectStore;
use workflow_registry_sync::store::fs::FsStore;

/// Guards issue 10: temp files left by an earlier run are removed when the store opens, and
/// by TTL afterwards; finished objects are untouched.
#[tokio::test]
async fn orphaned_temp_files_are_swept_at_start_and_by_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).await.unwrap();
    store
        .put_bytes("blobs/kept", bytes::Bytes::from_static(b"x"))
        .await
        .unwrap();
    let tmp = dir.path().join("_tmp");
    std::fs::write(tmp.join("orphan-1"), b"partial").unwrap();
    std::fs::write(tmp.join("orphan-2"), b"partial").unwrap();
    drop(store);

    let store = FsStore::open(dir.path()).await.unwrap();
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "swept at open");
    assert_eq!(
        store.get_bytes("blobs/kept", 10).await.unwrap().as_ref(),
        b"x"
    );

    std::fs::write(tmp.join("young"), b"partial").unwrap();
    assert_eq!(
        store.sweep_temp(Duration::from_secs(3600)).await.unwrap(),
        0
    );
    assert!(
        tmp.join("young").exists(),
        "younger than the TTL: maybe in flight"
    );
    assert_eq!(store.sweep_temp(Duration::ZERO).await.unwrap(), 1);
    assert!(!tmp.join("young").exists());
}
