//! The models served together, and the manifest that says how they were made. The
//! registry crate stores and loads them; the pipeline only reads them.

use flywheel_core::{Channel, Timestamp};
use flywheel_ranking::Ranker;
use flywheel_retrieval::{AlsModel, RetrievalModel};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::EngineConfig;

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
    /// Which models the version contains (retrieval kinds, and `ranker`).
    pub models: Vec<String>,
    /// Per channel, its weight in the reciprocal-rank fusion (learned on a holdout
    /// inside the training data); empty means the configured quota shares.
    #[serde(default)]
    pub fusion_weights: BTreeMap<String, f64>,
    /// The latest event time in its training data: the end of its training window.
    #[serde(default)]
    pub trained_until: Option<Timestamp>,
    /// The log offset just past the last record its training read.
    #[serde(default)]
    pub log_end_offset: Option<u64>,
    /// The full resolved configuration it was trained with, so it can be retrained.
    #[serde(default)]
    pub config: Option<EngineConfig>,
}

/// The models served together.
#[derive(Debug, Default, Clone)]
pub struct ModelSet {
    /// Its manifest; `None` for the empty set served before any training.
    pub manifest: Option<Manifest>,
    /// The trained retrieval models, at most one per channel.
    pub retrieval: Vec<RetrievalModel>,
    /// The ranker, when the gate kept one.
    pub ranker: Option<Ranker>,
    /// Per channel, its weight in the fusion; empty means the quota shares.
    pub fusion_weights: BTreeMap<Channel, f64>,
    /// The reference distributions of its training window and its score → P(click)
    /// calibration, for live monitoring (`None`: a version trained before references,
    /// or one whose file could not be read).
    pub reference: Option<Arc<flywheel_monitor::Reference>>,
}

impl ModelSet {
    /// The served version's name, or `none`.
    pub fn version(&self) -> &str {
        self.manifest
            .as_ref()
            .map(|m| m.version.as_str())
            .unwrap_or("none")
    }

    /// The retrieval model credited to `channel`, if the set has one.
    pub fn retrieval_for(&self, channel: Channel) -> Option<&RetrievalModel> {
        self.retrieval.iter().find(|m| m.channel() == channel)
    }

    /// The ALS model, if the set has one.
    pub fn als(&self) -> Option<&AlsModel> {
        self.retrieval.iter().find_map(RetrievalModel::as_als)
    }

    /// The same models with another ranker (or none).
    pub fn with_ranker(&self, ranker: Option<Ranker>) -> ModelSet {
        ModelSet {
            ranker,
            ..self.clone()
        }
    }
}
