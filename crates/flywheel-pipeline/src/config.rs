//! The engine's one typed configuration. It is read from a TOML file (see
//! `flywheel.example.toml` at the repository root for every key, commented), then
//! overridden by environment variables and command-line flags in the binary.
//! Unknown keys are errors, so a typo never silently falls back to a default.

use flywheel_core::Timestamp;
use flywheel_ranking::RerankConfig;
use flywheel_retrieval::AnnSettings;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flywheel_features::FeatureConfig;

use crate::error::{PipelineError, Result};

/// Everything the engine can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Where the log, the models and the checkpoints live.
    pub data_dir: PathBuf,
    /// Custom event actions accepted besides the built-in ones.
    pub custom_actions: Vec<String>,
    /// The durable log.
    pub log: LogSettings,
    /// Candidate retrieval.
    pub retrieval: RetrievalSettings,
    /// Re-ranking and business rules (the ranking crate's own config type).
    pub rerank: RerankConfig,
    /// Per-stage deadlines of a recommendation request.
    pub deadlines: DeadlineSettings,
    /// Model training.
    pub training: TrainingSettings,
    /// The promotion gate a newly trained version must pass.
    pub gate: GateSettings,
    /// Online experiments: the outcome joiner, shadows, exploration.
    pub experiments: ExperimentSettings,
    /// Live monitoring: the window, drift statistics and thresholds, data quality.
    pub monitoring: flywheel_monitor::MonitoringConfig,
    /// The self-healing controller's rules and limits (the controller crate's own
    /// config type; active by default, `dry_run = true` only records its decisions).
    pub controller: flywheel_controller::ControllerConfig,
    /// The spam and bot rules (`[bots]`): events they drop reach neither the features
    /// nor training, and are counted in monitoring.
    pub bots: flywheel_core::BotRules,
    /// Snapshots of the derived state, so that start-up replays only the log's tail.
    pub snapshots: SnapshotSettings,
}

/// When the engine snapshots its derived state (`<data_dir>/snapshots/`). A snapshot
/// is taken when either trigger fires and the state moved since the last one; both
/// triggers at 0 take none (start-up then always replays the whole log, and
/// `POST /v1/admin/snapshot` still takes one on demand).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotSettings {
    /// Take a snapshot once this many records were applied since the last one
    /// (0: never on this trigger). Default 1,000,000.
    pub every_records: u64,
    /// Take a snapshot once this many seconds passed since the last one, if any
    /// record was applied (0: never on this trigger). Default 600.
    pub every_secs: u64,
    /// How many snapshot files are kept, newest first (at least 1). Default 2.
    pub keep: usize,
}

impl Default for SnapshotSettings {
    fn default() -> Self {
        SnapshotSettings {
            every_records: 1_000_000,
            every_secs: 600,
            keep: 2,
        }
    }
}

/// Settings of online experiments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExperimentSettings {
    /// How long after event time passes an attribution window it still takes
    /// outcomes (seconds): windows close at the largest event time seen minus this.
    pub allowed_lateness_secs: u64,
    /// How long a shadow variant may take to rank a request before it is cut off.
    pub shadow_deadline_ms: u64,
    /// How many candidates below the list an exploring variant may draw from.
    pub exploration_pool: usize,
}

impl Default for ExperimentSettings {
    fn default() -> Self {
        ExperimentSettings {
            allowed_lateness_secs: 600,
            shadow_deadline_ms: 200,
            exploration_pool: 20,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            data_dir: PathBuf::from("flywheel-data"),
            custom_actions: Vec::new(),
            log: LogSettings::default(),
            retrieval: RetrievalSettings::default(),
            rerank: RerankConfig::default(),
            deadlines: DeadlineSettings::default(),
            training: TrainingSettings::default(),
            gate: GateSettings::default(),
            experiments: ExperimentSettings::default(),
            monitoring: flywheel_monitor::MonitoringConfig::default(),
            controller: flywheel_controller::ControllerConfig::default(),
            bots: flywheel_core::BotRules::default(),
            snapshots: SnapshotSettings::default(),
        }
    }
}

