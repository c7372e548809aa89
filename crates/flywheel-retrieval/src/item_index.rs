//! An approximate nearest-neighbour index over a model's item vectors, so that a channel
//! scoring `user · item` does not scan the whole catalog: the ALS item factors (and any
//! later vector channel) are served from an HNSW graph of `flywheel-ann` under the
//! inner-product metric. Below [`AnnSettings::min_items`] items the exact scan is both
//! cheaper and exact, and no index is built.

use flywheel_ann::{AnnIndex, HnswIndex, HnswParams, Index, Metric, Quantization};
use serde::{Deserialize, Serialize};

use crate::error::{Result, RetrievalError};

/// When and how item vectors get an ANN index (`[retrieval.ann]` in the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnnSettings {
    /// Catalogs with at least this many items get an index; smaller ones are scanned
    /// exactly (0 = always build one).
    pub min_items: usize,
    /// HNSW neighbours per node on the upper layers (layer 0 keeps twice as many).
    pub m: usize,
    /// Candidates considered when linking a node.
    pub ef_construction: usize,
    /// Candidates kept while searching (at least `k`): larger finds more of the true
    /// top-k and costs more.
    pub ef_search: usize,
    /// Navigate on int8 codes (a quarter of the memory for the graph's vectors), re-ranked
    /// in f32.
    pub int8: bool,
}

impl Default for AnnSettings {
    fn default() -> Self {
        AnnSettings {
            min_items: 20_000,
            m: 16,
            ef_construction: 200,
            ef_search: 128,
            int8: false,
        }
    }
}

impl AnnSettings {
    /// Refuses settings no index can be built with.
    pub fn validate(&self) -> Result<()> {
        let bad = |param, value: usize, reason| {
            Err(RetrievalError::InvalidParameter {
                model: "ANN index",
                param,
                value: value.to_string(),
                reason,
            })
        };
        if !(2..=128).contains(&self.m) {
            return bad("retrieval.ann.m", self.m, "must be in 2..=128");
        }
        if self.ef_construction < self.m {
            return bad(
                "retrieval.ann.ef_construction",
                self.ef_construction,
                "must be at least m",
            );
        }
        if self.ef_search == 0 {
            return bad("retrieval.ann.ef_search", 0, "must be positive");
        }
        Ok(())
    }

    /// Whether a catalog of `items` items gets an index.
    pub fn wants_index(&self, items: usize) -> bool {
        items > 0 && items >= self.min_items
    }
}

/// An HNSW graph over item vectors (ids = the model's item indexes), searched by inner
/// product.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemIndex {
    index: Index,
    ef_search: usize,
}

impl ItemIndex {
    /// Builds the graph over `vectors` (`items × dimension`, row-major; item `i` gets id `i`).
    pub fn build(vectors: &[f32], dimension: usize, settings: &AnnSettings) -> Result<Self> {
        settings.validate()?;
        let params = HnswParams {
            m: settings.m,
            ef_construction: settings.ef_construction,
            seed: 0x5EED_1DE4,
            quantization: if settings.int8 {
                Quantization::Int8
            } else {
                Quantization::None
            },
        };
        let mut index =
            HnswIndex::new(Metric::InnerProduct, dimension, params).map_err(index_error)?;
        let items = vectors.len() / dimension.max(1);
        let ids: Vec<u32> = (0..items as u32).collect();
        index.add_batch(&ids, vectors).map_err(index_error)?;
        Ok(ItemIndex {
            index: Index::Hnsw(index),
            ef_search: settings.ef_search,
        })
    }

