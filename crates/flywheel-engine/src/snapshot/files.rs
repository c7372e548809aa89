//! Snapshot files in `<data_dir>/snapshots/`: `snapshot-<offset, 20 digits>.bin`,
//! written through a `.tmp` file that is fsynced, renamed into place, and made durable
//! by an fsync of the directory.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};

const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".bin";
const TEMP_SUFFIX: &str = ".tmp";

/// Where a data directory keeps its snapshots.
pub fn snapshots_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshots")
}

/// The file name of a snapshot at `offset`.
pub fn file_name(offset: u64) -> String {
    format!("{PREFIX}{offset:020}{SUFFIX}")
}

/// The offset in a snapshot file name, if it is one.
fn offset_of(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The snapshot files of `dir`, newest (largest offset) first. A missing directory
/// holds none.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EngineError::io(dir, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| EngineError::io(dir, e))?;
        let name = entry.file_name();
        if let Some(offset) = name.to_str().and_then(offset_of) {
            found.push((offset, entry.path()));
        }
    }
    found.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    Ok(found)
}

fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| EngineError::io(dir, e))
}

/// Creates `dir` (and makes its entry in the parent durable) if it does not exist.
fn ensure_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
    match dir.parent() {
        Some(parent) => fsync_dir(parent),
        None => Ok(()),
    }
}

/// Writes a snapshot file atomically: `header` and `payload` to a temporary file,
/// fsync, rename to its name, fsync the directory. Returns its path.
pub fn write_atomic(dir: &Path, offset: u64, header: &[u8], payload: &[u8]) -> Result<PathBuf> {
    ensure_dir(dir)?;
    let path = dir.join(file_name(offset));
    let temp = dir.join(format!("{}{TEMP_SUFFIX}", file_name(offset)));
    let written = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(header)?;
        file.write_all(payload)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(EngineError::io(&temp, e));
    }
    std::fs::rename(&temp, &path).map_err(|e| EngineError::io(&path, e))?;
    fsync_dir(dir)?;
    Ok(path)
}

/// Removes the snapshot files of `dir` beyond the newest `keep`, and any temporary
/// file a crash left; returns how many snapshot files it removed.
pub fn prune(dir: &Path, keep: usize) -> Result<usize> {
    let old: Vec<PathBuf> = list(dir)?
        .into_iter()
        .skip(keep)
        .map(|(_, path)| path)
        .collect();
    remove(dir, &old)
}

/// Removes every snapshot file of `dir` except `kept`, and any temporary file;
/// returns how many snapshot files it removed.
pub fn remove_all_except(dir: &Path, kept: &Path) -> Result<usize> {
    let old: Vec<PathBuf> = list(dir)?
        .into_iter()
        .map(|(_, path)| path)
        .filter(|path| path != kept)
        .collect();
    remove(dir, &old)
}

fn remove(dir: &Path, files: &[PathBuf]) -> Result<usize> {
    for path in files {
        std::fs::remove_file(path).map_err(|e| EngineError::io(path, e))?;
    }
    remove_temporaries(dir)?;
    if !files.is_empty() {
        fsync_dir(dir)?;
    }
    Ok(files.len())
}

/// Removes the temporary files an interrupted write left.
fn remove_temporaries(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(EngineError::io(dir, e)),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(PREFIX) && name.ends_with(TEMP_SUFFIX) {
            std::fs::remove_file(entry.path()).map_err(|e| EngineError::io(entry.path(), e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_newest_first_and_pruning_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for offset in [5u64, 500, 50] {
            write_atomic(dir.path(), offset, b"h", b"p").unwrap();
        }
        std::fs::write(dir.path().join("snapshot-x.bin"), b"").unwrap();
        std::fs::write(dir.path().join(format!("{}.tmp", file_name(9))), b"").unwrap();
        let offsets: Vec<u64> = list(dir.path()).unwrap().iter().map(|e| e.0).collect();
        assert_eq!(offsets, vec![500, 50, 5]);
        assert_eq!(prune(dir.path(), 2).unwrap(), 1);
        let offsets: Vec<u64> = list(dir.path()).unwrap().iter().map(|e| e.0).collect();
        assert_eq!(offsets, vec![500, 50]);
        assert!(!dir.path().join(format!("{}.tmp", file_name(9))).exists());
        assert_eq!(offset_of("snapshot-00000000000000000042.bin"), Some(42));
        assert_eq!(offset_of("snapshot-42.bin"), None);
    }
}
