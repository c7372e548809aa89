//! The connection to the broker: an rskafka client driven by a private tokio runtime, so
//! that everything above it is synchronous.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rskafka::chrono::{DateTime, Utc};
use rskafka::client::partition::{Compression, OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;
use rskafka::BackoffConfig;
use tokio::runtime::Runtime;

use crate::error::{KafkaError, Result};

/// How long a request retries a broker that does not answer before it fails.
const RETRY_DEADLINE: Duration = Duration::from_secs(10);
/// How long a topic creation may take on the broker.
const CREATE_TIMEOUT_MS: i32 = 5_000;

/// A record as Kafka holds it: an optional key and an optional value (none: a
/// tombstone).
pub type RawRecord = (Option<Vec<u8>>, Option<Vec<u8>>);

/// A synchronous handle on one broker cluster: the client, its runtime and a client per
/// (topic, partition), made once and reused.
pub struct Broker {
    runtime: Runtime,
    client: Client,
    brokers: String,
    partitions: Mutex<HashMap<(String, i32), Arc<PartitionClient>>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("brokers", &self.brokers)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// Connects to `brokers` (`HOST:PORT[,HOST:PORT...]`); fails within about ten
    /// seconds when none answers.
    pub fn connect(brokers: &str) -> Result<Broker> {
        let list: Vec<String> = brokers
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(String::from)
            .collect();
        if list.is_empty() {
            return Err(KafkaError::InvalidConfig {
                field: "kafka_brokers",
                reason: "name at least one broker as HOST:PORT".into(),
            });
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("flywheel-kafka")
            .enable_all()
            .build()
            .map_err(KafkaError::Runtime)?;
        let backoff = BackoffConfig {
            deadline: Some(RETRY_DEADLINE),
            max_backoff: Duration::from_secs(1),
            ..BackoffConfig::default()
        };
        let builder = ClientBuilder::new(list)
            .client_id("flywheel")
            .backoff_config(backoff);
        let client = wait_on(&runtime, builder.build())
            .map_err(|e| KafkaError::broker("connect", brokers, e))?;
        Ok(Broker {
            runtime,
            client,
            brokers: brokers.to_string(),
            partitions: Mutex::new(HashMap::new()),
        })
    }

    /// Runs `future` on the private runtime and waits for it; see [`wait_on`].
    pub(crate) fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        wait_on(&self.runtime, future)
    }

    /// The partitions of `topic`, creating it with `partitions` when it does not exist.
    pub fn ensure_topic(&self, topic: &str, partitions: u32) -> Result<u32> {
        if let Some(found) = self.topic_partitions(topic)? {
            return Ok(found);
        }
        let count = i32::try_from(partitions.max(1)).unwrap_or(i32::MAX);
        let controller = self
            .client
            .controller_client()
            .map_err(|e| KafkaError::broker("create topic", topic, e))?;
        let created = self.block_on(controller.create_topic(topic, count, 1, CREATE_TIMEOUT_MS));
        if let Err(e) = created {
            // Another replica may have created it meanwhile.
            if self.topic_partitions(topic)?.is_none() {
                return Err(KafkaError::broker("create topic", topic, e));
            }
        }
        Ok(self.topic_partitions(topic)?.unwrap_or(partitions.max(1)))
    }

    /// How many partitions `topic` has, or `None` when the broker does not know it.
    pub fn topic_partitions(&self, topic: &str) -> Result<Option<u32>> {
        let topics = self
            .block_on(self.client.list_topics())
            .map_err(|e| KafkaError::broker("list topics", &self.brokers, e))?;
        Ok(topics
            .into_iter()
            .find(|t| t.name == topic)
            .map(|t| u32::try_from(t.partitions.len()).unwrap_or(u32::MAX)))
    }

    /// The client of one partition of `topic`.
    pub(crate) fn partition(&self, topic: &str, partition: u32) -> Result<Arc<PartitionClient>> {
        let index = i32::try_from(partition).map_err(|_| KafkaError::InvalidConfig {
            field: "partition",
            reason: format!("{partition} is beyond Kafka's partition numbers"),
        })?;
        let key = (topic.to_string(), index);
        let mut clients = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(Arc::clone(client));
        }
        let made = self
            .block_on(
                self.client
                    .partition_client(topic, index, UnknownTopicHandling::Retry),
            )
            .map_err(|e| KafkaError::broker("open partition", target(topic, partition), e))?;
        let made = Arc::new(made);
        clients.insert(key, Arc::clone(&made));
        Ok(made)
    }

    /// Produces raw `(key, value)` records to one partition as one batch (for tools and
    /// tests: nothing is pseudonymised); returns their offsets once acknowledged.
    pub fn produce(
        &self,
        topic: &str,
        partition: u32,
        records: Vec<RawRecord>,
    ) -> Result<Vec<u64>> {
        let client = self.partition(topic, partition)?;
        let records = records
            .into_iter()
            .map(|(key, value)| Record {
                key,
                value,
                headers: Default::default(),
                timestamp: now(),
            })
            .collect();
        let offsets = self
            .block_on(client.produce(records, Compression::NoCompression))
            .map_err(|e| KafkaError::broker("produce", target(topic, partition), e))?;
        Ok(offsets.into_iter().map(|o| o.max(0) as u64).collect())
    }

    /// The offset the next record produced to the partition will get.
    pub fn high_watermark(&self, topic: &str, partition: u32) -> Result<u64> {
        let client = self.partition(topic, partition)?;
        let latest = self
            .block_on(client.get_offset(OffsetAt::Latest))
            .map_err(|e| KafkaError::broker("list offsets", target(topic, partition), e))?;
        Ok(u64::try_from(latest).unwrap_or(0))
    }
}

/// `topic/partition`, for error messages.
pub(crate) fn target(topic: &str, partition: u32) -> String {
    format!("{topic}/{partition}")
}

/// The wall clock as a record timestamp.
pub(crate) fn now() -> DateTime<Utc> {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

/// Runs `future` on `runtime` and waits for it. A caller that is itself on a thread
/// driving another tokio runtime (an async HTTP handler reading `/metrics`, which asks
/// the log for its end) may not block that thread on a second runtime — tokio panics —
/// so from there the wait happens on a short-lived scoped thread instead.
fn wait_on<F>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return runtime.block_on(future);
    }
    std::thread::scope(
        |scope| match scope.spawn(|| runtime.block_on(future)).join() {
            Ok(output) => output,
            Err(panic) => std::panic::resume_unwind(panic),
        },
    )
}
