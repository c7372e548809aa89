//! Serving one request inside the running experiments.
//!
//! 1. **Plan**: the ledger's book assigns the user (layer bucket, then variant bucket;
//!    a forced `X-Flywheel-Variant` overrides it) and the plan says which model
//!    version and overrides rank the live list, whether two variants are interleaved,
//!    and which variants shadow the request.
//! 2. **Rank**: the pipeline ranks the live list (for interleaving, both variants'
//!    lists, merged by team draft).
//! 3. **Explore**, the last stage: an exploring variant replaces slots by ε-greedy
//!    draws and a Thompson slot, each with the marginal probability the policy had of
//!    putting that item in that slot (exact, or estimated by Monte Carlo).
//! 4. **Log** the impression with its experiment tags, teams and propensities, and
//!    hand shadow variants the request off the response path.

use std::borrow::Cow;
use std::sync::mpsc::{Receiver, TrySendError};
use std::sync::Arc;
use std::time::Instant;

use flywheel_core::{
    Channel, CoreError, ExperimentKind, ExperimentTag, ExplorationSettings, Impression,
    ImpressionSlot, ItemId, LogRecord, PropensityKind, RequestContext, RequestId, RerankOverride,
    Timestamp, UserId, VariantDef,
};
use flywheel_experiments::{explore, team_draft, ExplorationPolicy, PoolItem, SlotKind, Team};
use flywheel_pipeline::{recommend, EngineConfig, ModelSet, RecItem, RecRequest, Recommendation};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::engine::{Engine, Inner};
use crate::error::{EngineError, Result};
use crate::stats::EngineStats;

/// What a caller asks for.
#[derive(Debug, Clone)]
pub struct ServeRequest {
    /// The user.
    pub user_id: UserId,
    /// How many items.
    pub count: usize,
    /// A category path to stay in.
    pub category: Option<String>,
    /// The request's time; `None` is the wall clock (a simulated clock passes it).
    pub now: Option<Timestamp>,
    /// Variants forced for QA, as (experiment, variant).
    pub forced: Vec<(String, String)>,
    /// Where and when the list is asked for (device, page, hour): ranking features,
    /// logged on the impression.
    pub context: RequestContext,
}

/// How one slot came to be.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedSlot {
    /// In an interleaving experiment, the variant that contributed it.
    pub team: Option<String>,
    /// The probability the logging policy had of putting this item in this slot.
    pub propensity: f64,
    /// What kind of probability that is.
    pub propensity_kind: PropensityKind,
}

/// A served list with the identifiers the client needs.
#[derive(Debug, Clone)]
pub struct Served {
    /// The id the client sends back with events.
    pub request_id: RequestId,
    /// The model version that ranked it (the first team's, when interleaved).
    pub model_version: String,
    /// The list.
    pub recommendation: Recommendation,
    /// Per item, its team and propensity.
    pub slots: Vec<ServedSlot>,
    /// The experiments the request was part of.
    pub experiments: Vec<ExperimentTag>,
    /// Whether a variant was forced.
    pub forced: bool,
}

/// What ranks a list: a model version and a variant's overrides.
#[derive(Debug, Clone, Default)]
struct Arm {
    model_version: Option<String>,
    rerank: Option<RerankOverride>,
    exploration: Option<ExplorationSettings>,
}

impl Arm {
    fn take(&mut self, variant: &VariantDef) {
        if variant.model_version.is_some() {
            self.model_version.clone_from(&variant.model_version);
        }
        if variant.rerank.is_some() {
            self.rerank.clone_from(&variant.rerank);
        }
        if variant.exploration.is_some() {
            self.exploration.clone_from(&variant.exploration);
        }
    }

    fn of(variant: &VariantDef) -> Arm {
        let mut arm = Arm::default();
        arm.take(variant);
        arm
    }

    fn config<'a>(&self, base: &'a EngineConfig) -> Cow<'a, EngineConfig> {
        let Some(rerank) = &self.rerank else {
            return Cow::Borrowed(base);
        };
        let mut config = base.clone();
        if let Some(lambda) = rerank.mmr_lambda {
            config.rerank.mmr_lambda = lambda;
        }
        if let Some(cap) = rerank.max_per_category {
            // The cap is a share of the first `cap_window` slots: `cap` items of them.
            let window = config.rerank.cap_window.max(1) as f64;
            config.rerank.category_cap = (f64::from(cap) / window).clamp(f64::MIN_POSITIVE, 1.0);
        }
        Cow::Owned(config)
    }
}

