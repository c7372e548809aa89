//! One recommendation request, start to end: retrieval → ranking → re-ranking.
//!
//! `recommend` is a pure function of the derived state, the models and the request,
//! so the server calls it online and `flywheel eval` calls it offline on a state
//! replayed to a cut-off. Each stage has a deadline: a stage that runs late is cut
//! short (remaining channels skipped, or ranking replaced by the retrieval order)
//! and the result says a fallback was used. A missing model is skipped the same way.

use flywheel_core::{
    Action, Candidate, Channel, Explanation, ItemId, RequestContext, Timestamp, UserFeatures,
    UserId,
};
use flywheel_ranking::{explain, featurize, rerank, RankingInput, Scored};
use flywheel_retrieval::{blend, fuse_scores, BlendConfig, ChannelList, ContentIndex};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use flywheel_features::FeatureReader;

use crate::catalog::{in_category, Catalog};
use crate::config::EngineConfig;
use crate::models::ModelSet;
use crate::state::State;

/// What a caller asks for.
#[derive(Debug, Clone)]
pub struct RecRequest {
    /// The user.
    pub user_id: UserId,
    /// How many items.
    pub count: usize,
    /// Restrict to a category path and what is below it (`books` or `books/scifi`), if set.
    pub category: Option<String>,
    /// The time of the request (the wall clock online; a cut-off offline).
    pub now: Timestamp,
    /// Whether to keep each slot's feature vector (for the impression log).
    pub keep_features: bool,
    /// Restrict retrieval to one channel and skip the ranker: the channel's own order goes
    /// through the same re-ranking rules (filters, category cap, MMR) as the pipeline,
    /// so channels and pipeline are compared fairly (evaluation of single channels).
    pub only_channel: Option<Channel>,
    /// Items never to return (evaluation passes the user's whole training history).
    pub exclude: HashSet<ItemId>,
    /// Whether to apply the ranker (evaluation turns it off to measure what it adds).
    pub use_ranker: bool,
    /// Whether stage deadlines apply (online yes; offline evaluation and training
    /// must not depend on how fast the machine is).
    pub enforce_deadlines: bool,
    /// How many re-ranked candidates beyond `count` to return as alternatives (the
    /// exploration pool); 0 for none.
    pub alternatives: usize,
    /// Where and when the list is asked for: ranking features, logged on the impression.
    pub context: RequestContext,
}

/// One recommended item.
#[derive(Debug, Clone)]
pub struct RecItem {
    /// The item.
    pub item_id: ItemId,
    /// Its final score.
    pub score: f64,
    /// Its 0-based position.
    pub position: u32,
    /// The channel it came from.
    pub channel: Channel,
    /// Its rank within that channel.
    pub channel_rank: u32,
    /// The channel's score for it.
    pub channel_score: f32,
    /// The user's item that led to it, for history-driven channels.
    pub source_item: Option<ItemId>,
    /// Why it is recommended.
    pub explanation: Explanation,
    /// The ranking features used (empty unless asked for).
    pub features: Vec<f32>,
}

/// Time spent per stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimings {
    /// Retrieval.
    pub retrieval: Duration,
    /// Ranking.
    pub ranking: Duration,
    /// Re-ranking.
    pub rerank: Duration,
}

/// The answer.
#[derive(Debug, Clone)]
pub struct Recommendation {
    /// The items, best first.
    pub items: Vec<RecItem>,
    /// Whether any stage fell back (missing model, late stage, too few candidates).
    pub fallback: bool,
    /// Why, when it did.
    pub fallback_reasons: Vec<String>,
    /// Stage timings.
    pub timings: StageTimings,
    /// Eligible candidates ranked below the list (as many as asked for), in order.
    pub alternatives: Vec<RecItem>,
}

/// The per-request context the stages share.
struct Context<'a> {
    state: &'a State,
    features: &'a dyn FeatureReader,
    models: &'a ModelSet,
    content: Option<&'a ContentIndex>,
    config: &'a EngineConfig,
    request: &'a RecRequest,
    user: UserFeatures,
    personalised: bool,
    fallback_reasons: Vec<String>,
}

