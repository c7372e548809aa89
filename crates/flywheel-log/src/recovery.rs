//! Opening the log: find the segments, verify them, repair a torn tail.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{LogConfig, SyncMode};
use crate::error::{io_error, LogError, Result};
use crate::format::{
    parse_segment_file_name, segment_file_name, SegmentHeader, SEGMENT_HEADER_LEN,
};
use crate::scan::scan_segment;

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
    /// Open in append mode.
    pub file: File,
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
/// needed) and truncates a torn tail of the last segment.
pub(crate) fn recover(config: &LogConfig) -> Result<Recovered> {
    let dir = &config.dir;
    std::fs::create_dir_all(dir).map_err(io_error("create log directory", dir))?;
    let segments = list_segments(dir)?;
    let Some(last) = segments.last() else {
        let active = create_segment(dir, 0, config.sync)?;
        let segments = vec![SegmentEntry {
            first_offset: 0,
            path: active.path.clone(),
        }];
        let report = RecoveryReport {
            segments: 1,
            records: 0,
            truncated: None,
        };
        return Ok(Recovered {
            segments,
            end_offset: 0,
            active,
            report,
        });
    };
    let last_path = last.path.clone();
    let mut end_offset = segments[0].first_offset;
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
        let verified = verify_segment(segment, is_last, config.sync)?;
        end_offset += verified.records;
        records += verified.records;
        truncated = truncated.or(verified.truncated);
    }
    let active = open_active(&last_path)?;
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

struct Verified {
    records: u64,
    truncated: Option<Truncation>,
}

/// Scans one segment; repairs the last one if its tail is torn, fails on anything else.
fn verify_segment(segment: &SegmentEntry, is_last: bool, sync: SyncMode) -> Result<Verified> {
    let path = &segment.path;
    let outcome = match scan_segment(path, &mut |_, _| {}) {
        Ok(outcome) => outcome,
        Err(LogError::BadSegmentHeader {
            reason, file_bytes, ..
        }) if is_last && file_bytes <= SEGMENT_HEADER_LEN as u64 => {
            // A crash while the segment was being created: no frame was ever written to it.
            rewrite_header(path, segment.first_offset, sync)?;
            let truncated = Some(Truncation {
                segment: path.clone(),
                valid_bytes: SEGMENT_HEADER_LEN as u64,
                dropped_bytes: 0,
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
    truncate_file(path, damage.at_byte, sync)?;
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
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<SegmentEntry>> {
    let mut segments = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(io_error("list log directory", dir))?;
    for entry in entries {
        let entry = entry.map_err(io_error("list log directory", dir))?;
        let name = entry.file_name();
        if let Some(first_offset) = name.to_str().and_then(parse_segment_file_name) {
            segments.push(SegmentEntry {
                first_offset,
                path: entry.path(),
            });
        }
    }
    segments.sort_by_key(|segment| segment.first_offset);
    Ok(segments)
}

/// Creates the segment starting at `first_offset`, writes its header and makes both the
/// file and its directory entry durable.
pub(crate) fn create_segment(
    dir: &Path,
    first_offset: u64,
    sync: SyncMode,
) -> Result<ActiveSegment> {
    let path = dir.join(segment_file_name(first_offset));
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(io_error("create segment", &path))?;
    let header = SegmentHeader { first_offset }.encode();
    file.write_all(&header)
        .map_err(io_error("write header of segment", &path))?;
    if sync == SyncMode::Fsync {
        file.sync_all().map_err(io_error("fsync segment", &path))?;
        sync_dir(dir)?;
    }
    Ok(ActiveSegment {
        file,
        path,
        bytes: SEGMENT_HEADER_LEN as u64,
    })
}

fn rewrite_header(path: &Path, first_offset: u64, sync: SyncMode) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_error("open segment for repair", path))?;
    file.set_len(0)
        .map_err(io_error("truncate segment", path))?;
    file.write_all(&SegmentHeader { first_offset }.encode())
        .map_err(io_error("write header of segment", path))?;
    if sync == SyncMode::Fsync {
        file.sync_all().map_err(io_error("fsync segment", path))?;
    }
    Ok(())
}

fn truncate_file(path: &Path, len: u64, sync: SyncMode) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_error("open segment for truncation", path))?;
    file.set_len(len)
        .map_err(io_error("truncate segment", path))?;
    if sync == SyncMode::Fsync {
        file.sync_all().map_err(io_error("fsync segment", path))?;
    }
    Ok(())
}

fn open_active(path: &Path) -> Result<ActiveSegment> {
    let file = OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io_error("open segment for appending", path))?;
    let bytes = file
        .metadata()
        .map_err(io_error("read metadata of segment", path))?
        .len();
    Ok(ActiveSegment {
        file,
        path: path.to_path_buf(),
        bytes,
    })
}

/// Makes a directory entry change (a created segment) durable.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error("fsync log directory", dir))
}
