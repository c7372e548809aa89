//! # flywheel-redis: the online feature state in Redis, shared by replicas
//!
//! An adapter behind the feature seam ([`flywheel_features::FeatureReader`] and
//! [`flywheel_features::FeatureWriter`]), compiled only with the binary's cargo feature
//! `redis`. It uses the redis crate's synchronous client: no async runtime.
//!
//! - [`RedisWriter`]: one writer per log partition applies records with the in-process
//!   store's own update code over parts loaded from Redis, and writes the touched parts
//!   and its offset in one MULTI/EXEC (idempotent: records at or below the stored offset
//!   are no-ops). [`spawn_writer`] runs it as a thread tailing the log, retrying while
//!   Redis is away and rebuilding the store from the log when Redis lost its data
//!   ([`restore_from_newest_snapshot`] is where a snapshot will shorten that).
//! - [`RedisReader`]: what every replica reads, batched (one MGET for all candidates),
//!   with a read deadline; when Redis is down or slow, reads fail fast and the request
//!   falls back to cached popular lists, reported as `feature_store_unavailable`.
//! - [`erase_user`]: deletes every key of a user (GDPR); [`erase_users_matching`] finds
//!   them by a SCAN (an erasure that knows the user by pseudonym only).
//!
//! Keys are laid out in [`keys`]. Values are bincode of the in-process store's own
//! structs, so a feature read from Redis is the feature the in-process store computes
//! (the parity test compares every one).

mod config;
mod conn;
mod erase;
mod error;
pub mod keys;
mod reader;
mod thread;
mod writer;

pub use config::RedisConfig;
pub use erase::{erase_user, erase_users_matching, ErasureCounts};
pub use error::{RedisStoreError, Result};
pub use reader::RedisReader;
pub use thread::{spawn_writer, WriterHandle, WriterStatus, CHUNK};
pub use writer::{restore_from_newest_snapshot, RedisWriter};

impl flywheel_features::FeatureWriter for RedisWriter {
    /// Applies one record at the next offset; a failure is logged and the record is
    /// not applied (use [`RedisWriter::apply_chunk`] to handle errors and offsets).
    fn apply_record(&mut self, record: &flywheel_core::LogRecord) {
        let offset = self.applied();
        if let Err(e) = self.apply_chunk(offset, &[Some(record.clone())]) {
            tracing::error!("redis feature writer: record at offset {offset} not applied: {e}");
        }
    }
}
