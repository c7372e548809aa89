//! Acknowledged means durable, proven on the crash-test disk.
//!
//! Each seeded cycle runs a log on a fresh [`SimDisk`] through several sessions. A session
//! recovers the log (sometimes crashing in the middle of the recovery itself, including
//! its truncation of a torn tail), appends batches of random sizes from one to three
//! threads, and ends in a crash armed at a random disk operation: mostly power cuts,
//! which throw away unsynced writes at random, and some process kills, which keep the
//! page cache. After every recovery:
//!
//! - every acknowledged batch is present at its acknowledged offsets with its bytes;
//! - every batch a recovery served before is still there (readers may have consumed it);
//! - every record belongs to a batch the test appended, and every batch is there whole or
//!   not at all;
//! - recovery never fails on a state the log itself produced, and appending works again.
//!
//! Some sessions also run out of disk space part-way ([`SimDisk::set_capacity`]) and get it
//! back after a few refused batches, without reopening. While the disk runs, every failed
//! append must say "storage full", a batch refused that way must never appear (not even
//! after a crash), and appends after the space returns must succeed.
//!
//! Single-threaded sessions replay exactly from their seed; multi-threaded ones depend on
//! scheduling too. `FLYWHEEL_CRASH_CYCLES` and `FLYWHEEL_CRASH_FIRST_SEED` select seeds.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flywheel_log::sim::{Crash, SimDisk};
use flywheel_log::{EventLog, LogConfig, RecoveryReport};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DEFAULT_CYCLES: u64 = 2000;
const SESSIONS: usize = 4;
/// Most crashes injected into one recovery before it is let through.
const MAX_RECOVERY_CRASHES: usize = 2;

/// Why a batch must survive every later crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Promise {
    /// `append_batch` returned its offsets.
    Acknowledged,
    /// A recovery served it to readers.
    Recovered,
}

/// A batch the log must keep at `offsets`.
#[derive(Debug, Clone)]
struct Kept {
    batch: u64,
    offsets: Range<u64>,
    promise: Promise,
}

/// Everything the test appended or was promised.
#[derive(Debug, Default)]
struct Oracle {
    /// Payloads of every batch ever attempted, by batch id.
    attempted: HashMap<u64, Vec<Vec<u8>>>,
    /// Batches that must be present, by first offset.
    kept: BTreeMap<u64, Kept>,
    /// Batches refused with "storage full" while the disk ran: they must never appear.
    refused: HashSet<u64>,
    next_batch: u64,
}

/// What the cycles exercised, so that a broken harness cannot pass vacuously.
#[derive(Debug, Default)]
struct Tally {
    cycles: u64,
    acknowledged: u64,
    power_cuts: u64,
    kills: u64,
    lost_writes: u64,
    torn_writes: u64,
    lost_dir_entries: u64,
    truncations: u64,
    recovery_crashes: u64,
    /// Crashes inside recoveries that repair a torn tail.
    repair_crashes: u64,
    rolled_cycles: u64,
    /// Sessions that ran out of disk space.
    full_sessions: u64,
    /// Appends refused with "storage full".
    storage_full_errors: u64,
    /// Appends acknowledged after a "storage full" in the same session (no reopen).
    acked_after_full: u64,
}

/// One seeded cycle: a disk, a log configuration and what was promised on them.
struct Cycle<'a> {
    seed: u64,
    session: usize,
    rng: StdRng,
    disk: SimDisk,
    config: LogConfig,
    oracle: Oracle,
    /// The crashes since the last successful check, for failure messages.
    crashes: Vec<String>,
    tally: &'a mut Tally,
}

impl<'a> Cycle<'a> {
    fn new(seed: u64, tally: &'a mut Tally) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut config = LogConfig::new("/data/log");
        config.segment_max_bytes = rng.gen_range(100..700);
        config.max_batch_records = rng.gen_range(1..24);
        config.max_batch_delay = Duration::ZERO;
        Cycle {
            seed,
            session: 0,
            rng,
            disk: SimDisk::new(),
            config,
            oracle: Oracle::default(),
            crashes: Vec::new(),
            tally,
        }
    }

