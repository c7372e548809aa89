//! The monitoring report: the live window against the served version's reference.
//! [`LiveWindow::report`] computes it; the engine adds [`Freshness`], the server
//! renders it as JSON and as gauges.

use std::collections::{BTreeMap, HashMap};

use serde::{Serialize, Serializer};

use crate::config::{NumericStatistic, PsiVariant};
use crate::ks::{ks_2samp, KsMethod};
use crate::psi::{psi_categorical_counts, psi_deciles, psi_evidently};
use crate::reference::{Reference, CATEGORICAL_FEATURES, ENGAGED_AFFINITY, PREDICTED_CTR};
use crate::reservoir::merge_weighted;
use crate::window::{Bucket, LiveWindow, MISSING_FIELDS};

/// Whether a feature is numeric or categorical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// A number per served item.
    Numeric,
    /// A category per event or served item.
    Categorical,
}

/// The statistic a feature is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// Two-sample Kolmogorov–Smirnov distance D (asymptotic p-value).
    Ks,
    /// Population Stability Index.
    Psi,
}

/// One feature, reference against window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureDrift {
    /// The feature (a ranking feature, `predicted_ctr`, or an event categorical).
    pub name: String,
    /// Numeric or categorical.
    pub kind: FeatureKind,
    /// How it is judged.
    pub statistic: Statistic,
    /// KS D or PSI; `None` when there is too little data to judge.
    pub value: Option<f64>,
    /// The threshold `value` is compared with.
    pub threshold: f64,
    /// Whether it crossed it.
    pub drifted: bool,
    /// Whether it is watched (`monitoring.watched_features`; all are by default):
    /// only watched features count in [`MonitoringReport::drifted_features`].
    pub watched: bool,
    /// The KS p-value (KS only).
    pub p_value: Option<f64>,
    /// Values (or counts) on the reference side.
    pub reference_samples: u64,
    /// Values (or counts) in the window.
    pub current_samples: u64,
}

/// Mean predicted P(click) of served items against the observed CTR.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictionDrift {
    /// Whether the served version has a calibration.
    pub calibrated: bool,
    /// Mean calibrated P(click) of the finalized served slots.
    pub mean_predicted_ctr: Option<f64>,
    /// Share of those slots clicked (or bought) within their attribution window.
    pub observed_ctr: Option<f64>,
    /// `observed_ctr / mean_predicted_ctr`.
    pub observed_over_expected: Option<f64>,
    /// The band O/E should stay in.
    pub band: [f64; 2],
    /// Served slots whose labels are final in the window.
    pub finalized_impressions: u64,
    /// Whether there were enough of them to judge.
    pub judged: bool,
    /// Judged and outside the band.
    pub outside_band: bool,
    /// Served lists still waiting for their outcomes.
    pub pending_requests: u64,
}

/// Quantiles of event-time skew (arrival minus event time).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skew {
    /// Events measured (live arrivals; a replay measures none).
    pub samples: u64,
    /// Median, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
}

/// Data quality over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataQuality {
    /// Events applied in the window.
    pub events: u64,
    /// Per field, the share of events without it (`item_category`: of known items).
    pub missing: BTreeMap<String, f64>,
    /// Share of served slots logged without their features.
    pub missing_features_share: f64,
    /// Events naming an item the catalog did not know.
    pub unknown_item_events: u64,
    /// Their share of the events.
    pub unknown_item_share: f64,
    /// Events seen before (same user, item, action, time, request).
    pub duplicate_events: u64,
    /// Their share of the events.
    pub duplicate_share: f64,
    /// Events refused before the log, by reason.
    pub rejected_events: BTreeMap<String, u64>,
    /// Refused events over refused plus applied events.
    pub rejected_share: f64,
    /// Log records the consumer could not decode.
    pub skipped_records: u64,
    /// Records older than the window when they arrived (not counted anywhere else).
    pub older_than_window: u64,
    /// Event-time skew.
    pub event_time_skew: Skew,
    /// Distinct users with events in the window.
    pub users: u64,
    /// Users above the configured events per minute.
    pub bot_like_users: u64,
    /// Their share of the users.
    pub bot_like_user_share: f64,
    /// Their events' share of the events.
    pub bot_like_event_share: f64,
    /// The shares above their configured limits, by name (e.g. `unknown_item_share`).
    pub breaches: Vec<String>,
    /// What the bot rules dropped since start (filled by the engine from the feature
    /// store, whose rules training applies too).
    pub bot_filter: BotFilterFigures,
}

