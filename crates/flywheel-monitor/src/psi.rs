//! Population Stability Index under the two definitions in use, named apart because
//! they give different numbers on the same data (0.0743 vs 0.0683 on `num_shift`).
//!
//! * [`psi_evidently`]: Evidently 0.7.x (`get_binned_data` + `_psi`). A numerical
//!   column with more than 20 distinct reference values is cut into equal-width
//!   Sturges bins over the *combined* sample (numpy `histogram_bin_edges(...,
//!   "sturges")`); otherwise each distinct value is a bin. An empty bin's share becomes
//!   `min(non-zero share) / 1e6` if that minimum is ≤ 1e-4, else 1e-4 (per sample, no
//!   renormalisation). Drift when PSI ≥ 0.1.
//! * [`psi_deciles`]: the classic credit-scoring PSI — bins at the reference deciles
//!   (numpy linear quantiles), open outer bins, empty shares floored at 1e-4.
//!
//! PSI = Σ (ref_i − cur_i) · ln(ref_i / cur_i).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{check_sample, sorted, MonitorError, Result};

/// Evidently's default PSI drift threshold.
pub const EVIDENTLY_PSI_THRESHOLD: f64 = 0.1;

/// Distinct reference values above which Evidently bins a numerical column.
pub const EVIDENTLY_MAX_DISCRETE_VALUES: usize = 20;

/// A PSI value with the bins it was computed on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PsiResult {
    /// The index.
    pub psi: f64,
    /// Number of bins (or categories).
    pub bins: usize,
    /// Reference share per bin (after the empty-bin floor).
    pub reference_shares: Vec<f64>,
    /// Current share per bin (after the empty-bin floor).
    pub current_shares: Vec<f64>,
    /// `psi >= threshold` with Evidently's threshold 0.1.
    pub drifted: bool,
}

/// Evidently's PSI of a numerical feature (see the module doc for the binning rule).
pub fn psi_evidently(reference: &[f64], current: &[f64]) -> Result<PsiResult> {
    check_sample(reference, "reference")?;
    check_sample(current, "current")?;
    let distinct = distinct_count(reference);
    if distinct <= EVIDENTLY_MAX_DISCRETE_VALUES {
        let key = |v: &f64| v.to_bits();
        let r: Vec<u64> = reference.iter().map(key).collect();
        let c: Vec<u64> = current.iter().map(key).collect();
        return psi_categorical(&r, &c);
    }
    let edges = sturges_edges(reference, current);
    let r = histogram_shares(reference, &edges);
    let c = histogram_shares(current, &edges);
    Ok(finish(fill_zeros_evidently(r), fill_zeros_evidently(c)))
}

/// Evidently's PSI of a categorical feature: one bin per category seen in either sample.
pub fn psi_categorical<T: Ord + Clone>(reference: &[T], current: &[T]) -> Result<PsiResult> {
    let (r, c) = category_shares(reference, current)?;
    Ok(finish(fill_zeros_evidently(r), fill_zeros_evidently(c)))
}

/// Evidently's PSI of a categorical feature given as counts per category (one bin per
/// category counted on either side), as [`psi_categorical`] on the expanded samples.
pub fn psi_categorical_counts(
    reference: &BTreeMap<String, u64>,
    current: &BTreeMap<String, u64>,
) -> Result<PsiResult> {
    let (nr, nc) = (
        reference.values().sum::<u64>(),
        current.values().sum::<u64>(),
    );
    if nr == 0 {
        return Err(MonitorError::EmptySample("reference"));
    }
    if nc == 0 {
        return Err(MonitorError::EmptySample("current"));
    }
    let mut keys: Vec<&String> = reference.keys().chain(current.keys()).collect();
    keys.sort();
    keys.dedup();
    let shares = |counts: &BTreeMap<String, u64>, total: u64| -> Vec<f64> {
        keys.iter()
            .map(|k| counts.get(*k).copied().unwrap_or(0) as f64 / total as f64)
            .collect()
    };
    let (r, c) = (shares(reference, nr), shares(current, nc));
    Ok(finish(fill_zeros_evidently(r), fill_zeros_evidently(c)))
}

