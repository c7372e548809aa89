//! The API's error type and its one mapping to HTTP statuses. Every error body is
//! `{"error": {"code": "...", "message": "..."}}`, and no error body exceeds
//! [`MAX_ERROR_BODY_BYTES`] whatever the request: a rejected batch lists its first
//! [`MAX_DETAILS`] problems and counts the rest, and client text is clipped.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use flywheel_engine::EngineError;
use serde_json::{json, Value};

/// The largest error body, in bytes.
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// How many per-record problems a 400 lists; the others are counted in `details_omitted`.
pub const MAX_DETAILS: usize = 100;
/// The longest top-level message, in bytes.
const MAX_MESSAGE_BYTES: usize = 1024;
/// The longest string in a detail, in bytes.
const MAX_DETAIL_TEXT_BYTES: usize = 256;
/// What `Retry-After` says on a 503, in seconds.
const RETRY_AFTER_SECONDS: &str = "1";

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request body or parameters are invalid (400).
    #[error("{message}")]
    BadRequest {
        /// A stable machine-readable code, e.g. `invalid_event`.
        code: &'static str,
        /// What was wrong, naming the field.
        message: String,
        /// Per-record errors of a rejected batch (at most [`MAX_DETAILS`] are sent).
        details: Vec<Value>,
        /// Per-record errors left out of `details`.
        omitted: usize,
    },
    /// The body is larger than the configured limit (413).
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request target is longer than the configured limit (414).
    #[error("the request target (path and query) exceeds the limit of {limit} bytes")]
    UriTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request headers are larger than the configured limit (431).
    #[error("the request headers exceed the limit of {limit} bytes")]
    HeadersTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Unsupported media type (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Not found (404).
    #[error("{0}")]
    NotFound(String),
    /// A job of that kind is already running (409); names the running job.
    #[error("{message}")]
    Conflict {
        /// What conflicts.
        message: String,
        /// The running job's id.
        job_id: String,
    },
    /// Training is paused by the controller's circuit breaker (409).
    #[error("{0}")]
    TrainingPaused(String),
    /// The client did not send its whole body in time (408).
    #[error("the request body did not arrive within {seconds} s")]
    RequestTimeout {
        /// The deadline.
        seconds: f64,
    },
    /// No valid API key was presented (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The key lacks the scope the route needs (403).
    #[error("{0}")]
    Forbidden(String),
    /// A rate limit was reached (429, with `Retry-After`).
    #[error("{message}")]
    RateLimited {
        /// Which limit, and for whom.
        message: String,
        /// Seconds until a request would be admitted.
        retry_after_secs: u64,
    },
    /// The engine is starting and has not replayed its log yet (503, with `Retry-After`).
    #[error("the engine is still replaying its log; retry shortly")]
    NotReady,
    /// Too many large bodies are being parsed at once (503, with `Retry-After`).
    #[error("too many large requests are being processed; retry shortly")]
    Busy,
    /// The log's storage is full (507): nothing of the request was stored.
    #[error("the server's storage is full; nothing was stored")]
    InsufficientStorage(String),
    /// Something failed on our side (500). The message is logged, not leaked.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 with a code and message.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
            details: Vec::new(),
            omitted: 0,
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::UriTooLong { .. } => (StatusCode::URI_TOO_LONG, "uri_too_long"),
            ApiError::HeadersTooLarge { .. } => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
            ),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            ApiError::TrainingPaused(_) => (StatusCode::CONFLICT, "training_paused"),
            ApiError::RequestTimeout { .. } => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::NotReady => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            ApiError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::InsufficientStorage(_) => {
                (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// Whether an io error anywhere in `error`'s source chain says the disk (or the
/// quota) is full.
fn is_storage_full(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            let kind = io.kind();
            // std maps ENOSPC to `StorageFull` and EDQUOT to `QuotaExceeded`.
            if kind == std::io::ErrorKind::StorageFull || kind == std::io::ErrorKind::QuotaExceeded
            {
                return true;
            }
        }
        current = error.source();
    }
    false
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        use flywheel_registry::RegistryError;
        if is_storage_full(&error) {
            return ApiError::InsufficientStorage(error.to_string());
        }
        match &error {
            EngineError::Invalid { .. } => {
                ApiError::bad_request("invalid_input", error.to_string())
            }
            EngineError::NotFound(_) | EngineError::Registry(RegistryError::NotFound(_)) => {
                ApiError::NotFound(error.to_string())
            }
            EngineError::Registry(RegistryError::InvalidVersion(_)) => {
                ApiError::bad_request("invalid_version", error.to_string())
            }
            EngineError::TrainingPaused { .. } => ApiError::TrainingPaused(error.to_string()),
            EngineError::Busy { id, .. } => ApiError::Conflict {
                message: error.to_string(),
                job_id: id.clone(),
            },
            other if other.is_user_error() => {
                ApiError::bad_request("precondition_failed", error.to_string())
            }
            _ => ApiError::Internal(error.to_string()),
        }
    }
}

