//! The model set and its on-disk registry.
//!
//! Layout under `<data_dir>/models/`:
//! - `<version>/manifest.json`: version, training time, what was trained and on how much data;
//! - `<version>/als.bin`, `ease.bin`, `ranker.bin`: bincode-encoded models (absent when not trained);
//! - `CURRENT`: the version being served. It is replaced atomically (write + rename),
//!   and a serving engine polls it, so `flywheel train` in another process, or a
//!   rollback that rewrites `CURRENT`, hot-swaps the models without a restart.

use flywheel_core::{Channel, Timestamp};
use flywheel_ranking::LogisticRegression;
use flywheel_retrieval::{AlsModel, EaseModel};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};

/// What a version holds and how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The version name, e.g. `v3`.
    pub version: String,
    /// When training finished.
    pub trained_at: Timestamp,
    /// Log records the training replayed.
    pub log_records: u64,
    /// Interactions used by the retrieval models.
    pub interactions: u64,
    /// Rows used by the ranker.
    pub ranker_rows: u64,
    /// Which models the version contains.
    pub models: Vec<String>,
    /// Per channel, its weight in the reciprocal-rank fusion (learned on a holdout
    /// inside the training data); empty means the configured quota shares.
    #[serde(default)]
    pub fusion_weights: BTreeMap<String, f64>,
}

/// The models served together.
#[derive(Debug, Default)]
pub struct ModelSet {
    /// Its manifest; `None` for the empty set served before any training.
    pub manifest: Option<Manifest>,
    /// Implicit ALS.
    pub als: Option<AlsModel>,
    /// EASE.
    pub ease: Option<EaseModel>,
    /// The ranker.
    pub ranker: Option<LogisticRegression>,
    /// Per channel, its weight in the fusion; empty means the quota shares.
    pub fusion_weights: BTreeMap<Channel, f64>,
}

impl ModelSet {
    /// The served version's name, or `none`.
    pub fn version(&self) -> &str {
        self.manifest
            .as_ref()
            .map(|m| m.version.as_str())
            .unwrap_or("none")
    }
}

/// The models folder of a data directory.
pub fn models_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("models")
}

fn write_bin<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = bincode::serialize(value)
        .map_err(|e| EngineError::Model(format!("{}: {e}", path.display())))?;
    std::fs::write(path, bytes).map_err(|e| EngineError::io(path, e))
}

fn read_bin<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    bincode::deserialize(&bytes).map(Some).map_err(|e| {
        EngineError::Model(format!("{} is not a valid model file: {e}", path.display()))
    })
}

/// Writes a file atomically: to a temporary name, fsync, rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(|e| EngineError::io(&tmp, e))?;
    file.write_all(bytes)
        .map_err(|e| EngineError::io(&tmp, e))?;
    file.sync_all().map_err(|e| EngineError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| EngineError::io(path, e))
}

/// The next free version name (`v1`, `v2`, …).
pub fn next_version(data_dir: &Path) -> Result<String> {
    let dir = models_dir(data_dir);
    let mut highest = 0u64;
    if dir.exists() {
        for entry in std::fs::read_dir(&dir).map_err(|e| EngineError::io(&dir, e))? {
            let entry = entry.map_err(|e| EngineError::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(n) = name.strip_prefix('v').and_then(|n| n.parse::<u64>().ok()) {
                highest = highest.max(n);
            }
        }
    }
    Ok(format!("v{}", highest + 1))
}

/// Saves a model set under its manifest's version (does not promote it).
pub fn save(data_dir: &Path, set: &ModelSet) -> Result<PathBuf> {
    let manifest = set
        .manifest
        .as_ref()
        .ok_or_else(|| EngineError::Model("cannot save a model set without a manifest".into()))?;
    let dir = models_dir(data_dir).join(&manifest.version);
    std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
    if let Some(als) = &set.als {
        write_bin(&dir.join("als.bin"), als)?;
    }
    if let Some(ease) = &set.ease {
        write_bin(&dir.join("ease.bin"), ease)?;
    }
    if let Some(ranker) = &set.ranker {
        write_bin(&dir.join("ranker.bin"), ranker)?;
    }
    let json =
        serde_json::to_vec_pretty(manifest).map_err(|e| EngineError::Model(e.to_string()))?;
    write_atomically(&dir.join("manifest.json"), &json)?;
    Ok(dir)
}

/// Makes `version` the served one.
pub fn promote(data_dir: &Path, version: &str) -> Result<()> {
    let dir = models_dir(data_dir).join(version);
    if !dir.join("manifest.json").exists() {
        return Err(EngineError::NotFound(format!("model version {version}")));
    }
    write_atomically(&models_dir(data_dir).join("CURRENT"), version.as_bytes())
}

/// The served version's name, if any.
pub fn current_version(data_dir: &Path) -> Result<Option<String>> {
    let path = models_dir(data_dir).join("CURRENT");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EngineError::io(path, e)),
    }
}

/// Loads one version.
pub fn load(data_dir: &Path, version: &str) -> Result<ModelSet> {
    let dir = models_dir(data_dir).join(version);
    let manifest_path = dir.join("manifest.json");
    let bytes = std::fs::read(&manifest_path).map_err(|e| EngineError::io(&manifest_path, e))?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| EngineError::Model(format!("{}: {e}", manifest_path.display())))?;
    let fusion_weights = manifest
        .fusion_weights
        .iter()
        .filter_map(|(name, weight)| Channel::parse(name).map(|c| (c, *weight)))
        .collect();
    Ok(ModelSet {
        fusion_weights,
        manifest: Some(manifest),
        als: read_bin(&dir.join("als.bin"))?,
        ease: read_bin(&dir.join("ease.bin"))?,
        ranker: read_bin(&dir.join("ranker.bin"))?,
    })
}

/// Loads the served version, or an empty set when nothing was trained yet.
pub fn load_current(data_dir: &Path) -> Result<ModelSet> {
    match current_version(data_dir)? {
        Some(version) => load(data_dir, &version),
        None => Ok(ModelSet::default()),
    }
}

/// Promotes the version saved just before the served one; returns it. `NotFound`
/// when nothing is served or the served version is the oldest.
pub fn rollback(data_dir: &Path) -> Result<String> {
    let current = current_version(data_dir)?
        .ok_or_else(|| EngineError::NotFound("a served model version to roll back from".into()))?;
    let versions = list(data_dir)?;
    let position = versions.iter().position(|m| m.version == current);
    let previous = position
        .and_then(|p| p.checked_sub(1))
        .map(|p| versions[p].version.clone())
        .ok_or_else(|| EngineError::NotFound(format!("a model version older than {current}")))?;
    promote(data_dir, &previous)?;
    Ok(previous)
}

/// Every saved version's manifest, oldest first.
pub fn list(data_dir: &Path) -> Result<Vec<Manifest>> {
    let dir = models_dir(data_dir);
    let mut manifests = Vec::new();
    if !dir.exists() {
        return Ok(manifests);
    }
    for entry in std::fs::read_dir(&dir).map_err(|e| EngineError::io(&dir, e))? {
        let path = entry
            .map_err(|e| EngineError::io(&dir, e))?
            .path()
            .join("manifest.json");
        if let Ok(bytes) = std::fs::read(&path) {
            if let Ok(manifest) = serde_json::from_slice::<Manifest>(&bytes) {
                manifests.push(manifest);
            }
        }
    }
    manifests.sort_by_key(|m| {
        m.version
            .trim_start_matches('v')
            .parse::<u64>()
            .unwrap_or(0)
    });
    Ok(manifests)
}
