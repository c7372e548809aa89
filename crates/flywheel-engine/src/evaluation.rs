//! Offline evaluation on the engine's own data.
//!
//! The log's events are split into a training and a test part ([`Split`]: a temporal
//! cut, by default the last 10% of events; leave-last-out; or a seeded per-user
//! random 75/25 split). Models are trained on the training records with the same code
//! as `flywheel train`; the derived state is replayed from the training records; then,
//! for every user with test engagements, each channel alone and the full blended
//! pipeline recommend as of the cut (or the last training event), with the user's
//! whole training history excluded. A test item counts as relevant when the user
//! engaged with it in the test part and had not met it in training.
//!
//! Per system: NDCG@10 (binary gain, ideal over all relevant items), Recall@20, P@10,
//! MAP@10, hit@10, the NDCG@k curve, catalog coverage, intra-list diversity and
//! novelty ([`metrics`]), the same accuracy by slice (head/tail items, new/power users,
//! category), and, when a ranker is trained, its calibration on the holdout candidates.
//! [`compare_versions`] is the promotion gate between two saved model sets.

mod compare;
mod html;
pub mod metrics;
pub mod split;

use flywheel_core::{Channel, ItemId, LogRecord, Timestamp, UserId};
use flywheel_eval::pointwise::{self, ReliabilityBin};
use flywheel_ranking::{featurize, RankingInput};
use flywheel_retrieval::ContentIndex;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::config::EngineConfig;
use crate::engine::feature_config;
use crate::error::Result;
use crate::models::ModelSet;
use crate::pipeline::{recommend, retrieve_candidates, RecRequest};
use crate::state::State;
use crate::training::{self, Replay};

pub use compare::{compare_versions, paired_bootstrap_ci, Comparison, GateOptions, PromotionRule};
pub use html::render_html;
pub use metrics::{SliceMetrics, SystemMetrics};
use metrics::{TrainStats, UserList};
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
    let train_replay = |visit: &mut dyn FnMut(u64, &LogRecord) -> Result<()>| -> Result<()> {
        log.visit_train(visit)
    };
    let (models, _) = training::train(config, &train_replay, "holdout".into(), progress)?;
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

/// The log in memory with its test records marked.
pub(crate) struct SplitLog {
    offsets: Vec<u64>,
    records: Vec<LogRecord>,
    marked: split::Marked,
}

impl SplitLog {
    fn read(replay: &Replay, protocol: &Protocol, options: &EvalOptions) -> Result<Self> {
        let (mut offsets, mut records) = (Vec::new(), Vec::new());
        replay(&mut |offset, record| {
            offsets.push(offset);
            records.push(record.clone());
            Ok(())
        })?;
        let marked = split::mark(&records, protocol, options.holdout)?;
        Ok(SplitLog {
            offsets,
            records,
            marked,
        })
    }

    fn visit_train(&self, visit: &mut dyn FnMut(u64, &LogRecord) -> Result<()>) -> Result<()> {
        for ((offset, record), test) in self
            .offsets
            .iter()
            .zip(&self.records)
            .zip(&self.marked.is_test)
        {
            if !test {
                visit(*offset, record)?;
            }
        }
        Ok(())
    }
}

/// Everything the systems are scored against.
pub(crate) struct Holdout {
    state: State,
    content: ContentIndex,
    now: Timestamp,
    history: HashMap<UserId, HashSet<ItemId>>,
    truth: HashMap<UserId, HashSet<ItemId>>,
    warm: Vec<UserId>,
    cold: Vec<UserId>,
    stats: TrainStats,
    slicing: metrics::Slicing,
    train_events: u64,
    test_events: u64,
}

impl Holdout {
    fn prepare(config: &EngineConfig, log: &SplitLog, options: &EvalOptions) -> Self {
        let mut state = State::new(feature_config(config));
        let mut history: HashMap<UserId, HashSet<ItemId>> = HashMap::new();
        let mut history_len: HashMap<UserId, u64> = HashMap::new();
        let mut truth: HashMap<UserId, HashSet<ItemId>> = HashMap::new();
        let mut stats = TrainStats::default();
        let (mut train_events, mut test_events) = (0u64, 0u64);
        for (record, test) in log.records.iter().zip(&log.marked.is_test) {
            match (record, test) {
                (LogRecord::Event(e), false) => {
                    if history
                        .entry(e.user_id.clone())
                        .or_default()
                        .insert(e.item_id.clone())
                    {
                        *stats.item_users.entry(e.item_id.clone()).or_default() += 1;
                    }
                    *history_len.entry(e.user_id.clone()).or_default() += 1;
                    *stats.item_events.entry(e.item_id.clone()).or_default() += 1;
                    train_events += 1;
                }
                (LogRecord::Event(e), true) => {
                    test_events += 1;
                    if e.action.implicit_weight() > 0.0 {
                        truth
                            .entry(e.user_id.clone())
                            .or_default()
                            .insert(e.item_id.clone());
                    }
                }
                _ => {}
            }
            if !test {
                state.apply(record);
            }
        }
        for (user, items) in truth.iter_mut() {
            if let Some(seen) = history.get(user) {
                items.retain(|i| !seen.contains(i));
            }
        }
        truth.retain(|_, items| !items.is_empty());
        let mut users: Vec<UserId> = truth.keys().cloned().collect();
        users.sort();
        if let Some(max) = options.max_users {
            users = sample_evenly(users, max);
        }
        let (warm, cold): (Vec<UserId>, Vec<UserId>) =
            users.into_iter().partition(|u| history.contains_key(u));
        stats.train_users = history.len() as u64;
        stats.catalog_items = state.catalog.item_count();
        stats.category = state
            .catalog
            .items()
            .map(|i| (i.id.clone(), i.top_category().to_string()))
            .collect();
        let (new_users, power_users) = metrics::user_thirds(&warm, &history_len);
        let slicing = metrics::Slicing {
            head: metrics::head_items(&stats.item_events),
            new_users,
            power_users,
        };
        let items: Vec<flywheel_core::Item> = state
            .catalog
            .items()
            .map(|i| flywheel_core::Item::clone(i))
            .collect();
        Holdout {
            content: ContentIndex::build(&items),
            state,
            now: log.marked.now,
            history,
            truth,
            warm,
            cold,
            stats,
            slicing,
            train_events,
            test_events,
        }
    }

