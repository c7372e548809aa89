//! The canary: one registered version serving a share of users beside `CURRENT`.
//!
//! It is kept where the registry keeps the served version, in a file of the models
//! folder (`models/CANARY`, JSON, replaced atomically), so a restart keeps it exactly
//! as `CURRENT` survives one. Starting a canary loads the version completely first: a
//! version that does not load is refused and nothing changes. Which users it serves
//! is the engine's business (the same MurmurHash3 assignment as experiments); the
//! registry only records the version, the share, and who started it when.

use flywheel_core::Timestamp;
use flywheel_pipeline::ModelSet;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::error::{RegistryError, Result};
use crate::lineage::Action;
use crate::registry::{
    current_version, is_valid_version_name, load, models_dir, update_record, version_dir,
    write_atomically, Status,
};

/// The buckets of the assignment (as experiments: `% 10000`).
const BUCKETS: u32 = 10_000;

/// A running canary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Canary {
    /// The version it serves.
    pub version: String,
    /// The share of users it serves (of those outside running experiments).
    pub share: f64,
    /// When it started (a change of share keeps it).
    pub started_at: Timestamp,
    /// Who started it.
    pub by: String,
}

impl Canary {
    /// The assignment's salt: users hash as `mmh3("canary:<version>:<user_id>")`, so
    /// each canary picks its own users and a larger share keeps the ones it had.
    pub fn salt(&self) -> String {
        format!("canary:{}", self.version)
    }

    /// How many of the 10,000 buckets it holds: `[0, buckets)`.
    pub fn buckets(&self) -> u32 {
        buckets_for(self.share)
    }
}

fn buckets_for(share: f64) -> u32 {
    (share * f64::from(BUCKETS)).round() as u32
}

fn canary_file(data_dir: &Path) -> PathBuf {
    models_dir(data_dir).join("CANARY")
}

/// The running canary, if any. A file naming something that is not a version is an
/// error, never followed.
pub fn canary(data_dir: &Path) -> Result<Option<Canary>> {
    let path = canary_file(data_dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RegistryError::io(path, e)),
    };
    let canary: Canary = serde_json::from_slice(&bytes)
        .map_err(|e| RegistryError::Model(format!("{}: {e}", path.display())))?;
    if !is_valid_version_name(&canary.version) {
        return Err(RegistryError::InvalidVersion(canary.version));
    }
    Ok(Some(canary))
}

fn check_share(share: f64) -> Result<()> {
    let buckets = buckets_for(share);
    if !share.is_finite() || buckets == 0 || buckets >= BUCKETS {
        return Err(RegistryError::Refused(format!(
            "share {share} is not a canary share: it must be at least 0.0001 and below 1 \
             (to serve everyone, promote the version)"
        )));
    }
    Ok(())
}

/// Makes `version` the canary serving `share` of users, or changes the share of the
/// running canary of that version. The version must be registered, not the serving
/// one, and load completely; another version's canary must end first. Returns the
/// canary and the loaded models.
pub fn start_canary(
    data_dir: &Path,
    version: &str,
    share: f64,
    by: &str,
) -> Result<(Canary, ModelSet)> {
    check_share(share)?;
    version_dir(data_dir, version)?;
    if current_version(data_dir)?.as_deref() == Some(version) {
        return Err(RegistryError::Refused(format!(
            "{version} is the serving version; a canary must be another version"
        )));
    }
    let running = canary(data_dir)?;
    if let Some(other) = running.as_ref().filter(|c| c.version != version) {
        return Err(RegistryError::Refused(format!(
            "{} is the canary (share {}); promote it or roll it back before starting another",
            other.version, other.share
        )));
    }
    let models = load(data_dir, version)
        .map_err(|e| RegistryError::Refused(format!("{version} cannot serve as a canary: {e}")))?;
    let (action, started_at) = match &running {
        Some(previous) => (Action::CanaryShareChanged, previous.started_at),
        None => (Action::CanaryStarted, Timestamp::now()),
    };
    let canary = Canary {
        version: version.to_string(),
        share,
        started_at,
        by: by.to_string(),
    };
    // The record first: a crash before the file leaves a record the listing ignores.
    update_record(data_dir, version, |r| {
        r.status = Status::Canary;
        r.lineage.push(action, by, Some(format!("share {share}")));
    })?;
    write_canary(data_dir, &canary)?;
    Ok((canary, models))
}

fn write_canary(data_dir: &Path, canary: &Canary) -> Result<()> {
    let json = serde_json::to_vec_pretty(canary)
        .map_err(|e| RegistryError::Model(format!("CANARY: {e}")))?;
    write_atomically(&canary_file(data_dir), &json)
}

/// Ends the running canary and marks its version rolled back. `NotFound` when no
/// canary runs.
pub fn rollback_canary(data_dir: &Path, by: &str) -> Result<Canary> {
    let canary = canary(data_dir)?
        .ok_or_else(|| RegistryError::NotFound("a running canary to roll back".into()))?;
    remove_canary_file(data_dir)?;
    update_record(data_dir, &canary.version, |r| {
        r.status = Status::RolledBack;
        r.lineage.push(
            Action::RolledBack,
            by,
            Some(format!("canary at share {} ended", canary.share)),
        );
    })?;
    Ok(canary)
}

/// Ends the canary when it serves `version` (which is being promoted); returns it.
pub(crate) fn end_if_canary(data_dir: &Path, version: &str) -> Result<Option<Canary>> {
    match canary(data_dir)? {
        Some(canary) if canary.version == version => {
            remove_canary_file(data_dir)?;
            Ok(Some(canary))
        }
        _ => Ok(None),
    }
}

fn remove_canary_file(data_dir: &Path) -> Result<()> {
    let path = canary_file(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(RegistryError::io(path, e)),
    }
    if let Ok(dir) = std::fs::File::open(models_dir(data_dir)) {
        let _ = dir.sync_all();
    }
    Ok(())
}
