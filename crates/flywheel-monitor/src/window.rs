//! The live window: a sliding window of event time cut into buckets, fed record by
//! record (served lists, events, finalized outcomes, rejections) with bounded memory:
//! numeric features go into per-bucket reservoirs, categoricals into capped counts,
//! and the data-quality counters are plain integers. The oldest bucket leaves as a
//! whole when event time moves past it. Nothing here reads a clock: time is the
//! largest record time seen, so a replay of a log rebuilds the same window.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::config::MonitoringConfig;
use crate::reference::{Calibration, CategoryCounts, CATEGORICAL_FEATURES};
use crate::reservoir::Reservoir;

/// Distinct users (and event keys for duplicates) tracked per bucket.
const TRACKED_KEYS_PER_BUCKET: usize = 200_000;

/// Index of a categorical feature in [`CATEGORICAL_FEATURES`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cat {
    Action = 0,
    ItemCategory = 1,
    EngagedCategory = 2,
    Device = 3,
    Page = 4,
    ServedCategory = 5,
}

/// One served slot.
#[derive(Debug, Clone)]
pub struct SlotObservation<'a> {
    /// Its ranking features (empty when none were logged).
    pub features: &'a [f32],
    /// Its served score.
    pub score: f64,
    /// Its item's top-level category, when the catalog knows the item.
    pub category: Option<&'a str>,
}

/// One served list (an impression record).
#[derive(Debug, Clone)]
pub struct ImpressionObservation<'a> {
    /// When it was served (ms).
    pub at_ms: i64,
    /// Its request id (outcomes are joined on it).
    pub request_id: &'a str,
    /// The version that ranked it.
    pub model_version: &'a str,
    /// The slots, in order.
    pub slots: Vec<SlotObservation<'a>>,
}

/// One event as the consumer applies it.
#[derive(Debug, Clone)]
pub struct EventObservation<'a> {
    /// Event time (ms).
    pub at_ms: i64,
    /// A hash of the user id ([`key`]).
    pub user_key: u64,
    /// A hash of everything that makes two events the same event ([`key`]).
    pub event_key: u64,
    /// The action.
    pub action: &'a str,
    /// Whether the action is an engagement (click, cart, purchase, like…).
    pub engagement: bool,
    /// Whether the catalog knew the item when the event was applied.
    pub item_known: bool,
    /// The item's top-level category, when known.
    pub item_category: Option<&'a str>,
    /// `context.device`, if given.
    pub device: Option<&'a str>,
    /// `context.page`, if given.
    pub page: Option<&'a str>,
    /// Whether it names the request it answers.
    pub has_request_id: bool,
    /// Whether it names the position it answers.
    pub has_position: bool,
    /// Arrival (apply) time minus event time, when measured (live, not in a replay).
    pub arrival_skew_ms: Option<i64>,
    /// For an engagement, the user's affinity to the item's category just before it
    /// ([`crate::reference::ENGAGED_AFFINITY`]).
    pub engaged_affinity: Option<f64>,
}

/// FNV-1a of byte strings separated by 0xff: the keys of users and events.
pub fn key(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(&[0xff]) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// What one bucket of event time holds.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    pub(crate) start: i64,
    pub(crate) events: u64,
    pub(crate) impressions: u64,
    pub(crate) slots: u64,
    pub(crate) slots_without_features: u64,
    pub(crate) numeric: Vec<Reservoir>,
    pub(crate) predicted: Reservoir,
    pub(crate) engaged_affinity: Reservoir,
    pub(crate) categorical: Vec<CategoryCounts>,
    /// Events missing request_id, position, device, page, a known item's category.
    pub(crate) missing: [u64; 5],
    pub(crate) unknown_items: u64,
    pub(crate) duplicates: u64,
    pub(crate) event_keys: HashSet<u64>,
    pub(crate) users: HashMap<u64, u32>,
    pub(crate) untracked_user_events: u64,
    pub(crate) skew: Reservoir,
    pub(crate) rejected: BTreeMap<String, u64>,
    pub(crate) skipped_records: u64,
    pub(crate) finalized_slots: u64,
    pub(crate) finalized_predicted: f64,
    pub(crate) finalized_positives: u64,
}

/// The names of the missing-field counters, in [`Bucket::missing`] order.
pub(crate) const MISSING_FIELDS: [&str; 5] = [
    "request_id",
    "position",
    "context.device",
    "context.page",
    "item_category",
];

