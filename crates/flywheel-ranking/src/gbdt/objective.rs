//! Gradients and hessians of the two objectives, and their validation metrics.

use std::ops::Range;

/// `1 / (1 + e^{-x})`, stable for large |x|.
pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The hessian floor: a leaf of rows the model is already sure about still has a
/// finite Newton step.
const MIN_HESSIAN: f64 = 1e-16;

/// Binary log-loss: `g = w·(p − y)`, `h = w·p(1 − p)` at `p = σ(score)`.
pub(crate) fn binary_gradients(
    scores: &[f64],
    labels: &[f32],
    weights: &[f32],
    grad: &mut [f64],
    hess: &mut [f64],
) {
    for i in 0..scores.len() {
        let p = sigmoid(scores[i]);
        let w = f64::from(weights[i]);
        grad[i] = w * (p - f64::from(labels[i]));
        hess[i] = w * (p * (1.0 - p)).max(MIN_HESSIAN);
    }
}

/// The mean weighted log-loss of scores (margins) against labels.
pub(crate) fn log_loss(scores: &[f64], labels: &[f32], weights: &[f32]) -> f64 {
    let mut total = 0.0;
    let mut weight = 0.0;
    for i in 0..scores.len() {
        let p = sigmoid(scores[i]).clamp(1e-15, 1.0 - 1e-15);
        let y = f64::from(labels[i]);
        let w = f64::from(weights[i]);
        total -= w * (y * p.ln() + (1.0 - y) * (1.0 - p).ln());
        weight += w;
    }
    total / weight.max(f64::MIN_POSITIVE)
}

/// The DCG gain of a label: `2^label − 1`.
fn gain(label: f32) -> f64 {
    f64::from(label).exp2() - 1.0
}

/// The DCG discount of a 0-based position: `1 / log2(2 + position)`.
fn discount(position: usize) -> f64 {
    1.0 / ((position + 2) as f64).log2()
}

/// The order of a group's rows by descending score (ties: lower index first).
fn order_by_score(scores: &[f64], group: Range<usize>) -> Vec<usize> {
    let mut order: Vec<usize> = group.collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

/// The ideal DCG@k of a group's labels.
fn ideal_dcg(labels: &[f32], group: Range<usize>, k: usize) -> f64 {
    let mut sorted: Vec<f32> = labels[group].to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    sorted
        .iter()
        .take(k)
        .enumerate()
        .map(|(position, label)| gain(*label) * discount(position))
        .sum()
}

/// Settings of the LambdaRank gradients.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LambdaSettings {
    /// The sigmoid's steepness.
    pub(crate) sigma: f64,
    /// Whether a group's lambdas are rescaled by `log2(1 + Σ|λ|) / Σ|λ|` (LightGBM's
    /// normalisation, which keeps groups with many pairs from dominating).
    pub(crate) normalize: bool,
}

/// LambdaRank gradients for every group: for each pair `(i, j)` of one group with
/// `label_i > label_j`, at the current order, `Δ = |gain_i − gain_j| · |disc(pos_i) −
/// disc(pos_j)| / IDCG`, `ρ = σ(−σ·(s_i − s_j))`; `g_i −= σ·ρ·Δ`, `g_j += σ·ρ·Δ`, both
/// hessians `+= σ²·ρ(1 − ρ)·Δ`. With Δ held fixed these are the exact derivatives
/// of `Σ Δ·ln(1 + e^{−σ(s_i − s_j)})`. Groups with one label value contribute nothing.
pub(crate) fn lambdarank_gradients(
    scores: &[f64],
    labels: &[f32],
    weights: &[f32],
    groups: &[Range<usize>],
    settings: LambdaSettings,
    grad: &mut [f64],
    hess: &mut [f64],
) {
    grad.iter_mut().for_each(|g| *g = 0.0);
    hess.iter_mut().for_each(|h| *h = 0.0);
    let sigma = settings.sigma;
    for group in groups {
        let idcg = ideal_dcg(labels, group.clone(), group.len());
        if idcg <= 0.0 {
            continue;
        }
        let order = order_by_score(scores, group.clone());
        let mut position = vec![0usize; group.len()];
        for (rank, &row) in order.iter().enumerate() {
            position[row - group.start] = rank;
        }
        let lowest = labels[group.clone()]
            .iter()
            .copied()
            .fold(f32::INFINITY, f32::min);
        let mut lambda_sum = 0.0;
        // Only rows above the group's lowest label can be the better row of a pair.
        for i in group.clone().filter(|&i| labels[i] > lowest) {
            for j in group.clone() {
                if labels[i] <= labels[j] {
                    continue;
                }
                let delta = (gain(labels[i]) - gain(labels[j])).abs()
                    * (discount(position[i - group.start]) - discount(position[j - group.start]))
                        .abs()
                    / idcg;
                let rho = sigmoid(-sigma * (scores[i] - scores[j]));
                let pair_weight = 0.5 * f64::from(weights[i] + weights[j]);
                let lambda = sigma * rho * delta * pair_weight;
                let h = sigma * sigma * rho * (1.0 - rho) * delta * pair_weight;
                grad[i] -= lambda;
                grad[j] += lambda;
                hess[i] += h;
                hess[j] += h;
                lambda_sum += 2.0 * lambda;
            }
        }
        if settings.normalize && lambda_sum > 0.0 {
            let factor = (1.0 + lambda_sum).log2() / lambda_sum;
            for i in group.clone() {
                grad[i] *= factor;
                hess[i] *= factor;
            }
        }
        for i in group.clone() {
            hess[i] = hess[i].max(MIN_HESSIAN);
        }
    }
}