    fn run(mut self) {
        for session in 0..SESSIONS {
            self.session = session;
            let log = self.recover();
            self.append_until_crash(log);
        }
        self.session = SESSIONS;
        let log = self.recover();
        let batch = self.new_batches(1).remove(0);
        let offsets = log
            .append_batch(&batch.1)
            .unwrap_or_else(|error| self.fail(&format!("append after recovery: {error}")));
        self.keep(batch.0, offsets, Promise::Acknowledged);
        let (log, report) = self
            .open()
            .unwrap_or_else(|error| self.fail(&error.to_string()));
        self.check(&log, &report);
        self.tally.rolled_cycles += u64::from(report.segments > 1);
        self.tally.cycles += 1;
    }

    fn open(&self) -> flywheel_log::Result<(EventLog, RecoveryReport)> {
        EventLog::open_with_storage(self.config.clone(), Arc::new(self.disk.clone()))
    }

    /// Opens the log, first crashing some recoveries at a random operation of their own.
    fn recover(&mut self) -> EventLog {
        for _ in 0..MAX_RECOVERY_CRASHES {
            if !self.rng.gen_bool(0.3) {
                break;
            }
            self.crash_during_recovery();
        }
        let (log, report) = self.open().unwrap_or_else(|error| {
            self.fail(&format!(
                "recovery failed on a state the log produced: {error}"
            ))
        });
        self.tally.truncations += u64::from(report.truncated.is_some());
        self.check(&log, &report);
        log
    }

    /// Arms a crash at a random operation of the next recovery (whose length is measured
    /// on a copy of the disk) and runs that recovery into it.
    fn crash_during_recovery(&mut self) {
        let (length, repairs) = recovery_length(&self.disk, &self.config)
            .unwrap_or_else(|error| self.fail(&format!("recovery failed: {error}")));
        let crash = self.random_crash();
        let seed = self.rng.gen();
        self.disk
            .crash_after(self.rng.gen_range(0..length), crash, seed);
        match self.open() {
            Ok(_) => self.fail("the crash armed inside recovery did not happen"),
            Err(_) if self.disk.is_running() => self.fail("recovery failed with the disk on"),
            Err(_) => {}
        }
        self.count_crash();
        self.tally.recovery_crashes += 1;
        self.tally.repair_crashes += u64::from(repairs);
        self.disk.restart();
    }

    fn random_crash(&mut self) -> Crash {
        match self.rng.gen_bool(0.8) {
            true => Crash::PowerCut,
            false => Crash::ProcessKill,
        }
    }

    /// Appends batches from 1–3 threads with a crash armed at a random operation; crashes
    /// at the end if the armed one did not happen.
    fn append_until_crash(&mut self, log: EventLog) {
        let threads = self.rng.gen_range(1..=3);
        let work: Vec<Vec<(u64, Vec<Vec<u8>>)>> = (0..threads)
            .map(|_| {
                let batches = self.rng.gen_range(1..10);
                self.new_batches(batches)
            })
            .collect();
        let total: usize = work.iter().map(Vec::len).sum();
        let space = self.rng.gen_bool(0.3).then(|| DiskSpace {
            disk: self.disk.clone(),
            returns_after: self.rng.gen_range(1..=3),
            refusals: AtomicU64::new(0),
            acked_after_full: AtomicU64::new(0),
        });
        if space.is_some() {
            let room = self.rng.gen_range(0..400);
            self.disk.set_capacity(Some(self.disk.used_bytes() + room));
            self.tally.full_sessions += 1;
        }
        let crash = self.random_crash();
        let (at, seed) = (self.rng.gen_range(0..3 * total as u64 + 4), self.rng.gen());
        self.disk.crash_after(at, crash, seed);
        let outcome = append_concurrently(&log, &self.disk, space.as_ref(), work);
        self.disk.set_capacity(None);
        if self.disk.is_running() {
            self.disk.disarm();
            self.crash_now(crash);
        }
        self.count_crash();
        drop(log);
        self.disk.restart();
        if let Some(error) = outcome.unexpected {
            self.fail(&format!("an append failed with the disk running: {error}"));
        }
        self.tally.acknowledged += outcome.acknowledged.len() as u64;
        self.tally.storage_full_errors += outcome.refused.len() as u64;
        if let Some(space) = &space {
            self.tally.acked_after_full += space.acked_after_full.load(Ordering::Relaxed);
        }
        self.oracle.refused.extend(outcome.refused);
        for (batch, offsets) in outcome.acknowledged {
            self.keep(batch, offsets, Promise::Acknowledged);
        }
    }

