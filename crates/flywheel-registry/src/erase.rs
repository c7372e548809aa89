//! Erasure (GDPR) in the registry: every version's model files rewritten without the
//! erased users.
//!
//! Of the files of a version, only retrieval models keep anything per user (ALS: the
//! trained user ids and factors); the ranker, the item indexes, `reference.json` (feature
//! distributions), `record.json` and `manifest.json` hold no user id. A model file that
//! changes is rewritten atomically ([`write_atomically`]), so a crash leaves the old file
//! or the new one; an interrupted erasure runs again at start-up and finds the rest.

use std::path::Path;

use flywheel_core::UserId;
use flywheel_retrieval::RetrievalModel;

use crate::error::{RegistryError, Result};
use crate::registry::{is_valid_version_name, models_dir, read_bin, write_bin};

/// What [`erase_users`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModelErasure {
    /// Versions looked at.
    pub versions_scanned: usize,
    /// Versions with at least one file rewritten.
    pub versions_rewritten: usize,
    /// Model files rewritten.
    pub files_rewritten: usize,
    /// Per-user entries dropped (a user's ALS factors in one version count once).
    pub user_entries_dropped: usize,
}

/// Rewrites the model files of every registered version without the users `erase`
/// says yes to. Versions that never knew them are left alone.
pub fn erase_users(data_dir: &Path, erase: &dyn Fn(&UserId) -> bool) -> Result<ModelErasure> {
    let mut report = ModelErasure::default();
    let dir = models_dir(data_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(RegistryError::io(&dir, e)),
    };
    let mut versions = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| RegistryError::io(&dir, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if is_valid_version_name(&name) && entry.path().is_dir() {
            versions.push(entry.path());
        }
    }
    versions.sort();
    for version in versions {
        report.versions_scanned += 1;
        let files = erase_in_version(&version, erase, &mut report)?;
        if files > 0 {
            report.versions_rewritten += 1;
            report.files_rewritten += files;
        }
    }
    Ok(report)
}

/// Rewrites one version's retrieval models; returns how many files changed.
fn erase_in_version(
    version: &Path,
    erase: &dyn Fn(&UserId) -> bool,
    report: &mut ModelErasure,
) -> Result<usize> {
    let mut files = 0;
    for kind in RetrievalModel::KINDS {
        let path = version.join(format!("{kind}.bin"));
        let Some(mut model) = read_bin::<RetrievalModel>(&path)? else {
            continue;
        };
        let dropped = model.forget_users(erase);
        if dropped > 0 {
            write_bin(&path, &model)?;
            report.user_entries_dropped += dropped;
            files += 1;
        }
    }
    Ok(files)
}
