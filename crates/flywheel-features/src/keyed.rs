//! The store cut into keyed parts: one [`UserState`] per user, one [`ItemState`] and
//! one [`Neighbors`] list per item, and the item and category tables that intern ids
//! to `u32` indices. The update code ([`apply_record_to`]) and the read code
//! ([`user_features_from`], [`co_visited_from`], [`ranked_among`]) run over these
//! parts through two traits, so [`crate::FeatureStore`] (all parts in memory) and a
//! store shared by replicas (the parts serialised per key in Redis, loaded for the
//! record at hand) run *the same code*: parity by construction.

use std::collections::{BTreeMap, BTreeSet};

use flywheel_core::{
    Action, BotCounts, BotReason, BotRules, BotTrack, Event, Impression, ItemFeatures, ItemId,
    LogRecord, Timestamp, UserFeatures, UserId,
};

use crate::config::FeatureConfig;
use crate::decay::{CounterKind, Horizon};
use crate::item_state::{smoothed_ctr, trending_score};
use crate::ranking::{best_by, RankKind};
use crate::store::top_level_category;
use crate::user_state::RecentAction;

pub use crate::covis::Neighbors;
pub use crate::item_state::ItemState;
pub use crate::user_state::UserState;

/// Where the update code finds the parts a record touches. Every method is
/// infallible: a remote store loads the parts it is asked for and remembers a
/// failure itself (the record's result is then discarded, never written).
pub trait FeatureTables {
    /// The store's configuration.
    fn config(&self) -> &FeatureConfig;
    /// The index of an item id, interned when new.
    fn intern_item(&mut self, id: &ItemId) -> u32;
    /// The index of a top-level category, interned when new.
    fn intern_category(&mut self, top: &str) -> u32;
    /// The name of a category index.
    fn category_name(&self, index: u32) -> Option<&str>;
    /// The state of an interned item.
    fn item_mut(&mut self, index: u32) -> &mut ItemState;
    /// The co-visitation list of an interned item.
    fn neighbors_mut(&mut self, index: u32) -> &mut Neighbors;
    /// The state of a user, created empty when unknown.
    fn user_mut(&mut self, id: &UserId) -> &mut UserState;
    /// The bot rules' track of a user (a fresh one, stored, when the user has none: see
    /// [`BotTrack::fresh`], `at_ms` is the event's time), the store's bot counts (both
    /// updated by [`flywheel_core::judge_event`]) and the rules (`config().bots`).
    fn bot_track(&mut self, id: &UserId, at_ms: i64) -> BotState<'_>;
    /// Removes everything kept for a user, their bot track included.
    fn forget_user(&mut self, id: &UserId);
    /// Counts one applied event at `at` (ms): events applied, latest event time.
    fn count_applied_event(&mut self, at: i64);
}

/// What [`FeatureTables::bot_track`] hands out: one user's track, the counts, the rules.
pub type BotState<'a> = (&'a mut BotTrack, &'a mut BotCounts, &'a BotRules);

/// Reads names back from indices.
pub trait FeatureNames {
    /// The id of an item index.
    fn item_id(&self, index: u32) -> Option<&ItemId>;
    /// The name of a category index.
    fn category(&self, index: u32) -> Option<&str>;
}

/// Applies one log record: events (unless the bot rules drop them) and impressions as
/// such, item upserts set the item's category, user deletions forget the user; other
/// records carry no feature. `partners` is scratch space (kept by the caller to avoid
/// an allocation per event). THE write path of every store, in process or remote.
pub fn apply_record_to<T: FeatureTables + ?Sized>(
    tables: &mut T,
    record: &LogRecord,
    partners: &mut Vec<(u32, f64)>,
) {
    match record {
        LogRecord::Event(event) => {
            apply_logged_event_to(tables, event, partners);
        }
        LogRecord::Impression(impression) => apply_impression_to(tables, impression),
        LogRecord::ItemUpsert(item) => {
            let index = tables.intern_item(&item.id);
            set_category_of(tables, index, &item.category);
        }
        LogRecord::UserDelete { id, .. } => tables.forget_user(id),
        // Shadow lists were never shown: no feature may read them.
        LogRecord::ItemDelete { .. }
        | LogRecord::UserUpsert(_)
        | LogRecord::ShadowImpression(_)
        | LogRecord::ExperimentStart { .. }
        | LogRecord::ExperimentRamp { .. }
        | LogRecord::ExperimentStop { .. }
        | LogRecord::UserErase { .. }
        | LogRecord::Erased { .. } => {}
    }
}

