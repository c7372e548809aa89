//! Ingestion from a topic the shop's own producers write (`flywheel serve
//! --kafka-brokers HOST:PORT --kafka-topic T`).
//!
//! Each record's value is the JSON body of `POST /v1/events`: one event object or an
//! array of them (a batch, applied all or nothing, exactly as the endpoint does). The
//! key is not read. Every replica runs its own [`Ingestor`] over every partition.
//!
//! Offsets: rskafka has no consumer groups, so the ingestor keeps its own — the next
//! offset per partition, in a small file of the replica's data directory
//! (`<data_dir>/kafka/offsets-<topic>.json`, replaced atomically and fsynced). A
//! partition's offset moves past a record only after `apply` returned for it, and
//! `apply` returns only once the record is durably applied (or rejected for good):
//! a record whose apply failed is fetched and tried again, never skipped. A crash
//! between an apply and the offset write re-applies those records after the restart
//! (at least once, not exactly once).
//!
//! A record that can never apply (not JSON, an invalid event, a null value) is counted
//! and skipped with its reason; it never stops the consumer.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use crate::client::{target, Broker};
use crate::error::{KafkaError, Result};

/// Bytes asked for per fetch.
const FETCH_BYTES: i32 = 4 * 1024 * 1024;
/// How many rejected records are kept with their reasons (all are counted).
const REJECTIONS_KEPT: usize = 100;
/// Pause between polls that found nothing new.
const IDLE_PAUSE: Duration = Duration::from_millis(20);
/// Pause after a poll that failed (broker down, apply failing).
const ERROR_PAUSE: Duration = Duration::from_millis(500);

/// What `apply` made of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Durably applied: the offset may move past it.
    Applied,
    /// It can never apply (the reason says why): counted, skipped.
    Rejected(String),
}

/// The outcome of applying one record: `Err` means it could not be applied *now* (e.g.
/// the engine's log is failing); the ingestor stops that partition there and retries.
pub type ApplyResult = std::result::Result<Applied, String>;

/// A record skipped because it can never apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// Its partition.
    pub partition: u32,
    /// Its offset.
    pub offset: u64,
    /// Why.
    pub reason: String,
}

/// The ingestor's counters, for `/metrics` and tests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestStats {
    /// Records applied.
    pub applied: u64,
    /// Records rejected and skipped.
    pub rejected: u64,
    /// Applies that failed and will be retried.
    pub apply_failures: u64,
    /// The most recent rejections.
    pub recent_rejections: VecDeque<Rejection>,
    /// Why the last poll failed, until one succeeds.
    pub last_error: Option<String>,
}

/// The next offset of each partition, durable in one file.
#[derive(Debug)]
pub struct OffsetStore {
    path: PathBuf,
}

impl OffsetStore {
    /// The store for `topic` in `dir` (created when missing).
    pub fn open(dir: &Path, topic: &str) -> Result<OffsetStore> {
        fs::create_dir_all(dir).map_err(|e| KafkaError::io("create", dir, e))?;
        Ok(OffsetStore {
            path: dir.join(format!("offsets-{topic}.json")),
        })
    }

    /// The stored offsets (none before the first store).
    pub fn load(&self) -> Result<BTreeMap<u32, u64>> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| KafkaError::Damaged {
                path: self.path.clone(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(KafkaError::io("read", &self.path, e)),
        }
    }

    /// Replaces the stored offsets; durable when it returns.
    pub fn store(&self, offsets: &BTreeMap<u32, u64>) -> Result<()> {
        let bytes = serde_json::to_vec(offsets).map_err(|e| KafkaError::Damaged {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let tmp = self.path.with_extension("tmp");
        let mut file = File::create(&tmp).map_err(|e| KafkaError::io("create", &tmp, e))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| KafkaError::io("write", &tmp, e))?;
        fs::rename(&tmp, &self.path).map_err(|e| KafkaError::io("rename", &tmp, e))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| KafkaError::io("fsync", dir, e))
    }
}

/// Consumes every partition of one topic and hands each record to `apply`.
#[derive(Debug)]
pub struct Ingestor {
    broker: Arc<Broker>,
    topic: String,
    partitions: u32,
    store: OffsetStore,
    next: BTreeMap<u32, u64>,
    stats: Arc<Mutex<IngestStats>>,
}