impl Bucket {
    fn new(start: i64, numeric: usize, per_bucket: usize, seed: u64) -> Bucket {
        let reservoir =
            |i: u64| Reservoir::new(per_bucket, seed ^ (i + 1).wrapping_mul(0x9e37_79b9));
        Bucket {
            start,
            events: 0,
            impressions: 0,
            slots: 0,
            slots_without_features: 0,
            numeric: (0..numeric as u64).map(reservoir).collect(),
            predicted: reservoir(10_000),
            engaged_affinity: reservoir(10_002),
            categorical: vec![CategoryCounts::default(); CATEGORICAL_FEATURES.len()],
            missing: [0; 5],
            unknown_items: 0,
            duplicates: 0,
            event_keys: HashSet::new(),
            users: HashMap::new(),
            untracked_user_events: 0,
            skew: reservoir(10_001),
            rejected: BTreeMap::new(),
            skipped_records: 0,
            finalized_slots: 0,
            finalized_predicted: 0.0,
            finalized_positives: 0,
        }
    }
}

/// The live window (see the module doc).
#[derive(Debug, Clone)]
pub struct LiveWindow {
    pub(crate) config: MonitoringConfig,
    pub(crate) numeric_names: Vec<String>,
    calibration: Option<(String, std::sync::Arc<Calibration>)>,
    pub(crate) buckets: VecDeque<Bucket>,
    /// Served lists waiting for their outcomes: request id → calibrated P(click) per slot.
    pending: HashMap<String, Vec<f32>>,
    pending_order: VecDeque<String>,
    pub(crate) pending_evicted: u64,
    pub(crate) latest_ms: Option<i64>,
    pub(crate) newest_event_ms: Option<i64>,
    pub(crate) outside_window: u64,
    buckets_made: u64,
}