/// Settings of the durable event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// fsync every group commit (true in production; false only for throwaway benchmarks).
    pub fsync: bool,
    /// Roll to a new segment file past this many bytes.
    pub segment_max_bytes: u64,
    /// The longest a group commit waits to gather more records, in microseconds.
    pub max_batch_delay_us: u64,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            fsync: true,
            segment_max_bytes: 64 << 20,
            max_batch_delay_us: 1000,
        }
    }
}

/// Settings of candidate retrieval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrievalSettings {
    /// How many candidates go to ranking.
    pub candidates: usize,
    /// Share of the candidates each channel may fill, by channel name
    /// (`ease`, `als`, `co_visitation`, `content`, `trending`, `popularity`).
    pub quotas: BTreeMap<String, f64>,
    /// How many of the user's recent items seed history-driven channels.
    pub history_items: usize,
    /// When item vectors (ALS factors) are searched through an ANN index rather than
    /// scanned (`[retrieval.ann]`).
    pub ann: AnnSettings,
}

impl Default for RetrievalSettings {
    fn default() -> Self {
        let quotas = [
            ("ease", 0.30),
            ("als", 0.20),
            ("co_visitation", 0.20),
            ("content", 0.10),
            ("trending", 0.10),
            ("popularity", 0.10),
        ];
        RetrievalSettings {
            candidates: 200,
            quotas: quotas.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            history_items: 50,
            ann: AnnSettings::default(),
        }
    }
}

/// Per-stage deadlines; a stage that runs past its deadline is cut short and the
/// response says a fallback was used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadlineSettings {
    /// Retrieval budget in milliseconds.
    pub retrieval_ms: u64,
    /// Ranking budget in milliseconds.
    pub ranking_ms: u64,
}

impl Default for DeadlineSettings {
    fn default() -> Self {
        DeadlineSettings {
            retrieval_ms: 30,
            ranking_ms: 30,
        }
    }
}

/// Settings of `flywheel train`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingSettings {
    /// ALS latent factors.
    pub als_factors: usize,
    /// ALS L2 regularisation.
    pub als_regularization: f32,
    /// ALS confidence scale: confidence = 1 + alpha × weight.
    pub als_alpha: f32,
    /// ALS sweeps.
    pub als_iterations: usize,
    /// ALS sweeps of a warm start (the self-healing retrain), which begins from the
    /// serving version's item factors instead of random ones.
    pub warm_start_iterations: usize,
    /// EASE L2 regularisation.
    pub ease_lambda: f32,
    /// EASE is trained only for catalogs up to this many items (it is O(n²) memory).
    pub ease_max_items: usize,
    /// Sampled negatives per positive interaction for the ranker's training rows.
    pub negatives_per_positive: usize,
    /// Seed of every random choice in training.
    pub seed: u64,
    /// The moment (RFC 3339 or epoch seconds) that splits the data the fusion weights
    /// are learned on: the retrieval models that are judged are trained on the
    /// interactions before it, and each channel is scored on the engagements from it
    /// up to `row_cut`, so that no ranker row uses weights learned after its moment.
    /// Unset: the moment before the latest 50% of the engagements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fusion_cut: Option<Timestamp>,
    /// The moment before which the retrieval models that generate the candidates of
    /// interaction rows are trained; interaction rows are anchored at engagements from
    /// it on. Unset: the moment before the latest 40% of the engagements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_cut: Option<Timestamp>,
    /// The moment at which the ranker gate judges: the ranker it judges is fitted only
    /// on rows whose label window closed by then, and it is scored on the engagements
    /// in the label window from it. Unset: the moment before the latest 15% of the
    /// engagements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate_cut: Option<Timestamp>,
    /// A ranker row is positive when the user engages with its item within this many
    /// hours from the row's moment; a row whose window has not closed by the end of
    /// the log is not fitted on.
    pub label_window_hours: f64,
    /// The ranker `flywheel train` fits and gates.
    pub ranker: RankerKind,
    /// Engagements sampled (after the row cut) to anchor interaction rows, at most.
    pub ranker_anchor_events: usize,
    /// Candidates per anchor that become rows: the head of the fused order (the
    /// serving pipeline ranks `retrieval.candidates` of them).
    pub ranker_rows_per_anchor: usize,
    /// The GBDT's hyper-parameters (`[training.gbdt]`), when `ranker = "gbdt"`.
    pub gbdt: flywheel_ranking::GbdtParams,
    /// How the GBDT ranker corrects for position bias (users click top slots whatever
    /// they hold): `feature` fits on the logged position as a training-only feature,
    /// held at the top slot when serving; `none` fits on the features alone.
    pub position_bias: PositionBias,
}

