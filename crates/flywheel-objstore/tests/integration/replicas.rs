use flywheel_objstore::{
    fetch_version, publish_version, remote_current, remote_file_list, ObjectStoreError,
    ReplicaSync, Step, CURRENT_KEY,
};
use flywheel_registry as registry;

use crate::{engine_with_shop, served_version, test_store, train};

#[test]
fn what_one_replica_trains_the_other_fetches_and_serves() {
    let store = test_store("replicas-swap");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (
        engine_with_shop(dir_a.path()),
        engine_with_shop(dir_b.path()),
    );
    let mut sync_a = ReplicaSync::new(store.handle().unwrap());
    let mut sync_b = ReplicaSync::new(store.handle().unwrap());
    assert_eq!(
        sync_b.step(&b).unwrap(),
        Step::Idle,
        "nothing published yet"
    );

    let first = train(&a);
    assert!(
        matches!(sync_a.step(&a).unwrap(), Step::Published { ref version, bytes } if *version == first && bytes > 0)
    );
    assert_eq!(
        remote_current(&store).unwrap().as_deref(),
        Some(first.as_str())
    );
    let pulled = sync_b.step(&b).unwrap();
    assert!(
        matches!(pulled, Step::Pulled { ref version, bytes } if *version == first && bytes > 0),
        "{pulled:?}"
    );
    assert_eq!(served_version(&b), first);
    assert_eq!(
        registry::current_version(dir_b.path()).unwrap(),
        Some(first.clone())
    );
    // Every published file arrived byte for byte.
    for entry in remote_file_list(&store, &first).unwrap().unwrap().files {
        let local = registry::models_dir(dir_b.path())
            .join(&first)
            .join(&entry.name);
        let theirs = registry::models_dir(dir_a.path())
            .join(&first)
            .join(&entry.name);
        if entry.name != "record.json" {
            assert_eq!(
                std::fs::read(local).unwrap(),
                std::fs::read(theirs).unwrap(),
                "{}",
                entry.name
            );
        }
    }
    assert_eq!(
        sync_b.step(&b).unwrap(),
        Step::Idle,
        "pulled once, then idle"
    );

    let second = train(&a);
    assert!(
        matches!(sync_a.step(&a).unwrap(), Step::Published { ref version, .. } if *version == second)
    );
    assert!(
        matches!(sync_b.step(&b).unwrap(), Step::Pulled { ref version, .. } if *version == second)
    );
    assert_eq!(served_version(&b), second);
}

#[test]
fn a_truncated_object_is_refused_and_the_served_version_stays() {
    let store = test_store("replicas-truncated");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (
        engine_with_shop(dir_a.path()),
        engine_with_shop(dir_b.path()),
    );
    let mut sync_a = ReplicaSync::new(store.handle().unwrap());
    let mut sync_b = ReplicaSync::new(store.handle().unwrap());
    let first = train(&a);
    sync_a.step(&a).unwrap();
    sync_b.step(&b).unwrap();
    assert_eq!(served_version(&b), first);

    let second = train(&a);
    sync_a.step(&a).unwrap();
    let list = remote_file_list(&store, &second).unwrap().unwrap();
    let biggest = list.files.iter().max_by_key(|f| f.size).unwrap();
    let key = format!("models/{second}/{}", biggest.name);
    let bytes = store.get(&key).unwrap().unwrap();
    store.put(&key, bytes[..bytes.len() / 2].to_vec()).unwrap();

    let error = sync_b.step(&b).unwrap_err();
    assert!(matches!(error, ObjectStoreError::Damaged { .. }), "{error}");
    assert!(error.to_string().contains(&biggest.name), "{error}");
    assert_eq!(served_version(&b), first, "the served version stays");
    assert_eq!(
        registry::current_version(dir_b.path()).unwrap(),
        Some(first.clone())
    );
    assert!(
        !registry::models_dir(dir_b.path()).join(&second).exists(),
        "nothing installed"
    );
    let leftovers: Vec<_> = std::fs::read_dir(registry::models_dir(dir_b.path()))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");

    // Repaired, the next poll swaps it in.
    store.put(&key, bytes).unwrap();
    assert!(
        matches!(sync_b.step(&b).unwrap(), Step::Pulled { ref version, .. } if *version == second)
    );
    assert_eq!(served_version(&b), second);
}

/// A publication cut off after any number of puts never leaves `CURRENT` naming an
/// incomplete version: a replica polling then keeps serving the old one.
#[test]
fn an_interrupted_publication_never_moves_the_pointer() {
    let store = test_store("replicas-interrupted");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (
        engine_with_shop(dir_a.path()),
        engine_with_shop(dir_b.path()),
    );
    let mut sync_a = ReplicaSync::new(store.handle().unwrap());
    let mut sync_b = ReplicaSync::new(store.handle().unwrap());
    let first = train(&a);
    sync_a.step(&a).unwrap();
    sync_b.step(&b).unwrap();
    let second = train(&a);
    let files = std::fs::read_dir(registry::models_dir(dir_a.path()).join(&second))
        .unwrap()
        .count() as u64;
    // files, then files.json, then CURRENT: every cut before the last put.
    for puts in 0..files + 2 {
        sync_a.store().fail_puts_after(Some(puts));
        let outcome = sync_a.step(&a);
        assert!(outcome.is_err(), "{puts} puts were enough: {outcome:?}");
        assert_eq!(
            remote_current(&store).unwrap().as_deref(),
            Some(first.as_str()),
            "after {puts} puts"
        );
        assert_eq!(sync_b.step(&b).unwrap(), Step::Idle, "after {puts} puts");
        assert_eq!(served_version(&b), first);
        for object in store.list(&format!("models/{second}")).unwrap() {
            store.delete(&object.key).unwrap();
        }
    }
    sync_a.store().fail_puts_after(None);
    assert!(
        matches!(sync_a.step(&a).unwrap(), Step::Published { ref version, .. } if *version == second)
    );
    assert!(store.get(CURRENT_KEY).unwrap().is_some());
    assert!(
        matches!(sync_b.step(&b).unwrap(), Step::Pulled { ref version, .. } if *version == second)
    );
}

#[test]
fn a_different_version_under_the_same_name_is_a_conflict_and_nothing_is_overwritten() {
    let store = test_store("replicas-conflict");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (
        engine_with_shop(dir_a.path()),
        engine_with_shop(dir_b.path()),
    );
    let version_a = train(&a);
    let version_b = train(&b);
    assert_eq!(
        version_a, version_b,
        "both replicas named their first version alike"
    );
    publish_version(&store, dir_a.path(), &version_a).unwrap();
    let error = publish_version(&store, dir_b.path(), &version_b).unwrap_err();
    assert!(matches!(error, ObjectStoreError::Conflict(_)), "{error}");
    let error = fetch_version(&store, dir_b.path(), &version_a).unwrap_err();
    assert!(matches!(error, ObjectStoreError::Conflict(_)), "{error}");
    // Publishing the same version again uploads nothing.
    let again = publish_version(&store, dir_a.path(), &version_a).unwrap();
    assert_eq!((again.files, again.bytes), (0, 0));
}
