//! # flywheel-registry: model versions on disk
//!
//! Every trained model set is registered as a version (`v1`, `v2`, …) with its
//! manifest (how it was made, with the full resolved configuration), its models behind
//! their seams, and a record of its status (`serving`, `candidate`, `rejected`,
//! `canary`, `retired`), its evaluation figures and the promotion gate's decision.
//! `CURRENT` names the served version and changes only after that version loaded.
//! Version names from outside are validated before any path is built from them.

mod error;
mod registry;

pub use error::{RegistryError, Result};
pub use registry::{
    current_version, is_valid_version_name, list, load, load_current, models_dir, promote, record,
    reference, reserve_version, rollback, save, update_record, write_atomically, GateRecord,
    Status, VersionInfo, VersionRecord, REFERENCE_FILE,
};