    fn crash_now(&mut self, crash: Crash) {
        match crash {
            Crash::PowerCut => self.disk.power_cut(&mut self.rng),
            Crash::ProcessKill => self.disk.kill(),
        };
    }

    fn count_crash(&mut self) {
        let Some(report) = self.disk.last_crash() else {
            return;
        };
        match report.crash {
            Crash::PowerCut => self.tally.power_cuts += 1,
            Crash::ProcessKill => self.tally.kills += 1,
        }
        self.crashes.push(report.to_string());
        self.tally.lost_writes += report.lost_changes as u64;
        self.tally.torn_writes += report.torn_appends as u64;
        self.tally.lost_dir_entries += report.lost_dir_changes as u64;
    }

    /// `count` new batches of 1–6 payloads of 12–60 bytes that name their batch and index.
    fn new_batches(&mut self, count: usize) -> Vec<(u64, Vec<Vec<u8>>)> {
        (0..count)
            .map(|_| {
                let batch = self.oracle.next_batch;
                self.oracle.next_batch += 1;
                let size = self.rng.gen_range(1..=6);
                let payloads: Vec<Vec<u8>> =
                    (0..size).map(|index| self.payload(batch, index)).collect();
                self.oracle.attempted.insert(batch, payloads.clone());
                (batch, payloads)
            })
            .collect()
    }

    fn payload(&mut self, batch: u64, index: u32) -> Vec<u8> {
        let mut bytes = batch.to_le_bytes().to_vec();
        bytes.extend_from_slice(&index.to_le_bytes());
        let filler = self.rng.gen_range(0..48);
        bytes.extend((0..filler).map(|_| self.rng.gen::<u8>()));
        bytes
    }

    fn keep(&mut self, batch: u64, offsets: Range<u64>, promise: Promise) {
        let size = self.oracle.attempted[&batch].len() as u64;
        if offsets.end - offsets.start != size {
            self.fail(&format!(
                "batch {batch} of {size} records got offsets {offsets:?}"
            ));
        }
        let kept = Kept {
            batch,
            offsets,
            promise,
        };
        self.oracle.kept.insert(kept.offsets.start, kept);
    }

    /// Checks the recovered log against the oracle; everything it holds is promised next.
    fn check(&mut self, log: &EventLog, report: &RecoveryReport) {
        let records: Vec<(u64, Vec<u8>)> = match log.read_from(0) {
            Ok(reader) => reader.collect::<Result<_, _>>(),
            Err(error) => Err(error),
        }
        .unwrap_or_else(|error| self.fail(&format!("replay after recovery: {error}")));
        let end = log.end_offset();
        if records.len() as u64 != end || report.records != end {
            self.fail(&format!(
                "{} records replayed, end offset {end}, report says {}",
                records.len(),
                report.records
            ));
        }
        let present = self.whole_batches(&records);
        for kept in self.oracle.kept.values() {
            if present.get(&kept.offsets.start) != Some(&kept.batch) {
                self.fail(&format!(
                    "{:?} batch {} at offsets {:?} is missing after recovery (the log ends \
                     at {end})",
                    kept.promise, kept.batch, kept.offsets
                ));
            }
        }
        for (start, batch) in present {
            if !self.oracle.kept.contains_key(&start) {
                let size = self.oracle.attempted[&batch].len() as u64;
                self.keep(batch, start..start + size, Promise::Recovered);
            }
        }
        self.crashes.clear();
    }

