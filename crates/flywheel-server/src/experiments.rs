//! The experiment routes: create, list, show, stop, metrics and the per-user export.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use flywheel_core::{check_name, ExperimentDef, Timestamp};
use serde_json::Value;
use std::sync::Arc;

use crate::edge;
use crate::error::ApiError;
use crate::openapi::{
    ErrorBody, Experiment, ExperimentDefinition, ExperimentMetrics, Experiments, Ramp,
};
use crate::routes::{blocking, entity_json, AppState};

/// The time an administrative call happens at: the wall clock, or with a simulated
/// clock the `now` query parameter when given.
pub(crate) fn request_now(app: &AppState, query: Option<&str>) -> Result<Timestamp, ApiError> {
    let params = edge::query_pairs(query)?;
    let mut now = None;
    for (key, value) in &params {
        match key.as_str() {
            "now" if app.options.simulated_clock => now = Some(parse_now(value)?),
            "now" => {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    "parameter `now` needs a server started with --simulated-clock",
                ))
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!(
                        "unknown parameter `{}`; allowed: now (simulated clock only)",
                        crate::error::clip(other, 64)
                    ),
                ))
            }
        }
    }
    Ok(now.unwrap_or_else(Timestamp::now))
}

/// Parses `now`: RFC 3339, or seconds since 1970.
pub(crate) fn parse_now(text: &str) -> Result<Timestamp, ApiError> {
    let parsed = match text.parse::<f64>() {
        Ok(secs) => Timestamp::from_secs_f64(secs),
        Err(_) => Timestamp::parse_rfc3339(text).ok(),
    };
    parsed.ok_or_else(|| {
        ApiError::bad_request(
            "invalid_parameter",
            "parameter `now` must be an RFC 3339 time or seconds since 1970",
        )
    })
}

fn experiment_id(raw: &str) -> Result<String, ApiError> {
    check_name("id", raw).map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))?;
    Ok(raw.to_string())
}

fn to_json<T: serde::Serialize>(value: &T) -> Json<Value> {
    Json(serde_json::to_value(value).unwrap_or(Value::Null))
}

/// `POST /v1/experiments`: the definition as JSON; 201 with the experiment.
#[utoipa::path(
    post,
    path = "/v1/experiments",
    tag = "experiments",
    summary = "Start an experiment (A/B, interleaving or shadow)",
    params(("now" = Option<String>, Query, description = "The call's time, RFC 3339 or seconds since 1970: only on a server started with `--simulated-clock` (else a 400)")),
    request_body(content = ExperimentDefinition, content_type = "application/json"),
    responses(
        (status = 201, description = "The experiment, running", body = Experiment),
        (status = 400, description = "The definition is invalid, its id is taken, or its layer has no room", body = ErrorBody),
        (status = 404, description = "A variant names a version the registry does not hold", body = ErrorBody)
    )
)]
pub(crate) async fn create(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let at = request_now(&app, query.as_deref())?;
    let value = entity_json(&app, body, "invalid_experiment").await?;
    let def = ExperimentDef::from_json(&value)
        .map_err(|e| ApiError::bad_request("invalid_experiment", e.to_string()))?;
    let engine = Arc::clone(&app.engine);
    let view = blocking(move || engine.create_experiment(def, at).map_err(ApiError::from)).await?;
    Ok((StatusCode::CREATED, to_json(&view)))
}

/// `GET /v1/experiments`.
#[utoipa::path(
    get,
    path = "/v1/experiments",
    tag = "experiments",
    summary = "Every experiment, running and stopped",
    responses((status = 200, description = "The experiments", body = Experiments))
)]
pub(crate) async fn list(State(app): State<AppState>) -> Json<Value> {
    to_json(&serde_json::json!({ "experiments": app.engine.experiments() }))
}

/// `GET /v1/experiments/:id`.
#[utoipa::path(
    get,
    path = "/v1/experiments/{id}",
    tag = "experiments",
    summary = "One experiment",
    params(("id" = String, Path, description = "The experiment's id", example = "exp-1")),
    responses(
        (status = 200, description = "The experiment", body = Experiment),
        (status = 400, description = "The id is invalid", body = ErrorBody),
        (status = 404, description = "No such experiment", body = ErrorBody)
    )
)]
pub(crate) async fn show(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = experiment_id(&id)?;
    let view = app
        .engine
        .experiment(&id)
        .ok_or_else(|| ApiError::NotFound(format!("experiment {id} not found")))?;
    Ok(to_json(&view))
}

