//! The outcome joiner: events that name a `request_id` (and a `position`) are joined
//! to the impression they answer, inside each action's attribution window.
//!
//! - A click counts the moment it is applied; a purchase (with its revenue) counts
//!   when it arrives within its window. An outcome after its window is counted as
//!   late, one naming a request the joiner does not know as unknown: nothing is
//!   dropped silently.
//! - Windows close on event time: the watermark is the largest event or impression
//!   timestamp seen, minus the allowed lateness. A request's labels are final once
//!   the watermark passes its longest window; until then its slots are pending.
//! - Shadow lists attach to the live request they shadowed.
//!
//! Everything is a function of the log in order, so a replay rebuilds it exactly.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use flywheel_core::{
    Action, Event, ExperimentKind, Impression, ItemId, RequestId, Timestamp, UserId,
    DEFAULT_ATTRIBUTION_HOURS,
};

use super::book::Book;
use super::tally::{ExperimentTally, ShadowList};
use super::versions::VersionTally;

/// One served list the joiner still waits for outcomes of.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct ServedRequest {
    pub(crate) user: UserId,
    pub(crate) at: Timestamp,
    /// The model version the impression names.
    pub(crate) version: String,
    /// (experiment, variant index), for the experiments that count this request.
    pub(crate) tags: Vec<(String, usize)>,
    pub(crate) items: Vec<ItemId>,
    /// Per slot, the index of the variant (team) that contributed it.
    pub(crate) teams: Vec<Option<usize>>,
    /// Positions clicked within their window, in arrival order (repeats kept).
    pub(crate) clicked: Vec<usize>,
    /// Purchases attributed, with revenue, per position.
    pub(crate) purchases: Vec<(usize, f64)>,
    pub(crate) closes_at: Timestamp,
    pub(crate) shadows: Vec<ShadowList>,
}

/// The final outcome of a request whose windows closed, kept for off-policy
/// evaluation when asked for ([`Joiner::keep_closed`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClosedRequest {
    /// The request.
    pub request_id: RequestId,
    /// Clicks per position (repeats counted).
    pub clicks: Vec<u32>,
    /// Purchases per position.
    pub purchases: Vec<u32>,
}

/// Outcomes that could not be attributed, by action.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Unattributed {
    /// Events whose `request_id` names no impression the joiner knows.
    pub unknown_request: BTreeMap<String, u64>,
    /// Events that arrived after their action's attribution window (or after the
    /// watermark closed their request).
    pub late: BTreeMap<String, u64>,
    /// Events whose item is not in the list of their request.
    pub item_not_in_list: BTreeMap<String, u64>,
    /// Shadow lists for a request the joiner does not know (or no longer waits for).
    pub orphan_shadows: u64,
}

/// The joiner's state. Its serde form is canonical (maps in key order, heaps sorted):
/// two equal joiners give equal bytes.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Joiner {
    #[serde(with = "flywheel_core::canonical::sorted_map")]
    open: HashMap<RequestId, ServedRequest>,
    #[serde(with = "flywheel_core::canonical::sorted_heap")]
    closing: BinaryHeap<Reverse<(Timestamp, RequestId)>>,
    /// Requests whose windows closed, remembered for one more window so that an
    /// outcome for them is counted as late, not as naming an unknown request.
    #[serde(with = "flywheel_core::canonical::sorted_map")]
    recently_closed: HashMap<RequestId, Timestamp>,
    #[serde(with = "flywheel_core::canonical::sorted_heap")]
    forgetting: BinaryHeap<Reverse<(Timestamp, RequestId)>>,
    latest_event: Option<Timestamp>,
    allowed_lateness_ms: i64,
    /// Per experiment, what has been counted.
    pub(crate) tallies: BTreeMap<String, ExperimentTally>,
    /// What could not be attributed.
    pub unattributed: Unattributed,
    /// Per model version, requests served and clicks on finalized labels.
    pub versions: BTreeMap<String, VersionTally>,
    /// Per user, every event applied (the CUPED covariate is built from it).
    #[serde(with = "flywheel_core::canonical::sorted_map")]
    pub(crate) activity: HashMap<UserId, u64>,
    keep_closed: bool,
    closed: Vec<ClosedRequest>,
}

