//! `log_recovery`: the log's segment reader and recovery (`EventLog::open` on a real
//! directory, then a full read).
//!
//! Input: a mode byte, then the rest. Even modes (raw): the bytes are one segment file
//! (or two, split where the second byte says, the second named by the third byte's
//! offset), and the log is opened on them. Odd modes (structured): the bytes describe
//! batches that a real log writes with small segments; then the files are damaged
//! (the last segment cut at a position, a byte flipped in some segment, or garbage
//! appended to the last segment) and the log is reopened. Properties:
//! - no panic: every refusal is a `LogError`;
//! - a refused open changes no file;
//! - an accepted open cut at most the last segment's tail, to a prefix of its bytes,
//!   and reports exactly what it cut (`valid_bytes + dropped_bytes` = the old length);
//!   sealed segments are untouched;
//! - everything read back after recovery reads without error, and as many records as
//!   the report says; a reopen finds nothing more to cut; an append after recovery
//!   lands at the end and reads back;
//! - structured: what is read back is what was written, up to a batch boundary (a
//!   batch is whole or absent); a cut or garbage at the end of the last segment is
//!   always recovered (a torn tail never refuses the open; appended garbage only when it
//!   holds a well-formed frame with a later offset, or a payload holds one, the two
//!   `Corrupt` refusals the crate doc names),
//!   and garbage loses nothing.

use flywheel_log::{EventLog, LogConfig, LogError, RecoveryReport, SyncMode};
use std::path::{Path, PathBuf};

use crate::scratch_dir;

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = scratch_dir().join("log");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a log scratch folder");
    if mode % 2 == 0 {
        check_raw(&dir, mode, rest);
    } else {
        check_structured(&dir, rest);
    }
}

/// The configuration the target opens logs with: small segments, no fsync (tmpfs).
pub fn config(dir: &Path) -> LogConfig {
    let mut config = LogConfig::new(dir);
    config.segment_max_bytes = 256;
    config.sync = SyncMode::NoSync;
    config.max_batch_delay = std::time::Duration::ZERO;
    config
}

/// The first bytes of a frame header (`0xF1A7_B0A7`, little-endian).
const FRAME_MAGIC: [u8; 4] = 0xF1A7_B0A7u32.to_le_bytes();

fn segment_path(dir: &Path, first_offset: u64) -> PathBuf {
    dir.join(format!("{first_offset:020}.log"))
}

/// The segment files of `dir` and their bytes, in name order.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("listing the log folder")
        .map(|entry| entry.expect("a folder entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("reading a segment");
            (path, bytes)
        })
        .collect()
}

/// Every record of an opened log, which must all read without error.
fn read_all(log: &EventLog) -> Vec<Vec<u8>> {
    let reader = log.read_from(0).expect("reading an opened log from 0");
    reader
        .enumerate()
        .map(|(index, item)| {
            let (offset, payload) =
                item.unwrap_or_else(|e| panic!("record {index} after recovery fails: {e}"));
            assert_eq!(offset, index as u64, "offsets are dense from 0");
            payload
        })
        .collect()
}

fn check_raw(dir: &Path, mode: u8, rest: &[u8]) {
    if mode & 2 == 0 || rest.len() < 2 {
        std::fs::write(segment_path(dir, 0), rest).expect("writing a segment");
    } else {
        let split = usize::from(rest[0]) * (rest.len() - 2) / 255;
        let (first, second) = rest[2..].split_at(split);
        std::fs::write(segment_path(dir, 0), first).expect("writing a segment");
        let second_offset = u64::from(rest[1]);
        std::fs::write(segment_path(dir, second_offset), second).expect("writing a segment");
    }
    let before = snapshot(dir);
    match EventLog::open(config(dir)) {
        Err(_) => assert_eq!(snapshot(dir), before, "a refused open changed the files"),
        Ok((log, report)) => {
            check_cut(&before, &snapshot(dir), &report);
            let records = read_all(&log);
            assert_eq!(records.len() as u64, report.records);
            check_after_recovery(dir, log, records);
        }
    }
}

/// What recovery may have changed: only the last segment, cut to a prefix as reported
/// (or, when its header was incomplete, rewritten to a bare header).
fn check_cut(before: &[(PathBuf, Vec<u8>)], after: &[(PathBuf, Vec<u8>)], report: &RecoveryReport) {
    assert_eq!(
        before.len(),
        after.len(),
        "recovery added or removed a segment"
    );
    let Some(((_, old_last), (last_path, new_last))) = before.last().zip(after.last()) else {
        return;
    };
    assert_eq!(
        before[..before.len() - 1],
        after[..after.len() - 1],
        "a sealed segment changed"
    );
    const HEADER: usize = 32;
    match &report.truncated {
        Some(cut) => {
            assert_eq!(&cut.segment, last_path, "the cut names another segment");
            assert_eq!(
                new_last.len() as u64,
                cut.valid_bytes,
                "the report says another length"
            );
            if old_last.len() <= HEADER && cut.reason.starts_with("incomplete segment header") {
                // A partial header is replaced by a fresh one: all its bytes are dropped.
                assert_eq!(cut.dropped_bytes, old_last.len() as u64);
                assert_eq!(new_last.len(), HEADER);
            } else {
                assert_eq!(cut.valid_bytes + cut.dropped_bytes, old_last.len() as u64);
                assert_eq!(
                    new_last[..],
                    old_last[..new_last.len()],
                    "the cut is not a prefix"
                );
            }
        }
        None => assert_eq!(
            new_last, old_last,
            "an unreported change to the last segment"
        ),
    }
}

