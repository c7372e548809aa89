//! flywheel's Parquet event lake: the log exported as Parquet tables partitioned as
//! `<lake>/<table>/dt=YYYY-MM-DD/hour=HH/part-<start>-<end>.parquet`, read back as the
//! same records for training where the data is, and erasable per user.
//!
//! - [`Exporter`] tails a [`flywheel_log::RecordLog`] (continuously with
//!   [`Exporter::run`], or once with [`Exporter::export_available`]); its position is
//!   stored in the lake, so it resumes, and files are named by the log offsets of their
//!   batch and written atomically, so a re-export is idempotent.
//! - [`read_records`] gives the records back in log order, equal to those of the log.
//! - [`erase_user`] rewrites every file that holds a user's rows without them.
//!
//! Synchronous (no async runtime); the binary builds it only with its `parquet` feature.
//! `docs/lake.md` documents the tables and their columns.

#![warn(missing_docs)]

mod convert;
mod erase;
mod error;
mod export;
mod files;
mod read;
mod tables;

pub use convert::partition_of;
pub use erase::{erase_user, user_ids, ErasureCounts};
pub use error::{LakeError, Result};
pub use export::{position_file, read_position, ExportConfig, ExportReport, Exporter, Position};
pub use files::{file_name, list_files, offsets_of, read_batches, LakeFile};
pub use read::read_records;
pub use tables::Table;