/// A shadow variant's part in a request.
#[derive(Debug, Clone)]
pub(crate) struct ShadowJob {
    experiment: String,
    variant: String,
    arm: Arm,
    request: RecRequest,
    live_request: RequestId,
}

/// The request's plan.
#[derive(Debug, Default)]
struct Plan {
    tags: Vec<ExperimentTag>,
    forced: bool,
    live: Arm,
    /// (first variant name, its arm, second variant name, its arm).
    interleave: Option<[(String, Arm); 2]>,
    shadows: Vec<(String, String, Arm)>,
}

fn bad_forced(reason: String) -> EngineError {
    EngineError::Invalid {
        index: None,
        source: CoreError::InvalidValue {
            field: "X-Flywheel-Variant".into(),
            reason,
        },
    }
}

fn new_request_id() -> RequestId {
    let bits: u128 = rand::thread_rng().gen();
    RequestId::new_unchecked(format!("{bits:032x}"))
}

/// A generator seeded by the request id, so a logged request's draws can be redone.
fn request_rng(request_id: &RequestId) -> StdRng {
    let hash = flywheel_experiments::murmur3_x86_32(request_id.as_str().as_bytes(), 0);
    let high = flywheel_experiments::murmur3_x86_32(request_id.as_str().as_bytes(), 1);
    StdRng::seed_from_u64((u64::from(high) << 32) | u64::from(hash))
}

impl Engine {
    /// Serves one request with the wall clock, outside any forced variant.
    pub fn recommend(&self, user_id: UserId, count: usize, category: Option<String>) -> Served {
        let request = ServeRequest {
            user_id,
            count,
            category,
            now: None,
            forced: Vec::new(),
            context: RequestContext::default(),
        };
        match self.serve(&request) {
            Ok(served) => served,
            // Without forced variants the plan cannot fail; serve the default models.
            Err(_) => self.serve_plain(&request),
        }
    }

    fn serve_plain(&self, request: &ServeRequest) -> Served {
        self.run(request, Plan::default())
    }

    /// Serves one request inside the running experiments: plans, ranks, explores,
    /// logs the impression and queues the shadows. A forced variant that does not
    /// exist is a bad request.
    pub fn serve(&self, request: &ServeRequest) -> Result<Served> {
        let plan = self.plan(request)?;
        Ok(self.run(request, plan))
    }

    fn plan(&self, request: &ServeRequest) -> Result<Plan> {
        let ledger = self.ledger();
        let mut assigned = ledger.book.assign(request.user_id.as_str());
        let mut plan = Plan::default();
        if assigned.is_empty() && request.forced.is_empty() {
            // The canary takes only users no experiment holds (see `canary.rs`).
            plan.live.model_version =
                crate::canary::version_for(&self.inner, request.user_id.as_str());
        }
        for (experiment, variant) in &request.forced {
            let running = ledger
                .book
                .get(experiment)
                .filter(|r| r.is_active())
                .ok_or_else(|| bad_forced(format!("no running experiment `{experiment}`")))?;
            let (index, _) = running.def.variant(variant).ok_or_else(|| {
                let names: Vec<&str> = running
                    .def
                    .variants
                    .iter()
                    .map(|v| v.name.as_str())
                    .collect();
                bad_forced(format!(
                    "experiment `{experiment}` has no variant `{variant}`; its variants are {}",
                    names.join(", ")
                ))
            })?;
            let layer = running.def.layer_name();
            assigned.retain(|(r, _)| r.def.layer_name() != layer);
            assigned.push((running, index));
            plan.forced = true;
        }
        assigned.sort_by(|a, b| a.0.def.id.cmp(&b.0.def.id));
        for (running, index) in assigned {
            let def = &running.def;
            match def.kind {
                ExperimentKind::Ab => {
                    plan.live.take(&def.variants[index]);
                    plan.tags.push(tag(&def.id, &def.variants[index].name));
                }
                ExperimentKind::Interleaving if plan.interleave.is_none() => {
                    let [a, b] = [&def.variants[0], &def.variants[1]];
                    plan.interleave =
                        Some([(a.name.clone(), Arm::of(a)), (b.name.clone(), Arm::of(b))]);
                    plan.tags.push(tag(&def.id, &a.name));
                }
                // A second interleaving experiment cannot share the list: not counted.
                ExperimentKind::Interleaving => {}
                ExperimentKind::Shadow => {
                    plan.live.take(&def.variants[0]);
                    plan.tags.push(tag(&def.id, &def.variants[0].name));
                    for variant in &def.variants[1..] {
                        plan.shadows
                            .push((def.id.clone(), variant.name.clone(), Arm::of(variant)));
                    }
                }
            }
        }
        Ok(plan)
    }

