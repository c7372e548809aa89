//! [`HnswIndex`]: the HNSW graph over the stored vectors, with ids, tombstones and the
//! optional int8 codes.

use serde::{Deserialize, Serialize};

use crate::build::link_new_nodes;
use crate::error::{AnnError, Result};
use crate::graph::{draw_level, Graph};
use crate::ids::IdTable;
use crate::metric::Metric;
use crate::quant::Int8Store;
use crate::search::{greedy_descend, search_layer, with_scratch, Probe, Scored};
use crate::store::VectorStore;

/// How the vectors are held for graph navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Quantization {
    /// f32 only.
    #[default]
    None,
    /// Int8 codes (per-coordinate range) navigate the graph; the `ef` best candidates are
    /// re-ranked in f32, which stays in memory. See [`crate::quant`].
    Int8,
}

/// The build parameters of an HNSW index.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Neighbours per node on the upper layers (layer 0 keeps `2·m`). 16 is usual.
    pub m: usize,
    /// Candidates considered when linking a new node. 200 is usual.
    pub ef_construction: usize,
    /// Seed of the node levels; the same seed and inserts give the same graph.
    pub seed: u64,
    /// Int8 storage for navigation, or none.
    pub quantization: Quantization,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 200,
            seed: 0x5EED,
            quantization: Quantization::None,
        }
    }
}

