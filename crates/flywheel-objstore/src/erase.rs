//! Erasure support: delete a folder of objects, and scan every object's bytes.
//! (Rewritten versions and snapshots are re-uploaded with
//! [`crate::replace_version`] and [`crate::replace_snapshots`].)

use crate::error::Result;
use crate::store::RemoteStore;

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
}