    fn run(&self, request: &ServeRequest, plan: Plan) -> Served {
        let started = Instant::now();
        let now = request.now.unwrap_or_else(Timestamp::now);
        let request_id = new_request_id();
        let pool = plan
            .live
            .exploration
            .as_ref()
            .map_or(0, |_| self.config().experiments.exploration_pool);
        let rec_request = RecRequest {
            user_id: request.user_id.clone(),
            count: request.count,
            category: request.category.clone(),
            now,
            keep_features: true,
            only_channel: None,
            exclude: Default::default(),
            use_ranker: true,
            enforce_deadlines: true,
            alternatives: pool,
            context: request.context.clone(),
        };
        let mut rng = request_rng(&request_id);
        let (mut recommendation, model_version, features_offset, slots) = match &plan.interleave {
            Some(arms) => self.rank_interleaved(&rec_request, arms, &mut rng),
            None => {
                let (mut recommendation, version, offset) = self.rank(&rec_request, &plan.live);
                let slots = match &plan.live.exploration {
                    Some(settings) => self.explore(&mut recommendation, settings, now, &mut rng),
                    None => deterministic_slots(recommendation.items.len()),
                };
                (recommendation, version, offset, slots)
            }
        };
        recommendation.alternatives.clear();
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let impression = Impression {
            request_id: request_id.clone(),
            user_id: request.user_id.clone(),
            timestamp: now,
            experiments: plan.tags.clone(),
            forced: plan.forced,
            category: request.category.clone(),
            count: u32::try_from(request.count).ok(),
            context: request.context.clone(),
            model_version: model_version.clone(),
            fallback: recommendation.fallback,
            features_offset: Some(features_offset),
            latency_ms: Some(latency_ms),
            slots: impression_slots(&recommendation.items, &slots),
        };
        self.log_record(LogRecord::Impression(impression));
        for (experiment, variant, arm) in plan.shadows {
            self.queue_shadow(ShadowJob {
                experiment,
                variant,
                arm,
                request: rec_request.clone(),
                live_request: request_id.clone(),
            });
        }
        self.record_stats(&recommendation, started);
        Served {
            request_id,
            model_version,
            recommendation,
            slots,
            experiments: plan.tags,
            forced: plan.forced,
        }
    }

    /// Ranks with an arm's models and overrides; returns the list, the version that
    /// ranked it and the offset its features were read at.
    fn rank(&self, request: &RecRequest, arm: &Arm) -> (Recommendation, String, u64) {
        rank_with(&self.inner, request, arm)
    }

    fn rank_interleaved(
        &self,
        request: &RecRequest,
        arms: &[(String, Arm); 2],
        rng: &mut StdRng,
    ) -> (Recommendation, String, u64, Vec<ServedSlot>) {
        let (a, version, offset) = self.rank(request, &arms[0].1);
        let (b, _, _) = self.rank(request, &arms[1].1);
        let ids = |r: &Recommendation| {
            r.items
                .iter()
                .map(|i| i.item_id.clone())
                .collect::<Vec<_>>()
        };
        let merged = team_draft(&ids(&a), &ids(&b), request.count, rng);
        let mut items = Vec::with_capacity(merged.len());
        let mut slots = Vec::with_capacity(merged.len());
        for (position, (item_id, team)) in merged.into_iter().enumerate() {
            let source = if team == Team::A { &a } else { &b };
            let Some(item) = source.items.iter().find(|i| i.item_id == item_id) else {
                continue;
            };
            let mut item = item.clone();
            item.position = position as u32;
            items.push(item);
            let name = &arms[usize::from(team == Team::B)].0;
            slots.push(ServedSlot {
                team: Some(name.clone()),
                propensity: 1.0,
                propensity_kind: PropensityKind::Interleaved,
            });
        }
        let mut reasons = a.fallback_reasons.clone();
        reasons.extend(b.fallback_reasons.iter().cloned());
        let merged = Recommendation {
            items,
            fallback: a.fallback || b.fallback,
            fallback_reasons: reasons,
            timings: a.timings,
            alternatives: Vec::new(),
        };
        (merged, version, offset, slots)
    }

