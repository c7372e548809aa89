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
    /// Impressions dropped: the impression queue was full, or the log refused them.
    pub impressions_dropped: AtomicU64,
    /// Log records the consumer skipped because they cannot be decoded.
    pub skipped_records: AtomicU64,
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
}
