//! Decisions taken on a temporal holdout inside the training data.
//!
//! At the row cut (the moment before the latest 20% of engagements), every user with
//! engagements both before and after it is a gate user. For them the full pipeline
//! recommends as of the cut, with the models trained before it, and each list is
//! scored (NDCG@10) against the user's later engagements. Two decisions use it:
//! - **fusion weights**: each channel's own NDCG@10 there becomes its weight in the
//!   reciprocal-rank fusion, so channels that predict this catalog's future well are
//!   trusted more than the configured quotas alone would say;
//! - **the ranker gate**: the ranker ships only if the pipeline with it beats the
//!   same pipeline serving the fused retrieval order.

use flywheel_core::{Channel, Item, ItemId, Timestamp, UserId};
use flywheel_ranking::Ranker;
use flywheel_retrieval::ContentIndex;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

use flywheel_pipeline::EngineConfig;
use flywheel_pipeline::ModelSet;
use flywheel_pipeline::State;
use flywheel_pipeline::{recommend, RecRequest};

/// Users the gate scores at most (evenly sampled).
const GATE_USERS: usize = 500;

/// The held-out comparison that decides whether the ranker ships.
#[derive(Debug, Clone, Serialize)]
pub struct RankerGate {
    /// Users compared: active both before and after the row cut.
    pub users: usize,
    /// Mean NDCG@10 of the whole pipeline with the ranker.
    pub ranker_ndcg_at_10: f64,
    /// Mean NDCG@10 of the same pipeline serving the fused retrieval order.
    pub retrieval_ndcg_at_10: f64,
    /// Whether the ranker was shipped (it must beat the retrieval order).
    pub accepted: bool,
}

/// A user of the gate: what they had engaged with before the cut, and after it.
struct GateUser {
    id: UserId,
    seen: HashSet<ItemId>,
    later: HashSet<ItemId>,
}

/// The gate users and what scoring them needs.
pub(crate) struct GateSample<'a> {
    users: Vec<GateUser>,
    state: &'a State,
    content: ContentIndex,
    cut: Timestamp,
}

impl<'a> GateSample<'a> {
    /// Picks the gate users from each user's engagements (in time order); `state`
    /// must be the derived state as of `cut`.
    pub(crate) fn new(
        engagements: &HashMap<UserId, Vec<(Timestamp, ItemId)>>,
        state: &'a State,
        cut: Timestamp,
    ) -> Self {
        let mut users: Vec<GateUser> = engagements
            .iter()
            .filter_map(|(id, list)| {
                let seen: HashSet<ItemId> = list
                    .iter()
                    .filter(|(t, _)| *t < cut)
                    .map(|(_, i)| i.clone())
                    .collect();
                let later: HashSet<ItemId> = list
                    .iter()
                    .filter(|(t, i)| *t >= cut && !seen.contains(i))
                    .map(|(_, i)| i.clone())
                    .collect();
                (!seen.is_empty() && !later.is_empty()).then_some(GateUser {
                    id: id.clone(),
                    seen,
                    later,
                })
            })
            .collect();
        users.sort_by(|a, b| a.id.cmp(&b.id));
        let step = (users.len() as f64 / GATE_USERS as f64).max(1.0);
        let picked: Vec<usize> = (0..GATE_USERS.min(users.len()))
            .map(|i| (i as f64 * step) as usize)
            .collect();
        let mut kept = Vec::with_capacity(picked.len());
        for (index, user) in users.into_iter().enumerate() {
            if picked.binary_search(&index).is_ok() {
                kept.push(user);
            }
        }
        let items: Vec<Item> = state.catalog.items().map(|i| Item::clone(i)).collect();
        GateSample {
            users: kept,
            state,
            content: ContentIndex::build(&items),
            cut,
        }
    }

    /// Number of gate users.
    pub(crate) fn len(&self) -> usize {
        self.users.len()
    }

    /// Mean NDCG@10 of one system (a channel alone, or the pipeline) over the gate users.
    fn mean_ndcg(
        &self,
        config: &EngineConfig,
        models: &ModelSet,
        only_channel: Option<Channel>,
        use_ranker: bool,
    ) -> f64 {
        let total: f64 = self
            .users
            .par_iter()
            .map(|user| {
                let request = RecRequest {
                    user_id: user.id.clone(),
                    count: 10,
                    category: None,
                    now: self.cut,
                    keep_features: false,
                    only_channel,
                    exclude: user.seen.clone(),
                    use_ranker,
                    enforce_deadlines: false,
                };
                let list = recommend(self.state, models, Some(&self.content), config, &request);
                let ids: Vec<&str> = list.items.iter().map(|i| i.item_id.as_str()).collect();
                let relevance: HashMap<&str, f64> =
                    user.later.iter().map(|i| (i.as_str(), 1.0)).collect();
                flywheel_eval::ranking::ndcg_at_k(&ids, &relevance, 10)
            })
            .sum();
        total / self.users.len().max(1) as f64
    }

    /// Each configured channel's own NDCG@10 on the gate users: the fusion weights.
    /// Empty (meaning "use the quota shares") when no channel scores above zero.
    pub(crate) fn channel_weights(
        &self,
        config: &EngineConfig,
        models: &ModelSet,
    ) -> BTreeMap<Channel, f64> {
        let weights: BTreeMap<Channel, f64> = config
            .retrieval
            .quotas
            .iter()
            .filter(|(_, share)| **share > 0.0)
            .filter_map(|(name, _)| Channel::parse(name))
            .map(|channel| {
                (
                    channel,
                    self.mean_ndcg(config, models, Some(channel), false),
                )
            })
            .collect();
        if weights.values().all(|w| *w <= 0.0) {
            return BTreeMap::new();
        }
        weights
    }

    /// The ranker gate: `models` must hold the row models and their fusion weights.
    pub(crate) fn judge_ranker(
        &self,
        config: &EngineConfig,
        models: &ModelSet,
        ranker: Ranker,
    ) -> (Option<Ranker>, RankerGate) {
        let with_ranker = models.with_ranker(Some(ranker));
        let ranker_ndcg_at_10 = self.mean_ndcg(config, &with_ranker, None, true);
        let retrieval_ndcg_at_10 = self.mean_ndcg(config, &with_ranker, None, false);
        let accepted = !self.users.is_empty() && ranker_ndcg_at_10 > retrieval_ndcg_at_10;
        let verdict = RankerGate {
            users: self.users.len(),
            ranker_ndcg_at_10,
            retrieval_ndcg_at_10,
            accepted,
        };
        (with_ranker.ranker.filter(|_| accepted), verdict)
    }
}