/// Shares per category (sorted category order) of both samples, without any floor.
pub fn category_shares<T: Ord + Clone>(
    reference: &[T],
    current: &[T],
) -> Result<(Vec<f64>, Vec<f64>)> {
    if reference.is_empty() {
        return Err(MonitorError::EmptySample("reference"));
    }
    if current.is_empty() {
        return Err(MonitorError::EmptySample("current"));
    }
    let mut counts: BTreeMap<T, (usize, usize)> = BTreeMap::new();
    for v in reference {
        counts.entry(v.clone()).or_default().0 += 1;
    }
    for v in current {
        counts.entry(v.clone()).or_default().1 += 1;
    }
    let (nr, nc) = (reference.len() as f64, current.len() as f64);
    Ok(counts
        .values()
        .map(|(r, c)| (*r as f64 / nr, *c as f64 / nc))
        .unzip())
}

/// Classic decile PSI: `n_bins` bins at reference quantiles, shares floored at `eps`
/// (the reference uses `n_bins = 10`, `eps = 1e-4`).
pub fn psi_deciles(
    reference: &[f64],
    current: &[f64],
    n_bins: usize,
    eps: f64,
) -> Result<PsiResult> {
    check_sample(reference, "reference")?;
    check_sample(current, "current")?;
    if n_bins < 2 || !(eps > 0.0 && eps < 1.0) {
        return Err(MonitorError::InvalidParameter(format!(
            "decile PSI needs n_bins >= 2 (got {n_bins}) and 0 < eps < 1 (got {eps})"
        )));
    }
    let ref_sorted = sorted(reference);
    let cuts: Vec<f64> = (1..n_bins)
        .map(|i| numpy_quantile(&ref_sorted, linspace_point(0.0, 1.0, n_bins, i)))
        .collect();
    let shares = |values: &[f64]| -> Vec<f64> {
        let mut counts = vec![0usize; n_bins];
        for v in values {
            counts[cuts.partition_point(|c| c <= v)] += 1;
        }
        counts
            .iter()
            .map(|&k| (k as f64 / values.len() as f64).max(eps))
            .collect()
    };
    Ok(finish(shares(reference), shares(current)))
}

fn finish(reference_shares: Vec<f64>, current_shares: Vec<f64>) -> PsiResult {
    let psi = reference_shares
        .iter()
        .zip(&current_shares)
        .map(|(r, c)| (r - c) * (r / c).ln())
        .sum::<f64>();
    PsiResult {
        psi,
        bins: reference_shares.len(),
        reference_shares,
        current_shares,
        drifted: psi >= EVIDENTLY_PSI_THRESHOLD,
    }
}

/// Evidently's empty-bin rule (`fill_zeros` in `drift_reference.py`).
pub fn fill_zeros_evidently(mut shares: Vec<f64>) -> Vec<f64> {
    let min_nonzero = shares
        .iter()
        .copied()
        .filter(|s| *s != 0.0)
        .fold(f64::INFINITY, f64::min);
    let floor = if min_nonzero <= 1e-4 {
        min_nonzero / 1e6
    } else {
        1e-4
    };
    for s in shares.iter_mut().filter(|s| **s == 0.0) {
        *s = floor;
    }
    shares
}

fn distinct_count(values: &[f64]) -> usize {
    let s = sorted(values);
    1 + s.windows(2).filter(|w| w[0] != w[1]).count()
}

/// `np.histogram_bin_edges(concat(reference, current), bins="sturges")`.
pub fn sturges_edges(reference: &[f64], current: &[f64]) -> Vec<f64> {
    let all = reference.iter().chain(current);
    let lo = all.clone().copied().fold(f64::INFINITY, f64::min);
    let hi = all.copied().fold(f64::NEG_INFINITY, f64::max);
    let n = (reference.len() + current.len()) as f64;
    if lo == hi {
        // numpy: a zero range becomes (lo − 0.5, hi + 0.5) with a single bin
        return vec![lo - 0.5, hi + 0.5];
    }
    let width = (hi - lo) / (n.log2() + 1.0);
    let bins = (((hi - lo) / width).ceil() as usize).max(1);
    (0..=bins)
        .map(|i| linspace_point(lo, hi, bins, i))
        .collect()
}