impl<'a> Context<'a> {
    /// Reads the user's features; opted-out users and users without history get
    /// non-personalised channels only.
    fn new(
        state: &'a State,
        models: &'a ModelSet,
        content: Option<&'a ContentIndex>,
        config: &'a EngineConfig,
        request: &'a RecRequest,
    ) -> Self {
        let features = state.feature_reader();
        let user = features.user_features(&request.user_id, request.now);
        let opted_out = state
            .catalog
            .user(&request.user_id)
            .is_some_and(|u| u.opted_out);
        Context {
            state,
            features,
            models,
            content,
            config,
            request,
            personalised: !opted_out && !user.recent.is_empty(),
            user,
            fallback_reasons: Vec::new(),
        }
    }
}

/// Retrieval alone: the blended candidates for a request, before ranking. Training
/// uses it to build ranker rows from the very candidates serving would see.
pub fn retrieve_candidates(
    state: &State,
    models: &ModelSet,
    content: Option<&ContentIndex>,
    config: &EngineConfig,
    request: &RecRequest,
) -> Vec<Candidate> {
    retrieve(&mut Context::new(state, models, content, config, request))
}

/// Serves one request.
pub fn recommend(
    state: &State,
    models: &ModelSet,
    content: Option<&ContentIndex>,
    config: &EngineConfig,
    request: &RecRequest,
) -> Recommendation {
    let mut ctx = Context::new(state, models, content, config, request);
    let mut timings = StageTimings::default();
    let started = Instant::now();
    let candidates = retrieve(&mut ctx);
    timings.retrieval = started.elapsed();
    let started = Instant::now();
    let scored = score(&mut ctx, candidates);
    timings.ranking = started.elapsed();
    let started = Instant::now();
    let mut items = finish(&ctx, scored);
    let alternatives = items.split_off(items.len().min(request.count));
    if items.len() < request.count && request.only_channel.is_none() {
        fill_with_popular(&mut ctx, &mut items);
    }
    timings.rerank = started.elapsed();
    if let Some(reason) = ctx.features.unavailable() {
        ctx.fallback_reasons.push(format!(
            "feature store unavailable ({reason}); empty user features and cached popular lists used"
        ));
    }
    Recommendation {
        fallback: !ctx.fallback_reasons.is_empty(),
        fallback_reasons: ctx.fallback_reasons,
        items,
        timings,
        alternatives,
    }
}

/// The user's recent items as (item, weight), most recent first, deduplicated.
fn history(user: &UserFeatures, limit: usize) -> Vec<(ItemId, f32)> {
    let mut weights: HashMap<&ItemId, f32> = HashMap::new();
    let mut order = Vec::new();
    for (item, action, _) in &user.recent {
        if *action == Action::Dislike {
            continue;
        }
        let entry = weights.entry(item).or_insert_with(|| {
            order.push(item);
            0.0
        });
        *entry += action.implicit_weight();
    }
    order
        .into_iter()
        .take(limit)
        .map(|item| (item.clone(), weights[item]))
        .collect()
}

fn channel_share(config: &EngineConfig, channel: Channel) -> f64 {
    config
        .retrieval
        .quotas
        .get(channel.as_str())
        .copied()
        .unwrap_or(0.0)
}

fn retrieve(ctx: &mut Context) -> Vec<Candidate> {
    let total = ctx.config.retrieval.candidates;
    let deadline = Duration::from_millis(ctx.config.deadlines.retrieval_ms);
    let started = Instant::now();
    let history = history(&ctx.user, ctx.config.retrieval.history_items);
    let mut exclude: HashSet<ItemId> = history.iter().map(|(i, _)| i.clone()).collect();
    exclude.extend(ctx.request.exclude.iter().cloned());
    exclude.extend(ctx.user.purchased.iter().cloned());
    let channels: Vec<Channel> = match ctx.request.only_channel {
        Some(channel) => vec![channel],
        None => vec![
            Channel::Ease,
            Channel::Als,
            Channel::CoVisitation,
            Channel::Content,
            Channel::Trending,
            Channel::Popularity,
        ],
    };
    let mut lists = Vec::new();
    let mut quotas = BTreeMap::new();
    for channel in channels {
        if ctx.request.enforce_deadlines && started.elapsed() > deadline {
            ctx.fallback_reasons.push(format!(
                "retrieval deadline passed before the {} channel",
                channel.as_str()
            ));
            break;
        }
        let share = if ctx.request.only_channel.is_some() {
            1.0
        } else {
            channel_share(ctx.config, channel)
        };
        let k = ((total as f64) * share).ceil() as usize;
        if k == 0 {
            continue;
        }
        let items = run_channel(ctx, channel, &history, &exclude, k);
        quotas.insert(channel, k);
        lists.push(ChannelList { channel, items });
    }
    let weights: BTreeMap<Channel, f64> = quotas
        .keys()
        .map(|&c| {
            let weight = if ctx.models.fusion_weights.is_empty() {
                channel_share(ctx.config, c)
            } else {
                ctx.models.fusion_weights.get(&c).copied().unwrap_or(0.0)
            };
            (c, weight.max(f64::EPSILON))
        })
        .collect();
    let fused = fuse_scores(&lists, &weights);
    let config = BlendConfig { quotas, total };
    let mut candidates = blend(lists, &config);
    // The candidate's score is its fused score over every channel that proposed it;
    // the fused order is what serves when no ranker is there.
    for candidate in &mut candidates {
        candidate.channel_score = fused.get(&candidate.item_id).copied().unwrap_or(0.0);
    }
    candidates.sort_by(|a, b| b.channel_score.total_cmp(&a.channel_score));
    if let Some(category) = &ctx.request.category {
        candidates.retain(|c| {
            ctx.state
                .catalog
                .item(&c.item_id)
                .is_some_and(|item| in_category(&item.category, category))
        });
    }
    candidates
}

