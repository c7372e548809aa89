//! Decisions taken on temporal holdouts inside the training data.
//!
//! A holdout is a cut c and an end e: every user with engagements both before c and
//! in [c, e) (sampled evenly, by id) gets the full pipeline's list as of c, computed
//! from the state as of c with models trained before c, and each list is scored
//! (NDCG@10) against the user's engagements in [c, e) that they had not engaged
//! with before. Two decisions use one:
//! - **fusion weights**, at the fusion cut with e = the row cut: each channel's own
//!   NDCG@10 becomes its weight in the reciprocal-rank fusion, so channels that
//!   predict this catalog's future well are trusted more than the configured quotas
//!   alone would say. Ranker rows start at the row cut, so they never use weights
//!   learned on engagements after them;
//! - **the ranker gate**, at the gate cut with e = the gate cut plus the label
//!   window: a ranker fitted only on rows whose label window closed by the gate cut
//!   must beat the same pipeline serving the fused retrieval order.

use flywheel_core::{Channel, ItemId, Timestamp, UserId};
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
    /// The gate cut: the moment the lists are computed at.
    pub cut: Timestamp,
    /// Rows the judged ranker was fitted on: those whose label window closed by the cut.
    pub fit_rows: usize,
    /// Users compared: active both before the gate cut and in the label window after it.
    pub users: usize,
    /// Mean NDCG@10 of the whole pipeline with the ranker.
    pub ranker_ndcg_at_10: f64,
    /// Mean NDCG@10 of the same pipeline serving the fused retrieval order.
    pub retrieval_ndcg_at_10: f64,
    /// Whether the ranker ships (it must beat the retrieval order); what ships is
    /// refitted on every row whose label window closed.
    pub accepted: bool,
}

/// A user of a holdout: what they had engaged with before the cut, and after it.
struct GateUser {
    id: UserId,
    seen: HashSet<ItemId>,
    later: HashSet<ItemId>,
}

/// The users of a holdout and what scoring them needs.
pub(crate) struct GateSample<'a> {
    users: Vec<GateUser>,
    state: &'a State,
    content: ContentIndex,
    cut: Timestamp,
}

