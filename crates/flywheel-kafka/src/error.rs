//! The one error type of the Kafka adapter.

use std::path::PathBuf;

/// Everything that can go wrong talking to the broker, keeping the secrets or the offsets.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The broker refused a request or could not be reached.
    #[error("kafka {operation} on `{target}` failed: {reason}")]
    Broker {
        /// What we were doing, e.g. "produce".
        operation: &'static str,
        /// The topic (and partition) or broker list concerned.
        target: String,
        /// The client's error.
        reason: String,
    },
    /// The private async runtime could not be started.
    #[error("cannot start the kafka client's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A file of the secret store or the offset store could not be read or written.
    #[error("{operation} `{}` failed: {source}", path.display())]
    Io {
        /// What we were doing.
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file of the secret store or the offset store is not what we wrote.
    #[error("`{}` is damaged: {reason}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A payload handed to the log is not a flywheel log record (the log must read it to
    /// pseudonymise its user id, so it refuses what it cannot read).
    #[error("payload #{index} is not a flywheel log record: {reason}")]
    NotARecord {
        /// Its position in the batch.
        index: usize,
        /// Why it could not be read.
        reason: String,
    },
    /// A configuration value is unusable.
    #[error("kafka setting `{field}` is invalid: {reason}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

impl KafkaError {
    /// A broker error for `operation` on `target`.
    pub(crate) fn broker(
        operation: &'static str,
        target: impl Into<String>,
        error: impl std::fmt::Display,
    ) -> Self {
        KafkaError::Broker {
            operation,
            target: target.into(),
            reason: error.to_string(),
        }
    }

    /// An IO error on `path`.
    pub(crate) fn io(
        operation: &'static str,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> Self {
        KafkaError::Io {
            operation,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<KafkaError> for flywheel_log::LogError {
    fn from(error: KafkaError) -> Self {
        flywheel_log::LogError::Backend {
            backend: "kafka",
            reason: error.to_string(),
        }
    }
}

/// A result with [`KafkaError`].
pub type Result<T, E = KafkaError> = std::result::Result<T, E>;