/// Judges an event from the log under the store's bot rules and applies it unless they
/// drop it; returns why it was dropped.
pub fn apply_logged_event_to<T: FeatureTables + ?Sized>(
    tables: &mut T,
    event: &Event,
    partners: &mut Vec<(u32, f64)>,
) -> Option<BotReason> {
    let verdict = judge_in(tables, event);
    if verdict.is_none() {
        apply_event_to(tables, event, None, partners);
    }
    verdict
}

/// The bot rules' verdict on `event`, with the user's track and the counts of `tables`.
fn judge_in<T: FeatureTables + ?Sized>(tables: &mut T, event: &Event) -> Option<BotReason> {
    if !tables.config().bots.enabled {
        return None;
    }
    let (track, counts, rules) = tables.bot_track(&event.user_id, event.timestamp.millis());
    flywheel_core::judge_event(track, counts, event, rules)
}

/// THE definition of every event-driven feature; see [`crate::FeatureStore::apply_event`].
pub fn apply_event_to<T: FeatureTables + ?Sized>(
    tables: &mut T,
    event: &Event,
    item_category: Option<&str>,
    partners: &mut Vec<(u32, f64)>,
) {
    let at = event.timestamp.millis();
    let item = tables.intern_item(&event.item_id);
    if let Some(category) = item_category {
        set_category_of(tables, item, category);
    }
    let item_state = tables.item_mut(item);
    item_state.count_event(&event.action, at);
    let category = item_state.category;

    let config = tables.config();
    let (gap, window, capacity) = (
        config.session_gap_ms,
        config.covis_window,
        config.recent_actions,
    );
    let max_neighbors = config.covis_max_neighbors;
    let user = tables.user_mut(&event.user_id);
    user.session_partners(item, at, gap, window, partners);
    user.remember(
        RecentAction {
            item,
            action: event.action.clone(),
            at,
        },
        capacity,
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

    add_co_visits(tables, item, weight, partners, max_neighbors);
    tables.count_applied_event(at);
}

/// Pairs `item` with the partners found by `apply_event_to`, symmetrically, with
/// weight `sqrt(w_event · w_partner)` of implicit weights.
fn add_co_visits<T: FeatureTables + ?Sized>(
    tables: &mut T,
    item: u32,
    weight: f64,
    partners: &[(u32, f64)],
    max_neighbors: usize,
) {
    if max_neighbors == 0 {
        return;
    }
    for &(partner, partner_weight) in partners {
        let pair_weight = (weight * partner_weight).sqrt();
        if pair_weight > 0.0 {
            tables
                .neighbors_mut(item)
                .add(partner, pair_weight, max_neighbors);
            tables
                .neighbors_mut(partner)
                .add(item, pair_weight, max_neighbors);
        }
    }
}

/// Applies a served list: one exposure per slot for the item's CTR, and the slots in
/// the user's `shown` (within `shown_window_ms`).
pub fn apply_impression_to<T: FeatureTables + ?Sized>(tables: &mut T, impression: &Impression) {
    let at = impression.timestamp.millis();
    let slots: Vec<u32> = impression
        .slots
        .iter()
        .map(|slot| tables.intern_item(&slot.item_id))
        .collect();
    for &item in &slots {
        tables.item_mut(item).count_impression(at);
    }
    let (window, max_slots) = (
        tables.config().shown_window_ms,
        tables.config().shown_max_slots,
    );
    let user = tables.user_mut(&impression.user_id);
    for item in slots {
        user.record_shown(at, item, window, max_slots);
    }
}

/// Sets an interned item's category to the top level of `category`; an empty path
/// clears it.
pub fn set_category_of<T: FeatureTables + ?Sized>(tables: &mut T, item: u32, category: &str) {
    let top = top_level_category(category);
    let current = tables.item_mut(item).category;
    if current.and_then(|c| tables.category_name(c)) == top {
        return; // the usual case: the category did not change
    }
    let category = top.map(|top| tables.intern_category(top));
    tables.item_mut(item).category = category;
}

/// A user's features at `now` from their state (an index without a name is left out;
/// the in-process store has a name for every index).
pub fn user_features_from(
    state: &UserState,
    names: &dyn FeatureNames,
    config: &FeatureConfig,
    now: Timestamp,
) -> UserFeatures {
    let total: f64 = state.affinity.iter().map(|(_, w)| w).sum();
    let category_affinity = if total > 0.0 {
        state
            .affinity
            .iter()
            .filter_map(|(c, w)| Some((names.category(*c)?.to_string(), w / total)))
            .collect()
    } else {
        BTreeMap::new()
    };
    let mut shown: BTreeMap<ItemId, u32> = BTreeMap::new();
    for item in state.shown_in_window(now.millis(), config.shown_window_ms) {
        if let Some(id) = names.item_id(item) {
            *shown.entry(id.clone()).or_default() += 1;
        }
    }
    UserFeatures {
        recent: state
            .recent
            .iter()
            .filter_map(|r| {
                Some((
                    names.item_id(r.item)?.clone(),
                    r.action.clone(),
                    Timestamp(r.at),
                ))
            })
            .collect(),
        category_affinity,
        event_count: state.event_count,
        purchased: state
            .purchased
            .iter()
            .filter_map(|i| names.item_id(*i).cloned())
            .collect::<BTreeSet<_>>(),
        shown,
        last_seen: state.last_seen.map(Timestamp),
    }
}

/// The features of an item the store does not know: the priors.
pub fn unknown_item_features(config: &FeatureConfig) -> ItemFeatures {
    ItemFeatures {
        ctr: smoothed_ctr(config, 0.0, 0.0),
        trending: trending_score(config, 0.0, 0.0),
        ..ItemFeatures::default()
    }
}

/// The `k` strongest co-visitation neighbours in `neighbors`, strongest first (ties by id).
pub fn co_visited_from(
    neighbors: &Neighbors,
    names: &dyn FeatureNames,
    k: usize,
) -> Vec<(ItemId, f32)> {
    let scored = neighbors.iter().map(|(j, w)| (w, j)).collect();
    best_by(scored, k, |j| names.item_id(j))
        .into_iter()
        .filter_map(|(w, j)| Some((names.item_id(j)?.clone(), w as f32)))
        .collect()
}

/// Which ranked list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RankedList {
    /// Decayed engagement at `popular_horizon`.
    Popular,
    /// The trending score.
    Trending,
}

