//! Small numeric helpers: compensated summation, normal quantiles and the one
//! percentile every crate uses.

use statrs::distribution::{ContinuousCDF, Normal};

/// Neumaier-compensated sum: as accurate as Python's `math.fsum` for our data sizes,
/// so means over ten million rows agree with the references to the last digits.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompensatedSum {
    sum: f64,
    compensation: f64,
}

impl CompensatedSum {
    /// Adds one value.
    #[inline]
    pub fn add(&mut self, value: f64) {
        let total = self.sum + value;
        if self.sum.abs() >= value.abs() {
            self.compensation += (self.sum - total) + value;
        } else {
            self.compensation += (value - total) + self.sum;
        }
        self.sum = total;
    }

    /// The sum so far.
    #[inline]
    pub fn value(&self) -> f64 {
        self.sum + self.compensation
    }
}

/// Compensated sum of an iterator.
pub fn sum(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut acc = CompensatedSum::default();
    values.into_iter().for_each(|v| acc.add(v));
    acc.value()
}

/// Two-sided normal quantile: the z with P(|Z| <= z) = `confidence`.
/// For 0.95 this is scipy's `norm.ppf(0.975)` = 1.959963984540054.
pub fn two_sided_z(confidence: f64) -> f64 {
    const Z975: f64 = 1.959_963_984_540_054;
    if confidence == 0.95 {
        return Z975;
    }
    let normal = Normal::standard();
    normal.inverse_cdf(0.5 + confidence / 2.0)
}

/// Mean and standard error (sample sd with ddof 1, divided by sqrt(n)) of `values`.
/// Returns `(mean, 0.0)` for a single value.
pub fn mean_and_se(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count() as f64;
    if n == 0.0 {
        return (0.0, 0.0);
    }
    let mean = sum(values.clone()) / n;
    if n < 2.0 {
        return (mean, 0.0);
    }
    let ss = sum(values.map(|v| (v - mean) * (v - mean)));
    (mean, (ss / (n - 1.0)).sqrt() / n.sqrt())
}

/// `numpy.percentile` with linear interpolation; `q` in [0, 1]; `sorted` non-empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return 0.0;
    };
    let position = q * last as f64;
    let lower = position.floor() as usize;
    let upper = (lower + 1).min(last);
    sorted[lower] + (position - lower as f64) * (sorted[upper] - sorted[lower])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensated_sum_recovers_small_terms() {
        // 1e16 + 1 + -1e16 is 0 in naive float arithmetic, 1 exactly here.
        assert_eq!(sum([1e16, 1.0, -1e16]), 1.0);
    }

    #[test]
    fn z_matches_scipy() {
        // scipy.stats.norm.ppf(0.975) = 1.959963984540054; ppf(0.95) = 1.6448536269514722
        assert_eq!(two_sided_z(0.95), 1.959963984540054);
        assert!((two_sided_z(0.90) - 1.6448536269514722).abs() < 1e-12);
    }

    #[test]
    fn mean_and_se_of_known_values() {
        // numpy: mean([1,2,3,4]) = 2.5, std(ddof=1)/2 = 0.6454972243679028
        let (m, se) = mean_and_se([1.0, 2.0, 3.0, 4.0].into_iter());
        assert_eq!(m, 2.5);
        assert!((se - 0.6454972243679028).abs() < 1e-15);
    }
}
