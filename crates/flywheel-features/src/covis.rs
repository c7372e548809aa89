//! Co-visitation neighbour lists, one per item, kept apart from the other item state
//! so that the many list updates of one event touch as few cache lines as possible.

use serde::{Deserialize, Serialize};

/// The neighbours of one item: item indices in insertion order (a linear scan of a
/// few hundred bytes of `u32` beats binary search plus shifting on insert, which
/// profiling showed dominated), with their accumulated weights in a parallel vector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Neighbors {
    ids: Vec<u32>,
    weights: Vec<f64>,
}

impl Neighbors {
    /// Adds `weight` to the co-visitation of `other`. The list grows to twice
    /// `max_neighbors`, then keeps only the `max_neighbors` strongest (ties: lower index).
    pub(crate) fn add(&mut self, other: u32, weight: f64, max_neighbors: usize) {
        match find(&self.ids, other) {
            Some(at) => self.weights[at] += weight,
            None => {
                self.ids.push(other);
                self.weights.push(weight);
                if self.ids.len() > 2 * max_neighbors {
                    self.prune(max_neighbors);
                }
            }
        }
    }

    fn prune(&mut self, keep: usize) {
        let mut pairs: Vec<(u32, f64)> = self.iter().collect();
        pairs.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        pairs.truncate(keep);
        self.ids = pairs.iter().map(|&(j, _)| j).collect();
        self.weights = pairs.iter().map(|&(_, w)| w).collect();
    }

    /// (item index, weight), in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.ids.iter().copied().zip(self.weights.iter().copied())
    }
}

/// The position of `wanted` in `ids`, comparing 16 at a time so the compiler can
/// vectorise the scan.
fn find(ids: &[u32], wanted: u32) -> Option<usize> {
    let mut chunks = ids.chunks_exact(16);
    let mut start = 0;
    for chunk in &mut chunks {
        if chunk.iter().fold(false, |hit, &id| hit | (id == wanted)) {
            return chunk
                .iter()
                .position(|&id| id == wanted)
                .map(|at| start + at);
        }
        start += 16;
    }
    let rest = chunks.remainder();
    rest.iter()
        .position(|&id| id == wanted)
        .map(|at| start + at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_accumulate_and_the_weakest_are_pruned() {
        let mut n = Neighbors::default();
        for j in 0..4u32 {
            n.add(j, f64::from(j + 1), 2);
        }
        assert_eq!(n.iter().count(), 4);
        n.add(1, 10.0, 2);
        n.add(9, 0.5, 2);
        // Five entries > 2·2: keep the two strongest, item 1 (12) and item 3 (4).
        assert_eq!(n.iter().collect::<Vec<_>>(), vec![(1, 12.0), (3, 4.0)]);
        n.add(2, 1.0, 2);
        n.add(3, 1.0, 2);
        assert_eq!(
            n.iter().collect::<Vec<_>>(),
            vec![(1, 12.0), (3, 5.0), (2, 1.0)]
        );
    }

    #[test]
    fn find_scans_full_chunks_and_the_remainder() {
        let ids: Vec<u32> = (100..140).collect();
        for (at, id) in ids.iter().enumerate() {
            assert_eq!(find(&ids, *id), Some(at));
        }
        assert_eq!(find(&ids, 7), None);
        assert_eq!(find(&[], 7), None);
    }
}