/// How many more items the category lists are asked for when the request's category
/// is below the top level: they are kept per top-level category, and filtered here.
const SUB_CATEGORY_OVERFETCH: usize = 4;

type ChannelItems = Vec<(ItemId, f32, Option<ItemId>)>;

fn run_channel(
    ctx: &mut Context,
    channel: Channel,
    history: &[(ItemId, f32)],
    exclude: &HashSet<ItemId>,
    k: usize,
) -> ChannelItems {
    let personal = ctx.personalised;
    let now = ctx.request.now;
    let category = ctx.request.category.as_deref();
    let catalog = &ctx.state.catalog;
    // The feature lists are per top-level category; a sub-category filters them.
    let sub_category = category.filter(|c| c.contains('/'));
    let fetch = |k: usize| match sub_category {
        Some(_) => (k + exclude.len()).saturating_mul(SUB_CATEGORY_OVERFETCH),
        None => k + exclude.len(),
    };
    let plain = |list: Vec<(ItemId, f32)>| -> ChannelItems {
        list.into_iter()
            .filter(|(item, _)| !exclude.contains(item) && !not_yet_created(catalog, item, now))
            .filter(|(item, _)| {
                sub_category.is_none_or(|path| {
                    catalog
                        .category_of(item)
                        .is_some_and(|c| in_category(c, path))
                })
            })
            .map(|(item, score)| (item, score, None))
            .collect()
    };
    match channel {
        Channel::Ease | Channel::Als if personal => match ctx.models.retrieval_for(channel) {
            Some(model) => plain(model.recommend_for_history(history, k, exclude)),
            None => missing(ctx, channel),
        },
        Channel::Content if personal => match ctx.content {
            Some(index) => plain(index.similar_to(history, k, exclude)),
            None => Vec::new(),
        },
        Channel::CoVisitation if personal => co_visitation(ctx, history, exclude, k),
        Channel::Trending => plain(ctx.features.trending(category, now, fetch(k))),
        Channel::Popularity => {
            let top = top_affinity_category(&ctx.user).filter(|_| personal);
            let mut list = plain(
                ctx.features
                    .popular(category.or(top.as_deref()), now, fetch(k)),
            );
            if list.len() < k {
                list.extend(plain(ctx.features.popular(category, now, fetch(k))));
            }
            list
        }
        Channel::Ease
        | Channel::Als
        | Channel::Content
        | Channel::CoVisitation
        | Channel::Exploration => Vec::new(),
    }
}

/// Whether the catalog says the item enters it only after `now` (its `created_at`
/// is later): such an item is never a candidate, so a list as of an earlier moment
/// (a training row, a holdout) cannot propose an item that did not exist yet.
fn not_yet_created(catalog: &Catalog, item: &ItemId, now: Timestamp) -> bool {
    catalog
        .item(item)
        .and_then(|i| i.created_at)
        .is_some_and(|created| created > now)
}

fn missing(ctx: &mut Context, channel: Channel) -> ChannelItems {
    ctx.fallback_reasons
        .push(format!("no trained {} model; skipped", channel.as_str()));
    Vec::new()
}