/// The bot rules' counts since the state was built.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BotFilterFigures {
    /// Events judged.
    pub judged: u64,
    /// Events dropped, by reason (`rate`, `repeat`, `denied`).
    pub dropped: BTreeMap<String, u64>,
    /// Their share of the judged events.
    pub dropped_share: f64,
    /// Distinct users with a dropped event.
    pub flagged_users: u64,
}

/// How fresh the served features are (filled by the engine).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Freshness {
    /// Event time of the newest applied event.
    #[serde(serialize_with = "rfc3339_opt")]
    pub newest_event_time: Option<i64>,
    /// Wall clock now minus that, in seconds.
    pub newest_event_age_seconds: Option<f64>,
    /// Records durable in the log but not yet applied.
    pub consumer_lag_records: u64,
    /// Records applied.
    pub applied_offset: u64,
}

/// The window itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowSummary {
    /// Its first instant.
    #[serde(serialize_with = "rfc3339_opt")]
    pub from: Option<i64>,
    /// Its last (the latest record time seen).
    #[serde(serialize_with = "rfc3339_opt")]
    pub to: Option<i64>,
    /// Its configured length in seconds.
    pub length_secs: u64,
    /// Events in it.
    pub events: u64,
    /// Served lists in it.
    pub impressions: u64,
    /// Served slots in it.
    pub served_items: u64,
}

/// Everything monitoring knows, at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitoringReport {
    /// The live window.
    pub window: WindowSummary,
    /// The version whose reference the window is compared with (`None`: no reference).
    pub reference_version: Option<String>,
    /// `ok`, or why there is no comparison (e.g. `no reference`).
    pub reference_status: String,
    /// Per feature, its drift statistic.
    pub features: Vec<FeatureDrift>,
    /// Prediction drift.
    pub prediction: PredictionDrift,
    /// Data quality.
    pub data_quality: DataQuality,
    /// Freshness.
    pub freshness: Freshness,
    /// Latency per serving stage since the process started (filled by the engine that
    /// serves; empty in a report made from a replay).
    pub latency: Vec<StageLatencySummary>,
}

/// One serving stage's latency, from the engine's histograms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageLatencySummary {
    /// `retrieval`, `ranking`, `rerank`, `total` or `feature_update` (event acknowledged
    /// to its features updated).
    pub stage: String,
    /// Observations.
    pub count: u64,
    /// Median, in milliseconds (`None` without observations).
    pub p50_ms: Option<f64>,
    /// 99th percentile, in milliseconds.
    pub p99_ms: Option<f64>,
}

impl MonitoringReport {
    /// The watched features that crossed their thresholds.
    pub fn drifted_features(&self) -> impl Iterator<Item = &FeatureDrift> {
        self.features.iter().filter(|f| f.drifted && f.watched)
    }

    /// A feature by name.
    pub fn feature(&self, name: &str) -> Option<&FeatureDrift> {
        self.features.iter().find(|f| f.name == name)
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    (!sorted.is_empty()).then(|| crate::psi::numpy_quantile(sorted, q))
}

impl LiveWindow {
    fn sum(&self, field: impl Fn(&Bucket) -> u64) -> u64 {
        self.buckets.iter().map(field).sum()
    }

    /// The report of the window against `reference` (`reason` says why there is none).
    pub fn report(&self, reference: Option<&Reference>, reason: &str) -> MonitoringReport {
        let span = self.span();
        let events = self.sum(|b| b.events);
        MonitoringReport {
            window: WindowSummary {
                from: span.map(|s| s[0]),
                to: span.map(|s| s[1]),
                length_secs: self.config.window_secs,
                events,
                impressions: self.sum(|b| b.impressions),
                served_items: self.sum(|b| b.slots),
            },
            reference_version: reference.map(|r| r.version.clone()),
            reference_status: if reference.is_some() {
                "ok".to_string()
            } else {
                reason.to_string()
            },
            features: reference.map_or_else(Vec::new, |r| self.feature_drift(r)),
            prediction: self.prediction(reference),
            data_quality: self.data_quality(),
            freshness: Freshness {
                newest_event_time: self.newest_event_ms,
                ..Freshness::default()
            },
            latency: Vec::new(),
        }
    }

