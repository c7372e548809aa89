//! Training: replay the log, train the retrieval models on interactions and the
//! ranker on point-in-time rows.
//!
//! Ranker rows come from two sources, both built by replaying the log through the
//! same `State::apply` the server uses, so a row sees only what was known before it:
//! - **logged impressions**: each slot becomes a row, labelled 1 when an engagement
//!   (click, add to cart, purchase, like) came back with the impression's
//!   `request_id` for that item; its features are recomputed as of the impression's
//!   `features_offset` and timestamp (the parity test proves they equal the logged ones);
//! - **interactions**, for logs without impressions: the retrieval models are first
//!   trained on the earliest 80% of the engagements only; then, for a sample of the
//!   later engagements, the serving pipeline's own retrieval runs for that user as of
//!   that moment, and each of its top candidates becomes a row labelled 1 when the
//!   user engages with that item at any later time. The ranker thus learns on the
//!   same candidate distribution it ranks online, and no candidate score was
//!   computed by a model that had seen the future. The served retrieval models are
//!   then retrained on everything.

use flywheel_core::{
    Candidate, Event, Impression, Item, ItemId, LogRecord, RequestId, Timestamp, UserId,
};
use flywheel_ranking::{
    featurize, LogisticRegression, LrParams, Ranker, RankingInput, TrainingRow,
};
use flywheel_retrieval::{
    AlsModel, AlsParams, ContentIndex, EaseModel, Interactions, RetrievalModel,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use crate::error::{OfflineError, Result};
use crate::gate::GateSample;
pub use crate::gate::RankerGate;
use flywheel_pipeline::EngineConfig;
use flywheel_pipeline::State;
use flywheel_pipeline::{retrieve_candidates, RecRequest};
use flywheel_pipeline::{Manifest, ModelSet};

/// A source of log records that can be read more than once: it calls the visitor
/// with every (offset, record) in log order.
pub type Replay<'a> = dyn Fn(&mut dyn FnMut(u64, &LogRecord) -> Result<()>) -> Result<()> + 'a;

/// What training did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// The version produced.
    pub version: String,
    /// Records replayed.
    pub log_records: u64,
    /// Distinct (user, item) interactions.
    pub interactions: u64,
    /// Users in the interaction matrix.
    pub users: u64,
    /// Items in the interaction matrix.
    pub items: u64,
    /// Ranker rows from logged impressions.
    pub impression_rows: u64,
    /// Ranker rows from replayed retrieval on interactions.
    pub interaction_rows: u64,
    /// Share of positive ranker rows.
    pub positive_rate: f64,
    /// The held-out comparison of the ranker with the retrieval order it re-ranks.
    pub ranker_gate: Option<RankerGate>,
    /// Per channel, its NDCG@10 on the training holdout: its weight in the fusion
    /// (empty: the quota shares weigh the channels).
    pub fusion_weights: BTreeMap<String, f64>,
    /// Seconds spent per stage.
    pub seconds: BTreeMap<String, f64>,
}

/// Engagement events sampled for interaction rows.
const RANKER_EVENTS: usize = 4000;
/// Candidates per sampled event that become rows (the head of the blend).
const ROWS_PER_EVENT: usize = 60;
/// Share of the engagements (the earliest) the row-generating retrieval models see.
const ROW_MODEL_SHARE: f64 = 0.8;

/// Whether an event counts as a positive outcome for ranking labels.
pub fn is_positive(event: &Event) -> bool {
    event.action.is_engagement()
}

/// The first pass: interactions, impression labels and what the second pass needs.
#[derive(Default)]
struct FirstPass {
    records: u64,
    triples: Vec<(UserId, ItemId, f32, Timestamp)>,
    deleted_users: HashSet<UserId>,
    positives: HashSet<(RequestId, ItemId)>,
    impressions_at: HashMap<u64, Vec<Impression>>,
    /// Engagements without a request id, per user, in log order.
    engagements: HashMap<UserId, Vec<(Timestamp, ItemId)>>,
    items: HashMap<ItemId, Item>,
    /// The latest event time read, and the offset just past the last record.
    last_event_time: Option<Timestamp>,
    end_offset: Option<u64>,
}