fn default_window_ms() -> i64 {
    (DEFAULT_ATTRIBUTION_HOURS * 3_600_000.0) as i64
}

impl Joiner {
    /// A joiner whose windows close `allowed_lateness_ms` after the event time passes them.
    pub fn new(allowed_lateness_ms: i64) -> Self {
        Joiner {
            allowed_lateness_ms: allowed_lateness_ms.max(0),
            ..Joiner::default()
        }
    }

    /// Keep the outcome of every closed request, for [`Joiner::take_closed`].
    pub fn keep_closed(&mut self) {
        self.keep_closed = true;
    }

    /// The closed requests' outcomes collected since the last call.
    pub fn take_closed(&mut self) -> Vec<ClosedRequest> {
        std::mem::take(&mut self.closed)
    }

    /// The watermark: windows ending before it are closed.
    pub fn watermark(&self) -> Option<Timestamp> {
        self.latest_event
            .map(|t| Timestamp(t.0.saturating_sub(self.allowed_lateness_ms)))
    }

    /// How many requests still wait for outcomes.
    pub fn open_requests(&self) -> usize {
        self.open.len()
    }

    fn advance(&mut self, at: Timestamp, book: &Book) {
        if self.latest_event.is_some_and(|t| t >= at) {
            return;
        }
        self.latest_event = Some(at);
        let Some(watermark) = self.watermark() else {
            return;
        };
        while let Some(Reverse((closes_at, _))) = self.closing.peek() {
            if *closes_at > watermark {
                break;
            }
            let Some(Reverse((_, id))) = self.closing.pop() else {
                break;
            };
            if let Some(request) = self.open.remove(&id) {
                let forget_at = Timestamp(
                    request
                        .closes_at
                        .0
                        .saturating_add(request.closes_at.0 - request.at.0),
                );
                self.recently_closed.insert(id.clone(), forget_at);
                self.forgetting.push(Reverse((forget_at, id.clone())));
                self.close(id, request, book);
            }
        }
        while let Some(Reverse((forget_at, _))) = self.forgetting.peek() {
            if *forget_at > watermark {
                break;
            }
            if let Some(Reverse((_, id))) = self.forgetting.pop() {
                self.recently_closed.remove(&id);
            }
        }
    }

    fn close(&mut self, id: RequestId, request: ServedRequest, book: &Book) {
        if let Some(tally) = self.versions.get_mut(&request.version) {
            tally.finalize(request.items.len(), &request.clicked);
        }
        for (experiment, variant) in &request.tags {
            let kind = book.get(experiment).map(|r| r.def.kind);
            if let Some(tally) = self.tallies.get_mut(experiment) {
                tally.close(&request, *variant, kind);
            }
        }
        if self.keep_closed {
            let mut clicks = vec![0; request.items.len()];
            let mut purchases = vec![0; request.items.len()];
            for &p in &request.clicked {
                clicks[p] += 1;
            }
            for &(p, _) in &request.purchases {
                purchases[p] += 1;
            }
            self.closed.push(ClosedRequest {
                request_id: id,
                clicks,
                purchases,
            });
        }
    }

    /// A served list: it opens a request and counts its exposure per experiment.
    pub(crate) fn impression(&mut self, impression: &Impression, book: &Book) {
        self.advance(impression.timestamp, book);
        let mut tags = Vec::new();
        let mut window = default_window_ms();
        let mut teams = vec![None; impression.slots.len()];
        for tag in &impression.experiments {
            let Some(running) = book.get(&tag.id) else {
                continue;
            };
            let Some((variant, _)) = running.def.variant(&tag.variant) else {
                continue;
            };
            let tally = self
                .tallies
                .entry(tag.id.clone())
                .or_insert_with(|| ExperimentTally::new(&running.def));
            if impression.forced {
                tally.forced_requests += 1;
                continue;
            }
            if running.def.kind == ExperimentKind::Interleaving {
                for (slot, team) in impression.slots.iter().zip(&mut teams) {
                    *team = slot
                        .team
                        .as_deref()
                        .and_then(|t| running.def.variant(t))
                        .map(|(i, _)| i);
                }
            }
            window = window.max(running.def.longest_window_ms());
            tally.expose(impression, variant, &teams, running.def.kind);
            tags.push((tag.id.clone(), variant));
        }
        self.versions
            .entry(impression.model_version.clone())
            .or_default()
            .requests += 1;
        let request = ServedRequest {
            user: impression.user_id.clone(),
            at: impression.timestamp,
            version: impression.model_version.clone(),
            tags,
            items: impression.slots.iter().map(|s| s.item_id.clone()).collect(),
            teams,
            clicked: Vec::new(),
            purchases: Vec::new(),
            closes_at: Timestamp(impression.timestamp.0.saturating_add(window)),
            shadows: Vec::new(),
        };
        self.closing
            .push(Reverse((request.closes_at, impression.request_id.clone())));
        self.open.insert(impression.request_id.clone(), request);
    }