/// Appends one record after recovery, reopens, and checks everything is still there.
fn check_after_recovery(dir: &Path, log: EventLog, mut records: Vec<Vec<u8>>) {
    let offset = log
        .append(b"after recovery")
        .expect("an append after recovery");
    assert_eq!(
        offset,
        records.len() as u64,
        "the append does not land at the end"
    );
    log.close().expect("closing the log");
    records.push(b"after recovery".to_vec());
    let (log, report) = EventLog::open(config(dir)).expect("reopening a recovered log");
    assert_eq!(report.truncated, None, "a reopen cut something again");
    assert_eq!(read_all(&log), records, "a reopen reads other records");
    log.close().expect("closing the log");
}

/// Reads the input as a little program: batches of records, then one kind of damage.
struct Script<'a> {
    bytes: &'a [u8],
}

impl Script<'_> {
    fn next(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&b, rest)) => {
                self.bytes = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.bytes.len());
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        taken.to_vec()
    }

    fn batches(&mut self) -> Vec<Vec<Vec<u8>>> {
        let count = usize::from(self.next() % 12) + 1;
        (0..count)
            .map(|_| {
                let records = usize::from(self.next() % 4) + 1;
                (0..records)
                    .map(|_| {
                        let len = usize::from(self.next() % 48);
                        self.take(len)
                    })
                    .collect()
            })
            .collect()
    }
}

fn check_structured(dir: &Path, rest: &[u8]) {
    let mut script = Script { bytes: rest };
    let batches = script.batches();
    let (log, _) = EventLog::open(config(dir)).expect("opening an empty log");
    for batch in &batches {
        log.append_batch(batch).expect("appending a batch");
    }
    log.close().expect("closing the log");
    let written: Vec<Vec<u8>> = batches.iter().flatten().cloned().collect();
    let mut boundaries = vec![0];
    for batch in &batches {
        boundaries.push(boundaries[boundaries.len() - 1] + batch.len());
    }
    let files = snapshot(dir);
    let damage = script.next() % 3;
    let position = usize::from(u16::from_le_bytes([script.next(), script.next()]));
    let (last_path, last_bytes) = files.last().expect("a written log has a segment");
    let must_open = match damage {
        0 => {
            let cut = position % (last_bytes.len() + 1);
            std::fs::write(last_path, &last_bytes[..cut]).expect("cutting the last segment");
            true
        }
        1 => {
            let (path, bytes) = &files[usize::from(script.next()) % files.len()];
            let mut bytes = bytes.clone();
            if !bytes.is_empty() {
                let at = position % bytes.len();
                bytes[at] ^= script.next() | 1;
            }
            std::fs::write(path, &bytes).expect("flipping a byte");
            false
        }
        _ => {
            let mut bytes = last_bytes.clone();
            bytes.extend_from_slice(script.bytes);
            std::fs::write(last_path, &bytes).expect("appending garbage");
            true
        }
    };
    let before = snapshot(dir);
    match EventLog::open(config(dir)) {
        Err(e) => {
            // Garbage may hold a well-formed frame with a later offset (libFuzzer solves
            // CRC comparisons): then the open refuses by design, as `Corrupt`.
            // Likewise a payload that itself holds a frame header, inside a cut frame
            // (the crate doc names this case; JSON payloads, which escape control
            // bytes, never hold one: a header's length fields have zero bytes).
            let holds_frame = written
                .iter()
                .any(|p| p.windows(4).any(|w| w == FRAME_MAGIC));
            let documented = (damage == 2 || holds_frame) && matches!(e, LogError::Corrupt { .. });
            assert!(
                !must_open || documented,
                "a torn tail refused the open: {e}"
            );
            assert_eq!(snapshot(dir), before, "a refused open changed the files");
        }
        Ok((log, report)) => {
            check_cut(&before, &snapshot(dir), &report);
            let records = read_all(&log);
            // Garbage may hold well-formed frames that continue the log: records after
            // the written ones are then the garbage's, and only those are allowed.
            let ours = &records[..records.len().min(written.len())];
            if damage == 2 {
                assert_eq!(ours, &written[..], "garbage at the end lost records");
            } else {
                assert_eq!(ours.len(), records.len(), "records appeared from nowhere");
                assert!(boundaries.contains(&ours.len()), "a batch was cut in two");
                assert_eq!(ours, &written[..ours.len()], "other records read back");
            }
            check_after_recovery(dir, log, records);
        }
    }
}
