//! Model versions in the store: `models/<version>/<file>` for every file of the local
//! version's folder, then `models/<version>/files.json` (name, size, SHA-256 of each:
//! a version without it is incomplete and never fetched), and the pointer
//! `models/CURRENT`, written only after the version it names is complete.
//! A fetch verifies every file against `files.json` in a staging folder and renames
//! it into the registry only when all match.

use flywheel_registry::{is_valid_version_name, models_dir};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::checksum::{is_safe_component, FileEntry};
use crate::error::{ObjectStoreError, Result};
use crate::store::RemoteStore;

/// The key of the served version's pointer.
pub const CURRENT_KEY: &str = "models/CURRENT";
/// The name of a published version's file list (its completion marker).
pub const FILE_LIST: &str = "files.json";

/// What a published version holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileList {
    /// The version.
    pub version: String,
    /// Every file of its folder.
    pub files: Vec<FileEntry>,
}

impl FileList {
    fn entry(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.name == name)
    }
}

/// What a publication did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The version.
    pub version: String,
    /// Files uploaded (0 when it was published already).
    pub files: usize,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Stale objects of the version deleted (only [`replace_version`] deletes).
    pub deleted: usize,
}

fn version_key(version: &str, name: &str) -> String {
    format!("models/{version}/{name}")
}

fn checked_version(version: &str) -> Result<()> {
    if is_valid_version_name(version) {
        Ok(())
    } else {
        Err(
            flywheel_registry::RegistryError::InvalidVersion(version.chars().take(64).collect())
                .into(),
        )
    }
}

/// The files of a local version folder (temporary files of atomic writes left out).
fn local_files(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| ObjectStoreError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ObjectStoreError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let path = entry.path();
        if !path.is_file() || name.contains(".tmp.") || !is_safe_component(&name) {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| ObjectStoreError::io(&path, e))?;
        files.push((name, bytes));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

fn local_version_dir(data_dir: &Path, version: &str) -> Result<PathBuf> {
    checked_version(version)?;
    let dir = models_dir(data_dir).join(version);
    if !dir.join("manifest.json").is_file() {
        return Err(
            flywheel_registry::RegistryError::NotFound(format!("model version {version}")).into(),
        );
    }
    Ok(dir)
}

/// The entries (name, size, SHA-256) of a local version's files, sorted by name.
pub(crate) fn local_entries(data_dir: &Path, version: &str) -> Result<Vec<FileEntry>> {
    let dir = local_version_dir(data_dir, version)?;
    let files = local_files(&dir)?;
    Ok(files
        .iter()
        .map(|(name, bytes)| FileEntry::of(name, bytes))
        .collect())
}

/// The published file list of `version`; `None` when it is not (completely) published.
pub fn remote_file_list(store: &RemoteStore, version: &str) -> Result<Option<FileList>> {
    checked_version(version)?;
    let key = version_key(version, FILE_LIST);
    let Some(bytes) = store.get(&key)? else {
        return Ok(None);
    };
    let list: FileList = serde_json::from_slice(&bytes).map_err(|e| ObjectStoreError::Damaged {
        key: key.clone(),
        reason: format!("not a file list: {e}"),
    })?;
    if list.version != version {
        return Err(ObjectStoreError::Damaged {
            key,
            reason: format!("it lists version {}", list.version),
        });
    }
    Ok(Some(list))
}

/// Uploads the files, then the list that marks the version complete.
fn upload(
    store: &RemoteStore,
    version: &str,
    files: Vec<(String, Vec<u8>)>,
) -> Result<(FileList, u64)> {
    let mut list = FileList {
        version: version.to_string(),
        files: Vec::with_capacity(files.len()),
    };
    let mut bytes_sent = 0;
    for (name, bytes) in files {
        list.files.push(FileEntry::of(&name, &bytes));
        bytes_sent += bytes.len() as u64;
        store.put(&version_key(version, &name), bytes)?;
    }
    let json = serde_json::to_vec_pretty(&list)
        .map_err(|e| ObjectStoreError::Config(format!("encoding the file list: {e}")))?;
    store.put(&version_key(version, FILE_LIST), json)?;
    Ok((list, bytes_sent))
}

/// Publishes a local version (every file of its folder) unless it is published already.
/// A different version published under the same name is a conflict: nothing is
/// overwritten (replicas that train must not reuse each other's version names).
/// Does not touch `CURRENT` (see [`publish_current`]).
pub fn publish_version(store: &RemoteStore, data_dir: &Path, version: &str) -> Result<Published> {
    let dir = local_version_dir(data_dir, version)?;
    let files = local_files(&dir)?;
    if let Some(remote) = remote_file_list(store, version)? {
        let manifest = files.iter().find(|(name, _)| name == "manifest.json");
        let same = match (manifest, remote.entry("manifest.json")) {
            (Some((_, bytes)), Some(entry)) => entry.mismatch(bytes).is_none(),
            _ => false,
        };
        if same {
            return Ok(Published {
                version: version.to_string(),
                files: 0,
                bytes: 0,
                deleted: 0,
            });
        }
        return Err(ObjectStoreError::Conflict(format!(
            "{} already holds a different {version} (another replica trained it); \
             not overwritten",
            store.url()
        )));
    }
    let (list, bytes) = upload(store, version, files)?;
    Ok(Published {
        version: version.to_string(),
        files: list.files.len(),
        bytes,
        deleted: 0,
    })
}

/// Re-uploads a local version that was rewritten (e.g. by an erasure) over its
/// published copy, then deletes every object of the version the new copy no longer
/// has. Replicas that fetched the old copy keep it: they are erased locally.
pub fn replace_version(store: &RemoteStore, data_dir: &Path, version: &str) -> Result<Published> {
    let dir = local_version_dir(data_dir, version)?;
    let files = local_files(&dir)?;
    let (list, bytes) = upload(store, version, files)?;
    let mut deleted = 0;
    for object in store.list(&format!("models/{version}"))? {
        let name = object.key.rsplit('/').next().unwrap_or_default();
        if name != FILE_LIST && list.entry(name).is_none() {
            store.delete(&object.key)?;
            deleted += 1;
        }
    }
    Ok(Published {
        version: version.to_string(),
        files: list.files.len(),
        bytes,
        deleted,
    })
}

/// Points `models/CURRENT` at `version`, which must be completely published.
pub fn publish_current(store: &RemoteStore, version: &str) -> Result<()> {
    if remote_file_list(store, version)?.is_none() {
        return Err(ObjectStoreError::Conflict(format!(
            "{version} is not completely published to {}; CURRENT stays",
            store.url()
        )));
    }
    store.put(CURRENT_KEY, version.as_bytes().to_vec())
}

/// The version `models/CURRENT` names, if any (a pointer that is not a version name
/// is an error, never followed).
pub fn remote_current(store: &RemoteStore) -> Result<Option<String>> {
    let Some(bytes) = store.get(CURRENT_KEY)? else {
        return Ok(None);
    };
    let name = String::from_utf8_lossy(&bytes).trim().to_string();
    checked_version(&name)?;
    Ok(Some(name))
}

/// What a fetch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The version.
    pub version: String,
    /// Files downloaded (0 when the local registry had the version already).
    pub files: usize,
    /// Bytes downloaded.
    pub bytes: u64,
}

