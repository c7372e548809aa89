//! The on-disk registry of model versions.
//!
//! Layout under `<data_dir>/models/`:
//! - `<version>/manifest.json`: how the version was made (immutable once written);
//! - `<version>/<kind>.bin` for each retrieval model and `ranker.bin`: bincode-encoded
//!   models behind their seams (absent when not trained);
//! - `<version>/reference.json`: the version's monitoring reference (optional: a
//!   version without one serves and reports "no reference");
//! - `<version>/record.json`: the version's status, evaluation figures and gate
//!   decision (rewritten atomically when they change);
//! - `CURRENT`: the version being served. It is replaced atomically (write + fsync +
//!   rename), and only after the version it names has loaded completely, so a bad
//!   version can never leave the registry unable to start.
//!
//! Version names are names the registry made (`v1`, `v2`, …). A name from outside
//! (an HTTP path, a CLI argument) is checked against [`is_valid_version_name`] and
//! against the registry's own listing before any path is built from it.

use flywheel_monitor::Reference;
use flywheel_pipeline::{Manifest, ModelSet};
use flywheel_ranking::Ranker;
use flywheel_retrieval::RetrievalModel;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::canary::Canary;
use crate::error::{RegistryError, Result};
use crate::lineage::{config_hash, Action, Lineage, TrainingWindow};

/// Where a version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// It is the version `CURRENT` names.
    Serving,
    /// Trained and registered, not (yet) promoted.
    Candidate,
    /// The promotion gate refused it.
    Rejected,
    /// It serves a share of users as a canary.
    Canary,
    /// It served once and was replaced.
    Retired,
    /// Its canary was ended by a rollback: judged not fit to serve.
    RolledBack,
}

impl Status {
    /// The status as the API and the CLI spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Serving => "serving",
            Status::Candidate => "candidate",
            Status::Rejected => "rejected",
            Status::Canary => "canary",
            Status::Retired => "retired",
            Status::RolledBack => "rolled_back",
        }
    }
}

/// What the promotion gate decided about a version, with the figures behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateRecord {
    /// The rule applied, in words (e.g. `non-inferiority, margin 0.01`).
    pub rule: String,
    /// The version it was compared with (`None` when nothing served).
    pub against: Option<String>,
    /// How the comparison was made (e.g. both retrained on the same split).
    pub method: String,
    /// Users compared.
    pub users: usize,
    /// The candidate's NDCG@10 on the holdout.
    pub candidate_ndcg_at_10: Option<f64>,
    /// The serving version's NDCG@10 on the same holdout.
    pub serving_ndcg_at_10: Option<f64>,
    /// Mean paired difference (candidate − serving).
    pub mean_difference: Option<f64>,
    /// Lower bound of the bootstrap CI of the difference.
    pub ci_low: Option<f64>,
    /// Upper bound of the bootstrap CI of the difference.
    pub ci_high: Option<f64>,
    /// Whether the version was promoted.
    pub promoted: bool,
    /// Whether it was promoted by `--force`, whatever the rule said.
    pub forced: bool,
    /// The decision in words.
    pub reason: String,
}

/// The mutable part of a version: status, figures, gate decision, lineage. Every
/// field but `status` has a default, so the records of older data dirs still load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// The version's status when `CURRENT` does not name it.
    pub status: Status,
    /// Evaluation figures (e.g. `ndcg_at_10`), from the gate's holdout.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// The gate's decision.
    #[serde(default)]
    pub gate: Option<GateRecord>,
    /// Increases with every promotion: the order in which versions served.
    #[serde(default)]
    pub promoted_seq: Option<u64>,
    /// Figures of the holdouts inside training (the ranker gate, the fusion holdout).
    #[serde(default)]
    pub holdout: BTreeMap<String, f64>,
    /// The part of the log it trained on.
    #[serde(default)]
    pub window: Option<TrainingWindow>,
    /// The hash of the resolved configuration that trained it ([`config_hash`]).
    #[serde(default)]
    pub config_hash: Option<String>,
    /// Its parent, how it was made, and what happened to it since.
    #[serde(default)]
    pub lineage: Lineage,
}

