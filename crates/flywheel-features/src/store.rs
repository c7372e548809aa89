//! The feature store: one `apply_event` that defines every event-driven feature, and
//! read functions that never mutate.

use std::collections::HashMap;

use flywheel_core::{
    BotCounts, BotFilter, BotReason, BotTrack, Event, Impression, ItemFeatures, ItemId, Timestamp,
    UserFeatures, UserId,
};
use serde::{Deserialize, Serialize};

use crate::config::FeatureConfig;
use crate::covis::Neighbors;
use crate::item_state::ItemState;
use crate::keyed::{self, FeatureNames, FeatureTables};
use crate::ranking::{best, rank_directly, RankKind, RankRequest, RankingCache};
use crate::user_state::UserState;

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
    /// The code is [`crate::keyed::apply_event_to`], shared with remote stores.
    pub fn apply_event(&mut self, event: &Event, item_category: Option<&str>) {
        let mut partners = self.take_partners();
        keyed::apply_event_to(self, event, item_category, &mut partners);
        self.put_partners(partners);
    }

    /// The scratch buffer for co-visitation partners (give it back with `put_partners`).
    pub(crate) fn take_partners(&mut self) -> Vec<(u32, f64)> {
        std::mem::take(&mut self.partners)
    }

    pub(crate) fn put_partners(&mut self, partners: Vec<(u32, f64)>) {
        self.partners = partners;
    }

    /// Applies a served list: one exposure per slot for the item's CTR, and the
    /// slots in the user's `shown` (within `shown_window_ms`).
    pub fn apply_impression(&mut self, impression: &Impression) {
        keyed::apply_impression_to(self, impression);
    }

    /// Sets an item's category (e.g. from a catalog upsert); an empty path clears it.
    pub fn set_item_category(&mut self, item: &ItemId, category: &str) {
        let index = self.intern_item(item);
        keyed::set_category_of(self, index, category);
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
        let mut partners = self.take_partners();
        let verdict = keyed::apply_logged_event_to(self, event, &mut partners);
        self.put_partners(partners);
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
        match self.users.get(user) {
            Some(state) => keyed::user_features_from(state, self, &self.config, now),
            None => UserFeatures::default(),
        }
    }

    /// The item's features at `now`: counters decayed to `now` (not before their last
    /// update), smoothed CTR, trending. Unknown items get the priors.
    pub fn item_features(&self, item: &ItemId, now: Timestamp) -> ItemFeatures {
        match self.item_index.get(item) {
            Some(&index) => self.items[index as usize].features(&self.config, now.millis()),
            None => keyed::unknown_item_features(&self.config),
        }
    }

    /// The `k` strongest co-visitation neighbours of `item`, strongest first (ties by id).
    pub fn co_visited(&self, item: &ItemId, k: usize) -> Vec<(ItemId, f32)> {
        match self.item_index.get(item) {
            Some(&index) => keyed::co_visited_from(&self.neighbors[index as usize], self, k),
            None => Vec::new(),
        }
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

impl FeatureTables for FeatureStore {
    fn config(&self) -> &FeatureConfig {
        &self.config
    }

    fn intern_item(&mut self, id: &ItemId) -> u32 {
        FeatureStore::intern_item(self, id)
    }

    fn intern_category(&mut self, top: &str) -> u32 {
        FeatureStore::intern_category(self, top)
    }

    fn category_name(&self, index: u32) -> Option<&str> {
        self.categories.get(index as usize).map(String::as_str)
    }

    fn item_mut(&mut self, index: u32) -> &mut ItemState {
        &mut self.items[index as usize]
    }

    fn neighbors_mut(&mut self, index: u32) -> &mut Neighbors {
        &mut self.neighbors[index as usize]
    }

    fn user_mut(&mut self, id: &UserId) -> &mut UserState {
        self.users.entry(id.clone()).or_default()
    }

    fn bot_track(&mut self, id: &UserId, at_ms: i64) -> keyed::BotState<'_> {
        let rules = &self.config.bots;
        let (track, counts) = self
            .bots
            .track_and_counts(id, BotTrack::fresh(rules, at_ms));
        (track, counts, rules)
    }

    fn forget_user(&mut self, id: &UserId) {
        FeatureStore::forget_user(self, id);
    }

    fn count_applied_event(&mut self, at: i64) {
        self.events_applied += 1;
        self.last_event_time = Some(self.last_event_time.map_or(at, |t| t.max(at)));
    }
}

impl FeatureNames for FeatureStore {
    fn item_id(&self, index: u32) -> Option<&ItemId> {
        self.items.get(index as usize).map(|item| &item.id)
    }

    fn category(&self, index: u32) -> Option<&str> {
        self.categories.get(index as usize).map(String::as_str)
    }
}