    /// Splits the records into whole batches (first offset → batch id); fails on a record
    /// the test did not write, a batch present in part, or a batch present twice.
    fn whole_batches(&self, records: &[(u64, Vec<u8>)]) -> BTreeMap<u64, u64> {
        let mut present = BTreeMap::new();
        let mut at = 0;
        while at < records.len() {
            let (batch, index) = identify(&records[at].1)
                .filter(|(batch, _)| self.oracle.attempted.contains_key(batch))
                .unwrap_or_else(|| self.fail(&format!("offset {at} holds a foreign record")));
            let payloads = &self.oracle.attempted[&batch];
            let whole = index == 0
                && payloads.iter().enumerate().all(|(i, payload)| {
                    records.get(at + i).map(|record| &record.1) == Some(payload)
                });
            if !whole {
                self.fail(&format!(
                    "unacknowledged batch {batch} of {} records is half-present: record \
                     #{index} at offset {at}",
                    payloads.len()
                ));
            }
            if present.values().any(|&seen| seen == batch) {
                self.fail(&format!("batch {batch} appears twice"));
            }
            if self.oracle.refused.contains(&batch) {
                self.fail(&format!(
                    "batch {batch} at offset {at} was refused as storage-full, yet it is present"
                ));
            }
            present.insert(at as u64, batch);
            at += payloads.len();
        }
        present
    }

    fn fail(&self, message: &str) -> ! {
        panic!(
            "seed {}, session {}: {message}\n  crashes since the last check: {}\n  config: \
             segment_max_bytes {}, max_batch_records {}",
            self.seed,
            self.session,
            self.crashes.join("; then "),
            self.config.segment_max_bytes,
            self.config.max_batch_records
        );
    }
}

/// How many disk operations recovering `disk` takes, and whether that recovery repairs a
/// torn tail, measured on a copy.
fn recovery_length(disk: &SimDisk, config: &LogConfig) -> flywheel_log::Result<(u64, bool)> {
    let rehearsal = disk.fork();
    let before = rehearsal.ops();
    let (_, report) = EventLog::open_with_storage(config.clone(), Arc::new(rehearsal.clone()))?;
    Ok((rehearsal.ops() - before, report.truncated.is_some()))
}

/// The batch id and record index a test payload names.
fn identify(payload: &[u8]) -> Option<(u64, u32)> {
    let batch = u64::from_le_bytes(payload.get(0..8)?.try_into().ok()?);
    let index = u32::from_le_bytes(payload.get(8..12)?.try_into().ok()?);
    Some((batch, index))
}

/// A session that runs out of disk space: the space returns after `returns_after` refusals.
struct DiskSpace {
    disk: SimDisk,
    returns_after: u64,
    refusals: AtomicU64,
    acked_after_full: AtomicU64,
}

/// What the appending threads of a session saw.
#[derive(Debug, Default)]
struct SessionOutcome {
    acknowledged: Vec<(u64, Range<u64>)>,
    /// Batches refused with "storage full" while the disk ran.
    refused: Vec<u64>,
    /// An error other than "storage full" while the disk ran.
    unexpected: Option<String>,
}

