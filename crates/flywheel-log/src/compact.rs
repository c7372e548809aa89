//! Compaction: a sealed segment rewritten with some payloads replaced, every offset kept.
//!
//! Erasure (GDPR) needs records gone from the disk, not just skipped. The log cannot
//! drop a record without renumbering the ones after it, so compaction *replaces* the
//! payloads a caller picks (e.g. with a placeholder that carries no personal data) and
//! keeps every frame's first offset and record count: readers, consumers and impressions'
//! `features_offset` see the same offsets before and after. The format is unchanged, so
//! an older build reads a compacted segment (it sees payloads it may not decode).
//!
//! The rewrite is atomic on any crash: the new segment is written to
//! `<segment>.log.compact` (a name recovery ignores as a segment and removes), fsynced,
//! renamed over the segment, and the directory fsynced. A crash leaves the old segment
//! or the new one, never a mix. Only sealed segments (not the last one, which the writer
//! appends to) are rewritten; [`EventLog::append_batch_in_new_segment`] seals the active
//! segment. Readers that have the old file open keep reading it (the same records at the
//! same offsets); readers that open the segment afterwards read the new one.

use std::path::{Path, PathBuf};
use std::sync::PoisonError;

use crate::error::{io_error, LogError, Result};
use crate::format::{
    encode_record, split_body, FrameHeader, SegmentHeader, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use crate::log::EventLog;
use crate::recovery::SegmentEntry;
use crate::storage::{parent_dir, read_all, Storage};

/// The suffix of a segment's rewrite in progress (`<segment>.log` + this).
pub(crate) const COMPACT_SUFFIX: &str = ".compact";

/// What one [`EventLog::rewrite_segment`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentRewrite {
    /// The segment's first offset (its name).
    pub first_offset: u64,
    /// Records the segment holds.
    pub records: u64,
    /// Payloads replaced.
    pub replaced: u64,
    /// Whether the file was rewritten (false when nothing was replaced).
    pub rewritten: bool,
}

/// Decides, for each record `(offset, payload)`, whether it is replaced and by what.
pub type RewriteFn<'a> = dyn FnMut(u64, &[u8]) -> Option<Vec<u8>> + 'a;

impl EventLog {
    /// The first offsets of the sealed segments (every segment but the last) that hold
    /// a record below `before`, oldest first: the segments a compaction of the records
    /// below `before` must visit.
    pub fn sealed_segments_before(&self, before: u64) -> Vec<u64> {
        let segments = self.shared.segments();
        let sealed = segments.len().saturating_sub(1);
        segments[..sealed]
            .iter()
            .filter(|segment| segment.first_offset < before)
            .map(|segment| segment.first_offset)
            .collect()
    }

    /// Rewrites the sealed segment starting at `first_offset`, replacing each payload for
    /// which `rewrite` returns a new one; every record keeps its offset. Atomic on a
    /// crash (see the module doc). A segment where nothing is replaced is left alone.
    /// Fails with [`LogError::NotSealed`] for the active (last) segment or an unknown one.
    pub fn rewrite_segment(
        &self,
        first_offset: u64,
        rewrite: &mut RewriteFn<'_>,
    ) -> Result<SegmentRewrite> {
        let _one_at_a_time = self
            .compaction
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = self.sealed_segment(first_offset)?;
        let storage = self.shared.storage.as_ref();
        let mut file = storage
            .open_read(&entry.path)
            .map_err(io_error("open segment", &entry.path))?;
        let bytes = read_all(file.as_mut()).map_err(io_error("read segment", &entry.path))?;
        drop(file);
        let (rewritten, mut report) = rewrite_bytes(&entry.path, &bytes, rewrite)?;
        report.first_offset = first_offset;
        if report.replaced > 0 {
            replace_file(storage, &entry.path, &rewritten)?;
            report.rewritten = true;
        }
        Ok(report)
    }

    fn sealed_segment(&self, first_offset: u64) -> Result<SegmentEntry> {
        let segments = self.shared.segments();
        let sealed = segments.len().saturating_sub(1);
        segments[..sealed]
            .iter()
            .find(|segment| segment.first_offset == first_offset)
            .cloned()
            .ok_or(LogError::NotSealed { first_offset })
    }
}

