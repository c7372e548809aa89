//! The spam and bot rules: which events are dropped before features and training.
//!
//! One module, one definition: the feature store applies it on its one write path
//! (online and in every offline replay), training's first pass applies it to the
//! interactions it learns from, and the monitor reports its counts. The decision for an
//! event depends only on the events of the same user before it in log order and on their
//! event times, so a replay of the log makes the same decisions as the live consumer.
//!
//! Three rules, each configurable (`[bots]`):
//! - **rate**: a token bucket per user in event time — `burst` events at once, refilled
//!   at `max_events_per_minute`; an event finding the bucket empty is dropped;
//! - **repeat**: the same user acting the same way on the same item more than
//!   `max_repeats` times within `repeat_window_secs` (a click or add-to-cart loop);
//! - **denied**: user ids starting with a configured prefix (e.g. a load tester's).
//!
//! A user with at least one dropped event is *flagged* and counted once.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::{Action, Event, ItemId, UserId};

/// The configurable rules (`[bots]` in the engine's configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BotRules {
    /// Whether events are filtered at all.
    pub enabled: bool,
    /// The sustained events per minute a user may send (the bucket's refill rate).
    pub max_events_per_minute: f64,
    /// Events a user may send at once (the bucket's size).
    pub burst: f64,
    /// Identical (item, action) events a user may repeat within the window.
    pub max_repeats: u32,
    /// The window of the repeat rule, in seconds.
    pub repeat_window_secs: u64,
    /// Users whose id starts with one of these are always dropped.
    pub denied_user_prefixes: Vec<String>,
}

impl Default for BotRules {
    /// Generous limits that no human shopper and no rating import reaches (ten events
    /// a second sustained, 1,200 at once, 20 identical actions a minute).
    fn default() -> Self {
        BotRules {
            enabled: true,
            max_events_per_minute: 600.0,
            burst: 1200.0,
            max_repeats: 20,
            repeat_window_secs: 60,
            denied_user_prefixes: Vec::new(),
        }
    }
}

impl BotRules {
    /// Checks every setting; the error names the field and what it must be.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.max_events_per_minute) {
            return Err("bots.max_events_per_minute must be a positive number".into());
        }
        if !(positive(self.burst) && self.burst >= 1.0) {
            return Err("bots.burst must be at least 1".into());
        }
        if self.max_repeats == 0 || self.repeat_window_secs == 0 {
            return Err("bots.max_repeats and bots.repeat_window_secs must be positive".into());
        }
        if self.denied_user_prefixes.iter().any(String::is_empty) {
            return Err("bots.denied_user_prefixes must not hold an empty prefix".into());
        }
        Ok(())
    }
}

/// Why an event was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BotReason {
    /// The user's rate exceeded the bucket.
    Rate,
    /// The same action on the same item repeated too often.
    Repeat,
    /// The user id matched a denied prefix.
    Denied,
}

impl BotReason {
    /// Every reason, for metrics with a fixed label set.
    pub const ALL: [BotReason; 3] = [BotReason::Rate, BotReason::Repeat, BotReason::Denied];

    /// The reason as metrics and reports spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            BotReason::Rate => "rate",
            BotReason::Repeat => "repeat",
            BotReason::Denied => "denied",
        }
    }
}

/// What the filter dropped so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotCounts {
    /// Events judged.
    pub judged: u64,
    /// Events dropped, by reason.
    pub dropped: BTreeMap<BotReason, u64>,
    /// Distinct users with at least one dropped event.
    pub flagged_users: u64,
}

impl BotCounts {
    /// Every dropped event.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

/// What the filter remembers of one user: their bucket and their repeat run. A store
/// that keeps users apart (Redis) keeps this beside each user's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotTrack {
    tokens: f64,
    /// Event time (ms) of the bucket's last update.
    refilled_at: i64,
    /// The last (item, action) and the times of its repeats in the window.
    last: Option<(ItemId, Action)>,
    repeats: Vec<i64>,
    flagged: bool,
}