/// Mean NDCG@k over the groups that hold a positive gain.
pub(crate) fn mean_ndcg(scores: &[f64], labels: &[f32], groups: &[Range<usize>], k: usize) -> f64 {
    let mut total = 0.0;
    let mut counted = 0usize;
    for group in groups {
        let idcg = ideal_dcg(labels, group.clone(), k);
        if idcg <= 0.0 {
            continue;
        }
        let dcg: f64 = order_by_score(scores, group.clone())
            .iter()
            .take(k)
            .enumerate()
            .map(|(position, &row)| gain(labels[row]) * discount(position))
            .sum();
        total += dcg / idcg;
        counted += 1;
    }
    total / counted.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairwise_loss(scores: &[f64], labels: &[f32], frozen_delta: &[Vec<f64>], sigma: f64) -> f64 {
        let mut loss = 0.0;
        for i in 0..scores.len() {
            for j in 0..scores.len() {
                if labels[i] > labels[j] {
                    loss +=
                        frozen_delta[i][j] * (1.0 + (-sigma * (scores[i] - scores[j])).exp()).ln();
                }
            }
        }
        loss
    }

    #[test]
    fn lambdarank_gradients_are_the_derivatives_of_the_weighted_pairwise_loss() {
        let scores = vec![0.3, -1.2, 0.9, 0.1, 2.0, -0.4];
        let labels = vec![1.0, 0.0, 2.0, 0.0, 0.0, 1.0];
        let weights = vec![1.0; 6];
        let groups = vec![Range { start: 0, end: 6 }];
        let sigma = 1.5;
        let settings = LambdaSettings {
            sigma,
            normalize: false,
        };
        let mut grad = vec![0.0; 6];
        let mut hess = vec![0.0; 6];
        lambdarank_gradients(
            &scores, &labels, &weights, &groups, settings, &mut grad, &mut hess,
        );
        // Δ at the base point, held fixed (a small step does not reorder the rows).
        let order = order_by_score(&scores, 0..6);
        let mut position = [0usize; 6];
        for (rank, row) in order.iter().enumerate() {
            position[*row] = rank;
        }
        let idcg = ideal_dcg(&labels, 0..6, 6);
        let delta: Vec<Vec<f64>> = (0..6)
            .map(|i| {
                (0..6)
                    .map(|j| {
                        (gain(labels[i]) - gain(labels[j])).abs()
                            * (discount(position[i]) - discount(position[j])).abs()
                            / idcg
                    })
                    .collect()
            })
            .collect();
        let eps = 1e-6;
        for i in 0..6 {
            let mut up = scores.clone();
            up[i] += eps;
            let mut down = scores.clone();
            down[i] -= eps;
            let numeric = (pairwise_loss(&up, &labels, &delta, sigma)
                - pairwise_loss(&down, &labels, &delta, sigma))
                / (2.0 * eps);
            assert!(
                (numeric - grad[i]).abs() < 1e-6,
                "row {i}: {numeric} vs {}",
                grad[i]
            );
            assert!(hess[i] > 0.0);
        }
    }

    #[test]
    fn binary_gradients_are_the_derivatives_of_the_log_loss() {
        let scores = vec![0.7, -2.0, 0.0];
        let labels = vec![1.0, 0.0, 1.0];
        let weights = vec![1.0, 2.0, 0.5];
        let mut grad = vec![0.0; 3];
        let mut hess = vec![0.0; 3];
        binary_gradients(&scores, &labels, &weights, &mut grad, &mut hess);
        let total = |s: &[f64]| log_loss(s, &labels, &weights) * 3.5;
        let eps = 1e-6;
        for i in 0..3 {
            let mut up = scores.clone();
            up[i] += eps;
            let mut down = scores.clone();
            down[i] -= eps;
            let numeric = (total(&up) - total(&down)) / (2.0 * eps);
            assert!(
                (numeric - grad[i]).abs() < 1e-6,
                "row {i}: {numeric} vs {}",
                grad[i]
            );
            let g_up = {
                let mut g = vec![0.0; 3];
                let mut h = vec![0.0; 3];
                binary_gradients(&up, &labels, &weights, &mut g, &mut h);
                g[i]
            };
            assert!(
                ((g_up - grad[i]) / eps - hess[i]).abs() < 1e-4,
                "hessian of row {i}"
            );
        }
    }

    #[test]
    fn ndcg_is_one_for_the_ideal_order_and_skips_groups_without_positives() {
        let labels = vec![1.0, 0.0, 0.0, 0.0, 0.0];
        let groups = vec![0..3, 3..5];
        assert_eq!(
            mean_ndcg(&[3.0, 2.0, 1.0, 0.0, 1.0], &labels, &groups, 10),
            1.0
        );
        let worst = mean_ndcg(&[1.0, 2.0, 3.0, 0.0, 1.0], &labels, &groups, 10);
        assert!((worst - 0.5).abs() < 1e-12, "{worst}");
    }
}
