//! Routes and handlers.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flywheel_core::{Item, ItemId, Timestamp, User, UserId};
use flywheel_engine::Engine;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

use crate::error::ApiError;
use crate::metrics::{self, HttpStats};
use crate::wire::WireRecommendations;

/// Limits of the API.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// The most events accepted in one batch.
    pub max_batch_events: usize,
    /// The most items one recommendation request may ask for.
    pub max_count: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_body_bytes: 16 << 20,
            max_batch_events: 100_000,
            max_count: 200,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) engine: Arc<Engine>,
    pub(crate) options: ServerOptions,
    pub(crate) http: Arc<HttpStats>,
}

/// Builds the API router.
pub fn router(engine: Arc<Engine>, options: ServerOptions) -> Router {
    let state = AppState {
        engine,
        http: Arc::new(HttpStats::default()),
        options: options.clone(),
    };
    Router::new()
        .route("/v1/recommendations", get(get_recommendations))
        .route("/v1/events", post(post_events))
        .route("/v1/events:batch", post(post_events))
        .route(
            "/v1/items/{id}",
            get(get_item).put(put_item).delete(delete_item),
        )
        .route(
            "/v1/users/{id}",
            get(get_user).put(put_user).delete(delete_user),
        )
        .route("/v1/models", get(list_models))
        .route("/v1/models/train", post(train_models))
        .route("/v1/models/{version}/promote", post(promote_model))
        .route("/v1/models/rollback", post(rollback_model))
        .route("/v1/jobs/{id}", get(get_job))
        .route("/v1/users/{id}/opt-out", post(opt_out_user))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::render))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(options.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; see the README for the API".into())
}

async fn method_not_allowed() -> Response {
    let body = json!({"error": {"code": "method_not_allowed", "message": "this route does not accept that method"}});
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

/// Runs blocking engine work off the event loop.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?
}

fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge { limit }
        } else {
            ApiError::bad_request("unreadable_body", rejection.body_text())
        }
    })
}

fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("body is not valid JSON: {e}"))
    })
}

fn is_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("ndjson") || ct.contains("jsonl") || ct.contains("json-seq"))
}

/// Splits an events body into JSON values: one object, an array, or NDJSON lines.
fn event_values(headers: &HeaderMap, bytes: &[u8]) -> Result<Vec<Value>, ApiError> {
    if is_ndjson(headers) {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| ApiError::bad_request("malformed_json", "body is not UTF-8"))?;
        return text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                serde_json::from_str(line).map_err(|e| {
                    ApiError::bad_request(
                        "malformed_json",
                        format!("line {}: not valid JSON: {e}", i + 1),
                    )
                })
            })
            .collect();
    }
    match parse_json(bytes)? {
        Value::Array(values) => Ok(values),
        value @ Value::Object(_) => Ok(vec![value]),
        _ => Err(ApiError::bad_request(
            "invalid_event",
            "expected an event object, an array of events, or NDJSON",
        )),
    }
}

async fn post_events(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let bytes = body_bytes(body, app.options.max_body_bytes)?;
    let values = event_values(&headers, &bytes)?;
    if values.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_event",
            "the batch holds no events",
        ));
    }
    if values.len() > app.options.max_batch_events {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!(
                "a batch may hold at most {} events, got {}",
                app.options.max_batch_events,
                values.len()
            ),
        ));
    }
    let now = Timestamp::now();
    let mut events = Vec::with_capacity(values.len());
    let mut details = Vec::new();
    for (index, value) in values.iter().enumerate() {
        match app.engine.parse_event(value, now) {
            Ok(event) => events.push(event),
            Err(e) => {
                details.push(json!({"index": index, "field": e.field(), "message": e.to_string()}))
            }
        }
    }
    if !details.is_empty() {
        flywheel_engine::EngineStats::add(&app.engine.stats().events_rejected, values.len() as u64);
        let first = details[0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let message = if values.len() == 1 {
            first
        } else {
            format!(
                "{} of {} events are invalid, so none were stored; first: event {}: {first}",
                details.len(),
                values.len(),
                details[0]["index"]
            )
        };
        return Err(ApiError::BadRequest {
            code: "invalid_event",
            message,
            details,
        });
    }
    let accepted = events.len();
    let engine = Arc::clone(&app.engine);
    let range = blocking(move || engine.ingest(events).map_err(ApiError::from)).await?;
    Ok(Json(
        json!({"accepted": accepted, "first_offset": range.start, "last_offset": range.end - 1}),
    ))
}

