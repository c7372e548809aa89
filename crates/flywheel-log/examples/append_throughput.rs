//! Measures append throughput with real fsync (not a test: wall-clock figures vary).
//!
//! `cargo run --release -p flywheel-log --example append_throughput [-- --no-sync]`
//!
//! 1. `append_batch` of 1000 records of 100 bytes, 200 batches, one thread.
//! 2. Single `append` calls from 1, 8 and 64 threads (group commit at work).
//! 3. Full replay of what was written.

use std::sync::Arc;
use std::time::Instant;

use flywheel_log::{EventLog, LogConfig, SyncMode};

const PAYLOAD_BYTES: usize = 100;

fn config(dir: &std::path::Path) -> LogConfig {
    let mut config = LogConfig::new(dir);
    if std::env::args().any(|arg| arg == "--no-sync") {
        config.sync = SyncMode::NoSync;
    }
    config
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let payload = vec![b'e'; PAYLOAD_BYTES];

    let dir = tempfile::tempdir()?;
    let (log, _) = EventLog::open(config(dir.path()))?;
    let batch: Vec<&[u8]> = vec![&payload[..]; 1000];
    let started = Instant::now();
    for _ in 0..200 {
        log.append_batch(&batch)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "append_batch x1000, 100 B: {:.0} records/s ({:.2} ms per batch)",
        200_000.0 / seconds,
        seconds * 1000.0 / 200.0
    );

    let started = Instant::now();
    let replayed = log.read_from(0)?.count();
    println!(
        "replay: {replayed} records in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    log.close()?;

    for threads in [1usize, 8, 64] {
        let dir = tempfile::tempdir()?;
        let (log, _) = EventLog::open(config(dir.path()))?;
        let log = Arc::new(log);
        let per_thread = 4000 / threads.min(8) * threads.min(8) / threads;
        let started = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let log = Arc::clone(&log);
                let payload = payload.clone();
                std::thread::spawn(move || {
                    for _ in 0..per_thread {
                        log.append(&payload).expect("append");
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().map_err(|_| "appender panicked")?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let total = per_thread * threads;
        let commits = log.stats().commits;
        println!(
            "single appends, {threads:>2} threads: {:.0} records/s ({total} records, {commits} \
             commits, {:.1} records per fsync)",
            total as f64 / seconds,
            total as f64 / commits as f64
        );
    }
    Ok(())
}
