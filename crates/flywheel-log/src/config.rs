//! How the log is configured.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{LogError, Result};

/// Whether the writer forces data to stable storage before acknowledging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// `fdatasync` every committed batch (and `fsync` the directory when a segment is
    /// created). An acknowledged append survives a crash or power loss.
    Fsync,
    /// Skip all fsyncs. Only for tests and benchmarks: acknowledged data may be lost.
    NoSync,
}

/// Settings of an [`EventLog`](crate::EventLog).
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Directory holding the segment files (created if missing).
    pub dir: PathBuf,
    /// A new segment is started once the current one has reached this many bytes. A segment
    /// can exceed it by at most one batch, since batches never span segments.
    pub segment_max_bytes: u64,
    /// Most records the writer commits in one group (one frame, one fsync). A single
    /// `append_batch` larger than this is still committed whole, on its own.
    pub max_batch_records: usize,
    /// Longest time the writer lingers before a commit so that more appenders join the
    /// group: it waits only while appenders are still encoding their records, or while fewer
    /// requests are queued than the previous commit released (those appenders usually come
    /// straight back). A lone sequential appender never waits. Zero disables lingering.
    pub max_batch_delay: Duration,
    /// Durability of acknowledgements.
    pub sync: SyncMode,
}

impl LogConfig {
    /// Defaults: 64 MiB segments, groups of up to 4096 records, 1 ms linger, fsync on.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LogConfig {
            dir: dir.into(),
            segment_max_bytes: 64 * 1024 * 1024,
            max_batch_records: 4096,
            max_batch_delay: Duration::from_millis(1),
            sync: SyncMode::Fsync,
        }
    }

    /// Checks the values that would make the writer misbehave.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_batch_records == 0 {
            return Err(LogError::InvalidConfig {
                field: "max_batch_records",
                reason: "must be at least 1".into(),
            });
        }
        if self.segment_max_bytes == 0 {
            return Err(LogError::InvalidConfig {
                field: "segment_max_bytes",
                reason: "must be at least 1 byte".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_values() {
        let config = LogConfig::new("/tmp/x");
        assert_eq!(config.segment_max_bytes, 67_108_864);
        assert_eq!(config.max_batch_records, 4096);
        assert_eq!(config.max_batch_delay, Duration::from_millis(1));
        assert_eq!(config.sync, SyncMode::Fsync);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn zero_batch_size_is_rejected_with_the_field_name() {
        let mut config = LogConfig::new("/tmp/x");
        config.max_batch_records = 0;
        let message = config.validate().err().map(|e| e.to_string());
        assert!(message.is_some_and(|m| m.contains("max_batch_records")));
    }
}