impl RankedList {
    fn kind(self) -> RankKind {
        match self {
            RankedList::Popular => RankKind::Popular,
            RankedList::Trending => RankKind::Trending,
        }
    }

    /// The key that orders candidates of this list at any later `now`: for popular, the
    /// engagement at `popular_horizon` (exact); for trending, the hourly engagement (a
    /// high trending score needs a high hourly engagement, so its best by this key are
    /// the candidates). `None`: the item is no candidate.
    pub fn ordering_key(self, item: &ItemState, config: &FeatureConfig) -> Option<f64> {
        let horizon = match self {
            RankedList::Popular => config.popular_horizon,
            RankedList::Trending => Horizon::Hour,
        };
        item.counters.ordering_key(CounterKind::Engagement, horizon)
    }
}

/// The `k` best of `candidates` on a list at `now`, as the in-process store answers it:
/// exact scores at `now`, positive only, score descending then id.
pub fn ranked_among(
    list: RankedList,
    candidates: &[ItemState],
    config: &FeatureConfig,
    now: Timestamp,
    k: usize,
) -> Vec<(ItemId, f32)> {
    let kind = list.kind();
    let scored = candidates
        .iter()
        .enumerate()
        .map(|(i, item)| (kind.score(item, config, now.millis()), i as u32))
        .filter(|(score, _)| *score > 0.0)
        .collect();
    best_by(scored, k, |i| candidates.get(i as usize).map(|c| &c.id))
        .into_iter()
        .map(|(score, i)| (candidates[i as usize].id.clone(), score as f32))
        .collect()
}

impl ItemState {
    /// An item with no events yet.
    pub fn empty(id: ItemId) -> Self {
        ItemState::new(id)
    }

    /// The item's id.
    pub fn id(&self) -> &ItemId {
        &self.id
    }

    /// The index of its top-level category, if it has one.
    pub fn category_index(&self) -> Option<u32> {
        self.category
    }

    /// The item's features at `now`.
    pub fn features_at(&self, config: &FeatureConfig, now: Timestamp) -> ItemFeatures {
        self.features(config, now.millis())
    }
}

impl UserState {
    /// The largest item index and the largest category index the state refers to (a
    /// remote reader makes sure its tables reach them).
    pub fn max_indices(&self) -> (Option<u32>, Option<u32>) {
        let recent = self.recent.iter().map(|r| r.item);
        let shown = self.shown.iter().map(|(_, item)| *item);
        let purchased = self.purchased.iter().copied();
        let item = recent.chain(shown).chain(purchased).max();
        let category = self.affinity.iter().map(|(c, _)| *c).max();
        (item, category)
    }
}

impl Neighbors {
    /// The largest item index in the list.
    pub fn max_index(&self) -> Option<u32> {
        self.iter().map(|(j, _)| j).max()
    }
}
