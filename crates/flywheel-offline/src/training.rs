//! Training: replay the log, train the retrieval models on interactions and the
//! ranker on point-in-time rows.
//!
//! Training is point-in-time: a row anchored at moment m uses only what the log knew
//! before m, and nothing learned from data at or after m. Three moments split the log
//! ([`TrainingCuts`]; absolute times from the config, or quantiles of the engagement
//! times):
//! - **fusion cut** W: retrieval models trained on the interactions before W are
//!   scored channel by channel on the engagements in [W, R); each channel's NDCG@10
//!   becomes its fusion weight;
//! - **row cut** R: the retrieval models that generate the candidates of interaction
//!   rows are trained on the interactions before R, and interaction rows are anchored
//!   at engagements from R on, so every row's candidates, channel ranks and fused
//!   scores come from models and weights learned strictly before its moment;
//! - **gate cut** G: the ranker gate ([`RankerGate`]) judges a ranker fitted only on
//!   rows whose label window closed by G, on the engagements after G.
//!
//! Ranker rows ([`rows`], which [`train`] calls) come from two sources, both built by
//! replaying the log through the same `State::apply` the server uses, each row from
//! the state before its anchoring record:
//! - **logged impressions**: each slot becomes a row, labelled 1 when an engagement
//!   (click, add to cart, purchase, like) came back with the impression's
//!   `request_id` for that item within the label window; its features are recomputed
//!   as of the impression's `features_offset`, timestamp and logged request context
//!   (the parity test proves they equal the logged ones); with `training.position_bias
//!   = "feature"` the slot's position follows them as a training-only GBDT feature,
//!   held at the top slot when serving;
//! - **interactions** (engagements that answer no impression already in the log, which
//!   is all of them in an import): for a sample of them from R on, the serving
//!   pipeline's own retrieval runs for that user as of that moment, exactly as a
//!   request would (the content index is that of the catalog at that moment, items
//!   not yet created are not candidates), and each of its top candidates becomes a row
//!   labelled 1 when the user engages with the item within the label window from the
//!   row's moment.
//!
//! The ranker is fitted on the rows whose label window closed by the end of the log.
//! The served retrieval models are then retrained on everything.

use flywheel_core::{
    Candidate, Event, Impression, ItemId, LogRecord, RequestContext, RequestId, Timestamp, UserId,
};
use flywheel_ranking::gbdt::{FeatureImportance, GbdtReport, GroupedRows, TrainingOnlyFeature};
use flywheel_ranking::{
    featurize, FeatureSchema, GbdtModel, GbdtObjective, LogisticRegression, LrParams, Ranker,
    RankingInput, TrainingRow,
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
use flywheel_pipeline::State;
use flywheel_pipeline::{retrieve_candidates, RecRequest};
use flywheel_pipeline::{EngineConfig, PositionBias, RankerKind};
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
    /// The moments that split the log.
    pub cuts: TrainingCuts,
    /// Ranker rows from logged impressions.
    pub impression_rows: u64,
    /// Ranker rows from replayed retrieval on interactions.
    pub interaction_rows: u64,
    /// Rows whose label window was still open at the end of the log (not fitted on).
    pub open_label_rows: u64,
    /// Impressions that claim features from after their own place in the log (no rows).
    pub skipped_impressions: u64,
    /// Share of positive rows among those whose label window closed.
    pub positive_rate: f64,
    /// The held-out comparison of the ranker with the retrieval order it re-ranks.
    pub ranker_gate: Option<RankerGate>,
    /// How the shipped ranker was fitted (none when the gate rejected it).
    pub ranker_fit: Option<RankerFit>,
    /// Per channel, its NDCG@10 on the fusion holdout (from the fusion cut to the row
    /// cut): its weight in the fusion (empty: the quota shares weigh the channels).
    pub fusion_weights: BTreeMap<String, f64>,
    /// Seconds spent per stage.
    pub seconds: BTreeMap<String, f64>,
    /// How the served ALS began from the previous version's factors (`None`: a cold
    /// start from random factors).
    pub warm_start: Option<WarmStartReport>,
    /// Events the bot rules dropped from training (the same the features dropped).
    pub bot_events_dropped: u64,
}

/// What a warm start reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WarmStartReport {
    /// Items whose factors began from the previous version's.
    pub items_initialised: u64,
    /// Items in the interaction matrix.
    pub items: u64,
    /// ALS sweeps run (`training.warm_start_iterations`).
    pub iterations: usize,
}

/// The moments that split a training run's log (see the `training` settings of
/// [`EngineConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrainingCuts {
    /// The fusion weights are learned by models trained before it, on the engagements
    /// from it to `row_cut`.
    pub fusion_cut: Timestamp,
    /// The row models are trained before it; interaction rows are anchored from it on.
    pub row_cut: Timestamp,
    /// The gate's ranker is fitted on rows whose label window closed by it, and is
    /// judged on the engagements in the label window from it.
    pub gate_cut: Timestamp,
    /// The label window, in milliseconds.
    pub label_window_ms: i64,
}

