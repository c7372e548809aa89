//! Reading request bodies within their limits.
//!
//! A body larger than [`ServerOptions::large_body_bytes`](crate::ServerOptions) (or of
//! unknown length) is read only with a permit of the large-body semaphore, held until
//! the request is handled: at most `large_body_permits` large bodies are in memory and
//! being parsed at once. A request that waits longer than `large_body_wait` for a
//! permit gets a 503 with `Retry-After`, before its body was read.

use axum::body::{Body, Bytes, HttpBody};
use http_body_util::BodyExt;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;
use crate::routes::ServerOptions;

/// A body read in full, with the permit it was read under (if it is large).
pub(crate) struct ReadBody {
    /// The bytes.
    pub(crate) bytes: Bytes,
    /// Held while the body is handled; `None` for small bodies.
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

/// Reads a body of at most `limit` bytes, under a large-body permit when it is large.
pub(crate) async fn read(
    body: Body,
    limit: usize,
    options: &ServerOptions,
    permits: &Arc<Semaphore>,
) -> Result<ReadBody, ApiError> {
    let hint = body.size_hint();
    if usize::try_from(hint.lower()).unwrap_or(usize::MAX) > limit {
        return Err(ApiError::TooLarge { limit });
    }
    let known = hint.upper().and_then(|n| usize::try_from(n).ok());
    let permit = if known.is_some_and(|n| n <= options.large_body_bytes) {
        None
    } else {
        let wait =
            tokio::time::timeout(options.large_body_wait, Arc::clone(permits).acquire_owned());
        match wait.await {
            Ok(Ok(permit)) => Some(permit),
            // Timed out, or the semaphore was closed (never: it lives in the app state).
            Ok(Err(_)) | Err(_) => return Err(ApiError::Busy),
        }
    };
    // A client that stops sending mid-body is cut off at the deadline (408) instead of
    // holding a connection, a worker and perhaps a large-body permit for ever.
    match tokio::time::timeout(options.body_deadline, collect(body, known, limit)).await {
        Ok(bytes) => Ok(ReadBody {
            bytes: Bytes::from(bytes?),
            permit,
        }),
        Err(_) => Err(ApiError::RequestTimeout {
            seconds: options.body_deadline.as_secs_f64(),
        }),
    }
}

/// Reads every frame of `body`, refusing more than `limit` bytes.
async fn collect(body: Body, known: Option<usize>, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::with_capacity(known.unwrap_or(0).min(limit));
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::bad_request("unreadable_body", format!("could not read the body: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                return Err(ApiError::TooLarge { limit });
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}
