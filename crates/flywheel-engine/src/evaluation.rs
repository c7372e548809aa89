//! Offline evaluation on the engine's own data: a temporal holdout.
//!
//! The log's events are split at a time cut (by default the last 10% of events
//! form the test period). Models are trained on everything before the cut with the
//! same code as `flywheel train`; the derived state is replayed to the cut; then, for
//! every user with engagements after the cut, each channel alone and the full
//! blended pipeline recommend as of the cut, with the user's whole training history
//! excluded. A test item counts as relevant when the user engaged with it after the
//! cut and had not before. Metrics: NDCG@10 (binary gain, ideal over all relevant
//! items), Recall@20, and catalog coverage (share of the catalog appearing in any
//! top-10 list).

use flywheel_core::{Channel, ItemId, LogRecord, Timestamp, UserId};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::config::EngineConfig;
use crate::engine::feature_config;
use crate::error::{EngineError, Result};
use crate::models::ModelSet;
use crate::pipeline::{recommend, RecRequest};
use crate::state::State;
use crate::training::{self, Replay};

/// How to evaluate.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Share of the events (the latest ones) held out for testing.
    pub holdout: f64,
    /// Evaluate at most this many test users (a seeded sample), all when `None`.
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

/// The metrics of one system (a channel alone, or the blend).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SystemMetrics {
    /// NDCG@10 with binary gain.
    #[serde(rename = "ndcg@10")]
    pub ndcg_at_10: f64,
    /// Recall@20.
    #[serde(rename = "recall@20")]
    pub recall_at_20: f64,
    /// Share of the catalog recommended in some top-10 list.
    pub coverage: f64,
    /// Users for whom the system returned at least one item.
    pub users_served: usize,
}

/// The result of `flywheel eval`.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// The protocol's name.
    pub protocol: String,
    /// The time cut between train and test.
    pub cut: Timestamp,
    /// Events before the cut.
    pub train_events: u64,
    /// Events at or after the cut.
    pub test_events: u64,
    /// Users evaluated.
    pub test_users: usize,
    /// Of which had no history before the cut.
    pub cold_users: usize,
    /// Items in the catalog at the cut.
    pub catalog_items: usize,
    /// Metrics over the test users with history before the cut, per channel
    /// (`popularity`, `trending`, `co_visitation`, `als`, `ease`, `content`), for the
    /// final `blend`, and for `blend_unranked` (the same pipeline without the ranker,
    /// to show what ranking adds).
    pub systems: BTreeMap<String, SystemMetrics>,
    /// Metrics over the test users with no history before the cut (cold start), for
    /// the systems that can serve them.
    pub cold_start: BTreeMap<String, SystemMetrics>,
}

fn event_time(record: &LogRecord) -> Option<Timestamp> {
    match record {
        LogRecord::Event(e) => Some(e.timestamp),
        LogRecord::Impression(i) => Some(i.timestamp),
        _ => None,
    }
}

