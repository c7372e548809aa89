//! Popular and trending lists, global and per top-level category, served from a
//! cache with bounded staleness.
//!
//! A refresh scans every item once and keeps, per (kind, category), the
//! `ranking_cache_depth` best item indices. A request reuses the cached candidates
//! while `now` is within `ranking_refresh_ms` after the refresh and fewer than
//! `ranking_refresh_events` events were applied since; it then re-scores the first
//! `2k` of those candidates at `now`, so the returned scores are always exact and only
//! membership can be stale. For `popular` the order of untouched items never changes with time
//! (all decay at one rate), so staleness only concerns items that received events
//! since the refresh. A refresh happens on the read path (behind a mutex, so
//! reading stays `&self`), which costs nothing when nobody asks — e.g. during replay.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use flywheel_core::ItemId;

use crate::config::FeatureConfig;
use crate::item_state::ItemState;

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RankKind {
    Popular,
    Trending,
}

impl RankKind {
    pub fn score(self, item: &ItemState, config: &FeatureConfig, now: i64) -> f64 {
        match self {
            RankKind::Popular => item.popularity(config, now),
            RankKind::Trending => item.trending(config, now),
        }
    }
}

type ListKey = (RankKind, Option<u32>);

#[derive(Debug)]
struct Snapshot {
    computed_at: i64,
    events_at: u64,
    lists: HashMap<ListKey, Vec<u32>>,
}

/// The cache; cloning or deserialising a store starts with an empty one.
#[derive(Debug, Default)]
pub(crate) struct RankingCache {
    snapshot: Mutex<Option<Arc<Snapshot>>>,
}

impl Clone for RankingCache {
    fn clone(&self) -> Self {
        RankingCache::default()
    }
}

/// What a ranking request needs from the store.
pub(crate) struct RankRequest<'a> {
    pub items: &'a [ItemState],
    pub config: &'a FeatureConfig,
    pub now: i64,
    pub events_applied: u64,
}

impl RankingCache {
    /// The first `limit` candidate item indices for (kind, category), best first as
    /// of the snapshot, from a fresh-enough snapshot.
    pub fn candidates(
        &self,
        request: &RankRequest,
        kind: RankKind,
        category: Option<u32>,
        limit: usize,
    ) -> Vec<u32> {
        let snapshot = self.fresh_snapshot(request);
        match snapshot.lists.get(&(kind, category)) {
            Some(list) => list[..limit.min(list.len())].to_vec(),
            None => Vec::new(),
        }
    }

    fn fresh_snapshot(&self, request: &RankRequest) -> Arc<Snapshot> {
        let mut guard = self
            .snapshot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let config = request.config;
        if let Some(snapshot) = guard.as_ref() {
            let age = request.now - snapshot.computed_at;
            let events = request.events_applied.saturating_sub(snapshot.events_at);
            if (0..config.ranking_refresh_ms).contains(&age)
                && events < config.ranking_refresh_events
            {
                return Arc::clone(snapshot);
            }
        }
        let snapshot = Arc::new(compute_snapshot(request));
        *guard = Some(Arc::clone(&snapshot));
        snapshot
    }
}

fn compute_snapshot(request: &RankRequest) -> Snapshot {
    let mut lists: HashMap<ListKey, Vec<(f64, u32)>> = HashMap::new();
    for (index, item) in request.items.iter().enumerate() {
        for kind in [RankKind::Popular, RankKind::Trending] {
            let score = kind.score(item, request.config, request.now);
            if score > 0.0 {
                lists
                    .entry((kind, None))
                    .or_default()
                    .push((score, index as u32));
                if let Some(category) = item.category {
                    lists
                        .entry((kind, Some(category)))
                        .or_default()
                        .push((score, index as u32));
                }
            }
        }
    }
    let depth = request.config.ranking_cache_depth;
    let lists = lists
        .into_iter()
        .map(|(key, scored)| (key, indices(best(scored, depth, request.items))))
        .collect();
    Snapshot {
        computed_at: request.now,
        events_at: request.events_applied,
        lists,
    }
}

/// Scans all items for one list, without the cache (for requests deeper than it).
pub(crate) fn rank_directly(
    request: &RankRequest,
    kind: RankKind,
    category: Option<u32>,
    k: usize,
) -> Vec<u32> {
    let scored: Vec<(f64, u32)> = request
        .items
        .iter()
        .enumerate()
        .filter(|(_, item)| category.is_none() || item.category == category)
        .map(|(index, item)| (kind.score(item, request.config, request.now), index as u32))
        .filter(|(score, _)| *score > 0.0)
        .collect();
    indices(best(scored, k, request.items))
}

fn indices(scored: Vec<(f64, u32)>) -> Vec<u32> {
    scored.into_iter().map(|(_, index)| index).collect()
}

/// The `k` best (score desc, id asc) of (score, item index), best first.
pub(crate) fn best(scored: Vec<(f64, u32)>, k: usize, items: &[ItemState]) -> Vec<(f64, u32)> {
    best_by(scored, k, |index| Some(&items[index as usize].id))
}

/// [`best`] with the item ids looked up by `id_of` (an index without an id sorts first
/// among equal scores; the in-process store has an id for every index).
pub(crate) fn best_by<'a>(
    mut scored: Vec<(f64, u32)>,
    k: usize,
    id_of: impl Fn(u32) -> Option<&'a ItemId>,
) -> Vec<(f64, u32)> {
    let order = |a: &(f64, u32), b: &(f64, u32)| {
        b.0.total_cmp(&a.0)
            .then_with(|| id_of(a.1).cmp(&id_of(b.1)))
    };
    if k == 0 {
        return Vec::new();
    }
    if scored.len() > k {
        scored.select_nth_unstable_by(k - 1, order);
        scored.truncate(k);
    }
    scored.sort_unstable_by(order);
    scored
}
