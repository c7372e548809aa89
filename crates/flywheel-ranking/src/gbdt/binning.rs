//! Feature values to histogram bins.
//!
//! Each feature gets at most `max_bins` bins of roughly equal row counts, cut
//! between distinct values seen in training. Bin 0 holds missing values (NaN); bin
//! `b ≥ 1` holds the values `v` with `upper[b-2] < v ≤ upper[b-1]`, and the last
//! upper bound is `+∞`. An upper bound is the largest training value of its bin, so
//! a split "bins ≤ s go left" is exactly "value ≤ upper[s-1] goes left" on raw
//! values: the trees need no bins at prediction time.

/// The bin of missing values.
pub(crate) const MISSING_BIN: u8 = 0;

/// The bin edges of one feature.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BinEdges {
    /// `upper[b-1]` is the largest value of bin `b`; the last one is `+∞`.
    pub(crate) upper: Vec<f32>,
}

impl BinEdges {
    /// Edges for `values` (NaNs are ignored) with at most `max_bins` bins.
    pub(crate) fn fit(values: &[f32], max_bins: usize) -> BinEdges {
        let mut finite: Vec<f32> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        finite.sort_unstable_by(f32::total_cmp);
        let mut distinct: Vec<(f32, usize)> = Vec::new();
        for v in finite.iter().copied() {
            match distinct.last_mut() {
                Some((last, count)) if *last == v => *count += 1,
                _ => distinct.push((v, 1)),
            }
        }
        let mut upper = Vec::new();
        if distinct.len() <= max_bins {
            upper.extend(distinct.iter().map(|(v, _)| *v));
        } else {
            let per_bin = finite.len() as f64 / max_bins as f64;
            let mut filled = 0usize;
            let mut target = per_bin;
            for (index, (v, count)) in distinct.iter().enumerate() {
                filled += count;
                let remaining_bins = max_bins.saturating_sub(upper.len() + 1);
                let remaining_values = distinct.len() - index - 1;
                if filled as f64 >= target || remaining_values <= remaining_bins {
                    upper.push(*v);
                    target = filled as f64 + per_bin;
                }
                if upper.len() + 1 == max_bins {
                    break;
                }
            }
        }
        // The last bin is open above, so values larger than any seen fall into it.
        if let Some(last) = upper.last_mut() {
            *last = f32::INFINITY;
        } else {
            upper.push(f32::INFINITY);
        }
        BinEdges { upper }
    }

    /// Bins of this feature, missing bin included.
    pub(crate) fn bins(&self) -> usize {
        self.upper.len() + 1
    }

    /// The bin of one value.
    pub(crate) fn bin(&self, value: f32) -> u8 {
        if value.is_nan() {
            return MISSING_BIN;
        }
        let index = self.upper.partition_point(|upper| *upper < value);
        (index.min(self.upper.len() - 1) + 1) as u8
    }

    /// The threshold of the split "bins ≤ `bin` go left".
    pub(crate) fn threshold(&self, bin: usize) -> f32 {
        self.upper[bin - 1]
    }
}

/// The training rows as bins: row-major, one byte per (row, feature).
pub(crate) struct BinnedRows {
    /// Features per row.
    pub(crate) width: usize,
    /// `bins[row * width + feature]`.
    pub(crate) bins: Vec<u8>,
    /// The edges of each feature.
    pub(crate) edges: Vec<BinEdges>,
}

impl BinnedRows {
    /// Bins the rows; the edges come from every row's values.
    pub(crate) fn new(rows: &[&[f32]], width: usize, max_bins: usize) -> BinnedRows {
        let edges: Vec<BinEdges> = (0..width)
            .map(|j| {
                let column: Vec<f32> = rows.iter().map(|r| r[j]).collect();
                BinEdges::fit(&column, max_bins)
            })
            .collect();
        let mut bins = Vec::with_capacity(rows.len() * width);
        for row in rows {
            bins.extend(row.iter().zip(&edges).map(|(v, e)| e.bin(*v)));
        }
        BinnedRows { width, bins, edges }
    }

    /// The largest bin count of any feature (histogram stride).
    pub(crate) fn stride(&self) -> usize {
        self.edges.iter().map(BinEdges::bins).max().unwrap_or(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_distinct_values_get_a_bin_each_and_splits_are_exact_on_raw_values() {
        let values = vec![3.0, 1.0, 2.0, 2.0, f32::NAN, 1.0];
        let edges = BinEdges::fit(&values, 10);
        assert_eq!(edges.upper, vec![1.0, 2.0, f32::INFINITY]);
        assert_eq!(edges.bin(f32::NAN), MISSING_BIN);
        assert_eq!(edges.bin(0.5), 1);
        assert_eq!(edges.bin(1.0), 1);
        assert_eq!(edges.bin(1.5), 2);
        assert_eq!(edges.bin(2.0), 2);
        assert_eq!(edges.bin(99.0), 3);
        // "bins ≤ 2 go left" is "value ≤ 2.0 goes left".
        for v in [0.0f32, 1.0, 1.5, 2.0, 2.5, 3.0] {
            assert_eq!(edges.bin(v) <= 2, v <= edges.threshold(2), "{v}");
        }
    }

    #[test]
    fn many_values_get_at_most_max_bins_of_similar_size() {
        let values: Vec<f32> = (0..10_000).map(|i| (i as f32 * 0.37).sin()).collect();
        let edges = BinEdges::fit(&values, 16);
        assert!(edges.upper.len() <= 16, "{}", edges.upper.len());
        let mut counts = vec![0usize; edges.bins()];
        for v in &values {
            counts[edges.bin(*v) as usize] += 1;
        }
        assert_eq!(counts[0], 0);
        assert!(
            counts[1..].iter().all(|c| *c > 300 && *c < 1500),
            "{counts:?}"
        );
    }

    #[test]
    fn a_constant_or_empty_feature_has_one_bin() {
        let edges = BinEdges::fit(&[5.0, 5.0], 8);
        assert_eq!(edges.upper, vec![f32::INFINITY]);
        let edges = BinEdges::fit(&[f32::NAN], 8);
        assert_eq!(edges.bin(1.0), 1);
        assert_eq!(edges.bins(), 2);
    }
}
