//! What the store keeps per user: recent actions, category affinity, purchases and
//! the slots recently shown to them.

use std::collections::{BTreeSet, VecDeque};

use flywheel_core::Action;
use serde::{Deserialize, Serialize};

/// One remembered action of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RecentAction {
    /// Item index in the store's item table.
    pub item: u32,
    pub action: Action,
    /// Milliseconds.
    pub at: i64,
}

/// The state of one user. Item and category ids are indices into the store's tables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    /// Sorted by time, most recent first; among equal times, the later arrival first.
    pub(crate) recent: VecDeque<RecentAction>,
    /// (category index, summed implicit weight).
    pub(crate) affinity: Vec<(u32, f64)>,
    pub(crate) event_count: u64,
    pub(crate) purchased: BTreeSet<u32>,
    /// (time ms, item index) of shown slots, in arrival order.
    pub(crate) shown: VecDeque<(i64, u32)>,
    /// Latest event time (ms).
    pub(crate) last_seen: Option<i64>,
    /// Latest shown-slot time (ms).
    pub(crate) shown_newest: Option<i64>,
}

impl UserState {
    /// The co-visitation partners of an event on `item` at `at`: the distinct other
    /// items among the user's last `window` events at or before `at` and no more than
    /// `gap_ms` earlier, each with the implicit weight of its most recent occurrence.
    pub(crate) fn session_partners(
        &self,
        item: u32,
        at: i64,
        gap_ms: i64,
        window: usize,
        partners: &mut Vec<(u32, f64)>,
    ) {
        partners.clear();
        let earlier = self.recent.iter().filter(|r| r.at <= at);
        for r in earlier.take(window) {
            if at - r.at > gap_ms {
                break;
            }
            if r.item != item && !partners.iter().any(|(j, _)| *j == r.item) {
                partners.push((r.item, f64::from(r.action.implicit_weight())));
            }
        }
    }

    /// Inserts an action at its place in time, keeping at most `capacity`.
    pub(crate) fn remember(&mut self, action: RecentAction, capacity: usize) {
        let position = self.recent.partition_point(|r| r.at > action.at);
        if position >= capacity {
            return;
        }
        self.recent.insert(position, action);
        self.recent.truncate(capacity);
    }

    pub(crate) fn add_affinity(&mut self, category: u32, weight: f64) {
        match self.affinity.iter_mut().find(|(c, _)| *c == category) {
            Some(entry) => entry.1 += weight,
            None => self.affinity.push((category, weight)),
        }
    }

    /// Records a shown slot; drops slots older than `window_ms` before the newest
    /// one, and the oldest arrivals beyond `max_slots`.
    pub(crate) fn record_shown(&mut self, at: i64, item: u32, window_ms: i64, max_slots: usize) {
        self.shown.push_back((at, item));
        let newest = self.shown_newest.map_or(at, |t| t.max(at));
        self.shown_newest = Some(newest);
        while self
            .shown
            .front()
            .is_some_and(|(t, _)| newest.saturating_sub(*t) >= window_ms)
        {
            self.shown.pop_front();
        }
        while self.shown.len() > max_slots {
            self.shown.pop_front();
        }
    }

    /// Slots shown within `(now − window_ms, now]`, per item index.
    pub(crate) fn shown_in_window(
        &self,
        now: i64,
        window_ms: i64,
    ) -> impl Iterator<Item = u32> + '_ {
        self.shown
            .iter()
            .filter(move |(t, _)| *t <= now && now.saturating_sub(*t) < window_ms)
            .map(|(_, item)| *item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(item: u32, at: i64) -> RecentAction {
        RecentAction {
            item,
            action: Action::View,
            at,
        }
    }

    #[test]
    fn recent_stays_sorted_and_bounded_with_late_arrivals() {
        let mut u = UserState::default();
        for (item, at) in [(1, 10), (2, 30), (3, 20), (4, 40), (5, 5)] {
            u.remember(action(item, at), 3);
        }
        let items: Vec<u32> = u.recent.iter().map(|r| r.item).collect();
        assert_eq!(items, vec![4, 2, 3]);
    }

    #[test]
    fn partners_are_distinct_within_gap_and_window() {
        let mut u = UserState::default();
        for (item, at) in [(1, 0), (2, 100), (1, 200), (3, 300), (4, 10_000)] {
            u.remember(action(item, at), 50);
        }
        let mut partners = Vec::new();
        // Event on item 3 at 350: looks back at 4? no (later), then 3 (self), 1, 2, 1.
        u.session_partners(3, 350, 1000, 10, &mut partners);
        assert_eq!(partners, vec![(1, 1.0), (2, 1.0)]);
        // A gap of 120 ms reaches back to t >= 230: only item 3 (self) -> nothing.
        u.session_partners(3, 350, 120, 10, &mut partners);
        assert!(partners.is_empty());
        // A window of 2 events: 3 (self) and 1.
        u.session_partners(3, 350, 1000, 2, &mut partners);
        assert_eq!(partners, vec![(1, 1.0)]);
    }

    #[test]
    fn shown_window_counts_and_prunes() {
        let mut u = UserState::default();
        u.record_shown(0, 7, 100, 10);
        u.record_shown(50, 7, 100, 10);
        u.record_shown(120, 8, 100, 10);
        // The slot at 0 is 120 >= 100 before the newest: pruned.
        assert_eq!(u.shown.len(), 2);
        assert_eq!(u.shown_in_window(120, 100).count(), 2);
        assert_eq!(u.shown_in_window(160, 100).count(), 1);
        for t in 0..20 {
            u.record_shown(200 + t, 9, 100, 10);
        }
        assert_eq!(u.shown.len(), 10);
    }
}