    /// A shadow list: it attaches to the live request it shadowed.
    pub(crate) fn shadow(&mut self, shadow: &Impression, book: &Book) {
        let Some(request) = self.open.get_mut(&shadow.request_id) else {
            self.unattributed.orphan_shadows += 1;
            return;
        };
        for tag in &shadow.experiments {
            let Some((variant, _)) = book.get(&tag.id).and_then(|r| r.def.variant(&tag.variant))
            else {
                continue;
            };
            let list = ShadowList {
                experiment: tag.id.clone(),
                variant,
                items: shadow.slots.iter().map(|s| s.item_id.clone()).collect(),
            };
            if let Some(tally) = self.tallies.get_mut(&tag.id) {
                tally.shadowed(shadow, &list, &request.items);
            }
            request.shadows.push(list);
        }
    }

    /// An event: user activity for CUPED, and, when it names a request, an outcome.
    pub(crate) fn event(&mut self, event: &Event, book: &Book) {
        self.advance(event.timestamp, book);
        *self.activity.entry(event.user_id.clone()).or_insert(0) += 1;
        for running in book.active() {
            if event.timestamp >= running.started {
                if let Some(tally) = self.tallies.get_mut(&running.def.id) {
                    *tally
                        .activity_since_start
                        .entry(event.user_id.clone())
                        .or_insert(0) += 1;
                }
            }
        }
        let Some(request_id) = &event.request_id else {
            return;
        };
        let action = event.action.as_str().to_string();
        let Some(request) = self.open.get_mut(request_id) else {
            let counter = if self.recently_closed.contains_key(request_id) {
                &mut self.unattributed.late
            } else {
                &mut self.unattributed.unknown_request
            };
            *counter.entry(action).or_insert(0) += 1;
            return;
        };
        let slot = event
            .position
            .map(|p| p as usize)
            .filter(|&p| request.items.get(p) == Some(&event.item_id))
            .or_else(|| request.items.iter().position(|i| *i == event.item_id));
        let Some(slot) = slot else {
            *self
                .unattributed
                .item_not_in_list
                .entry(action)
                .or_insert(0) += 1;
            return;
        };
        let elapsed = event.timestamp.0 - request.at.0;
        let mut attributed = false;
        let mut late = false;
        for (experiment, variant) in &request.tags {
            let Some(running) = book.get(experiment) else {
                continue;
            };
            if elapsed > running.def.attribution_ms(&action) {
                late = true;
                continue;
            }
            if let Some(tally) = self.tallies.get_mut(experiment) {
                tally.outcome(request, *variant, slot, event, running.def.kind);
                attributed = true;
            }
        }
        if request.tags.is_empty() {
            if elapsed > default_window_ms() {
                late = true;
            } else {
                attributed = true;
            }
        }
        if late && !attributed {
            *self.unattributed.late.entry(action).or_insert(0) += 1;
            return;
        }
        match event.action {
            Action::Click => request.clicked.push(slot),
            Action::Purchase => request.purchases.push((slot, event.value.unwrap_or(0.0))),
            _ => {}
        }
    }

