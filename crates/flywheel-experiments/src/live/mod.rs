//! Experiments inside the engine: the [`Ledger`] is everything the log says about
//! them — the [`Book`] of definitions and the [`Joiner`] of outcomes — and
//! [`metrics`] turns it into the statistics a team acts on.
//!
//! The ledger changes only through [`Ledger::apply`], record by record in log order,
//! online (the engine's consumer) and offline (a replay) alike.

mod book;
mod joiner;
mod metrics;
mod tally;
mod versions;

pub use book::{buckets_for, Book, BookError, Running};
pub use joiner::{ClosedRequest, Joiner, Unattributed};
pub use metrics::{
    export_users, metrics, ComparisonMetrics, CupedSummary, DelayedFeedback, ExperimentMetrics,
    GuardrailCheck, InterleavingMetrics, SequentialSummary, ShadowMetrics, SrmSummary, UserColumns,
    VariantMetrics,
};
pub use tally::{overlap_at_k, ExperimentTally, ShadowList, ShadowTally, UserTally, VariantTally};
pub use versions::VersionTally;

use flywheel_core::LogRecord;

/// The experiments and their outcomes, as of the records applied. Serde gives a
/// canonical form (the engine's snapshots): two equal ledgers give equal bytes.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Ledger {
    /// The definitions.
    pub book: Book,
    /// The outcomes.
    pub joiner: Joiner,
}

impl Ledger {
    /// An empty ledger whose attribution windows close `allowed_lateness_ms` after
    /// event time passes them.
    pub fn new(allowed_lateness_ms: i64) -> Self {
        Ledger {
            book: Book::default(),
            joiner: Joiner::new(allowed_lateness_ms),
        }
    }

    /// Applies one record of the log.
    pub fn apply(&mut self, record: &LogRecord) {
        match record {
            LogRecord::ExperimentStart {
                experiment,
                layer_buckets,
                at,
            } => {
                self.joiner
                    .tallies
                    .insert(experiment.id.clone(), ExperimentTally::new(experiment));
                self.book.start(experiment.clone(), *layer_buckets, *at);
            }
            LogRecord::ExperimentRamp {
                id,
                traffic,
                layer_buckets,
                ..
            } => self.book.ramp(id, *traffic, *layer_buckets),
            LogRecord::ExperimentStop { id, at } => self.book.stop(id, *at),
            LogRecord::Impression(impression) => self.joiner.impression(impression, &self.book),
            LogRecord::ShadowImpression(shadow) => self.joiner.shadow(shadow, &self.book),
            LogRecord::Event(event) => self.joiner.event(event, &self.book),
            LogRecord::ItemUpsert(_)
            | LogRecord::ItemDelete { .. }
            | LogRecord::UserUpsert(_)
            | LogRecord::UserDelete { .. }
            | LogRecord::UserErase { .. }
            | LogRecord::Erased { .. } => {}
        }
    }

    /// Erasure: forgets what the ledger keeps about `user` ([`Joiner::forget_user`]);
    /// returns how many entries were dropped.
    pub fn forget_user(&mut self, user: &flywheel_core::UserId) -> usize {
        self.joiner.forget_user(user)
    }

