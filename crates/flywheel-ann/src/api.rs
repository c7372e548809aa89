//! The seam retrieval uses: [`AnnIndex`], implemented by [`Index`] (either kind),
//! [`HnswIndex`] and [`FlatIndex`].

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::flat::FlatIndex;
use crate::hnsw::HnswIndex;
use crate::metric::Metric;

/// A nearest-neighbour index over `u32` ids. Distances are "smaller is closer" in the
/// index's [`Metric`] (squared L2, `−dot`, `1 − cos`); results are closest first.
pub trait AnnIndex {
    /// Adds `vector` under `id` (refused if `id` is live, or the vector is bad).
    fn add(&mut self, id: u32, vector: &[f32]) -> Result<()>;
    /// Removes `id` from future results.
    fn remove(&mut self, id: u32) -> Result<()>;
    /// The `k` nearest ids; `ef` is the HNSW search breadth (ignored by exact indexes).
    fn search(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<(u32, f32)>>;
    /// The `k` nearest ids that `filter` accepts.
    fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<(u32, f32)>>;
    /// Live vectors.
    fn len(&self) -> usize;
    /// True when no live vector is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Values per vector.
    fn dimension(&self) -> usize;
    /// The metric.
    fn metric(&self) -> Metric;
}

impl AnnIndex for HnswIndex {
    fn add(&mut self, id: u32, vector: &[f32]) -> Result<()> {
        HnswIndex::add(self, id, vector)
    }
    fn remove(&mut self, id: u32) -> Result<()> {
        HnswIndex::remove(self, id)
    }
    fn search(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<(u32, f32)>> {
        HnswIndex::search(self, query, k, ef)
    }
    fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<(u32, f32)>> {
        HnswIndex::search_filtered(self, query, k, ef, filter)
    }
    fn len(&self) -> usize {
        HnswIndex::len(self)
    }
    fn dimension(&self) -> usize {
        HnswIndex::dimension(self)
    }
    fn metric(&self) -> Metric {
        HnswIndex::metric(self)
    }
}

impl AnnIndex for FlatIndex {
    fn add(&mut self, id: u32, vector: &[f32]) -> Result<()> {
        FlatIndex::add(self, id, vector)
    }
    fn remove(&mut self, id: u32) -> Result<()> {
        FlatIndex::remove(self, id)
    }
    fn search(&self, query: &[f32], k: usize, _ef: usize) -> Result<Vec<(u32, f32)>> {
        FlatIndex::search(self, query, k)
    }
    fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        _ef: usize,
        filter: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<(u32, f32)>> {
        FlatIndex::search_filtered(self, query, k, filter)
    }
    fn len(&self) -> usize {
        FlatIndex::len(self)
    }
    fn dimension(&self) -> usize {
        FlatIndex::dimension(self)
    }
    fn metric(&self) -> Metric {
        FlatIndex::metric(self)
    }
}

/// Either kind of index behind one type (what a retrieval model stores).
// One index per model: the size of the enum itself does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Index {
    /// Approximate, for large catalogs.
    Hnsw(HnswIndex),
    /// Exact, for small catalogs and as the oracle.
    Flat(FlatIndex),
}

impl Index {
    fn inner(&self) -> &dyn AnnIndex {
        match self {
            Index::Hnsw(index) => index,
            Index::Flat(index) => index,
        }
    }

    fn inner_mut(&mut self) -> &mut dyn AnnIndex {
        match self {
            Index::Hnsw(index) => index,
            Index::Flat(index) => index,
        }
    }

    /// Adds vectors row after row (all or none).
    pub fn add_batch(&mut self, ids: &[u32], vectors: &[f32]) -> Result<()> {
        match self {
            Index::Hnsw(index) => index.add_batch(ids, vectors),
            Index::Flat(index) => index.add_batch(ids, vectors),
        }
    }
}

impl AnnIndex for Index {
    fn add(&mut self, id: u32, vector: &[f32]) -> Result<()> {
        self.inner_mut().add(id, vector)
    }
    fn remove(&mut self, id: u32) -> Result<()> {
        self.inner_mut().remove(id)
    }
    fn search(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<(u32, f32)>> {
        self.inner().search(query, k, ef)
    }
    fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<(u32, f32)>> {
        self.inner().search_filtered(query, k, ef, filter)
    }
    fn len(&self) -> usize {
        self.inner().len()
    }
    fn dimension(&self) -> usize {
        self.inner().dimension()
    }
    fn metric(&self) -> Metric {
        self.inner().metric()
    }
}
