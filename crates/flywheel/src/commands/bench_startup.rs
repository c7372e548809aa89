//! `flywheel bench startup`: time to ready over a log of N events, with a snapshot
//! and with a full replay, in one run.
//!
//! The data directory is built once per (events, tail) and reused by later runs: the
//! catalog and N − tail synthetic events are written straight to the log (no fsync),
//! the engine replays them and takes a snapshot, then the last `tail` events are
//! appended after it. The two measurements open the engine on that directory: once
//! with the snapshots moved aside (a full replay of every record), once with them (the
//! snapshot loaded, then the tail replayed). Time to ready is from `Engine::open` to
//! `is_ready`; CPU seconds are the process's own (`/proc/self/stat`), all threads.

use anyhow::{Context, Result};
use clap::Args;
use flywheel_core::{Action, Event, Item, ItemId, LogRecord, Timestamp, UserId};
use flywheel_engine::snapshot::snapshots_dir;
use flywheel_engine::{log_dir, Engine, EngineConfig};
use flywheel_log::{EventLog, LogConfig, SyncMode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::commands::cpu::process_cpu_seconds;

/// The target: ready in under this with a snapshot at 10M events.
const TARGET_SECS: f64 = 5.0;
const ITEMS: usize = 20_000;
const CATEGORIES: usize = 40;
const SEED: u64 = 7;

/// `flywheel bench startup`.
#[derive(Debug, Args)]
pub struct StartupArgs {
    /// Events in the log.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Events appended after the snapshot (replayed at start-up on top of it).
    #[arg(long, default_value_t = 100_000)]
    tail: u64,
    /// The data directory (built on the first run, reused by later ones).
    #[arg(long, default_value = "target/bench-startup")]
    dir: PathBuf,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

/// What the directory was built for (a later run with other sizes rebuilds it).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Built {
    events: u64,
    tail: u64,
    records: u64,
    snapshot_offset: u64,
}

/// One start-up measured.
#[derive(Debug, Serialize)]
struct Startup {
    ready_secs: f64,
    cpu_secs: f64,
    records_replayed: u64,
    snapshot_loaded_offset: Option<u64>,
    snapshot_load_secs: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    events: u64,
    records: u64,
    snapshot_bytes: u64,
    full_replay: Startup,
    with_snapshot: Startup,
    target_secs: f64,
    met: bool,
}

fn bench_config(dir: &Path) -> EngineConfig {
    let mut config = EngineConfig {
        data_dir: dir.to_path_buf(),
        ..EngineConfig::default()
    };
    config.log.fsync = false;
    // The benchmark takes its snapshot itself; none is taken behind its back.
    config.snapshots.every_records = 0;
    config.snapshots.every_secs = 0;
    config
}

/// Synthetic traffic: sessions of a few events of one user within a category
/// neighbourhood, 200 users per 10,000 events, a minute apart, over weeks.
struct Traffic {
    rng: StdRng,
    users: u64,
    at: i64,
}

impl Traffic {
    fn new(events: u64) -> Self {
        Traffic {
            rng: StdRng::seed_from_u64(SEED),
            users: (events / 50).max(100),
            at: 1_700_000_000_000,
        }
    }

    fn session(&mut self, out: &mut Vec<Vec<u8>>, limit: usize) -> Result<()> {
        let user = UserId::new_unchecked(format!("u{}", self.rng.gen_range(0..self.users)));
        let category = self.rng.gen_range(0..CATEGORIES);
        let length = self.rng.gen_range(2..8);
        for _ in 0..length {
            if out.len() == limit {
                break;
            }
            let item = category + CATEGORIES * self.rng.gen_range(0..ITEMS / CATEGORIES);
            let roll: f64 = self.rng.gen();
            let action = if roll < 0.03 {
                Action::Purchase
            } else if roll < 0.25 {
                Action::Click
            } else {
                Action::View
            };
            self.at += self.rng.gen_range(1_000..60_000);
            let event = Event {
                user_id: user.clone(),
                item_id: ItemId::new_unchecked(format!("i{item}")),
                action,
                value: None,
                timestamp: Timestamp(self.at),
                request_id: None,
                position: None,
                context: Default::default(),
            };
            out.push(LogRecord::Event(event).encode()?);
        }
        Ok(())
    }

    /// Appends `count` events to the log in batches.
    fn write(&mut self, log: &EventLog, count: u64) -> Result<()> {
        let mut left = count;
        let mut batch = Vec::with_capacity(10_000);
        while left > 0 {
            let size = left.min(10_000) as usize;
            batch.clear();
            while batch.len() < size {
                self.session(&mut batch, size)?;
            }
            log.append_batch(&batch)?;
            left -= size as u64;
        }
        Ok(())
    }
}

fn open_log(dir: &Path) -> Result<EventLog> {
    let mut config = LogConfig::new(log_dir(dir));
    config.sync = SyncMode::NoSync;
    Ok(EventLog::open(config)?.0)
}

fn marker(dir: &Path) -> PathBuf {
    dir.join("bench-startup.json")
}

/// Builds (or reuses) the data directory; see the module doc.
fn build(args: &StartupArgs) -> Result<Built> {
    let dir = &args.dir;
    if let Ok(text) = std::fs::read_to_string(marker(dir)) {
        if let Ok(built) = serde_json::from_str::<Built>(&text) {
            if built.events == args.events && built.tail == args.tail {
                eprintln!("reusing the data directory {}", dir.display());
                return Ok(built);
            }
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let started = Instant::now();
    let mut traffic = Traffic::new(args.events);
    {
        let log = open_log(dir)?;
        let items: Vec<Vec<u8>> = (0..ITEMS)
            .map(|i| {
                let item = Item::new(
                    ItemId::new_unchecked(format!("i{i}")),
                    format!("c{}/sub{}", i % CATEGORIES, i % 3),
                );
                LogRecord::ItemUpsert(item).encode()
            })
            .collect::<flywheel_core::Result<_>>()?;
        log.append_batch(&items)?;
        traffic.write(&log, args.events - args.tail)?;
    }
    eprintln!(
        "wrote {} events in {:.1} s; replaying them to take the snapshot",
        args.events - args.tail,
        started.elapsed().as_secs_f64()
    );
    let engine = Engine::open(bench_config(dir))?;
    engine.catch_up();
    let snapshot = engine.snapshot_now()?;
    engine.shutdown();
    let records = {
        let log = open_log(dir)?;
        traffic.write(&log, args.tail)?;
        log.end_offset()
    };
    let built = Built {
        events: args.events,
        tail: args.tail,
        records,
        snapshot_offset: snapshot.offset,
    };
    std::fs::write(marker(dir), serde_json::to_string(&built)?)?;
    Ok(built)
}

/// Opens the engine and measures until it is ready.
fn measure(dir: &Path) -> Result<Startup> {
    let cpu = process_cpu_seconds()?;
    let started = Instant::now();
    let engine = Engine::open(bench_config(dir))?;
    while !engine.is_ready() {
        std::thread::sleep(Duration::from_millis(2));
    }
    let ready_secs = started.elapsed().as_secs_f64();
    let cpu_secs = process_cpu_seconds()? - cpu;
    let loaded = engine.snapshot_status().startup.loaded;
    let from = loaded.as_ref().map_or(0, |l| l.offset);
    let startup = Startup {
        ready_secs,
        cpu_secs,
        records_replayed: engine.applied() - from,
        snapshot_loaded_offset: loaded.as_ref().map(|l| l.offset),
        snapshot_load_secs: loaded.map(|l| l.load_ms / 1e3),
    };
    engine.shutdown();
    Ok(startup)
}

/// Runs the benchmark.
pub fn run(args: &StartupArgs) -> Result<()> {
    anyhow::ensure!(
        args.tail < args.events,
        "--tail must be smaller than --events"
    );
    let built = build(args)?;
    let snapshots = snapshots_dir(&args.dir);
    let aside = args.dir.join("snapshots.aside");
    let snapshot_bytes = flywheel_engine::snapshot::list_snapshots(&args.dir)?
        .first()
        .map_or(0, |f| f.bytes);
    std::fs::rename(&snapshots, &aside).context("moving the snapshots aside")?;
    let full = measure(&args.dir);
    std::fs::rename(&aside, &snapshots).context("moving the snapshots back")?;
    let full_replay = full?;
    let with_snapshot = measure(&args.dir)?;
    anyhow::ensure!(
        with_snapshot.snapshot_loaded_offset == Some(built.snapshot_offset),
        "the snapshot was not loaded: {with_snapshot:?}"
    );
    let report = Report {
        events: args.events,
        records: built.records,
        snapshot_bytes,
        met: with_snapshot.ready_secs < TARGET_SECS,
        full_replay,
        with_snapshot,
        target_secs: TARGET_SECS,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

fn print_report(report: &Report) {
    println!(
        "start-up over a log of {} records ({} events and the catalog); snapshot {:.0} MB",
        report.records,
        report.events,
        report.snapshot_bytes as f64 / 1e6
    );
    println!(
        "{:<16} {:>14} {:>10} {:>18}",
        "", "time to ready", "CPU s", "records replayed"
    );
    for (name, startup) in [
        ("full replay", &report.full_replay),
        ("snapshot + tail", &report.with_snapshot),
    ] {
        println!(
            "{name:<16} {:>12.2} s {:>10.2} {:>18}",
            startup.ready_secs, startup.cpu_secs, startup.records_replayed
        );
    }
    if let Some(load) = report.with_snapshot.snapshot_load_secs {
        println!("(snapshot read, checked and decoded in {load:.2} s)");
    }
    println!(
        "target: ready in < {:.0} s with a snapshot: {}",
        report.target_secs,
        if report.met { "met" } else { "NOT met" }
    );
}
