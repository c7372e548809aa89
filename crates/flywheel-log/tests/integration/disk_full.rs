//! A full disk: appends fail as "storage full", nothing unwritten is acknowledged, and once
//! space returns appends succeed again without reopening the log.
//!
//! Most tests run on the crash-test disk, whose capacity can be limited
//! ([`SimDisk::set_capacity`]: a write that does not fit lands in part and fails with
//! `ENOSPC`, like a real one) and whose operations can be made to fail
//! ([`SimDisk::fail_with`]). After every failure the segment file must end exactly after
//! the last acknowledged frame, and after every reopen (also after power cuts at random)
//! the log must hold exactly the acknowledged batches.
//!
//! A genuinely full real file system cannot be had deterministically without root (a
//! size-limited mount). [`DevFull`] comes closest: real segment files on the real file
//! system, and past a byte budget the write goes to `/dev/full`, so the error is a real
//! `ENOSPC` from the kernel (Linux only).

use std::ffi::OsString;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use flywheel_log::sim::{FaultOp, SimDisk};
use flywheel_log::{
    EventLog, LogConfig, LogError, RecoveryReport, Storage, StorageFile, SyncMode, WriteHealth,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

const SEGMENT_HEADER: u64 = 32;
const FRAME_HEADER: u64 = 32;
const RECORD_HEADER: u64 = 8;

/// What the test appended and the log acknowledged, in offset order.
#[derive(Debug, Default)]
struct Acked {
    records: Vec<(u64, Vec<u8>)>,
    /// Bytes of the acknowledged frames (headers included), as written to the segment.
    frame_bytes: u64,
}

impl Acked {
    fn add(&mut self, offsets: Range<u64>, batch: &[Vec<u8>]) {
        assert_eq!(
            offsets.start,
            self.records.len() as u64,
            "offsets stay dense"
        );
        assert_eq!(offsets.end - offsets.start, batch.len() as u64);
        self.records.extend(offsets.zip(batch.iter().cloned()));
        self.frame_bytes += frame_len(batch);
    }

    fn end(&self) -> u64 {
        self.records.len() as u64
    }
}

fn frame_len(batch: &[Vec<u8>]) -> u64 {
    let body: u64 = batch
        .iter()
        .map(|payload| RECORD_HEADER + payload.len() as u64)
        .sum();
    FRAME_HEADER + body
}

/// Three 20-byte payloads naming the batch: every batch has the same size.
fn batch(id: u32) -> Vec<Vec<u8>> {
    (0..3u8)
        .map(|index| {
            let mut payload = format!("batch {id:04} #{index}").into_bytes();
            payload.resize(20, b'.');
            payload
        })
        .collect()
}

fn open_sim(disk: &SimDisk, config: &LogConfig) -> (EventLog, RecoveryReport) {
    EventLog::open_with_storage(config.clone(), Arc::new(disk.clone())).expect("the log opens")
}

fn records(log: &EventLog) -> Vec<(u64, Vec<u8>)> {
    log.read_from(0)
        .and_then(|reader| reader.collect::<Result<Vec<_>, _>>())
        .expect("the log replays")
}

fn segment_len(disk: &SimDisk, path: &str) -> u64 {
    disk.file_contents(Path::new(path))
        .expect("the segment exists")
        .len() as u64
}

/// Reopens copies of `disk` after a process kill and after power cuts of several seeds:
/// each must hold exactly `acked`, with nothing to cut off.
fn assert_every_reopen_holds_exactly(disk: &SimDisk, config: &LogConfig, acked: &Acked) {
    for seed in 0..24 {
        let fork = disk.fork();
        match seed {
            0 => drop(fork.kill()),
            _ => drop(fork.power_cut(&mut StdRng::seed_from_u64(seed))),
        }
        fork.restart();
        let (log, report) = open_sim(&fork, config);
        assert_eq!(records(&log), acked.records, "reopen after crash #{seed}");
        assert_eq!(
            report.truncated, None,
            "crash #{seed}: the cut was already durable"
        );
    }
}

#[test]
fn a_full_disk_refuses_appends_as_storage_full_and_they_succeed_again_without_reopening() {
    let disk = SimDisk::new();
    let config = LogConfig::new("/log");
    let segment = "/log/00000000000000000000.log";
    let (log, _) = open_sim(&disk, &config);
    let mut acked = Acked::default();
    let mut next = 0;
    for _ in 0..3 {
        acked.add(
            log.append_batch(&batch(next)).expect("append"),
            &batch(next),
        );
        next += 1;
    }

    // Room for two more batches and a part of a third, which will land in part.
    let room = 2 * frame_len(&batch(0)) + 50;
    disk.set_capacity(Some(disk.used_bytes() + room));
    let error = loop {
        match log.append_batch(&batch(next)) {
            Ok(offsets) => acked.add(offsets, &batch(next)),
            Err(error) => break error,
        }
        next += 1;
    };
    assert_eq!(
        acked.end(),
        15,
        "the two batches that fit were acknowledged"
    );
    assert!(error.is_storage_full(), "{error}");
    let LogError::StorageFull {
        operation, path, ..
    } = &error
    else {
        panic!("expected LogError::StorageFull, got {error:?}");
    };
    assert_eq!(
        (*operation, path.as_path()),
        ("append to segment", Path::new(segment))
    );
    assert!(error.to_string().contains("free disk space"), "{error}");
    let durable_len = SEGMENT_HEADER + acked.frame_bytes;
    assert_eq!(
        segment_len(&disk, segment),
        durable_len,
        "the part of the failed frame that landed was cut off"
    );

    // It stays full: every attempt fails the same way and leaves nothing behind.
    for attempt in 2..=4 {
        let error = log.append_batch(&batch(next)).expect_err("still full");
        assert!(error.is_storage_full(), "attempt {attempt}: {error}");
        assert_eq!(
            segment_len(&disk, segment),
            durable_len,
            "attempt {attempt}"
        );
        let health = log.write_health();
        assert!(!health.is_healthy() && health.storage_full, "{health:?}");
        assert_eq!(health.consecutive_failures, attempt);
        assert!(health.failing_since.is_some() && !health.repair_pending);
        let last_error = health.last_error.unwrap_or_default();
        assert!(last_error.contains("storage is full"), "{last_error}");
    }
    assert_eq!(log.end_offset(), acked.end());
    assert_eq!(
        records(&log),
        acked.records,
        "readers see exactly the acknowledged"
    );
    assert_every_reopen_holds_exactly(&disk, &config, &acked);

    // Space returns: the very next append succeeds, at the offset the failed ones got.
    disk.set_capacity(None);
    next += 1;
    let offsets = log.append_batch(&batch(next)).expect("space is back");
    assert_eq!(
        offsets,
        15..18,
        "the refused batches' offsets are handed out again"
    );
    acked.add(offsets, &batch(next));
    assert_eq!(
        log.write_health(),
        WriteHealth {
            failed_commits: 4,
            ..WriteHealth::default()
        },
        "healthy again, the failures counted"
    );
    assert_eq!(records(&log), acked.records);
    log.close().expect("a healthy log closes cleanly");
    assert_every_reopen_holds_exactly(&disk, &config, &acked);
}

#[test]
fn an_fsync_failing_with_enospc_cuts_the_whole_frame_and_it_never_comes_back() {
    let disk = SimDisk::new();
    let config = LogConfig::new("/log");
    let segment = "/log/00000000000000000000.log";
    let (log, _) = open_sim(&disk, &config);
    let mut acked = Acked::default();
    acked.add(log.append_batch(&batch(0)).expect("append"), &batch(0));

    // Delayed allocation: the write lands in the page cache, the fsync finds no space.
    disk.fail_with(FaultOp::Sync, Some(io::ErrorKind::StorageFull));
    let error = log.append_batch(&batch(1)).expect_err("fsync fails");
    assert!(
        matches!(
            &error,
            LogError::StorageFull {
                operation: "fsync segment",
                ..
            }
        ),
        "{error:?}"
    );
    let health = log.write_health();
    assert!(
        health.repair_pending,
        "the cut could not be synced: {health:?}"
    );
    assert_eq!(
        segment_len(&disk, segment),
        SEGMENT_HEADER + acked.frame_bytes,
        "the frame is cut off at once (the cut is not durable yet)"
    );
    // While the cut is not durable nothing is written; a reopen now finds a clean log.
    let error = log
        .append_batch(&batch(2))
        .expect_err("the cut is retried first");
    assert!(
        error.to_string().contains("after cutting a failed write"),
        "{error}"
    );
    let fork = disk.fork();
    fork.kill();
    fork.restart();
    fork.fail_with(FaultOp::Sync, None);
    assert_eq!(records(&open_sim(&fork, &config).0), acked.records);

    disk.fail_with(FaultOp::Sync, None);
    let offsets = log.append_batch(&batch(3)).expect("fsync works again");
    assert_eq!(offsets, 3..6);
    acked.add(offsets, &batch(3));
    assert!(log.write_health().is_healthy());
    drop(log);
    assert_every_reopen_holds_exactly(&disk, &config, &acked);
}

#[test]
fn while_cutting_a_failed_write_fails_too_nothing_is_written_after_it() {
    let disk = SimDisk::new();
    let config = LogConfig::new("/log");
    let segment = "/log/00000000000000000000.log";
    let (log, _) = open_sim(&disk, &config);
    let mut acked = Acked::default();
    acked.add(log.append_batch(&batch(0)).expect("append"), &batch(0));
    let durable_len = SEGMENT_HEADER + acked.frame_bytes;

    disk.set_capacity(Some(disk.used_bytes() + 40));
    disk.fail_with(FaultOp::SetLen, Some(io::ErrorKind::Other));
    let error = log.append_batch(&batch(1)).expect_err("disk full");
    assert!(error.is_storage_full(), "{error}");
    assert_eq!(
        segment_len(&disk, segment),
        durable_len + 40,
        "the partial frame stays"
    );
    assert!(log.write_health().repair_pending);

    // Space is back, but the remains cannot be cut: nothing may be written after them.
    disk.set_capacity(None);
    let error = log.append_batch(&batch(2)).expect_err("the cut fails");
    assert!(
        matches!(error, LogError::Io { .. }) && !error.is_storage_full(),
        "{error}"
    );
    assert!(
        error.to_string().contains("cut a failed write off segment"),
        "{error}"
    );
    let health = log.write_health();
    assert!(!health.storage_full && health.repair_pending, "{health:?}");
    assert_eq!(health.consecutive_failures, 2);
    assert_eq!(
        segment_len(&disk, segment),
        durable_len + 40,
        "nothing written after"
    );

    // A reopen meanwhile sees a torn tail and cuts it, as after a crash.
    let fork = disk.fork();
    fork.kill();
    fork.restart();
    fork.fail_with(FaultOp::SetLen, None);
    let (reopened, report) = open_sim(&fork, &config);
    let truncated = report.truncated.expect("the remains are cut at reopen");
    assert_eq!(
        (truncated.valid_bytes, truncated.dropped_bytes),
        (durable_len, 40)
    );
    assert_eq!(records(&reopened), acked.records);

    disk.fail_with(FaultOp::SetLen, None);
    let offsets = log
        .append_batch(&batch(3))
        .expect("the cut works, then the write");
    acked.add(offsets, &batch(3));
    assert_eq!(
        segment_len(&disk, segment),
        SEGMENT_HEADER + acked.frame_bytes
    );
    drop(log);
    assert_every_reopen_holds_exactly(&disk, &config, &acked);
}

#[test]
fn a_roll_that_runs_out_of_space_is_finished_by_the_next_append() {
    let disk = SimDisk::new();
    let mut config = LogConfig::new("/log");
    config.segment_max_bytes = 1; // every commit after the first starts a new segment
    let (log, _) = open_sim(&disk, &config);
    let mut acked = Acked::default();
    acked.add(log.append_batch(&batch(0)).expect("append"), &batch(0));

    // Not even the new segment's 32-byte header fits: 10 bytes of it land.
    disk.set_capacity(Some(disk.used_bytes() + 10));
    let error = log.append_batch(&batch(1)).expect_err("the roll fails");
    assert!(
        matches!(
            &error,
            LogError::StorageFull {
                operation: "write header of segment",
                ..
            }
        ),
        "{error:?}"
    );
    let second = "/log/00000000000000000003.log";
    assert_eq!(segment_len(&disk, second), 10, "a partial header");
    let error = log.append_batch(&batch(1)).expect_err("still full");
    assert!(error.is_storage_full(), "{error}");

    // A reopen meanwhile repairs the half-made segment: no gap, nothing lost.
    let fork = disk.fork();
    fork.kill();
    fork.restart();
    fork.set_capacity(None);
    let (reopened, report) = open_sim(&fork, &config);
    assert_eq!(report.segments, 2);
    assert_eq!(records(&reopened), acked.records);

    // Inode exhaustion on the next roll: creating the file fails instead.
    disk.set_capacity(None);
    let offsets = log.append_batch(&batch(2)).expect("the roll is finished");
    acked.add(offsets, &batch(2));
    assert_eq!(log.stats().segments, 2);
    disk.fail_with(FaultOp::Create, Some(io::ErrorKind::StorageFull));
    let error = log.append_batch(&batch(3)).expect_err("no inodes");
    assert!(
        matches!(
            &error,
            LogError::StorageFull {
                operation: "create segment",
                ..
            }
        ),
        "{error:?}"
    );
    disk.fail_with(FaultOp::Create, None);
    let offsets = log.append_batch(&batch(4)).expect("appends again");
    acked.add(offsets, &batch(4));
    assert_eq!(log.stats().segments, 3);
    assert_eq!(records(&log), acked.records);
    drop(log);
    assert_every_reopen_holds_exactly(&disk, &config, &acked);
}

#[test]
fn concurrent_appenders_on_a_filling_disk_lose_nothing_acknowledged() {
    let disk = SimDisk::new();
    let mut config = LogConfig::new("/log");
    config.segment_max_bytes = 2000;
    let (log, _) = open_sim(&disk, &config);
    disk.set_capacity(Some(6000));
    let acked = Mutex::new(Vec::new());
    let refused = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for thread in 0..8u32 {
            let (log, disk, acked, refused) = (&log, &disk, &acked, &refused);
            scope.spawn(move || {
                for i in 0..40 {
                    let id = thread * 100 + i;
                    match log.append_batch(&batch(id)) {
                        Ok(offsets) => acked.lock().expect("lock").push((offsets, id)),
                        Err(error) => {
                            assert!(error.is_storage_full(), "{error}");
                            // The space comes back after the 60th refusal.
                            if refused.fetch_add(1, Ordering::SeqCst) == 59 {
                                disk.set_capacity(None);
                            }
                        }
                    }
                }
            });
        }
    });
    let mut acked = acked.into_inner().expect("lock");
    acked.sort_by_key(|(offsets, _)| offsets.start);
    let refused = refused.into_inner();
    assert!(refused >= 60, "the disk filled up: {refused} refusals");
    assert_eq!(acked.len() as u64 + refused, 8 * 40);
    assert!(log.write_health().is_healthy());
    let mut expected = Acked::default();
    for (offsets, id) in &acked {
        expected.add(offsets.clone(), &batch(*id));
    }
    assert_eq!(
        records(&log),
        expected.records,
        "dense, and only acknowledged batches"
    );
    drop(log);
    let (log, _) = open_sim(&disk, &config);
    assert_eq!(records(&log), expected.records);
}

