//! Opening the log: find the segments, verify them, repair a torn tail.

use std::path::{Path, PathBuf};

use crate::config::{LogConfig, SyncMode};
use crate::error::{io_error, LogError, Result};
use crate::format::{
    parse_segment_file_name, segment_file_name, SegmentHeader, SEGMENT_HEADER_LEN,
};
use crate::scan::scan_segment;
use crate::storage::{parent_dir, Storage, StorageFile};

/// What `EventLog::open` found and repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files in the log after recovery.
    pub segments: usize,
    /// Valid records in the log after recovery.
    pub records: u64,
    /// The torn or corrupt tail that was cut off the last segment, if any.
    pub truncated: Option<Truncation>,
}

/// A tail cut off the last segment during recovery: the bytes of a batch whose write was
/// interrupted (never acknowledged), or garbage after the last valid batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The segment file that was truncated.
    pub segment: PathBuf,
    /// Its length after truncation.
    pub valid_bytes: u64,
    /// How many bytes were removed.
    pub dropped_bytes: u64,
    /// What was wrong with the first removed byte range.
    pub reason: String,
}

/// One segment file of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentEntry {
    /// Offset of its first record.
    pub first_offset: u64,
    /// Its path.
    pub path: PathBuf,
}

/// The segment new batches are appended to.
#[derive(Debug)]
pub(crate) struct ActiveSegment {
    /// Open for appending.
    pub file: Box<dyn StorageFile>,
    /// Its path.
    pub path: PathBuf,
    /// Current length in bytes.
    pub bytes: u64,
}

/// The state of a freshly opened log.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub segments: Vec<SegmentEntry>,
    pub end_offset: u64,
    pub active: ActiveSegment,
    pub report: RecoveryReport,
}

/// Verifies every segment in `config.dir` (creating the directory and a first segment if
/// needed), truncates a torn tail of the last segment, and makes what it found durable.
pub(crate) fn recover(config: &LogConfig, storage: &dyn Storage) -> Result<Recovered> {
    let dir = &config.dir;
    ensure_dir(storage, dir, config.sync)?;
    crate::compact::remove_stale_rewrites(storage, dir)?;
    let segments = list_segments(storage, dir)?;
    let Some(last) = segments.last() else {
        return create_first_segment(storage, config);
    };
    let last_path = last.path.clone();
    let (end_offset, records, truncated) = verify_segments(storage, &segments, config.sync)?;
    let mut active = open_active(storage, &last_path)?;
    if config.sync == SyncMode::Fsync {
        make_durable(storage, &mut active, dir)?;
    }
    let report = RecoveryReport {
        segments: segments.len(),
        records,
        truncated,
    };
    Ok(Recovered {
        segments,
        end_offset,
        active,
        report,
    })
}

/// A new, empty log: one segment starting at offset 0.
fn create_first_segment(storage: &dyn Storage, config: &LogConfig) -> Result<Recovered> {
    let active = create_segment(storage, &config.dir, 0, config.sync)?;
    let segments = vec![SegmentEntry {
        first_offset: 0,
        path: active.path.clone(),
    }];
    let report = RecoveryReport {
        segments: 1,
        records: 0,
        truncated: None,
    };
    Ok(Recovered {
        segments,
        end_offset: 0,
        active,
        report,
    })
}

/// Verifies the segments in order; returns the end offset, the record count and the
/// truncation of the last segment's tail, if any.
fn verify_segments(
    storage: &dyn Storage,
    segments: &[SegmentEntry],
    sync: SyncMode,
) -> Result<(u64, u64, Option<Truncation>)> {
    let mut end_offset = segments.first().map_or(0, |segment| segment.first_offset);
    let mut records = 0;
    let mut truncated = None;
    for (index, segment) in segments.iter().enumerate() {
        if segment.first_offset != end_offset {
            return Err(LogError::Gap {
                path: segment.path.clone(),
                expected: end_offset,
                found: segment.first_offset,
            });
        }
        let is_last = index + 1 == segments.len();
        let verified = verify_segment(storage, segment, is_last, sync)?;
        end_offset += verified.records;
        records += verified.records;
        truncated = truncated.or(verified.truncated);
    }
    Ok((end_offset, records, truncated))
}

