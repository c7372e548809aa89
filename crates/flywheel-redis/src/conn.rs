//! Connections (the synchronous client: no async runtime) and the value codec.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::RedisConfig;
use crate::error::{RedisStoreError, Result};

/// Opens a connection whose connect, read and write each time out after `timeout`.
pub(crate) fn connect(config: &RedisConfig, timeout: Duration) -> Result<redis::Connection> {
    let wrap = |source| RedisStoreError::Redis {
        url: config.display_url(),
        source,
    };
    let client = redis::Client::open(config.url.as_str()).map_err(wrap)?;
    let connection = client.get_connection_with_timeout(timeout).map_err(wrap)?;
    connection.set_read_timeout(Some(timeout)).map_err(wrap)?;
    connection.set_write_timeout(Some(timeout)).map_err(wrap)?;
    Ok(connection)
}

/// Wraps a client error with the server's address.
pub(crate) fn redis_error(config: &RedisConfig) -> impl Fn(redis::RedisError) -> RedisStoreError {
    let url = config.display_url();
    move |source| RedisStoreError::Redis {
        url: url.clone(),
        source,
    }
}

/// The bytes stored for a value.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // bincode of plain structs (no maps with non-string keys, no untagged enums)
    // cannot fail; an empty value would decode as an error, never as wrong data.
    bincode::serialize(value).unwrap_or_default()
}

/// A stored value decoded, or why it cannot be.
pub(crate) fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    bincode::deserialize(bytes).map_err(|e| RedisStoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}
