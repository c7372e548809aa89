//! [`FlatIndex`]: exact search by scanning every vector — the oracle the HNSW index is
//! tested against, and the right index for small catalogs.

use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

use crate::error::{AnnError, Result};
use crate::ids::IdTable;
use crate::metric::Metric;
use crate::search::Scored;
use crate::store::VectorStore;

/// Exact nearest neighbours over the same stored vectors and distances as [`crate::HnswIndex`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlatIndex {
    store: VectorStore,
    ids: IdTable,
}

impl FlatIndex {
    /// An empty index of `dimension`-long vectors.
    pub fn new(metric: Metric, dimension: usize) -> Result<Self> {
        Ok(Self {
            store: VectorStore::new(metric, dimension)?,
            ids: IdTable::default(),
        })
    }

    /// Adds vectors given row after row (all or none).
    pub fn add_batch(&mut self, ids: &[u32], vectors: &[f32]) -> Result<()> {
        let dimension = self.store.dimension();
        if vectors.len() != ids.len() * dimension {
            return Err(AnnError::InvalidParameter(format!(
                "{} ids need {} values of dimension {dimension}, got {}",
                ids.len(),
                ids.len() * dimension,
                vectors.len()
            )));
        }
        self.ids.check_new(ids)?;
        self.store.validate_batch(vectors.chunks_exact(dimension))?;
        for (id, vector) in ids.iter().zip(vectors.chunks_exact(dimension)) {
            self.store.push(vector);
            self.ids.push(*id);
        }
        Ok(())
    }

    /// Adds one vector.
    pub fn add(&mut self, id: u32, vector: &[f32]) -> Result<()> {
        self.store.check(vector)?;
        self.add_batch(&[id], vector)
    }

    /// Removes `id` from results.
    pub fn remove(&mut self, id: u32) -> Result<()> {
        self.ids.remove(id)
    }

    /// The exact `k` nearest ids, closest first (ties to the earlier-added vector).
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<(u32, f32)>> {
        self.search_filtered(query, k, &|_| true)
    }

    /// The exact `k` nearest ids that `filter` accepts.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        filter: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<(u32, f32)>> {
        let prepared = self.store.prepare_query(query)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let mut best: BinaryHeap<Scored> = BinaryHeap::with_capacity(k + 1);
        for node in 0..self.store.len() as u32 {
            if self.ids.is_deleted(node) || !filter(self.ids.id(node)) {
                continue;
            }
            let scored = Scored {
                distance: self.store.reported_distance(&prepared, node),
                node,
            };
            if best.len() < k {
                best.push(scored);
            } else if best.peek().is_some_and(|worst| scored < *worst) {
                best.pop();
                best.push(scored);
            }
        }
        let mut sorted = best.into_vec();
        sorted.sort_unstable();
        Ok(sorted
            .into_iter()
            .map(|s| (self.ids.id(s.node), s.distance))
            .collect())
    }

    /// Live vectors.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no live vector is held.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Values per vector.
    pub fn dimension(&self) -> usize {
        self.store.dimension()
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.store.metric()
    }

    /// Rebuilds the id map after decoding and checks the invariants.
    pub(crate) fn restore(mut self) -> Result<Self> {
        self.store.validate_decoded()?;
        self.ids.restore(self.store.len())?;
        Ok(self)
    }
}
