//! # flywheel-offline: training and evaluation on a replayed log
//!
//! Everything here reads the log through a [`Replay`] (a function that visits every
//! record in log order, as often as asked) and rebuilds the derived state with the
//! same `State::apply` the server uses, so a training row or a holdout list sees only
//! what was known at its moment.
//! - [`training::train`]: point-in-time ranker rows ([`training::rows`]), the
//!   retrieval models, the fusion weights and the ranker gate ([`gate`]), into one
//!   model set. Three moments split the log (the fusion, row and gate cuts) so that
//!   no row, weight or verdict uses data from after the moment it stands for;
//! - [`evaluation`]: `flywheel eval` on the engine's own data (temporal, leave-last-out
//!   and per-user random splits; accuracy, coverage, diversity, novelty per channel and
//!   for the blend; slices; ranker calibration), the promotion gate between two
//!   model sets with a paired bootstrap CI, and [`evaluation::ope`]: a registered
//!   candidate scored counterfactually on the serving policy's logged propensities;
//! - [`reference`]: a trained version's monitoring reference (its served slice's
//!   feature distributions, event categoricals, and the Platt calibration of its
//!   served score to P(click)), stored beside the version;
//! - [`promotion::train_candidate`]: a new version and the gate's decision about it
//!   against the serving version, on data neither was trained on;
//! - [`bias_study`]: on the simulator, the position-bias correction and the context
//!   features measured against the true preferences (`flywheel bench ranker-bias`).

pub mod bias_study;
mod error;
pub mod evaluation;
mod gate;
pub mod promotion;
pub mod reference;
pub mod training;

pub use error::{OfflineError, Result};
pub use gate::RankerGate;
pub use training::Replay;
