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

/// The engine's log on Kafka when `--kafka-log` names a topic.
#[cfg(not(feature = "kafka"))]
pub fn open_log(
    args: &KafkaArgs,
    _data_dir: &std::path::Path,
) -> Result<Option<Arc<dyn flywheel_log::RecordLog>>> {
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
pub fn open_log(
    args: &KafkaArgs,
    data_dir: &std::path::Path,
) -> Result<Option<Arc<dyn flywheel_log::RecordLog>>> {
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
    eprintln!(
        "kafka: the log is topic {topic} on {brokers} ({} partition(s); secrets in {}); \
         events are acknowledged once the broker has them",
        flywheel_log::RecordLog::partitions(&log),
        secrets_dir.display()
    );
    Ok(Some(Arc::new(log)))
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

    let log = open_log(args, data_dir)?.context("--kafka-log TOPIC names the log to inspect")?;
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