/// Co-visitation neighbours of the user's recent items, weighted by recency.
fn co_visitation(
    ctx: &Context,
    history: &[(ItemId, f32)],
    exclude: &HashSet<ItemId>,
    k: usize,
) -> ChannelItems {
    let mut scores: HashMap<ItemId, (f32, ItemId)> = HashMap::new();
    let seeds: Vec<&ItemId> = history.iter().take(10).map(|(seed, _)| seed).collect();
    let neighbours = ctx.features.co_visited_many(&seeds, k);
    for (rank, ((seed, weight), found)) in history.iter().zip(neighbours).enumerate() {
        let recency = 1.0 / (1.0 + rank as f32);
        for (neighbour, strength) in found {
            if exclude.contains(&neighbour)
                || not_yet_created(&ctx.state.catalog, &neighbour, ctx.request.now)
            {
                continue;
            }
            let gain = strength * weight * recency;
            let entry = scores.entry(neighbour).or_insert((0.0, seed.clone()));
            entry.0 += gain;
        }
    }
    let mut list: ChannelItems = scores
        .into_iter()
        .map(|(item, (score, seed))| (item, score, Some(seed)))
        .collect();
    list.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    list.truncate(k);
    list
}

fn top_affinity_category(user: &UserFeatures) -> Option<String> {
    user.category_affinity
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(c, _)| c.clone())
}

fn score(ctx: &mut Context, candidates: Vec<Candidate>) -> Vec<(Scored, Vec<f32>)> {
    let deadline = Duration::from_millis(ctx.config.deadlines.ranking_ms);
    let started = Instant::now();
    let now = ctx.request.now;
    // A channel alone is judged in its own order, through the same business rules.
    let ranker = ctx
        .models
        .ranker
        .as_ref()
        .filter(|_| ctx.request.use_ranker && ctx.request.only_channel.is_none());
    // A trained model set without a ranker is the gate's decision, not a degradation:
    // only an engine that was never trained falls back here.
    if ranker.is_none()
        && ctx.request.use_ranker
        && ctx.request.only_channel.is_none()
        && ctx.models.manifest.is_none()
    {
        ctx.fallback_reasons
            .push("no trained ranker yet; fused retrieval order used".into());
    }
    let mut scored = Vec::with_capacity(candidates.len());
    let mut late = false;
    // One batched read of every candidate's features (one round trip for a remote store).
    let all_item_features = {
        let ids: Vec<&ItemId> = candidates.iter().map(|c| &c.item_id).collect();
        ctx.features.item_features_many(&ids, now)
    };
    for (candidate, item_features) in candidates.into_iter().zip(all_item_features) {
        let Some(item) = ctx.state.catalog.item(&candidate.item_id).cloned() else {
            continue;
        };
        late |= ranker.is_some() && ctx.request.enforce_deadlines && started.elapsed() > deadline;
        // Features are needed by a ranker on time, or for the impression log.
        let wanted = (ranker.is_some() && !late) || ctx.request.keep_features;
        let features = if wanted {
            featurize(&RankingInput {
                user: &ctx.user,
                item: &item,
                item_features: &item_features,
                candidate: &candidate,
                now,
                context: &ctx.request.context,
            })
        } else {
            Vec::new()
        };
        // Without a ranker (or once it ran late), the fused retrieval score orders the list.
        let score = match ranker {
            Some(model) if !late => model.predict(&features),
            _ => f64::from(candidate.channel_score),
        };
        let kept = if ctx.request.keep_features {
            features
        } else {
            Vec::new()
        };
        let titles = |id: &ItemId| ctx.state.catalog.item(id).and_then(|i| i.title.clone());
        let explanation = explain(&candidate, &item, &item_features, titles, now);
        scored.push((
            Scored {
                candidate,
                item,
                score,
                explanation,
            },
            kept,
        ));
    }
    if late {
        // Scores from two scales cannot share a list: fall back to retrieval order for all.
        for (s, _) in &mut scored {
            s.score = f64::from(s.candidate.channel_score);
        }
        ctx.fallback_reasons
            .push("ranking deadline passed; fused retrieval order used".into());
    }
    scored
}