impl BotTrack {
    /// The track of a user first seen at `at_ms`: a full bucket, no repeats.
    pub fn fresh(rules: &BotRules, at_ms: i64) -> Self {
        BotTrack {
            tokens: rules.burst,
            refilled_at: at_ms,
            last: None,
            repeats: Vec::new(),
            flagged: false,
        }
    }
}

/// THE judgement of one event under `rules`, given the user's `track` (create it with
/// [`BotTrack::fresh`] for a user without one) and the running `counts`: `None` keeps
/// the event, a reason drops it. Both are updated. A disabled rule set judges nothing
/// and changes nothing. [`BotFilter::judge`] and every other store call this.
pub fn judge_event(
    track: &mut BotTrack,
    counts: &mut BotCounts,
    event: &Event,
    rules: &BotRules,
) -> Option<BotReason> {
    if !rules.enabled {
        return None;
    }
    counts.judged += 1;
    let verdict = verdict(track, event, rules);
    if let Some(reason) = verdict {
        *counts.dropped.entry(reason).or_default() += 1;
        if !track.flagged {
            track.flagged = true;
            counts.flagged_users += 1;
        }
    }
    verdict
}

fn verdict(track: &mut BotTrack, event: &Event, rules: &BotRules) -> Option<BotReason> {
    let now = event.timestamp.millis();
    if rules
        .denied_user_prefixes
        .iter()
        .any(|p| event.user_id.as_str().starts_with(p.as_str()))
    {
        return Some(BotReason::Denied);
    }
    // Event time may go backwards (late events): no refill then, never a negative one.
    let elapsed_ms = (now - track.refilled_at).max(0) as f64;
    track.tokens =
        (track.tokens + elapsed_ms * rules.max_events_per_minute / 60_000.0).min(rules.burst);
    track.refilled_at = track.refilled_at.max(now);
    if track.tokens < 1.0 {
        return Some(BotReason::Rate);
    }
    track.tokens -= 1.0;
    if repeats_too_often(track, event, rules) {
        return Some(BotReason::Repeat);
    }
    None
}

fn repeats_too_often(track: &mut BotTrack, event: &Event, rules: &BotRules) -> bool {
    let now = event.timestamp.millis();
    let same = track
        .last
        .as_ref()
        .is_some_and(|(item, action)| *item == event.item_id && *action == event.action);
    if !same {
        track.last = Some((event.item_id.clone(), event.action.clone()));
        track.repeats.clear();
    }
    let window_ms = (rules.repeat_window_secs as i64).saturating_mul(1000);
    track.repeats.retain(|&t| now - t < window_ms);
    track.repeats.push(now);
    track.repeats.len() > rules.max_repeats as usize
}

/// The rules' state: a bucket and a repeat track per user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BotFilter {
    /// Written in key order, so equal filters encode to equal bytes (snapshots).
    #[serde(with = "crate::canonical::sorted_map")]
    users: HashMap<UserId, BotTrack>,
    counts: BotCounts,
}

impl BotFilter {
    /// A filter that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Judges `event` under `rules` and remembers it: `None` keeps it, a reason drops it.
    pub fn judge(&mut self, event: &Event, rules: &BotRules) -> Option<BotReason> {
        if !rules.enabled {
            return None;
        }
        let fresh = BotTrack::fresh(rules, event.timestamp.millis());
        let (track, counts) = self.track_and_counts(&event.user_id, fresh);
        judge_event(track, counts, event, rules)
    }

    /// The user's track (`fresh` when the filter has none yet) and the counts, for
    /// [`judge_event`].
    pub fn track_and_counts(
        &mut self,
        user: &UserId,
        fresh: BotTrack,
    ) -> (&mut BotTrack, &mut BotCounts) {
        let track = self.users.entry(user.clone()).or_insert(fresh);
        (track, &mut self.counts)
    }

    /// What was dropped so far.
    pub fn counts(&self) -> &BotCounts {
        &self.counts
    }

