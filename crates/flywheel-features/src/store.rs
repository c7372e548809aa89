//! The feature store: one `apply_event` that defines every event-driven feature, and
//! read functions that never mutate.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use flywheel_core::{
    Action, BotCounts, BotFilter, BotReason, Event, Impression, ItemFeatures, ItemId, Timestamp,
    UserFeatures, UserId,
};
use serde::{Deserialize, Serialize};

use crate::config::FeatureConfig;
use crate::covis::Neighbors;
use crate::item_state::{smoothed_ctr, trending_score, ItemState};
use crate::ranking::{best, rank_directly, RankKind, RankRequest, RankingCache};
use crate::user_state::{RecentAction, UserState};

/// Online features of users and items, updated one event at a time. The same
/// [`FeatureStore::apply_event`] serves the live consumer and offline replay, so a
/// store that has applied exactly the log records before `t` holds the features
/// "as of" `t`. Serialise it (JSON, bincode…) to checkpoint it with the log offset:
/// its maps are written in key order, so two equal stores give equal bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureStore {
    config: FeatureConfig,
    items: Vec<ItemState>,
    /// Co-visitation lists, parallel to `items`.
    neighbors: Vec<Neighbors>,
    #[serde(with = "flywheel_core::canonical::sorted_map")]
    item_index: HashMap<ItemId, u32>,
    categories: Vec<String>,
    #[serde(with = "flywheel_core::canonical::sorted_map")]
    category_index: HashMap<String, u32>,
    #[serde(with = "flywheel_core::canonical::sorted_map")]
    users: HashMap<UserId, UserState>,
    events_applied: u64,
    /// Latest event time (ms) applied.
    last_event_time: Option<i64>,
    /// The bot rules' state (see [`flywheel_core::bots`]).
    #[serde(default)]
    bots: BotFilter,
    #[serde(skip)]
    ranking: RankingCache,
    /// Scratch buffer for co-visitation partners (avoids an allocation per event).
    #[serde(skip)]
    partners: Vec<(u32, f64)>,
}

/// The top-level category of a category path: `books` for `books/scifi`; `None` if empty.
pub fn top_level_category(category: &str) -> Option<&str> {
    let top = category
        .trim_matches('/')
        .split('/')
        .next()
        .unwrap_or("")
        .trim();
    (!top.is_empty()).then_some(top)
}

impl FeatureStore {
    /// An empty store. Any config is accepted (see [`FeatureConfig::validate`]).
    pub fn new(config: FeatureConfig) -> Self {
        FeatureStore {
            config,
            items: Vec::new(),
            neighbors: Vec::new(),
            item_index: HashMap::new(),
            categories: Vec::new(),
            category_index: HashMap::new(),
            users: HashMap::new(),
            events_applied: 0,
            last_event_time: None,
            bots: BotFilter::new(),
            ranking: RankingCache::default(),
            partners: Vec::new(),
        }
    }

    /// An empty store after [`FeatureConfig::validate`]: use it for outside config.
    pub fn try_new(config: FeatureConfig) -> crate::Result<Self> {
        config.validate()?;
        Ok(Self::new(config))
    }

    /// The configuration the store was built with.
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// Applies one event: THE definition of every event-driven feature.
    ///
    /// `item_category` is the item's catalog category (a path is reduced to its top
    /// level); `None` keeps the category the store already knows. Updates, in order:
    /// the item's decayed counters; the user's co-visitation partners (read before the
    /// event is remembered), recent actions, category affinity (implicit weight of the
    /// action, credited to the item's category at that moment), purchases, counts and
    /// last-seen time. Events may arrive out of order: counters add their decayed
    /// contribution exactly, recent actions are inserted at their place in time, and a
    /// late event co-visits the user's remembered events at or before its time.
    pub fn apply_event(&mut self, event: &Event, item_category: Option<&str>) {
        let at = event.timestamp.millis();
        let item = self.intern_item(&event.item_id);
        if let Some(category) = item_category {
            self.set_category_of(item, category);
        }
        let item_state = &mut self.items[item as usize];
        item_state.count_event(&event.action, at);
        let category = item_state.category;

        if !self.users.contains_key(&event.user_id) {
            self.users
                .insert(event.user_id.clone(), UserState::default());
        }
        let user = self
            .users
            .get_mut(&event.user_id)
            .expect("inserted just above");
        let config = &self.config;
        user.session_partners(
            item,
            at,
            config.session_gap_ms,
            config.covis_window,
            &mut self.partners,
        );
        user.remember(
            RecentAction {
                item,
                action: event.action.clone(),
                at,
            },
            config.recent_actions,
        );
        let weight = f64::from(event.action.implicit_weight());
        if let (Some(category), true) = (category, weight > 0.0) {
            user.add_affinity(category, weight);
        }
        if event.action == Action::Purchase {
            user.purchased.insert(item);
        }
        user.event_count += 1;
        user.last_seen = Some(user.last_seen.map_or(at, |t| t.max(at)));

        self.add_co_visits(item, weight);
        self.events_applied += 1;
        self.last_event_time = Some(self.last_event_time.map_or(at, |t| t.max(at)));
    }

