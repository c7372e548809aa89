//! Replay: `LogReader` iterates records from any offset up to the durable end.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{io_error, LogError, Result};
use crate::format::{split_body, FrameHeader, SegmentHeader, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN};
use crate::recovery::SegmentEntry;
use crate::shared::Shared;
use crate::storage::{read_exact_at, read_up_to_at, Storage, StorageFile};

/// Iterator over `(offset, payload)` from a start offset up to the durable end of the log.
///
/// Records are read frame by frame (one batch in memory at a time) and every record's CRC
/// is checked again, so damage that happened after recovery surfaces as an `Err` item;
/// after an error the iterator ends. When it has caught up with the durable end, `next`
/// returns `None`, and later calls yield records appended since (use
/// [`EventLog::wait_for`](crate::EventLog::wait_for) to wait for them).
#[derive(Debug)]
pub struct LogReader {
    shared: Arc<Shared>,
    next_offset: u64,
    cursor: Option<Cursor>,
    frame: LoadedFrame,
    failed: bool,
}

/// Position in a segment file: the next frame header.
#[derive(Debug)]
struct Cursor {
    file: Box<dyn StorageFile>,
    path: PathBuf,
    byte_pos: u64,
    next_frame_offset: u64,
}

/// The frame holding the records being yielded.
#[derive(Debug, Default)]
struct LoadedFrame {
    first_offset: u64,
    body: Vec<u8>,
    payloads: Vec<Range<usize>>,
}

impl LoadedFrame {
    fn payload(&self, offset: u64) -> Option<&[u8]> {
        let index = usize::try_from(offset.checked_sub(self.first_offset)?).ok()?;
        let range = self.payloads.get(index)?;
        Some(&self.body[range.clone()])
    }
}

impl LogReader {
    pub(crate) fn new(shared: Arc<Shared>, offset: u64) -> Self {
        LogReader {
            shared,
            next_offset: offset,
            cursor: None,
            frame: LoadedFrame::default(),
            failed: false,
        }
    }

    /// The offset of the record the next call to `next` would yield.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    fn next_record(&mut self) -> Result<(u64, Vec<u8>)> {
        loop {
            if let Some(payload) = self.frame.payload(self.next_offset) {
                let record = (self.next_offset, payload.to_vec());
                self.next_offset += 1;
                return Ok(record);
            }
            self.load_frame_holding(self.next_offset)?;
        }
    }

    /// Advances frame by frame (skipping bodies) to the frame holding `target` and loads it.
    /// Only called for `target` below the durable end, so every frame read is complete.
    fn load_frame_holding(&mut self, target: u64) -> Result<()> {
        loop {
            let cursor = match self.cursor.take() {
                Some(cursor) => cursor,
                None => open_segment_holding(&self.shared, target)?,
            };
            let cursor = self.cursor.insert(cursor);
            let Some(frame) = read_frame_header(cursor)? else {
                let next = open_segment_starting(&self.shared, cursor)?;
                self.cursor = Some(next);
                continue;
            };
            if frame.end_offset() <= target {
                continue;
            }
            let body = &mut self.frame.body;
            body.resize(frame.body_len as usize, 0);
            let body_at = cursor.byte_pos - frame.body_len;
            read_exact_at(cursor.file.as_mut(), body_at, body)
                .map_err(io_error("read frame body in segment", &cursor.path))?;
            self.frame.payloads = split_body(body, frame.record_count)
                .map_err(|reason| corrupt(cursor, body_at - FRAME_HEADER_LEN as u64, reason))?;
            self.frame.first_offset = frame.first_offset;
            return Ok(());
        }
    }
}

/// Opens the last segment starting at or before `target`.
fn open_segment_holding(shared: &Shared, target: u64) -> Result<Cursor> {
    let segments = shared.segments();
    let entry = segments
        .iter()
        .rev()
        .find(|segment| segment.first_offset <= target)
        .or(segments.first())
        .ok_or_else(|| LogError::Corrupt {
            path: PathBuf::new(),
            byte_offset: 0,
            reason: "the log has no segments".into(),
        })?;
    open_cursor(shared.storage.as_ref(), entry)
}

/// Opens the segment that continues where `cursor`'s segment ended.
fn open_segment_starting(shared: &Shared, cursor: &Cursor) -> Result<Cursor> {
    let offset = cursor.next_frame_offset;
    let segments = shared.segments();
    match segments
        .iter()
        .find(|segment| segment.first_offset == offset)
    {
        Some(entry) => open_cursor(shared.storage.as_ref(), entry),
        None => Err(corrupt(
            cursor,
            cursor.byte_pos,
            format!("the segment ends at offset {offset}, and no segment starts there"),
        )),
    }
}

impl Iterator for LogReader {
    type Item = Result<(u64, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next_offset >= self.shared.end_offset() {
            return None;
        }
        let record = self.next_record();
        self.failed = record.is_err();
        Some(record)
    }
}

fn open_cursor(storage: &dyn Storage, entry: &SegmentEntry) -> Result<Cursor> {
    let path = &entry.path;
    let mut file = storage
        .open_read(path)
        .map_err(io_error("open segment", path))?;
    let mut bytes = [0u8; SEGMENT_HEADER_LEN];
    read_exact_at(file.as_mut(), 0, &mut bytes)
        .map_err(io_error("read header of segment", path))?;
    let header = SegmentHeader::decode(&bytes).map_err(|reason| LogError::BadSegmentHeader {
        path: path.clone(),
        reason,
        file_bytes: 0,
    })?;
    Ok(Cursor {
        file,
        path: path.clone(),
        byte_pos: SEGMENT_HEADER_LEN as u64,
        next_frame_offset: header.first_offset,
    })
}

/// Reads the frame header at the cursor and moves the cursor past the frame; `None` at
/// the clean end of the segment.
fn read_frame_header(cursor: &mut Cursor) -> Result<Option<FrameHeader>> {
    let path = &cursor.path;
    let mut bytes = [0u8; FRAME_HEADER_LEN];
    let filled = read_up_to_at(cursor.file.as_mut(), cursor.byte_pos, &mut bytes)
        .map_err(io_error("read segment", path))?;
    if filled == 0 {
        return Ok(None);
    }
    if filled < FRAME_HEADER_LEN {
        return Err(corrupt(
            cursor,
            cursor.byte_pos,
            "partial frame header".into(),
        ));
    }
    let frame =
        FrameHeader::decode(&bytes).map_err(|reason| corrupt(cursor, cursor.byte_pos, reason))?;
    if frame.first_offset != cursor.next_frame_offset {
        let reason = format!(
            "frame starts at offset {}, expected {}",
            frame.first_offset, cursor.next_frame_offset
        );
        return Err(corrupt(cursor, cursor.byte_pos, reason));
    }
    cursor.byte_pos += FRAME_HEADER_LEN as u64 + frame.body_len;
    cursor.next_frame_offset = frame.end_offset();
    Ok(Some(frame))
}

fn corrupt(cursor: &Cursor, byte_offset: u64, reason: String) -> LogError {
    LogError::Corrupt {
        path: cursor.path.clone(),
        byte_offset,
        reason,
    }
}
