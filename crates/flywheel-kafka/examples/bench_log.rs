//! Produce throughput and acknowledgement latency of the Kafka log beside the embedded
//! log, in one run on one machine, through the same `RecordLog` seam.
//!
//! ```text
//! scripts/start-broker.sh 19092
//! cargo run --release -p flywheel-kafka --example bench_log -- 127.0.0.1:19092 [BATCHES] [BATCH_SIZE]
//! ```
//! Each log takes BATCHES (default 2000) sequential `append_batch` calls of BATCH_SIZE
//! (default 1, i.e. one event per acknowledgement) encoded events; the embedded log
//! fsyncs every commit (its default). Prints records/s and p50/p99 of the time to the
//! acknowledgement.

// A measuring tool: a failed unwrap is a failed run.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use flywheel_kafka::{Broker, KafkaLog, SecretStore};
use flywheel_log::{EventLog, LogConfig, RecordLog};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let brokers = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:19092".into());
    let batches: usize = args.get(2).map_or(2000, |a| a.parse().unwrap());
    let batch_size: usize = args.get(3).map_or(1, |a| a.parse().unwrap());
    let payloads: Vec<Vec<u8>> = (0..batches * batch_size)
        .map(|n| {
            format!(
                r#"{{"type":"event","user_id":"user-{}","item_id":"item-{}","action":"view","timestamp":{n}}}"#,
                n % 1000,
                n % 5000
            )
            .into_bytes()
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let (embedded, _) = EventLog::open(LogConfig::new(dir.path().join("log"))).unwrap();
    report("embedded (fsync)", &embedded, &payloads, batch_size);

    let broker = Arc::new(Broker::connect(&brokers).unwrap());
    let secrets = Arc::new(SecretStore::open(dir.path().join("secrets")).unwrap());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("bench-{nanos:x}");
    let kafka = KafkaLog::open(broker, secrets, &topic, 1).unwrap();
    // The first produce opens the connection; warm it up outside the measurement.
    kafka.append_batch(0, &[payloads[0].as_slice()]).unwrap();
    report(
        &format!("kafka {brokers} (acks=all)"),
        &kafka,
        &payloads,
        batch_size,
    );
}

fn report(name: &str, log: &dyn RecordLog, payloads: &[Vec<u8>], batch_size: usize) {
    let mut latencies: Vec<Duration> = Vec::with_capacity(payloads.len() / batch_size);
    let started = Instant::now();
    for chunk in payloads.chunks(batch_size) {
        let slices: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let sent = Instant::now();
        log.append_batch(0, &slices).unwrap();
        latencies.push(sent.elapsed());
    }
    let wall = started.elapsed();
    latencies.sort();
    let quantile =
        |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{name}: {} records in {} batches of {batch_size}: {:.0} records/s, ack p50 {:.2} ms, p99 {:.2} ms",
        payloads.len(),
        latencies.len(),
        payloads.len() as f64 / wall.as_secs_f64(),
        quantile(0.50).as_secs_f64() * 1e3,
        quantile(0.99).as_secs_f64() * 1e3,
    );
}
