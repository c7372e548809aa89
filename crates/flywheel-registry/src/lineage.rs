//! What a version's record says about where it came from: the window of the log it
//! trained on, the hash of the configuration that trained it, its parent and how it
//! was made, and the append-only history of what operators did with it.
//!
//! Every field here is new to `record.json` and has a serde default, so the records
//! of older data directories still load (they just say less).

use flywheel_core::Timestamp;
use flywheel_pipeline::{EngineConfig, Manifest};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The part of the log a version was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingWindow {
    /// The first log offset read (training replays from the start of the log).
    pub start_offset: u64,
    /// The offset just past the last record read.
    pub end_offset: Option<u64>,
    /// Records replayed.
    pub records: u64,
    /// The latest event time in the window: the end of what the version knows.
    pub last_event_at: Option<Timestamp>,
    /// The moments that split the window (fusion holdout, row cut, gate cut), when
    /// the trainer reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuts: Option<WindowCuts>,
}

/// The event times that split a training window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowCuts {
    /// The fusion weights are learned on the engagements from it to `row_cut`.
    pub fusion_cut: Timestamp,
    /// The row models are trained before it.
    pub row_cut: Timestamp,
    /// The gate judges the ranker on the label window after it.
    pub gate_cut: Timestamp,
}

impl TrainingWindow {
    /// The window a manifest describes (without cuts: the manifest does not hold them).
    pub fn of_manifest(manifest: &Manifest) -> TrainingWindow {
        TrainingWindow {
            start_offset: 0,
            end_offset: manifest.log_end_offset,
            records: manifest.log_records,
            last_event_at: manifest.trained_until,
            cuts: None,
        }
    }
}

/// How a version was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Trained from scratch on the log (`flywheel train`, `POST /v1/models/train`).
    Trained,
    /// Retrained to replace a drifting version (the self-healing loop's retrain).
    WarmStart,
}

impl Origin {
    /// The origin as the API and the CLI spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Trained => "trained",
            Origin::WarmStart => "warm_start",
        }
    }
}

/// One thing that happened to a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// It was saved into the registry.
    Registered,
    /// It became the served version.
    Promoted,
    /// A rollback made it the served version again.
    RestoredByRollback,
    /// A rollback (or a promotion of another version) replaced it.
    Retired,
    /// It started serving a share of users as a canary.
    CanaryStarted,
    /// Its canary share changed.
    CanaryShareChanged,
    /// Its canary was ended and it was marked rolled back.
    RolledBack,
}

/// An entry of a version's history: what, when, by whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// What happened.
    pub action: Action,
    /// When (wall clock of the process that did it).
    pub at: Timestamp,
    /// Who did it: `key:NAME` for an API key, `api` on an open server, `cli`, `engine`.
    pub by: String,
    /// Particulars (e.g. the canary share, the version it replaced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Where a version comes from, and what happened to it since.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    /// The version that was serving when it was trained (`None`: nothing served, or
    /// an older record that did not say).
    #[serde(default)]
    pub parent: Option<String>,
    /// How it was made (`None` in records written before lineage was kept).
    #[serde(default)]
    pub origin: Option<Origin>,
    /// Append-only: promotions, canaries, rollbacks, oldest first.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

impl Lineage {
    /// Appends an entry stamped with the wall clock.
    pub fn push(&mut self, action: Action, by: &str, detail: Option<String>) {
        self.history.push(HistoryEntry {
            action,
            at: Timestamp::now(),
            by: by.to_string(),
            detail,
        });
    }
}

/// A stable hash of a resolved configuration: SHA-256 of its JSON with sorted keys
/// and without `data_dir` (the same settings in another directory train the same
/// models), as the first 16 hex digits.
pub fn config_hash(config: &EngineConfig) -> String {
    let mut value = serde_json::to_value(config).unwrap_or(serde_json::Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.remove("data_dir");
    }
    // `serde_json::Value` keeps object keys sorted, so the text is canonical.
    let text = value.to_string();
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_hash_ignores_the_directory_and_sees_every_setting() {
        let base = EngineConfig::default();
        let mut elsewhere = base.clone();
        elsewhere.data_dir = "/somewhere/else".into();
        assert_eq!(config_hash(&base), config_hash(&elsewhere));
        assert_eq!(config_hash(&base).len(), 16);
        let mut changed = base.clone();
        changed.training.label_window_hours += 1.0;
        assert_ne!(config_hash(&base), config_hash(&changed));
    }
}
