//! Apply throughput and feature-read latency per request batch, the Redis store beside
//! the in-process store, in one run:
//!
//! ```text
//! scripts/ensure-redis.sh
//! cargo run --release -p flywheel-redis --example redis_vs_in_process [-- REDIS_URL]
//! ```
//!
//! The log is the simulator's quickstart shop (seed 7). Apply: every record once, in
//! chunks of 512 (the writer's transaction size). Reads: for 2,000 requests of users
//! from the log, what one recommendation reads — the user's features, 200 candidates'
//! features in one batch, the co-visitation of 10 history items, popular and trending
//! top 50. CPU: this process's user+system time (/proc/self/stat) and, for Redis, the
//! server's own (`INFO cpu`), so the remote store's cost is not hidden in another process.

use std::time::Instant;

use flywheel_core::{ItemId, LogRecord, Timestamp};
use flywheel_features::{FeatureConfig, FeatureReader, FeatureStore};
use flywheel_redis::{RedisConfig, RedisReader, RedisWriter};

fn process_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn redis_cpu_secs(url: &str) -> f64 {
    let Ok(client) = redis::Client::open(url) else {
        return 0.0;
    };
    let Ok(mut conn) = client.get_connection() else {
        return 0.0;
    };
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query(&mut conn)
        .unwrap_or_default();
    info.lines()
        .filter(|l| l.starts_with("used_cpu_user:") || l.starts_with("used_cpu_sys:"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok())
        .sum()
}

fn shop() -> Vec<LogRecord> {
    let sim = flywheel_sim::simulate(&flywheel_sim::SimConfig::quickstart()).expect("simulating");
    let mut records: Vec<LogRecord> = sim
        .world
        .items
        .iter()
        .cloned()
        .map(LogRecord::ItemUpsert)
        .collect();
    let mut timed: Vec<(Timestamp, LogRecord)> = sim
        .events
        .iter()
        .map(|e| (e.timestamp, LogRecord::Event(e.clone())))
        .chain(
            sim.impressions
                .iter()
                .map(|i| (i.timestamp, LogRecord::Impression(i.clone()))),
        )
        .collect();
    timed.sort_by_key(|(at, _)| *at);
    records.extend(timed.into_iter().map(|(_, r)| r));
    records
}

struct Batch {
    user: flywheel_core::UserId,
    candidates: Vec<ItemId>,
}

fn read_batch(reader: &dyn FeatureReader, batch: &Batch, now: Timestamp) -> usize {
    let user = reader.user_features(&batch.user, now);
    let refs: Vec<&ItemId> = batch.candidates.iter().collect();
    let items = reader.item_features_many(&refs, now);
    let seeds: Vec<&ItemId> = user.recent.iter().take(10).map(|(i, _, _)| i).collect();
    let covis = reader.co_visited_many(&seeds, 50);
    let popular = reader.popular(None, now, 50);
    let trending = reader.trending(None, now, 50);
    items.len() + covis.len() + popular.len() + trending.len()
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let records = shop();
    let mut config = RedisConfig::new(url.clone(), FeatureConfig::default());
    config.prefix = format!("flywheel-bench-{}", std::process::id());
    config.read_deadline = std::time::Duration::from_secs(5);
    let mut writer = RedisWriter::new(config.clone());
    writer
        .delete_all()
        .expect("redis must answer: run scripts/ensure-redis.sh");

    let (cpu, wall) = (process_cpu_secs(), Instant::now());
    let mut store = FeatureStore::new(FeatureConfig::default());
    for record in &records {
        store.apply_record(record);
    }
    let (local_wall, local_cpu) = (wall.elapsed().as_secs_f64(), process_cpu_secs() - cpu);

    let (cpu, server, wall) = (process_cpu_secs(), redis_cpu_secs(&url), Instant::now());
    for (n, part) in records.chunks(512).enumerate() {
        let part: Vec<Option<LogRecord>> = part.iter().cloned().map(Some).collect();
        writer
            .apply_chunk((n * 512) as u64, &part)
            .expect("applying");
    }
    let (redis_wall, redis_cpu, redis_server) = (
        wall.elapsed().as_secs_f64(),
        process_cpu_secs() - cpu,
        redis_cpu_secs(&url) - server,
    );
    let n = records.len() as f64;
    println!("records: {}", records.len());
    println!(
        "apply in-process: {:.0} records/s, {:.2} µs CPU/record",
        n / local_wall,
        local_cpu / n * 1e6
    );
    println!(
        "apply redis:      {:.0} records/s, {:.2} µs CPU/record here + {:.2} µs in redis-server",
        n / redis_wall,
        redis_cpu / n * 1e6,
        redis_server / n * 1e6
    );

    let now = records
        .iter()
        .filter_map(|r| match r {
            LogRecord::Event(e) => Some(e.timestamp),
            _ => None,
        })
        .max()
        .unwrap_or(Timestamp::from_secs(0));
    let items: Vec<ItemId> = store
        .popular(None, now, 10_000)
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    let users: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            LogRecord::Event(e) => Some(e.user_id.clone()),
            _ => None,
        })
        .step_by(97)
        .take(2_000)
        .collect();
    let batches: Vec<Batch> = users
        .into_iter()
        .enumerate()
        .map(|(i, user)| Batch {
            user,
            candidates: items
                .iter()
                .cycle()
                .skip(i * 7)
                .take(200)
                .cloned()
                .collect(),
        })
        .collect();
    let reader = RedisReader::new(config.clone());
    for (name, source) in [
        ("in-process", &store as &dyn FeatureReader),
        ("redis", &reader),
    ] {
        let (cpu, server) = (process_cpu_secs(), redis_cpu_secs(&url));
        let mut times = Vec::with_capacity(batches.len());
        let mut total = 0;
        for batch in &batches {
            let started = Instant::now();
            total += read_batch(source, batch, now);
            times.push(started.elapsed().as_secs_f64() * 1e6);
        }
        let (cpu, server) = (process_cpu_secs() - cpu, redis_cpu_secs(&url) - server);
        times.sort_by(f64::total_cmp);
        let per = |s: f64| s / batches.len() as f64 * 1e6;
        println!(
            "read batch {name:<10}: p50 {:.0} µs, p99 {:.0} µs, {:.0} µs CPU/batch here + {:.0} µs in redis-server ({total} values)",
            quantile(&times, 0.5),
            quantile(&times, 0.99),
            per(cpu),
            if name == "redis" { per(server) } else { 0.0 },
        );
    }
    let _ = writer.delete_all();
}
