//! [`KafkaLog`]: the [`RecordLog`] seam over one Kafka topic.
//!
//! - `append_batch` produces the batch as one Kafka record batch to the partition and
//!   returns only once the broker acknowledged it with `acks=all` (rskafka sends every
//!   produce request with `acks = -1`, and waits for the answer), so a caller that
//!   acknowledges its client after `append_batch` acknowledges only what the broker has.
//! - [`KafkaLog::append_keyed`] picks the partition from the user instead: a stable hash
//!   (FNV-1a) of the user's pseudonym, so one user's records stay in order in one
//!   partition.
//! - Reads are by (partition, offset), Kafka's own offsets; `end_offset` is the
//!   partition's high watermark.
//! - Every payload must be a flywheel log record: its user id is replaced by the user's
//!   pseudonym before it is produced and restored when read (see [`crate::codec`]).

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use flywheel_log::{LogPosition, RecordIter, RecordLog, WriteHealth};
use rskafka::client::partition::{Compression, PartitionClient};
use rskafka::record::Record;

use crate::client::{now, target, Broker};
use crate::codec::{self, Outgoing};
use crate::error::{KafkaError, Result};
use crate::secrets::SecretStore;

/// Bytes asked for per fetch.
const FETCH_BYTES: i32 = 4 * 1024 * 1024;
/// How often `wait_for` asks the broker for the high watermark.
const WAIT_POLL: Duration = Duration::from_millis(10);

/// A durable, partitioned log of flywheel records on one Kafka topic.
pub struct KafkaLog {
    broker: Arc<Broker>,
    topic: String,
    partitions: u32,
    secrets: Arc<SecretStore>,
    health: Mutex<WriteHealth>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("topic", &self.topic)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

impl KafkaLog {
    /// The log on `topic`, created with `partitions` partitions when it does not exist
    /// (an existing topic keeps its own count).
    pub fn open(
        broker: Arc<Broker>,
        secrets: Arc<SecretStore>,
        topic: &str,
        partitions: u32,
    ) -> Result<KafkaLog> {
        if topic.is_empty() {
            return Err(KafkaError::InvalidConfig {
                field: "kafka_topic",
                reason: "the topic name is empty".into(),
            });
        }
        let partitions = broker.ensure_topic(topic, partitions)?;
        Ok(KafkaLog {
            broker,
            topic: topic.to_string(),
            partitions,
            secrets,
            health: Mutex::new(WriteHealth::default()),
        })
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The broker connection.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// The secret store that pseudonymises user ids.
    pub fn secrets(&self) -> &Arc<SecretStore> {
        &self.secrets
    }

    /// The partition of a record keyed by `pseudonym`: FNV-1a of its bytes, modulo the
    /// partition count (stable across processes and versions).
    pub fn partition_for(&self, pseudonym: &str) -> u32 {
        let hash = pseudonym.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        (hash % u64::from(self.partitions.max(1))) as u32
    }

    /// Appends records to the partition of their user (records without one go to
    /// partition 0); returns each record's position, in input order, once the broker
    /// has acknowledged all of them. Each partition's share is one atomic batch.
    pub fn append_keyed(&self, payloads: &[&[u8]]) -> Result<Vec<LogPosition>> {
        let outgoing = self.pseudonymise_all(payloads)?;
        let mut groups: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (index, record) in outgoing.iter().enumerate() {
            let partition = record.key.as_deref().map_or(0, |k| self.partition_for(k));
            groups.entry(partition).or_default().push(index);
        }
        let mut positions = vec![LogPosition::default(); payloads.len()];
        for (partition, indexes) in groups {
            let records = indexes.iter().map(|&i| to_record(&outgoing[i])).collect();
            let offsets = self.produce(partition, records)?;
            for (&index, offset) in indexes.iter().zip(offsets) {
                positions[index] = LogPosition::new(partition, offset);
            }
        }
        Ok(positions)
    }

    /// Produces a tombstone (no value) keyed by `pseudonym` to its partition; returns
    /// its offset once acknowledged.
    pub fn produce_tombstone(&self, pseudonym: &str) -> Result<u64> {
        let partition = self.partition_for(pseudonym);
        let record = Record {
            key: Some(pseudonym.as_bytes().to_vec()),
            value: None,
            headers: BTreeMap::new(),
            timestamp: now(),
        };
        let offsets = self.produce(partition, vec![record])?;
        Ok(offsets.first().copied().unwrap_or_default())
    }

    fn pseudonymise_all(&self, payloads: &[&[u8]]) -> Result<Vec<Outgoing>> {
        payloads
            .iter()
            .enumerate()
            .map(|(index, payload)| {
                codec::pseudonymise(payload, &self.secrets)
                    .map_err(|reason| KafkaError::NotARecord { index, reason })
            })
            .collect()
    }

    /// Produces `records` to `partition` as one batch and returns their offsets.
    fn produce(&self, partition: u32, records: Vec<Record>) -> Result<Vec<u64>> {
        self.check_partition(partition)?;
        let client = self.broker.partition(&self.topic, partition)?;
        let produced = self
            .broker
            .block_on(client.produce(records, Compression::NoCompression));
        match produced {
            Ok(offsets) => {
                self.note_success();
                Ok(offsets.into_iter().map(|o| o.max(0) as u64).collect())
            }
            Err(e) => {
                let error = KafkaError::broker("produce", target(&self.topic, partition), e);
                self.note_failure(&error);
                Err(error)
            }
        }
    }

    fn check_partition(&self, partition: u32) -> Result<(), KafkaError> {
        if partition < self.partitions {
            return Ok(());
        }
        Err(KafkaError::InvalidConfig {
            field: "partition",
            reason: format!(
                "partition {partition} does not exist; topic {} has partitions 0..{}",
                self.topic, self.partitions
            ),
        })
    }

    fn note_success(&self) {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        health.consecutive_failures = 0;
        health.failing_since = None;
        health.last_error = None;
    }

    fn note_failure(&self, error: &KafkaError) {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        health.consecutive_failures += 1;
        health.failed_commits += 1;
        health.failing_since.get_or_insert_with(SystemTime::now);
        health.last_error = Some(error.to_string());
    }

    /// The records of one partition from `offset`, fetched in chunks until the
    /// high watermark seen by the last fetch.
    fn reader(&self, partition: u32, offset: u64) -> Result<PartitionReader<'_>> {
        self.check_partition(partition)?;
        Ok(PartitionReader {
            log: self,
            partition,
            client: self.broker.partition(&self.topic, partition)?,
            next: offset,
            high_watermark: None,
            buffer: VecDeque::new(),
        })
    }
}

fn to_record(outgoing: &Outgoing) -> Record {
    Record {
        key: outgoing.key.as_ref().map(|k| k.as_bytes().to_vec()),
        value: Some(outgoing.value.clone()),
        headers: BTreeMap::new(),
        timestamp: now(),
    }
}

/// Reads one partition forward; ends once it reached the high watermark.
struct PartitionReader<'a> {
    log: &'a KafkaLog,
    partition: u32,
    client: Arc<PartitionClient>,
    next: u64,
    high_watermark: Option<u64>,
    buffer: VecDeque<(u64, Vec<u8>)>,
}