fn first_pass(replay: &Replay) -> Result<FirstPass> {
    let mut pass = FirstPass::default();
    replay(&mut |offset, record| {
        pass.records += 1;
        pass.end_offset = Some(offset + 1);
        match record {
            LogRecord::Event(event) => {
                pass.last_event_time = pass.last_event_time.max(Some(event.timestamp));
                let weight = event.action.implicit_weight();
                if weight > 0.0 {
                    pass.triples.push((
                        event.user_id.clone(),
                        event.item_id.clone(),
                        weight,
                        event.timestamp,
                    ));
                }
                if is_positive(event) {
                    match &event.request_id {
                        Some(request) => {
                            pass.positives
                                .insert((request.clone(), event.item_id.clone()));
                        }
                        None => pass
                            .engagements
                            .entry(event.user_id.clone())
                            .or_default()
                            .push((event.timestamp, event.item_id.clone())),
                    }
                }
            }
            LogRecord::UserDelete { id, .. } => {
                pass.deleted_users.insert(id.clone());
            }
            LogRecord::Impression(impression) => {
                let at = impression.features_offset.unwrap_or(offset);
                pass.impressions_at
                    .entry(at)
                    .or_default()
                    .push(impression.clone());
            }
            LogRecord::ItemUpsert(item) => {
                pass.items.insert(item.id.clone(), item.clone());
            }
            LogRecord::ItemDelete { .. } | LogRecord::UserUpsert(_) => {}
        }
        Ok(())
    })?;
    if !pass.deleted_users.is_empty() {
        let deleted = &pass.deleted_users;
        pass.triples.retain(|(user, ..)| !deleted.contains(user));
        pass.engagements.retain(|user, _| !deleted.contains(user));
    }
    Ok(pass)
}

/// Recomputes the feature vector of every slot of an impression from `state`,
/// which must be the state as of the impression's `features_offset`.
pub fn impression_features(state: &State, impression: &Impression) -> Vec<Vec<f32>> {
    let now = impression.timestamp;
    let user = state.features.user_features(&impression.user_id, now);
    impression
        .slots
        .iter()
        .map(|slot| {
            let Some(item) = state.catalog.item(&slot.item_id) else {
                return Vec::new();
            };
            let candidate = Candidate {
                item_id: slot.item_id.clone(),
                channel: slot.channel,
                channel_score: slot.channel_score,
                channel_rank: slot.channel_rank,
                source_item: slot.source_item.clone(),
            };
            let item_features = state.features.item_features(&slot.item_id, now);
            featurize(&RankingInput {
                user: &user,
                item,
                item_features: &item_features,
                candidate: &candidate,
                now,
            })
        })
        .collect()
}

fn als_params(config: &EngineConfig) -> AlsParams {
    let t = &config.training;
    AlsParams {
        factors: t.als_factors,
        regularization: t.als_regularization,
        alpha: t.als_alpha,
        iterations: t.als_iterations,
        seed: t.seed,
    }
}

/// Trains ALS and (for small enough catalogs) EASE on the given interactions.
fn retrieval_models(
    config: &EngineConfig,
    interactions: &Interactions,
    seconds: &mut BTreeMap<String, f64>,
    tag: &str,
) -> Result<Vec<RetrievalModel>> {
    let started = Instant::now();
    let als = AlsModel::train(interactions, &als_params(config))
        .map_err(|e| OfflineError::Model(format!("ALS: {e}")))?;
    seconds.insert(format!("als{tag}"), started.elapsed().as_secs_f64());
    let ease = if interactions.num_items() <= config.training.ease_max_items {
        let started = Instant::now();
        let model = EaseModel::train(interactions, config.training.ease_lambda)
            .map_err(|e| OfflineError::Model(format!("EASE: {e}")))?;
        seconds.insert(format!("ease{tag}"), started.elapsed().as_secs_f64());
        Some(model)
    } else {
        None
    };
    let mut trained = vec![RetrievalModel::Als(als)];
    trained.extend(ease.map(RetrievalModel::Ease));
    Ok(trained)
}

/// The time before which the row-generating models learn, and the engagement
/// events (user, time, item) sampled evenly from after it.
fn sample_row_events(pass: &FirstPass) -> (Timestamp, HashSet<(UserId, Timestamp, ItemId)>) {
    let mut times: Vec<Timestamp> = pass
        .engagements
        .values()
        .flatten()
        .map(|(t, _)| *t)
        .collect();
    times.sort_unstable();
    let Some(&last) = times.last() else {
        return (Timestamp(i64::MAX), HashSet::new());
    };
    let cut = times[((times.len() as f64) * ROW_MODEL_SHARE) as usize].min(last);
    let mut late: Vec<(UserId, Timestamp, ItemId)> = pass
        .engagements
        .iter()
        .flat_map(|(user, list)| {
            list.iter()
                .filter(|(t, _)| *t >= cut)
                .map(move |(t, i)| (user.clone(), *t, i.clone()))
        })
        .collect();
    late.sort();
    let step = (late.len() as f64 / RANKER_EVENTS as f64).max(1.0);
    let sampled = (0..RANKER_EVENTS.min(late.len()))
        .map(|i| late[(i as f64 * step) as usize].clone())
        .collect();
    (cut, sampled)
}

