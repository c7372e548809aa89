//! The one error type of the Redis feature store.

/// Why the Redis store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum RedisStoreError {
    /// Redis refused, timed out or could not be reached.
    #[error("redis at {url}: {source}")]
    Redis {
        /// The server's address (without credentials).
        url: String,
        /// What the client said.
        #[source]
        source: redis::RedisError,
    },
    /// A value under one of the store's keys could not be decoded.
    #[error("redis key {key} holds a value that cannot be decoded: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The offset key is missing although the writer had applied records: Redis lost
    /// its data (a restart of a server that keeps nothing on disk, a FLUSHALL).
    #[error("redis lost the feature state (the applied offset is gone after offset {expected}); it is rebuilt from the log")]
    DataLost {
        /// The offset the writer had reached.
        expected: u64,
    },
    /// Another client changed the writer's keys during a chunk (another writer of the
    /// partition, or an erasure); the chunk is retried.
    #[error("the feature keys changed during a write (another writer, or an erasure); retrying")]
    Conflict,
    /// Reading the log failed.
    #[error("reading the log: {0}")]
    Log(#[from] flywheel_log::LogError),
    /// The configuration is unusable.
    #[error("redis feature store configuration: {0}")]
    Config(String),
}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, RedisStoreError>;
