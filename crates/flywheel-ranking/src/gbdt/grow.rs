//! Growing one regression tree on gradient statistics, best leaf first, from
//! histograms of binned features (the smaller child's histogram is built, the
//! larger one is its parent's minus it).

use rayon::prelude::*;

use super::binning::{BinnedRows, MISSING_BIN};
use super::tree::{Split, Tree};

/// Gradient statistics of a set of rows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Stats {
    g: f64,
    h: f64,
    n: u32,
}

impl Stats {
    fn add(&mut self, other: Stats) {
        self.g += other.g;
        self.h += other.h;
        self.n += other.n;
    }

    fn minus(self, other: Stats) -> Stats {
        Stats {
            g: self.g - other.g,
            h: self.h - other.h,
            n: self.n - other.n,
        }
    }
}

/// How a tree may grow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GrowSettings {
    pub(crate) num_leaves: usize,
    pub(crate) max_depth: usize,
    pub(crate) min_rows_in_leaf: usize,
    pub(crate) min_hessian_in_leaf: f64,
    pub(crate) l2: f64,
    pub(crate) min_split_gain: f64,
    pub(crate) learning_rate: f64,
}

/// A split of a leaf that could be made.
#[derive(Debug, Clone, Copy)]
struct SplitChoice {
    gain: f64,
    feature: usize,
    /// Bins `1..=bin` go left.
    bin: usize,
    missing_left: bool,
    left: Stats,
}

/// A leaf while the tree grows: its rows are `indices[start..end]`.
struct GrowingLeaf {
    start: usize,
    end: usize,
    histogram: Vec<Stats>,
    total: Stats,
    depth: usize,
    best: Option<SplitChoice>,
    /// The node this leaf hangs from, and on which side (`None`: the root).
    parent: Option<(usize, bool)>,
}

/// Rows per parallel histogram task.
const CHUNK: usize = 8192;

fn histogram(data: &BinnedRows, rows: &[u32], grad: &[f64], hess: &[f64]) -> Vec<Stats> {
    let stride = data.stride();
    let size = data.width * stride;
    let fill = |rows: &[u32]| {
        let mut hist = vec![Stats::default(); size];
        for &row in rows {
            let row = row as usize;
            let (g, h) = (grad[row], hess[row]);
            let bins = &data.bins[row * data.width..(row + 1) * data.width];
            for (feature, &bin) in bins.iter().enumerate() {
                let cell = &mut hist[feature * stride + bin as usize];
                cell.g += g;
                cell.h += h;
                cell.n += 1;
            }
        }
        hist
    };
    if rows.len() <= CHUNK {
        return fill(rows);
    }
    rows.par_chunks(CHUNK).map(fill).reduce(
        || vec![Stats::default(); size],
        |mut a, b| {
            a.iter_mut().zip(b).for_each(|(x, y)| x.add(y));
            a
        },
    )
}

/// `G² / (H + λ)`: the loss reduction of a leaf's optimal value.
fn leaf_score(stats: Stats, l2: f64) -> f64 {
    stats.g * stats.g / (stats.h + l2)
}

fn allowed(stats: Stats, settings: &GrowSettings) -> bool {
    stats.n as usize >= settings.min_rows_in_leaf && stats.h >= settings.min_hessian_in_leaf
}

