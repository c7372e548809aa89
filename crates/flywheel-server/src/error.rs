//! The API's error type and its one mapping to HTTP statuses. Every error body is
//! `{"error": {"code": "...", "message": "..."}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use flywheel_engine::EngineError;
use serde_json::json;

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
        /// Per-record errors of a rejected batch.
        details: Vec<serde_json::Value>,
    },
    /// The body is larger than the configured limit (413).
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge {
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
    /// The engine is starting and has not replayed its log yet (503).
    #[error("the engine is still replaying its log")]
    NotReady,
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
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            ApiError::NotReady => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        use flywheel_registry::RegistryError;
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!("internal error: {detail}");
                "internal error; see the server log".to_string()
            }
            other => other.to_string(),
        };
        let mut error = json!({ "code": code, "message": message });
        if let ApiError::Conflict { job_id, .. } = &self {
            error["job_id"] = json!(job_id);
        }
        if let ApiError::BadRequest { details, .. } = &self {
            if !details.is_empty() {
                error["details"] = serde_json::Value::Array(details.clone());
            }
        }
        (status, Json(json!({ "error": error }))).into_response()
    }
}
