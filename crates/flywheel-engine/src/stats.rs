//! Counters and latency histograms the engine keeps for `/metrics`. Lock-free
//! atomics; the server renders them in the Prometheus text format.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds (Prometheus `le` labels).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A cumulative latency histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Cumulative counts per bucket bound, the total count and the sum in seconds.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let buckets = LATENCY_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(b, c)| (*b, c.load(Ordering::Relaxed)))
            .collect();
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (buckets, self.count.load(Ordering::Relaxed), sum)
    }

    /// The `q`-quantile (0 ≤ q ≤ 1) in seconds, estimated as Prometheus'
    /// `histogram_quantile` does: linear interpolation inside the bucket that holds
    /// the rank `q · count`, the first bucket starting at 0. Observations above the
    /// last bound give that bound. `None` without observations or for a `q` outside
    /// [0, 1].
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let (buckets, count, _) = self.snapshot();
        quantile_of(&buckets, count, q)
    }
}

/// The quantile of cumulative bucket counts (see [`Histogram::quantile`]).
fn quantile_of(buckets: &[(f64, u64)], count: u64, q: f64) -> Option<f64> {
    if count == 0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let rank = q * count as f64;
    let mut lower = (0.0, 0u64);
    for &(bound, cumulative) in buckets {
        if cumulative as f64 >= rank && cumulative > lower.1 {
            let inside = (cumulative - lower.1) as f64;
            let share = (rank - lower.1 as f64) / inside;
            return Some(lower.0 + (bound - lower.0) * share.max(0.0));
        }
        lower = (bound, cumulative);
    }
    Some(lower.0)
}

/// Why a list fell back, as a bounded label: the kinds of reason the pipeline and
/// the serving code give (their texts carry details: channel names, counts).
pub const FALLBACK_KINDS: [&str; 8] = [
    "retrieval_deadline",
    "ranking_deadline",
    "no_ranker",
    "missing_model",
    "top_up",
    "variant_models",
    "feature_store_unavailable",
    "other",
];

/// The kind of a fallback reason, one of [`FALLBACK_KINDS`].
pub fn fallback_kind(reason: &str) -> &'static str {
    let patterns = [
        ("retrieval deadline", "retrieval_deadline"),
        ("ranking deadline", "ranking_deadline"),
        ("no trained ranker", "no_ranker"),
        ("no trained ", "missing_model"),
        ("slots filled with popular", "top_up"),
        ("variant models unavailable", "variant_models"),
        ("feature store unavailable", "feature_store_unavailable"),
    ];
    patterns
        .iter()
        .find(|(pattern, _)| reason.contains(pattern))
        .map_or("other", |(_, kind)| kind)
}

/// Requests that fell back, per kind of reason (a request counts once per kind).
#[derive(Debug, Default)]
pub struct FallbackCounts {
    counts: [AtomicU64; FALLBACK_KINDS.len()],
}

impl FallbackCounts {
    /// Counts one request with these reasons.
    pub fn record(&self, reasons: &[String]) {
        let mut seen = [false; FALLBACK_KINDS.len()];
        for reason in reasons {
            let kind = fallback_kind(reason);
            if let Some(index) = FALLBACK_KINDS.iter().position(|k| *k == kind) {
                seen[index] = true;
            }
        }
        for (counter, _) in self.counts.iter().zip(seen).filter(|(_, seen)| *seen) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every kind with its count, in [`FALLBACK_KINDS`] order.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        FALLBACK_KINDS
            .iter()
            .zip(&self.counts)
            .map(|(kind, count)| (*kind, count.load(Ordering::Relaxed)))
            .collect()
    }
}