/// `text` cut to at most `max` bytes on a character boundary, marked with `…` when cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A detail with every string in it clipped.
fn clip_detail(detail: &Value) -> Value {
    match detail {
        Value::String(text) => Value::String(clip(text, MAX_DETAIL_TEXT_BYTES)),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (clip(k, MAX_DETAIL_TEXT_BYTES), clip_detail(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The JSON error body (at most [`MAX_ERROR_BODY_BYTES`]).
pub(crate) fn error_body(
    code: &str,
    message: &str,
    details: &[Value],
    omitted: usize,
    job_id: Option<&str>,
) -> Vec<u8> {
    let mut error = json!({ "code": code, "message": clip(message, MAX_MESSAGE_BYTES) });
    if let Some(job_id) = job_id {
        error["job_id"] = json!(clip(job_id, MAX_DETAIL_TEXT_BYTES));
    }
    let mut kept: Vec<Value> = details.iter().take(MAX_DETAILS).map(clip_detail).collect();
    let mut omitted = omitted + (details.len() - kept.len());
    loop {
        let mut body = error.clone();
        if !kept.is_empty() {
            body["details"] = Value::Array(kept.clone());
        }
        if omitted > 0 {
            body["details_omitted"] = json!(omitted);
        }
        let bytes = serde_json::to_vec(&json!({ "error": body })).unwrap_or_default();
        // Clipped strings keep this from looping long: escaping at most sextuples them.
        if bytes.len() <= MAX_ERROR_BODY_BYTES || kept.is_empty() {
            return bytes;
        }
        kept.pop();
        omitted += 1;
    }
}

/// A response with a JSON body.
pub(crate) fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!("internal error: {detail}");
                "internal error; see the server log".to_string()
            }
            ApiError::InsufficientStorage(detail) => {
                tracing::error!("storage full: {detail}");
                self.to_string()
            }
            other => other.to_string(),
        };
        let (details, omitted) = match &self {
            ApiError::BadRequest {
                details, omitted, ..
            } => (details.as_slice(), *omitted),
            _ => (&[][..], 0),
        };
        let job_id = match &self {
            ApiError::Conflict { job_id, .. } => Some(job_id.as_str()),
            _ => None,
        };
        let mut response =
            json_response(status, error_body(code, &message, details, omitted, job_id));
        if let ApiError::RateLimited {
            retry_after_secs, ..
        } = &self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_log::LogError;
    use std::io::{Error, ErrorKind};

    fn log_io(source: Error) -> EngineError {
        EngineError::Log(LogError::Io {
            operation: "append to segment",
            path: "/data/log/00000000000000000000.log".into(),
            source,
        })
    }

    #[test]
    fn a_full_disk_is_507_insufficient_storage() {
        for error in [
            log_io(Error::from_raw_os_error(ENOSPC_FOR_TEST)),
            log_io(Error::new(ErrorKind::StorageFull, "no space")),
            log_io(Error::new(ErrorKind::QuotaExceeded, "quota")),
            EngineError::Io {
                path: "/data/models/v3".into(),
                source: Error::new(ErrorKind::StorageFull, "no space"),
            },
        ] {
            let api = ApiError::from(error);
            assert!(matches!(api, ApiError::InsufficientStorage(_)), "{api:?}");
            let response = api.into_response();
            assert_eq!(response.status(), StatusCode::INSUFFICIENT_STORAGE);
        }
        let body = error_body("insufficient_storage", "full", &[], 0, None);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "insufficient_storage");
    }

    /// `ENOSPC` on the platforms the test runs on: std must map it to `StorageFull`.
    const ENOSPC_FOR_TEST: i32 = 28;

    #[test]
    fn other_io_errors_stay_internal() {
        let api = ApiError::from(log_io(Error::new(ErrorKind::PermissionDenied, "no")));
        assert!(matches!(api, ApiError::Internal(_)), "{api:?}");
    }

    #[test]
    fn error_bodies_are_bounded_whatever_the_details() {
        let huge = "\u{1}".repeat(10_000);
        let details: Vec<Value> = (0..1000)
            .map(|i| json!({"index": i, "field": huge, "message": huge}))
            .collect();
        let body = error_body("invalid_event", &huge, &details, 5, None);
        assert!(body.len() <= MAX_ERROR_BODY_BYTES, "{}", body.len());
        let body: Value = serde_json::from_slice(&body).unwrap();
        let kept = body["error"]["details"].as_array().unwrap().len();
        assert!(kept > 0 && kept <= MAX_DETAILS);
        assert_eq!(body["error"]["details_omitted"], 1005 - kept);
        assert_eq!(clip("héllo", 5), "h…");
        assert_eq!(clip("hé", 3), "hé");
    }
}
