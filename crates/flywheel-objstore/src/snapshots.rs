//! The snapshots folder (`<data_dir>/snapshots/`, any tree of files) in the store:
//! each file at `snapshots/<path>`, then its sidecar `snapshots/<path>.sha256` (size
//! and SHA-256, JSON), written after it. A file without its sidecar is incomplete
//! and never fetched. Publishing adds and updates; it never deletes what another
//! replica published (only [`replace_snapshots`], for erasure, deletes).

use std::path::{Path, PathBuf};

use crate::checksum::{is_safe_relative, FileEntry};
use crate::error::{ObjectStoreError, Result};
use crate::store::RemoteStore;
use crate::versions::write_synced;

/// The folder of a data directory that is mirrored.
pub fn snapshots_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshots")
}

const ROOT: &str = "snapshots";
const SIDECAR: &str = ".sha256";

/// What a snapshot sync moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moved {
    /// Files transferred.
    pub files: usize,
    /// Bytes transferred.
    pub bytes: u64,
    /// Remote objects deleted.
    pub deleted: usize,
}

/// Every file below `dir` as a `/`-separated relative path (sidecar-named and
/// temporary files left out), sorted.
fn local_tree(dir: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    if dir.is_dir() {
        walk(dir, "", &mut found)?;
    }
    found.sort();
    Ok(found)
}

fn walk(dir: &Path, relative: &str, found: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| ObjectStoreError::io(dir, e))? {
        let entry = entry.map_err(|e| ObjectStoreError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let path = relative_join(relative, &name);
        let file_type = entry
            .file_type()
            .map_err(|e| ObjectStoreError::io(entry.path(), e))?;
        if file_type.is_dir() {
            walk(&entry.path(), &path, found)?;
        } else if file_type.is_file()
            && !name.ends_with(SIDECAR)
            && !name.contains(".tmp")
            && is_safe_relative(&path)
        {
            found.push(path);
        }
    }
    Ok(())
}

fn relative_join(relative: &str, name: &str) -> String {
    if relative.is_empty() {
        name.to_string()
    } else {
        format!("{relative}/{name}")
    }
}

fn remote_entry(store: &RemoteStore, path: &str) -> Result<Option<FileEntry>> {
    let key = format!("{ROOT}/{path}{SIDECAR}");
    let Some(bytes) = store.get(&key)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ObjectStoreError::Damaged {
            key,
            reason: format!("not a checksum sidecar: {e}"),
        })
}

/// Uploads every local snapshot file the store does not hold with the same content.
pub fn publish_snapshots(store: &RemoteStore, data_dir: &Path) -> Result<Moved> {
    let dir = snapshots_dir(data_dir);
    let mut moved = Moved::default();
    for path in local_tree(&dir)? {
        let file = dir.join(&path);
        let bytes = std::fs::read(&file).map_err(|e| ObjectStoreError::io(&file, e))?;
        let entry = FileEntry::of(&path, &bytes);
        if remote_entry(store, &path)?.as_ref() == Some(&entry) {
            continue;
        }
        moved.files += 1;
        moved.bytes += bytes.len() as u64;
        store.put(&format!("{ROOT}/{path}"), bytes)?;
        let sidecar = serde_json::to_vec(&entry)
            .map_err(|e| ObjectStoreError::Config(format!("encoding a sidecar: {e}")))?;
        store.put(&format!("{ROOT}/{path}{SIDECAR}"), sidecar)?;
    }
    Ok(moved)
}

/// Makes the store's snapshots exactly the local ones: uploads, then deletes every
/// remote snapshot object the local folder no longer has (an erasure rewrote it).
pub fn replace_snapshots(store: &RemoteStore, data_dir: &Path) -> Result<Moved> {
    let mut moved = publish_snapshots(store, data_dir)?;
    let local = local_tree(&snapshots_dir(data_dir))?;
    for object in store.list(ROOT)? {
        let path = object.key.strip_prefix("snapshots/").unwrap_or(&object.key);
        let data_path = path.strip_suffix(SIDECAR).unwrap_or(path);
        if local
            .binary_search_by(|p| p.as_str().cmp(data_path))
            .is_err()
        {
            store.delete(&object.key)?;
            moved.deleted += 1;
        }
    }
    Ok(moved)
}

/// Downloads every complete remote snapshot file the local folder lacks or holds
/// with other content; each is verified against its sidecar before it is written
/// (atomically). A damaged one is reported and nothing of it is written.
pub fn fetch_snapshots(store: &RemoteStore, data_dir: &Path) -> Result<Moved> {
    let dir = snapshots_dir(data_dir);
    let mut moved = Moved::default();
    for object in store.list(ROOT)? {
        let Some(path) = object
            .key
            .strip_prefix("snapshots/")
            .and_then(|p| p.strip_suffix(SIDECAR))
        else {
            continue;
        };
        let key = format!("{ROOT}/{path}");
        if !is_safe_relative(path) {
            return Err(ObjectStoreError::Damaged {
                key,
                reason: "not a safe relative path".into(),
            });
        }
        let Some(entry) = remote_entry(store, path)? else {
            continue;
        };
        let local = dir.join(path);
        if std::fs::read(&local).is_ok_and(|bytes| entry.mismatch(&bytes).is_none()) {
            continue;
        }
        let bytes = store.get(&key)?.ok_or_else(|| ObjectStoreError::Damaged {
            key: key.clone(),
            reason: "missing (its sidecar is there)".into(),
        })?;
        if let Some(reason) = entry.mismatch(&bytes) {
            return Err(ObjectStoreError::Damaged { key, reason });
        }
        write_file_atomically(&local, &bytes)?;
        moved.files += 1;
        moved.bytes += bytes.len() as u64;
    }
    Ok(moved)
}

fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| ObjectStoreError::io(parent, e))?;
    let tmp = path.with_extension(format!("tmp.fetch.{}", std::process::id()));
    write_synced(&tmp, bytes)?;
    std::fs::rename(&tmp, path).map_err(|e| ObjectStoreError::io(path, e))?;
    crate::versions::sync_dir(parent);
    Ok(())
}

/// A cheap fingerprint of the local snapshots folder (paths, sizes, modification
/// times), so a poller hashes and uploads only after it changed.
pub fn snapshots_fingerprint(data_dir: &Path) -> Result<Vec<(String, u64, u128)>> {
    let dir = snapshots_dir(data_dir);
    let mut out = Vec::new();
    for path in local_tree(&dir)? {
        let meta = std::fs::metadata(dir.join(&path))
            .map_err(|e| ObjectStoreError::io(dir.join(&path), e))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        out.push((path, meta.len(), modified));
    }
    Ok(out)
}
