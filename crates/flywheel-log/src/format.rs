//! The on-disk format: segment header, frame header and record encoding.
//!
//! All integers are little-endian. Every header ends with a CRC32 of the bytes before it.

/// Magic bytes opening every segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"FLYWLOG\0";
/// Version of the segment format written by this crate.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Length of the segment header in bytes.
pub(crate) const SEGMENT_HEADER_LEN: usize = 32;
/// Magic number opening every frame header.
pub(crate) const FRAME_MAGIC: u32 = 0xF1A7_B0A7;
/// Length of a frame header in bytes.
pub(crate) const FRAME_HEADER_LEN: usize = 32;
/// Length of a record header (payload length + CRC) in bytes.
pub(crate) const RECORD_HEADER_LEN: usize = 8;
/// Largest payload a record can hold.
pub const MAX_PAYLOAD_BYTES: usize = u32::MAX as usize;
/// Most records one batch (one frame) can hold.
pub const MAX_BATCH_RECORDS: usize = u32::MAX as usize;

/// The header at the start of every segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    /// Offset of the first record of the segment (also the file name).
    pub first_offset: u64,
}

impl SegmentHeader {
    /// Layout: magic (8) | version u32 | flags u32 | first_offset u64 | reserved u32 | crc u32.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut bytes = [0u8; SEGMENT_HEADER_LEN];
        bytes[0..8].copy_from_slice(&SEGMENT_MAGIC);
        bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        // bytes 12..16: flags, 0 for now (room for a "compacted, offsets may have holes" flag)
        bytes[16..24].copy_from_slice(&self.first_offset.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..28]);
        bytes[28..32].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Parses and checks a segment header; the error says what is wrong.
    pub fn decode(bytes: &[u8; SEGMENT_HEADER_LEN]) -> Result<Self, String> {
        if bytes[0..8] != SEGMENT_MAGIC {
            return Err("wrong magic bytes (not a flywheel log segment)".into());
        }
        if crc32fast::hash(&bytes[..28]) != read_u32(bytes, 28) {
            return Err("header checksum mismatch".into());
        }
        let version = read_u32(bytes, 8);
        if version != FORMAT_VERSION {
            return Err(format!(
                "format version {version}, this build reads version {FORMAT_VERSION}"
            ));
        }
        let flags = read_u32(bytes, 12);
        if flags != 0 {
            return Err(format!("unknown segment flags {flags:#x}"));
        }
        Ok(SegmentHeader {
            first_offset: read_u64(bytes, 16),
        })
    }
}

/// The header of a frame: one atomic batch of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// Number of records in the frame.
    pub record_count: u32,
    /// Offset of the frame's first record; the others follow densely.
    pub first_offset: u64,
    /// Length of the body (all encoded records) in bytes.
    pub body_len: u64,
}

impl FrameHeader {
    /// Layout: magic u32 | record_count u32 | first_offset u64 | body_len u64 | reserved u32 | crc u32.
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut bytes = [0u8; FRAME_HEADER_LEN];
        bytes[0..4].copy_from_slice(&FRAME_MAGIC.to_le_bytes());
        bytes[4..8].copy_from_slice(&self.record_count.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.first_offset.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.body_len.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..28]);
        bytes[28..32].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Parses and checks a frame header; the error says what is wrong.
    pub fn decode(bytes: &[u8; FRAME_HEADER_LEN]) -> Result<Self, String> {
        if read_u32(bytes, 0) != FRAME_MAGIC {
            return Err("no frame magic (garbage or overwritten data)".into());
        }
        if crc32fast::hash(&bytes[..28]) != read_u32(bytes, 28) {
            return Err("frame header checksum mismatch".into());
        }
        Ok(FrameHeader {
            record_count: read_u32(bytes, 4),
            first_offset: read_u64(bytes, 8),
            body_len: read_u64(bytes, 16),
        })
    }

    /// Offset one past the frame's last record.
    pub fn end_offset(&self) -> u64 {
        self.first_offset + u64::from(self.record_count)
    }
}