/// The segment `bytes` with payloads replaced, and what was replaced. The input was
/// verified by recovery; damage found now is reported, never rewritten.
fn rewrite_bytes(
    path: &Path,
    bytes: &[u8],
    rewrite: &mut RewriteFn<'_>,
) -> Result<(Vec<u8>, SegmentRewrite)> {
    let corrupt = |byte_offset: usize, reason: String| LogError::Corrupt {
        path: path.to_path_buf(),
        byte_offset: byte_offset as u64,
        reason,
    };
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    let head = bytes
        .get(..SEGMENT_HEADER_LEN)
        .ok_or_else(|| corrupt(0, "shorter than a segment header".into()))?;
    header.copy_from_slice(head);
    SegmentHeader::decode(&header).map_err(|reason| corrupt(0, reason))?;
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&header);
    let mut report = SegmentRewrite::default();
    let mut pos = SEGMENT_HEADER_LEN;
    let mut body = Vec::new();
    while pos < bytes.len() {
        let mut frame_bytes = [0u8; FRAME_HEADER_LEN];
        let slice = bytes
            .get(pos..pos + FRAME_HEADER_LEN)
            .ok_or_else(|| corrupt(pos, "partial frame header".into()))?;
        frame_bytes.copy_from_slice(slice);
        let frame = FrameHeader::decode(&frame_bytes).map_err(|reason| corrupt(pos, reason))?;
        let body_at = pos + FRAME_HEADER_LEN;
        let old_body = usize::try_from(frame.body_len)
            .ok()
            .and_then(|len| bytes.get(body_at..body_at.checked_add(len)?))
            .ok_or_else(|| corrupt(pos, "frame body cut off".into()))?;
        let payloads =
            split_body(old_body, frame.record_count).map_err(|reason| corrupt(body_at, reason))?;
        body.clear();
        for (index, range) in payloads.into_iter().enumerate() {
            let offset = frame.first_offset + index as u64;
            let payload = &old_body[range];
            match rewrite(offset, payload) {
                Some(replacement) => {
                    report.replaced += 1;
                    encode_record(&mut body, &replacement);
                }
                None => encode_record(&mut body, payload),
            }
        }
        report.records += u64::from(frame.record_count);
        let new_frame = FrameHeader {
            body_len: body.len() as u64,
            ..frame
        };
        out.extend_from_slice(&new_frame.encode());
        out.extend_from_slice(&body);
        pos = body_at + old_body.len();
    }
    Ok((out, report))
}

/// Replaces `path` by `bytes` atomically: temporary file, fsync, rename, fsync the
/// directory.
fn replace_file(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = compact_path(path);
    match storage.remove_file(&tmp) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_error("remove stale rewrite", &tmp)(error)),
    }
    let mut file = storage
        .create_new(&tmp)
        .map_err(io_error("create segment rewrite", &tmp))?;
    file.append(bytes)
        .map_err(io_error("write segment rewrite", &tmp))?;
    file.sync_all()
        .map_err(io_error("fsync segment rewrite", &tmp))?;
    drop(file);
    storage
        .rename(&tmp, path)
        .map_err(io_error("rename segment rewrite over", path))?;
    let dir = parent_dir(path);
    storage
        .sync_dir(dir)
        .map_err(io_error("fsync log directory after a rewrite", dir))
}

/// Where the rewrite of the segment at `path` is written before it replaces it.
fn compact_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(COMPACT_SUFFIX);
    PathBuf::from(name)
}

