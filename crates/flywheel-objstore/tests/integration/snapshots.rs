use flywheel_objstore::{fetch_snapshots, publish_snapshots, snapshots_dir, ObjectStoreError};
use std::path::Path;

use crate::test_store;

fn write(dir: &Path, path: &str, bytes: &[u8]) {
    let file = snapshots_dir(dir).join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, bytes).unwrap();
}

fn read(dir: &Path, path: &str) -> Vec<u8> {
    std::fs::read(snapshots_dir(dir).join(path)).unwrap()
}

/// Deterministic bytes of a given length (seeded, no RNG crate needed).
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

#[test]
fn a_snapshot_folder_arrives_byte_for_byte_and_only_changes_move_again() {
    let store = test_store("snapshots-roundtrip");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(a.path(), "00000042/state.bin", &bytes(1, 300_000));
    write(a.path(), "00000042/meta.json", b"{\"offset\":42}");
    write(a.path(), "LATEST", b"00000042");
    assert_eq!(publish_snapshots(&store, a.path()).unwrap().files, 3);
    assert_eq!(
        publish_snapshots(&store, a.path()).unwrap().files,
        0,
        "unchanged"
    );
    assert_eq!(fetch_snapshots(&store, b.path()).unwrap().files, 3);
    for path in ["00000042/state.bin", "00000042/meta.json", "LATEST"] {
        assert_eq!(read(a.path(), path), read(b.path(), path), "{path}");
    }
    assert_eq!(
        fetch_snapshots(&store, b.path()).unwrap().files,
        0,
        "nothing new"
    );
    write(a.path(), "LATEST", b"00000043");
    assert_eq!(publish_snapshots(&store, a.path()).unwrap().files, 1);
    assert_eq!(fetch_snapshots(&store, b.path()).unwrap().files, 1);
    assert_eq!(read(b.path(), "LATEST"), b"00000043");
}

#[test]
fn a_truncated_snapshot_is_refused_and_the_local_copy_is_untouched() {
    let store = test_store("snapshots-truncated");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(a.path(), "00000007/state.bin", &bytes(2, 50_000));
    publish_snapshots(&store, a.path()).unwrap();
    fetch_snapshots(&store, b.path()).unwrap();
    let good = read(b.path(), "00000007/state.bin");

    write(a.path(), "00000007/state.bin", &bytes(3, 50_000));
    publish_snapshots(&store, a.path()).unwrap();
    let key = "snapshots/00000007/state.bin";
    let uploaded = store.get(key).unwrap().unwrap();
    store.put(key, uploaded[..1000].to_vec()).unwrap();
    let error = fetch_snapshots(&store, b.path()).unwrap_err();
    assert!(matches!(error, ObjectStoreError::Damaged { .. }), "{error}");
    assert_eq!(
        read(b.path(), "00000007/state.bin"),
        good,
        "the old copy stays"
    );
}