impl Default for VersionRecord {
    fn default() -> Self {
        VersionRecord {
            status: Status::Candidate,
            metrics: BTreeMap::new(),
            gate: None,
            promoted_seq: None,
            holdout: BTreeMap::new(),
            window: None,
            config_hash: None,
            lineage: Lineage::default(),
        }
    }
}

/// One version as listed: its manifest, its record and its effective status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionInfo {
    /// The version name.
    pub version: String,
    /// Serving when `CURRENT` names it, else the recorded status.
    pub status: Status,
    /// Evaluation figures.
    pub metrics: BTreeMap<String, f64>,
    /// The gate's decision.
    pub gate: Option<GateRecord>,
    /// Figures of the holdouts inside training.
    pub holdout: BTreeMap<String, f64>,
    /// The part of the log it trained on (from the manifest for older records).
    pub window: Option<TrainingWindow>,
    /// The hash of its training configuration (from the manifest for older records).
    pub config_hash: Option<String>,
    /// Its parent, origin and history.
    pub lineage: Lineage,
    /// The share of users it serves while it is the canary.
    pub canary_share: Option<f64>,
    /// How it was made.
    pub manifest: Manifest,
}

/// The models folder of a data directory.
pub fn models_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("models")
}

/// Whether `name` can be a version name: `v` and digits, nothing a path could hide in.
pub fn is_valid_version_name(name: &str) -> bool {
    name.len() <= 24
        && name
            .strip_prefix('v')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The folder of an existing version; refuses names that are not registry names.
pub(crate) fn version_dir(data_dir: &Path, version: &str) -> Result<PathBuf> {
    if !is_valid_version_name(version) {
        return Err(RegistryError::InvalidVersion(truncated(version)));
    }
    let dir = models_dir(data_dir).join(version);
    if !dir.join("manifest.json").is_file() {
        return Err(RegistryError::NotFound(format!("model version {version}")));
    }
    Ok(dir)
}

fn truncated(text: &str) -> String {
    text.chars().take(64).collect()
}

pub(crate) fn write_bin<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = bincode::serialize(value)
        .map_err(|e| RegistryError::Model(format!("{}: {e}", path.display())))?;
    write_atomically(path, &bytes)
}

pub(crate) fn read_bin<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(path).map_err(|e| RegistryError::io(path, e))?;
    bincode::deserialize(&bytes).map(Some).map_err(|e| {
        RegistryError::Model(format!("{} is not a valid model file: {e}", path.display()))
    })
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| RegistryError::io(path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| RegistryError::Model(format!("{}: {e}", path.display())))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let json = serde_json::to_vec_pretty(value)
        .map_err(|e| RegistryError::Model(format!("{}: {e}", path.display())))?;
    write_atomically(path, &json)
}