/// Appends one record (length u32 | crc u32 | payload) to `out`. The CRC covers the length
/// bytes and the payload, so an all-zero record never checks out.
pub(crate) fn encode_record(out: &mut Vec<u8>, payload: &[u8]) {
    let len_bytes = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&record_crc(len_bytes, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

fn record_crc(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(payload);
    hasher.finalize()
}

/// Checks every record of a frame body and returns the byte ranges of the payloads.
/// Fails unless exactly `record_count` valid records fill the body.
pub(crate) fn split_body(
    body: &[u8],
    record_count: u32,
) -> Result<Vec<std::ops::Range<usize>>, String> {
    let mut payloads = Vec::with_capacity(record_count as usize);
    let mut pos = 0usize;
    for index in 0..record_count {
        let Some(header) = body.get(pos..pos + RECORD_HEADER_LEN) else {
            return Err(format!("record #{index} of the frame is cut off"));
        };
        let len_bytes = [header[0], header[1], header[2], header[3]];
        let stored_crc = read_u32(header, 4);
        let start = pos + RECORD_HEADER_LEN;
        let end = start.saturating_add(u32::from_le_bytes(len_bytes) as usize);
        let Some(payload) = body.get(start..end) else {
            return Err(format!(
                "record #{index} claims more bytes than the frame holds"
            ));
        };
        if record_crc(len_bytes, payload) != stored_crc {
            return Err(format!("record #{index} of the frame fails its checksum"));
        }
        payloads.push(start..end);
        pos = end;
    }
    if pos != body.len() {
        return Err(format!(
            "frame body has {} bytes after its {record_count} records",
            body.len() - pos
        ));
    }
    Ok(payloads)
}

/// The file name of the segment whose first record has `first_offset`.
pub(crate) fn segment_file_name(first_offset: u64) -> String {
    format!("{first_offset:020}.log")
}

/// The first offset encoded in a segment file name, or `None` if the name is not a segment's.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let segment = SegmentHeader { first_offset: 42 };
        assert_eq!(SegmentHeader::decode(&segment.encode()), Ok(segment));
        let frame = FrameHeader {
            record_count: 3,
            first_offset: 7,
            body_len: 99,
        };
        assert_eq!(FrameHeader::decode(&frame.encode()), Ok(frame));
        assert_eq!(frame.end_offset(), 10);
    }

    #[test]
    fn any_flipped_header_bit_is_detected() {
        let frame = FrameHeader {
            record_count: 3,
            first_offset: 7,
            body_len: 99,
        }
        .encode();
        for bit in 0..FRAME_HEADER_LEN * 8 {
            let mut damaged = frame;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(FrameHeader::decode(&damaged).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn body_round_trips_and_rejects_damage() {
        let mut body = Vec::new();
        for payload in [&b"alpha"[..], b"", b"gamma!"] {
            encode_record(&mut body, payload);
        }
        // 3 record headers of 8 bytes + 5 + 0 + 6 payload bytes.
        assert_eq!(body.len(), 35);
        let ranges = split_body(&body, 3).expect("valid body");
        assert_eq!(&body[ranges[0].clone()], b"alpha");
        assert_eq!(&body[ranges[1].clone()], b"");
        assert_eq!(&body[ranges[2].clone()], b"gamma!");
        assert!(split_body(&body, 2).is_err(), "trailing record not counted");
        assert!(split_body(&body, 4).is_err(), "missing record");
        for index in 0..body.len() {
            let mut damaged = body.clone();
            damaged[index] ^= 0x10;
            assert!(split_body(&damaged, 3).is_err(), "byte {index}");
        }
    }

    #[test]
    fn all_zero_record_fails_its_checksum() {
        assert!(split_body(&[0u8; 8], 1).is_err());
    }

    #[test]
    fn segment_names_are_zero_padded_offsets() {
        assert_eq!(segment_file_name(4096), "00000000000000004096.log");
        assert_eq!(
            parse_segment_file_name("00000000000000004096.log"),
            Some(4096)
        );
        assert_eq!(parse_segment_file_name("4096.log"), None);
        assert_eq!(parse_segment_file_name("00000000000000004096.tmp"), None);
    }
}
