//! The model routes beyond promote and rollback: the listing with the canary and each
//! version's serving figures, starting (or re-sharing) a canary, rolling it back.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use flywheel_engine::Engine;
use serde_json::{json, Value};
use std::sync::Arc;

use crate::access::Caller;
use crate::error::ApiError;
use crate::openapi::{CanaryEnded, CanaryIn, CanaryStarted, ErrorBody};
use crate::routes::{blocking, entity_json, AppState};

/// `GET /v1/models`: the serving version, the canary, and every version with its
/// record and, under `served`, the requests it served and its CTR on final labels.
pub(crate) fn listing(engine: &Engine) -> Result<Value, ApiError> {
    let versions = engine.list_versions().map_err(ApiError::from)?;
    let mut served = engine.version_serving();
    let versions: Vec<Value> = versions
        .into_iter()
        .map(|info| {
            let figures = served.remove(&info.version);
            let mut value = serde_json::to_value(&info).unwrap_or(Value::Null);
            if let Some(object) = value.as_object_mut() {
                object.insert("served".into(), json!(figures));
            }
            value
        })
        .collect();
    Ok(json!({
        "serving": engine.models().version(),
        "canary": engine.canary(),
        "versions": versions,
        // Figures of versions no longer registered (or `none`: the untrained fallback).
        "served_by_other_versions": served,
    }))
}

/// The share of a canary body: `{"share": S}` and nothing else.
fn share_of(body: &Value) -> Result<f64, ApiError> {
    let object = body.as_object().ok_or_else(|| {
        ApiError::bad_request(
            "invalid_canary",
            "the body must be an object like {\"share\": 0.1}",
        )
    })?;
    if let Some(unknown) = object.keys().find(|k| *k != "share") {
        return Err(ApiError::bad_request(
            "invalid_canary",
            format!(
                "unknown field `{}`; the body is {{\"share\": S}}",
                crate::error::clip(unknown, 64)
            ),
        ));
    }
    object.get("share").and_then(Value::as_f64).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_canary",
            "field `share` is required: a number in (0, 1), e.g. 0.1",
        )
    })
}

/// `POST /v1/models/{version}/canary` with `{"share": S}`: the version serves that
/// share of the users outside experiments. Refused (400) when it does not load.
#[utoipa::path(
    post,
    path = "/v1/models/{version}/canary",
    tag = "models",
    summary = "Serve a registered version to a share of the users outside experiments (or change the share)",
    params(("version" = String, Path, description = "The version, e.g. `v3`", example = "v1")),
    request_body(content = CanaryIn, description = "The share, in (0, 1)"),
    responses(
        (status = 200, description = "The canary now running", body = CanaryStarted),
        (status = 400, description = "Not a version name, a bad share, the serving version, another canary running, or a version that does not load", body = ErrorBody),
        (status = 404, description = "No such version", body = ErrorBody)
    )
)]
pub(crate) async fn canary(
    State(app): State<AppState>,
    Extension(Caller(by)): Extension<Caller>,
    Path(version): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let share = share_of(&entity_json(&app, body, "invalid_canary").await?)?;
    let engine = Arc::clone(&app.engine);
    let canary = blocking(move || {
        engine
            .start_canary(&version, share, &by)
            .map_err(ApiError::from)
    })
    .await?;
    Ok(Json(json!({
        "serving": app.engine.models().version(),
        "canary": canary,
    })))
}

/// `POST /v1/models/canary/rollback`: ends the canary; its version is marked
/// `rolled_back` and the serving version serves everyone again.
#[utoipa::path(
    post,
    path = "/v1/models/canary/rollback",
    tag = "models",
    summary = "End the canary: its version is marked rolled back and the serving version serves everyone",
    responses(
        (status = 200, description = "The canary ended", body = CanaryEnded),
        (status = 400, description = "No canary is running", body = ErrorBody),
        (status = 404, description = "No canary is running", body = ErrorBody)
    )
)]
pub(crate) async fn rollback_canary(
    State(app): State<AppState>,
    Extension(Caller(by)): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    let engine = Arc::clone(&app.engine);
    let ended = blocking(move || engine.rollback_canary(&by).map_err(ApiError::from)).await?;
    Ok(Json(json!({
        "serving": app.engine.models().version(),
        "rolled_back": ended.version,
        "canary": Value::Null,
    })))
}