/// Readers are served everything recovery found at once, so it must survive a power cut
/// even if a killed process left it only in the page cache: the tail of the last segment,
/// and the directory entry of a segment created just before the crash.
fn make_durable(storage: &dyn Storage, active: &mut ActiveSegment, dir: &Path) -> Result<()> {
    active
        .file
        .sync_all()
        .map_err(io_error("fsync segment", &active.path))?;
    sync_dir(storage, dir)
}

/// Creates `dir` and any missing ancestors and, with fsync on, makes the whole chain of
/// directory entries durable, so that the log directory survives a power cut even if an
/// earlier open crashed between creating a directory and fsyncing its parent.
fn ensure_dir(storage: &dyn Storage, dir: &Path, sync: SyncMode) -> Result<()> {
    create_dir_chain(storage, dir)?;
    if sync == SyncMode::Fsync {
        sync_ancestors(storage, dir)?;
    }
    Ok(())
}

/// Creates `dir` unless it exists, after its missing ancestors.
fn create_dir_chain(storage: &dyn Storage, dir: &Path) -> Result<()> {
    let error = match storage.create_dir(dir) {
        Ok(()) => return Ok(()),
        Err(error) => error,
    };
    let parent = dir.parent().filter(|parent| !parent.as_os_str().is_empty());
    match (error.kind(), parent) {
        (std::io::ErrorKind::AlreadyExists, _) => Ok(()),
        (std::io::ErrorKind::NotFound, Some(parent)) => {
            create_dir_chain(storage, parent)?;
            storage
                .create_dir(dir)
                .map_err(io_error("create log directory", dir))
        }
        // Some systems report other errors (read-only file system) for existing directories.
        _ if storage.list_dir(dir).is_ok() => Ok(()),
        _ => Err(io_error("create log directory", dir)(error)),
    }
}

/// Fsyncs the parent of `dir` (an error if it fails) and every directory above it (best
/// effort: the log cannot tell which of them an earlier, crashed open created, but those
/// it did create are its own and can be synced; a failure means one it did not create).
fn sync_ancestors(storage: &dyn Storage, dir: &Path) -> Result<()> {
    let parent = parent_dir(dir);
    storage
        .sync_dir(parent)
        .map_err(io_error("fsync the parent of log directory", parent))?;
    for ancestor in parent.ancestors().skip(1) {
        if !ancestor.as_os_str().is_empty() {
            let _ = storage.sync_dir(ancestor);
        }
    }
    Ok(())
}

struct Verified {
    records: u64,
    truncated: Option<Truncation>,
}

/// Scans one segment; repairs the last one if its tail is torn, fails on anything else.
fn verify_segment(
    storage: &dyn Storage,
    segment: &SegmentEntry,
    is_last: bool,
    sync: SyncMode,
) -> Result<Verified> {
    let path = &segment.path;
    let outcome = match scan_segment(storage, path, &mut |_, _| {}) {
        Ok(outcome) => outcome,
        Err(LogError::BadSegmentHeader {
            reason, file_bytes, ..
        }) if is_last && file_bytes <= SEGMENT_HEADER_LEN as u64 => {
            // A crash while the segment was being created: no frame was ever written to it.
            rewrite_header(storage, path, segment.first_offset, sync)?;
            // The partial header's bytes are what was dropped; the fresh header is kept.
            let truncated = Some(Truncation {
                segment: path.clone(),
                valid_bytes: SEGMENT_HEADER_LEN as u64,
                dropped_bytes: file_bytes,
                reason: format!("incomplete segment header rewritten: {reason}"),
            });
            return Ok(Verified {
                records: 0,
                truncated,
            });
        }
        Err(error) => return Err(error),
    };
    let Some(damage) = outcome.damage else {
        return Ok(Verified {
            records: outcome.records,
            truncated: None,
        });
    };
    if !is_last || damage.frame_follows {
        let place = if is_last {
            "before valid batches"
        } else {
            "in a sealed segment"
        };
        return Err(LogError::Corrupt {
            path: path.clone(),
            byte_offset: damage.at_byte,
            reason: format!("{} ({place})", damage.reason),
        });
    }
    truncate_file(storage, path, damage.at_byte, sync)?;
    Ok(Verified {
        records: outcome.records,
        truncated: Some(Truncation {
            segment: path.clone(),
            valid_bytes: damage.at_byte,
            dropped_bytes: outcome.file_bytes - damage.at_byte,
            reason: damage.reason,
        }),
    })
}