    /// Pairs `item` with the partners found by `apply_event`, symmetrically, with
    /// weight `sqrt(w_event · w_partner)` of implicit weights.
    fn add_co_visits(&mut self, item: u32, weight: f64) {
        let max_neighbors = self.config.covis_max_neighbors;
        if max_neighbors == 0 {
            return;
        }
        for &(partner, partner_weight) in &self.partners {
            let pair_weight = (weight * partner_weight).sqrt();
            if pair_weight > 0.0 {
                self.neighbors[item as usize].add(partner, pair_weight, max_neighbors);
                self.neighbors[partner as usize].add(item, pair_weight, max_neighbors);
            }
        }
    }

    /// Applies a served list: one exposure per slot for the item's CTR, and the
    /// slots in the user's `shown` (within `shown_window_ms`).
    pub fn apply_impression(&mut self, impression: &Impression) {
        let at = impression.timestamp.millis();
        let slots: Vec<u32> = impression
            .slots
            .iter()
            .map(|slot| self.intern_item(&slot.item_id))
            .collect();
        for &item in &slots {
            self.items[item as usize].count_impression(at);
        }
        if !self.users.contains_key(&impression.user_id) {
            self.users
                .insert(impression.user_id.clone(), UserState::default());
        }
        let user = self
            .users
            .get_mut(&impression.user_id)
            .expect("inserted just above");
        for item in slots {
            user.record_shown(
                at,
                item,
                self.config.shown_window_ms,
                self.config.shown_max_slots,
            );
        }
    }

    /// Sets an item's category (e.g. from a catalog upsert); an empty path clears it.
    pub fn set_item_category(&mut self, item: &ItemId, category: &str) {
        let index = self.intern_item(item);
        self.set_category_of(index, category);
    }

    /// Erases everything the store keeps per user: recent actions, affinity,
    /// purchases, shown slots, counts. Item counters and co-visitation are anonymous
    /// aggregates and keep the user's past contributions; erasing those too means
    /// rebuilding the store by replaying the log after the user's records are deleted.
    pub fn forget_user(&mut self, user: &UserId) {
        self.users.remove(user);
        self.bots.forget_user(user);
    }

    /// Applies an event from the log unless the bot rules drop it; returns why it was
    /// dropped. [`FeatureStore::apply_event`] applies without judging.
    pub fn apply_logged_event(&mut self, event: &Event) -> Option<BotReason> {
        let verdict = self.bots.judge(event, &self.config.bots);
        if verdict.is_none() {
            self.apply_event(event, None);
        }
        verdict
    }

    /// What the bot rules dropped so far.
    pub fn bot_counts(&self) -> &BotCounts {
        self.bots.counts()
    }

    /// Whether the store keeps anything for `user` (an event or a served list).
    pub fn knows_user(&self, user: &UserId) -> bool {
        self.users.contains_key(user)
    }

    /// The users the store keeps anything for, in no particular order.
    pub fn user_ids(&self) -> impl Iterator<Item = &UserId> {
        self.users.keys()
    }

    /// The user's features at `now`. Unknown users get empty features.
    pub fn user_features(&self, user: &UserId, now: Timestamp) -> UserFeatures {
        let Some(state) = self.users.get(user) else {
            return UserFeatures::default();
        };
        let total: f64 = state.affinity.iter().map(|(_, w)| w).sum();
        let category_affinity = if total > 0.0 {
            state
                .affinity
                .iter()
                .map(|(c, w)| (self.categories[*c as usize].clone(), w / total))
                .collect()
        } else {
            BTreeMap::new()
        };
        let mut shown: BTreeMap<ItemId, u32> = BTreeMap::new();
        for item in state.shown_in_window(now.millis(), self.config.shown_window_ms) {
            *shown.entry(self.item_id(item).clone()).or_default() += 1;
        }
        UserFeatures {
            recent: state
                .recent
                .iter()
                .map(|r| {
                    (
                        self.item_id(r.item).clone(),
                        r.action.clone(),
                        Timestamp(r.at),
                    )
                })
                .collect(),
            category_affinity,
            event_count: state.event_count,
            purchased: state
                .purchased
                .iter()
                .map(|i| self.item_id(*i).clone())
                .collect::<BTreeSet<_>>(),
            shown,
            last_seen: state.last_seen.map(Timestamp),
        }
    }

