//! The layered neighbour lists of an HNSW graph, in flat arrays.
//!
//! Layer 0 holds every node: one fixed block of `1 + m0` `u32`s per node (the count,
//! then the neighbours), so a node's list is one contiguous read. A node of level
//! `L > 0` also owns `L` blocks of `1 + m` in `upper`, starting at `upper_start[node]`.

use serde::{Deserialize, Serialize};

use crate::error::{AnnError, Result};

const NO_UPPER: u32 = u32::MAX;

/// Neighbour lists, levels and the entry point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Graph {
    m: usize,
    m0: usize,
    levels: Vec<u8>,
    layer0: Vec<u32>,
    upper_start: Vec<u32>,
    upper: Vec<u32>,
    entry: Option<u32>,
    top_level: usize,
}

impl Graph {
    /// An empty graph with at most `m` neighbours per node on upper layers, `2·m` on layer 0.
    pub fn new(m: usize) -> Self {
        Self {
            m,
            m0: 2 * m,
            levels: Vec::new(),
            layer0: Vec::new(),
            upper_start: Vec::new(),
            upper: Vec::new(),
            entry: None,
            top_level: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.levels.len()
    }

    pub fn m(&self) -> usize {
        self.m
    }

    /// The most neighbours a node keeps on `layer`.
    pub fn max_links(&self, layer: usize) -> usize {
        if layer == 0 {
            self.m0
        } else {
            self.m
        }
    }

    pub fn level(&self, node: u32) -> usize {
        usize::from(self.levels[node as usize])
    }

    pub fn entry(&self) -> Option<u32> {
        self.entry
    }

    pub fn top_level(&self) -> usize {
        self.top_level
    }

    /// Makes `node` the entry point (it must have the highest level).
    pub fn set_entry(&mut self, node: u32) {
        self.entry = Some(node);
        self.top_level = self.level(node);
    }

    /// The block holding `node`'s list on `layer` (the count first).
    #[inline]
    fn block(&self, node: u32, layer: usize) -> (bool, usize, usize) {
        if layer == 0 {
            (false, node as usize * (1 + self.m0), self.m0)
        } else {
            let start = self.upper_start[node as usize] as usize + (layer - 1) * (1 + self.m);
            (true, start, self.m)
        }
    }

    /// `node`'s neighbours on `layer` (which must be at most its level).
    #[inline]
    pub fn neighbours(&self, node: u32, layer: usize) -> &[u32] {
        let (upper, start, _) = self.block(node, layer);
        let links = if upper { &self.upper } else { &self.layer0 };
        let count = links[start] as usize;
        &links[start + 1..start + 1 + count]
    }

    /// Loads the first cache line of `node`'s list on `layer` (a software prefetch, see
    /// [`crate::store`]): nodes measured now are the ones expanded next.
    #[inline]
    pub fn touch(&self, node: u32, layer: usize) {
        let (upper, start, _) = self.block(node, layer);
        let links = if upper { &self.upper } else { &self.layer0 };
        std::hint::black_box(links[start]);
    }

    /// Replaces `node`'s neighbours on `layer` (at most [`Self::max_links`] are kept).
    pub fn set_neighbours(&mut self, node: u32, layer: usize, list: &[u32]) {
        let (upper, start, capacity) = self.block(node, layer);
        let links = if upper {
            &mut self.upper
        } else {
            &mut self.layer0
        };
        let count = list.len().min(capacity);
        links[start] = count as u32;
        links[start + 1..start + 1 + count].copy_from_slice(&list[..count]);
    }

    /// Appends a node of `level` with no neighbours; returns its number.
    pub fn push_node(&mut self, level: usize) -> u32 {
        let node = self.levels.len() as u32;
        self.levels.push(level as u8);
        self.layer0.resize(self.layer0.len() + 1 + self.m0, 0);
        if level > 0 {
            self.upper_start.push(self.upper.len() as u32);
            self.upper
                .resize(self.upper.len() + level * (1 + self.m), 0);
        } else {
            self.upper_start.push(NO_UPPER);
        }
        node
    }

    /// Bytes held by the lists.
    pub fn bytes(&self) -> usize {
        self.levels.capacity()
            + std::mem::size_of::<u32>()
                * (self.layer0.capacity() + self.upper_start.capacity() + self.upper.capacity())
    }

    /// Checks every invariant of a decoded graph, so a corrupt file cannot make a later
    /// search index out of bounds.
    pub fn validate_decoded(&self, nodes: usize) -> Result<()> {
        let corrupt = |what: &str| Err(AnnError::Corrupt(format!("graph: {what}")));
        if self.m < 2 || self.m0 != 2 * self.m {
            return corrupt("neighbour limits are invalid");
        }
        if self.levels.len() != nodes
            || self.upper_start.len() != nodes
            || self.layer0.len() != nodes * (1 + self.m0)
        {
            return corrupt("node counts disagree with the vectors");
        }
        let mut upper_needed = 0usize;
        for node in 0..nodes {
            let level = usize::from(self.levels[node]);
            let start = self.upper_start[node];
            if (level == 0) != (start == NO_UPPER) {
                return corrupt("a node's level disagrees with its upper lists");
            }
            if level > 0 {
                if start as usize != upper_needed {
                    return corrupt("upper lists are not laid out in node order");
                }
                upper_needed += level * (1 + self.m);
            }
        }
        if self.upper.len() != upper_needed {
            return corrupt("upper lists have the wrong length");
        }
        match self.entry {
            None if nodes > 0 => return corrupt("no entry point"),
            Some(entry) if entry as usize >= nodes || self.level(entry) != self.top_level => {
                return corrupt("the entry point is invalid")
            }
            _ => {}
        }
        for node in 0..nodes as u32 {
            for layer in 0..=self.level(node) {
                let (upper, start, capacity) = self.block(node, layer);
                let links = if upper { &self.upper } else { &self.layer0 };
                let count = links[start] as usize;
                if count > capacity {
                    return corrupt("a neighbour list is longer than its block");
                }
                let in_range = |n: &u32| (*n as usize) < nodes && self.level(*n) >= layer;
                if !links[start + 1..start + 1 + count].iter().all(in_range) {
                    return corrupt("a neighbour does not exist on its layer");
                }
            }
        }
        Ok(())
    }
}

/// The level of node `node` under `seed`: `⌊−ln(u)/ln(m)⌋` with `u` uniform in (0, 1]
/// drawn by SplitMix64 from (seed, node), so levels never depend on insertion threads.
pub(crate) fn draw_level(seed: u64, node: u32, m: usize) -> usize {
    let mut z = seed ^ (u64::from(node).wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let uniform = ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let level = -uniform.ln() / (m as f64).ln();
    (level as usize).min(MAX_LEVEL)
}

/// Levels are capped here (a level above it has probability `m^-16`).
pub(crate) const MAX_LEVEL: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_stored_and_capped() {
        let mut graph = Graph::new(2);
        let a = graph.push_node(0);
        let b = graph.push_node(1);
        graph.set_neighbours(a, 0, &[1, 1, 1, 1, 1, 1]);
        graph.set_neighbours(b, 1, &[0, 0, 0]);
        assert_eq!(graph.neighbours(a, 0).len(), 4);
        assert_eq!(graph.neighbours(b, 1), &[0, 0]);
        assert!(graph.neighbours(b, 0).is_empty());
    }

    #[test]
    fn levels_follow_the_geometric_law() {
        let above_zero = (0..100_000).filter(|n| draw_level(7, *n, 16) > 0).count();
        // P(level > 0) = 1/16.
        assert!((5_600..6_900).contains(&above_zero), "{above_zero}");
    }
}
