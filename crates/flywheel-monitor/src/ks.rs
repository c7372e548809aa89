//! Two-sample Kolmogorov–Smirnov test as `scipy.stats.ks_2samp` (two-sided) computes it.
//!
//! scipy (1.11–1.13) picks the method with `mode="auto"`: **exact** when
//! `max(n1, n2) <= 10000`, otherwise asymptotic. The exact p-value counts lattice paths:
//! `_compute_prob_outside_square` when `n1 == n2`, else
//! `_compute_outer_prob_inside_method` (Hodges 1958; Viehmann 2021 recursion for 1 − p),
//! both after rounding D to a multiple of `1 / lcm(n1, n2)`.
//! Our asymptotic method is the Kolmogorov limit `Q(sqrt(n1 n2 / (n1 + n2)) · D)`;
//! scipy's asymptotic branch uses `kstwo.sf(D, round(en))` instead, which differs by
//! O(1/sqrt(n)) — the two are named apart ([`KsMethod`]).

use serde::{Deserialize, Serialize};

use crate::error::{check_sample, sorted, Result};

/// scipy's `MAX_AUTO_N`: above this sample size `mode="auto"` stops using the exact test.
pub const SCIPY_MAX_AUTO_N: usize = 10_000;

/// How the p-value is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KsMethod {
    /// scipy's rule: exact if `max(n1, n2) <= 10000`, else asymptotic.
    Auto,
    /// Exact lattice-path probability (scipy `method="exact"`).
    Exact,
    /// Kolmogorov limiting distribution with `en = n1 n2 / (n1 + n2)`.
    AsymptoticKolmogorov,
}

/// Result of the two-sample KS test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KsResult {
    /// D = sup |F_ref − F_cur| (for the exact method, rounded to a multiple of 1/lcm like scipy).
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// The method actually used.
    pub method: KsMethod,
    /// `p_value <= 0.05` (Evidently's KS threshold).
    pub drifted: bool,
}

/// Evidently's KS drift threshold on the p-value.
pub const EVIDENTLY_KS_THRESHOLD: f64 = 0.05;

/// Two-sided two-sample KS test of `reference` vs `current`.
pub fn ks_2samp(reference: &[f64], current: &[f64], method: KsMethod) -> Result<KsResult> {
    check_sample(reference, "reference")?;
    check_sample(current, "current")?;
    let (n1, n2) = (reference.len(), current.len());
    let d = ks_statistic(&sorted(reference), &sorted(current));
    let method = match method {
        KsMethod::Auto if n1.max(n2) <= SCIPY_MAX_AUTO_N => KsMethod::Exact,
        KsMethod::Auto => KsMethod::AsymptoticKolmogorov,
        other => other,
    };
    let (statistic, p) = match method {
        KsMethod::Exact => exact_p(n1, n2, d),
        _ => {
            let en = (n1 as f64 * n2 as f64) / (n1 + n2) as f64;
            (d, kolmogorov_sf(en.sqrt() * d))
        }
    };
    let p_value = p.clamp(0.0, 1.0);
    Ok(KsResult {
        statistic,
        p_value,
        method,
        drifted: p_value <= EVIDENTLY_KS_THRESHOLD,
    })
}

/// D of two sorted samples, evaluated at every observed value like scipy.
fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < a.len() || j < b.len() {
        let v = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => x.min(*y),
            (Some(x), None) => *x,
            (None, Some(y)) => *y,
            (None, None) => break,
        };
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        d = d.max((i as f64 / n1 - j as f64 / n2).abs());
    }
    d
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// scipy `_attempt_exact_2kssamp` (two-sided): returns the rounded D and the p-value.
fn exact_p(n1: usize, n2: usize, d: f64) -> (f64, f64) {
    let g = gcd(n1, n2);
    let lcm = (n1 / g) as f64 * n2 as f64;
    let h = (d * lcm).round_ties_even();
    let d = h / lcm;
    if h == 0.0 {
        return (d, 1.0);
    }
    let h = h as usize;
    let p = if n1 == n2 {
        prob_outside_square(n1, h)
    } else {
        outer_prob_inside_method(n1, n2, g, h)
    };
    (d, p)
}

