//! Pointwise metrics of predicted probabilities against binary labels.
//!
//! Definitions follow scikit-learn (reference: `shared/reference/metrics_reference.py`):
//! - AUC: `roc_auc_score`, tied scores count 1/2 (Mann–Whitney with mid-ranks).
//! - GAUC: per-user AUC weighted by the user's number of rows; users with one class skipped.
//! - log-loss: `log_loss`, probabilities clipped to `[eps, 1 - eps]`, eps = f64 machine epsilon.
//! - normalized entropy: log-loss / entropy of the mean label (He et al. 2014).
//! - ECE / MCE over equal-width bins, binned like `calibration_curve` (right-closed bins, the
//!   first one closed), edges `i * (1/n_bins)` as `numpy.linspace` computes them.

use serde::Serialize;

use crate::sort::{order_key, radix_sort};
use crate::stats::CompensatedSum;

/// One bin of the reliability diagram (only non-empty bins are listed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReliabilityBin {
    /// Bin index, 0-based.
    pub bin: usize,
    /// Lower edge (exclusive, except for bin 0).
    pub lo: f64,
    /// Upper edge (inclusive).
    pub hi: f64,
    /// Rows in the bin.
    pub count: u64,
    /// Mean predicted probability.
    pub mean_pred: f64,
    /// Fraction of positive labels.
    pub frac_pos: f64,
}

/// Calibration summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// Expected calibration error: Σ_bins (count/n)·|frac_pos − mean_pred|.
    pub ece: f64,
    /// Maximum calibration error: max over non-empty bins of |frac_pos − mean_pred|.
    pub mce: f64,
    /// The reliability table.
    pub bins: Vec<ReliabilityBin>,
}

/// AUC from sorted positive and negative score keys; `None` unless both classes occur.
fn auc_from_sorted(positives: &[u64], negatives: &[u64]) -> Option<f64> {
    if positives.is_empty() || negatives.is_empty() {
        return None;
    }
    // twice the Mann–Whitney U: 2·#(neg < pos) + #(neg == pos), exact in integers.
    let mut twice_u: u128 = 0;
    let mut below = 0usize;
    let mut i = 0usize;
    while i < positives.len() {
        let key = positives[i];
        let mut run = 1usize;
        while i + run < positives.len() && positives[i + run] == key {
            run += 1;
        }
        while below < negatives.len() && negatives[below] < key {
            below += 1;
        }
        let mut equal = 0usize;
        while below + equal < negatives.len() && negatives[below + equal] == key {
            equal += 1;
        }
        twice_u += (run as u128) * (2 * below as u128 + equal as u128);
        i += run;
    }
    Some(twice_u as f64 / (2.0 * positives.len() as f64 * negatives.len() as f64))
}

/// Splits scores by label into two sorted key arrays.
fn sorted_keys_by_label(labels: &[bool], scores: &[f64]) -> (Vec<u64>, Vec<u64>) {
    let n_pos = labels.iter().filter(|l| **l).count();
    let mut positives = Vec::with_capacity(n_pos);
    let mut negatives = Vec::with_capacity(labels.len() - n_pos);
    for (label, score) in labels.iter().zip(scores) {
        if *label {
            positives.push(order_key(*score))
        } else {
            negatives.push(order_key(*score))
        }
    }
    radix_sort(&mut positives);
    radix_sort(&mut negatives);
    (positives, negatives)
}

/// ROC AUC as `sklearn.metrics.roc_auc_score` (ties count 1/2); `None` when only one class occurs.
pub fn roc_auc(labels: &[bool], scores: &[f64]) -> Option<f64> {
    let (positives, negatives) = sorted_keys_by_label(labels, scores);
    auc_from_sorted(&positives, &negatives)
}

/// Group AUC: per-group AUC weighted by group size, over groups with both classes.
/// `groups` are dense ids in `0..n_groups`. `None` when no group has both classes.
pub fn group_auc(groups: &[u32], n_groups: usize, labels: &[bool], scores: &[f64]) -> Option<f64> {
    let mut starts = vec![0usize; n_groups + 1];
    for g in groups {
        starts[*g as usize + 1] += 1;
    }
    for i in 0..n_groups {
        starts[i + 1] += starts[i];
    }
    // counting sort of rows by group: (key, label) contiguous per group
    let mut next = starts.clone();
    let mut rows = vec![(0u64, false); groups.len()];
    for ((g, label), score) in groups.iter().zip(labels).zip(scores) {
        let slot = &mut next[*g as usize];
        rows[*slot] = (order_key(*score), *label);
        *slot += 1;
    }
    let (mut positives, mut negatives) = (Vec::new(), Vec::new());
    let (mut weighted, mut weight) = (CompensatedSum::default(), 0u64);
    for window in starts.windows(2) {
        let segment = &rows[window[0]..window[1]];
        positives.clear();
        negatives.clear();
        for (key, label) in segment {
            if *label {
                positives.push(*key)
            } else {
                negatives.push(*key)
            }
        }
        positives.sort_unstable();
        negatives.sort_unstable();
        if let Some(auc) = auc_from_sorted(&positives, &negatives) {
            weighted.add(segment.len() as f64 * auc);
            weight += segment.len() as u64;
        }
    }
    (weight > 0).then(|| weighted.value() / weight as f64)
}

/// Log-loss as `sklearn.metrics.log_loss` (clip to `[eps, 1-eps]`); scores must lie in [0, 1].
pub fn log_loss(labels: &[bool], scores: &[f64]) -> f64 {
    let eps = f64::EPSILON;
    let mut total = CompensatedSum::default();
    for (label, score) in labels.iter().zip(scores) {
        let p = score.clamp(eps, 1.0 - eps);
        total.add(if *label { -p.ln() } else { -(1.0 - p).ln() });
    }
    total.value() / labels.len() as f64
}

