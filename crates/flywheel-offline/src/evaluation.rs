//! Offline evaluation on the engine's own data.
//!
//! The log's events are split into a training and a test part ([`Split`]: a temporal
//! cut, by default the last 10% of events; leave-last-out; or a seeded per-user
//! random 75/25 split). Models are trained on the training records with the same code
//! as `flywheel train`; the derived state is replayed from the training records; then,
//! for every user with test engagements, each channel alone (its own order, through
//! the same re-ranking rules) and the full blended pipeline recommend as of the cut (or the last training event), with the user's
//! whole training history excluded. A test item counts as relevant when the user
//! engaged with it in the test part and had not met it in training.
//!
//! Per system: NDCG@10 (binary gain, ideal over all relevant items), Recall@20, P@10,
//! MAP@10, hit@10, the NDCG@k curve, catalog coverage, intra-list diversity and
//! novelty ([`metrics`]), the same accuracy by slice (head/tail items, new/power users,
//! category), and, when the trained ranker predicts probabilities (logistic, a binary
//! GBDT; not LambdaMART, whose scores are only an order), its calibration on the holdout
//! candidates.
//! The promotion gate between two versions: [`compare_registered`] picks
//! [`compare_configs`] (both retrained on the split, when their model settings differ) or
//! [`compare_versions`] (frozen models on a holdout after both training windows).
//! Counterfactual evaluation of a registered candidate on the serving policy's logged
//! propensities: [`evaluate_candidate`] ([`ope`]).

mod compare;
mod holdout;
mod html;
pub mod metrics;
pub mod ope;
pub mod split;

use flywheel_core::{Channel, Timestamp};
use flywheel_eval::pointwise::ReliabilityBin;
use serde::Serialize;
use std::collections::BTreeMap;

use crate::error::Result;
use crate::training::{self, Replay};
use flywheel_pipeline::EngineConfig;

pub use compare::{
    compare_configs, compare_registered, compare_versions, paired_bootstrap_ci, Comparison,
    GateMethod, GateOptions, PromotionRule,
};
use holdout::{Holdout, SplitLog};
pub use html::render_html;
pub use metrics::{SliceMetrics, SystemMetrics};
pub use ope::{evaluate_candidate, CandidateOpeReport, ReplayEstimate, SlotCounts};
pub use split::{Protocol, Split};

/// How to evaluate.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Share of the events (the latest ones) held out by the temporal split.
    pub holdout: f64,
    /// Evaluate at most this many test users (an even sample), all when `None`.
    pub max_users: Option<usize>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            holdout: 0.1,
            max_users: None,
        }
    }
}

/// How well the ranker's probabilities match outcomes on the holdout candidates.
#[derive(Debug, Clone, Serialize)]
pub struct RankerCalibration {
    /// Candidate rows scored.
    pub rows: usize,
    /// Rows whose item the user engaged with in the test part.
    pub positives: usize,
    /// ROC AUC (`None` when one class is missing).
    pub auc: Option<f64>,
    /// Log-loss.
    pub log_loss: f64,
    /// Expected calibration error over 10 equal-width bins.
    pub ece: f64,
    /// Maximum calibration error.
    pub mce: f64,
    /// The reliability table.
    pub reliability: Vec<ReliabilityBin>,
}

/// The result of `flywheel eval`.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// The protocol, in words.
    pub protocol: String,
    /// The split.
    pub split: Split,
    /// Recommendations are made as of this time: the temporal cut, or the last
    /// training event for the other splits.
    pub cut: Timestamp,
    /// Training events.
    pub train_events: u64,
    /// Held-out events.
    pub test_events: u64,
    /// Users evaluated.
    pub test_users: usize,
    /// Of which had no training history.
    pub cold_users: usize,
    /// Items in the catalog at the cut.
    pub catalog_items: usize,
    /// Metrics over the test users with training history, per channel
    /// (`popularity`, `trending`, `co_visitation`, `als`, `ease`, `content`), for the
    /// final `blend`, and for `blend_unranked` (the same pipeline without the ranker,
    /// to show what ranking adds).
    pub systems: BTreeMap<String, SystemMetrics>,
    /// Metrics over the test users with no training history (cold start), for the
    /// systems that can serve them.
    pub cold_start: BTreeMap<String, SystemMetrics>,
    /// Per system, accuracy by slice (`items:head`, `items:tail`, `users:new`,
    /// `users:power`, `category:<name>`).
    pub slices: BTreeMap<String, BTreeMap<String, SliceMetrics>>,
    /// The ranker's calibration on the holdout candidates, when one was trained.
    pub calibration: Option<RankerCalibration>,
}