impl HnswParams {
    fn validate(&self) -> Result<()> {
        if !(2..=256).contains(&self.m) {
            return Err(AnnError::InvalidParameter(format!(
                "m must be in 2..=256, got {}",
                self.m
            )));
        }
        if self.ef_construction < 1 {
            return Err(AnnError::InvalidParameter(
                "ef_construction must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// A hierarchical navigable small-world graph (Malkov & Yashunin 2018).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HnswIndex {
    params: HnswParams,
    store: VectorStore,
    graph: Graph,
    int8: Option<Int8Store>,
    /// External id of each node, and the tombstones.
    ids: IdTable,
}

impl HnswIndex {
    /// An empty index of `dimension`-long vectors.
    pub fn new(metric: Metric, dimension: usize, params: HnswParams) -> Result<Self> {
        params.validate()?;
        Ok(Self {
            params,
            store: VectorStore::new(metric, dimension)?,
            graph: Graph::new(params.m),
            int8: None,
            ids: IdTable::default(),
        })
    }

    /// Adds `ids.len()` vectors given row after row in `vectors`, linking them in
    /// parallel on rayon's pool. Either every vector is added or none (the batch is
    /// checked first).
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
        if self.graph.len() + ids.len() >= u32::MAX as usize {
            return Err(AnnError::Full(u32::MAX as usize - 1));
        }
        self.store.validate_batch(vectors.chunks_exact(dimension))?;
        let first = self.graph.len() as u32;
        for (id, vector) in ids.iter().zip(vectors.chunks_exact(dimension)) {
            self.graph.push_node(draw_level(
                self.params.seed,
                self.graph.len() as u32,
                self.params.m,
            ));
            self.store.push(vector);
            self.ids.push(*id);
        }
        link_new_nodes(
            &mut self.graph,
            &self.store,
            first,
            self.params.ef_construction,
        );
        self.update_int8(first);
        Ok(())
    }

    /// Adds one vector (an item that arrived online).
    pub fn add(&mut self, id: u32, vector: &[f32]) -> Result<()> {
        self.store.check(vector)?;
        self.add_batch(&[id], vector)
    }

    fn update_int8(&mut self, first: u32) {
        if self.params.quantization != Quantization::Int8 {
            return;
        }
        match &mut self.int8 {
            None => self.int8 = Some(Int8Store::train(&self.store)),
            Some(codes) => {
                for node in first..self.graph.len() as u32 {
                    codes.push(self.store.row(node));
                }
            }
        }
    }

    /// Switches the navigation storage: int8 codes are learned from every stored vector
    /// (the graph is unchanged), or dropped.
    pub fn set_quantization(&mut self, quantization: Quantization) {
        self.params.quantization = quantization;
        self.int8 = match quantization {
            Quantization::Int8 => Some(Int8Store::train(&self.store)),
            Quantization::None => None,
        };
    }

    /// Re-learns the int8 ranges from every stored vector (after many online inserts
    /// outside the first ranges). Does nothing without int8 quantization.
    pub fn retrain_int8(&mut self) {
        if self.params.quantization == Quantization::Int8 {
            self.int8 = Some(Int8Store::train(&self.store));
        }
    }

    /// Removes `id` from results (a tombstone: its node still routes searches). The id
    /// may be added again later, as a new node.
    pub fn remove(&mut self, id: u32) -> Result<()> {
        self.ids.remove(id)
    }

    /// The `k` nearest ids to `query` with their distances, closest first, exploring
    /// `max(ef, k)` candidates (a larger `ef` is slower and finds more true neighbours).
    pub fn search(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<(u32, f32)>> {
        if !self.ids.has_tombstones() {
            // Nothing removed: no per-node check at all (the common case, and the fastest).
            self.search_with(query, k, ef, &|_| true)
        } else {
            self.search_with(query, k, ef, &|node| !self.ids.is_deleted(node))
        }
    }

    /// Like [`Self::search`], returning only ids `filter` accepts (e.g. items the user has
    /// not seen). Rejected nodes still route the search; a filter that rejects most of
    /// the index makes the search visit much of the graph.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<(u32, f32)>> {
        let allowed = |node: u32| !self.ids.is_deleted(node) && filter(self.ids.id(node));
        self.search_with(query, k, ef, &allowed)
    }

    /// The search itself; `allowed` takes a node number.
    fn search_with(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        allowed: &impl Fn(u32) -> bool,
    ) -> Result<Vec<(u32, f32)>> {
        let prepared = self.store.prepare_query(query)?;
        let Some(entry) = self.graph.entry() else {
            return Ok(Vec::new());
        };
        if k == 0 {
            return Ok(Vec::new());
        }
        let ef = ef.max(k);
        let candidates = match &self.int8 {
            Some(codes) => {
                let shifted = codes.prepare_query(&prepared);
                let distance = |node| codes.distance(&shifted, node);
                self.navigate(
                    &Probe {
                        distance,
                        touch: |node| codes.touch(node),
                    },
                    allowed,
                    entry,
                    ef,
                )
            }
            None => {
                let distance = |node| self.store.internal_distance(&prepared, node);
                self.navigate(
                    &Probe {
                        distance,
                        touch: |node| self.store.touch(node),
                    },
                    allowed,
                    entry,
                    ef,
                )
            }
        };
        Ok(self.finish(&prepared, candidates, k))
    }

    fn navigate(
        &self,
        probe: &Probe<impl Fn(u32) -> f32, impl Fn(u32)>,
        allowed: &impl Fn(u32) -> bool,
        entry: u32,
        ef: usize,
    ) -> Vec<Scored> {
        let start = Scored {
            distance: (probe.distance)(entry),
            node: entry,
        };
        let closest = greedy_descend(
            &self.graph,
            &probe.distance,
            start,
            self.graph.top_level(),
            1,
        );
        with_scratch(|scratch| {
            search_layer(&self.graph, probe, allowed, &[closest], ef, 0, scratch)
        })
    }

    /// The `k` best of the candidates in the metric's reported distance (re-ranked in
    /// f32 when they were found on int8 codes).
    fn finish(&self, prepared: &[f32], mut candidates: Vec<Scored>, k: usize) -> Vec<(u32, f32)> {
        let exact_order = self.int8.is_none();
        if exact_order {
            candidates.truncate(k);
        }
        let mut scored: Vec<Scored> = candidates
            .iter()
            .map(|c| Scored {
                distance: self.store.reported_distance(prepared, c.node),
                node: c.node,
            })
            .collect();
        if !exact_order {
            scored.sort_unstable();
            scored.truncate(k);
        }
        scored
            .into_iter()
            .map(|s| (self.ids.id(s.node), s.distance))
            .collect()
    }

    /// Live (not removed) vectors.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no live vector is held.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether `id` is live in the index.
    pub fn contains(&self, id: u32) -> bool {
        self.ids.contains(id)
    }

    /// Values per vector.
    pub fn dimension(&self) -> usize {
        self.store.dimension()
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.store.metric()
    }

    /// The build parameters.
    pub fn params(&self) -> &HnswParams {
        &self.params
    }

    /// Bytes held: vectors, graph, int8 codes, ids and the id map (approximate for the map).
    pub fn memory_bytes(&self) -> usize {
        self.store.bytes()
            + self.graph.bytes()
            + self.int8.as_ref().map_or(0, Int8Store::bytes)
            + self.ids.memory_bytes()
    }

    /// Rebuilds the id map after decoding and checks every invariant.
    pub(crate) fn restore(mut self) -> Result<Self> {
        self.params
            .validate()
            .map_err(|e| AnnError::Corrupt(e.to_string()))?;
        self.store.validate_decoded()?;
        let nodes = self.store.len();
        if self.graph.m() != self.params.m {
            return Err(AnnError::Corrupt(
                "the graph's M disagrees with its parameters".into(),
            ));
        }
        self.ids.restore(nodes)?;
        self.graph.validate_decoded(nodes)?;
        if let Some(codes) = &self.int8 {
            codes.validate_decoded(&self.store)?;
        }
        Ok(self)
    }
}