/// Real files on the real file system, except that once `budget` bytes of appends are
/// used up, an append writes what still fits and then writes the rest to `/dev/full`,
/// returning the kernel's real `ENOSPC` (raw OS error 28).
#[derive(Debug, Clone)]
struct DevFull {
    budget: Arc<Mutex<Option<u64>>>,
}

impl DevFull {
    fn set_budget(&self, bytes: Option<u64>) {
        *self.budget.lock().expect("lock") = bytes;
    }

    fn wrap(&self, file: std::fs::File) -> Box<dyn StorageFile> {
        Box::new(DevFullFile {
            file,
            budget: Arc::clone(&self.budget),
        })
    }
}

impl Storage for DevFull {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir(dir)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        std::fs::read_dir(dir)?
            .map(|entry| entry.map(|entry| entry.file_name()))
            .collect()
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(path)?;
        Ok(self.wrap(file))
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(self.wrap(std::fs::File::open(path)?))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)?;
        Ok(self.wrap(file))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }
}

#[derive(Debug)]
struct DevFullFile {
    file: std::fs::File,
    budget: Arc<Mutex<Option<u64>>>,
}

impl StorageFile for DevFullFile {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::{Read, Seek, SeekFrom};
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.read(buf)
    }
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let mut budget = self.budget.lock().expect("lock");
        let Some(left) = budget.as_mut() else {
            return self.file.write_all(bytes);
        };
        let fits = bytes
            .len()
            .min(usize::try_from(*left).unwrap_or(usize::MAX));
        self.file.write_all(&bytes[..fits])?;
        *left -= fits as u64;
        if fits == bytes.len() {
            return Ok(());
        }
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")?
            .write_all(&bytes[fits..])
    }
    fn size(&mut self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn sync_all(&mut self) -> io::Result<()> {
        self.file.sync_all()
    }
}