fn finish(ctx: &Context, scored: Vec<(Scored, Vec<f32>)>) -> Vec<RecItem> {
    let mut features_by_item: HashMap<ItemId, Vec<f32>> = HashMap::new();
    let mut plain = Vec::with_capacity(scored.len());
    for (s, features) in scored {
        if ctx.request.keep_features {
            features_by_item.insert(s.candidate.item_id.clone(), features);
        }
        plain.push(s);
    }
    // Greedy re-ranking picks slot by slot, so asking for alternatives beyond the
    // list leaves the list itself unchanged.
    let ranked = rerank(
        plain,
        &ctx.user,
        &ctx.config.rerank,
        ctx.request.count + ctx.request.alternatives,
        ctx.request.now,
    );
    ranked
        .into_iter()
        .enumerate()
        .map(|(position, r)| RecItem {
            features: features_by_item
                .remove(&r.candidate.item_id)
                .unwrap_or_default(),
            item_id: r.candidate.item_id,
            score: r.score,
            position: position as u32,
            channel: r.candidate.channel,
            channel_rank: r.candidate.channel_rank,
            channel_score: r.candidate.channel_score,
            source_item: r.candidate.source_item,
            explanation: r.explanation,
        })
        .collect()
}

/// Tops up a short list with popular items, then with any available items.
fn fill_with_popular(ctx: &mut Context, items: &mut Vec<RecItem>) {
    let wanted = ctx.request.count;
    let mut seen: HashSet<ItemId> = items.iter().map(|i| i.item_id.clone()).collect();
    seen.extend(ctx.user.purchased.iter().cloned());
    seen.extend(ctx.request.exclude.iter().cloned());
    // Retrieval excluded the user's recent items; the top-up must not bring them back.
    seen.extend(ctx.user.recent.iter().map(|(item, _, _)| item.clone()));
    let now = ctx.request.now;
    let category = ctx.request.category.as_deref();
    let in_request_category =
        |item: &flywheel_core::Item| category.is_none_or(|path| in_category(&item.category, path));
    let mut pool = ctx.features.popular(category, now, wanted * 3 + seen.len());
    // The popular lists are per top-level category: keep the request's sub-category.
    pool.retain(|(id, _)| {
        ctx.state
            .catalog
            .item(id)
            .is_some_and(|item| in_request_category(item))
    });
    if pool.len() < wanted + seen.len() {
        let mut newest: Vec<_> = ctx
            .state
            .catalog
            .items()
            .filter(|i| {
                i.available
                    && i.created_at.is_none_or(|created| created <= now)
                    && in_request_category(i)
            })
            .collect();
        newest.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        pool.extend(
            newest
                .into_iter()
                .take(wanted * 3 + seen.len())
                .map(|i| (i.id.clone(), 0.0)),
        );
    }
    let before = items.len();
    let mut chosen: Vec<std::sync::Arc<flywheel_core::Item>> = Vec::new();
    for (item_id, _) in pool {
        if items.len() + chosen.len() >= wanted {
            break;
        }
        let Some(item) = ctx.state.catalog.item(&item_id) else {
            continue;
        };
        // The pool holds only items of the request's category (see above).
        if !item.available
            || item.created_at.is_some_and(|created| created > now)
            || !seen.insert(item_id)
        {
            continue;
        }
        chosen.push(std::sync::Arc::clone(item));
    }
    // A top-up slot is logged with its features like every other slot, so training can
    // learn from it and the parity check covers it: one batched read for all of them.
    let chosen_features = if ctx.request.keep_features {
        let ids: Vec<&ItemId> = chosen.iter().map(|item| &item.id).collect();
        ctx.features.item_features_many(&ids, now)
    } else {
        Vec::new()
    };
    for (index, item) in chosen.iter().enumerate() {
        let candidate = Candidate {
            item_id: item.id.clone(),
            channel: Channel::Popularity,
            channel_score: 0.0,
            channel_rank: 0,
            source_item: None,
        };
        let features = match chosen_features.get(index) {
            Some(item_features) => featurize(&RankingInput {
                user: &ctx.user,
                item,
                item_features,
                candidate: &candidate,
                now,
                context: &ctx.request.context,
            }),
            None => Vec::new(),
        };
        let category = item.top_category().to_string();
        items.push(RecItem {
            score: 0.0,
            position: items.len() as u32,
            channel: candidate.channel,
            channel_rank: candidate.channel_rank,
            channel_score: candidate.channel_score,
            source_item: None,
            explanation: Explanation::new(flywheel_core::ExplanationKind::PopularIn { category }),
            features,
            item_id: candidate.item_id,
        });
    }
    if items.len() > before {
        ctx.fallback_reasons.push(format!(
            "{} slots filled with popular items",
            items.len() - before
        ));
    }
}
