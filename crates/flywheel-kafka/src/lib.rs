//! Kafka as flywheel's log, behind the synchronous seams (built only with the binary's
//! `kafka` cargo feature).
//!
//! - [`KafkaLog`]: [`flywheel_log::RecordLog`] over one topic, produced with
//!   `acks=all`, keyed by user, read by (partition, offset); [`KafkaTopics`] holds a
//!   deployment's `T.events`, `T.impressions` and `T.outcomes`.
//! - [`Ingestor`]: consumes a topic the shop's producers write (the JSON of
//!   `POST /v1/events`), storing its offsets only after each record was applied.
//! - Crypto-shredding ([`SecretStore`], [`KafkaTopics::erase_user`]): user ids never
//!   reach the broker; a per-user secret makes their pseudonym, and erasure destroys it.
//!
//! The rskafka client runs on a private one-worker tokio runtime ([`Broker`]); nothing
//! async leaks out of this crate.

#![warn(missing_docs)]

mod client;
pub mod codec;
mod error;
pub mod ingest;
mod log;
pub mod secrets;
mod topics;

pub use client::{Broker, RawRecord};
pub use error::{KafkaError, Result};
pub use ingest::{Applied, ApplyResult, IngestStats, Ingestor, OffsetStore, Rejection};
pub use log::KafkaLog;
pub use secrets::SecretStore;
pub use topics::{secrets_dir, ErasureCounts, KafkaTopics};