impl LiveWindow {
    /// An empty window over the numeric features `numeric_names` (feature-vector order).
    pub fn new(config: MonitoringConfig, numeric_names: &[&str]) -> LiveWindow {
        LiveWindow {
            config,
            numeric_names: numeric_names.iter().map(|n| n.to_string()).collect(),
            calibration: None,
            buckets: VecDeque::new(),
            pending: HashMap::new(),
            pending_order: VecDeque::new(),
            pending_evicted: 0,
            latest_ms: None,
            newest_event_ms: None,
            outside_window: 0,
            buckets_made: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &MonitoringConfig {
        &self.config
    }

    /// Served lists of `version` get P(click) from `calibration` from now on (`None`:
    /// no served list gets a prediction).
    pub fn set_calibration(&mut self, version: &str, calibration: Option<Calibration>) {
        self.calibration = calibration.map(|c| (version.to_string(), std::sync::Arc::new(c)));
    }

    /// Served lists still waiting for their outcomes.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// The bucket a record at `at_ms` belongs to (sliding the window forward when it is
    /// newer than every bucket); `None` when it is older than the window.
    fn bucket_at(&mut self, at_ms: i64) -> Option<&mut Bucket> {
        let bucket_ms = self.config.bucket_ms();
        let start = at_ms.div_euclid(bucket_ms) * bucket_ms;
        let newest = self.buckets.back().map(|b| b.start);
        if newest.is_none_or(|n| start > n) {
            self.latest_ms = Some(self.latest_ms.map_or(at_ms, |l| l.max(at_ms)));
            let per_bucket = (self.config.reservoir_size / self.config.window_buckets).max(1);
            self.buckets_made += 1;
            let seed = self.buckets_made.wrapping_mul(0x2545_f491_4f6c_dd1d);
            self.buckets.push_back(Bucket::new(
                start,
                self.numeric_names.len(),
                per_bucket,
                seed,
            ));
            let window = self.config.window_ms();
            while self
                .buckets
                .front()
                .is_some_and(|b| b.start.saturating_add(window) <= start)
            {
                self.buckets.pop_front();
            }
        } else {
            self.latest_ms = Some(self.latest_ms.map_or(at_ms, |l| l.max(at_ms)));
        }
        let index = self.buckets.iter().rposition(|b| b.start == start);
        match index {
            Some(i) => self.buckets.get_mut(i),
            None => {
                self.outside_window += 1;
                None
            }
        }
    }

    /// The newest bucket (made at the latest time seen), for what has no time of its own.
    fn current_bucket(&mut self) -> Option<&mut Bucket> {
        self.buckets.back_mut()
    }

    /// A served list: its features, its categories and, when its version is
    /// calibrated, each slot's P(click) (kept until its outcome is final).
    pub fn observe_impression(&mut self, served: &ImpressionObservation) {
        let calibration = self
            .calibration
            .as_ref()
            .filter(|(version, _)| version == served.model_version)
            .map(|(_, c)| std::sync::Arc::clone(c));
        let max = self.config.max_categories;
        let Some(bucket) = self.bucket_at(served.at_ms) else {
            return;
        };
        bucket.impressions += 1;
        let mut predicted = Vec::new();
        for slot in &served.slots {
            bucket.slots += 1;
            if slot.features.is_empty() {
                bucket.slots_without_features += 1;
            }
            for (reservoir, value) in bucket.numeric.iter_mut().zip(slot.features) {
                reservoir.offer(f64::from(*value));
            }
            if let Some(category) = slot.category {
                bucket.categorical[Cat::ServedCategory as usize].add(category, max);
            }
            if let Some(p) = calibration
                .as_ref()
                .and_then(|c| c.probability(slot.features))
            {
                bucket.predicted.offer(p);
                predicted.push(p as f32);
            }
        }
        if predicted.len() == served.slots.len() && !predicted.is_empty() {
            self.remember_pending(served.request_id, predicted);
        }
    }

    fn remember_pending(&mut self, request_id: &str, predicted: Vec<f32>) {
        let cap = self.config.max_pending_requests;
        while self.pending.len() >= cap {
            let Some(oldest) = self.pending_order.pop_front() else {
                break;
            };
            if self.pending.remove(&oldest).is_some() {
                self.pending_evicted += 1;
            }
        }
        if self
            .pending
            .insert(request_id.to_string(), predicted)
            .is_none()
        {
            self.pending_order.push_back(request_id.to_string());
        }
        // The order queue may hold ids already finalized; keep it bounded too.
        if self.pending_order.len() > cap.saturating_mul(2) {
            let pending = &self.pending;
            self.pending_order.retain(|id| pending.contains_key(id));
        }
    }

    /// A served list whose outcomes are final (the joiner closed it): per slot,
    /// whether it was clicked (or bought). Counted in the newest bucket.
    pub fn observe_finalized(&mut self, request_id: &str, positive: &[bool]) {
        let Some(predicted) = self.pending.remove(request_id) else {
            return;
        };
        let Some(bucket) = self.current_bucket() else {
            return;
        };
        for (p, hit) in predicted.iter().zip(positive) {
            bucket.finalized_slots += 1;
            bucket.finalized_predicted += f64::from(*p);
            bucket.finalized_positives += u64::from(*hit);
        }
    }

    /// An event as applied.
    pub fn observe_event(&mut self, event: &EventObservation) {
        let max = self.config.max_categories;
        self.newest_event_ms = Some(
            self.newest_event_ms
                .map_or(event.at_ms, |t| t.max(event.at_ms)),
        );
        let Some(bucket) = self.bucket_at(event.at_ms) else {
            return;
        };
        bucket.events += 1;
        let missing = [
            !event.has_request_id,
            !event.has_position,
            event.device.is_none(),
            event.page.is_none(),
            event.item_known && event.item_category.is_none(),
        ];
        for (count, is_missing) in bucket.missing.iter_mut().zip(missing) {
            *count += u64::from(is_missing);
        }
        if !event.item_known {
            bucket.unknown_items += 1;
        }
        bucket.categorical[Cat::Action as usize].add(event.action, max);
        if let Some(category) = event.item_category {
            bucket.categorical[Cat::ItemCategory as usize].add(category, max);
            if event.engagement {
                bucket.categorical[Cat::EngagedCategory as usize].add(category, max);
            }
        }
        if let Some(device) = event.device {
            bucket.categorical[Cat::Device as usize].add(device, max);
        }
        if let Some(page) = event.page {
            bucket.categorical[Cat::Page as usize].add(page, max);
        }
        if let Some(affinity) = event.engaged_affinity {
            bucket.engaged_affinity.offer(affinity);
        }
        if let Some(skew) = event.arrival_skew_ms {
            bucket.skew.offer(skew as f64);
        }
        self.count_user_and_duplicate(event);
    }

    fn count_user_and_duplicate(&mut self, event: &EventObservation) {
        let duplicate = self
            .buckets
            .iter()
            .any(|b| b.event_keys.contains(&event.event_key));
        let Some(bucket) = self.bucket_at(event.at_ms) else {
            return;
        };
        if duplicate {
            bucket.duplicates += 1;
        } else if bucket.event_keys.len() < TRACKED_KEYS_PER_BUCKET {
            bucket.event_keys.insert(event.event_key);
        }
        let tracked = bucket.users.len() < TRACKED_KEYS_PER_BUCKET;
        match bucket.users.get_mut(&event.user_key) {
            Some(count) => *count += 1,
            None if tracked => {
                bucket.users.insert(event.user_key, 1);
            }
            None => bucket.untracked_user_events += 1,
        }
    }

    /// Events refused before the log (by reason, e.g. the field that was wrong),
    /// counted in the newest bucket.
    pub fn observe_rejected(&mut self, reason: &str, count: u64) {
        let max = self.config.max_categories;
        if let Some(bucket) = self.current_bucket() {
            if bucket.rejected.len() < max || bucket.rejected.contains_key(reason) {
                *bucket.rejected.entry(reason.to_string()).or_insert(0) += count;
            } else {
                *bucket.rejected.entry("other".to_string()).or_insert(0) += count;
            }
        }
    }

    /// A log record the consumer could not decode.
    pub fn observe_skipped_record(&mut self) {
        if let Some(bucket) = self.current_bucket() {
            bucket.skipped_records += 1;
        }
    }

    /// The window's first and last instants (ms): the oldest bucket's start and the
    /// latest record time.
    pub fn span(&self) -> Option<[i64; 2]> {
        let from = self.buckets.front()?.start;
        Some([from, self.latest_ms.unwrap_or(from)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MonitoringConfig {
        MonitoringConfig {
            window_secs: 100,
            window_buckets: 10,
            reservoir_size: 100,
            ..MonitoringConfig::default()
        }
    }

    fn event(at_ms: i64, user: u64, id: u64) -> EventObservation<'static> {
        EventObservation {
            at_ms,
            user_key: user,
            event_key: id,
            action: "click",
            engagement: true,
            item_known: true,
            item_category: Some("books"),
            device: None,
            page: Some("home"),
            has_request_id: false,
            has_position: false,
            arrival_skew_ms: None,
            engaged_affinity: None,
        }
    }

    #[test]
    fn the_window_slides_with_event_time() {
        let mut window = LiveWindow::new(config(), &[]);
        window.observe_event(&event(0, 1, 1));
        window.observe_event(&event(50_000, 1, 2));
        assert_eq!(window.buckets.len(), 2);
        window.observe_event(&event(120_000, 1, 3));
        // [0, 10 s) left when the bucket at 120 s opened; 50 s is still inside.
        assert_eq!(window.buckets.len(), 2);
        assert_eq!(window.span(), Some([50_000, 120_000]));
        window.observe_event(&event(1_000, 1, 4));
        assert_eq!(window.outside_window, 1);
    }

    #[test]
    fn duplicates_and_missing_fields_are_counted() {
        let mut window = LiveWindow::new(config(), &[]);
        window.observe_event(&event(0, 1, 7));
        window.observe_event(&event(15_000, 1, 7));
        let duplicates: u64 = window.buckets.iter().map(|b| b.duplicates).sum();
        assert_eq!(duplicates, 1);
        let device_missing: u64 = window.buckets.iter().map(|b| b.missing[2]).sum();
        assert_eq!(device_missing, 2);
    }

    #[test]
    fn finalized_outcomes_need_a_calibrated_served_list() {
        let mut window = LiveWindow::new(config(), &["x"]);
        let served = ImpressionObservation {
            at_ms: 0,
            request_id: "r1",
            model_version: "v1",
            slots: vec![SlotObservation {
                features: &[1.0],
                score: 0.0,
                category: Some("books"),
            }],
        };
        window.observe_impression(&served);
        assert_eq!(window.pending_requests(), 0);
        let features: Vec<[f32; 1]> = (0..100).map(|i| [(i % 2) as f32]).collect();
        let rows: Vec<(&[f32], bool)> = features.iter().map(|f| (&f[..], f[0] > 0.5)).collect();
        let model = crate::ctr::CtrModel::fit(&rows).unwrap();
        window.set_calibration(
            "v1",
            Some(Calibration {
                model,
                rows: 100,
                positives: 50,
                holdout_rows: 0,
                holdout_positive_rate: 0.0,
                holdout_mean_predicted: 0.0,
            }),
        );
        window.observe_impression(&ImpressionObservation {
            request_id: "r2",
            ..served
        });
        assert_eq!(window.pending_requests(), 1);
        window.observe_finalized("r2", &[true]);
        let bucket = window.buckets.back().unwrap();
        assert_eq!((bucket.finalized_slots, bucket.finalized_positives), (1, 1));
        assert!(
            bucket.finalized_predicted > 0.5,
            "{}",
            bucket.finalized_predicted
        );
    }
}