/// Where a ranker row comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum RowSource {
    /// A slot of a logged impression (the request it answered).
    Impression(RequestId),
    /// A candidate of the serving retrieval replayed at an engagement.
    Interaction,
}

/// One ranker row, with what it was computed from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankerRow {
    /// Where it comes from.
    pub source: RowSource,
    /// The log offset of the record that anchors it (the impression, or the engagement).
    pub offset: u64,
    /// The user.
    pub user_id: UserId,
    /// The row's moment (the impression's or the engagement's timestamp): its features
    /// and candidate depend only on what the log held before it.
    pub moment: Timestamp,
    /// The candidate, with its channel, channel rank and fused score.
    pub candidate: Candidate,
    /// The ranking features ([`featurize`]).
    pub features: Vec<f32>,
    /// The request context the features were computed with (the impression's, or the
    /// anchoring engagement's `device` and `page`).
    pub context: RequestContext,
    /// The slot the item was shown in (impression rows; `None` for interaction rows,
    /// whose candidates were never shown): the position-bias feature.
    pub position: Option<u32>,
    /// 1 when the user engaged with the item in `[moment, label_closes)`, else 0.
    pub label: f32,
    /// When the label window closes.
    pub label_closes: Timestamp,
    /// Whether the log reaches `label_closes`, so the label is final (only such rows
    /// are fitted on).
    pub label_closed: bool,
}

/// The name of the training-only position feature (`training.position_bias = "feature"`).
pub const POSITION_FEATURE: &str = "logged_position";

/// The value the position feature is held at when serving: every candidate is scored
/// as if it sat in the top slot.
pub const SERVING_POSITION: f32 = 0.0;

/// The training-only features a GBDT ranker is fitted with under `bias`.
pub fn training_only_features(bias: PositionBias) -> Vec<TrainingOnlyFeature> {
    match bias {
        PositionBias::Feature => vec![TrainingOnlyFeature {
            name: POSITION_FEATURE.to_string(),
            serving_value: SERVING_POSITION,
        }],
        PositionBias::None => Vec::new(),
    }
}

impl RankerRow {
    /// The row as the ranker is fitted on it: the features, then (under
    /// `PositionBias::Feature`) the logged position — missing (NaN) for an interaction
    /// row, which was never shown.
    fn training_row(&self, bias: PositionBias) -> TrainingRow {
        let mut features = self.features.clone();
        if bias == PositionBias::Feature {
            features.push(self.position.map_or(f32::NAN, |p| p as f32));
        }
        TrainingRow {
            features,
            label: self.label,
            weight: 1.0,
        }
    }
}

/// The ranker rows of a log and what the rest of training needs from building them.
pub struct RowSet {
    /// The moments that split the log.
    pub cuts: TrainingCuts,
    /// Every row, in the order the replay built them (log order of the anchors, an
    /// impression's slots at its `features_offset`).
    pub rows: Vec<RankerRow>,
    /// Impressions that claim features from after their own place in the log.
    pub skipped_impressions: u64,
    /// The fusion weights learned on the fusion holdout (empty: the quota shares).
    pub fusion_weights: BTreeMap<flywheel_core::Channel, f64>,
    pass: FirstPass,
    row_models: ModelSet,
    gate_state: State,
    seconds: BTreeMap<String, f64>,
}

impl RowSet {
    /// The models the interaction rows' candidates come from: trained on the
    /// interactions before the row cut, with the fusion weights.
    pub fn row_models(&self) -> &ModelSet {
        &self.row_models
    }
}

/// Default cuts: the share of the engagements (the earliest) before each.
const FUSION_SHARE: f64 = 0.5;
const ROW_SHARE: f64 = 0.6;
const GATE_SHARE: f64 = 0.85;

/// Whether an event counts as a positive outcome for ranking labels.
pub fn is_positive(event: &Event) -> bool {
    event.action.is_engagement()
}

/// The time a record happened at, for the records that carry one (item and user
/// upserts take their place in the log).
fn record_time(record: &LogRecord) -> Option<Timestamp> {
    match record {
        LogRecord::Event(event) => Some(event.timestamp),
        LogRecord::Impression(impression) => Some(impression.timestamp),
        LogRecord::ItemDelete { at, .. } | LogRecord::UserDelete { at, .. } => Some(*at),
        // Shadow lists and experiment records say nothing about when data happened.
        LogRecord::ItemUpsert(_)
        | LogRecord::UserUpsert(_)
        | LogRecord::ShadowImpression(_)
        | LogRecord::ExperimentStart { .. }
        | LogRecord::ExperimentRamp { .. }
        | LogRecord::ExperimentStop { .. }
        | LogRecord::UserErase { .. }
        | LogRecord::Erased { .. } => None,
    }
}