/// How ranker training treats the slot a logged item was shown in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionBias {
    /// The logged position is a training-only feature, held at position 0 when serving,
    /// so the trees explain "it was on top" apart from "it is relevant".
    #[default]
    Feature,
    /// No correction: the position is not a feature.
    None,
}

/// The kinds of ranker training can fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RankerKind {
    /// Gradient-boosted trees with the LambdaMART objective.
    Gbdt,
    /// Logistic regression (pointwise), the baseline.
    Logistic,
}

impl TrainingSettings {
    /// The label window in milliseconds.
    pub fn label_window_millis(&self) -> i64 {
        (self.label_window_hours * 3_600_000.0).round() as i64
    }
}

impl Default for TrainingSettings {
    fn default() -> Self {
        TrainingSettings {
            als_factors: 48,
            als_regularization: 30.0,
            als_alpha: 3.0,
            als_iterations: 15,
            warm_start_iterations: 5,
            ease_lambda: 300.0,
            ease_max_items: 20_000,
            negatives_per_positive: 4,
            seed: 42,
            fusion_cut: None,
            row_cut: None,
            gate_cut: None,
            label_window_hours: 24.0,
            ranker: RankerKind::Gbdt,
            ranker_anchor_events: 4000,
            ranker_rows_per_anchor: 200,
            gbdt: flywheel_ranking::GbdtParams::default(),
            position_bias: PositionBias::Feature,
        }
    }
}

/// How a candidate version is judged against the serving one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateRuleKind {
    /// Promote unless the CI of the NDCG@10 difference lies wholly below −margin.
    NonInferiority,
    /// Promote only if the CI lies wholly above +margin.
    Superiority,
}

/// Settings of the promotion gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateSettings {
    /// The rule.
    pub rule: GateRuleKind,
    /// The margin of the rule, in NDCG@10 points (0.01 = one point).
    pub margin: f64,
    /// Share of the events (the latest) the gate holds out.
    pub holdout: f64,
    /// Bootstrap resamples of the paired difference.
    pub resamples: usize,
    /// Two-sided confidence level of its interval.
    pub confidence: f64,
    /// Seed of the bootstrap.
    pub seed: u64,
    /// Score at most this many holdout users (an even sample); 0 means all.
    pub max_users: usize,
}

impl Default for GateSettings {
    fn default() -> Self {
        GateSettings {
            rule: GateRuleKind::NonInferiority,
            margin: 0.01,
            holdout: 0.1,
            resamples: 1000,
            confidence: 0.95,
            seed: 12345,
            max_users: 2000,
        }
    }
}