    /// The tally of an experiment.
    pub fn tally(&self, id: &str) -> Option<&ExperimentTally> {
        self.joiner.tallies.get(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::{
        Action, Channel, Event, ExperimentDef, ExperimentTag, Impression, ImpressionSlot, ItemId,
        RequestId, Timestamp, UserId,
    };
    use serde_json::json;

    const HOUR: i64 = 3_600_000;

    fn start(def: serde_json::Value) -> LogRecord {
        LogRecord::ExperimentStart {
            experiment: ExperimentDef::from_json(&def).unwrap(),
            layer_buckets: [0, 10_000],
            at: Timestamp(0),
        }
    }

    fn served(id: &str, user: &str, at: i64, tags: &[(&str, &str)], teams: &[&str]) -> LogRecord {
        let slots = (0..3)
            .map(|p| ImpressionSlot {
                item_id: ItemId::new_unchecked(format!("i{p}")),
                position: p,
                score: 1.0,
                propensity: 1.0,
                propensity_kind: Default::default(),
                team: teams.get(p as usize).map(|t| t.to_string()),
                channel: Channel::Popularity,
                channel_rank: p,
                channel_score: 1.0,
                source_item: None,
                features: Vec::new(),
            })
            .collect();
        LogRecord::Impression(Impression {
            context: Default::default(),
            request_id: RequestId::new_unchecked(id),
            user_id: UserId::new_unchecked(user),
            timestamp: Timestamp(at),
            experiments: tags
                .iter()
                .map(|(id, variant)| ExperimentTag {
                    id: id.to_string(),
                    variant: variant.to_string(),
                })
                .collect(),
            forced: false,
            category: None,
            count: None,
            model_version: "v1".into(),
            fallback: false,
            features_offset: None,
            latency_ms: Some(1.0),
            slots,
        })
    }

    fn outcome(request: &str, user: &str, position: u32, action: Action, at: i64) -> LogRecord {
        LogRecord::Event(Event {
            user_id: UserId::new_unchecked(user),
            item_id: ItemId::new_unchecked(format!("i{position}")),
            action,
            value: Some(5.0),
            timestamp: Timestamp(at),
            request_id: Some(RequestId::new_unchecked(request)),
            position: Some(position),
            context: Default::default(),
        })
    }

    fn ab_log() -> Vec<LogRecord> {
        vec![
            start(
                json!({"id": "e", "kind": "ab", "attribution_hours": {"purchase": 2},
                "variants": [{"name": "c", "share": 0.5}, {"name": "t", "share": 0.5}]}),
            ),
            served("r1", "u1", HOUR, &[("e", "c")], &[]),
            served("r2", "u2", HOUR, &[("e", "t")], &[]),
            outcome("r1", "u1", 0, Action::Click, HOUR + 1),
            outcome("r2", "u2", 1, Action::Click, HOUR + 2),
            outcome("r2", "u2", 1, Action::Purchase, 2 * HOUR),
            outcome("nope", "u2", 1, Action::Click, 3 * HOUR),
            // Inside the click window but past the purchase window of 2 h.
            outcome("r1", "u1", 0, Action::Purchase, 3 * HOUR + 1),
            // A purchase a day and more after r1: outside the 24 h window.
            outcome("r1", "u1", 0, Action::Purchase, 26 * HOUR),
        ]
    }

    fn replay(records: &[LogRecord]) -> Ledger {
        let mut ledger = Ledger::new(0);
        for record in records {
            ledger.apply(record);
        }
        ledger
    }

    #[test]
    fn outcomes_are_joined_in_their_windows_and_the_rest_is_counted() {
        let ledger = replay(&ab_log());
        let m = metrics(&ledger, "e").unwrap();
        let (c, t) = (&m.variants[0].1, &m.variants[1].1);
        assert_eq!(
            (c.users, c.impressions, c.clicks, c.purchases),
            (1, 3, 1, 0)
        );
        assert_eq!(
            (t.users, t.impressions, t.clicks, t.purchases),
            (1, 3, 1, 1)
        );
        assert_eq!(t.revenue, 5.0);
        assert_eq!(m.unattributed.unknown_request.get("click"), Some(&1));
        assert_eq!(m.unattributed.late.get("purchase"), Some(&2));
        // The event at 26 h closed both requests' windows (24 h).
        assert_eq!(m.pending_labels, 0);
    }

    #[test]
    fn labels_stay_pending_until_event_time_passes_the_window() {
        let log = ab_log();
        let ledger = replay(&log[..7]);
        let m = metrics(&ledger, "e").unwrap();
        assert_eq!(
            m.pending_labels, 6,
            "both requests are inside their windows"
        );
    }

    #[test]
    fn an_outcome_for_a_closed_request_is_late_not_unknown() {
        let mut log = ab_log();
        log.push(outcome("r2", "u2", 1, Action::Click, 27 * HOUR));
        let m = metrics(&replay(&log), "e").unwrap();
        assert_eq!(m.unattributed.late.get("click"), Some(&1));
        assert_eq!(m.unattributed.unknown_request.get("click"), Some(&1));
    }

    #[test]
    fn a_replay_of_the_same_log_gives_the_same_figures() {
        let log = ab_log();
        assert_eq!(metrics(&replay(&log), "e"), metrics(&replay(&log), "e"));
    }

    #[test]
    fn interleaving_credits_the_team_of_the_clicked_slot() {
        let log = vec![
            start(json!({"id": "i", "kind": "interleaving", "variants": [
                {"name": "a"}, {"name": "b"}]})),
            served("r1", "u1", HOUR, &[("i", "a")], &["a", "b", "a"]),
            served("r2", "u2", HOUR, &[("i", "a")], &["b", "a", "b"]),
            served("r3", "u3", HOUR, &[("i", "a")], &["a", "b", "b"]),
            outcome("r1", "u1", 1, Action::Click, HOUR + 1),
            outcome("r2", "u2", 1, Action::Click, HOUR + 1),
            outcome("r2", "u2", 0, Action::Click, HOUR + 1),
            outcome("r2", "u2", 2, Action::Click, HOUR + 1),
            outcome("x", "u9", 0, Action::View, 30 * HOUR),
        ];
        let m = metrics(&replay(&log), "i").unwrap();
        let i = m.interleaving.unwrap();
        // r1: b wins (loss for a); r2: b 2 – a 1 (loss); r3: no click (tie).
        assert_eq!((i.wins, i.losses, i.ties), (0, 2, 1));
        assert_eq!(m.variants[0].1.impressions, 2 + 1 + 1);
        assert_eq!(m.variants[1].1.clicks, 3);
    }

    #[test]
    fn experiments_of_two_layers_that_both_decide_the_list_are_flagged() {
        let log = vec![
            start(json!({"id": "e", "kind": "ab", "variants": [
                {"name": "c", "share": 0.5, "model_version": "v1"},
                {"name": "t", "share": 0.5, "model_version": "v2"}]})),
            start(json!({"id": "i", "kind": "interleaving", "variants": [
                {"name": "a"}, {"name": "b"}]})),
            start(
                json!({"id": "plain", "kind": "ab", "layer": "other", "variants": [
                {"name": "x", "share": 0.5}, {"name": "y", "share": 0.5}]}),
            ),
        ];
        let ledger = replay(&log);
        let warned = |id: &str| metrics(&ledger, id).unwrap().warnings.join(" ");
        assert!(warned("e").contains("experiment `i`"), "{}", warned("e"));
        assert!(warned("i").contains("experiment `e`"));
        assert!(
            !warned("e").contains("plain"),
            "a variant that changes nothing is no conflict"
        );
        assert!(
            !warned("plain").contains("shares users"),
            "{}",
            warned("plain")
        );
    }

    fn shadow_of(
        record: &LogRecord,
        variant: &str,
        items: &[&str],
        slots_empty: bool,
    ) -> LogRecord {
        let LogRecord::Impression(live) = record else {
            panic!("not an impression");
        };
        let mut shadow = live.clone();
        shadow.experiments = vec![ExperimentTag {
            id: "s".into(),
            variant: variant.into(),
        }];
        shadow.fallback = slots_empty;
        shadow.slots.truncate(items.len());
        for (slot, item) in shadow.slots.iter_mut().zip(items) {
            slot.item_id = ItemId::new_unchecked(*item);
        }
        if slots_empty {
            shadow.slots.clear();
        }
        LogRecord::ShadowImpression(shadow)
    }

    #[test]
    fn a_shadow_is_compared_with_the_live_list_and_counts_nothing_else() {
        let live = served("r1", "u1", HOUR, &[("s", "live")], &[]);
        let second = served("r2", "u2", HOUR, &[("s", "live")], &[]);
        let log = vec![
            start(json!({"id": "s", "kind": "shadow", "variants": [
                {"name": "live"}, {"name": "cand"}]})),
            live.clone(),
            second.clone(),
            // Live list i0 i1 i2; the shadow ranked i2 first, then two others.
            shadow_of(&live, "cand", &["i2", "x", "y"], false),
            shadow_of(&second, "cand", &[], true),
            shadow_of(
                &served("gone", "u3", HOUR, &[], &[]),
                "cand",
                &["i0"],
                false,
            ),
            outcome("r1", "u1", 2, Action::Click, HOUR + 1),
            outcome("r1", "u1", 0, Action::Click, HOUR + 2),
            outcome("x", "u9", 0, Action::View, 30 * HOUR),
        ];
        // The third shadow's live request was never logged: an orphan, counted.
        let ledger = replay(&log);
        let m = metrics(&ledger, "s").unwrap();
        let (name, shadow) = &m.shadow[0];
        assert_eq!(name, "cand");
        assert_eq!(shadow.requests, 2);
        assert_eq!(shadow.timeout_rate, 0.5);
        assert!((shadow.overlap_at_k - 1.0 / 3.0).abs() < 1e-12);
        // Engaged: i2 (rank 1 in the shadow, 3 live) and i0 (absent, rank 1 live).
        assert_eq!(shadow.engaged_items, 2);
        assert_eq!(shadow.engaged_recall, Some(0.5));
        assert_eq!(shadow.shadow_mrr, Some(0.5));
        assert!((shadow.live_mrr.unwrap() - (1.0 + 1.0 / 3.0) / 2.0).abs() < 1e-12);
        // The shadow variant shows nothing and is counted nowhere else.
        assert_eq!(m.variants[1].1.impressions, 0);
        assert_eq!(m.variants[0].1.impressions, 6);
        assert_eq!(m.variants[0].1.clicks, 2);
        assert_eq!(m.unattributed.orphan_shadows, 1);
    }
}