/// Whether an engagement can anchor an interaction row: it answers no impression
/// that is already in the log (those engagements label the impression's rows). It
/// depends only on the log before the event.
fn can_anchor(event: &Event, impressions_seen: &HashSet<RequestId>) -> bool {
    is_positive(event)
        && event
            .request_id
            .as_ref()
            .is_none_or(|request| !impressions_seen.contains(request))
}

/// The first pass: interactions, labels and what the second pass needs.
#[derive(Default)]
struct FirstPass {
    records: u64,
    triples: Vec<(UserId, ItemId, f32, Timestamp)>,
    deleted_users: HashSet<UserId>,
    /// When each (request, item) was engaged with: the labels of impression rows.
    responses: HashMap<(RequestId, ItemId), Vec<Timestamp>>,
    /// Impressions by the offset their features are computed at, with their own offset.
    impressions_at: HashMap<u64, Vec<(u64, Impression)>>,
    skipped_impressions: u64,
    /// Every engagement per user, in log order: the labels of interaction rows and
    /// the gate's users.
    engagements: HashMap<UserId, Vec<(Timestamp, ItemId)>>,
    /// The latest event time read, and the offset just past the last record.
    last_event_time: Option<Timestamp>,
    end_offset: Option<u64>,
    /// The engagements that can anchor an interaction row (user, time), in log order.
    anchors: Vec<(UserId, Timestamp)>,
    log_end: Option<Timestamp>,
    /// The offsets of the events the bot rules dropped: they train nothing, label
    /// nothing and anchor nothing (the feature store drops the same ones).
    bot_events: HashSet<u64>,
    /// What the bot rules dropped, by reason.
    bot_counts: flywheel_core::BotCounts,
}

fn first_pass(replay: &Replay, bots: &flywheel_core::BotRules) -> Result<FirstPass> {
    let mut pass = FirstPass::default();
    let mut impressions_seen = HashSet::new();
    let mut filter = flywheel_core::BotFilter::new();
    replay(&mut |offset, record| {
        pass.records += 1;
        pass.end_offset = Some(offset + 1);
        if let Some(time) = record_time(record) {
            pass.log_end = pass.log_end.max(Some(time));
        }
        match record {
            LogRecord::Event(event) if filter.judge(event, bots).is_some() => {
                pass.bot_events.insert(offset);
            }
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
                    if let Some(request) = &event.request_id {
                        pass.responses
                            .entry((request.clone(), event.item_id.clone()))
                            .or_default()
                            .push(event.timestamp);
                    }
                    if can_anchor(event, &impressions_seen) {
                        pass.anchors.push((event.user_id.clone(), event.timestamp));
                    }
                    pass.engagements
                        .entry(event.user_id.clone())
                        .or_default()
                        .push((event.timestamp, event.item_id.clone()));
                }
            }
            LogRecord::UserDelete { id, .. } => {
                filter.forget_user(id);
                pass.deleted_users.insert(id.clone());
            }
            LogRecord::Impression(impression) => {
                impressions_seen.insert(impression.request_id.clone());
                let at = impression.features_offset.unwrap_or(offset);
                // Features "computed" after the impression was logged cannot be what
                // was served; they would see records from after it.
                if at > offset {
                    pass.skipped_impressions += 1;
                } else {
                    pass.impressions_at
                        .entry(at)
                        .or_default()
                        .push((offset, impression.clone()));
                }
            }
            LogRecord::ItemUpsert(_)
            | LogRecord::ItemDelete { .. }
            | LogRecord::UserUpsert(_)
            | LogRecord::ShadowImpression(_)
            | LogRecord::ExperimentStart { .. }
            | LogRecord::ExperimentRamp { .. }
            | LogRecord::ExperimentStop { .. }
            | LogRecord::UserErase { .. }
            | LogRecord::Erased { .. } => {}
        }
        Ok(())
    })?;
    pass.bot_counts = filter.counts().clone();
    // Erasure is retroactive: a deleted user's history trains nothing.
    if !pass.deleted_users.is_empty() {
        let deleted = &pass.deleted_users;
        pass.triples.retain(|(user, ..)| !deleted.contains(user));
        pass.engagements.retain(|user, _| !deleted.contains(user));
        pass.anchors.retain(|(user, _)| !deleted.contains(user));
    }
    Ok(pass)
}