/// Writes a file atomically: to a temporary name, fsync, rename, fsync the folder.
/// The temporary name is unique to the write, so concurrent writes of one file (two
/// promotions at once) each rename their own and the last one wins, instead of one
/// renaming the other's half-written file and the other finding nothing to rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let unique = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp.{}.{unique}", std::process::id()));
    let mut file = std::fs::File::create(&tmp).map_err(|e| RegistryError::io(&tmp, e))?;
    file.write_all(bytes)
        .map_err(|e| RegistryError::io(&tmp, e))?;
    file.sync_all().map_err(|e| RegistryError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| RegistryError::io(path, e))?;
    if let Some(parent) = path.parent() {
        if let Ok(dir) = std::fs::File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// Reserves the next free version name (`v1`, `v2`, …) by creating its folder, so two
/// trainings never write the same version.
pub fn reserve_version(data_dir: &Path) -> Result<String> {
    let dir = models_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(|e| RegistryError::io(&dir, e))?;
    let mut next = highest_version_number(&dir)? + 1;
    loop {
        let version = format!("v{next}");
        match std::fs::create_dir(dir.join(&version)) {
            Ok(()) => return Ok(version),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => next += 1,
            Err(e) => return Err(RegistryError::io(dir.join(&version), e)),
        }
    }
}

fn highest_version_number(dir: &Path) -> Result<u64> {
    let mut highest = 0u64;
    for entry in std::fs::read_dir(dir).map_err(|e| RegistryError::io(dir, e))? {
        let entry = entry.map_err(|e| RegistryError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(n) = name.strip_prefix('v').and_then(|n| n.parse::<u64>().ok()) {
            highest = highest.max(n);
        }
    }
    Ok(highest)
}

/// Saves a model set under its manifest's version as a candidate (does not promote it).
pub fn save(data_dir: &Path, set: &ModelSet) -> Result<PathBuf> {
    let manifest = set
        .manifest
        .as_ref()
        .ok_or_else(|| RegistryError::Model("cannot save a model set without a manifest".into()))?;
    if !is_valid_version_name(&manifest.version) {
        return Err(RegistryError::InvalidVersion(truncated(&manifest.version)));
    }
    let dir = models_dir(data_dir).join(&manifest.version);
    std::fs::create_dir_all(&dir).map_err(|e| RegistryError::io(&dir, e))?;
    for model in &set.retrieval {
        write_bin(&dir.join(format!("{}.bin", model.kind())), model)?;
        if let Some(index) = model.item_index() {
            let bytes = index
                .to_bytes()
                .map_err(|e| RegistryError::Model(format!("{}: {e}", model.kind())))?;
            write_atomically(&dir.join(format!("{}.ann", model.kind())), &bytes)?;
        }
    }
    if let Some(ranker) = &set.ranker {
        write_bin(&dir.join("ranker.bin"), ranker)?;
    }
    if let Some(reference) = &set.reference {
        let bytes = reference
            .to_json()
            .map_err(|e| RegistryError::Model(format!("reference.json: {e}")))?;
        write_atomically(&dir.join(REFERENCE_FILE), &bytes)?;
    }
    write_json(&dir.join("record.json"), &new_record(manifest))?;
    // The manifest last: a folder without one is not a version.
    write_json(&dir.join("manifest.json"), manifest)?;
    Ok(dir)
}

/// The record of a version just saved: its window and configuration hash from the
/// manifest, its history opened.
fn new_record(manifest: &Manifest) -> VersionRecord {
    let mut record = VersionRecord {
        window: Some(TrainingWindow::of_manifest(manifest)),
        config_hash: manifest.config.as_ref().map(config_hash),
        ..VersionRecord::default()
    };
    record.lineage.push(Action::Registered, "training", None);
    record
}

/// The version's record (a default candidate record for versions saved before records).
pub fn record(data_dir: &Path, version: &str) -> Result<VersionRecord> {
    let path = version_dir(data_dir, version)?.join("record.json");
    if !path.exists() {
        return Ok(VersionRecord::default());
    }
    read_json(&path)
}

/// Rewrites the version's record through `change`.
pub fn update_record(
    data_dir: &Path,
    version: &str,
    change: impl FnOnce(&mut VersionRecord),
) -> Result<VersionRecord> {
    let mut current = record(data_dir, version)?;
    change(&mut current);
    let path = version_dir(data_dir, version)?.join("record.json");
    write_json(&path, &current)?;
    Ok(current)
}

/// Makes `version` the served one: it must be a registered version that loads
/// completely; only then is `CURRENT` rewritten. Returns the loaded set.
pub fn promote(data_dir: &Path, version: &str) -> Result<ModelSet> {
    promote_by(data_dir, version, "engine")
}

/// [`promote`], with who did it written in the versions' histories. Promoting the
/// canary's version ends the canary: it serves everyone.
pub fn promote_by(data_dir: &Path, version: &str, by: &str) -> Result<ModelSet> {
    let seq = next_promotion_seq(data_dir)?;
    let set = switch_to(data_dir, version, Some(seq), by)?;
    if let Some(canary) = crate::canary::end_if_canary(data_dir, version)? {
        update_record(data_dir, version, |r| {
            let detail = format!("canary at share {} ended by the promotion", canary.share);
            if let Some(last) = r.lineage.history.last_mut() {
                last.detail = Some(detail);
            }
        })?;
    }
    Ok(set)
}

/// Loads `version`, marks it serving (with a new promotion number, or keeping its old
/// one for a rollback), rewrites `CURRENT`, and retires the version served before.
fn switch_to(data_dir: &Path, version: &str, seq: Option<u64>, by: &str) -> Result<ModelSet> {
    let set = load(data_dir, version)?;
    let previous = current_version(data_dir)?.filter(|p| p != version);
    let action = if seq.is_some() {
        Action::Promoted
    } else {
        Action::RestoredByRollback
    };
    let replaced = previous.as_ref().map(|p| format!("replaced {p}"));
    update_record(data_dir, version, |r| {
        r.status = Status::Serving;
        if seq.is_some() {
            r.promoted_seq = seq;
        }
        r.lineage.push(action, by, replaced);
    })?;
    write_atomically(&models_dir(data_dir).join("CURRENT"), version.as_bytes())?;
    if let Some(previous) = previous {
        // The old version may have vanished; retiring it is best effort.
        let _ = update_record(data_dir, &previous, |r| {
            r.status = Status::Retired;
            r.lineage
                .push(Action::Retired, by, Some(format!("replaced by {version}")));
        });
    }
    Ok(set)
}

fn next_promotion_seq(data_dir: &Path) -> Result<u64> {
    let highest = list(data_dir)?
        .iter()
        .filter_map(|v| record(data_dir, &v.version).ok()?.promoted_seq)
        .max()
        .unwrap_or(0);
    Ok(highest + 1)
}

/// The served version's name, if any (a `CURRENT` that does not name a valid version
/// is reported as an error, never followed).
pub fn current_version(data_dir: &Path) -> Result<Option<String>> {
    let path = models_dir(data_dir).join("CURRENT");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let name = text.trim();
            if !is_valid_version_name(name) {
                return Err(RegistryError::InvalidVersion(truncated(name)));
            }
            Ok(Some(name.to_string()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RegistryError::io(path, e)),
    }
}

/// Loads one version completely; any missing or undecodable part is an error.
pub fn load(data_dir: &Path, version: &str) -> Result<ModelSet> {
    let dir = version_dir(data_dir, version)?;
    let manifest: Manifest = read_json(&dir.join("manifest.json"))?;
    let mut retrieval = Vec::new();
    for kind in RetrievalModel::KINDS {
        let model: Option<RetrievalModel> = read_bin(&dir.join(format!("{kind}.bin")))?;
        if let Some(mut model) = model {
            if model.kind() != kind || !model.is_consistent() {
                return Err(RegistryError::Model(format!(
                    "{version}/{kind}.bin holds an inconsistent or mislabelled model"
                )));
            }
            attach_item_index(&dir, version, &mut model, manifest.config.as_ref())?;
            retrieval.push(model);
        }
    }
    let ranker: Option<Ranker> = read_bin(&dir.join("ranker.bin"))?;
    for listed in &manifest.models {
        let present = retrieval.iter().any(|m| m.kind() == listed)
            || (listed == "ranker" && ranker.is_some());
        if !present {
            return Err(RegistryError::Model(format!(
                "{version}: the manifest lists `{listed}` but its file is missing"
            )));
        }
    }
    let fusion_weights = manifest
        .fusion_weights
        .iter()
        .filter_map(|(name, weight)| flywheel_core::Channel::parse(name).map(|c| (c, *weight)))
        .collect();
    Ok(ModelSet {
        fusion_weights,
        manifest: Some(manifest),
        retrieval,
        ranker,
        // Monitoring never stops a version from serving: an unreadable reference is
        // reported by [`reference`] and the version serves without one.
        reference: reference(data_dir, version).ok().flatten().map(Arc::new),
    })
}

/// Reads `<kind>.ann` beside the model, when there is one, and serves from it; an index
/// that is damaged or does not fit the model fails the load (the serving version stays).
fn attach_item_index(
    dir: &Path,
    version: &str,
    model: &mut RetrievalModel,
    config: Option<&flywheel_pipeline::EngineConfig>,
) -> Result<()> {
    let path = dir.join(format!("{}.ann", model.kind()));
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RegistryError::io(&path, e)),
    };
    let ef_search = config.map_or_else(
        || flywheel_retrieval::AnnSettings::default().ef_search,
        |c| c.retrieval.ann.ef_search,
    );
    let kind = model.kind();
    let fail = |e: flywheel_retrieval::RetrievalError| {
        RegistryError::Model(format!("{version}/{kind}.ann: {e}"))
    };
    let index = flywheel_retrieval::ItemIndex::from_bytes(&bytes, ef_search).map_err(fail)?;
    model.attach_item_index(index).map_err(fail)
}

