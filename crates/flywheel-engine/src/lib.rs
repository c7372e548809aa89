//! # flywheel-engine: the running engine over one data directory
//!
//! The engine owns one data directory: the durable log (the source of truth), the
//! state derived from it, and the model registry. It is a synchronous library: the
//! server crate calls it from blocking tasks. What it runs:
//! - [`Engine::open`] locks the directory, recovers the log and starts the threads:
//!   the **consumer** (the only writer of the [`State`]; it applies every record with
//!   the same `State::apply` that training and evaluation use offline, and skips —
//!   and counts — a record it cannot decode), the **impression writer** and the
//!   **watcher** (hot-swaps models, rebuilds the content index);
//! - [`Engine::recommend`] serves one request through [`flywheel_pipeline::recommend`]
//!   and logs the impression;
//! - [`Engine::train`] replays the log, trains a candidate version with
//!   [`flywheel_offline`], registers it and lets the promotion gate decide;
//!   [`Engine::start_training`] runs it as a background job in a low-priority pool
//!   of one thread.
//!
//! - [`Engine::monitoring_report`] compares the live window (fed by the consumer)
//!   with the served version's reference: drift per feature, O/E, data quality.
//!
//! The pure parts live below: the pipeline in `flywheel-pipeline`, the registry in
//! `flywheel-registry`, training and evaluation in `flywheel-offline`, file import in
//! `flywheel-import`.

mod batch;
mod canary;
mod controller;
mod engine;
mod erasure;
mod error;
mod experiments;
mod jobs;
mod monitoring;
mod overview;
mod records;
mod service;
mod serving;
pub mod snapshot;
mod stats;

pub use batch::EventBatch;
pub use canary::{CanaryView, VersionServing};
pub use controller::{
    action_name, observe_report, outcome_name, BreachPeriod, ControllerView, DecisionCount,
    DecisionRecord,
};
pub use engine::{data_dir_in_use, log_dir, Engine, EngineOptions};
pub use erasure::{ErasedCounts, ErasureReport, ErasureTarget, Pseudonyms};
pub use error::{EngineError, Result};
pub use experiments::ExperimentView;
pub use flywheel_monitor::{self as monitor, MonitoringConfig, MonitoringReport};
pub use flywheel_pipeline::{
    feature_config, monitored_feature_names, Catalog, EngineConfig, ModelSet, State,
};
pub use jobs::{JobResult, JobState, JobStatus};
pub use overview::{
    ExperimentOverview, Ingestion, ModelsOverview, Overview, ServingHealth, StageLatency,
};
pub use records::SkippedRecord;
pub use service::TrainOutcome;
pub use serving::{ServeRequest, Served, ServedSlot};
pub use snapshot::{SnapshotInfo, SnapshotStatus};
pub use stats::{
    fallback_kind, EngineStats, FallbackCounts, Histogram, FALLBACK_KINDS, LATENCY_BUCKETS,
};
