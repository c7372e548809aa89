use flywheel_objstore::{
    erase_prefix_objects, objects_containing, publish_current, publish_snapshots, publish_version,
    replace_snapshots, replace_version, snapshots_dir,
};
use flywheel_registry as registry;

use crate::{engine_with_shop, test_store, train};

const ERASED: &str = "user-erase-me-7f3a91";

/// A model version and the snapshots hold a user's id; the erasure helper rewrites
/// them locally; after `replace_version` and `replace_snapshots` a LIST and a GET of
/// every object find the id in no byte.
#[test]
fn after_replacing_rewritten_versions_and_snapshots_no_object_holds_the_id() {
    let store = test_store("erasure");
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with_shop(dir.path());
    let version = train(&engine);
    let version_dir = registry::models_dir(dir.path()).join(&version);
    // Stand-ins for what an erasure rewrites: a factor file naming the user and a
    // reference mentioning them.
    std::fs::write(
        version_dir.join("user_factors.bin"),
        format!("..{ERASED}.."),
    )
    .unwrap();
    let reference = version_dir.join(registry::REFERENCE_FILE);
    let mut text = std::fs::read(&reference).unwrap_or_default();
    text.extend_from_slice(ERASED.as_bytes());
    std::fs::write(&reference, &text).unwrap();
    let snapshots = snapshots_dir(dir.path());
    std::fs::create_dir_all(snapshots.join("00000100")).unwrap();
    std::fs::write(snapshots.join("00000100/state.bin"), format!("a{ERASED}b")).unwrap();
    std::fs::write(snapshots.join("00000100/users.bin"), ERASED).unwrap();
    publish_version(&store, dir.path(), &version).unwrap();
    publish_current(&store, &version).unwrap();
    publish_snapshots(&store, dir.path()).unwrap();
    assert_eq!(
        objects_containing(&store, ERASED.as_bytes()).unwrap().len(),
        4
    );

    // The erasure: the user's factors dropped, the reference and snapshot rewritten.
    std::fs::remove_file(version_dir.join("user_factors.bin")).unwrap();
    std::fs::write(&reference, &text[..text.len() - ERASED.len()]).unwrap();
    std::fs::write(snapshots.join("00000100/state.bin"), "ab").unwrap();
    std::fs::remove_file(snapshots.join("00000100/users.bin")).unwrap();
    let replaced = replace_version(&store, dir.path(), &version).unwrap();
    assert_eq!(replaced.deleted, 1, "the dropped file's object is deleted");
    let moved = replace_snapshots(&store, dir.path()).unwrap();
    assert_eq!(
        moved.deleted, 2,
        "the dropped snapshot file and its sidecar"
    );

    let left = objects_containing(&store, ERASED.as_bytes()).unwrap();
    assert!(left.is_empty(), "objects still holding the id: {left:?}");
    // What is left is still a complete, verifiable version.
    let other = tempfile::tempdir().unwrap();
    flywheel_objstore::fetch_version(&store, other.path(), &version).unwrap();
    registry::load(other.path(), &version).unwrap();
}

#[test]
fn erasing_a_prefix_deletes_every_object_below_it_and_nothing_beside() {
    let store = test_store("erase-prefix");
    store.put("models/v1/a.bin", b"a".to_vec()).unwrap();
    store.put("models/v1/files.json", b"{}".to_vec()).unwrap();
    store.put("models/v11/a.bin", b"b".to_vec()).unwrap();
    assert_eq!(erase_prefix_objects(&store, "models/v1").unwrap(), 2);
    let keys: Vec<_> = store.list("").unwrap().into_iter().map(|o| o.key).collect();
    assert_eq!(keys, vec!["models/v11/a.bin"]);
}