/// The file beside a version that holds its monitoring reference.
pub const REFERENCE_FILE: &str = "reference.json";

/// A version's monitoring reference: `None` for a version saved without one (older
/// versions), an error naming the file when it cannot be read.
pub fn reference(data_dir: &Path, version: &str) -> Result<Option<Reference>> {
    let path = version_dir(data_dir, version)?.join(REFERENCE_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(&path).map_err(|e| RegistryError::io(&path, e))?;
    Reference::from_json(&bytes)
        .map(Some)
        .map_err(|e| RegistryError::Model(format!("{}: {e}", path.display())))
}

/// Loads the served version, or an empty set when nothing was trained yet.
pub fn load_current(data_dir: &Path) -> Result<ModelSet> {
    match current_version(data_dir)? {
        Some(version) => load(data_dir, &version),
        None => Ok(ModelSet::default()),
    }
}

/// Promotes the version that served before the current one; returns its name and its
/// loaded models. `NotFound` when nothing is served or no version served before it.
pub fn rollback(data_dir: &Path) -> Result<(String, ModelSet)> {
    rollback_by(data_dir, "engine")
}

/// [`rollback`], with who did it written in the versions' histories.
pub fn rollback_by(data_dir: &Path, by: &str) -> Result<(String, ModelSet)> {
    let current = current_version(data_dir)?.ok_or_else(|| {
        RegistryError::NotFound("a served model version to roll back from".into())
    })?;
    let current_seq = record(data_dir, &current)?.promoted_seq.unwrap_or(u64::MAX);
    let previous = list(data_dir)?
        .into_iter()
        .filter(|v| v.version != current)
        .filter_map(|v| {
            let seq = record(data_dir, &v.version).ok()?.promoted_seq?;
            (seq < current_seq).then_some((seq, v.version))
        })
        .max()
        .map(|(_, version)| version)
        .ok_or_else(|| {
            RegistryError::NotFound(format!("a version that served before {current}"))
        })?;
    // The rolled-back-to version keeps its place in the order, so a second rollback
    // goes further back instead of flipping between two versions.
    let models = switch_to(data_dir, &previous, None, by)?;
    Ok((previous, models))
}

/// Every saved version, oldest first, with its effective status.
pub fn list(data_dir: &Path) -> Result<Vec<VersionInfo>> {
    let dir = models_dir(data_dir);
    let mut versions = Vec::new();
    if !dir.exists() {
        return Ok(versions);
    }
    let current = current_version(data_dir).ok().flatten();
    let canary = crate::canary::canary(data_dir).ok().flatten();
    for entry in std::fs::read_dir(&dir).map_err(|e| RegistryError::io(&dir, e))? {
        let name = entry
            .map_err(|e| RegistryError::io(&dir, e))?
            .file_name()
            .to_string_lossy()
            .to_string();
        if let Some(info) = version_info(data_dir, &name, current.as_deref(), canary.as_ref()) {
            versions.push(info);
        }
    }
    versions.sort_by_key(|v| version_number(&v.version));
    Ok(versions)
}

fn version_info(
    data_dir: &Path,
    name: &str,
    current: Option<&str>,
    canary: Option<&Canary>,
) -> Option<VersionInfo> {
    let dir = version_dir(data_dir, name).ok()?;
    let manifest: Manifest = read_json(&dir.join("manifest.json")).ok()?;
    let record = record(data_dir, name).unwrap_or_default();
    let canary_share = canary.filter(|c| c.version == name).map(|c| c.share);
    let status = match (current == Some(name), canary_share, record.status) {
        (true, _, _) => Status::Serving,
        (false, Some(_), _) => Status::Canary,
        (false, None, Status::Serving) => Status::Retired,
        // A canary record without the canary file: the canary never started.
        (false, None, Status::Canary) => Status::Candidate,
        (false, None, other) => other,
    };
    let window = record
        .window
        .or_else(|| Some(TrainingWindow::of_manifest(&manifest)));
    let config_hash = record
        .config_hash
        .or_else(|| manifest.config.as_ref().map(config_hash));
    Some(VersionInfo {
        version: name.to_string(),
        status,
        metrics: record.metrics,
        gate: record.gate,
        holdout: record.holdout,
        window,
        config_hash,
        lineage: record.lineage,
        canary_share,
        manifest,
    })
}

fn version_number(version: &str) -> u64 {
    version
        .trim_start_matches('v')
        .parse::<u64>()
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::Timestamp;

    #[test]
    fn concurrent_atomic_writes_of_one_file_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("CURRENT");
        std::thread::scope(|scope| {
            for writer in 0..8 {
                let path = &path;
                scope.spawn(move || {
                    for _ in 0..50 {
                        write_atomically(path, format!("v{writer}").as_bytes()).unwrap();
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with('v'), "{text}");
        let left = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(left, 1, "temporary files were left behind");
    }

    fn manifest(version: &str) -> Manifest {
        Manifest {
            version: version.to_string(),
            trained_at: Timestamp::from_secs(1),
            log_records: 0,
            interactions: 0,
            ranker_rows: 0,
            models: Vec::new(),
            fusion_weights: BTreeMap::new(),
            trained_until: None,
            log_end_offset: None,
            config: None,
        }
    }

    fn saved(dir: &Path) -> String {
        let version = reserve_version(dir).unwrap();
        let set = ModelSet {
            manifest: Some(manifest(&version)),
            ..ModelSet::default()
        };
        save(dir, &set).unwrap();
        version
    }

    #[test]
    fn names_that_could_be_paths_are_refused_before_any_path_is_built() {
        for bad in [
            "/tmp/x",
            "../../etc",
            "v1/../v2",
            "",
            "v",
            "v1 ",
            "..",
            "V1",
        ] {
            assert!(!is_valid_version_name(bad), "{bad:?}");
        }
        assert!(is_valid_version_name("v12"));
        let dir = tempfile::tempdir().unwrap();
        let error = promote(dir.path(), "/tmp/x").unwrap_err();
        assert!(matches!(error, RegistryError::InvalidVersion(_)));
        assert!(current_version(dir.path()).unwrap().is_none());
    }

    #[test]
    fn reserving_never_hands_out_a_version_twice() {
        let dir = tempfile::tempdir().unwrap();
        let a = reserve_version(dir.path()).unwrap();
        let b = reserve_version(dir.path()).unwrap();
        assert_ne!(a, b);
        assert_eq!((a.as_str(), b.as_str()), ("v1", "v2"));
    }

    #[test]
    fn a_version_that_does_not_load_never_becomes_current() {
        let dir = tempfile::tempdir().unwrap();
        let good = saved(dir.path());
        promote(dir.path(), &good).unwrap();
        let bad = saved(dir.path());
        let path = models_dir(dir.path()).join(&bad).join("ranker.bin");
        std::fs::write(path, b"not a model").unwrap();
        assert!(promote(dir.path(), &bad).is_err());
        assert_eq!(current_version(dir.path()).unwrap(), Some(good));
    }

    fn saved_with_indexed_als(dir: &Path) -> String {
        use flywheel_core::{ItemId, UserId};
        use flywheel_retrieval::{AlsModel, AlsParams, AnnSettings, Interactions};
        let triples = (0..40u32).flat_map(|u| {
            (0..6u32).map(move |j| {
                let user = UserId::new_unchecked(format!("u{u}"));
                (
                    user,
                    ItemId::new_unchecked(format!("i{}", (u * 7 + j) % 60)),
                    1.0,
                )
            })
        });
        let params = AlsParams {
            factors: 8,
            regularization: 0.1,
            alpha: 5.0,
            iterations: 5,
            seed: 1,
        };
        let mut als = AlsModel::train(&Interactions::from_triples(triples), &params).unwrap();
        let settings = AnnSettings {
            min_items: 0,
            ..AnnSettings::default()
        };
        assert!(als.build_index(&settings).unwrap());
        let version = reserve_version(dir).unwrap();
        let mut manifest = manifest(&version);
        manifest.models = vec!["als".into()];
        let set = ModelSet {
            manifest: Some(manifest),
            retrieval: vec![RetrievalModel::Als(als)],
            ..ModelSet::default()
        };
        save(dir, &set).unwrap();
        version
    }

    #[test]
    fn an_item_index_is_stored_beside_its_model_and_a_damaged_one_fails_the_load() {
        let dir = tempfile::tempdir().unwrap();
        let good = saved_with_indexed_als(dir.path());
        promote(dir.path(), &good).unwrap();
        let loaded = load(dir.path(), &good).unwrap();
        let index = loaded.retrieval[0]
            .item_index()
            .expect("the index is served");
        assert_eq!(index.len(), 60);
        let bad = saved_with_indexed_als(dir.path());
        let path = models_dir(dir.path()).join(&bad).join("als.ann");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 9]).unwrap();
        let error = promote(dir.path(), &bad).unwrap_err().to_string();
        assert!(error.contains("als.ann"), "{error}");
        assert_eq!(current_version(dir.path()).unwrap(), Some(good));
    }

    #[test]
    fn statuses_follow_promotions_and_rollback_returns_to_the_previous_server() {
        let dir = tempfile::tempdir().unwrap();
        let first = saved(dir.path());
        promote(dir.path(), &first).unwrap();
        let rejected = saved(dir.path());
        update_record(dir.path(), &rejected, |r| r.status = Status::Rejected).unwrap();
        let second = saved(dir.path());
        promote(dir.path(), &second).unwrap();
        let statuses: Vec<(String, Status)> = list(dir.path())
            .unwrap()
            .into_iter()
            .map(|v| (v.version, v.status))
            .collect();
        assert_eq!(
            statuses,
            vec![
                (first.clone(), Status::Retired),
                (rejected, Status::Rejected),
                (second, Status::Serving)
            ]
        );
        assert_eq!(rollback(dir.path()).unwrap().0, first);
        assert!(rollback(dir.path()).is_err());
    }

    /// A `record.json` as the registry wrote it before windows, hashes and lineage.
    const OLD_RECORD: &str = r#"{
      "status": "retired",
      "metrics": {"ndcg@10": 0.12},
      "gate": null,
      "promoted_seq": 1
    }"#;

    #[test]
    fn an_older_record_without_the_new_fields_still_loads_and_lists() {
        let dir = tempfile::tempdir().unwrap();
        let version = reserve_version(dir.path()).unwrap();
        let mut old = manifest(&version);
        old.log_end_offset = Some(40);
        old.trained_until = Some(Timestamp::from_secs(7));
        old.config = Some(flywheel_pipeline::EngineConfig::default());
        let set = ModelSet {
            manifest: Some(old),
            ..ModelSet::default()
        };
        save(dir.path(), &set).unwrap();
        let path = models_dir(dir.path()).join(&version).join("record.json");
        std::fs::write(path, OLD_RECORD).unwrap();
        let loaded = record(dir.path(), &version).unwrap();
        assert_eq!(loaded.status, Status::Retired);
        assert_eq!(loaded.promoted_seq, Some(1));
        assert!(loaded.lineage.history.is_empty() && loaded.window.is_none());
        // The listing fills the window and the hash in from the manifest.
        let listed = list(dir.path()).unwrap().remove(0);
        assert_eq!(listed.window.unwrap().end_offset, Some(40));
        assert_eq!(
            listed.config_hash,
            Some(config_hash(&flywheel_pipeline::EngineConfig::default()))
        );
        // And a change to it keeps what it had.
        update_record(dir.path(), &version, |r| r.status = Status::Candidate).unwrap();
        assert_eq!(
            record(dir.path(), &version).unwrap().metrics["ndcg@10"],
            0.12
        );
    }

    fn actions(dir: &Path, version: &str) -> Vec<Action> {
        record(dir, version)
            .unwrap()
            .lineage
            .history
            .iter()
            .map(|e| e.action)
            .collect()
    }

    #[test]
    fn promotions_and_rollbacks_are_appended_to_the_history_with_who_did_them() {
        let dir = tempfile::tempdir().unwrap();
        let first = saved(dir.path());
        promote_by(dir.path(), &first, "cli").unwrap();
        let second = saved(dir.path());
        promote_by(dir.path(), &second, "key:ops").unwrap();
        rollback_by(dir.path(), "key:ops").unwrap();
        assert_eq!(
            actions(dir.path(), &first),
            vec![
                Action::Registered,
                Action::Promoted,
                Action::Retired,
                Action::RestoredByRollback
            ]
        );
        let history = record(dir.path(), &second).unwrap().lineage.history;
        let last = history.last().unwrap();
        assert_eq!(
            (last.action, last.by.as_str()),
            (Action::Retired, "key:ops")
        );
    }

    #[test]
    fn a_canary_starts_changes_share_and_is_promoted_or_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let serving = saved(dir.path());
        promote(dir.path(), &serving).unwrap();
        let candidate = saved(dir.path());
        crate::canary::start_canary(dir.path(), &candidate, 0.1, "cli").unwrap();
        crate::canary::start_canary(dir.path(), &candidate, 0.2, "cli").unwrap();
        let listed = list(dir.path()).unwrap();
        assert_eq!(listed[1].status, Status::Canary);
        assert_eq!(listed[1].canary_share, Some(0.2));
        let other = saved(dir.path());
        let refused = crate::canary::start_canary(dir.path(), &other, 0.1, "cli");
        assert!(matches!(refused, Err(RegistryError::Refused(_))));
        promote_by(dir.path(), &candidate, "cli").unwrap();
        assert!(crate::canary::canary(dir.path()).unwrap().is_none());
        assert_eq!(
            current_version(dir.path()).unwrap(),
            Some(candidate.clone())
        );
        crate::canary::start_canary(dir.path(), &other, 0.05, "cli").unwrap();
        let ended = crate::canary::rollback_canary(dir.path(), "cli").unwrap();
        assert_eq!(ended.version, other);
        assert_eq!(list(dir.path()).unwrap()[2].status, Status::RolledBack);
        assert_eq!(
            actions(dir.path(), &other),
            vec![
                Action::Registered,
                Action::CanaryStarted,
                Action::RolledBack
            ]
        );
        assert!(crate::canary::rollback_canary(dir.path(), "cli").is_err());
    }

    #[test]
    fn a_canary_that_does_not_load_or_has_a_bad_share_is_refused_and_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let serving = saved(dir.path());
        promote(dir.path(), &serving).unwrap();
        let bad = saved(dir.path());
        let path = models_dir(dir.path()).join(&bad).join("ranker.bin");
        std::fs::write(path, b"not a model").unwrap();
        let error = crate::canary::start_canary(dir.path(), &bad, 0.1, "cli").unwrap_err();
        assert!(
            error.to_string().contains("cannot serve as a canary"),
            "{error}"
        );
        assert!(crate::canary::canary(dir.path()).unwrap().is_none());
        assert_eq!(record(dir.path(), &bad).unwrap().status, Status::Candidate);
        for share in [0.0, 1.0, f64::NAN, -0.5, 0.00001] {
            let good = saved(dir.path());
            let refused = crate::canary::start_canary(dir.path(), &good, share, "cli");
            assert!(matches!(refused, Err(RegistryError::Refused(_))), "{share}");
        }
        let refused = crate::canary::start_canary(dir.path(), &serving, 0.1, "cli");
        assert!(matches!(refused, Err(RegistryError::Refused(_))));
        assert_eq!(current_version(dir.path()).unwrap(), Some(serving));
    }
}
