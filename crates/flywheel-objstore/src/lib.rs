//! # flywheel-objstore: model versions and snapshots in S3-compatible storage
//!
//! An adapter crate: it owns a private tokio runtime (for `object_store`) behind a
//! synchronous API, and only the binary's `s3` feature compiles it.
//!
//! Layout below the store's prefix (`s3://bucket/prefix`):
//! - `models/<version>/<file>`: every file of a registry version's folder (model
//!   files, `.ann` indexes, `reference.json`, `manifest.json`, `record.json`);
//! - `models/<version>/files.json`: each file's size and SHA-256, written after the
//!   files (a version without it is incomplete);
//! - `models/CURRENT`: the served version, written after its `files.json`, so a
//!   reader never follows a pointer to a half-uploaded version;
//! - `snapshots/<path>` and `snapshots/<path>.sha256`: the data directory's
//!   `snapshots/` folder, each file's sidecar written after it.
//!
//! Downloads are verified (size and SHA-256) before anything is installed; the
//! engine then loads the version completely before it serves it.

mod checksum;
mod erase;
mod error;
mod snapshots;
mod store;
mod sync;
mod versions;

pub use checksum::{sha256_hex, FileEntry};
pub use erase::{erase_prefix_objects, erase_with_local_copies, objects_containing, RemoteErasure};
pub use error::{ObjectStoreError, Result};
pub use snapshots::{
    fetch_snapshots, publish_snapshots, replace_snapshots, snapshots_dir, snapshots_fingerprint,
    Moved,
};
pub use store::{Connection, ObjectInfo, RemoteStore};
pub use sync::{spawn, ReplicaSync, Step, SyncThread, PROMOTED_BY};
pub use versions::{
    fetch_version, publish_current, publish_version, remote_current, remote_file_list,
    replace_version, Fetched, FileList, Published, CURRENT_KEY, FILE_LIST,
};