    /// The `k` items with the largest `query · item`, skipping those `skip` names, as
    /// `(item index, inner product)`, best first.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        skip: &dyn Fn(usize) -> bool,
    ) -> Result<Vec<(usize, f32)>> {
        let accept = |id: u32| !skip(id as usize);
        let found = self
            .index
            .search_filtered(query, k, self.ef_search.max(k), &accept)
            .map_err(index_error)?;
        // The inner-product metric's distance is `−q·x`.
        Ok(found
            .into_iter()
            .map(|(id, distance)| (id as usize, -distance))
            .collect())
    }

    /// How many item vectors the graph holds.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the graph is empty.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The vectors' dimension.
    pub fn dimension(&self) -> usize {
        self.index.dimension()
    }

    /// The index file's bytes (flywheel-ann's checked format).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.index.to_bytes().map_err(index_error)
    }

    /// Reads an index file; `ef_search` comes from the configuration that serves it. A
    /// truncated, foreign or corrupt file is an error.
    pub fn from_bytes(bytes: &[u8], ef_search: usize) -> Result<Self> {
        let index = Index::from_bytes(bytes).map_err(index_error)?;
        if index.metric() != Metric::InnerProduct {
            return Err(RetrievalError::Index(format!(
                "the index uses the {} metric; item vectors are searched by inner product",
                index.metric().name()
            )));
        }
        Ok(ItemIndex {
            index,
            ef_search: ef_search.max(1),
        })
    }
}

fn index_error(e: flywheel_ann::AnnError) -> RetrievalError {
    RetrievalError::Index(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors(items: usize, dimension: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..items * dimension)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect()
    }

    fn exact(
        vectors: &[f32],
        d: usize,
        query: &[f32],
        k: usize,
        skip: &dyn Fn(usize) -> bool,
    ) -> Vec<usize> {
        let scores: Vec<f32> = vectors
            .chunks_exact(d)
            .map(|y| y.iter().zip(query).map(|(a, b)| a * b).sum())
            .collect();
        crate::TopK::of_scores(&scores, k, skip)
            .into_iter()
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn search_finds_the_exact_top_ten_with_exclusions() {
        let (items, d) = (3000, 16);
        let data = vectors(items, d, 7);
        let settings = AnnSettings {
            min_items: 0,
            ..AnnSettings::default()
        };
        let index = ItemIndex::build(&data, d, &settings).expect("build");
        let queries = vectors(50, d, 11);
        let skip = |i: usize| i.is_multiple_of(7);
        let (mut hits, mut total) = (0, 0);
        for query in queries.chunks_exact(d) {
            let truth = exact(&data, d, query, 10, &skip);
            let found = index.search(query, 10, &skip).expect("search");
            assert!(found.iter().all(|(i, _)| !skip(*i)));
            for (i, score) in &found {
                let dot: f32 = data[i * d..(i + 1) * d]
                    .iter()
                    .zip(query)
                    .map(|(a, b)| a * b)
                    .sum();
                assert!((dot - score).abs() < 1e-4, "scores are inner products");
            }
            hits += found.iter().filter(|(i, _)| truth.contains(i)).count();
            total += truth.len();
        }
        let recall = hits as f64 / total as f64;
        assert!(recall >= 0.95, "recall@10 {recall}");
    }

    #[test]
    fn an_index_survives_its_file_and_a_damaged_file_is_refused() {
        let d = 8;
        let data = vectors(500, d, 3);
        let index = ItemIndex::build(&data, d, &AnnSettings::default()).expect("build");
        let bytes = index.to_bytes().expect("bytes");
        let back = ItemIndex::from_bytes(&bytes, 128).expect("read");
        assert_eq!(back, index);
        assert!(ItemIndex::from_bytes(&bytes[..bytes.len() / 2], 128).is_err());
        assert!(ItemIndex::from_bytes(b"not an index", 128).is_err());
    }

    #[test]
    fn settings_are_checked() {
        let bad_m = AnnSettings {
            m: 1,
            ..AnnSettings::default()
        };
        assert!(bad_m.validate().is_err());
        let bad_ef = AnnSettings {
            ef_search: 0,
            ..AnnSettings::default()
        };
        assert!(bad_ef.validate().is_err());
        assert!(AnnSettings::default().wants_index(20_000));
        assert!(!AnnSettings::default().wants_index(19_999));
    }
}
