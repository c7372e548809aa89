//! `flywheel serve --kafka-brokers HOST:PORT` through `flywheel-kafka` (cargo feature
//! `kafka`), two uses that combine:
//!
//! - `--kafka-log L`: the engine's own log is topic `L` (`KafkaLog`, one partition, user
//!   ids pseudonymised with the secrets in `--kafka-secrets DIR`). `POST /v1/events`
//!   answers 200 only after the broker acknowledged the produce (acks=all). Replicas over
//!   one topic and one secrets directory apply every record, whichever replica took it.
//! - `--kafka-topic T`: ingestion from a topic the shop's own producers write.
//!
//! Of `--kafka-topic`: each record's value is the JSON of `POST /v1/events` (one event or an array, applied
//! all or nothing). A record is applied when the engine acknowledged it (durable in the
//! engine's log) and applied it to the state; only then does the ingestor store the
//! partition's next offset (`<data_dir>/kafka/offsets-<T>.json`). Invalid records are
//! counted and skipped with their reason.

use std::sync::Arc;

use anyhow::Result;
use flywheel_engine::Engine;

use crate::cli::KafkaArgs;

/// Stops the ingestion thread when dropped.
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
pub struct Ingestion {
    #[cfg(feature = "kafka")]
    stop: Arc<std::sync::atomic::AtomicBool>,
    #[cfg(feature = "kafka")]
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Ingestion {
    fn drop(&mut self) {
        #[cfg(feature = "kafka")]
        {
            self.stop.store(true, std::sync::atomic::Ordering::Release);
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// Refuses `--kafka-brokers` without a use for it.
pub fn check_args(args: &KafkaArgs) -> Result<()> {
    if args.kafka_brokers.is_some() && args.kafka_topic.is_none() && args.kafka_log.is_none() {
        anyhow::bail!(
            "--kafka-brokers needs --kafka-log TOPIC (the engine's log on Kafka) and/or \
             --kafka-topic TOPIC (ingest the shop's topic)"
        );
    }
    Ok(())
}

/// The engine's log on Kafka, and the erasure target that crypto-shreds its users.
pub struct OpenedLog {
    /// The log.
    pub log: Arc<dyn flywheel_log::RecordLog>,
    /// Destroys an erased user's secret and produces a tombstone.
    pub erasure: Arc<dyn flywheel_engine::ErasureTarget>,
}

/// The engine's log on Kafka when `--kafka-log` names a topic.
#[cfg(not(feature = "kafka"))]
pub fn open_log(args: &KafkaArgs, _data_dir: &std::path::Path) -> Result<Option<OpenedLog>> {
    check_args(args)?;
    if args.kafka_brokers.is_some() {
        anyhow::bail!(
            "--kafka-brokers/--kafka-topic/--kafka-log need a flywheel built with Kafka \
             support: cargo build --release --features kafka"
        );
    }
    Ok(None)
}

/// The engine's log on Kafka when `--kafka-log` names a topic: one partition (created
/// when missing), user ids pseudonymised with the secrets directory replicas share.
#[cfg(feature = "kafka")]
pub fn open_log(args: &KafkaArgs, data_dir: &std::path::Path) -> Result<Option<OpenedLog>> {
    use anyhow::Context;

    check_args(args)?;
    let (Some(brokers), Some(topic)) = (&args.kafka_brokers, &args.kafka_log) else {
        return Ok(None);
    };
    let secrets_dir = args
        .kafka_secrets
        .clone()
        .unwrap_or_else(|| flywheel_kafka::secrets_dir(data_dir));
    let secrets = flywheel_kafka::SecretStore::open(&secrets_dir)
        .with_context(|| format!("opening the Kafka secrets in {}", secrets_dir.display()))?;
    let broker = flywheel_kafka::Broker::connect(brokers)
        .with_context(|| format!("connecting to the Kafka brokers {brokers}"))?;
    let log = flywheel_kafka::KafkaLog::open(Arc::new(broker), Arc::new(secrets), topic, 1)
        .with_context(|| format!("opening the log topic {topic}"))?;
    let log = Arc::new(log);
    eprintln!(
        "kafka: the log is topic {topic} on {brokers} ({} partition(s); secrets in {}); \
         events are acknowledged once the broker has them",
        flywheel_log::RecordLog::partitions(log.as_ref()),
        secrets_dir.display()
    );
    let erasure = Arc::new(erasure::KafkaLogErasure {
        log: Arc::clone(&log),
        pseudonyms: flywheel_engine::Pseudonyms::of_data_dir(data_dir),
        secrets_dir,
    });
    Ok(Some(OpenedLog {
        log: log as Arc<dyn flywheel_log::RecordLog>,
        erasure,
    }))
}

/// Erasure on a Kafka log: records cannot be removed from the topic, so the user is
/// crypto-shredded — their secret destroyed in the shared secrets directory (after
/// which their records read back as erased), and a tombstone keyed by the former
/// pseudonym produced to the topic.
#[cfg(feature = "kafka")]
mod erasure {
    use std::path::PathBuf;
    use std::sync::Arc;

    use flywheel_core::UserId;
    use flywheel_engine::{ErasedCounts, ErasureTarget, Pseudonyms};
    use flywheel_kafka::KafkaLog;

    pub(super) struct KafkaLogErasure {
        pub(super) log: Arc<KafkaLog>,
        pub(super) pseudonyms: Pseudonyms,
        pub(super) secrets_dir: PathBuf,
    }

    impl ErasureTarget for KafkaLogErasure {
        fn name(&self) -> &str {
            "kafka"
        }

        fn erase(&self, pseudonym: &str, user: Option<&UserId>) -> Result<ErasedCounts, String> {
            let users = match user {
                Some(user) => vec![user.as_str().to_string()],
                None => self.users_with_pseudonym(pseudonym)?,
            };
            let mut counts = ErasedCounts::new();
            for user in users {
                let destroyed = self
                    .log
                    .secrets()
                    .destroy(&user)
                    .map_err(|e| e.to_string())?;
                let Some(kafka_pseudonym) = destroyed else {
                    continue;
                };
                *counts.entry("secrets_destroyed".into()).or_default() += 1;
                self.log
                    .produce_tombstone(&kafka_pseudonym)
                    .map_err(|e| format!("the secret is destroyed, but the tombstone: {e}"))?;
                *counts.entry("tombstones".into()).or_default() += 1;
            }
            Ok(counts)
        }
    }

    impl KafkaLogErasure {
        /// A resumed erasure knows only the engine's pseudonym: the users of the
        /// secrets directory whose engine pseudonym it is.
        fn users_with_pseudonym(&self, pseudonym: &str) -> Result<Vec<String>, String> {
            let entries = std::fs::read_dir(&self.secrets_dir)
                .map_err(|e| format!("reading {}: {e}", self.secrets_dir.display()))?;
            let mut users = Vec::new();
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|e| e != "json") {
                    continue;
                }
                let Ok(bytes) = std::fs::read(&path) else {
                    continue; // destroyed meanwhile
                };
                let value: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                let Some(user) = value.get("user_id").and_then(|u| u.as_str()) else {
                    continue;
                };
                if self.pseudonyms.pseudonym(user).map_err(|e| e.to_string())? == pseudonym {
                    users.push(user.to_string());
                }
            }
            Ok(users)
        }
    }
}

/// Starts ingesting from the topic when the flags name one.
#[cfg(not(feature = "kafka"))]
pub fn start_ingestion(_engine: &Arc<Engine>, args: &KafkaArgs) -> Result<Option<Ingestion>> {
    check_args(args)?;
    Ok(None)
}

/// Starts ingesting from the topic when the flags name one.
#[cfg(feature = "kafka")]
pub fn start_ingestion(engine: &Arc<Engine>, args: &KafkaArgs) -> Result<Option<Ingestion>> {
    use anyhow::Context;
    use std::sync::atomic::AtomicBool;

    let (Some(brokers), Some(topic)) = (&args.kafka_brokers, &args.kafka_topic) else {
        return Ok(None);
    };
    let broker = flywheel_kafka::Broker::connect(brokers)
        .with_context(|| format!("connecting to the Kafka brokers {brokers}"))?;
    let offsets_dir = engine.config().data_dir.join("kafka");
    let ingestor = flywheel_kafka::Ingestor::open(Arc::new(broker), topic, &offsets_dir)
        .with_context(|| format!("opening Kafka topic {topic}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let apply_engine = Arc::clone(engine);
    let thread = ingestor
        .spawn(
            move |value| apply_events(&apply_engine, value),
            Arc::clone(&stop),
        )
        .context("starting the Kafka ingestion thread")?;
    eprintln!(
        "kafka: ingesting topic {topic} from {brokers} (offsets in {})",
        offsets_dir.display()
    );
    Ok(Some(Ingestion {
        stop,
        thread: Some(thread),
    }))
}

/// Applies one record: the JSON of `POST /v1/events`. Returns once the events are
/// durable in the engine's log and applied to its state.
#[cfg(feature = "kafka")]
pub fn apply_events(engine: &Engine, value: &[u8]) -> flywheel_kafka::ApplyResult {
    use flywheel_kafka::Applied;

    let max_events = flywheel_server::ServerOptions::default().max_batch_events;
    let now = flywheel_core::Timestamp::now();
    let batch =
        match flywheel_server::parse_event_body(value, false, max_events, engine.actions(), now) {
            Ok(batch) => batch,
            Err(error) => return Ok(Applied::Rejected(error.to_string())),
        };
    let range = engine.ingest_batch(batch).map_err(|e| e.to_string())?;
    if !engine.wait_applied(range.end, std::time::Duration::from_secs(60)) {
        return Err(format!("events {range:?} were not applied within 60 s"));
    }
    Ok(Applied::Applied)
}

/// `flywheel inspect --kafka-log T`: the topic's records (partition 0) as the engine
/// reads them (user ids restored), the first `limit` printed, then a count per kind.
pub fn inspect_log(args: &KafkaArgs, data_dir: &std::path::Path, limit: usize) -> Result<()> {
    use anyhow::Context;
    use std::collections::BTreeMap;

    let log = open_log(args, data_dir)?
        .context("--kafka-log TOPIC names the log to inspect")?
        .log;
    let end = log.end_offset(0)?;
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    for (printed, entry) in log
        .read_from(flywheel_log::LogPosition::new(0, 0))?
        .enumerate()
    {
        let (offset, payload) = entry?;
        let kind = flywheel_core::LogRecord::decode(&payload)
            .map_or("undecodable (or an erased user's)", |r| r.kind());
        *kinds.entry(kind).or_default() += 1;
        if printed < limit {
            println!("  {offset}: {}", String::from_utf8_lossy(&payload));
        }
    }
    println!("partition 0: offsets 0..{end}");
    for (kind, count) in &kinds {
        println!("  {kind:<12} {count}");
    }
    Ok(())
}