impl EngineConfig {
    /// Reads a TOML config file; errors name the file and the offending key.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| PipelineError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text).map_err(|e| match e {
            PipelineError::Config(msg) => {
                PipelineError::Config(format!("{}: {msg}", path.display()))
            }
            other => other,
        })
    }

    /// Parses TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let config: EngineConfig =
            toml::from_str(text).map_err(|e| PipelineError::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Whether `other` trains and serves the same models: the same retrieval, re-ranking,
    /// training settings and actions. Where the data lives, the log, the deadlines and
    /// the gate's own settings do not change what a version is.
    pub fn same_models_as(&self, other: &EngineConfig) -> bool {
        self.retrieval == other.retrieval
            && self.rerank == other.rerank
            && self.training == other.training
            && self.custom_actions == other.custom_actions
    }

    /// Checks ranges that serde cannot.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: &str| Err(PipelineError::Config(msg.to_string()));
        self.monitoring
            .validate()
            .map_err(|e| PipelineError::Config(e.to_string()))?;
        self.controller
            .validate()
            .map_err(|e| PipelineError::Config(e.to_string()))?;
        self.bots.validate().map_err(PipelineError::Config)?;
        if let Some(unknown) = self
            .monitoring
            .watched_features
            .iter()
            .find(|name| !monitored_feature_names().any(|known| known == name.as_str()))
        {
            return bad(&format!(
                "monitoring.watched_features: unknown feature `{unknown}`; the features are {}",
                monitored_feature_names().collect::<Vec<_>>().join(", ")
            ));
        }
        self.rerank
            .validate()
            .map_err(|e| PipelineError::Config(format!("rerank: {e}")))?;
        if let Err(e) = self.retrieval.ann.validate() {
            return bad(&e.to_string());
        }
        if self.snapshots.keep == 0 {
            return bad("snapshots.keep must be at least 1");
        }
        if self.retrieval.candidates == 0 {
            return bad("retrieval.candidates must be positive");
        }
        for (name, share) in &self.retrieval.quotas {
            if flywheel_core::Channel::parse(name).is_none() {
                return bad(&format!("retrieval.quotas: unknown channel `{name}`"));
            }
            if !(0.0..=1.0).contains(share) {
                return bad(&format!("retrieval.quotas.{name} must be in [0, 1]"));
            }
        }
        if !(0.01..=0.5).contains(&self.gate.holdout) {
            return bad("gate.holdout must be in [0.01, 0.5]");
        }
        if !(self.gate.margin >= 0.0 && self.gate.margin.is_finite()) {
            return bad("gate.margin must be a finite number >= 0");
        }
        if !(0.5..1.0).contains(&self.gate.confidence) {
            return bad("gate.confidence must be in [0.5, 1)");
        }
        if self.training.als_factors == 0
            || self.training.als_iterations == 0
            || self.training.warm_start_iterations == 0
        {
            return bad("training.als_factors, training.als_iterations and training.warm_start_iterations must be positive");
        }
        self.training
            .gbdt
            .validate()
            .map_err(|e| PipelineError::Config(format!("training.gbdt: {e}")))?;
        if self.training.ranker_anchor_events == 0 || self.training.ranker_rows_per_anchor == 0 {
            return bad(
                "training.ranker_anchor_events and training.ranker_rows_per_anchor must be positive",
            );
        }
        let hours = self.training.label_window_hours;
        if !(hours.is_finite() && hours > 0.0 && hours <= 24.0 * 3650.0) {
            return bad("training.label_window_hours must be positive (and at most ten years)");
        }
        let t = &self.training;
        for (earlier, later, names) in [
            (
                t.fusion_cut,
                t.row_cut,
                "training.fusion_cut must not be after training.row_cut",
            ),
            (
                t.row_cut,
                t.gate_cut,
                "training.row_cut must not be after training.gate_cut",
            ),
            (
                t.fusion_cut,
                t.gate_cut,
                "training.fusion_cut must not be after training.gate_cut",
            ),
        ] {
            if let (Some(a), Some(b)) = (earlier, later) {
                if a > b {
                    return bad(names);
                }
            }
        }
        Ok(())
    }
}

/// The feature store configuration implied by the engine's.
pub fn feature_config(config: &EngineConfig) -> FeatureConfig {
    let mut features = FeatureConfig::default();
    features.recent_actions = features.recent_actions.max(config.retrieval.history_items);
    features.bots = config.bots.clone();
    features
}

