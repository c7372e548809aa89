//! `POST /v1/admin/snapshot` (scope `admin`): takes a snapshot of the engine's derived
//! state now, off the event loop, and answers what was written. Start-up's use of the
//! snapshots is in `/readyz` and `/metrics`.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::openapi::ErrorBody;
use crate::routes::{blocking, AppState};

/// `POST /v1/admin/snapshot`: the snapshot written.
#[derive(ToSchema)]
#[allow(dead_code)] // the document's shape; the handler builds the JSON
pub(crate) struct SnapshotDoc {
    /// The snapshot file.
    path: String,
    /// The log offset it reflects (records applied).
    offset: u64,
    /// File size.
    bytes: u64,
    /// How long the state's read locks were held to encode it (ms).
    encode_ms: f64,
    /// How long writing and syncing the file took (ms).
    write_ms: f64,
}

/// `POST /v1/admin/snapshot`.
#[utoipa::path(
    post,
    path = "/v1/admin/snapshot",
    tag = "operations",
    summary = "Snapshot the derived state now (start-up then replays only the log after it)",
    responses(
        (status = 200, description = "The snapshot written", body = SnapshotDoc),
        (status = 500, description = "The snapshot could not be written (the reason is logged)", body = ErrorBody)
    )
)]
pub(crate) async fn take(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let engine = Arc::clone(&app.engine);
    let info = blocking(move || Ok(engine.snapshot_now()?)).await?;
    Ok(Json(json!({
        "path": info.path.display().to_string(),
        "offset": info.offset,
        "bytes": info.bytes,
        "encode_ms": info.encode_ms,
        "write_ms": info.write_ms,
    })))
}