/// The best split of one leaf over every feature and threshold, missing values
/// tried on both sides.
fn best_split(
    data: &BinnedRows,
    histogram: &[Stats],
    total: Stats,
    settings: &GrowSettings,
) -> Option<SplitChoice> {
    let stride = data.stride();
    let parent = leaf_score(total, settings.l2);
    let mut best: Option<SplitChoice> = None;
    for (feature, edges) in data.edges.iter().enumerate() {
        let cells = &histogram[feature * stride..feature * stride + edges.bins()];
        let missing = cells[MISSING_BIN as usize];
        let sides: &[bool] = if missing.n == 0 {
            &[false]
        } else {
            &[false, true]
        };
        let mut cumulative = Stats::default();
        // The last bin always goes right, so at most `bins - 2` thresholds.
        for (bin, cell) in cells.iter().enumerate().take(edges.bins() - 1).skip(1) {
            cumulative.add(*cell);
            for &missing_left in sides {
                let mut left = cumulative;
                if missing_left {
                    left.add(missing);
                }
                let right = total.minus(left);
                if !allowed(left, settings) || !allowed(right, settings) {
                    continue;
                }
                let gain = leaf_score(left, settings.l2) + leaf_score(right, settings.l2) - parent;
                if gain > settings.min_split_gain && best.is_none_or(|b| gain > b.gain) {
                    best = Some(SplitChoice {
                        gain,
                        feature,
                        bin,
                        missing_left,
                        left,
                    });
                }
            }
        }
    }
    best
}

/// What growing one tree produced.
pub(crate) struct GrownTree {
    pub(crate) tree: Tree,
    /// Per split made: (feature, gain).
    pub(crate) gains: Vec<(usize, f64)>,
}

/// Grows one tree on the rows in `indices` (which it reorders).
pub(crate) fn grow_tree(
    data: &BinnedRows,
    indices: &mut [u32],
    grad: &[f64],
    hess: &[f64],
    settings: &GrowSettings,
) -> GrownTree {
    let root_histogram = histogram(data, indices, grad, hess);
    let total = total_of(&root_histogram, data);
    let mut leaves = vec![new_leaf(
        data,
        0,
        indices.len(),
        root_histogram,
        total,
        0,
        None,
        settings,
    )];
    let mut splits: Vec<Split> = Vec::new();
    let mut gains = Vec::new();
    while leaves.len() < settings.num_leaves {
        let Some(index) = leaf_to_split(&leaves) else {
            break;
        };
        let leaf = leaves.swap_remove(index);
        let Some(choice) = leaf.best else {
            continue;
        };
        let node = splits.len();
        splits.push(Split {
            feature: choice.feature as u32,
            threshold: data.edges[choice.feature].threshold(choice.bin),
            missing_left: choice.missing_left,
            left: 0,
            right: 0,
        });
        attach(&mut splits, leaf.parent, node as i32);
        gains.push((choice.feature, choice.gain));
        let middle = partition(data, &mut indices[leaf.start..leaf.end], &choice) + leaf.start;
        let (left_total, right_total) = (choice.left, leaf.total.minus(choice.left));
        let left_smaller = middle - leaf.start <= leaf.end - middle;
        let small_range = if left_smaller {
            (leaf.start, middle)
        } else {
            (middle, leaf.end)
        };
        let small = histogram(data, &indices[small_range.0..small_range.1], grad, hess);
        let mut large = leaf.histogram;
        large
            .iter_mut()
            .zip(&small)
            .for_each(|(l, s)| *l = l.minus(*s));
        let (left_hist, right_hist) = if left_smaller {
            (small, large)
        } else {
            (large, small)
        };
        let depth = leaf.depth + 1;
        leaves.push(new_leaf(
            data,
            leaf.start,
            middle,
            left_hist,
            left_total,
            depth,
            Some((node, true)),
            settings,
        ));
        leaves.push(new_leaf(
            data,
            middle,
            leaf.end,
            right_hist,
            right_total,
            depth,
            Some((node, false)),
            settings,
        ));
    }
    let mut values = Vec::with_capacity(leaves.len());
    for (k, leaf) in leaves.iter().enumerate() {
        attach(&mut splits, leaf.parent, !(k as i32));
        values.push(-leaf.total.g / (leaf.total.h + settings.l2) * settings.learning_rate);
    }
    GrownTree {
        tree: Tree {
            splits,
            leaves: values,
        },
        gains,
    }
}

fn total_of(histogram: &[Stats], data: &BinnedRows) -> Stats {
    // Every row is in exactly one bin of feature 0.
    let stride = data.stride();
    let bins = data.edges.first().map_or(0, |e| e.bins());
    let mut total = Stats::default();
    for cell in &histogram[..bins.min(stride)] {
        total.add(*cell);
    }
    total
}