/// The segment files of `dir`, sorted by first offset. Other files are ignored.
pub(crate) fn list_segments(storage: &dyn Storage, dir: &Path) -> Result<Vec<SegmentEntry>> {
    let names = storage
        .list_dir(dir)
        .map_err(io_error("list log directory", dir))?;
    let mut segments: Vec<SegmentEntry> = names
        .iter()
        .filter_map(|name| {
            let first_offset = name.to_str().and_then(parse_segment_file_name)?;
            let path = dir.join(name);
            Some(SegmentEntry { first_offset, path })
        })
        .collect();
    segments.sort_by_key(|segment| segment.first_offset);
    Ok(segments)
}

/// Creates the segment starting at `first_offset`, writes its header and makes both the
/// file and its directory entry durable.
pub(crate) fn create_segment(
    storage: &dyn Storage,
    dir: &Path,
    first_offset: u64,
    sync: SyncMode,
) -> Result<ActiveSegment> {
    let mut segment = NewSegment::create(storage, dir, first_offset)?;
    segment.finish(storage, dir, sync)?;
    Ok(segment.into_active())
}

/// A segment file just created, whose header is not yet known to be written and durable.
/// A roll that fails half-way keeps it and finishes it on the next attempt: creating it
/// again would fail (the name is taken), and leaving it behind while later batches go to
/// the previous segment would make the next open see a gap.
#[derive(Debug)]
pub(crate) struct NewSegment {
    /// Offset of its first record.
    pub first_offset: u64,
    /// Its path.
    pub path: PathBuf,
    file: Box<dyn StorageFile>,
    /// Whether `finish` was tried before (and may have left part of a header).
    attempted: bool,
}

impl NewSegment {
    /// Creates the (empty) file of the segment starting at `first_offset`.
    pub fn create(storage: &dyn Storage, dir: &Path, first_offset: u64) -> Result<NewSegment> {
        let path = dir.join(segment_file_name(first_offset));
        let file = storage
            .create_new(&path)
            .map_err(io_error("create segment", &path))?;
        Ok(NewSegment {
            first_offset,
            path,
            file,
            attempted: false,
        })
    }

    /// Writes the header (after cutting what an earlier attempt left) and, with fsync on,
    /// makes the file and its directory entry durable.
    pub fn finish(&mut self, storage: &dyn Storage, dir: &Path, sync: SyncMode) -> Result<()> {
        let path = &self.path;
        if std::mem::replace(&mut self.attempted, true) {
            self.file
                .set_len(0)
                .map_err(io_error("truncate new segment", path))?;
        }
        let header = SegmentHeader {
            first_offset: self.first_offset,
        }
        .encode();
        self.file
            .append(&header)
            .map_err(io_error("write header of segment", path))?;
        if sync == SyncMode::Fsync {
            self.file
                .sync_all()
                .map_err(io_error("fsync segment", path))?;
            sync_dir(storage, dir)?;
        }
        Ok(())
    }

    /// The finished segment, ready for appending.
    pub fn into_active(self) -> ActiveSegment {
        ActiveSegment {
            file: self.file,
            path: self.path,
            bytes: SEGMENT_HEADER_LEN as u64,
        }
    }
}

fn rewrite_header(
    storage: &dyn Storage,
    path: &Path,
    first_offset: u64,
    sync: SyncMode,
) -> Result<()> {
    let mut file = storage
        .open_append(path)
        .map_err(io_error("open segment for repair", path))?;
    file.set_len(0)
        .map_err(io_error("truncate segment", path))?;
    file.append(&SegmentHeader { first_offset }.encode())
        .map_err(io_error("write header of segment", path))?;
    if sync == SyncMode::Fsync {
        file.sync_all().map_err(io_error("fsync segment", path))?;
    }
    Ok(())
}