/// The cuts: the configured absolute times, or quantiles of the engagement times.
fn cuts(config: &EngineConfig, pass: &FirstPass) -> Result<TrainingCuts> {
    let mut times: Vec<Timestamp> = pass
        .engagements
        .values()
        .flatten()
        .map(|(t, _)| *t)
        .collect();
    times.sort_unstable();
    let fallback = pass.log_end.unwrap_or(Timestamp::from_millis(0));
    let quantile = |share: f64| -> Timestamp {
        if times.is_empty() {
            return fallback;
        }
        times[((times.len() as f64 * share) as usize).min(times.len() - 1)]
    };
    let settings = &config.training;
    let cuts = TrainingCuts {
        fusion_cut: settings
            .fusion_cut
            .unwrap_or_else(|| quantile(FUSION_SHARE)),
        row_cut: settings.row_cut.unwrap_or_else(|| quantile(ROW_SHARE)),
        gate_cut: settings.gate_cut.unwrap_or_else(|| quantile(GATE_SHARE)),
        label_window_ms: settings.label_window_millis(),
    };
    if cuts.fusion_cut > cuts.row_cut || cuts.row_cut > cuts.gate_cut {
        return Err(OfflineError::Config(format!(
            "training cuts out of order: fusion_cut {}, row_cut {}, gate_cut {} \
             (set all three when setting one)",
            cuts.fusion_cut, cuts.row_cut, cuts.gate_cut
        )));
    }
    Ok(cuts)
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
            let candidate = slot_candidate(slot);
            let item_features = state.features.item_features(&slot.item_id, now);
            featurize(&RankingInput {
                user: &user,
                item,
                item_features: &item_features,
                candidate: &candidate,
                now,
                context: &impression.context,
            })
        })
        .collect()
}