/// What generates the candidates of interaction rows.
#[derive(Clone, Copy)]
struct RowRetrieval<'a> {
    models: &'a ModelSet,
    content: &'a ContentIndex,
    config: &'a EngineConfig,
}

/// Rows for one sampled engagement: the serving retrieval's head, labelled by the
/// user's later engagements.
fn candidate_rows(
    retrieval: &RowRetrieval,
    state: &State,
    event: &Event,
    seen: HashSet<ItemId>,
    future: &HashSet<&ItemId>,
    rows: &mut Vec<TrainingRow>,
) -> u64 {
    let RowRetrieval {
        models,
        content,
        config,
    } = *retrieval;
    let now = event.timestamp;
    let request = RecRequest {
        user_id: event.user_id.clone(),
        count: ROWS_PER_EVENT,
        category: None,
        now,
        keep_features: false,
        only_channel: None,
        exclude: seen,
        use_ranker: true,
        enforce_deadlines: false,
    };
    let user = state.features.user_features(&event.user_id, now);
    let candidates = retrieve_candidates(state, models, Some(content), config, &request);
    let mut added = 0;
    for candidate in candidates.iter().take(ROWS_PER_EVENT) {
        let Some(item) = state.catalog.item(&candidate.item_id) else {
            continue;
        };
        let item_features = state.features.item_features(&candidate.item_id, now);
        let features = featurize(&RankingInput {
            user: &user,
            item,
            item_features: &item_features,
            candidate,
            now,
        });
        let label = f32::from(u8::from(future.contains(&candidate.item_id)));
        rows.push(TrainingRow {
            features,
            label,
            weight: 1.0,
        });
        added += 1;
    }
    added
}

/// Ranker rows, and the state at the row cut for the gate.
struct RankerRows {
    rows: Vec<TrainingRow>,
    from_impressions: u64,
    from_interactions: u64,
}

/// Builds the ranker rows by replaying the log (the second pass).
fn ranker_rows(
    config: &EngineConfig,
    replay: &Replay,
    pass: &FirstPass,
    row_models: &ModelSet,
    sampled: &HashSet<(UserId, Timestamp, ItemId)>,
) -> Result<RankerRows> {
    let items: Vec<Item> = pass.items.values().cloned().collect();
    let content = ContentIndex::build(&items);
    let mut state = State::new(flywheel_pipeline::feature_config(config));
    let mut rows = Vec::new();
    let (mut from_impressions, mut from_interactions) = (0u64, 0u64);
    replay(&mut |offset, record| {
        if let Some(impressions) = pass.impressions_at.get(&offset) {
            for impression in impressions {
                for (slot, features) in impression
                    .slots
                    .iter()
                    .zip(impression_features(&state, impression))
                {
                    if features.is_empty() {
                        continue;
                    }
                    let label = pass
                        .positives
                        .contains(&(impression.request_id.clone(), slot.item_id.clone()));
                    rows.push(TrainingRow {
                        features,
                        label: f32::from(u8::from(label)),
                        weight: 1.0,
                    });
                    from_impressions += 1;
                }
            }
        }
        if let LogRecord::Event(event) = record {
            if event.request_id.is_none()
                && sampled.contains(&(
                    event.user_id.clone(),
                    event.timestamp,
                    event.item_id.clone(),
                ))
            {
                let engagements = &pass.engagements[&event.user_id];
                let (before, after): (Vec<_>, Vec<_>) =
                    engagements.iter().partition(|(t, _)| *t < event.timestamp);
                let seen: HashSet<ItemId> =
                    before.into_iter().map(|(_, item)| item.clone()).collect();
                let future: HashSet<&ItemId> = after
                    .into_iter()
                    .map(|(_, item)| item)
                    .filter(|item| !seen.contains(*item))
                    .collect();
                let retrieval = RowRetrieval {
                    models: row_models,
                    content: &content,
                    config,
                };
                from_interactions +=
                    candidate_rows(&retrieval, &state, event, seen, &future, &mut rows);
            }
        }
        state.apply(record);
        Ok(())
    })?;
    Ok(RankerRows {
        rows,
        from_impressions,
        from_interactions,
    })
}

/// Fits the ranker on every row; the gate decides later whether it ships.
fn fit_ranker(built: &RankerRows) -> Result<Option<Ranker>> {
    let positives = built.rows.iter().filter(|r| r.label > 0.5).count();
    if positives == 0 || positives == built.rows.len() {
        return Ok(None);
    }
    LogisticRegression::train(&built.rows, &LrParams::default())
        .map(|model| Some(Ranker::Logistic(model)))
        .map_err(|e| OfflineError::Model(format!("ranker: {e}")))
}

