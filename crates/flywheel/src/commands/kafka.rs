//! `flywheel serve --kafka-brokers HOST:PORT --kafka-topic T`: ingestion from a topic
//! the shop's own producers write, through `flywheel-kafka` (cargo feature `kafka`).
//!
//! Each record's value is the JSON of `POST /v1/events` (one event or an array, applied
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

/// Starts ingesting from the topic when the flags name one.
#[cfg(not(feature = "kafka"))]
pub fn start_ingestion(_engine: &Arc<Engine>, args: &KafkaArgs) -> Result<Option<Ingestion>> {
    if args.kafka_brokers.is_some() || args.kafka_topic.is_some() {
        anyhow::bail!(
            "--kafka-brokers/--kafka-topic need a flywheel built with Kafka support: \
             cargo build --release --features kafka"
        );
    }
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