fn slot_candidate(slot: &flywheel_core::ImpressionSlot) -> Candidate {
    Candidate {
        item_id: slot.item_id.clone(),
        channel: slot.channel,
        channel_score: slot.channel_score,
        channel_rank: slot.channel_rank,
        source_item: slot.source_item.clone(),
    }
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

/// Trains ALS (warm from `warm` when given and of the same dimension) and, for small
/// enough catalogs, EASE on the given interactions.
fn retrieval_models(
    config: &EngineConfig,
    interactions: &Interactions,
    seconds: &mut BTreeMap<String, f64>,
    tag: &str,
    warm: Option<(&AlsModel, &mut Option<WarmStartReport>)>,
) -> Result<Vec<RetrievalModel>> {
    let started = Instant::now();
    let mut als = match warm {
        Some((previous, report)) => train_als_warm(config, interactions, previous, report),
        None => AlsModel::train(interactions, &als_params(config)),
    }
    .map_err(|e| OfflineError::Model(format!("ALS: {e}")))?;
    seconds.insert(format!("als{tag}"), started.elapsed().as_secs_f64());
    let started = Instant::now();
    if als
        .build_index(&config.retrieval.ann)
        .map_err(|e| OfflineError::Model(format!("ALS item index: {e}")))?
    {
        seconds.insert(format!("als_index{tag}"), started.elapsed().as_secs_f64());
    }
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

/// ALS from `previous`'s item factors with `training.warm_start_iterations` sweeps, or
/// a cold fit when `previous` covers no item (e.g. it has another dimension).
fn train_als_warm(
    config: &EngineConfig,
    interactions: &Interactions,
    previous: &AlsModel,
    report: &mut Option<WarmStartReport>,
) -> flywheel_retrieval::Result<AlsModel> {
    let params = AlsParams {
        iterations: config.training.warm_start_iterations,
        ..als_params(config)
    };
    let covered = previous.warm_start_coverage(&params, interactions);
    if covered == 0 {
        return AlsModel::train(interactions, &als_params(config));
    }
    *report = Some(WarmStartReport {
        items_initialised: covered as u64,
        items: interactions.num_items() as u64,
        iterations: params.iterations,
    });
    AlsModel::train_warm(interactions, &params, previous)
}

/// The retrieval models trained on the interactions strictly before `cut` (none if
/// there are none).
fn models_before(
    config: &EngineConfig,
    pass: &FirstPass,
    cut: Timestamp,
    seconds: &mut BTreeMap<String, f64>,
    tag: &str,
) -> Result<ModelSet> {
    let early = Interactions::from_triples(
        pass.triples
            .iter()
            .filter(|t| t.3 < cut)
            .map(|(u, i, w, _)| (u.clone(), i.clone(), *w)),
    );
    if early.num_pairs() == 0 {
        return Ok(ModelSet::default());
    }
    Ok(ModelSet {
        retrieval: retrieval_models(config, &early, seconds, tag, None)?,
        ..ModelSet::default()
    })
}

/// Whether a sampled engagement anchors rows: a hash of the event (and the seed)
/// below `rate`, so the decision depends on the event alone, not on how long the log is.
fn sampled(seed: u64, event: &Event, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    let bytes = event
        .user_id
        .as_str()
        .bytes()
        .chain([0xff])
        .chain(event.item_id.as_str().bytes())
        .chain([0xff])
        .chain(event.timestamp.millis().to_le_bytes());
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^= hash >> 31;
    ((hash >> 11) as f64 / (1u64 << 53) as f64) < rate
}

/// The sampling rate of anchors: about `ranker_anchor_events` if as many engagements
/// come after the row cut as before it. Only the log before the row cut decides it.
fn anchor_rate(pass: &FirstPass, row_cut: Timestamp, wanted: usize) -> f64 {
    let before = pass.anchors.iter().filter(|(_, t)| *t < row_cut).count();
    if before == 0 {
        1.0
    } else {
        (wanted as f64 / before as f64).min(1.0)
    }
}

/// The items the user engaged with in `[from, until)`.
fn engaged_within(
    engagements: Option<&Vec<(Timestamp, ItemId)>>,
    from: Timestamp,
    until: Timestamp,
) -> HashSet<&ItemId> {
    engagements
        .into_iter()
        .flatten()
        .filter(|(t, _)| *t >= from && *t < until)
        .map(|(_, item)| item)
        .collect()
}

/// What the second pass reads.
struct RowInputs<'a> {
    config: &'a EngineConfig,
    pass: &'a FirstPass,
    cuts: TrainingCuts,
    row_models: &'a ModelSet,
    rate: f64,
    log_end: Timestamp,
}

impl RowInputs<'_> {
    fn label_window(&self, moment: Timestamp) -> (Timestamp, bool) {
        let closes = moment.plus_millis(self.cuts.label_window_ms);
        (closes, closes <= self.log_end)
    }

    /// Rows for every slot of an impression; `state` is as of its `features_offset`.
    fn impression_rows(
        &self,
        state: &State,
        offset: u64,
        impression: &Impression,
        rows: &mut Vec<RankerRow>,
    ) {
        if self.pass.deleted_users.contains(&impression.user_id) {
            return;
        }
        let moment = impression.timestamp;
        let (label_closes, label_closed) = self.label_window(moment);
        for (slot, features) in impression
            .slots
            .iter()
            .zip(impression_features(state, impression))
        {
            if features.is_empty() {
                continue;
            }
            let label = self
                .pass
                .responses
                .get(&(impression.request_id.clone(), slot.item_id.clone()))
                .is_some_and(|times| times.iter().any(|t| *t >= moment && *t < label_closes));
            rows.push(RankerRow {
                source: RowSource::Impression(impression.request_id.clone()),
                offset,
                user_id: impression.user_id.clone(),
                moment,
                candidate: slot_candidate(slot),
                features,
                context: impression.context.clone(),
                position: Some(slot.position),
                label: f32::from(u8::from(label)),
                label_closes,
                label_closed,
            });
        }
    }

    /// Rows for one sampled engagement: the head of what the serving retrieval would
    /// propose to the user at that moment, labelled by the user's engagements in the
    /// label window.
    fn interaction_rows(
        &self,
        state: &State,
        content: &ContentIndex,
        offset: u64,
        event: &Event,
        rows: &mut Vec<RankerRow>,
    ) {
        let now = event.timestamp;
        // Exactly the request the engine makes for this user (the candidates do not
        // depend on `count`).
        let request = RecRequest {
            user_id: event.user_id.clone(),
            count: self.config.training.ranker_rows_per_anchor,
            category: None,
            now,
            keep_features: false,
            only_channel: None,
            exclude: HashSet::new(),
            use_ranker: true,
            enforce_deadlines: false,
            alternatives: 0,
            context: RequestContext::from_event_context(&event.context),
        };
        let candidates =
            retrieve_candidates(state, self.row_models, Some(content), self.config, &request);
        let user = state.features.user_features(&event.user_id, now);
        let (label_closes, label_closed) = self.label_window(now);
        let engaged = engaged_within(self.pass.engagements.get(&event.user_id), now, label_closes);
        for candidate in candidates
            .into_iter()
            .take(self.config.training.ranker_rows_per_anchor)
        {
            let Some(item) = state.catalog.item(&candidate.item_id) else {
                continue;
            };
            let item_features = state.features.item_features(&candidate.item_id, now);
            let features = featurize(&RankingInput {
                user: &user,
                item,
                item_features: &item_features,
                candidate: &candidate,
                now,
                context: &request.context,
            });
            let label = f32::from(u8::from(engaged.contains(&candidate.item_id)));
            rows.push(RankerRow {
                source: RowSource::Interaction,
                offset,
                user_id: event.user_id.clone(),
                moment: now,
                candidate,
                features,
                context: request.context.clone(),
                position: None,
                label,
                label_closes,
                label_closed,
            });
        }
    }
}

