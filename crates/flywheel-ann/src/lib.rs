//! Approximate nearest-neighbour search for flywheel's retrieval: an HNSW index and an
//! exact flat index behind one seam, [`AnnIndex`] (or the enum [`Index`]).
//!
//! * [`HnswIndex`]: Malkov & Yashunin's hierarchical navigable small-world graph with
//!   their neighbour-selection heuristic; parameters `m`, `ef_construction` (build) and
//!   `ef` (each search). Batches are linked in parallel on rayon's pool, in a way that
//!   does not depend on the threads ([`build`](crate::build)): a seed gives the same
//!   graph on any number of cores. Vectors can be added one at a time after the build
//!   (items arriving online) and removed by id (tombstones that still route searches).
//! * [`FlatIndex`]: the exact scan with the same API, the oracle of the tests.
//! * Metrics ([`Metric`]): squared L2, inner product (maximum inner-product search on
//!   ALS or two-tower factors, on a plain inner-product graph — [`metric`] says why not
//!   the norm-augmentation transform, measured), cosine (normalized, then L2).
//! * Storage: f32 vectors in one flat zero-padded `Vec<f32>`; optionally int8 codes
//!   ([`Quantization::Int8`]) navigate the graph and the candidates are re-ranked in f32.
//! * Search: `search(query, k, ef)` → `Vec<(id, distance)>` closest first, and
//!   `search_filtered` with a predicate on ids (e.g. exclude items already seen).
//! * Files: [`Index::to_bytes`]/[`Index::from_bytes`] (serde + bincode behind a magic
//!   header); a truncated, foreign or corrupt file is a clear error, never a panic.
//!
//! Distances are computed in safe Rust ([`kernels`]), written so LLVM vectorizes them.
//! The crate has no `unsafe` and keeps the workspace's `unsafe_code = "forbid"`.

pub mod api;
mod build;
pub mod error;
pub mod fixtures;
pub mod flat;
mod graph;
pub mod hnsw;
mod ids;
pub mod kernels;
pub mod metric;
pub mod persist;
pub mod quant;
pub mod recall;
mod search;
mod store;
pub mod vecs;

#[cfg(test)]
mod tests;

pub use api::{AnnIndex, Index};
pub use error::{AnnError, Result};
pub use flat::FlatIndex;
pub use hnsw::{HnswIndex, HnswParams, Quantization};
pub use metric::Metric;
pub use recall::recall_at_k;