#[allow(clippy::too_many_arguments)]
fn new_leaf(
    data: &BinnedRows,
    start: usize,
    end: usize,
    histogram: Vec<Stats>,
    total: Stats,
    depth: usize,
    parent: Option<(usize, bool)>,
    settings: &GrowSettings,
) -> GrowingLeaf {
    let deep_enough = settings.max_depth > 0 && depth >= settings.max_depth;
    let best = if deep_enough {
        None
    } else {
        best_split(data, &histogram, total, settings)
    };
    GrowingLeaf {
        start,
        end,
        histogram,
        total,
        depth,
        best,
        parent,
    }
}

/// The leaf whose best split gains most (ties: the earliest).
fn leaf_to_split(leaves: &[GrowingLeaf]) -> Option<usize> {
    let mut chosen: Option<(usize, f64)> = None;
    for (index, leaf) in leaves.iter().enumerate() {
        if let Some(best) = leaf.best {
            if chosen.is_none_or(|(_, gain)| best.gain > gain) {
                chosen = Some((index, best.gain));
            }
        }
    }
    chosen.map(|(index, _)| index)
}

/// Points the parent's child slot (or nothing, for the root) at `child`.
fn attach(splits: &mut [Split], parent: Option<(usize, bool)>, child: i32) {
    if let Some((node, is_left)) = parent {
        if is_left {
            splits[node].left = child;
        } else {
            splits[node].right = child;
        }
    }
}

/// Moves the rows going left to the front (keeping their order), returns how many.
fn partition(data: &BinnedRows, rows: &mut [u32], choice: &SplitChoice) -> usize {
    let goes_left = |row: u32| {
        let bin = data.bins[row as usize * data.width + choice.feature];
        if bin == MISSING_BIN {
            choice.missing_left
        } else {
            bin as usize <= choice.bin
        }
    };
    let (left, right): (Vec<u32>, Vec<u32>) = rows.iter().partition(|&&row| goes_left(row));
    let count = left.len();
    rows[..count].copy_from_slice(&left);
    rows[count..].copy_from_slice(&right);
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> GrowSettings {
        GrowSettings {
            num_leaves: 4,
            max_depth: 0,
            min_rows_in_leaf: 1,
            min_hessian_in_leaf: 0.0,
            l2: 0.0,
            min_split_gain: 0.0,
            learning_rate: 1.0,
        }
    }

    #[test]
    fn a_tree_fits_a_step_function_exactly_and_sends_missing_values_where_they_belong() {
        // target = 3 where x0 > 0.5, else -1; rows with x0 missing have target 3.
        let raw: Vec<Vec<f32>> = (0..40)
            .map(|i| {
                let x0 = if i % 10 == 9 {
                    f32::NAN
                } else {
                    (i % 10) as f32 / 10.0
                };
                vec![x0, (i % 7) as f32]
            })
            .collect();
        let target: Vec<f64> = raw
            .iter()
            .map(|r| {
                if r[0].is_nan() || r[0] > 0.5 {
                    3.0
                } else {
                    -1.0
                }
            })
            .collect();
        let refs: Vec<&[f32]> = raw.iter().map(|r| r.as_slice()).collect();
        let data = BinnedRows::new(&refs, 2, 16);
        // Squared loss: g = score − target at score 0, h = 1.
        let grad: Vec<f64> = target.iter().map(|t| -t).collect();
        let hess = vec![1.0; 40];
        let mut indices: Vec<u32> = (0..40).collect();
        let grown = grow_tree(&data, &mut indices, &grad, &hess, &settings());
        for (row, t) in raw.iter().zip(&target) {
            assert!((grown.tree.predict(row) - t).abs() < 1e-12, "{row:?}");
        }
        assert_eq!(grown.gains[0].0, 0, "the first split is on x0");
    }
}
