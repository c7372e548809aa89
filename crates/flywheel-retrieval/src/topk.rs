//! Exact top-k selection with a bounded binary heap.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// An entry ordered so that the heap's top is the *worst* kept entry:
/// lower score is worse, and on equal scores the larger index is worse.
#[derive(Debug, Clone, Copy)]
struct Entry {
    score: f32,
    index: usize,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // "Greater" means "worse", so the max-heap's top is the entry to evict.
        other
            .score
            .total_cmp(&self.score)
            .then(self.index.cmp(&other.index))
    }
}

/// Keeps the `k` highest-scoring indices seen so far.
///
/// Ties are broken by the smaller index, so results are deterministic. Non-finite
/// scores (NaN, ±∞) are ignored rather than allowed to poison the ranking.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Entry>,
}

impl TopK {
    /// An empty selector for the best `k` entries.
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.saturating_add(1).min(1 << 16)),
        }
    }

    /// Offers one scored index.
    pub fn push(&mut self, index: usize, score: f32) {
        if self.k == 0 || !score.is_finite() {
            return;
        }
        let entry = Entry { score, index };
        if self.heap.len() < self.k {
            self.heap.push(entry);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if entry < *worst {
                *worst = entry;
            }
        }
    }

    /// The kept `(index, score)` pairs, best first.
    pub fn into_sorted(self) -> Vec<(usize, f32)> {
        let mut entries = self.heap.into_vec();
        entries.sort_unstable();
        entries.into_iter().map(|e| (e.index, e.score)).collect()
    }

    /// Selects the best `k` entries of a dense score vector, skipping indices for which
    /// `skip` returns true.
    pub fn of_scores(scores: &[f32], k: usize, skip: impl Fn(usize) -> bool) -> Vec<(usize, f32)> {
        let mut top = TopK::new(k);
        for (index, &score) in scores.iter().enumerate() {
            if !skip(index) {
                top.push(index, score);
            }
        }
        top.into_sorted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_k_in_order_with_index_tie_break() {
        let scores = [0.5, 2.0, f32::NAN, 2.0, -1.0, 3.0, f32::INFINITY];
        let got = TopK::of_scores(&scores, 3, |_| false);
        assert_eq!(got, vec![(5, 3.0), (1, 2.0), (3, 2.0)]);
        let skipped = TopK::of_scores(&scores, 10, |i| i == 5);
        assert_eq!(skipped, vec![(1, 2.0), (3, 2.0), (0, 0.5), (4, -1.0)]);
        assert!(TopK::of_scores(&scores, 0, |_| false).is_empty());
    }

    #[test]
    fn matches_a_full_sort_on_random_scores() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let scores: Vec<f32> = (0..500)
            .map(|_| (rng.gen_range(0..50) as f32) / 7.0)
            .collect();
        let mut oracle: Vec<(usize, f32)> = scores.iter().copied().enumerate().collect();
        oracle.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        oracle.truncate(37);
        assert_eq!(TopK::of_scores(&scores, 37, |_| false), oracle);
    }
}
