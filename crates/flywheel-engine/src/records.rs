//! Reading records back from the log: the one place bytes become [`LogRecord`]s, for
//! the consumer and for offline replays alike, so both skip exactly the same records.
//! A record that cannot be decoded is skipped, never retried for ever: it is counted,
//! logged and kept (offset and reason) for `/readyz`, `/metrics` and `inspect`.

use flywheel_core::LogRecord;
use serde::Serialize;

/// A record the engine could not decode and skipped.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SkippedRecord {
    /// Its log offset.
    pub offset: u64,
    /// Why it could not be decoded.
    pub reason: String,
}

/// Decodes the record at `offset`, or says why it must be skipped.
pub(crate) fn decode(offset: u64, bytes: &[u8]) -> Result<LogRecord, SkippedRecord> {
    LogRecord::decode(bytes).map_err(|e| SkippedRecord {
        offset,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecodable_bytes_are_a_skip_with_the_offset_and_reason() {
        let skipped = decode(7, b"{\"type\":\"event\",\"user_id\":null}").unwrap_err();
        assert_eq!(skipped.offset, 7);
        assert!(!skipped.reason.is_empty());
    }
}