fn truncate_file(storage: &dyn Storage, path: &Path, len: u64, sync: SyncMode) -> Result<()> {
    let mut file = storage
        .open_append(path)
        .map_err(io_error("open segment for truncation", path))?;
    file.set_len(len)
        .map_err(io_error("truncate segment", path))?;
    if sync == SyncMode::Fsync {
        file.sync_all().map_err(io_error("fsync segment", path))?;
    }
    Ok(())
}

fn open_active(storage: &dyn Storage, path: &Path) -> Result<ActiveSegment> {
    let mut file = storage
        .open_append(path)
        .map_err(io_error("open segment for appending", path))?;
    let bytes = file
        .size()
        .map_err(io_error("read the size of segment", path))?;
    Ok(ActiveSegment {
        file,
        path: path.to_path_buf(),
        bytes,
    })
}

/// Makes directory entry changes (a created segment) durable.
fn sync_dir(storage: &dyn Storage, dir: &Path) -> Result<()> {
    storage
        .sync_dir(dir)
        .map_err(io_error("fsync log directory", dir))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::config::LogConfig;
    use crate::log::EventLog;
    use crate::sim::{Crash, SimDisk};

    fn open(disk: &SimDisk, config: &LogConfig) -> EventLog {
        let storage = Arc::new(disk.clone());
        EventLog::open_with_storage(config.clone(), storage)
            .expect("open")
            .0
    }

    #[test]
    fn a_new_log_in_new_directories_survives_any_power_cut() {
        let config = LogConfig::new("/a/b/log");
        let disk = SimDisk::new();
        drop(open(&disk, &config));
        assert_eq!(
            disk.unsynced_changes(),
            0,
            "directories and first segment synced"
        );
        // A power cut at any operation of that first open leaves a log that opens.
        for at_op in 1..=disk.ops() {
            let fresh = SimDisk::new();
            fresh.crash_after(at_op, Crash::PowerCut, at_op);
            drop(EventLog::open_with_storage(
                config.clone(),
                Arc::new(fresh.clone()),
            ));
            if fresh.is_running() {
                fresh.disarm(); // the open and its close took fewer operations
            } else {
                fresh.restart();
            }
            let (log, report) =
                EventLog::open_with_storage(config.clone(), Arc::new(fresh.clone()))
                    .unwrap_or_else(|e| panic!("cut at op {at_op}: {e}"));
            assert_eq!(report.truncated, None, "cut at op {at_op}");
            assert_eq!(log.end_offset(), 0, "cut at op {at_op}");
        }
    }

    #[test]
    fn recovery_makes_a_frame_a_killed_writer_left_unsynced_durable() {
        let config = LogConfig::new("/log");
        let disk = SimDisk::new();
        let log = open(&disk, &config);
        log.append(b"acked").expect("append");
        disk.crash_after(1, Crash::ProcessKill, 0); // the frame is written, its fsync fails
        assert!(log.append(b"written, never synced").is_err());
        drop(log);
        disk.restart();
        assert_eq!(disk.unsynced_changes(), 1);
        let log = open(&disk, &config);
        assert_eq!(log.end_offset(), 2, "the page cache survived the kill");
        assert_eq!(
            disk.unsynced_changes(),
            0,
            "what recovery serves is durable"
        );
    }

    #[test]
    fn recovery_fsyncs_the_directory_of_a_segment_created_just_before_a_kill() {
        let mut config = LogConfig::new("/log");
        config.segment_max_bytes = 1; // every commit after the first rolls
        let disk = SimDisk::new();
        let log = open(&disk, &config);
        log.append(b"first").expect("append");
        disk.crash_after(3, Crash::ProcessKill, 0); // create, header, fsync, then dir fsync
        assert!(log.append(b"second").is_err());
        drop(log);
        disk.restart();
        let log = open(&disk, &config);
        assert_eq!(log.stats().segments, 2);
        assert_eq!(disk.unsynced_changes(), 0);
    }
}