/// Everything the engine counts.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Events acknowledged (durable).
    pub events_ingested: AtomicU64,
    /// Events rejected as invalid.
    pub events_rejected: AtomicU64,
    /// Recommendation requests served.
    pub recommendations: AtomicU64,
    /// Requests answered with a fallback.
    pub fallbacks: AtomicU64,
    /// Requests answered with a fallback, per kind of reason.
    pub fallback_kinds: FallbackCounts,
    /// Impressions dropped: the impression queue was full, or the log refused them.
    pub impressions_dropped: AtomicU64,
    /// Log records the consumer skipped because they cannot be decoded.
    pub skipped_records: AtomicU64,
    /// Snapshot files start-up refused (corrupt, truncated, old format, another config, beyond the log's end).
    pub snapshots_rejected: AtomicU64,
    /// Shadow requests the shadow worker could not take (logged as timeouts).
    pub shadows_dropped: AtomicU64,
    /// Retrieval stage latency.
    pub retrieval_latency: Histogram,
    /// Ranking stage latency.
    pub ranking_latency: Histogram,
    /// Re-ranking stage latency.
    pub rerank_latency: Histogram,
    /// Whole request latency inside the engine.
    pub request_latency: Histogram,
    /// Time from an event batch's acknowledgement to its features being updated.
    pub feature_freshness: Histogram,
}

impl EngineStats {
    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(200));
        h.observe(Duration::from_millis(3));
        let (buckets, count, sum) = h.snapshot();
        assert_eq!(count, 2);
        assert!((sum - 0.0032).abs() < 1e-9);
        assert_eq!(buckets[0].1, 0); // 100 µs
        assert_eq!(buckets[1].1, 1); // 250 µs
        assert_eq!(buckets[5].1, 2); // 5 ms
        assert_eq!(buckets.last().unwrap().1, 2);
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket_of_their_rank() {
        let h = Histogram::default();
        for _ in 0..50 {
            h.observe(Duration::from_micros(50)); // bucket (0, 100 µs]
        }
        for _ in 0..50 {
            h.observe(Duration::from_micros(200)); // bucket (100 µs, 250 µs]
        }
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        // Rank 50 closes the first bucket exactly: its upper bound.
        assert!(close(h.quantile(0.5).unwrap(), 0.0001));
        // Rank 99: 49 of the second bucket's 50, so 100 µs + 150 µs · 49/50.
        assert!(close(h.quantile(0.99).unwrap(), 0.000247));
        // Rank 25: halfway through the first bucket, which starts at 0.
        assert!(close(h.quantile(0.25).unwrap(), 0.00005));
        assert!(close(h.quantile(1.0).unwrap(), 0.00025));
    }

    #[test]
    fn quantiles_of_nothing_or_out_of_range_are_none_and_overflow_is_the_last_bound() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        h.observe(Duration::from_secs(30));
        assert_eq!(h.quantile(0.5), Some(5.0));
        assert_eq!(h.quantile(1.5), None);
        assert_eq!(h.quantile(f64::NAN), None);
    }

    #[test]
    fn fallback_reasons_are_counted_once_per_kind_per_request() {
        let counts = FallbackCounts::default();
        counts.record(&[
            "no trained als model; skipped".to_string(),
            "no trained content model; skipped".to_string(),
            "no trained ranker yet; fused retrieval order used".to_string(),
            "3 slots filled with popular items".to_string(),
        ]);
        counts.record(&["ranking deadline passed; fused retrieval order used".to_string()]);
        let snapshot: std::collections::BTreeMap<_, _> = counts.snapshot().into_iter().collect();
        assert_eq!(snapshot["missing_model"], 1);
        assert_eq!(snapshot["no_ranker"], 1);
        assert_eq!(snapshot["top_up"], 1);
        assert_eq!(snapshot["ranking_deadline"], 1);
        assert_eq!(snapshot["retrieval_deadline"], 0);
        assert_eq!(fallback_kind("something new"), "other");
        assert_eq!(
            fallback_kind("retrieval deadline passed before the als channel"),
            "retrieval_deadline"
        );
        assert_eq!(
            fallback_kind("variant models unavailable (x); serving models used"),
            "variant_models"
        );
    }
}