/// The derived state as of `cut`: every record before the first event at or after it.
fn state_at(config: &EngineConfig, replay: &Replay, cut: Timestamp) -> Result<State> {
    let mut state = State::new(flywheel_pipeline::feature_config(config));
    let mut reached = false;
    replay(&mut |_, record| {
        reached |= matches!(record, LogRecord::Event(e) if e.timestamp >= cut);
        if !reached {
            state.apply(record);
        }
        Ok(())
    })?;
    Ok(state)
}

/// Trains every model from a replayable log. `progress` receives stage names.
pub fn train(
    config: &EngineConfig,
    replay: &Replay,
    version: String,
    progress: &mut dyn FnMut(&str),
) -> Result<(ModelSet, TrainReport)> {
    let mut seconds = BTreeMap::new();
    progress("reading the log");
    let pass = first_pass(replay)?;
    if pass.triples.is_empty() {
        return Err(OfflineError::NotEnoughData(
            "the log holds no events to learn from; import or send events first".into(),
        ));
    }
    progress("training the retrieval models for ranker rows");
    let (row_cut, sampled) = sample_row_events(&pass);
    let early = Interactions::from_triples(
        pass.triples
            .iter()
            .filter(|t| t.3 < row_cut)
            .map(|(u, i, w, _)| (u.clone(), i.clone(), *w)),
    );
    let mut row_models = if early.num_pairs() > 0 && !sampled.is_empty() {
        ModelSet {
            retrieval: retrieval_models(config, &early, &mut seconds, "_rows")?,
            ..ModelSet::default()
        }
    } else {
        ModelSet::default()
    };
    progress("learning fusion weights on a holdout inside the training data");
    let started = Instant::now();
    let state_at_cut = state_at(config, replay, row_cut)?;
    let gate_sample = GateSample::new(&pass.engagements, &state_at_cut, row_cut);
    if gate_sample.len() > 0 && !row_models.retrieval.is_empty() {
        row_models.fusion_weights = gate_sample.channel_weights(config, &row_models);
    }
    seconds.insert(
        "fusion_weights".to_string(),
        started.elapsed().as_secs_f64(),
    );
    progress("building ranker rows (point-in-time replay)");
    let started = Instant::now();
    let built = ranker_rows(config, replay, &pass, &row_models, &sampled)?;
    seconds.insert("ranker_rows".to_string(), started.elapsed().as_secs_f64());
    let positives = built.rows.iter().filter(|r| r.label > 0.5).count();
    progress("training and gating the ranker");
    let started = Instant::now();
    let (ranker, ranker_gate) = match fit_ranker(&built)? {
        Some(model) if gate_sample.len() > 0 => {
            let (ranker, verdict) = gate_sample.judge_ranker(config, &row_models, model);
            (ranker, Some(verdict))
        }
        other => (other, None),
    };
    let fusion_weights = std::mem::take(&mut row_models.fusion_weights);
    drop(row_models);
    seconds.insert("ranker".to_string(), started.elapsed().as_secs_f64());
    progress("training the served retrieval models");
    let interactions = Interactions::from_triples(
        pass.triples
            .iter()
            .map(|(u, i, w, _)| (u.clone(), i.clone(), *w)),
    );
    let retrieval = retrieval_models(config, &interactions, &mut seconds, "")?;
    let mut models: Vec<String> = retrieval.iter().map(|m| m.kind().to_string()).collect();
    if ranker.is_some() {
        models.push("ranker".into());
    }
    let report = TrainReport {
        version: version.clone(),
        log_records: pass.records,
        interactions: interactions.num_pairs() as u64,
        users: interactions.num_users() as u64,
        items: interactions.num_items() as u64,
        impression_rows: built.from_impressions,
        interaction_rows: built.from_interactions,
        positive_rate: positives as f64 / built.rows.len().max(1) as f64,
        ranker_gate,
        fusion_weights: fusion_weights
            .iter()
            .map(|(c, w)| (c.as_str().to_string(), *w))
            .collect(),
        seconds,
    };
    let manifest = Manifest {
        version,
        trained_at: Timestamp::now(),
        log_records: pass.records,
        interactions: report.interactions,
        ranker_rows: built.rows.len() as u64,
        models,
        fusion_weights: report.fusion_weights.clone(),
        trained_until: pass.last_event_time,
        log_end_offset: pass.end_offset,
        config: Some(config.clone()),
    };
    Ok((
        ModelSet {
            manifest: Some(manifest),
            retrieval,
            ranker,
            fusion_weights,
        },
        report,
    ))
}
