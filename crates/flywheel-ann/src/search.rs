//! Best-first search on one layer, greedy descent, and the per-thread scratch space.

use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::graph::Graph;

/// A node and its distance to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scored {
    pub distance: f32,
    pub node: u32,
}

impl Eq for Scored {}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.node.cmp(&other.node))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Visited marks (a 16-bit epoch per node, so starting a search is O(1) and the marks
/// take 2 bytes a node in cache), the two heaps and a buffer of unvisited neighbours.
#[derive(Default)]
pub(crate) struct Scratch {
    marks: Vec<u16>,
    epoch: u16,
    fresh: Vec<u32>,
    candidates: BinaryHeap<Reverse<Scored>>,
    results: BinaryHeap<Scored>,
}

impl Scratch {
    fn start(&mut self, nodes: usize) {
        if self.marks.len() < nodes {
            self.marks.resize(nodes, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.fill(0);
            self.epoch = 1;
        }
        self.candidates.clear();
        self.results.clear();
    }

    /// Marks `node`; true if it was not visited in this search yet.
    #[inline]
    fn first_visit(&mut self, node: u32) -> bool {
        let mark = &mut self.marks[node as usize];
        let fresh = *mark != self.epoch;
        *mark = self.epoch;
        fresh
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch space.
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| f(&mut cell.borrow_mut()))
}

/// From `entry` on `from_layer`, moves to the closest neighbour while one is closer, on
/// every layer down to `to_layer` (inclusive).
pub(crate) fn greedy_descend(
    graph: &Graph,
    distance: &impl Fn(u32) -> f32,
    mut current: Scored,
    from_layer: usize,
    to_layer: usize,
) -> Scored {
    for layer in (to_layer..=from_layer).rev() {
        loop {
            let mut moved = false;
            for &next in graph.neighbours(current.node, layer) {
                let d = distance(next);
                if d < current.distance {
                    current = Scored {
                        distance: d,
                        node: next,
                    };
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
    }
    current
}

/// How a search measures a node (`distance`) and prefetches it (`touch`).
pub(crate) struct Probe<D, T> {
    pub distance: D,
    pub touch: T,
}

/// The `ef` closest nodes on `layer` that `allowed` accepts, found best-first from
/// `entries`, closest first. Rejected nodes are still walked through.
///
/// A node's unvisited neighbours are collected first and `touch`ed (a load of each
/// cache line of their vectors, see [`crate::store`]), then measured: the loads miss
/// in parallel instead of one after another — safe Rust's stand-in for hnswlib's
/// `_mm_prefetch`.
pub(crate) fn search_layer<D: Fn(u32) -> f32, T: Fn(u32)>(
    graph: &Graph,
    probe: &Probe<D, T>,
    allowed: &impl Fn(u32) -> bool,
    entries: &[Scored],
    ef: usize,
    layer: usize,
    scratch: &mut Scratch,
) -> Vec<Scored> {
    scratch.start(graph.len());
    for entry in entries {
        if scratch.first_visit(entry.node) {
            scratch.candidates.push(Reverse(*entry));
            if allowed(entry.node) {
                scratch.results.push(*entry);
            }
        }
    }
    while scratch.results.len() > ef {
        scratch.results.pop();
    }
    while let Some(Reverse(closest)) = scratch.candidates.pop() {
        let full = scratch.results.len() >= ef;
        if full
            && scratch
                .results
                .peek()
                .is_some_and(|worst| closest.distance > worst.distance)
        {
            break;
        }
        scratch.fresh.clear();
        for &next in graph.neighbours(closest.node, layer) {
            if scratch.first_visit(next) {
                scratch.fresh.push(next);
                (probe.touch)(next);
                graph.touch(next, layer);
            }
        }
        for index in 0..scratch.fresh.len() {
            let next = scratch.fresh[index];
            let d = (probe.distance)(next);
            let worst = scratch.results.peek().map_or(f32::INFINITY, |w| w.distance);
            if scratch.results.len() < ef || d < worst {
                let scored = Scored {
                    distance: d,
                    node: next,
                };
                scratch.candidates.push(Reverse(scored));
                if allowed(next) {
                    scratch.results.push(scored);
                    if scratch.results.len() > ef {
                        scratch.results.pop();
                    }
                }
            }
        }
    }
    let mut found: Vec<Scored> = scratch.results.drain().collect();
    found.sort_unstable();
    found
}

/// Malkov & Yashunin's neighbour-selection heuristic (their algorithm 4, as hnswlib
/// implements it): walking `candidates` closest first, keep one only if it is closer to
/// the base than to every neighbour kept so far, until `max` are kept. This keeps links
/// in several directions instead of `max` links into one cluster.
pub(crate) fn select_neighbours(
    candidates: &[Scored],
    max: usize,
    pair_distance: impl Fn(u32, u32) -> f32,
) -> Vec<u32> {
    if candidates.len() <= max {
        return candidates.iter().map(|c| c.node).collect();
    }
    let mut kept: Vec<u32> = Vec::with_capacity(max);
    for candidate in candidates {
        if kept.len() >= max {
            break;
        }
        let diverse = kept
            .iter()
            .all(|k| pair_distance(*k, candidate.node) >= candidate.distance);
        if diverse {
            kept.push(candidate.node);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heuristic_skips_a_candidate_hidden_behind_a_kept_one() {
        // Points on a line: base at 0, candidates at 1, 1.5 (behind 1) and -2.
        let position = |n: u32| [1.0f32, 1.5, -2.0][n as usize];
        let candidates: Vec<Scored> = [0u32, 1, 2]
            .iter()
            .map(|&n| Scored {
                distance: position(n).abs(),
                node: n,
            })
            .collect();
        let kept = select_neighbours(&candidates, 2, |a, b| (position(a) - position(b)).abs());
        assert_eq!(kept, vec![0, 2]);
    }
}