/// Builds the ranker rows by replaying the log (the second pass); also returns the
/// state as of the gate cut.
fn replay_rows(inputs: &RowInputs, replay: &Replay) -> Result<(Vec<RankerRow>, State)> {
    let mut state = State::new(flywheel_pipeline::feature_config(inputs.config));
    let mut gate_state: Option<State> = None;
    // The content index of the catalog as of the current record; rebuilt after the
    // catalog changed, when a row needs it (the engine's watcher does the same).
    let mut content: Option<ContentIndex> = None;
    let mut impressions_seen: HashSet<RequestId> = HashSet::new();
    let mut anchors = 0usize;
    let mut rows = Vec::new();
    replay(&mut |offset, record| {
        if gate_state.is_none() && record_time(record).is_some_and(|t| t >= inputs.cuts.gate_cut) {
            gate_state = Some(state.clone());
        }
        if let Some(impressions) = inputs.pass.impressions_at.get(&offset) {
            for (own_offset, impression) in impressions {
                inputs.impression_rows(&state, *own_offset, impression, &mut rows);
            }
        }
        if let LogRecord::Event(event) = record {
            if anchors < inputs.config.training.ranker_anchor_events
                && event.timestamp >= inputs.cuts.row_cut
                && can_anchor(event, &impressions_seen)
                && !inputs.pass.deleted_users.contains(&event.user_id)
                && !inputs.pass.bot_events.contains(&offset)
                && sampled(inputs.config.training.seed, event, inputs.rate)
            {
                anchors += 1;
                let index = content.get_or_insert_with(|| state.catalog.content_index());
                inputs.interaction_rows(&state, index, offset, event, &mut rows);
            }
        }
        match record {
            LogRecord::Impression(impression) => {
                impressions_seen.insert(impression.request_id.clone());
            }
            LogRecord::ItemUpsert(_) | LogRecord::ItemDelete { .. } => content = None,
            LogRecord::Event(_)
            | LogRecord::UserUpsert(_)
            | LogRecord::UserDelete { .. }
            | LogRecord::ShadowImpression(_)
            | LogRecord::ExperimentStart { .. }
            | LogRecord::ExperimentRamp { .. }
            | LogRecord::ExperimentStop { .. }
            | LogRecord::UserErase { .. }
            | LogRecord::Erased { .. } => {}
        }
        state.apply(record);
        Ok(())
    })?;
    Ok((rows, gate_state.unwrap_or(state)))
}

/// Share of the (latest) groups a GBDT early-stops on.
const VALIDATION_SHARE: f64 = 0.2;

/// How the shipped ranker was fitted.
#[derive(Debug, Clone, Serialize)]
pub struct RankerFit {
    /// `gbdt` or `logistic`.
    pub kind: String,
    /// Rows fitted on (the GBDT: validation slice excluded; LambdaMART: groups with a
    /// positive only).
    pub rows: usize,
    /// The GBDT's training report (rounds, early stopping, validation NDCG).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gbdt: Option<GbdtReport>,
    /// Every feature by total split gain, most important first (GBDT only).
    pub importances: Vec<FeatureImportance>,
}

/// Fits the configured ranker on rows in log order (none if they do not hold both
/// outcomes). The GBDT gets the logged position as a training-only feature under
/// `training.position_bias = "feature"`; the logistic ranker has no training-only
/// features and is fitted on the features alone.
pub fn fit_ranker(
    config: &EngineConfig,
    rows: &[&RankerRow],
) -> Result<Option<(Ranker, RankerFit)>> {
    let positives = rows.iter().filter(|r| r.label > 0.5).count();
    if positives == 0 || positives == rows.len() {
        return Ok(None);
    }
    match config.training.ranker {
        RankerKind::Logistic => {
            let training: Vec<TrainingRow> = rows
                .iter()
                .map(|r| r.training_row(PositionBias::None))
                .collect();
            let model = LogisticRegression::train(&training, &LrParams::default())
                .map_err(|e| OfflineError::Model(format!("ranker: {e}")))?;
            let fit = RankerFit {
                kind: "logistic".into(),
                rows: training.len(),
                gbdt: None,
                importances: Vec::new(),
            };
            Ok(Some((Ranker::Logistic(model), fit)))
        }
        RankerKind::Gbdt => fit_gbdt(config, rows).map(Some),
    }
}

/// The rows cut into groups (the rows of one anchor: one impression, or one sampled
/// engagement). For LambdaMART only the groups that hold a positive are kept (the
/// others carry no pairwise gradient); the binary objective keeps them all.
fn groups(
    rows: &[&RankerRow],
    objective: GbdtObjective,
    bias: PositionBias,
) -> Vec<Vec<TrainingRow>> {
    let mut groups: Vec<Vec<TrainingRow>> = Vec::new();
    let mut current: Option<u64> = None;
    for row in rows {
        if current != Some(row.offset) {
            groups.push(Vec::new());
            current = Some(row.offset);
        }
        if let Some(group) = groups.last_mut() {
            group.push(row.training_row(bias));
        }
    }
    if objective == GbdtObjective::LambdaRank {
        groups.retain(|group| group.iter().any(|r| r.label > 0.5));
    }
    groups
}

