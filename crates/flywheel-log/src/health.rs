//! How the writer is doing: [`WriteHealth`], for readiness checks and metrics.

use std::time::SystemTime;

use crate::error::LogError;

/// Whether appends are succeeding (see [`EventLog::write_health`](crate::EventLog::write_health)).
///
/// A failed commit (a write, fsync or segment roll that failed, typically because the disk
/// is full) does not stop the log: the appends concerned get the error, the writer removes
/// what the failed write left in the segment, and the next append tries again. This says
/// whether that is happening now, since when and why; it returns to healthy with the first
/// commit that succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriteHealth {
    /// Commit attempts that failed in a row, up to now; 0 when the latest one succeeded
    /// (or none was made).
    pub consecutive_failures: u64,
    /// When the current run of failures began (wall clock); `None` while healthy.
    pub failing_since: Option<SystemTime>,
    /// The error of the latest failed attempt; `None` while healthy.
    pub last_error: Option<String>,
    /// Whether that error says the storage is full or a quota is exhausted
    /// ([`LogError::is_storage_full`]): free space and appends succeed again.
    pub storage_full: bool,
    /// Whether the active segment may still hold bytes of a failed write, because removing
    /// them failed too. Nothing is written until they are removed (retried before every
    /// commit); a reopen would cut them off as a torn tail.
    pub repair_pending: bool,
    /// Commit attempts that failed since open, for metrics; never reset.
    pub failed_commits: u64,
    /// Whether the writer thread is gone (it panicked): no append can succeed until the log
    /// is reopened. `last_error` says why.
    pub stopped: bool,
}

impl WriteHealth {
    /// Whether appends are expected to succeed: the writer runs and its latest commit
    /// attempt (if any) succeeded.
    pub fn is_healthy(&self) -> bool {
        self.consecutive_failures == 0 && !self.stopped
    }

    /// Records a failed commit attempt.
    pub(crate) fn record_failure(&mut self, error: &LogError, repair_pending: bool) {
        self.consecutive_failures += 1;
        self.failed_commits += 1;
        self.failing_since.get_or_insert_with(SystemTime::now);
        self.last_error = Some(error.to_string());
        self.storage_full = error.is_storage_full();
        self.repair_pending = repair_pending;
    }

    /// Records a successful commit: healthy again.
    pub(crate) fn record_success(&mut self) {
        self.consecutive_failures = 0;
        self.failing_since = None;
        self.last_error = None;
        self.storage_full = false;
        self.repair_pending = false;
    }

    /// Records that the writer thread stopped.
    pub(crate) fn record_stop(&mut self, reason: &str) {
        self.stopped = true;
        self.failing_since.get_or_insert_with(SystemTime::now);
        self.last_error = Some(reason.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_accumulate_and_one_success_clears_all_but_the_total() {
        let mut health = WriteHealth::default();
        assert!(health.is_healthy());
        let full = LogError::StorageFull {
            operation: "append to segment",
            path: "/log/0.log".into(),
            source: std::io::Error::new(std::io::ErrorKind::StorageFull, "full"),
        };
        health.record_failure(&full, false);
        let since = health.failing_since;
        health.record_failure(&LogError::Closed, true);
        assert!(!health.is_healthy());
        assert_eq!((health.consecutive_failures, health.failed_commits), (2, 2));
        assert_eq!(health.failing_since, since, "the first failure of the run");
        assert_eq!(health.last_error.as_deref(), Some("the log is closed"));
        assert!(!health.storage_full && health.repair_pending);
        health.record_success();
        assert!(health.is_healthy());
        assert_eq!(
            health,
            WriteHealth {
                failed_commits: 2,
                ..WriteHealth::default()
            }
        );
    }
}