    fn feature_drift(&self, reference: &Reference) -> Vec<FeatureDrift> {
        let mut features = Vec::new();
        for (index, name) in self.numeric_names.iter().enumerate() {
            if let Some(values) = reference.numeric.get(name) {
                let current = merge_weighted(
                    self.buckets.iter().map(|b| &b.numeric[index]),
                    self.config.reservoir_size,
                );
                features.push(self.numeric_drift(name, values, &current));
            }
        }
        if let Some(values) = reference.numeric.get(PREDICTED_CTR) {
            let current = merge_weighted(
                self.buckets.iter().map(|b| &b.predicted),
                self.config.reservoir_size,
            );
            features.push(self.numeric_drift(PREDICTED_CTR, values, &current));
        }
        if let Some(values) = reference.numeric.get(ENGAGED_AFFINITY) {
            let current = merge_weighted(
                self.buckets.iter().map(|b| &b.engaged_affinity),
                self.config.reservoir_size,
            );
            features.push(self.numeric_drift(ENGAGED_AFFINITY, values, &current));
        }
        for (index, name) in CATEGORICAL_FEATURES.iter().enumerate() {
            let Some(counts) = reference.categorical.get(*name) else {
                continue;
            };
            let mut current: BTreeMap<String, u64> = BTreeMap::new();
            for bucket in &self.buckets {
                for (category, n) in &bucket.categorical[index].counts {
                    *current.entry(category.clone()).or_insert(0) += n;
                }
            }
            features.push(self.categorical_drift(name, counts, &current));
        }
        for feature in &mut features {
            feature.watched = self.config.is_watched(&feature.name);
        }
        features
    }

    fn numeric_drift(&self, name: &str, reference: &[f64], current: &[f64]) -> FeatureDrift {
        let c = &self.config;
        let enough = reference.len() >= c.min_samples && current.len() >= c.min_samples;
        let mut drift = FeatureDrift {
            name: name.to_string(),
            kind: FeatureKind::Numeric,
            statistic: match c.numeric_statistic {
                NumericStatistic::Ks => Statistic::Ks,
                NumericStatistic::Psi => Statistic::Psi,
            },
            value: None,
            threshold: match c.numeric_statistic {
                NumericStatistic::Ks => c.ks_min_statistic,
                NumericStatistic::Psi => c.psi_threshold,
            },
            drifted: false,
            watched: true,
            p_value: None,
            reference_samples: reference.len() as u64,
            current_samples: current.len() as u64,
        };
        if !enough {
            return drift;
        }
        match c.numeric_statistic {
            NumericStatistic::Ks => {
                if let Ok(ks) = ks_2samp(reference, current, KsMethod::AsymptoticKolmogorov) {
                    drift.value = Some(ks.statistic);
                    drift.p_value = Some(ks.p_value);
                    drift.drifted =
                        ks.p_value <= c.ks_p_value && ks.statistic >= c.ks_min_statistic;
                }
            }
            NumericStatistic::Psi => {
                let psi = match c.psi_variant {
                    PsiVariant::Evidently => psi_evidently(reference, current),
                    PsiVariant::Deciles => psi_deciles(reference, current, c.psi_bins, 1e-4),
                };
                if let Ok(psi) = psi {
                    drift.value = Some(psi.psi);
                    drift.drifted = psi.psi >= c.psi_threshold;
                }
            }
        }
        drift
    }

    fn categorical_drift(
        &self,
        name: &str,
        reference: &BTreeMap<String, u64>,
        current: &BTreeMap<String, u64>,
    ) -> FeatureDrift {
        let (nr, nc) = (
            reference.values().sum::<u64>(),
            current.values().sum::<u64>(),
        );
        let mut drift = FeatureDrift {
            name: name.to_string(),
            kind: FeatureKind::Categorical,
            statistic: Statistic::Psi,
            value: None,
            threshold: self.config.psi_threshold,
            drifted: false,
            watched: true,
            p_value: None,
            reference_samples: nr,
            current_samples: nc,
        };
        let min = self.config.min_samples as u64;
        if nr >= min && nc >= min {
            if let Ok(psi) = psi_categorical_counts(reference, current) {
                drift.value = Some(psi.psi);
                drift.drifted = psi.psi >= self.config.psi_threshold;
            }
        }
        drift
    }

