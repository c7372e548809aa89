//! # flywheel-registry: model versions on disk
//!
//! Every trained model set is registered as a version (`v1`, `v2`, …) with its
//! manifest (how it was made, with the full resolved configuration), its models behind
//! their seams, and a record of its status (`serving`, `candidate`, `rejected`,
//! `canary`, `retired`, `rolled_back`), its evaluation figures, the promotion gate's
//! decision, its training window, configuration hash and lineage (parent, origin, an
//! append-only history of promotions, canaries and rollbacks).
//! `CURRENT` names the served version and changes only after that version loaded;
//! `CANARY` names the version serving a share of users beside it.
//! Version names from outside are validated before any path is built from them.

mod canary;
mod erase;
mod error;
mod lineage;
mod registry;

pub use canary::{canary, rollback_canary, start_canary, Canary};
pub use erase::{erase_users, ModelErasure};
pub use error::{RegistryError, Result};
pub use lineage::{config_hash, Action, HistoryEntry, Lineage, Origin, TrainingWindow, WindowCuts};
pub use registry::{
    current_version, is_valid_version_name, list, load, load_current, models_dir, promote,
    promote_by, record, reference, reserve_version, rollback, rollback_by, save, update_record,
    write_atomically, GateRecord, Status, VersionInfo, VersionRecord, REFERENCE_FILE,
};