/// Runs the temporal holdout over a replayable log.
pub fn evaluate(config: &EngineConfig, replay: &Replay, options: &EvalOptions, progress: &mut dyn FnMut(&str)) -> Result<EvalReport> {
    progress("reading the log");
    let mut records: Vec<(u64, LogRecord)> = Vec::new();
    replay(&mut |offset, record| {
        records.push((offset, record.clone()));
        Ok(())
    })?;
    let mut times: Vec<Timestamp> = records
        .iter()
        .filter_map(|(_, r)| matches!(r, LogRecord::Event(_)).then(|| event_time(r)).flatten())
        .collect();
    if times.len() < 10 {
        return Err(EngineError::NotEnoughData(format!(
            "evaluation needs at least 10 events, the log has {}",
            times.len()
        )));
    }
    times.sort_unstable();
    let holdout = options.holdout.clamp(0.01, 0.9);
    let cut = times[((times.len() as f64) * (1.0 - holdout)) as usize];
    let before_cut = |record: &LogRecord| event_time(record).is_none_or(|t| t < cut);
    let train_replay = |visit: &mut dyn FnMut(u64, &LogRecord) -> Result<()>| -> Result<()> {
        for (offset, record) in &records {
            if before_cut(record) {
                visit(*offset, record)?;
            }
        }
        Ok(())
    };
    let (models, _) = training::train(config, &train_replay, "holdout".into(), progress)?;
    progress("replaying the state to the cut");
    let mut state = State::new(feature_config(config));
    let mut history: HashMap<UserId, HashSet<ItemId>> = HashMap::new();
    let mut truth: HashMap<UserId, HashSet<ItemId>> = HashMap::new();
    let (mut train_events, mut test_events) = (0u64, 0u64);
    for (_, record) in &records {
        if before_cut(record) {
            if let LogRecord::Event(e) = record {
                history.entry(e.user_id.clone()).or_default().insert(e.item_id.clone());
                train_events += 1;
            }
            state.apply(record);
        } else if let LogRecord::Event(e) = record {
            test_events += 1;
            if e.action.implicit_weight() > 0.0 {
                truth.entry(e.user_id.clone()).or_default().insert(e.item_id.clone());
            }
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
    progress("scoring every system on the test users");
    let content = flywheel_retrieval::ContentIndex::build(&state.catalog.items().map(|i| flywheel_core::Item::clone(i)).collect::<Vec<_>>());
    let (warm, cold): (Vec<UserId>, Vec<UserId>) = users.iter().cloned().partition(|u| history.contains_key(u));
    let scope = Scope { state: &state, models: &models, content: &content, history: &history, truth: &truth, cut };
    let systems = score_systems(config, &scope, &warm, &ALL_SYSTEMS);
    let cold_start = score_systems(config, &scope, &cold, &COLD_SYSTEMS);
    Ok(EvalReport {
        protocol: format!("temporal holdout: the last {:.0}% of events", holdout * 100.0),
        cut,
        train_events,
        test_events,
        cold_users: cold.len(),
        test_users: users.len(),
        catalog_items: state.catalog.item_count(),
        systems,
        cold_start,
    })
}

fn sample_evenly(users: Vec<UserId>, max: usize) -> Vec<UserId> {
    if users.len() <= max || max == 0 {
        return users;
    }
    let step = users.len() as f64 / max as f64;
    (0..max).map(|i| users[(i as f64 * step) as usize].clone()).collect()
}

/// What every system is scored against.
struct Scope<'a> {
    state: &'a State,
    models: &'a ModelSet,
    content: &'a flywheel_retrieval::ContentIndex,
    history: &'a HashMap<UserId, HashSet<ItemId>>,
    truth: &'a HashMap<UserId, HashSet<ItemId>>,
    cut: Timestamp,
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

const COLD_SYSTEMS: [System; 3] = [(Some(Channel::Popularity), false), (Some(Channel::Trending), false), (None, true)];

fn system_name(system: System) -> String {
    match system {
        (Some(channel), _) => channel.as_str().to_string(),
        (None, true) => "blend".to_string(),
        (None, false) => "blend_unranked".to_string(),
    }
}

fn score_systems(config: &EngineConfig, scope: &Scope, users: &[UserId], systems: &[System]) -> BTreeMap<String, SystemMetrics> {
    if users.is_empty() {
        return BTreeMap::new();
    }
    let catalog = scope.state.catalog.item_count().max(1);
    systems
        .iter()
        .map(|&(only_channel, use_ranker)| {
            let lists: Vec<(Vec<ItemId>, &HashSet<ItemId>)> = users
                .par_iter()
                .map(|user| {
                    let request = RecRequest {
                        user_id: user.clone(),
                        count: 20,
                        category: None,
                        now: scope.cut,
                        keep_features: false,
                        only_channel,
                        exclude: scope.history.get(user).cloned().unwrap_or_default(),
                        use_ranker,
                        enforce_deadlines: false,
                    };
                    let rec = recommend(scope.state, scope.models, Some(scope.content), config, &request);
                    (rec.items.into_iter().map(|i| i.item_id).collect(), &scope.truth[user])
                })
                .collect();
            (system_name((only_channel, use_ranker)), metrics_of(&lists, catalog))
        })
        .collect()
}

fn metrics_of(lists: &[(Vec<ItemId>, &HashSet<ItemId>)], catalog: usize) -> SystemMetrics {
    let n = lists.len().max(1) as f64;
    let mut covered = HashSet::new();
    let (mut ndcg, mut recall, mut served) = (0.0, 0.0, 0);
    for (ranked, relevant) in lists {
        let ids: Vec<&str> = ranked.iter().map(ItemId::as_str).collect();
        let relevance: HashMap<&str, f64> = relevant.iter().map(|i| (i.as_str(), 1.0)).collect();
        ndcg += flywheel_eval::ranking::ndcg_at_k(&ids, &relevance, 10);
        recall += flywheel_eval::ranking::recall_at_k(&ids, &relevance, 20);
        served += usize::from(!ranked.is_empty());
        covered.extend(ranked.iter().take(10).cloned());
    }
    SystemMetrics {
        ndcg_at_10: ndcg / n,
        recall_at_20: recall / n,
        coverage: covered.len() as f64 / catalog as f64,
        users_served: served,
    }
}
