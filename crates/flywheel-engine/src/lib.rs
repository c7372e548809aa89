//! # flywheel-engine: the facade that wires the pipeline
//!
//! The engine owns one data directory: the durable log (the source of truth), the
//! state derived from it (catalog, users, online features), and the model registry.
//! It is a synchronous library: the server crate calls it from blocking tasks.
//!
//! - [`Engine`] opens a data directory, recovers the log, and runs the consumer that
//!   applies every record to the [`State`] — the same `State::apply` that training
//!   and evaluation use offline, so features are defined once.
//! - [`pipeline::recommend`] is one request: retrieval channels blended with quotas,
//!   the ranker, re-ranking with business rules, explanations, and a popularity
//!   fallback whenever a model is missing or a stage runs past its deadline.
//! - [`training::train`] replays the log into interactions (ALS, EASE) and
//!   point-in-time ranker rows; [`models`] saves versions and hot-swaps them.
//! - [`evaluation`] is `flywheel eval` on the engine's own data: temporal,
//!   leave-last-out and per-user random splits; accuracy, coverage, diversity and
//!   novelty per channel and for the blend; slices (head/tail items, new/power users,
//!   categories); ranker calibration; and a promotion gate with a paired bootstrap CI.
//! - [`import`] reads JSON lines, CSV and MovieLens files into log records.

mod catalog;
pub mod config;
mod engine;
mod error;
pub mod evaluation;
mod gate;
pub mod import;
pub mod models;
pub mod pipeline;
mod service;
mod state;
mod stats;
pub mod training;

pub use catalog::Catalog;
pub use config::EngineConfig;
pub use engine::{feature_config, log_dir, Engine};
pub use error::{EngineError, Result};
pub use service::Served;
pub use state::State;
pub use stats::{EngineStats, Histogram, LATENCY_BUCKETS};