/// Entropy (nats) of a Bernoulli with mean `rate`; `None` at 0 or 1.
pub fn bernoulli_entropy(rate: f64) -> Option<f64> {
    (rate > 0.0 && rate < 1.0).then(|| -(rate * rate.ln() + (1.0 - rate) * (1.0 - rate).ln()))
}

/// The bin of a probability under `calibration_curve(strategy="uniform")` binning.
#[inline]
fn bin_of(p: f64, interior_edges: &[f64]) -> usize {
    interior_edges.partition_point(|edge| *edge < p)
}

/// Bin edges as `numpy.linspace(0, 1, n_bins + 1)`.
pub fn bin_edges(n_bins: usize) -> Vec<f64> {
    let step = 1.0 / n_bins as f64;
    let mut edges: Vec<f64> = (0..=n_bins).map(|i| i as f64 * step).collect();
    if let Some(last) = edges.last_mut() {
        *last = 1.0;
    }
    edges
}

/// ECE, MCE and the reliability table over `n_bins` equal-width bins (scores in [0, 1]).
pub fn calibration(labels: &[bool], scores: &[f64], n_bins: usize) -> Calibration {
    let n_bins = n_bins.max(1);
    let edges = bin_edges(n_bins);
    let interior = &edges[1..n_bins];
    let mut counts = vec![0u64; n_bins];
    let mut positives = vec![0u64; n_bins];
    let mut sums = vec![CompensatedSum::default(); n_bins];
    for (label, score) in labels.iter().zip(scores) {
        let b = bin_of(*score, interior);
        counts[b] += 1;
        positives[b] += u64::from(*label);
        sums[b].add(*score);
    }
    let n = labels.len() as f64;
    let (mut ece, mut mce, mut bins) = (0.0, 0.0f64, Vec::new());
    for b in (0..n_bins).filter(|b| counts[*b] > 0) {
        let mean_pred = sums[b].value() / counts[b] as f64;
        let frac_pos = positives[b] as f64 / counts[b] as f64;
        let gap = (frac_pos - mean_pred).abs();
        ece += counts[b] as f64 / n * gap;
        mce = mce.max(gap);
        bins.push(ReliabilityBin {
            bin: b,
            lo: edges[b],
            hi: edges[b + 1],
            count: counts[b],
            mean_pred,
            frac_pos,
        });
    }
    Calibration { ece, mce, bins }
}

/// Negative-downsampling correction (He et al. 2014): a model trained with negatives kept
/// at rate `w` predicts `p`; the calibrated probability is `p / (p + (1 - p) / w)`.
pub fn downsampling_correction(p: f64, w: f64) -> f64 {
    p / (p + (1.0 - p) / w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_as_half() {
        // sklearn.metrics.roc_auc_score([0,1,0,1],[0.1,0.4,0.4,0.8]) = 0.875
        let auc = roc_auc(&[false, true, false, true], &[0.1, 0.4, 0.4, 0.8]);
        assert_eq!(auc, Some(0.875));
        assert_eq!(roc_auc(&[true, true], &[0.1, 0.2]), None);
    }

    #[test]
    fn auc_equals_brute_force_pair_count_with_many_ties() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(5);
        let labels: Vec<bool> = (0..2000).map(|_| rng.gen_bool(0.3)).collect();
        let scores: Vec<f64> = (0..2000)
            .map(|_| f64::from(rng.gen_range(0..20u8)) / 20.0)
            .collect();
        let positives: Vec<f64> = (0..2000)
            .filter(|i| labels[*i])
            .map(|i| scores[i])
            .collect();
        let negatives: Vec<f64> = (0..2000)
            .filter(|i| !labels[*i])
            .map(|i| scores[i])
            .collect();
        let mut wins = 0.0;
        for p in &positives {
            for q in &negatives {
                wins += if p > q {
                    1.0
                } else if p == q {
                    0.5
                } else {
                    0.0
                };
            }
        }
        let pairs = (positives.len() * negatives.len()) as f64;
        let got = roc_auc(&labels, &scores).expect("both classes");
        assert!((got - wins / pairs).abs() < 1e-14);
    }

    #[test]
    fn log_loss_by_hand_and_clipping() {
        let got = log_loss(&[true, false], &[0.8, 0.4]);
        assert!((got - (-(0.8f64.ln()) - 0.6f64.ln()) / 2.0).abs() < 1e-15);
        // p = 0 for a positive is clipped to eps: -ln(2.220446049250313e-16) = 36.04365338911715
        assert!((log_loss(&[true], &[0.0]) - 36.04365338911715).abs() < 1e-12);
    }

    #[test]
    fn binning_follows_linspace_edges() {
        // 0.3 < 3 * 0.1 = 0.30000000000000004, so 0.3 falls in bin 2 = (0.2, 0.3]
        let edges = bin_edges(10);
        assert_eq!(bin_of(0.3, &edges[1..10]), 2);
        assert_eq!(bin_of(0.0, &edges[1..10]), 0);
        assert_eq!(bin_of(1.0, &edges[1..10]), 9);
        assert_eq!(bin_of(0.1, &edges[1..10]), 0);
    }

    #[test]
    fn group_auc_skips_single_class_groups() {
        // group 0: AUC 1 over 2 rows; group 1: one class, skipped; group 2: AUC 0 over 3 rows
        let groups = [0, 0, 1, 2, 2, 2];
        let labels = [true, false, true, true, false, false];
        let scores = [0.9, 0.1, 0.5, 0.1, 0.5, 0.6];
        assert_eq!(group_auc(&groups, 3, &labels, &scores), Some(2.0 / 5.0));
    }
}