    /// The last stage: ε-greedy and Thompson slots drawn from the alternatives.
    fn explore(
        &self,
        recommendation: &mut Recommendation,
        settings: &ExplorationSettings,
        now: Timestamp,
        rng: &mut StdRng,
    ) -> Vec<ServedSlot> {
        let list: Vec<ItemId> = recommendation
            .items
            .iter()
            .map(|i| i.item_id.clone())
            .collect();
        let pool: Vec<PoolItem<ItemId>> = {
            let state = self.state();
            let ids: Vec<&ItemId> = recommendation
                .alternatives
                .iter()
                .map(|i| &i.item_id)
                .collect();
            let features = state.feature_reader().item_features_many(&ids, now);
            ids.into_iter()
                .zip(features)
                .map(|(id, f)| PoolItem {
                    item: id.clone(),
                    impressions: f.impressions[2],
                    clicks: f.clicks[2],
                })
                .collect()
        };
        let policy = ExplorationPolicy {
            epsilon: settings.epsilon,
            thompson: settings
                .thompson_slot
                .map(|slot| flywheel_experiments::ThompsonSettings {
                    slot: slot as usize,
                    max_impressions: settings.under_exposed_impressions,
                    draws: settings.thompson_draws as usize,
                }),
        };
        let explored = explore(&list, &pool, &policy, rng);
        let mut items = Vec::with_capacity(explored.len());
        let mut slots = Vec::with_capacity(explored.len());
        for (position, slot) in explored.into_iter().enumerate() {
            let from_list = recommendation.items.iter().find(|i| i.item_id == slot.item);
            let mut item = match from_list {
                Some(item) => item.clone(),
                None => {
                    let Some(alternative) = recommendation
                        .alternatives
                        .iter()
                        .find(|i| i.item_id == slot.item)
                    else {
                        continue;
                    };
                    let mut item = alternative.clone();
                    item.channel = Channel::Exploration;
                    item.explanation = flywheel_core::Explanation::new(
                        flywheel_core::ExplanationKind::Exploration,
                    );
                    item
                }
            };
            item.position = position as u32;
            items.push(item);
            slots.push(ServedSlot {
                team: None,
                propensity: slot.propensity,
                propensity_kind: match slot.kind {
                    SlotKind::Deterministic => PropensityKind::Deterministic,
                    SlotKind::EpsilonGreedy => PropensityKind::Exact,
                    SlotKind::Thompson => PropensityKind::Estimated,
                },
            });
        }
        recommendation.items = items;
        slots
    }

    fn queue_shadow(&self, job: ShadowJob) {
        let sender = self.inner.shadows.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sender) = sender.as_ref() else {
            return;
        };
        if let Err(TrySendError::Full(job)) = sender.try_send(job) {
            // The shadow worker is behind: the shadow misses this request, which is
            // logged as a timeout so the shadow's report counts it.
            EngineStats::add(&self.inner.stats.shadows_dropped, 1);
            log_shadow(&self.inner, &job, None, 0.0);
        }
    }

    fn log_record(&self, record: LogRecord) {
        log_record(&self.inner, record);
    }

    fn record_stats(&self, recommendation: &Recommendation, started: Instant) {
        let stats = self.stats();
        EngineStats::add(&stats.recommendations, 1);
        if recommendation.fallback {
            EngineStats::add(&stats.fallbacks, 1);
            stats
                .fallback_kinds
                .record(&recommendation.fallback_reasons);
        }
        stats
            .retrieval_latency
            .observe(recommendation.timings.retrieval);
        stats
            .ranking_latency
            .observe(recommendation.timings.ranking);
        stats.rerank_latency.observe(recommendation.timings.rerank);
        stats.request_latency.observe(started.elapsed());
    }
}

fn tag(id: &str, variant: &str) -> ExperimentTag {
    ExperimentTag {
        id: id.to_string(),
        variant: variant.to_string(),
    }
}

fn deterministic_slots(count: usize) -> Vec<ServedSlot> {
    vec![
        ServedSlot {
            team: None,
            propensity: 1.0,
            propensity_kind: PropensityKind::Deterministic,
        };
        count
    ]
}

