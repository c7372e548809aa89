//! The holdout the systems are scored on: the log split in memory, the state
//! replayed from its training records, each test user's relevant items, and the
//! scoring of one system (or of the ranker's probabilities) on those users.

use flywheel_core::{ItemId, LogRecord, Timestamp, UserId};
use flywheel_eval::pointwise;
use flywheel_ranking::{featurize, RankingInput};
use flywheel_retrieval::ContentIndex;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};

use super::metrics::{self, TrainStats, UserList};
use super::{split, EvalOptions, Protocol, RankerCalibration, System};
use crate::error::Result;
use crate::training::Replay;
use flywheel_pipeline::feature_config;
use flywheel_pipeline::EngineConfig;
use flywheel_pipeline::ModelSet;
use flywheel_pipeline::State;
use flywheel_pipeline::{recommend, retrieve_candidates, RecRequest};

/// The log in memory with its test records marked.
pub(super) struct SplitLog {
    pub(super) offsets: Vec<u64>,
    pub(super) records: Vec<LogRecord>,
    pub(super) marked: split::Marked,
}

impl SplitLog {
    pub(super) fn read(
        replay: &Replay,
        protocol: &Protocol,
        options: &EvalOptions,
    ) -> Result<Self> {
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

    /// Trains `config` on the training records only (the holdout is never seen).
    pub(super) fn train(
        &self,
        config: &EngineConfig,
        version: &str,
        progress: &mut dyn FnMut(&str),
        warm: Option<&flywheel_retrieval::AlsModel>,
    ) -> Result<(ModelSet, crate::training::TrainReport)> {
        let train_replay = |visit: &mut dyn FnMut(u64, &LogRecord) -> Result<()>| -> Result<()> {
            self.visit_train(visit)
        };
        crate::training::train_warm(config, &train_replay, version.to_string(), progress, warm)
    }

    pub(super) fn visit_train(
        &self,
        visit: &mut dyn FnMut(u64, &LogRecord) -> Result<()>,
    ) -> Result<()> {
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
pub(super) struct Holdout {
    pub(super) state: State,
    pub(super) content: ContentIndex,
    pub(super) now: Timestamp,
    pub(super) history: HashMap<UserId, HashSet<ItemId>>,
    pub(super) truth: HashMap<UserId, HashSet<ItemId>>,
    pub(super) warm: Vec<UserId>,
    pub(super) cold: Vec<UserId>,
    pub(super) stats: TrainStats,
    pub(super) slicing: metrics::Slicing,
    pub(super) train_events: u64,
    pub(super) test_events: u64,
}

impl Holdout {
    pub(super) fn prepare(config: &EngineConfig, log: &SplitLog, options: &EvalOptions) -> Self {
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
        Holdout {
            content: state.catalog.content_index(),
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
            alternatives: 0,
            context: Default::default(),
        }
    }

    /// Each user's top-20 list from one system.
    pub(super) fn lists<'a>(
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
    pub(super) fn calibration(
        &self,
        config: &EngineConfig,
        models: &ModelSet,
    ) -> Option<RankerCalibration> {
        // A ranking score (LambdaMART) is an order, not a probability to calibrate.
        let ranker = models
            .ranker
            .as_ref()
            .filter(|r| r.predicts_probability())?;
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
                            context: &flywheel_core::RequestContext::default(),
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