    fn prediction(&self, reference: Option<&Reference>) -> PredictionDrift {
        let slots = self.sum(|b| b.finalized_slots);
        let positives = self.sum(|b| b.finalized_positives);
        let predicted: f64 = self.buckets.iter().map(|b| b.finalized_predicted).sum();
        let mean_predicted = (slots > 0).then(|| predicted / slots as f64);
        let observed = (slots > 0).then(|| share(positives, slots));
        let oe = match (observed, mean_predicted) {
            (Some(o), Some(e)) if e > 0.0 => Some(o / e),
            _ => None,
        };
        let band = self.config.oe_band;
        let judged = slots >= self.config.min_finalized_impressions && oe.is_some();
        PredictionDrift {
            calibrated: reference.is_some_and(|r| r.calibration.is_some()),
            mean_predicted_ctr: mean_predicted,
            observed_ctr: observed,
            observed_over_expected: oe,
            band,
            finalized_impressions: slots,
            judged,
            outside_band: judged && oe.is_some_and(|v| v < band[0] || v > band[1]),
            pending_requests: self.pending_requests() as u64,
        }
    }

    fn data_quality(&self) -> DataQuality {
        let c = &self.config;
        let events = self.sum(|b| b.events);
        let known = events - self.sum(|b| b.unknown_items);
        let missing = MISSING_FIELDS
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let whole = if i == 4 { known } else { events };
                (field.to_string(), share(self.sum(|b| b.missing[i]), whole))
            })
            .collect();
        let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
        for bucket in &self.buckets {
            for (reason, n) in &bucket.rejected {
                *rejected.entry(reason.clone()).or_insert(0) += n;
            }
        }
        let rejected_total: u64 = rejected.values().sum();
        let (users, bots, bot_events) = self.bot_like_users();
        let unknown = self.sum(|b| b.unknown_items);
        let duplicates = self.sum(|b| b.duplicates);
        let missing_features = share(
            self.sum(|b| b.slots_without_features),
            self.sum(|b| b.slots),
        );
        let mut breaches = Vec::new();
        for (name, value, limit) in [
            (
                "unknown_item_share",
                share(unknown, events),
                c.unknown_item_share,
            ),
            (
                "duplicate_share",
                share(duplicates, events),
                c.duplicate_share,
            ),
            (
                "missing_features_share",
                missing_features,
                c.missing_features_share,
            ),
        ] {
            if value > limit {
                breaches.push(name.to_string());
            }
        }
        DataQuality {
            events,
            missing,
            missing_features_share: missing_features,
            unknown_item_events: unknown,
            unknown_item_share: share(unknown, events),
            duplicate_events: duplicates,
            duplicate_share: share(duplicates, events),
            rejected_events: rejected,
            rejected_share: share(rejected_total, rejected_total + events),
            skipped_records: self.sum(|b| b.skipped_records),
            older_than_window: self.outside_window,
            event_time_skew: self.skew(),
            users,
            bot_like_users: bots,
            bot_like_user_share: share(bots, users),
            bot_like_event_share: share(bot_events, events),
            breaches,
            bot_filter: BotFilterFigures::default(),
        }
    }

    /// (users, bot-like users, their events) over the window.
    fn bot_like_users(&self) -> (u64, u64, u64) {
        let mut per_user: HashMap<u64, u64> = HashMap::new();
        for bucket in &self.buckets {
            for (user, n) in &bucket.users {
                *per_user.entry(*user).or_insert(0) += u64::from(*n);
            }
        }
        let minutes = self
            .span()
            .map_or(1.0, |[from, to]| ((to - from) as f64 / 60_000.0).max(1.0));
        let limit = self.config.bot_events_per_minute * minutes;
        let bots: Vec<u64> = per_user
            .values()
            .copied()
            .filter(|n| *n as f64 > limit)
            .collect();
        (per_user.len() as u64, bots.len() as u64, bots.iter().sum())
    }

    fn skew(&self) -> Skew {
        let mut values = merge_weighted(
            self.buckets.iter().map(|b| &b.skew),
            self.config.reservoir_size,
        );
        values.sort_by(f64::total_cmp);
        Skew {
            samples: self.buckets.iter().map(|b| b.skew.seen()).sum(),
            p50_ms: quantile(&values, 0.5),
            p99_ms: quantile(&values, 0.99),
        }
    }
}