    fn request(&self, user: &UserId, system: System) -> RecRequest {
        RecRequest {
            user_id: user.clone(),
            count: 20,
            category: None,
            now: self.now,
            keep_features: false,
            only_channel: system.0,
            exclude: self.history.get(user).cloned().unwrap_or_default(),
            use_ranker: system.1,
            enforce_deadlines: false,
        }
    }

    /// Each user's top-20 list from one system.
    fn lists<'a>(
        &'a self,
        config: &EngineConfig,
        models: &ModelSet,
        users: &'a [UserId],
        system: System,
    ) -> Vec<UserList<'a>> {
        users
            .par_iter()
            .filter_map(|user| {
                let relevant = self.truth.get(user)?;
                let request = self.request(user, system);
                let rec = recommend(&self.state, models, Some(&self.content), config, &request);
                Some(UserList {
                    user,
                    ranked: rec.items.into_iter().map(|i| i.item_id).collect(),
                    relevant,
                })
            })
            .collect()
    }

    /// The ranker's probabilities on the blended candidates of the warm users.
    fn calibration(&self, config: &EngineConfig, models: &ModelSet) -> Option<RankerCalibration> {
        let ranker = models.ranker.as_ref()?;
        let users = sample_evenly(self.warm.clone(), CALIBRATION_USERS);
        let rows: Vec<(bool, f64)> = users
            .par_iter()
            .flat_map_iter(|user| {
                let request = self.request(user, (None, true));
                let candidates =
                    retrieve_candidates(&self.state, models, Some(&self.content), config, &request);
                let features = self.state.features.user_features(user, self.now);
                let truth = self.truth.get(user);
                candidates
                    .into_iter()
                    .filter_map(|candidate| {
                        let item = self.state.catalog.item(&candidate.item_id)?;
                        let item_features = self
                            .state
                            .features
                            .item_features(&candidate.item_id, self.now);
                        let x = featurize(&RankingInput {
                            user: &features,
                            item,
                            item_features: &item_features,
                            candidate: &candidate,
                            now: self.now,
                        });
                        let label = truth.is_some_and(|t| t.contains(&candidate.item_id));
                        Some((label, ranker.predict(&x).clamp(0.0, 1.0)))
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        if rows.is_empty() {
            return None;
        }
        let (labels, scores): (Vec<bool>, Vec<f64>) = rows.into_iter().unzip();
        let table = pointwise::calibration(&labels, &scores, 10);
        Some(RankerCalibration {
            rows: labels.len(),
            positives: labels.iter().filter(|l| **l).count(),
            auc: pointwise::roc_auc(&labels, &scores),
            log_loss: pointwise::log_loss(&labels, &scores),
            ece: table.ece,
            mce: table.mce,
            reliability: table.bins,
        })
    }
}

/// Users whose candidates the calibration check scores at most.
const CALIBRATION_USERS: usize = 2000;

fn sample_evenly(users: Vec<UserId>, max: usize) -> Vec<UserId> {
    if users.len() <= max || max == 0 {
        return users;
    }
    let step = users.len() as f64 / max as f64;
    (0..max)
        .map(|i| users[(i as f64 * step) as usize].clone())
        .collect()
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
    use flywheel_core::{Action, Event, Item};

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
    fn a_model_set_compared_with_itself_is_not_promoted() {
        let log = shop_log();
        let replay = replay_of(&log);
        let config = EngineConfig::default();
        let (models, _) =
            training::train(&config, &replay, "v1".into(), &mut |_| {}).expect("trains");
        let comparison = compare_versions(
            &config,
            &replay,
            &EvalOptions::default(),
            &Protocol::default(),
            &models,
            &models,
            &GateOptions::default(),
            &mut |_| {},
        )
        .expect("compares");
        assert!(comparison.users > 0);
        assert_eq!(
            (
                comparison.mean_difference,
                comparison.ci_low,
                comparison.ci_high
            ),
            (0.0, 0.0, 0.0)
        );
        assert!(
            !comparison.promote,
            "no lift: the CI's lower bound is not above 0"
        );
    }
}