/// The GBDT of `[training.gbdt]` (LambdaMART by default) on the groups, early-stopped
/// on the latest [`VALIDATION_SHARE`] of them.
fn fit_gbdt(config: &EngineConfig, rows: &[&RankerRow]) -> Result<(Ranker, RankerFit)> {
    let params = &config.training.gbdt;
    let bias = config.training.position_bias;
    let groups = groups(rows, params.objective, bias);
    let validation_groups = ((groups.len() as f64) * VALIDATION_SHARE).round() as usize;
    let (fit_groups, validation) = groups.split_at(groups.len() - validation_groups);
    let flatten = |groups: &[Vec<TrainingRow>]| -> (Vec<TrainingRow>, Vec<usize>) {
        let sizes = groups.iter().map(Vec::len).collect();
        (groups.iter().flatten().cloned().collect(), sizes)
    };
    let (fit_rows, fit_sizes) = flatten(fit_groups);
    let (valid_rows, valid_sizes) = flatten(validation);
    let model = GbdtModel::train(
        FeatureSchema::current(),
        training_only_features(bias),
        GroupedRows {
            rows: &fit_rows,
            group_sizes: &fit_sizes,
        },
        (!valid_rows.is_empty()).then_some(GroupedRows {
            rows: &valid_rows,
            group_sizes: &valid_sizes,
        }),
        params,
    )
    .map_err(|e| OfflineError::Model(format!("GBDT ranker: {e}")))?;
    let fit = RankerFit {
        kind: "gbdt".into(),
        rows: fit_rows.len(),
        gbdt: Some(model.report().clone()),
        importances: model.importances().to_vec(),
    };
    Ok((Ranker::Gbdt(model), fit))
}

/// The derived state as of `cut`: every record before the first timestamped record
/// at or after it.
fn state_at(config: &EngineConfig, replay: &Replay, cut: Timestamp) -> Result<State> {
    let mut state = State::new(flywheel_pipeline::feature_config(config));
    let mut reached = false;
    replay(&mut |_, record| {
        reached |= record_time(record).is_some_and(|t| t >= cut);
        if !reached {
            state.apply(record);
        }
        Ok(())
    })?;
    Ok(state)
}

/// Builds the ranker rows of a log, point-in-time: the cuts, the fusion weights
/// (learned before the row cut), the row models (trained before it) and every row.
/// [`train`] starts with it; its rows are what the ranker is fitted on.
pub fn rows(
    config: &EngineConfig,
    replay: &Replay,
    progress: &mut dyn FnMut(&str),
) -> Result<RowSet> {
    let mut seconds = BTreeMap::new();
    progress("reading the log");
    let pass = first_pass(replay, &config.bots)?;
    if pass.triples.is_empty() {
        return Err(OfflineError::NotEnoughData(
            "the log holds no events to learn from; import or send events first".into(),
        ));
    }
    let cuts = cuts(config, &pass)?;
    progress("learning fusion weights on a holdout before the row cut");
    let weight_models = models_before(config, &pass, cuts.fusion_cut, &mut seconds, "_fusion")?;
    let started = Instant::now();
    let fusion_weights = if weight_models.retrieval.is_empty() {
        BTreeMap::new()
    } else {
        let state = state_at(config, replay, cuts.fusion_cut)?;
        let sample = GateSample::new(&pass.engagements, &state, cuts.fusion_cut, cuts.row_cut);
        if sample.len() > 0 {
            sample.channel_weights(config, &weight_models)
        } else {
            BTreeMap::new()
        }
    };
    drop(weight_models);
    seconds.insert(
        "fusion_weights".to_string(),
        started.elapsed().as_secs_f64(),
    );
    progress("training the retrieval models for ranker rows");
    let mut row_models = models_before(config, &pass, cuts.row_cut, &mut seconds, "_rows")?;
    row_models.fusion_weights = fusion_weights.clone();
    progress("building ranker rows (point-in-time replay)");
    let started = Instant::now();
    let log_end = pass.log_end.unwrap_or(Timestamp::from_millis(0));
    let inputs = RowInputs {
        config,
        pass: &pass,
        cuts,
        row_models: &row_models,
        rate: anchor_rate(&pass, cuts.row_cut, config.training.ranker_anchor_events),
        log_end,
    };
    let (rows, gate_state) = replay_rows(&inputs, replay)?;
    seconds.insert("ranker_rows".to_string(), started.elapsed().as_secs_f64());
    Ok(RowSet {
        cuts,
        rows,
        skipped_impressions: pass.skipped_impressions,
        fusion_weights,
        pass,
        row_models,
        gate_state,
        seconds,
    })
}