/// Each thread appends its batches in order until one fails because the disk crashed
/// (a "storage full" refusal is noted and the thread goes on with its next batch).
fn append_concurrently(
    log: &EventLog,
    disk: &SimDisk,
    space: Option<&DiskSpace>,
    work: Vec<Vec<(u64, Vec<Vec<u8>>)>>,
) -> SessionOutcome {
    let outcome = Mutex::new(SessionOutcome::default());
    let ran_out = AtomicBool::new(false);
    let record = |update: &mut dyn FnMut(&mut SessionOutcome)| {
        update(
            &mut outcome
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
    };
    let append_all = |batches: Vec<(u64, Vec<Vec<u8>>)>| {
        for (batch, payloads) in batches {
            let error = match log.append_batch(&payloads) {
                Ok(offsets) => {
                    if let Some(space) = space.filter(|_| ran_out.load(Ordering::SeqCst)) {
                        space.acked_after_full.fetch_add(1, Ordering::Relaxed);
                    }
                    record(&mut |o| o.acknowledged.push((batch, offsets.clone())));
                    continue;
                }
                Err(error) => error,
            };
            // A crash turns the disk off until the session ends: the error may be the crash.
            if !disk.is_running() {
                return;
            }
            if !error.is_storage_full() {
                let message = error.to_string();
                record(&mut |o| o.unexpected = Some(message.clone()));
                return;
            }
            record(&mut |o| o.refused.push(batch));
            ran_out.store(true, Ordering::SeqCst);
            if let Some(space) = space {
                let refusals = space.refusals.fetch_add(1, Ordering::SeqCst) + 1;
                if refusals == space.returns_after {
                    space.disk.set_capacity(None); // space returns, the log must carry on
                }
            }
        }
    };
    if work.len() == 1 {
        work.into_iter().for_each(append_all);
    } else {
        std::thread::scope(|scope| {
            for batches in work {
                scope.spawn(|| append_all(batches));
            }
        });
    }
    outcome
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[test]
fn acknowledged_batches_survive_thousands_of_seeded_crashes() {
    let cycles = env_u64("FLYWHEEL_CRASH_CYCLES", DEFAULT_CYCLES);
    let first_seed = env_u64("FLYWHEEL_CRASH_FIRST_SEED", 0);
    let started = Instant::now();
    let mut tally = Tally::default();
    for seed in first_seed..first_seed + cycles {
        Cycle::new(seed, &mut tally).run();
    }
    println!(
        "{cycles} cycles in {:.1} s: {tally:?}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(tally.cycles, cycles);
    if cycles >= 500 {
        assert!(tally.acknowledged > cycles && tally.power_cuts > cycles);
        assert!(tally.lost_writes > 0 && tally.torn_writes > 0 && tally.lost_dir_entries > 0);
        assert!(tally.kills > 0 && tally.truncations > 0 && tally.rolled_cycles > cycles / 2);
        assert!(
            tally.recovery_crashes > 0 && tally.repair_crashes > 0,
            "{tally:?}"
        );
        assert!(
            tally.full_sessions > cycles / 4 && tally.storage_full_errors > cycles / 4,
            "{tally:?}"
        );
        assert!(tally.acked_after_full > cycles / 10, "{tally:?}");
    }
}

/// A log whose last segment ends in a torn frame (a killed append that landed in part),
/// after `acked` acknowledged single-record batches.
fn log_with_torn_tail(config: &LogConfig, acked: u8) -> SimDisk {
    for seed in 0.. {
        let disk = SimDisk::new();
        let (log, _) = EventLog::open_with_storage(config.clone(), Arc::new(disk.clone()))
            .expect("a new log opens");
        for i in 0..acked {
            log.append(&[i; 20]).expect("append");
        }
        disk.crash_after(0, Crash::ProcessKill, seed);
        assert!(log.append_batch(&[[9u8; 40], [9u8; 40]]).is_err());
        drop(log);
        disk.restart();
        if recovery_length(&disk, config).is_ok_and(|(_, repairs)| repairs) {
            return disk;
        }
    }
    unreachable!("some seed tears the append")
}

#[test]
fn a_crash_at_every_operation_of_a_repairing_recovery_loses_nothing() {
    let config = LogConfig::new("/log");
    let disk = log_with_torn_tail(&config, 3);
    let (length, _) = recovery_length(&disk, &config).expect("recovery");
    let expected: Vec<(u64, Vec<u8>)> = (0..3u8).map(|i| (u64::from(i), vec![i; 20])).collect();
    for at in 0..length {
        for (crash, seed) in [
            (Crash::ProcessKill, 0),
            (Crash::PowerCut, at),
            (Crash::PowerCut, !at),
        ] {
            let fork = disk.fork();
            fork.crash_after(at, crash, seed);
            let storage = Arc::new(fork.clone());
            assert!(EventLog::open_with_storage(config.clone(), storage).is_err());
            fork.restart();
            let storage = Arc::new(fork.clone());
            let (log, _) = EventLog::open_with_storage(config.clone(), storage)
                .unwrap_or_else(|error| panic!("{crash:?} at op {at}: {error}"));
            let records: Vec<_> = log
                .read_from(0)
                .and_then(|reader| reader.collect::<Result<Vec<_>, _>>())
                .unwrap_or_else(|error| panic!("{crash:?} at op {at}: {error}"));
            assert_eq!(records, expected, "{crash:?} at op {at}");
            assert_eq!(log.append(b"again").expect("append after recovery"), 3);
        }
    }
}