#[test]
fn a_real_enospc_on_real_files_is_cut_off_and_reported_and_the_log_carries_on() {
    if !Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full on this system");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = LogConfig::new(dir.path());
    config.sync = SyncMode::Fsync;
    let storage = DevFull {
        budget: Arc::new(Mutex::new(None)),
    };
    let (log, _) = EventLog::open_with_storage(config.clone(), Arc::new(storage.clone()))
        .expect("the log opens");
    let segment: PathBuf = dir.path().join("00000000000000000000.log");
    let mut acked = Acked::default();
    acked.add(log.append_batch(&batch(0)).expect("append"), &batch(0));

    storage.set_budget(Some(frame_len(&batch(1)) + 30));
    acked.add(log.append_batch(&batch(1)).expect("fits"), &batch(1));
    let error = log.append_batch(&batch(2)).expect_err("ENOSPC");
    let LogError::StorageFull { source, .. } = &error else {
        panic!("expected StorageFull, got {error:?}");
    };
    assert_eq!(
        source.raw_os_error(),
        Some(28),
        "a real ENOSPC from the kernel"
    );
    let len = std::fs::metadata(&segment).expect("segment").len();
    assert_eq!(
        len,
        SEGMENT_HEADER + acked.frame_bytes,
        "30 landed bytes were cut off"
    );
    assert!(log.write_health().storage_full);

    storage.set_budget(None);
    acked.add(
        log.append_batch(&batch(3)).expect("space is back"),
        &batch(3),
    );
    assert!(log.write_health().is_healthy());
    log.close().expect("close");
    let (log, report) = EventLog::open(config).expect("reopen on the plain file system");
    assert_eq!(report.truncated, None);
    assert_eq!(records(&log), acked.records);
}