fn impression_slots(items: &[RecItem], slots: &[ServedSlot]) -> Vec<ImpressionSlot> {
    items
        .iter()
        .zip(slots)
        .map(|(item, slot)| ImpressionSlot {
            item_id: item.item_id.clone(),
            position: item.position,
            score: item.score,
            propensity: slot.propensity,
            propensity_kind: slot.propensity_kind,
            team: slot.team.clone(),
            channel: item.channel,
            channel_rank: item.channel_rank,
            channel_score: item.channel_score,
            source_item: item.source_item.clone(),
            features: item.features.clone(),
        })
        .collect()
}

/// The models of an arm: its version when it names one that loads, else the serving
/// models (and the list says it fell back).
fn arm_models(inner: &Inner, arm: &Arm) -> (Arc<ModelSet>, Option<String>) {
    match crate::experiments::models_for(inner, arm.model_version.as_deref()) {
        Ok(set) => (set, None),
        Err(e) => (
            crate::engine::served_models(inner),
            Some(format!(
                "variant models unavailable ({e}); serving models used"
            )),
        ),
    }
}

fn rank_with(inner: &Inner, request: &RecRequest, arm: &Arm) -> (Recommendation, String, u64) {
    let (models, reason) = arm_models(inner, arm);
    let config = arm.config(&inner.config);
    let content = crate::engine::content_index(inner);
    let state = inner.state.read().unwrap_or_else(|e| e.into_inner());
    let mut recommendation = recommend(&state, &models, content.as_deref(), &config, request);
    if let Some(reason) = reason {
        recommendation.fallback = true;
        recommendation.fallback_reasons.push(reason);
    }
    (recommendation, models.version().to_string(), state.applied)
}

/// Queues a record for the impression writer (a full queue drops and counts it).
pub(crate) fn log_record(inner: &Inner, record: LogRecord) {
    let sender = inner.impressions.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(sender) = sender.as_ref() {
        if let Err(TrySendError::Full(_)) = sender.try_send(record) {
            EngineStats::add(&inner.stats.impressions_dropped, 1);
        }
    }
}

/// Logs a shadow's list for its live request; `None` (no list) is a timeout.
fn log_shadow(inner: &Inner, job: &ShadowJob, ranked: Option<&Recommendation>, latency_ms: f64) {
    let slots = ranked.map_or_else(Vec::new, |r| {
        impression_slots(&r.items, &deterministic_slots(r.items.len()))
    });
    let shadow = Impression {
        context: job.request.context.clone(),
        request_id: job.live_request.clone(),
        user_id: job.request.user_id.clone(),
        timestamp: job.request.now,
        experiments: vec![tag(&job.experiment, &job.variant)],
        forced: false,
        category: job.request.category.clone(),
        count: u32::try_from(job.request.count).ok(),
        model_version: ranked
            .map(|_| job.arm.model_version.clone().unwrap_or_default())
            .unwrap_or_default(),
        fallback: ranked.is_none_or(|r| r.fallback),
        features_offset: None,
        latency_ms: ranked.map(|_| latency_ms),
        slots,
    };
    log_record(inner, LogRecord::ShadowImpression(shadow));
}

/// The shadow worker: ranks each queued request with the shadow variant. A shadow
/// that ran past its deadline is logged as a timeout, its list unused.
pub(crate) fn run_shadows(inner: &Inner, receiver: Receiver<ShadowJob>) {
    let deadline = std::time::Duration::from_millis(inner.config.experiments.shadow_deadline_ms);
    while let Ok(job) = receiver.recv() {
        let started = Instant::now();
        let (ranked, _, _) = rank_with(inner, &job.request, &job.arm);
        let elapsed = started.elapsed();
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        if elapsed > deadline {
            log_shadow(inner, &job, None, latency_ms);
        } else {
            log_shadow(inner, &job, Some(&ranked), latency_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_per_category_maximum_becomes_the_share_of_the_cap_window() {
        let base = EngineConfig::default();
        let arm = Arm {
            rerank: Some(RerankOverride {
                mmr_lambda: Some(0.5),
                max_per_category: Some(2),
            }),
            ..Arm::default()
        };
        let config = arm.config(&base);
        let window = base.rerank.cap_window as f64;
        assert_eq!(config.rerank.category_cap * window, 2.0);
        assert_eq!(config.rerank.mmr_lambda, 0.5);
        assert!(config.rerank.validate().is_ok());
        assert!(matches!(Arm::default().config(&base), Cow::Borrowed(_)));
    }
}