/// The log split by a protocol, held in memory, whose training part can be replayed
/// (a candidate trained on it never sees the holdout).
pub struct SplitRecords(SplitLog);

impl SplitRecords {
    /// Trains `config` on the training records only, as version `version`; the
    /// served ALS starts from `warm`'s factors when given ([`training::train_warm`]).
    pub fn train(
        &self,
        config: &EngineConfig,
        version: &str,
        progress: &mut dyn FnMut(&str),
        warm: Option<&flywheel_retrieval::AlsModel>,
    ) -> Result<(flywheel_pipeline::ModelSet, training::TrainReport)> {
        self.0.train(config, version, progress, warm)
    }

    /// The frozen comparison ([`compare_versions`]) on this very split: the versions
    /// must both have been trained before its cut.
    pub fn compare_frozen(
        &self,
        config: &EngineConfig,
        options: &EvalOptions,
        serving: &flywheel_pipeline::ModelSet,
        candidate: &flywheel_pipeline::ModelSet,
        gate: &GateOptions,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Comparison> {
        compare::compare_versions_on(&self.0, config, options, serving, candidate, gate, progress)
    }
}

/// Splits the log as the promotion gate will (temporal, `options.holdout`, never
/// before `protocol.not_before`).
pub fn split_for_gate(
    replay: &Replay,
    protocol: &Protocol,
    options: &EvalOptions,
) -> Result<SplitRecords> {
    SplitLog::read(replay, protocol, options).map(SplitRecords)
}

/// Runs the temporal holdout over a replayable log.
pub fn evaluate(
    config: &EngineConfig,
    replay: &Replay,
    options: &EvalOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<EvalReport> {
    evaluate_with(config, replay, options, &Protocol::default(), progress)
}

/// Runs the evaluation under any protocol: split, train on the training part, score.
pub fn evaluate_with(
    config: &EngineConfig,
    replay: &Replay,
    options: &EvalOptions,
    protocol: &Protocol,
    progress: &mut dyn FnMut(&str),
) -> Result<EvalReport> {
    progress("reading the log");
    let log = SplitLog::read(replay, protocol, options)?;
    let (models, _) = log.train(config, "holdout", progress, None)?;
    progress("replaying the state from the training records");
    let holdout = Holdout::prepare(config, &log, options);
    progress("scoring every system on the test users");
    let mut systems = BTreeMap::new();
    let mut slices = BTreeMap::new();
    for system in ALL_SYSTEMS {
        let lists = holdout.lists(config, &models, &holdout.warm, system);
        let name = system_name(system);
        if SLICED.contains(&name.as_str()) {
            slices.insert(
                name.clone(),
                metrics::slices(&lists, &holdout.slicing, &holdout.stats),
            );
        }
        systems.insert(name, metrics::system_metrics(&lists, &holdout.stats));
    }
    let mut cold_start = BTreeMap::new();
    if !holdout.cold.is_empty() {
        for system in COLD_SYSTEMS {
            let lists = holdout.lists(config, &models, &holdout.cold, system);
            cold_start.insert(
                system_name(system),
                metrics::system_metrics(&lists, &holdout.stats),
            );
        }
    }
    if holdout.warm.is_empty() {
        systems.clear();
    }
    progress("checking the ranker's calibration");
    let calibration = holdout.calibration(config, &models);
    Ok(EvalReport {
        protocol: log.marked.description.clone(),
        split: protocol.split,
        cut: log.marked.now,
        train_events: holdout.train_events,
        test_events: holdout.test_events,
        cold_users: holdout.cold.len(),
        test_users: holdout.warm.len() + holdout.cold.len(),
        catalog_items: holdout.stats.catalog_items,
        systems,
        cold_start,
        slices,
        calibration,
    })
}

/// (channel alone, or the blend when `None`; whether the ranker runs).
type System = (Option<Channel>, bool);

const ALL_SYSTEMS: [System; 8] = [
    (Some(Channel::Popularity), false),
    (Some(Channel::Trending), false),
    (Some(Channel::CoVisitation), false),
    (Some(Channel::Als), false),
    (Some(Channel::Ease), false),
    (Some(Channel::Content), false),
    (None, false),
    (None, true),
];

const COLD_SYSTEMS: [System; 3] = [
    (Some(Channel::Popularity), false),
    (Some(Channel::Trending), false),
    (None, true),
];

/// The systems whose metrics are reported by slice.
const SLICED: [&str; 5] = ["blend", "blend_unranked", "popularity", "als", "ease"];

fn system_name(system: System) -> String {
    match system {
        (Some(channel), _) => channel.as_str().to_string(),
        (None, true) => "blend".to_string(),
        (None, false) => "blend_unranked".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::{Action, Event, Item, ItemId, LogRecord, UserId};

    /// 60 users over 30 items in 3 categories; user u likes items of category u % 3,
    /// one event a minute, in a fixed order.
    fn shop_log() -> Vec<LogRecord> {
        let mut log: Vec<LogRecord> = (0..30)
            .map(|i| {
                LogRecord::ItemUpsert(Item::new(
                    ItemId::new_unchecked(format!("i{i}")),
                    ["books", "games", "music"][i % 3],
                ))
            })
            .collect();
        let mut minute = 0;
        for round in 0..8 {
            for u in 0..60usize {
                let item = (u % 3) + 3 * ((u + round * 7) % 10);
                minute += 1;
                log.push(LogRecord::Event(Event {
                    user_id: UserId::new_unchecked(format!("u{u}")),
                    item_id: ItemId::new_unchecked(format!("i{item}")),
                    action: if round % 3 == 0 {
                        Action::Click
                    } else {
                        Action::View
                    },
                    value: None,
                    timestamp: Timestamp::from_secs(1_700_000_000 + 60 * minute),
                    request_id: None,
                    position: None,
                    context: Default::default(),
                }));
            }
        }
        log
    }

    fn replay_of(log: &[LogRecord]) -> Box<Replay<'_>> {
        Box::new(move |visit| {
            for (offset, record) in log.iter().enumerate() {
                visit(offset as u64, record)?;
            }
            Ok(())
        })
    }

    #[test]
    fn every_split_reports_every_system_without_nan() {
        let log = shop_log();
        let replay = replay_of(&log);
        let config = EngineConfig::default();
        for split in [Split::Temporal, Split::LeaveLastOut, Split::UserRandom] {
            let protocol = Protocol {
                split,
                ..Protocol::default()
            };
            let report = evaluate_with(
                &config,
                &replay,
                &EvalOptions::default(),
                &protocol,
                &mut |_| {},
            )
            .expect("480 events are enough");
            assert_eq!(report.train_events + report.test_events, 480, "{split:?}");
            if split == Split::LeaveLastOut {
                assert_eq!(report.test_events, 60, "one left-out event per user");
            }
            let json = serde_json::to_value(&report).expect("serializable");
            for name in [
                "popularity",
                "trending",
                "co_visitation",
                "als",
                "ease",
                "content",
                "blend",
                "blend_unranked",
            ] {
                let system = &json["systems"][name];
                for key in [
                    "ndcg@10",
                    "recall@20",
                    "p@10",
                    "map@10",
                    "hit@10",
                    "coverage",
                    "intra_list_diversity",
                    "novelty",
                ] {
                    let value = system[key].as_f64();
                    assert!(
                        value.is_some_and(f64::is_finite),
                        "{split:?} {name} {key}: {value:?}"
                    );
                }
            }
            for key in ["items:head", "items:tail", "users:new", "users:power"] {
                assert!(
                    json["slices"]["blend"][key]["ndcg@10"].is_f64(),
                    "{split:?} {key}"
                );
            }
        }
    }

    #[test]
    fn a_frozen_comparison_holds_out_only_what_neither_version_saw() {
        let log = shop_log();
        let config = EngineConfig::default();
        // Trained on the first 80% of the log only.
        let early = &log[..log.len() * 4 / 5];
        let (models, _) =
            training::train(&config, &*replay_of(early), "v1".into(), &mut |_| {}).expect("trains");
        let until = models.manifest.as_ref().and_then(|m| m.trained_until);
        let replay = replay_of(&log);
        let compare = |rule: PromotionRule| {
            let gate = GateOptions {
                rule,
                ..GateOptions::default()
            };
            compare_versions(
                &config,
                &replay,
                &EvalOptions::default(),
                &Protocol::default(),
                &models,
                &models,
                &gate,
                &mut |_| {},
            )
            .expect("compares")
        };
        let itself = compare(PromotionRule::Superiority { margin: 0.0 });
        assert!(itself.users > 0);
        assert!(
            until.is_some_and(|t| itself.cut > t),
            "the holdout starts after training"
        );
        assert_eq!(
            (itself.mean_difference, itself.ci_low, itself.ci_high),
            (0.0, 0.0, 0.0)
        );
        assert!(!itself.promote, "no lift: superiority says no");
        assert!(compare(PromotionRule::NonInferiority { margin: 0.01 }).promote);

        // A version trained on everything leaves nothing to hold out: refused, not faked.
        let (everything, _) =
            training::train(&config, &replay, "v2".into(), &mut |_| {}).expect("trains");
        let error = compare_versions(
            &config,
            &replay,
            &EvalOptions::default(),
            &Protocol::default(),
            &models,
            &everything,
            &GateOptions::default(),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(error.to_string().contains("no events after"), "{error}");
    }
}