/// Serializes epoch milliseconds as RFC 3339 (UTC, millisecond precision).
fn rfc3339_opt<S: Serializer>(value: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(ms) => s.serialize_str(&rfc3339(*ms)),
        None => s.serialize_none(),
    }
}

/// Epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (proleptic Gregorian, UTC).
pub fn rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1_000 % 60,
        in_day % 1_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MonitoringConfig;
    use crate::reference::ReferenceBuilder;
    use crate::window::{EventObservation, ImpressionObservation, SlotObservation};

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_767_571_200_123), "2026-01-05T00:00:00.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    fn config() -> MonitoringConfig {
        MonitoringConfig {
            window_secs: 1_000,
            window_buckets: 10,
            reservoir_size: 1_000,
            min_samples: 50,
            ..MonitoringConfig::default()
        }
    }

    fn reference(shift: f32) -> Reference {
        let mut builder = ReferenceBuilder::new(&["x"], 1_000, 16, 3);
        for i in 0..1_000 {
            builder.row(&[(i % 100) as f32 / 100.0 + shift], None);
            builder.category("event_action", if i % 2 == 0 { "click" } else { "view" });
        }
        builder.finish("v1", "impressions", None)
    }

    fn window(shift: f32, action: impl Fn(i64) -> &'static str) -> LiveWindow {
        let mut window = LiveWindow::new(config(), &["x"]);
        for i in 0..1_000i64 {
            let features = [(i % 100) as f32 / 100.0 + shift];
            window.observe_impression(&ImpressionObservation {
                at_ms: i * 900,
                request_id: "r",
                model_version: "v1",
                slots: vec![SlotObservation {
                    features: &features,
                    score: 0.0,
                    category: None,
                }],
            });
            window.observe_event(&EventObservation {
                at_ms: i * 900,
                user_key: i as u64,
                event_key: i as u64,
                action: action(i),
                engagement: false,
                item_known: i % 10 != 0,
                item_category: None,
                device: None,
                page: None,
                has_request_id: true,
                has_position: true,
                arrival_skew_ms: Some(i),
                engaged_affinity: None,
            });
        }
        window
    }

    #[test]
    fn a_shifted_window_drifts_and_the_same_one_does_not() {
        let reference = reference(0.0);
        let alternate = |i: i64| if i % 2 == 0 { "click" } else { "view" };
        let same = window(0.0, alternate).report(Some(&reference), "");
        assert_eq!(same.drifted_features().count(), 0, "{:?}", same.features);
        let shifted = window(0.3, |_| "purchase").report(Some(&reference), "");
        let x = shifted.feature("x").unwrap();
        assert!(x.drifted && x.value.unwrap() > 0.25, "{x:?}");
        assert!(shifted.feature("event_action").unwrap().drifted);
        // One event in ten names an unknown item: above the 5% limit.
        let dq = &shifted.data_quality;
        assert!((dq.unknown_item_share - 0.1).abs() < 0.02, "{dq:?}");
        assert_eq!(dq.breaches, vec!["unknown_item_share".to_string()]);
        assert!(dq.event_time_skew.p99_ms.unwrap() > dq.event_time_skew.p50_ms.unwrap());
    }

    #[test]
    fn no_reference_is_said_and_nothing_is_nan() {
        let report = LiveWindow::new(config(), &["x"]).report(None, "no reference");
        assert_eq!(report.reference_status, "no reference");
        assert!(report.features.is_empty());
        assert_eq!(report.prediction.observed_over_expected, None);
        assert_eq!(report.data_quality.unknown_item_share, 0.0);
    }
}