    /// Forgets a user (an erased or deleted user); their counts stay in the totals.
    pub fn forget_user(&mut self, user: &UserId) {
        self.users.remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    fn event(user: &str, item: &str, at_ms: i64) -> Event {
        Event {
            user_id: UserId::new_unchecked(user),
            item_id: ItemId::new_unchecked(item),
            action: Action::Click,
            value: None,
            timestamp: Timestamp::from_millis(1_700_000_000_000 + at_ms),
            request_id: None,
            position: None,
            context: BTreeMap::new(),
        }
    }

    fn rules() -> BotRules {
        BotRules {
            max_events_per_minute: 60.0,
            burst: 5.0,
            max_repeats: 3,
            repeat_window_secs: 10,
            ..BotRules::default()
        }
    }

    #[test]
    fn a_burst_beyond_the_bucket_is_dropped_and_the_bucket_refills_in_event_time() {
        let (mut filter, rules) = (BotFilter::new(), rules());
        let verdicts: Vec<_> = (0..8)
            .map(|i| filter.judge(&event("u", &format!("i{i}"), i), &rules))
            .collect();
        assert_eq!(verdicts.iter().filter(|v| v.is_none()).count(), 5);
        assert_eq!(verdicts[5], Some(BotReason::Rate));
        // One event a second is the refill rate: two seconds later, two more pass.
        assert_eq!(filter.judge(&event("u", "a", 2_010), &rules), None);
        assert_eq!(filter.judge(&event("u", "b", 2_011), &rules), None);
        assert_eq!(
            filter.judge(&event("u", "c", 2_012), &rules),
            Some(BotReason::Rate)
        );
        // Another user has their own bucket.
        assert_eq!(filter.judge(&event("v", "a", 3), &rules), None);
        let counts = filter.counts();
        assert_eq!(counts.dropped[&BotReason::Rate], 4);
        assert_eq!(counts.flagged_users, 1);
        assert_eq!(counts.judged, 12);
    }

    #[test]
    fn repeating_one_action_on_one_item_is_dropped_past_the_limit() {
        let (mut filter, rules) = (BotFilter::new(), rules());
        let at = |i: i64| i * 1_500;
        let verdicts: Vec<_> = (0..5)
            .map(|i| filter.judge(&event("u", "same", at(i)), &rules))
            .collect();
        assert_eq!(verdicts[..3], [None, None, None]);
        assert_eq!(verdicts[3], Some(BotReason::Repeat));
        // Another item resets the run; outside the window the old repeats expire.
        assert_eq!(filter.judge(&event("u", "other", at(6)), &rules), None);
        assert_eq!(filter.judge(&event("u", "same", at(7)), &rules), None);
    }

    #[test]
    fn denied_prefixes_drop_every_event_and_a_disabled_filter_drops_none() {
        let mut rules = rules();
        rules.denied_user_prefixes = vec!["loadtest-".into()];
        let mut filter = BotFilter::new();
        assert_eq!(
            filter.judge(&event("loadtest-7", "a", 0), &rules),
            Some(BotReason::Denied)
        );
        rules.enabled = false;
        for i in 0..100 {
            assert_eq!(filter.judge(&event("u", "same", i), &rules), None);
        }
        assert_eq!(filter.counts().judged, 1);
    }

    #[test]
    fn late_events_never_refill_backwards_and_the_rules_validate_by_name() {
        let (mut filter, rules) = (BotFilter::new(), rules());
        for i in 0..5 {
            assert_eq!(
                filter.judge(&event("u", &format!("i{i}"), 10_000), &rules),
                None
            );
        }
        assert_eq!(
            filter.judge(&event("u", "late", 0), &rules),
            Some(BotReason::Rate)
        );
        assert!(BotRules::default().validate().is_ok());
        let bad = BotRules {
            burst: 0.5,
            ..BotRules::default()
        };
        assert!(bad.validate().unwrap_err().contains("bots.burst"));
    }
}