    /// The item's features at `now`: counters decayed to `now` (not before their last
    /// update), smoothed CTR, trending. Unknown items get the priors.
    pub fn item_features(&self, item: &ItemId, now: Timestamp) -> ItemFeatures {
        match self.item_index.get(item) {
            Some(&index) => self.items[index as usize].features(&self.config, now.millis()),
            None => ItemFeatures {
                ctr: smoothed_ctr(&self.config, 0.0, 0.0),
                trending: trending_score(&self.config, 0.0, 0.0),
                ..ItemFeatures::default()
            },
        }
    }

    /// The `k` strongest co-visitation neighbours of `item`, strongest first (ties by id).
    pub fn co_visited(&self, item: &ItemId, k: usize) -> Vec<(ItemId, f32)> {
        let Some(&index) = self.item_index.get(item) else {
            return Vec::new();
        };
        let scored = self.neighbors[index as usize]
            .iter()
            .map(|(j, w)| (w, j))
            .collect();
        best(scored, k, &self.items)
            .into_iter()
            .map(|(w, j)| (self.item_id(j).clone(), w as f32))
            .collect()
    }

    /// The `k` items with the most decayed engagement (implicit weights, half-life
    /// `popular_horizon`) at `now`, globally or in one top-level category; see the
    /// `ranking` module for the cache and its staleness bound.
    pub fn popular(&self, category: Option<&str>, now: Timestamp, k: usize) -> Vec<(ItemId, f32)> {
        self.ranked(RankKind::Popular, category, now, k)
    }

    /// The `k` items with the highest positive trending score at `now`.
    pub fn trending(&self, category: Option<&str>, now: Timestamp, k: usize) -> Vec<(ItemId, f32)> {
        self.ranked(RankKind::Trending, category, now, k)
    }

    fn ranked(
        &self,
        kind: RankKind,
        category: Option<&str>,
        now: Timestamp,
        k: usize,
    ) -> Vec<(ItemId, f32)> {
        let category = match category {
            None => None,
            Some(path) => match top_level_category(path).and_then(|c| self.category_index.get(c)) {
                Some(&index) => Some(index),
                None => return Vec::new(),
            },
        };
        let request = RankRequest {
            items: &self.items,
            config: &self.config,
            now: now.millis(),
            events_applied: self.events_applied,
        };
        let candidates = if k <= self.config.ranking_cache_depth {
            self.ranking
                .candidates(&request, kind, category, k.saturating_mul(2))
        } else {
            rank_directly(&request, kind, category, k)
        };
        let scored = candidates
            .into_iter()
            .map(|i| {
                (
                    kind.score(&self.items[i as usize], &self.config, now.millis()),
                    i,
                )
            })
            .filter(|(score, _)| *score > 0.0)
            .collect();
        best(scored, k, &self.items)
            .into_iter()
            .map(|(score, i)| (self.item_id(i).clone(), score as f32))
            .collect()
    }

    /// The latest event timestamp applied (freshness); impressions do not count.
    pub fn last_event_time(&self) -> Option<Timestamp> {
        self.last_event_time.map(Timestamp)
    }

    /// How many events were applied.
    pub fn events_applied(&self) -> u64 {
        self.events_applied
    }

    /// How many items the store knows.
    pub fn item_count(&self) -> usize {
        self.items.len()
    }

    /// How many users the store knows.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    fn item_id(&self, index: u32) -> &ItemId {
        &self.items[index as usize].id
    }

    fn intern_item(&mut self, id: &ItemId) -> u32 {
        if let Some(&index) = self.item_index.get(id) {
            return index;
        }
        let index = u32::try_from(self.items.len()).expect("fewer than 4 billion items");
        self.items.push(ItemState::new(id.clone()));
        self.neighbors.push(Neighbors::default());
        self.item_index.insert(id.clone(), index);
        index
    }

    fn set_category_of(&mut self, item: u32, category: &str) {
        let top = top_level_category(category);
        let current = self.items[item as usize].category;
        if current.map(|c| self.categories[c as usize].as_str()) == top {
            return; // the usual case: the category did not change
        }
        let category = top.map(|top| self.intern_category(top));
        self.items[item as usize].category = category;
    }

    fn intern_category(&mut self, top: &str) -> u32 {
        if let Some(&index) = self.category_index.get(top) {
            return index;
        }
        let index = u32::try_from(self.categories.len()).expect("fewer than 4 billion categories");
        self.categories.push(top.to_string());
        self.category_index.insert(top.to_string(), index);
        index
    }
}