/// Trains every model from a replayable log. `progress` receives stage names.
pub fn train(
    config: &EngineConfig,
    replay: &Replay,
    version: String,
    progress: &mut dyn FnMut(&str),
) -> Result<(ModelSet, TrainReport)> {
    train_warm(config, replay, version, progress, None)
}

/// [`train`], with the served ALS warm-started from `warm` (the serving version's
/// ALS) when given: its item factors seed the fit, which then runs
/// `training.warm_start_iterations` sweeps. Only the served models start warm; the
/// models behind the fusion weights and the ranker rows are fitted as in [`train`].
pub fn train_warm(
    config: &EngineConfig,
    replay: &Replay,
    version: String,
    progress: &mut dyn FnMut(&str),
    warm: Option<&AlsModel>,
) -> Result<(ModelSet, TrainReport)> {
    let RowSet {
        cuts,
        rows,
        skipped_impressions,
        fusion_weights,
        pass,
        row_models,
        gate_state,
        mut seconds,
    } = rows(config, replay, progress)?;
    progress("training and gating the ranker");
    let started = Instant::now();
    let gate_sample = GateSample::new(
        &pass.engagements,
        &gate_state,
        cuts.gate_cut,
        cuts.gate_cut.plus_millis(cuts.label_window_ms),
    );
    // The gate's ranker never saw a label from the gate cut on.
    let ranker_gate = if gate_sample.len() > 0 {
        let gate_rows: Vec<&RankerRow> = rows
            .iter()
            .filter(|r| r.label_closed && r.label_closes <= cuts.gate_cut)
            .collect();
        fit_ranker(config, &gate_rows)?
            .map(|(model, _)| gate_sample.judge_ranker(config, &row_models, model, gate_rows.len()))
    } else {
        None
    };
    drop(gate_sample);
    drop(gate_state);
    drop(row_models);
    let fit_rows: Vec<&RankerRow> = rows.iter().filter(|r| r.label_closed).collect();
    // What ships is refitted on every row whose label is final, and only when the
    // gate accepted the held-out fit.
    let (ranker, ranker_fit) = match &ranker_gate {
        Some(gate) if gate.accepted => fit_ranker(config, &fit_rows)?.unzip(),
        _ => (None, None),
    };
    let positives = fit_rows.iter().filter(|r| r.label > 0.5).count();
    seconds.insert("ranker".to_string(), started.elapsed().as_secs_f64());
    progress("training the served retrieval models");
    let interactions = Interactions::from_triples(
        pass.triples
            .iter()
            .map(|(u, i, w, _)| (u.clone(), i.clone(), *w)),
    );
    let mut warm_start = None;
    let warm = warm.map(|previous| (previous, &mut warm_start));
    let retrieval = retrieval_models(config, &interactions, &mut seconds, "", warm)?;
    let mut models: Vec<String> = retrieval.iter().map(|m| m.kind().to_string()).collect();
    if ranker.is_some() {
        models.push("ranker".into());
    }
    let count = |source: fn(&RowSource) -> bool| rows.iter().filter(|r| source(&r.source)).count();
    let mut report = TrainReport {
        version: version.clone(),
        log_records: pass.records,
        interactions: interactions.num_pairs() as u64,
        users: interactions.num_users() as u64,
        items: interactions.num_items() as u64,
        cuts,
        impression_rows: count(|s| matches!(s, RowSource::Impression(_))) as u64,
        interaction_rows: count(|s| matches!(s, RowSource::Interaction)) as u64,
        open_label_rows: (rows.len() - fit_rows.len()) as u64,
        skipped_impressions,
        positive_rate: positives as f64 / fit_rows.len().max(1) as f64,
        ranker_gate,
        ranker_fit,
        fusion_weights: fusion_weights
            .iter()
            .map(|(c, w)| (c.as_str().to_string(), *w))
            .collect(),
        seconds,
        warm_start,
        bot_events_dropped: pass.bot_events.len() as u64,
    };
    progress("computing the monitoring reference");
    let started = Instant::now();
    let reference =
        crate::reference::build_reference(config, replay, &rows, &cuts, ranker.as_ref(), &version)?;
    report.seconds.insert(
        "monitoring_reference".to_string(),
        started.elapsed().as_secs_f64(),
    );
    let manifest = Manifest {
        version,
        trained_at: Timestamp::now(),
        log_records: pass.records,
        interactions: report.interactions,
        ranker_rows: fit_rows.len() as u64,
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
            reference: Some(std::sync::Arc::new(reference)),
        },
        report,
    ))
}