impl<'a> GateSample<'a> {
    /// Picks the holdout users from each user's engagements: engaged before `cut`,
    /// and with something new in `[cut, until)`; `state` must be the derived state
    /// as of `cut`.
    pub(crate) fn new(
        engagements: &HashMap<UserId, Vec<(Timestamp, ItemId)>>,
        state: &'a State,
        cut: Timestamp,
        until: Timestamp,
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
                    .filter(|(t, i)| *t >= cut && *t < until && !seen.contains(i))
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
        GateSample {
            users: kept,
            state,
            content: state.catalog.content_index(),
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
        // Collected in user order and summed in that order: the same inputs give
        // the same mean, bit for bit, however rayon splits the work.
        let scores: Vec<f64> = self
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
                    alternatives: 0,
                    context: Default::default(),
                };
                let list = recommend(self.state, models, Some(&self.content), config, &request);
                let ids: Vec<&str> = list.items.iter().map(|i| i.item_id.as_str()).collect();
                let relevance: HashMap<&str, f64> =
                    user.later.iter().map(|i| (i.as_str(), 1.0)).collect();
                flywheel_eval::ranking::ndcg_at_k(&ids, &relevance, 10)
            })
            .collect();
        scores.iter().sum::<f64>() / self.users.len().max(1) as f64
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

    /// The ranker gate: `models` must hold the row models and their fusion weights,
    /// and `ranker` must have been fitted on `fit_rows` rows whose labels all
    /// precede the cut.
    pub(crate) fn judge_ranker(
        &self,
        config: &EngineConfig,
        models: &ModelSet,
        ranker: Ranker,
        fit_rows: usize,
    ) -> RankerGate {
        let with_ranker = models.with_ranker(Some(ranker));
        let ranker_ndcg_at_10 = self.mean_ndcg(config, &with_ranker, None, true);
        let retrieval_ndcg_at_10 = self.mean_ndcg(config, &with_ranker, None, false);
        let accepted = !self.users.is_empty() && ranker_ndcg_at_10 > retrieval_ndcg_at_10;
        RankerGate {
            cut: self.cut,
            fit_rows,
            users: self.users.len(),
            ranker_ndcg_at_10,
            retrieval_ndcg_at_10,
            accepted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::{Action, Candidate, Event, Item, LogRecord};
    use flywheel_pipeline::{feature_config, retrieve_candidates};
    use flywheel_ranking::{featurize, LogisticRegression, LrParams, RankingInput, TrainingRow};

    const T0: i64 = 1_700_000_000;

    fn event(user: usize, item: usize, minute: i64) -> (Timestamp, LogRecord) {
        let at = Timestamp::from_secs(T0 + 60 * minute);
        let record = LogRecord::Event(Event {
            user_id: UserId::new_unchecked(format!("u{user}")),
            item_id: ItemId::new_unchecked(format!("i{item}")),
            action: Action::Click,
            value: None,
            timestamp: at,
            request_id: None,
            position: None,
            context: Default::default(),
        });
        (at, record)
    }

    /// 24 books, the even ones cheap (price 1) and the odd ones dear (price 100). Before
    /// the cut each of 60 users clicks 4 books of both kinds, so popularity knows no
    /// price; after it, each clicks 3 cheap books they had not met. Only a ranker that
    /// learned "cheap first" can beat the fused retrieval order there.
    struct World {
        state: State,
        engagements: HashMap<UserId, Vec<(Timestamp, ItemId)>>,
        cut: Timestamp,
        until: Timestamp,
    }

    fn cheap(item: usize) -> bool {
        item.is_multiple_of(2)
    }

    fn world() -> World {
        let config = EngineConfig::default();
        let mut state = State::new(feature_config(&config));
        for i in 0..24 {
            let mut item = Item::new(ItemId::new_unchecked(format!("i{i}")), "books");
            item.created_at = Some(Timestamp::from_secs(T0 - 86_400));
            item.price = Some(if cheap(i) { 1.0 } else { 100.0 });
            state.apply(&LogRecord::ItemUpsert(item));
        }
        let mut engagements: HashMap<UserId, Vec<(Timestamp, ItemId)>> = HashMap::new();
        let mut seen: HashMap<usize, HashSet<usize>> = HashMap::new();
        let mut minute = 0;
        for u in 0..60usize {
            for k in 0..4 {
                minute += 1;
                let item = (u + 7 * k) % 24;
                seen.entry(u).or_default().insert(item);
                let (at, record) = event(u, item, minute);
                if let LogRecord::Event(e) = &record {
                    engagements
                        .entry(e.user_id.clone())
                        .or_default()
                        .push((at, e.item_id.clone()));
                }
                state.apply(&record);
            }
        }
        let cut = Timestamp::from_secs(T0 + 60 * (minute + 1));
        for u in 0..60usize {
            let fresh = (0..24)
                .map(|k| (u + k) % 24)
                .filter(|i| cheap(*i) && !seen[&u].contains(i))
                .take(3);
            for item in fresh.collect::<Vec<_>>() {
                minute += 2;
                let (at, _) = event(u, item, minute);
                engagements
                    .entry(UserId::new_unchecked(format!("u{u}")))
                    .or_default()
                    .push((at, ItemId::new_unchecked(format!("i{item}"))));
            }
        }
        World {
            state,
            engagements,
            cut,
            until: Timestamp::from_secs(T0 + 60 * (minute + 1)),
        }
    }

    /// Per user, the featurised candidates at the cut in fused order, each with whether
    /// the item is cheap.
    fn candidates_at_cut(world: &World, config: &EngineConfig) -> Vec<Vec<(Vec<f32>, bool)>> {
        let models = ModelSet::default();
        (0..60usize)
            .map(|u| {
                let user_id = UserId::new_unchecked(format!("u{u}"));
                let request = RecRequest {
                    user_id: user_id.clone(),
                    count: 50,
                    category: None,
                    now: world.cut,
                    keep_features: false,
                    only_channel: None,
                    exclude: HashSet::new(),
                    use_ranker: false,
                    enforce_deadlines: false,
                    alternatives: 0,
                    context: Default::default(),
                };
                let user = world.state.features.user_features(&user_id, world.cut);
                let candidates: Vec<Candidate> =
                    retrieve_candidates(&world.state, &models, None, config, &request);
                candidates
                    .iter()
                    .map(|candidate| {
                        let item = world.state.catalog.item(&candidate.item_id).unwrap();
                        let item_features = world.state.features.item_features(&item.id, world.cut);
                        let features = featurize(&RankingInput {
                            user: &user,
                            item,
                            item_features: &item_features,
                            candidate,
                            now: world.cut,
                            context: &flywheel_core::RequestContext::default(),
                        });
                        (features, item.price == Some(1.0))
                    })
                    .collect()
            })
            .collect()
    }

    /// A ranker fitted on the candidates at the cut, labelled by whether the item is
    /// cheap (`agree`), or by its opposite.
    fn ranker(world: &World, config: &EngineConfig, agree: bool) -> Ranker {
        let rows: Vec<TrainingRow> = candidates_at_cut(world, config)
            .into_iter()
            .flatten()
            .map(|(features, cheap)| TrainingRow {
                features,
                label: f32::from(u8::from(cheap == agree)),
                weight: 1.0,
            })
            .collect();
        Ranker::Logistic(LogisticRegression::train(&rows, &LrParams::default()).unwrap())
    }

    #[test]
    fn the_ranker_gate_ships_a_ranker_that_beats_the_fused_order_and_not_one_that_loses() {
        let world = world();
        let config = EngineConfig::default();
        let sample = GateSample::new(&world.engagements, &world.state, world.cut, world.until);
        assert_eq!(sample.len(), 60);
        let models = ModelSet::default();
        let good = sample.judge_ranker(&config, &models, ranker(&world, &config, true), 1);
        assert!(
            good.accepted && good.ranker_ndcg_at_10 > good.retrieval_ndcg_at_10,
            "{good:?}"
        );
        let bad = sample.judge_ranker(&config, &models, ranker(&world, &config, false), 1);
        assert!(
            !bad.accepted && bad.ranker_ndcg_at_10 < bad.retrieval_ndcg_at_10,
            "{bad:?}"
        );
        // The fused order is the same on both sides of both comparisons.
        assert_eq!(good.retrieval_ndcg_at_10, bad.retrieval_ndcg_at_10);
    }

    #[test]
    fn a_gbdt_that_starts_from_the_fused_score_and_learns_nothing_ranks_like_it() {
        let world = world();
        let config = EngineConfig::default();
        let sample = GateSample::new(&world.engagements, &world.state, world.cut, world.until);
        let models = ModelSet::default();
        let groups = candidates_at_cut(&world, &config);
        let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
        let rows: Vec<TrainingRow> = groups
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(index, (features, _))| TrainingRow {
                features,
                label: f32::from(u8::from(index % 7 == 3)),
                weight: 1.0,
            })
            .collect();
        let params = flywheel_ranking::GbdtParams {
            trees: 1,
            learning_rate: 1e-6,
            prior_feature: "channel_score_squashed".into(),
            ..Default::default()
        };
        let model = flywheel_ranking::GbdtModel::train(
            flywheel_ranking::FeatureSchema::current(),
            vec![],
            flywheel_ranking::gbdt::GroupedRows {
                rows: &rows,
                group_sizes: &sizes,
            },
            None,
            &params,
        )
        .unwrap();
        let verdict = sample.judge_ranker(&config, &models, Ranker::Gbdt(model), rows.len());
        assert_eq!(
            verdict.ranker_ndcg_at_10, verdict.retrieval_ndcg_at_10,
            "{verdict:?}"
        );
    }

    #[test]
    fn the_ranker_gate_needs_users_to_say_yes() {
        let world = world();
        let config = EngineConfig::default();
        let after_everything = world.until.plus_millis(1);
        let empty = GateSample::new(
            &world.engagements,
            &world.state,
            after_everything,
            after_everything.plus_millis(1),
        );
        assert_eq!(empty.len(), 0);
        let verdict = empty.judge_ranker(
            &config,
            &ModelSet::default(),
            ranker(&world, &config, true),
            1,
        );
        assert!(!verdict.accepted, "{verdict:?}");
    }
}