async fn get_recommendations(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<WireRecommendations>, ApiError> {
    if let Some(unknown) = params
        .keys()
        .find(|k| !["user_id", "count", "category"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("unknown parameter `{unknown}`; allowed: user_id, count, category"),
        ));
    }
    let raw_user = params.get("user_id").ok_or_else(|| {
        ApiError::bad_request("invalid_parameter", "parameter `user_id` is required")
    })?;
    let user_id = UserId::parse("user_id", raw_user)
        .map_err(|e| ApiError::bad_request("invalid_parameter", e.to_string()))?;
    let count = match params.get("count") {
        None => 10,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|c| (1..=app.options.max_count).contains(c))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_parameter",
                    format!(
                        "parameter `count` must be an integer from 1 to {}",
                        app.options.max_count
                    ),
                )
            })?,
    };
    let category = params.get("category").filter(|c| !c.is_empty()).cloned();
    let engine = Arc::clone(&app.engine);
    let user_text = user_id.to_string();
    let served = blocking(move || Ok(engine.recommend(user_id, count, category))).await?;
    Ok(Json(WireRecommendations::from_served(user_text, served)))
}

fn path_id<T>(raw: &str, parse: fn(&str, &str) -> flywheel_core::Result<T>) -> Result<T, ApiError> {
    parse("id", raw).map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))
}

async fn put_item(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let bytes = body_bytes(body, app.options.max_body_bytes)?;
    let item = Item::from_json(&parse_json(&bytes)?, Some(&id))
        .map_err(|e| ApiError::bad_request("invalid_item", e.to_string()))?;
    let reply = serde_json::to_value(&item).unwrap_or(Value::Null);
    let engine = Arc::clone(&app.engine);
    blocking(move || engine.put_item(item).map_err(ApiError::from)).await?;
    Ok(Json(reply))
}

async fn get_item(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: ItemId = path_id(&id, ItemId::parse)?;
    let item = app
        .engine
        .get_item(&id)
        .ok_or_else(|| ApiError::NotFound(format!("item {id} not found")))?;
    Ok(Json(serde_json::to_value(&*item).unwrap_or(Value::Null)))
}

async fn delete_item(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: ItemId = path_id(&id, ItemId::parse)?;
    let engine = Arc::clone(&app.engine);
    blocking(move || engine.delete_item(&id).map_err(ApiError::from)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn put_user(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let bytes = body_bytes(body, app.options.max_body_bytes)?;
    let user = User::from_json(&parse_json(&bytes)?, Some(&id))
        .map_err(|e| ApiError::bad_request("invalid_user", e.to_string()))?;
    let reply = serde_json::to_value(&user).unwrap_or(Value::Null);
    let engine = Arc::clone(&app.engine);
    blocking(move || engine.put_user(user).map_err(ApiError::from)).await?;
    Ok(Json(reply))
}

async fn get_user(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: UserId = path_id(&id, UserId::parse)?;
    let user = app
        .engine
        .get_user(&id)
        .ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))?;
    Ok(Json(serde_json::to_value(&*user).unwrap_or(Value::Null)))
}

async fn delete_user(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: UserId = path_id(&id, UserId::parse)?;
    let engine = Arc::clone(&app.engine);
    blocking(move || engine.delete_user(&id).map_err(ApiError::from)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_models(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let engine = Arc::clone(&app.engine);
    let versions = blocking(move || engine.list_versions().map_err(ApiError::from)).await?;
    Ok(Json(
        json!({"serving": app.engine.models().version(), "versions": versions}),
    ))
}

/// `?force=true` promotes whatever the gate decides.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainParams {
    #[serde(default)]
    force: bool,
}

async fn train_models(
    State(app): State<AppState>,
    params: Result<Query<TrainParams>, QueryRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Query(params) =
        params.map_err(|e| ApiError::bad_request("invalid_parameter", e.body_text()))?;
    let job = app
        .engine
        .start_training(params.force)
        .map_err(ApiError::from)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::to_value(job).unwrap_or(Value::Null)),
    ))
}

async fn get_job(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = app
        .engine
        .job(&id)
        .ok_or_else(|| ApiError::NotFound(format!("job {} not found", truncate(&id, 64))))?;
    Ok(Json(serde_json::to_value(job).unwrap_or(Value::Null)))
}

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

async fn promote_model(
    State(app): State<AppState>,
    Path(version): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let engine = Arc::clone(&app.engine);
    let serving = blocking(move || engine.promote(&version).map_err(ApiError::from)).await?;
    Ok(Json(json!({ "serving": serving })))
}

async fn rollback_model(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let engine = Arc::clone(&app.engine);
    let serving = blocking(move || engine.rollback().map_err(ApiError::from)).await?;
    Ok(Json(json!({ "serving": serving })))
}

async fn opt_out_user(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: UserId = path_id(&id, UserId::parse)?;
    let mut user = app
        .engine
        .get_user(&id)
        .map(|u| User::clone(&u))
        .unwrap_or_else(|| User::new(id.clone()));
    user.opted_out = true;
    let reply = serde_json::to_value(&user).unwrap_or(Value::Null);
    let engine = Arc::clone(&app.engine);
    blocking(move || engine.put_user(user).map_err(ApiError::from)).await?;
    Ok(Json(reply))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    if app.engine.is_ready() {
        Ok(Json(
            json!({"status": "ready", "consumer_lag": app.engine.consumer_lag()}),
        ))
    } else {
        Err(ApiError::NotReady)
    }
}