/// Downloads a published version into the local registry: every file is checked
/// against the publisher's size and SHA-256 in a staging folder, which is renamed to
/// `models/<version>` only when all match. A version the registry has already (the
/// same manifest) is not downloaded again; a different one under the same name is a
/// conflict. Does not make it current.
pub fn fetch_version(store: &RemoteStore, data_dir: &Path, version: &str) -> Result<Fetched> {
    let list = remote_file_list(store, version)?.ok_or_else(|| ObjectStoreError::Damaged {
        key: version_key(version, FILE_LIST),
        reason: "missing: the version is not completely published".into(),
    })?;
    let target = models_dir(data_dir).join(version);
    if already_local(&list, &target)? {
        return Ok(Fetched {
            version: version.to_string(),
            files: 0,
            bytes: 0,
        });
    }
    let staging = models_dir(data_dir).join(format!(".fetch-{version}-{}", std::process::id()));
    let result = download_into(store, &list, &staging).and_then(|bytes| {
        std::fs::rename(&staging, &target).map_err(|e| ObjectStoreError::io(&target, e))?;
        sync_dir(&models_dir(data_dir));
        Ok(bytes)
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    Ok(Fetched {
        version: version.to_string(),
        files: list.files.len(),
        bytes: result?,
    })
}

/// Whether the registry holds this very version already; an error when it holds
/// another one under the name (or a folder a training is writing).
fn already_local(list: &FileList, target: &Path) -> Result<bool> {
    if !target.exists() {
        return Ok(false);
    }
    let manifest = target.join("manifest.json");
    let conflict = |why: &str| {
        Err(ObjectStoreError::Conflict(format!(
            "the local registry's {} {why}; the published one is not installed",
            list.version
        )))
    };
    if !manifest.is_file() {
        return conflict("is being written (a training in progress?)");
    }
    let bytes = std::fs::read(&manifest).map_err(|e| ObjectStoreError::io(&manifest, e))?;
    match list.entry("manifest.json") {
        Some(entry) if entry.mismatch(&bytes).is_none() => Ok(true),
        _ => conflict("is a different model (trained here)"),
    }
}

fn download_into(store: &RemoteStore, list: &FileList, staging: &Path) -> Result<u64> {
    if staging.exists() {
        std::fs::remove_dir_all(staging).map_err(|e| ObjectStoreError::io(staging, e))?;
    }
    std::fs::create_dir_all(staging).map_err(|e| ObjectStoreError::io(staging, e))?;
    let mut total = 0;
    for entry in &list.files {
        let key = version_key(&list.version, &entry.name);
        if !is_safe_component(&entry.name) {
            return Err(ObjectStoreError::Damaged {
                key,
                reason: "the file list names a path, not a file".into(),
            });
        }
        let bytes = store.get(&key)?.ok_or_else(|| ObjectStoreError::Damaged {
            key: key.clone(),
            reason: "missing".into(),
        })?;
        if let Some(reason) = entry.mismatch(&bytes) {
            return Err(ObjectStoreError::Damaged { key, reason });
        }
        total += bytes.len() as u64;
        write_synced(&staging.join(&entry.name), &bytes)?;
    }
    sync_dir(staging);
    Ok(total)
}

pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(|e| ObjectStoreError::io(path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| ObjectStoreError::io(path, e))
}

pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(handle) = std::fs::File::open(dir) {
        let _ = handle.sync_all();
    }
}
