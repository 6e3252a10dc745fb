//! A full disk on the aggregator: appends are refused (never acknowledged), nothing stored is
//! corrupted, and appends succeed again once space is freed. Uses a real tiny tmpfs (needs root;
//! says so and skips otherwise).

use std::path::{Path, PathBuf};
use std::process::Command;

use workflow_logger::Error;
use workflow_logger::store::{Store, StoreConfig};
use workflow_proto::logger::v1::{ShipBatch, ShippedLine};

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount_tmpfs(at: &Path, size: &str) -> Option<Mount> {
    std::fs::create_dir_all(at).ok()?;
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?
        .success();
    ok.then(|| Mount(at.to_path_buf()))
}

fn batch(n: u64) -> ShipBatch {
    ShipBatch {
        batch_id: n,
        source: "s".into(),
        app: "hello".into(),
        lines: vec![ShippedLine {
            offset: n * 10_000,
            end_offset: (n + 1) * 10_000,
            message: vec![b'a' + (n % 26) as u8; 10_000],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn full_disk_refuses_to_ack_and_never_corrupts() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().join("small");
    let Some(_mount) = mount_tmpfs(&at, "256k") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let filler = at.join("filler");
    std::fs::write(&filler, vec![0u8; 64 << 10]).unwrap();
    let store = Store::open(StoreConfig::new(&at), None).unwrap();
    let mut acked = 0u64;
    let err = loop {
        match store.append(batch(acked)) {
            Ok(ack) => {
                assert_eq!(ack.stored, 1);
                acked += 1;
            }
            Err(e) => break e,
        }
        assert!(acked < 1000, "the disk never filled");
    };
    assert!(matches!(&err, Error::Io { .. }), "{err}");
    assert_eq!(
        tonic::Status::from(err).code(),
        tonic::Code::ResourceExhausted
    );
    // Refused again while full; what was acknowledged is intact.
    assert!(store.append(batch(acked)).is_err());
    let log = store.app("hello").unwrap();
    assert_eq!(log.read(0, 10_000).unwrap().len() as u64, acked);

    // Space comes back: the refused batch is accepted now, exactly once.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(store.append(batch(acked)).unwrap().stored, 1);
    assert_eq!(store.append(batch(acked)).unwrap().duplicates, 1);
    drop(store);
    let store = Store::open(StoreConfig::new(&at), None).unwrap();
    let records = store.app("hello").unwrap().read(0, 10_000).unwrap();
    assert_eq!(records.len() as u64, acked + 1);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.cursor, i as u64);
        assert_eq!(r.message, vec![b'a' + (i % 26) as u8; 10_000]);
    }
}
