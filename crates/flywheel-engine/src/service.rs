//! The engine's operations above the pipeline: serve a request (and log it as an
//! impression), train and promote a model version, replay the log.

use flywheel_core::LogRecord;

use flywheel_offline::evaluation::Comparison;
use flywheel_offline::promotion::{self, Candidate};
use flywheel_offline::training::TrainReport;
use flywheel_offline::{OfflineError, Replay};
use flywheel_registry as registry;
use flywheel_registry::{GateRecord, Origin, Status, WindowCuts};
use serde::Serialize;
use std::collections::BTreeMap;

use crate::engine::Engine;
use crate::error::Result;
use crate::records;

/// What a training run produced and what the promotion gate decided.
#[derive(Debug, Clone, Serialize)]
pub struct TrainOutcome {
    /// The version registered.
    pub version: String,
    /// Whether it now serves.
    pub promoted: bool,
    /// Whether it serves only because `--force` was given.
    pub forced: bool,
    /// The decision in words, with the figures behind it.
    pub reason: String,
    /// What training did.
    pub report: TrainReport,
    /// The gate's comparison with the version that served, when one was made.
    pub comparison: Option<Comparison>,
}

/// The candidate's figures on the gate's holdout, as the registry stores them.
fn candidate_metrics(candidate: &Candidate) -> BTreeMap<String, f64> {
    candidate
        .comparison
        .iter()
        .flat_map(|c| c.candidate.columns())
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

/// The figures of the holdouts inside training: the ranker gate and, per channel,
/// its NDCG@10 on the fusion holdout.
fn holdout_figures(report: &TrainReport) -> BTreeMap<String, f64> {
    let mut figures = BTreeMap::new();
    if let Some(gate) = &report.ranker_gate {
        figures.insert("ranker_gate.ranker_ndcg@10".into(), gate.ranker_ndcg_at_10);
        figures.insert(
            "ranker_gate.retrieval_ndcg@10".into(),
            gate.retrieval_ndcg_at_10,
        );
        figures.insert("ranker_gate.users".into(), gate.users as f64);
    }
    for (channel, ndcg) in &report.fusion_weights {
        figures.insert(format!("fusion.{channel}.ndcg@10"), *ndcg);
    }
    figures
}

/// The gate's decision, as the registry stores it.
fn gate_record(candidate: &Candidate, serving: &str) -> GateRecord {
    let comparison = candidate.comparison.as_ref();
    GateRecord {
        rule: comparison.map(|c| c.rule.describe()).unwrap_or_default(),
        against: comparison.map(|_| serving.to_string()),
        method: comparison
            .map(|c| c.method.describe().to_string())
            .unwrap_or_else(|| "none".into()),
        users: comparison.map_or(0, |c| c.users),
        candidate_ndcg_at_10: comparison.map(|c| c.candidate.ndcg_at_10),
        serving_ndcg_at_10: comparison.map(|c| c.serving.ndcg_at_10),
        mean_difference: comparison.map(|c| c.mean_difference),
        ci_low: comparison.map(|c| c.ci_low),
        ci_high: comparison.map(|c| c.ci_high),
        promoted: candidate.decision.promote,
        forced: candidate.decision.forced,
        reason: candidate.decision.reason.clone(),
    }
}

impl Engine {
    /// Calls `visit` with every durable record, in log order, skipping exactly the
    /// records the consumer skips (those that cannot be decoded).
    pub fn replay(
        &self,
        visit: &mut dyn FnMut(u64, &LogRecord) -> flywheel_offline::Result<()>,
    ) -> flywheel_offline::Result<()> {
        let replay_error = |e: flywheel_log::LogError| OfflineError::Replay(e.to_string());
        let start = flywheel_log::LogPosition {
            partition: crate::engine::PARTITION,
            offset: 0,
        };
        for entry in self.log().read_from(start).map_err(replay_error)? {
            let (offset, bytes) = entry.map_err(replay_error)?;
            if let Ok(record) = records::decode(offset, &bytes) {
                // A user being erased is invisible to training as to the consumer.
                if !self.inner.erasure.book.hides(offset, &record) {
                    visit(offset, &record)?;
                }
            }
        }
        Ok(())
    }

    /// Trains a candidate version, registers it, and promotes it only if it passes the
    /// promotion gate against the serving version (or `force` is given, or nothing
    /// serves yet). A rejected candidate stays registered with status `rejected`.
    /// Refused while the controller's circuit breaker is open; the events of every
    /// recorded breach period are left out of the replay it trains on.
    pub fn train(&self, force: bool, progress: &mut dyn FnMut(&str)) -> Result<TrainOutcome> {
        self.train_as(force, Origin::Trained, progress)
    }

    /// [`Engine::train`], with how the version is made recorded in its lineage. A
    /// [`Origin::WarmStart`] (the controller's retrain of a drifting version) begins
    /// the served ALS from the serving version's item factors and runs
    /// `training.warm_start_iterations` sweeps; it is judged by the same gate.
    pub fn train_as(
        &self,
        force: bool,
        origin: Origin,
        progress: &mut dyn FnMut(&str),
    ) -> Result<TrainOutcome> {
        self.train_version_from(None, force, origin, progress)
    }

    /// [`Engine::train`] on records that another source replays (e.g. the Parquet
    /// lake's, converted back to the log's records) instead of this engine's log; the
    /// same training, gate, registration and promotion follow.
    pub fn train_from(
        &self,
        source: &Replay,
        force: bool,
        progress: &mut dyn FnMut(&str),
    ) -> Result<TrainOutcome> {
        self.train_version_from(Some(source), force, Origin::Trained, progress)
    }

    fn train_version_from(
        &self,
        source: Option<&Replay>,
        force: bool,
        origin: Origin,
        progress: &mut dyn FnMut(&str),
    ) -> Result<TrainOutcome> {
        self.check_training_allowed()?;
        let data_dir = self.config().data_dir.clone();
        let version = registry::reserve_version(&data_dir)?;
        let outcome = self.train_version(&version, source, force, origin, progress);
        if outcome.is_err() {
            // The reserved folder holds no manifest yet: remove it (best effort).
            let _ = std::fs::remove_dir_all(registry::models_dir(&data_dir).join(&version));
        }
        outcome
    }

    fn train_version(
        &self,
        version: &str,
        source: Option<&Replay>,
        force: bool,
        origin: Origin,
        progress: &mut dyn FnMut(&str),
    ) -> Result<TrainOutcome> {
        let data_dir = &self.config().data_dir;
        let serving = self.models();
        let breaches = self.breach_periods();
        let replay = |visit: &mut dyn FnMut(u64, &LogRecord) -> flywheel_offline::Result<()>| {
            let mut kept = |offset: u64, record: &LogRecord| {
                if Engine::outside_breaches(&breaches, record) {
                    visit(offset, record)
                } else {
                    Ok(())
                }
            };
            match source {
                Some(source) => source(&mut kept),
                None => self.replay(&mut kept),
            }
        };
        let candidate = promotion::train_candidate(
            self.config(),
            &replay,
            &serving,
            version.to_string(),
            force,
            match origin {
                Origin::WarmStart => promotion::Start::WarmFromServing,
                Origin::Trained => promotion::Start::Cold,
            },
            progress,
        )?;
        progress("saving");
        registry::save(data_dir, &candidate.models)?;
        self.note_training(version, breaches)?;
        let record = gate_record(&candidate, serving.version());
        registry::update_record(data_dir, version, |r| {
            r.status = if candidate.decision.promote {
                Status::Candidate
            } else {
                Status::Rejected
            };
            r.metrics = candidate_metrics(&candidate);
            r.gate = Some(record);
            r.holdout = holdout_figures(&candidate.report);
            r.lineage.parent = serving.manifest.as_ref().map(|m| m.version.clone());
            r.lineage.origin = Some(origin);
            if let Some(window) = r.window.as_mut() {
                let cuts = candidate.report.cuts;
                window.cuts = Some(WindowCuts {
                    fusion_cut: cuts.fusion_cut,
                    row_cut: cuts.row_cut,
                    gate_cut: cuts.gate_cut,
                });
            }
        })?;
        if candidate.decision.promote {
            let by = if candidate.decision.forced {
                "training (forced)"
            } else {
                "training (gate)"
            };
            self.promote_by(version, by)?;
        }
        Ok(TrainOutcome {
            version: version.to_string(),
            promoted: candidate.decision.promote,
            forced: candidate.decision.forced,
            reason: candidate.decision.reason,
            report: candidate.report,
            comparison: candidate.comparison,
        })
    }
}

impl Engine {
    /// Every registered version with its status, oldest first.
    pub fn list_versions(&self) -> Result<Vec<registry::VersionInfo>> {
        Ok(registry::list(&self.config().data_dir)?)
    }

    /// Serves `version` from now on. The name must be a registered version and it
    /// must load completely before `CURRENT` changes; the served models stay
    /// otherwise.
    pub fn promote(&self, version: &str) -> Result<String> {
        self.promote_by(version, "engine")
    }

    /// [`Engine::promote`], with who did it written in the versions' histories.
    /// Promoting the canary's version ends the canary: it serves everyone.
    pub fn promote_by(&self, version: &str, by: &str) -> Result<String> {
        let set = registry::promote_by(&self.config().data_dir, version, by)?;
        crate::engine::swap_models(&self.inner, set);
        crate::canary::reload(&self.inner)?;
        Ok(version.to_string())
    }

    /// Serves the version that served before the current one; returns its name.
    pub fn rollback(&self) -> Result<String> {
        self.rollback_by("engine")
    }

    /// [`Engine::rollback`], with who did it written in the versions' histories.
    pub fn rollback_by(&self, by: &str) -> Result<String> {
        let (version, set) = registry::rollback_by(&self.config().data_dir, by)?;
        crate::engine::swap_models(&self.inner, set);
        Ok(version)
    }
}