/// scipy `_compute_prob_outside_square`: P(D_{n,n} >= h/n) by a Horner-like sum.
fn prob_outside_square(n: usize, h: usize) -> f64 {
    let mut p = 0.0;
    let mut k = (n / h) as i64;
    while k >= 0 {
        let ku = k as usize;
        let mut p1 = 1.0;
        for j in 0..h {
            let num = n as f64 - (ku * h) as f64 - j as f64;
            p1 = num * p1 / (n + ku * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// scipy `_compute_outer_prob_inside_method`: share of lattice paths leaving the band.
fn outer_prob_inside_method(m: usize, n: usize, g: usize, h: usize) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (mg, ng) = ((m / g) as i64, (n / g) as i64);
    let (h, n_i, m_i) = (h as i64, n as i64, m as i64);
    let mut minj: i64 = 0;
    let mut maxj: i64 = ((h + mg - 1) / mg).min(n_i + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n_i + 1) as usize;
    let mut a = vec![1.0f64; len_a.max(1)];
    for v in a.iter_mut().take(maxj as usize) {
        *v = 0.0;
    }
    for i in 1..=m_i {
        let (lastminj, lastlen) = (minj, curlen);
        minj = ((ng * i - h).div_euclid(mg) + 1).max(0).min(n_i);
        maxj = (ceil_div(ng * i + h, mg)).min(n_i + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            let src = (jj + minj - lastminj) as usize;
            val = (a[src] * i as f64 + val * j as f64) / (i + j) as f64;
            a[jj as usize] = val;
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let start = (maxj - minj) as usize;
            let end = (start + (lastlen - curlen) as usize).min(a.len());
            for v in &mut a[start..end] {
                *v = 1.0;
            }
        }
    }
    a[(maxj - minj - 1) as usize]
}

fn ceil_div(a: i64, b: i64) -> i64 {
    -((-a).div_euclid(b))
}

/// Survival function of the Kolmogorov distribution, Q(x) = P(K > x).
pub fn kolmogorov_sf(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x < 1.0 {
        // Q = 1 − sqrt(2π)/x · Σ exp(−(2k−1)² π² / (8x²))
        let s: f64 = (1..=20)
            .map(|k| {
                (-((2 * k - 1) as f64).powi(2) * std::f64::consts::PI.powi(2) / (8.0 * x * x)).exp()
            })
            .sum();
        return 1.0 - (2.0 * std::f64::consts::PI).sqrt() / x * s;
    }
    let s: f64 = (1..=100)
        .map(|k| {
            let sign = if k % 2 == 1 { 1.0 } else { -1.0 };
            sign * (-2.0 * (k * k) as f64 * x * x).exp()
        })
        .sum();
    2.0 * s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_samples() {
        let x = [1.0, 2.0, 3.0];
        let r = ks_2samp(&x, &x, KsMethod::Auto).expect("ks");
        assert_eq!(r.statistic, 0.0);
        assert_eq!(r.p_value, 1.0);
    }

    #[test]
    fn disjoint_small_samples_match_scipy() {
        // scipy.stats.ks_2samp([1,2,3], [4,5,6]) -> statistic 1.0, pvalue 0.1 (exact)
        let r = ks_2samp(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], KsMethod::Auto).expect("ks");
        assert_eq!(r.statistic, 1.0);
        assert!((r.p_value - 0.1).abs() < 1e-12, "{}", r.p_value);
        // ks_2samp([1,2,3,4], [5,6]) -> 1.0, p = 2 / C(6,2) = 0.13333333333333333
        let r = ks_2samp(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0], KsMethod::Auto).expect("ks");
        assert!((r.p_value - 2.0 / 15.0).abs() < 1e-12, "{}", r.p_value);
    }

    #[test]
    fn kolmogorov_limit_known_values() {
        // scipy.stats.kstwobign.sf(1.0) = 0.26999967167735456; sf(0.5) = 0.9639452436648751
        assert!((kolmogorov_sf(1.0) - 0.26999967167735456).abs() < 1e-12);
        assert!((kolmogorov_sf(0.5) - 0.9639452436648751).abs() < 1e-12);
    }

    #[test]
    fn empty_is_an_error() {
        assert!(ks_2samp(&[], &[1.0], KsMethod::Auto).is_err());
    }
}