impl PartitionReader<'_> {
    /// Fetches the next chunk into the buffer; false when there is nothing more.
    fn fetch(&mut self) -> Result<bool> {
        if self.high_watermark.is_some_and(|hw| self.next >= hw) {
            return Ok(false);
        }
        let start = i64::try_from(self.next).unwrap_or(i64::MAX);
        let fetched = self
            .log
            .broker
            .block_on(self.client.fetch_records(start, 1..FETCH_BYTES, 0));
        let (records, high_watermark) = fetched
            .map_err(|e| KafkaError::broker("fetch", target(&self.log.topic, self.partition), e))?;
        self.high_watermark = Some(high_watermark.max(0) as u64);
        for record in records {
            let offset = record.offset.max(0) as u64;
            if offset < self.next {
                continue;
            }
            let value = codec::resolve(record.record.value.as_deref(), &self.log.secrets);
            self.buffer.push_back((offset, value));
            self.next = offset + 1;
        }
        Ok(!self.buffer.is_empty())
    }
}

impl Iterator for PartitionReader<'_> {
    type Item = flywheel_log::Result<(u64, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(record) = self.buffer.pop_front() {
            return Some(Ok(record));
        }
        match self.fetch() {
            Ok(true) => self.buffer.pop_front().map(Ok),
            Ok(false) => None,
            Err(e) => Some(Err(e.into())),
        }
    }
}

impl RecordLog for KafkaLog {
    fn partitions(&self) -> u32 {
        self.partitions
    }

    fn append_batch(&self, partition: u32, payloads: &[&[u8]]) -> flywheel_log::Result<Range<u64>> {
        let outgoing = self.pseudonymise_all(payloads)?;
        let records = outgoing.iter().map(to_record).collect();
        let offsets = self.produce(partition, records)?;
        match (offsets.first(), offsets.last()) {
            (Some(&first), Some(&last)) => Ok(first..last + 1),
            _ => {
                let end = self.broker.high_watermark(&self.topic, partition)?;
                Ok(end..end)
            }
        }
    }

    fn read_from(&self, position: LogPosition) -> flywheel_log::Result<RecordIter<'_>> {
        Ok(Box::new(self.reader(position.partition, position.offset)?))
    }

    fn end_offset(&self, partition: u32) -> flywheel_log::Result<u64> {
        self.check_partition(partition)?;
        Ok(self.broker.high_watermark(&self.topic, partition)?)
    }

    fn wait_for(&self, position: LogPosition, timeout: Duration) -> flywheel_log::Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.end_offset(position.partition)? > position.offset {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            std::thread::sleep(left.min(WAIT_POLL));
        }
    }

    fn write_health(&self) -> WriteHealth {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