/// Removes rewrites a crash left behind (`*.log.compact`) from the log directory; returns
/// how many. The segment they were meant to replace is intact (the rename never happened).
pub(crate) fn remove_stale_rewrites(storage: &dyn Storage, dir: &Path) -> Result<usize> {
    let names = storage
        .list_dir(dir)
        .map_err(io_error("list log directory", dir))?;
    let mut removed = 0;
    for name in names {
        let is_rewrite = name
            .to_str()
            .is_some_and(|name| name.ends_with(&format!(".log{COMPACT_SUFFIX}")));
        if is_rewrite {
            let path = dir.join(&name);
            storage
                .remove_file(&path)
                .map_err(io_error("remove stale segment rewrite", &path))?;
            removed += 1;
        }
    }
    if removed > 0 {
        storage
            .sync_dir(dir)
            .map_err(io_error("fsync log directory", dir))?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogConfig;
    use crate::sim::{Crash, SimDisk};
    use std::sync::Arc;

    /// A log of 4 segments (each batch opens a new one), records `s{seg}-r{i}`.
    fn log_on(disk: &SimDisk) -> EventLog {
        let (log, _) = EventLog::open_with_storage(LogConfig::new("/log"), Arc::new(disk.clone()))
            .expect("open");
        log
    }

    fn fill(log: &EventLog) {
        for segment in 0..4 {
            let batch: Vec<Vec<u8>> = (0..3)
                .map(|i| format!("s{segment}-r{i}-{}", if i == 1 { "SECRET" } else { "x" }).into())
                .collect();
            log.append_batch_in_new_segment(&batch).expect("append");
            log.append(format!("s{segment}-tail").as_bytes())
                .expect("append");
        }
    }

    fn all(log: &EventLog) -> Vec<(u64, Vec<u8>)> {
        log.read_from(0)
            .expect("reader")
            .collect::<Result<Vec<_>>>()
            .expect("read")
    }

    fn scrub(_offset: u64, payload: &[u8]) -> Option<Vec<u8>> {
        let text = String::from_utf8_lossy(payload);
        text.contains("SECRET").then(|| b"erased".to_vec())
    }

    #[test]
    fn a_batch_in_a_new_segment_seals_the_one_before() {
        let disk = SimDisk::new();
        let log = log_on(&disk);
        fill(&log);
        assert_eq!(log.stats().segments, 4);
        assert_eq!(log.sealed_segments_before(u64::MAX), vec![0, 4, 8]);
        assert_eq!(log.sealed_segments_before(5), vec![0, 4]);
        assert!(matches!(
            log.rewrite_segment(12, &mut scrub),
            Err(LogError::NotSealed { first_offset: 12 })
        ));
    }

    #[test]
    fn a_rewrite_replaces_payloads_and_keeps_every_offset() {
        let disk = SimDisk::new();
        let log = log_on(&disk);
        fill(&log);
        let before = all(&log);
        let report = log.rewrite_segment(4, &mut scrub).expect("rewrite");
        assert_eq!((report.records, report.replaced), (4, 1));
        let untouched = log.rewrite_segment(4, &mut scrub).expect("again");
        assert!(!untouched.rewritten);
        let after = all(&log);
        assert_eq!(after.len(), before.len());
        for ((offset, old), (new_offset, new)) in before.iter().zip(&after) {
            assert_eq!(offset, new_offset);
            let expected = if *offset == 5 {
                &b"erased"[..]
            } else {
                &old[..]
            };
            assert_eq!(&new[..], expected, "offset {offset}");
        }
        drop(log);
        let reopened = log_on(&disk);
        assert_eq!(all(&reopened), after, "the rewrite survives a reopen");
    }

    /// A power cut at every operation of a rewrite: after recovery each record is the old
    /// payload or the new one, a segment is entirely old or entirely new, and no rewrite
    /// file is left behind.
    #[test]
    fn a_power_cut_anywhere_in_a_rewrite_leaves_the_old_or_the_new_segment() {
        let base = SimDisk::new();
        fill(&log_on(&base));
        let original = all(&log_on(&base));
        let mut outcomes = [0usize; 2];
        for crash_at in 0..40u64 {
            let disk = base.fork();
            let log = log_on(&disk);
            disk.crash_after(crash_at, Crash::PowerCut, crash_at);
            let finished = log.rewrite_segment(4, &mut scrub).is_ok() && disk.is_running();
            drop(log);
            disk.disarm();
            if !disk.is_running() {
                disk.restart();
            } else {
                disk.power_cut(
                    &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(crash_at),
                );
                disk.restart();
            }
            let log = log_on(&disk);
            let records = all(&log);
            assert_eq!(records.len(), original.len(), "crash at {crash_at}");
            let new = records[5].1 == b"erased";
            outcomes[usize::from(new)] += 1;
            for ((offset, old), (_, now)) in original.iter().zip(&records) {
                let expected = if new && *offset == 5 {
                    &b"erased"[..]
                } else {
                    &old[..]
                };
                assert_eq!(&now[..], expected, "crash at {crash_at}, offset {offset}");
            }
            let names = disk_names(&disk);
            assert!(
                !names.iter().any(|name| name.ends_with(COMPACT_SUFFIX)),
                "crash at {crash_at}: {names:?}"
            );
            if finished {
                assert!(
                    new,
                    "an acknowledged rewrite is durable (crash at {crash_at})"
                );
            }
        }
        assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
    }

    fn disk_names(disk: &SimDisk) -> Vec<String> {
        crate::storage::Storage::list_dir(disk, Path::new("/log"))
            .expect("list")
            .into_iter()
            .map(|name| name.to_string_lossy().into_owned())
            .collect()
    }
}