/// `POST /v1/experiments/:id/stop`.
#[utoipa::path(
    post,
    path = "/v1/experiments/{id}/stop",
    tag = "experiments",
    summary = "Stop an experiment: its users get the serving version again",
    params(("id" = String, Path, description = "The experiment's id", example = "exp-1"), ("now" = Option<String>, Query, description = "The call's time, RFC 3339 or seconds since 1970: only on a server started with `--simulated-clock` (else a 400)")),
    responses(
        (status = 200, description = "The experiment, stopped", body = Experiment),
        (status = 400, description = "The id or a parameter is invalid", body = ErrorBody),
        (status = 404, description = "No such running experiment", body = ErrorBody)
    )
)]
pub(crate) async fn stop(
    State(app): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let id = experiment_id(&id)?;
    let at = request_now(&app, query.as_deref())?;
    let engine = Arc::clone(&app.engine);
    let view = blocking(move || engine.stop_experiment(&id, at).map_err(ApiError::from)).await?;
    Ok(to_json(&view))
}

/// `POST /v1/experiments/:id/ramp` with `{"traffic": 0.5}`.
#[utoipa::path(
    post,
    path = "/v1/experiments/{id}/ramp",
    tag = "experiments",
    summary = "Change the share of its layer's users an experiment takes",
    params(("id" = String, Path, description = "The experiment's id", example = "exp-1"), ("now" = Option<String>, Query, description = "The call's time, RFC 3339 or seconds since 1970: only on a server started with `--simulated-clock` (else a 400)")),
    request_body(content = Ramp, content_type = "application/json"),
    responses(
        (status = 200, description = "The experiment, ramped", body = Experiment),
        (status = 400, description = "The id, a parameter or the body is invalid, or the layer has no room", body = ErrorBody),
        (status = 404, description = "No such running experiment", body = ErrorBody)
    )
)]
pub(crate) async fn ramp(
    State(app): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let id = experiment_id(&id)?;
    let at = request_now(&app, query.as_deref())?;
    let value = entity_json(&app, body, "invalid_ramp").await?;
    let fields = value
        .as_object()
        .filter(|o| o.len() == 1 && o.contains_key("traffic"));
    let traffic = fields.and_then(|o| o["traffic"].as_f64()).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_ramp",
            "field `traffic`: the body must be {\"traffic\": <share in (0, 1]>}",
        )
    })?;
    let engine = Arc::clone(&app.engine);
    let view = blocking(move || {
        engine
            .ramp_experiment(&id, traffic, at)
            .map_err(ApiError::from)
    })
    .await?;
    Ok(to_json(&view))
}

/// `GET /v1/experiments/:id/metrics`.
#[utoipa::path(
    get,
    path = "/v1/experiments/{id}/metrics",
    tag = "experiments",
    summary = "An experiment's live figures: per variant, comparisons with intervals, checks",
    params(("id" = String, Path, description = "The experiment's id", example = "exp-1")),
    responses(
        (status = 200, description = "The figures", body = ExperimentMetrics),
        (status = 400, description = "The id is invalid", body = ErrorBody),
        (status = 404, description = "No such experiment", body = ErrorBody)
    )
)]
pub(crate) async fn metrics(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = experiment_id(&id)?;
    let engine = Arc::clone(&app.engine);
    let metrics = blocking(move || engine.experiment_metrics(&id).map_err(ApiError::from)).await?;
    Ok(to_json(&metrics))
}

/// `GET /v1/experiments/:id/users`: the per-user CSV `flywheel eval ab --users` reads.
#[utoipa::path(
    get,
    path = "/v1/experiments/{id}/users",
    tag = "experiments",
    summary = "Per-user outcomes as CSV, the input of `flywheel eval ab --users`",
    params(("id" = String, Path, description = "The experiment's id", example = "exp-1")),
    responses(
        (status = 200, description = "One row per user: variant, exposures, outcomes", content_type = "text/csv", body = String),
        (status = 400, description = "The id is invalid", body = ErrorBody),
        (status = 404, description = "No such experiment", body = ErrorBody)
    )
)]
pub(crate) async fn users(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = experiment_id(&id)?;
    let engine = Arc::clone(&app.engine);
    let csv = blocking(move || {
        let mut out = Vec::new();
        engine
            .export_experiment_users(&id, &mut out)
            .map_err(ApiError::from)?;
        Ok(out)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response())
}
