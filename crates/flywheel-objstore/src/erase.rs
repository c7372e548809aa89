//! Erasure support: bring the store in line with a data directory an erasure has
//! already rewritten ([`erase_with_local_copies`]), delete a folder of objects, and
//! scan every object's bytes.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use crate::error::{ObjectStoreError, Result};
use crate::store::RemoteStore;
use crate::versions::{local_entries, remote_current, remote_file_list, replace_version};

/// What [`erase_with_local_copies`] changed in the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RemoteErasure {
    /// Published versions whose local copy differs (rewritten), re-uploaded.
    pub versions_replaced: usize,
    /// Objects of those versions the rewritten copies no longer have, deleted.
    pub version_objects_deleted: usize,
    /// Versions this data directory does not hold whose objects held the user's id,
    /// deleted (never the one `models/CURRENT` names: that is an error).
    pub foreign_versions_deleted: usize,
    /// Snapshot files uploaded (the data directory's rewritten snapshots).
    pub snapshot_files_uploaded: usize,
    /// Snapshot objects (and sidecars) the local folder no longer has, deleted.
    pub snapshot_objects_deleted: usize,
}

/// After an erasure rewrote the data directory's model versions and snapshots: every
/// published version whose local copy differs is replaced by it (and its stale objects
/// deleted); a published version the data directory does not hold is scanned for
/// `needle` (the user's id, when known) and deleted if it holds it; the remote
/// snapshots become exactly the local ones.
pub fn erase_with_local_copies(
    store: &RemoteStore,
    data_dir: &Path,
    needle: Option<&[u8]>,
) -> Result<RemoteErasure> {
    let mut done = RemoteErasure::default();
    for version in remote_versions(store)? {
        let held = flywheel_registry::models_dir(data_dir)
            .join(&version)
            .join("manifest.json")
            .is_file();
        if held {
            if differs_from_local(store, data_dir, &version)? {
                let replaced = replace_version(store, data_dir, &version)?;
                done.versions_replaced += 1;
                done.version_objects_deleted += replaced.deleted;
            }
        } else if let Some(needle) = needle {
            done.foreign_versions_deleted += delete_if_holding(store, &version, needle)?;
        }
    }
    let snapshots = crate::snapshots::replace_snapshots(store, data_dir)?;
    done.snapshot_files_uploaded = snapshots.files;
    done.snapshot_objects_deleted = snapshots.deleted;
    Ok(done)
}

/// The versions with objects in the store (`models/<version>/...`).
fn remote_versions(store: &RemoteStore) -> Result<BTreeSet<String>> {
    let mut versions = BTreeSet::new();
    for object in store.list("models")? {
        let mut parts = object.key.splitn(3, '/');
        if let (Some("models"), Some(version), Some(_)) = (parts.next(), parts.next(), parts.next())
        {
            if flywheel_registry::is_valid_version_name(version) {
                versions.insert(version.to_string());
            }
        }
    }
    Ok(versions)
}

/// Whether the published copy of `version` is not the local one (or is incomplete).
fn differs_from_local(store: &RemoteStore, data_dir: &Path, version: &str) -> Result<bool> {
    let Some(remote) = remote_file_list(store, version)? else {
        return Ok(true);
    };
    let mut published = remote.files;
    published.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(published != local_entries(data_dir, version)?)
}

/// Deletes a version this data directory does not hold if an object of it holds
/// `needle`; returns 1 if it did.
fn delete_if_holding(store: &RemoteStore, version: &str, needle: &[u8]) -> Result<usize> {
    let folder = format!("models/{version}");
    let mut holds = false;
    for object in store.list(&folder)? {
        if store
            .get(&object.key)?
            .is_some_and(|b| contains(&b, needle))
        {
            holds = true;
            break;
        }
    }
    if !holds {
        return Ok(0);
    }
    if remote_current(store)?.as_deref() == Some(version) {
        return Err(ObjectStoreError::Conflict(format!(
            "{version} holds the erased user, is served (models/CURRENT) and was trained \
             by another replica: erase the user there, or promote another version first"
        )));
    }
    erase_prefix_objects(store, &folder)?;
    Ok(1)
}

/// Deletes every object below `under` (e.g. `models/v3`, `snapshots`; empty: every
/// object below the store's prefix). Returns how many were deleted.
pub fn erase_prefix_objects(store: &RemoteStore, under: &str) -> Result<usize> {
    let objects = store.list(under)?;
    for object in &objects {
        store.delete(&object.key)?;
    }
    Ok(objects.len())
}

/// The keys of every object below the prefix whose bytes contain `needle`: a LIST,
/// then a GET of each object (the byte scan of an erasure test).
pub fn objects_containing(store: &RemoteStore, needle: &[u8]) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for object in store.list("")? {
        let Some(bytes) = store.get(&object.key)? else {
            continue;
        };
        if contains(&bytes, needle) {
            found.push(object.key);
        }
    }
    Ok(found)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Connection;

    #[test]
    fn erasing_a_folder_leaves_its_neighbours_and_the_scan_finds_bytes() -> Result<()> {
        let store = RemoteStore::open("memory://p", &Connection::default())?;
        store.put("models/v1/a.bin", b"xx user-42 yy".to_vec())?;
        store.put("models/v10/a.bin", b"nothing".to_vec())?;
        store.put("snapshots/s.bin", b"user-42".to_vec())?;
        assert_eq!(
            objects_containing(&store, b"user-42")?,
            vec!["models/v1/a.bin", "snapshots/s.bin"]
        );
        assert_eq!(erase_prefix_objects(&store, "models/v1")?, 1);
        assert_eq!(store.list("models")?.len(), 1);
        assert_eq!(
            objects_containing(&store, b"user-42")?,
            vec!["snapshots/s.bin"]
        );
        Ok(())
    }

    #[test]
    fn a_foreign_version_holding_the_id_is_deleted_unless_it_is_served() -> Result<()> {
        let store = RemoteStore::open("memory://q", &Connection::default())?;
        let dir = tempfile::tempdir().map_err(|e| ObjectStoreError::io("tempdir", e))?;
        store.put("models/v1/a.bin", b"xx user-42 yy".to_vec())?;
        store.put("models/v2/a.bin", b"nobody".to_vec())?;
        store.put("snapshots/old.bin", b"user-42".to_vec())?;
        let done = erase_with_local_copies(&store, dir.path(), Some(b"user-42"))?;
        assert_eq!(done.foreign_versions_deleted, 1);
        assert_eq!(
            done.snapshot_objects_deleted, 1,
            "no local snapshot: none kept"
        );
        assert!(objects_containing(&store, b"user-42")?.is_empty());
        assert_eq!(store.list("models")?.len(), 1, "v2 stays");
        store.put("models/v3/a.bin", b"user-42".to_vec())?;
        store.put(crate::CURRENT_KEY, b"v3".to_vec())?;
        let refused = erase_with_local_copies(&store, dir.path(), Some(b"user-42"));
        assert!(
            matches!(refused, Err(ObjectStoreError::Conflict(_))),
            "{refused:?}"
        );
        Ok(())
    }
}