impl Ingestor {
    /// The ingestor of `topic` (created with one partition when it does not exist yet),
    /// resuming from the offsets stored in `offsets_dir`.
    pub fn open(broker: Arc<Broker>, topic: &str, offsets_dir: &Path) -> Result<Ingestor> {
        let partitions = broker.ensure_topic(topic, 1)?;
        let store = OffsetStore::open(offsets_dir, topic)?;
        let next = store.load()?;
        Ok(Ingestor {
            broker,
            topic: topic.to_string(),
            partitions,
            store,
            next,
            stats: Arc::default(),
        })
    }

    /// The counters, shared with whoever reports them.
    pub fn stats(&self) -> Arc<Mutex<IngestStats>> {
        Arc::clone(&self.stats)
    }

    /// The next offset to apply in each partition, as stored durably.
    pub fn committed(&self) -> Result<BTreeMap<u32, u64>> {
        self.store.load()
    }

    /// Fetches what is new in every partition and applies it in order; returns how many
    /// records it applied or rejected. The offsets are stored once the applies returned.
    pub fn poll(&mut self, apply: &mut dyn FnMut(&[u8]) -> ApplyResult) -> Result<u64> {
        let mut done = 0;
        let mut failure = None;
        for partition in 0..self.partitions {
            match self.poll_partition(partition, apply) {
                Ok(count) => done += count,
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.last_error = failure.as_ref().map(ToString::to_string);
        match failure {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }

    fn poll_partition(
        &mut self,
        partition: u32,
        apply: &mut dyn FnMut(&[u8]) -> ApplyResult,
    ) -> Result<u64> {
        let from = self.next.get(&partition).copied().unwrap_or(0);
        let client = self.broker.partition(&self.topic, partition)?;
        let start = i64::try_from(from).unwrap_or(i64::MAX);
        let (records, _) = self
            .broker
            .block_on(client.fetch_records(start, 1..FETCH_BYTES, 0))
            .map_err(|e| KafkaError::broker("fetch", target(&self.topic, partition), e))?;
        let mut next = from;
        let mut outcome = Ok(());
        for record in records {
            let offset = record.offset.max(0) as u64;
            if offset < next {
                continue;
            }
            let result = match record.record.value.as_deref() {
                Some(value) => apply(value),
                None => Ok(Applied::Rejected(
                    "the record has no value (a tombstone)".into(),
                )),
            };
            match result {
                Ok(applied) => {
                    self.count(partition, offset, applied);
                    next = offset + 1;
                }
                Err(reason) => {
                    self.stats
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .apply_failures += 1;
                    outcome = Err(KafkaError::broker(
                        "apply",
                        format!("{}@{offset}", target(&self.topic, partition)),
                        reason,
                    ));
                    break;
                }
            }
        }
        let done = next - from;
        if done > 0 {
            self.next.insert(partition, next);
            self.store.store(&self.next)?;
        }
        outcome.map(|()| done)
    }

    fn count(&self, partition: u32, offset: u64, applied: Applied) {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        match applied {
            Applied::Applied => stats.applied += 1,
            Applied::Rejected(reason) => {
                stats.rejected += 1;
                if stats.recent_rejections.len() == REJECTIONS_KEPT {
                    stats.recent_rejections.pop_front();
                }
                stats.recent_rejections.push_back(Rejection {
                    partition,
                    offset,
                    reason,
                });
            }
        }
    }

    /// Polls on a thread of its own until `stop` is set.
    pub fn spawn<F>(
        mut self,
        mut apply: F,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<JoinHandle<()>>
    where
        F: FnMut(&[u8]) -> ApplyResult + Send + 'static,
    {
        std::thread::Builder::new()
            .name("flywheel-kafka-ingest".into())
            .spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    match self.poll(&mut apply) {
                        Ok(0) => std::thread::sleep(IDLE_PAUSE),
                        Ok(_) => {}
                        Err(e) => {
                            tracing_free_log(&e);
                            std::thread::sleep(ERROR_PAUSE);
                        }
                    }
                }
            })
    }
}

/// The adapter has no logging dependency; failures are kept in the stats
/// (`last_error`) and printed once per failed poll.
fn tracing_free_log(error: &KafkaError) {
    eprintln!("flywheel-kafka: ingestion poll failed: {error}");
}