/// Point `i` of `np.linspace(start, stop, intervals + 1)`.
fn linspace_point(start: f64, stop: f64, intervals: usize, i: usize) -> f64 {
    if i == intervals {
        stop
    } else {
        i as f64 * ((stop - start) / intervals as f64) + start
    }
}

/// `np.histogram(values, edges)[0] / len(values)`: bins are `[e_i, e_{i+1})`, the last closed.
fn histogram_shares(values: &[f64], edges: &[f64]) -> Vec<f64> {
    let bins = edges.len() - 1;
    let mut counts = vec![0usize; bins];
    for v in values {
        if *v < edges[0] || *v > edges[bins] {
            continue;
        }
        let i = edges
            .partition_point(|e| e <= v)
            .saturating_sub(1)
            .min(bins - 1);
        counts[i] += 1;
    }
    counts
        .iter()
        .map(|&k| k as f64 / values.len() as f64)
        .collect()
}

/// numpy's default (linear) quantile of sorted data, with numpy's lerp.
pub fn numpy_quantile(sorted_values: &[f64], q: f64) -> f64 {
    let n = sorted_values.len();
    let virtual_index = q * (n - 1) as f64;
    let lo = (virtual_index.floor() as usize).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    let t = virtual_index - lo as f64;
    let (a, b) = (sorted_values[lo], sorted_values[hi]);
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_samples_have_zero_psi() {
        let x: Vec<f64> = (0..100).map(f64::from).collect();
        assert_eq!(psi_evidently(&x, &x).expect("psi").psi, 0.0);
        assert_eq!(psi_deciles(&x, &x, 10, 1e-4).expect("psi").psi, 0.0);
    }

    #[test]
    fn constant_samples_do_not_panic() {
        let x = vec![3.0; 50];
        let r = psi_evidently(&x, &x).expect("psi");
        assert_eq!(r.bins, 1);
        assert_eq!(r.psi, 0.0);
        let d = psi_deciles(&x, &[4.0; 10], 10, 1e-4).expect("psi");
        assert!(d.psi.is_finite());
    }

    #[test]
    fn empty_and_nan_are_errors() {
        assert!(psi_evidently(&[], &[1.0]).is_err());
        assert!(psi_evidently(&[1.0, f64::NAN], &[1.0]).is_err());
        assert!(psi_deciles(&[1.0], &[1.0], 1, 1e-4).is_err());
        assert!(psi_categorical::<&str>(&["a"], &[]).is_err());
    }

    #[test]
    fn counts_give_the_psi_of_the_expanded_samples() {
        let r = ["a", "a", "b", "c"];
        let c = ["a", "b", "b", "b", "d"];
        let count = |v: &[&str]| {
            let mut m = BTreeMap::new();
            for x in v {
                *m.entry(x.to_string()).or_insert(0u64) += 1;
            }
            m
        };
        let from_counts = psi_categorical_counts(&count(&r), &count(&c)).expect("psi");
        let from_samples = psi_categorical(&r, &c).expect("psi");
        assert!((from_counts.psi - from_samples.psi).abs() < 1e-12);
        assert!(psi_categorical_counts(&BTreeMap::new(), &count(&c)).is_err());
    }

    #[test]
    fn zero_fill_follows_evidently() {
        let f = fill_zeros_evidently(vec![0.5, 0.0, 0.5]);
        assert_eq!(f, vec![0.5, 1e-4, 0.5]);
        let g = fill_zeros_evidently(vec![0.99995, 0.00005, 0.0]);
        assert_eq!(g[2], 0.00005 / 1e6);
    }
}