/// Every feature live monitoring reports: the ranking features, the calibrated
/// P(click), the engaged-category affinity and the event categoricals.
pub fn monitored_feature_names() -> impl Iterator<Item = &'static str> {
    flywheel_ranking::FEATURE_NAMES
        .iter()
        .copied()
        .chain([
            flywheel_monitor::PREDICTED_CTR,
            flywheel_monitor::reference::ENGAGED_AFFINITY,
        ])
        .chain(flywheel_monitor::CATEGORICAL_FEATURES.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watched_features_must_be_monitored_features() {
        let err = EngineConfig::from_toml_str("[monitoring]\nwatched_features = [\"item_ctr\"]")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown feature `item_ctr`"), "{err}");
        let ok = EngineConfig::from_toml_str(
            "[monitoring]\nwatched_features = [\"event_action\", \"item_ctr_log_odds\"]",
        )
        .unwrap();
        assert!(ok.monitoring.is_watched("event_action"));
        assert!(!ok.monitoring.is_watched("predicted_ctr"));
    }

    #[test]
    fn the_reference_config_file_parses_to_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../flywheel.example.toml");
        let config = EngineConfig::from_toml_file(&path).unwrap();
        assert_eq!(config, EngineConfig::default());
    }

    #[test]
    fn only_model_settings_make_two_configs_train_different_models() {
        let base = EngineConfig::default();
        let mut moved = base.clone();
        moved.data_dir = "elsewhere".into();
        moved.log.fsync = false;
        moved.deadlines.ranking_ms = 1;
        moved.gate.margin = 0.5;
        assert!(base.same_models_as(&moved));
        let mut other = base.clone();
        other.rerank.mmr_lambda = 0.5;
        assert!(!base.same_models_as(&other));
    }

    #[test]
    fn unknown_keys_and_bad_ranges_are_errors() {
        assert!(EngineConfig::from_toml_str("[rerank]\ncategory_kap = 0.5").is_err());
        assert!(EngineConfig::from_toml_str("[rerank]\ncategory_cap = 1.5").is_err());
        assert!(EngineConfig::from_toml_str("[retrieval.quotas]\nmagic = 0.5").is_err());
        let ok = EngineConfig::from_toml_str("[rerank]\ncategory_cap = 0.5").unwrap();
        assert_eq!(ok.rerank.category_cap, 0.5);
        assert!(EngineConfig::from_toml_str("[training]\nlabel_window_hours = 0").is_err());
        assert!(EngineConfig::from_toml_str(
            "[training]\nrow_cut = \"2026-01-03T00:00:00Z\"\ngate_cut = \"2026-01-02T00:00:00Z\""
        )
        .is_err());
    }

    #[test]
    fn training_cuts_are_absolute_times() {
        let config = EngineConfig::from_toml_str(
            "[training]\nfusion_cut = \"2026-01-01T00:00:00Z\"\nrow_cut = 1767398400\ngate_cut = \"2026-01-04T00:00:00Z\"\nlabel_window_hours = 12",
        )
        .unwrap();
        let t = &config.training;
        assert_eq!(
            t.fusion_cut,
            Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").ok()
        );
        assert_eq!(
            t.row_cut,
            Timestamp::parse_rfc3339("2026-01-03T00:00:00Z").ok()
        );
        assert_eq!(
            t.gate_cut,
            Timestamp::parse_rfc3339("2026-01-04T00:00:00Z").ok()
        );
        assert_eq!(t.label_window_millis(), 12 * 3_600_000);
        // The manifest stores the config as JSON: unset cuts round-trip.
        let json = serde_json::to_string(&EngineConfig::default()).unwrap();
        assert_eq!(
            serde_json::from_str::<EngineConfig>(&json).unwrap(),
            EngineConfig::default()
        );
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<EngineConfig>(&json).unwrap(), config);
    }
}