    /// Erasure: forgets everything kept about `user` — their open requests (which will
    /// never be counted), their activity, and their per-user rows in every experiment's
    /// tally (the experiment's figures then equal a replay of the log without them).
    /// Returns how many entries were dropped.
    pub fn forget_user(&mut self, user: &UserId) -> usize {
        let before = self.open.len();
        self.open.retain(|_, request| &request.user != user);
        let mut dropped = before - self.open.len();
        dropped += usize::from(self.activity.remove(user).is_some());
        for tally in self.tallies.values_mut() {
            dropped += usize::from(tally.activity_since_start.remove(user).is_some());
            for variant in &mut tally.variants {
                dropped += usize::from(variant.users.remove(user).is_some());
            }
        }
        dropped
    }

    /// Closes every open request as if every window had passed (the end of a replay
    /// that wants final labels, e.g. off-policy evaluation of a finished log).
    pub fn close_all(&mut self, book: &Book) {
        let open = std::mem::take(&mut self.open);
        self.closing.clear();
        let mut open: Vec<_> = open.into_iter().collect();
        open.sort_by(|a, b| (a.1.closes_at, &a.0).cmp(&(b.1.closes_at, &b.0)));
        for (id, request) in open {
            self.close(id, request, book);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{metrics, Ledger};
    use flywheel_core::{
        Action, Channel, Event, ExperimentDef, ExperimentTag, Impression, ImpressionSlot, ItemId,
        LogRecord, PropensityKind, RequestId, Timestamp, UserId,
    };
    use serde_json::json;

    fn start(ledger: &mut Ledger, definition: serde_json::Value) {
        let experiment = ExperimentDef::from_json(&definition).unwrap();
        ledger.apply(&LogRecord::ExperimentStart {
            experiment,
            layer_buckets: [0, 10_000],
            at: Timestamp(0),
        });
    }

    /// Regression: a request in an A/B test and an interleaving experiment at once
    /// credited the A/B test's outcomes to the variant whose index was the slot's
    /// interleaving team, and dropped them when the user was not in that variant.
    #[test]
    fn an_ab_outcome_goes_to_the_ab_variant_whatever_the_interleaving_team() {
        let mut ledger = Ledger::new(0);
        start(
            &mut ledger,
            json!({"id": "ab", "kind": "ab", "variants": [
                {"name": "control", "share": 0.5}, {"name": "treatment", "share": 0.5}]}),
        );
        start(
            &mut ledger,
            json!({"id": "il", "kind": "interleaving", "variants": [
                {"name": "x"}, {"name": "y"}]}),
        );
        let slot = |item: &str, position: u32, team: &str| ImpressionSlot {
            item_id: ItemId::new_unchecked(item),
            position,
            score: 1.0,
            propensity: 1.0,
            propensity_kind: PropensityKind::Interleaved,
            team: Some(team.to_string()),
            channel: Channel::Popularity,
            channel_rank: position,
            channel_score: 1.0,
            source_item: None,
            features: Vec::new(),
        };
        let tag = |id: &str, variant: &str| ExperimentTag {
            id: id.into(),
            variant: variant.into(),
        };
        ledger.apply(&LogRecord::Impression(Impression {
            context: Default::default(),
            request_id: RequestId::new_unchecked("r1"),
            user_id: UserId::new_unchecked("u"),
            timestamp: Timestamp(1_000),
            experiments: vec![tag("ab", "control"), tag("il", "x")],
            forced: false,
            category: None,
            count: Some(2),
            model_version: "v1".into(),
            fallback: false,
            features_offset: None,
            latency_ms: None,
            slots: vec![slot("a", 0, "x"), slot("b", 1, "y")],
        }));
        ledger.apply(&LogRecord::Event(Event {
            user_id: UserId::new_unchecked("u"),
            item_id: ItemId::new_unchecked("b"),
            action: Action::Click,
            value: None,
            timestamp: Timestamp(2_000),
            request_id: Some(RequestId::new_unchecked("r1")),
            position: Some(1),
            context: Default::default(),
        }));
        let ab = metrics(&ledger, "ab").unwrap();
        assert_eq!((ab.variants[0].1.clicks, ab.variants[1].1.clicks), (1, 0));
        let il = metrics(&ledger, "il").unwrap();
        assert_eq!((il.variants[0].1.clicks, il.variants[1].1.clicks), (0, 1));
    }
}
