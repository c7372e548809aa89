//! Recall of an approximate result against the exact one.

/// The share of the true top-`k` ids (`truth`, one slice per query) that `found` holds,
/// over all queries: recall@k as ann-benchmarks and hnswlib measure it.
pub fn recall_at_k(found: &[Vec<u32>], truth: &[Vec<u32>], k: usize) -> f64 {
    let mut hits = 0usize;
    let mut total = 0usize;
    for (found, truth) in found.iter().zip(truth) {
        let truth = &truth[..truth.len().min(k)];
        hits += found.iter().take(k).filter(|id| truth.contains(id)).count();
        total += truth.len();
    }
    if total == 0 {
        1.0
    } else {
        hits as f64 / total as f64
    }
}
