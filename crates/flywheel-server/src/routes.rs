//! Routes and handlers.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use flywheel_core::{CoreError, Item, ItemId, RequestContext, Timestamp, User, UserId};
use flywheel_engine::{Engine, EngineStats, EventBatch};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

use crate::access::Caller;
use crate::bodies;
use crate::body;
use crate::edge::{self, IdPath};
use crate::error::ApiError;
use crate::experiments;
use crate::json;
use crate::metrics::{self, HttpStats};
use crate::openapi::{
    Accepted, ErrorBody, EventsIn, Health, Item as ItemDoc, Job, Models, Ready, Serving,
    User as UserDoc,
};
use crate::wire::WireRecommendations;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Limits of the API.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The largest accepted request body, in bytes (event batches).
    pub max_body_bytes: usize,
    /// The largest accepted body of an item or a user, in bytes (at most
    /// `max_body_bytes` applies too).
    pub max_entity_bytes: usize,
    /// The most events accepted in one batch.
    pub max_batch_events: usize,
    /// The most items one recommendation request may ask for.
    pub max_count: usize,
    /// Bodies larger than this (or of unknown length), in bytes, are read and parsed
    /// only under one of `large_body_permits`.
    pub large_body_bytes: usize,
    /// How many large bodies may be read and parsed at once (at least 1 is used).
    pub large_body_permits: usize,
    /// How long a large body waits for a permit before a 503 with `Retry-After`.
    pub large_body_wait: Duration,
    /// The longest request target (path and query), in bytes; longer is a 414.
    pub max_uri_bytes: usize,
    /// The most bytes of request headers; more is a 431.
    pub max_header_bytes: usize,
    /// Take a request's time from its `now` parameter (simulations on loopback only).
    pub simulated_clock: bool,
    /// How long a client may take to send its whole body (408 after).
    pub body_deadline: Duration,
    /// How long a client may take to send a request's line and headers; the connection
    /// is closed after (it also bounds how long an idle keep-alive connection stays).
    pub header_deadline: Duration,
    /// Token bucket per API key (none: unlimited).
    pub rate_per_key: Option<crate::access::RateLimit>,
    /// Token bucket per user of recommendation requests (none: unlimited).
    pub rate_per_user: Option<crate::access::RateLimit>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_body_bytes: 16 << 20,
            max_entity_bytes: 1 << 20,
            max_batch_events: 100_000,
            max_count: 200,
            large_body_bytes: 1 << 20,
            large_body_permits: 2,
            large_body_wait: Duration::from_secs(5),
            max_uri_bytes: 8 << 10,
            max_header_bytes: 64 << 10,
            simulated_clock: false,
            body_deadline: Duration::from_secs(30),
            header_deadline: Duration::from_secs(10),
            rate_per_key: None,
            rate_per_user: None,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) engine: Arc<Engine>,
    pub(crate) options: ServerOptions,
    pub(crate) http: Arc<HttpStats>,
    /// Permits to read and parse a large body.
    pub(crate) large_bodies: Arc<Semaphore>,
    /// API keys and rate limits.
    pub(crate) access: Arc<crate::access::Access>,
}

/// Builds the API router.
pub fn router(engine: Arc<Engine>, options: ServerOptions) -> Router {
    let key_file = crate::keys::key_file(&engine.config().data_dir);
    let state = AppState {
        access: Arc::new(crate::access::Access::new(key_file)),
        engine,
        http: Arc::new(HttpStats::default()),
        large_bodies: Arc::new(Semaphore::new(options.large_body_permits.max(1))),
        options: options.clone(),
    };
    let (routes, _) = api().split_for_parts();
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::access::authorize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            edge::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// Every route of the API and its part of the API document, in one table: a route is
/// one `.routes(routes!(handler))` line here, its handler annotated with
/// `#[utoipa::path(...)]` (method, path, parameters, body, the statuses it answers).
/// Handlers of one path go in one `routes!`. A route added with `.route` instead would
/// be served undescribed: the integration test `every_route_is_in_the_document` fails.
pub(crate) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(routes!(get_recommendations))
        .routes(routes!(post_events))
        .routes(routes!(post_events_batch))
        .routes(routes!(get_item, put_item, delete_item))
        .routes(routes!(get_user, put_user, delete_user))
        .routes(routes!(opt_out_user))
        .routes(routes!(list_models))
        .routes(routes!(train_models))
        .routes(routes!(promote_model))
        .routes(routes!(rollback_model))
        .routes(routes!(crate::models::canary))
        .routes(routes!(crate::models::rollback_canary))
        .routes(routes!(get_job))
        .routes(routes!(experiments::list, experiments::create))
        .routes(routes!(experiments::show))
        .routes(routes!(experiments::stop))
        .routes(routes!(experiments::ramp))
        .routes(routes!(experiments::metrics))
        .routes(routes!(experiments::users))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics::render))
        .routes(routes!(crate::overview::get))
        .routes(routes!(crate::monitoring::report))
        .routes(routes!(crate::controller::show))
        .routes(routes!(crate::controller::step))
        .routes(routes!(crate::snapshots::take))
        .routes(routes!(crate::dashboard::page))
        .routes(routes!(crate::openapi::openapi_json))
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; see the README for the API".into())
}

async fn method_not_allowed() -> Response {
    let body = json!({"error": {"code": "method_not_allowed", "message": "this route does not accept that method"}});
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

/// Runs blocking engine work off the event loop.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?
}

fn is_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("ndjson") || ct.contains("jsonl") || ct.contains("json-seq"))
}

/// Parses and validates an events body into an encoded batch, counting a rejected
/// batch's events in the engine's statistics.
fn parse_events(
    engine: &Engine,
    bytes: &[u8],
    ndjson: bool,
    max_events: usize,
) -> Result<EventBatch, ApiError> {
    let parsed = bodies::parse_counted(
        bytes,
        ndjson,
        max_events,
        engine.actions(),
        Timestamp::now(),
    );
    parsed.map_err(|(error, rejected)| {
        EngineStats::add(&engine.stats().events_rejected, rejected.events as u64);
        for (reason, count) in &rejected.reasons {
            engine.note_rejected_events(reason, *count);
        }
        // The valid events of a refused batch are refused with it.
        let valid = (rejected.events - rejected.invalid) as u64;
        if valid > 0 {
            engine.note_rejected_events("in_a_rejected_batch", valid);
        }
        error
    })
}

#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "events",
    summary = "Store events (one, an array, or NDJSON): all or nothing, durable before the answer",
    request_body(
        description = "One event object or an array of them (`application/json`), or one event per line (`application/x-ndjson`)",
        content((EventsIn = "application/json"), (String = "application/x-ndjson"))
    ),
    responses(
        (status = 200, description = "Every event was stored", body = Accepted),
        (status = 400, description = "The body is not JSON, or an event is invalid: nothing was stored; `details` lists the bad events by index", body = ErrorBody)
    )
)]
async fn post_events(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let limit = app.options.max_body_bytes;
    let read = body::read(body, limit, &app.options, &app.large_bodies).await?;
    let ndjson = is_ndjson(&headers);
    let max_events = app.options.max_batch_events;
    let engine = Arc::clone(&app.engine);
    let (accepted, range) = blocking(move || {
        let body::ReadBody { bytes, permit } = read;
        let batch = parse_events(&engine, &bytes, ndjson, max_events)?;
        drop(bytes);
        let accepted = batch.len();
        let range = engine.ingest_batch(batch).map_err(ApiError::from)?;
        drop(permit);
        Ok((accepted, range))
    })
    .await?;
    Ok(Json(
        json!({"accepted": accepted, "first_offset": range.start, "last_offset": range.end - 1}),
    ))
}

/// `POST /v1/events:batch`: the same as `POST /v1/events`, under the name batch
/// clients use.
#[utoipa::path(
    post,
    path = "/v1/events:batch",
    tag = "events",
    summary = "Store a batch of events: the same as `POST /v1/events`",
    request_body(
        description = "One event object or an array of them (`application/json`), or one event per line (`application/x-ndjson`)",
        content((EventsIn = "application/json"), (String = "application/x-ndjson"))
    ),
    responses(
        (status = 200, description = "Every event was stored", body = Accepted),
        (status = 400, description = "The body is not JSON, or an event is invalid: nothing was stored; `details` lists the bad events by index", body = ErrorBody)
    )
)]
async fn post_events_batch(
    app: State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    post_events(app, headers, body).await
}

/// Reads and strictly parses the JSON body of an item or a user (`code` says which).
pub(crate) async fn entity_json(
    app: &AppState,
    body: Body,
    code: &'static str,
) -> Result<Value, ApiError> {
    let limit = app.options.max_entity_bytes.min(app.options.max_body_bytes);
    let read = body::read(body, limit, &app.options, &app.large_bodies).await?;
    json::parse(&read.bytes, code)
}

/// The variants a request forces: `X-Flywheel-Variant: exp=variant[, exp2=variant2]`.
fn forced_variants(headers: &HeaderMap) -> Result<Vec<(String, String)>, ApiError> {
    let mut forced = Vec::new();
    for value in headers.get_all("x-flywheel-variant") {
        let text = value.to_str().map_err(|_| {
            ApiError::bad_request("invalid_header", "header `X-Flywheel-Variant` is not ASCII")
        })?;
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (experiment, variant) = pair
                .split_once('=')
                .map(|(e, v)| (e.trim(), v.trim()))
                .filter(|(e, v)| !e.is_empty() && !v.is_empty())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_header",
                        format!(
                            "header `X-Flywheel-Variant`: `{}` is not `<experiment>=<variant>`",
                            crate::error::clip(pair, 64)
                        ),
                    )
                })?;
            forced.push((experiment.to_string(), variant.to_string()));
        }
    }
    Ok(forced)
}

#[utoipa::path(
    get,
    path = "/v1/recommendations",
    tag = "recommendations",
    summary = "A ranked list of items for a user",
    params(
        ("user_id" = String, Query, description = "Who the list is for (an unknown user gets a cold-start list)", example = "u00000"),
        ("count" = Option<u32>, Query, description = "How many items, from 1 to the server's maximum (default 10)", example = 5),
        ("category" = Option<String>, Query, description = "Only items in this category or below it"),
        ("now" = Option<String>, Query, description = "The request's time, RFC 3339 or seconds since 1970: only on a server started with `--simulated-clock` (else a 400)"),
        ("device" = Option<String>, Query, description = "The client's device, e.g. `mobile`, `desktop`, `tablet` (free text, 1 to 64 bytes, no control characters): a ranking feature, logged with the impression", example = "mobile"),
        ("page" = Option<String>, Query, description = "The page the list is shown on, e.g. `home`, `item`, `category`, `search`, `cart` (free text, 1 to 64 bytes, no control characters): a ranking feature, logged with the impression", example = "home"),
        ("hour" = Option<u8>, Query, description = "The client's hour of day, 0 to 23 (default: the UTC hour of the request time): a ranking feature, logged with the impression", example = 20),
        ("X-Flywheel-Variant" = Option<String>, Header, description = "Force experiment variants, `experiment=variant[, ...]`; such requests are served but not counted")
    ),
    responses(
        (status = 200, description = "The list, best first", body = WireRecommendations),
        (status = 400, description = "A parameter is missing, unknown or invalid", body = ErrorBody),
        (status = 404, description = "A forced experiment or variant does not exist", body = ErrorBody),
        (status = 503, description = "The engine is still replaying its log; retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait")))
    )
)]
async fn get_recommendations(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<WireRecommendations>, ApiError> {
    // A state still replaying the log would serve lists from part of it.
    if !app.engine.is_ready() {
        return Err(ApiError::NotReady);
    }
    let params = edge::query_pairs(query.as_deref())?;
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let allowed: &[&str] = if app.options.simulated_clock {
        &[
            "user_id", "count", "category", "device", "page", "hour", "now",
        ]
    } else {
        &["user_id", "count", "category", "device", "page", "hour"]
    };
    if let Some((unknown, _)) = params.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!(
                "unknown parameter `{}`; allowed: {}",
                crate::error::clip(unknown, 64),
                allowed.join(", ")
            ),
        ));
    }
    let now = param("now").map(experiments::parse_now).transpose()?;
    let forced = forced_variants(&headers)?;
    let raw_user = param("user_id").ok_or_else(|| {
        ApiError::bad_request("invalid_parameter", "parameter `user_id` is required")
    })?;
    let user_id = UserId::parse("user_id", raw_user)
        .map_err(|e| ApiError::bad_request("invalid_parameter", e.to_string()))?;
    let count = match param("count") {
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
    let category = param("category")
        .map(|c| c.trim_matches('/').to_string())
        .filter(|c| !c.is_empty());
    let context = request_context(param("device"), param("page"), param("hour"))?;
    let engine = Arc::clone(&app.engine);
    let user_text = user_id.to_string();
    let served = blocking(move || {
        if let Some(category) = &category {
            if !engine.state().catalog.has_category(category) {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!(
                        "parameter `category`: no item is in `{}` or below it",
                        crate::error::clip(category, 64)
                    ),
                ));
            }
        }
        let request = flywheel_engine::ServeRequest {
            user_id,
            count,
            category,
            now,
            forced,
            context,
        };
        engine.serve(&request).map_err(ApiError::from)
    })
    .await?;
    Ok(Json(WireRecommendations::from_served(user_text, served)))
}

/// The request context of the `device`, `page` and `hour` parameters, each checked
/// with a 400 naming the parameter.
fn request_context(
    device: Option<&str>,
    page: Option<&str>,
    hour: Option<&str>,
) -> Result<RequestContext, ApiError> {
    let hour = hour
        .map(|text| {
            text.parse::<i64>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_parameter",
                    format!(
                        "parameter `hour` must be an integer from 0 to 23, got `{}`",
                        crate::error::clip(text, 64)
                    ),
                )
            })
        })
        .transpose()?;
    RequestContext::new(device, page, hour).map_err(|e| {
        let message = match e {
            CoreError::InvalidValue { field, reason } => format!("parameter `{field}` {reason}"),
            other => other.to_string(),
        };
        ApiError::bad_request("invalid_parameter", message)
    })
}

fn path_id<T>(raw: &str, parse: fn(&str, &str) -> flywheel_core::Result<T>) -> Result<T, ApiError> {
    parse("id", raw).map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))
}

#[utoipa::path(
    put,
    path = "/v1/items/{id}",
    tag = "catalog",
    summary = "Create or replace an item",
    params(("id" = String, Path, description = "The item's id", example = "i00001")),
    request_body(content = ItemDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "The item as stored", body = ItemDoc),
        (status = 400, description = "The id or the body is invalid", body = ErrorBody)
    )
)]
async fn put_item(
    State(app): State<AppState>,
    IdPath(id): IdPath,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let item = Item::from_json(&entity_json(&app, body, "invalid_item").await?, Some(&id))
        .map_err(|e| ApiError::bad_request("invalid_item", e.to_string()))?;
    let reply = serde_json::to_value(&item).unwrap_or(Value::Null);
    let engine = Arc::clone(&app.engine);
    blocking(move || engine.put_item(item).map_err(ApiError::from)).await?;
    Ok(Json(reply))
}

#[utoipa::path(
    get,
    path = "/v1/items/{id}",
    tag = "catalog",
    summary = "One item of the catalog",
    params(("id" = String, Path, description = "The item's id", example = "i00001")),
    responses(
        (status = 200, description = "The item", body = ItemDoc),
        (status = 400, description = "The id is invalid", body = ErrorBody),
        (status = 404, description = "No such item", body = ErrorBody)
    )
)]
async fn get_item(
    State(app): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<Value>, ApiError> {
    let id: ItemId = path_id(&id, ItemId::parse)?;
    let item = app
        .engine
        .get_item(&id)
        .ok_or_else(|| ApiError::NotFound(format!("item {id} not found")))?;
    Ok(Json(serde_json::to_value(&*item).unwrap_or(Value::Null)))
}

#[utoipa::path(
    delete,
    path = "/v1/items/{id}",
    tag = "catalog",
    summary = "Remove an item from the catalog",
    params(("id" = String, Path, description = "The item's id", example = "i00001")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "The id is invalid", body = ErrorBody),
        (status = 404, description = "No such item", body = ErrorBody)
    )
)]
async fn delete_item(
    State(app): State<AppState>,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    let id: ItemId = path_id(&id, ItemId::parse)?;
    let engine = Arc::clone(&app.engine);
    blocking(move || engine.delete_item(&id).map_err(ApiError::from)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    put,
    path = "/v1/users/{id}",
    tag = "users",
    summary = "Create or replace a user",
    params(("id" = String, Path, description = "The user's id", example = "u00001")),
    request_body(content = UserDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "The user as stored", body = UserDoc),
        (status = 400, description = "The id or the body is invalid", body = ErrorBody)
    )
)]
async fn put_user(
    State(app): State<AppState>,
    IdPath(id): IdPath,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let user = User::from_json(&entity_json(&app, body, "invalid_user").await?, Some(&id))
        .map_err(|e| ApiError::bad_request("invalid_user", e.to_string()))?;
    let reply = serde_json::to_value(&user).unwrap_or(Value::Null);
    let engine = Arc::clone(&app.engine);
    blocking(move || engine.put_user(user).map_err(ApiError::from)).await?;
    Ok(Json(reply))
}

#[utoipa::path(
    get,
    path = "/v1/users/{id}",
    tag = "users",
    summary = "One user",
    params(("id" = String, Path, description = "The user's id", example = "u00001")),
    responses(
        (status = 200, description = "The user", body = UserDoc),
        (status = 400, description = "The id is invalid", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody)
    )
)]
async fn get_user(
    State(app): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<Value>, ApiError> {
    let id: UserId = path_id(&id, UserId::parse)?;
    let user = app
        .engine
        .get_user(&id)
        .ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))?;
    Ok(Json(serde_json::to_value(&*user).unwrap_or(Value::Null)))
}

#[utoipa::path(
    delete,
    path = "/v1/users/{id}",
    tag = "users",
    summary = "Erase a user (GDPR) from every store: catalog, features, log, models",
    description = "Works for users known from the catalog or only from their events or \
        the lists served to them. When it answers, the user is gone from every read and \
        no replay brings them back; the log's segments and the model files are then \
        rewritten without them by a background job, whose `erasure` report (records \
        removed by kind, segments and model versions rewritten, …) `GET /v1/jobs/{id}` \
        gives once it succeeded.",
    params(("id" = String, Path, description = "The user's id", example = "u00001")),
    responses(
        (status = 202, description = "Erased from every read; the job rewriting the stores: poll `GET /v1/jobs/{id}`", body = Job),
        (status = 400, description = "The id is invalid", body = ErrorBody),
        (status = 404, description = "The id appears nowhere (catalog, features, models, log)", body = ErrorBody)
    )
)]
async fn delete_user(
    State(app): State<AppState>,
    IdPath(id): IdPath,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id: UserId = path_id(&id, UserId::parse)?;
    let engine = Arc::clone(&app.engine);
    let job = blocking(move || engine.start_erasure(&id).map_err(ApiError::from)).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::to_value(job).unwrap_or(Value::Null)),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "models",
    summary = "The registry: every version, and the one serving",
    responses((status = 200, description = "The registry", body = Models))
)]
async fn list_models(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let engine = Arc::clone(&app.engine);
    Ok(Json(
        blocking(move || crate::models::listing(&engine)).await?,
    ))
}

/// `?force=true` promotes whatever the gate decides.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainParams {
    #[serde(default)]
    force: bool,
}

#[utoipa::path(
    post,
    path = "/v1/models/train",
    tag = "models",
    summary = "Start training a candidate from the log; the promotion gate decides whether it serves",
    params(("force" = Option<bool>, Query, description = "Promote the candidate whatever the gate says")),
    responses(
        (status = 202, description = "The training job, accepted: poll `GET /v1/jobs/{id}`", body = Job),
        (status = 400, description = "An unknown or invalid parameter", body = ErrorBody),
        (status = 409, description = "A training job is already running; `job_id` names it", body = ErrorBody)
    )
)]
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

#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "models",
    summary = "A job and where it is",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job", body = Job),
        (status = 400, description = "The id is not a valid path segment", body = ErrorBody),
        (status = 404, description = "No such job (or forgotten: the last 100 are kept)", body = ErrorBody)
    )
)]
async fn get_job(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = app.engine.job(&id).ok_or_else(|| {
        ApiError::NotFound(format!("job {} not found", crate::error::clip(&id, 64)))
    })?;
    Ok(Json(serde_json::to_value(job).unwrap_or(Value::Null)))
}

#[utoipa::path(
    post,
    path = "/v1/models/{version}/promote",
    tag = "models",
    summary = "Serve a registered version from now on (no gate: an operator's decision)",
    params(("version" = String, Path, description = "The version, e.g. `v3`", example = "v1")),
    responses(
        (status = 200, description = "The version now serving", body = Serving),
        (status = 400, description = "Not a version name, or a version that cannot serve", body = ErrorBody),
        (status = 404, description = "No such version", body = ErrorBody)
    )
)]
async fn promote_model(
    State(app): State<AppState>,
    Extension(Caller(by)): Extension<Caller>,
    Path(version): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let engine = Arc::clone(&app.engine);
    let serving =
        blocking(move || engine.promote_by(&version, &by).map_err(ApiError::from)).await?;
    Ok(Json(json!({ "serving": serving })))
}

#[utoipa::path(
    post,
    path = "/v1/models/rollback",
    tag = "models",
    summary = "Serve the version that served before the current one",
    responses(
        (status = 200, description = "The version now serving", body = Serving),
        (status = 400, description = "Nothing can be rolled back to", body = ErrorBody),
        (status = 404, description = "No version served before this one", body = ErrorBody)
    )
)]
async fn rollback_model(
    State(app): State<AppState>,
    Extension(Caller(by)): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    let engine = Arc::clone(&app.engine);
    let serving = blocking(move || engine.rollback_by(&by).map_err(ApiError::from)).await?;
    Ok(Json(json!({ "serving": serving })))
}

#[utoipa::path(
    post,
    path = "/v1/users/{id}/opt-out",
    tag = "users",
    summary = "The user refuses personalisation from now on",
    params(("id" = String, Path, description = "The user's id", example = "u00001")),
    responses(
        (status = 200, description = "The user as stored", body = UserDoc),
        (status = 400, description = "The id is invalid", body = ErrorBody)
    )
)]
async fn opt_out_user(
    State(app): State<AppState>,
    IdPath(id): IdPath,
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

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    summary = "The process is up (open: no key needed)",
    responses((status = 200, description = "Up", body = Health))
)]
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// What start-up did with the snapshots, for `/readyz`: the one loaded and the ones
/// refused (with why), and the latest taken since.
fn snapshot_readiness(engine: &Engine) -> Value {
    let status = engine.snapshot_status();
    json!({
        "loaded": status.startup.loaded.map(|l| json!({
            "path": l.path.display().to_string(), "offset": l.offset, "bytes": l.bytes,
            "load_ms": l.load_ms,
        })),
        "rejected": status.startup.rejected.iter().map(|r| json!({
            "path": r.path.display().to_string(), "kind": r.kind, "reason": r.reason,
        })).collect::<Vec<_>>(),
        "last_offset": status.last.map(|s| s.offset),
        "last_error": status.last_error,
    })
}

/// 200 once the state has caught up with the log, with what can still go wrong
/// while serving: records skipped as undecodable, a consumer that cannot read the
/// log, a log that refuses writes. 503 (with `Retry-After`) while the log replays.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    summary = "The state has caught up with the log (open: no key needed)",
    responses(
        (status = 200, description = "Ready, with what can still go wrong", body = Ready),
        (status = 503, description = "Still replaying the log; retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait")))
    )
)]
async fn readyz(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let engine = &app.engine;
    if !engine.is_ready() {
        return Err(ApiError::NotReady);
    }
    Ok(Json(json!({
        "status": "ready",
        "consumer_lag": engine.consumer_lag(),
        "skipped_records": EngineStats::get(&engine.stats().skipped_records),
        "consumer_error": engine.consumer_error(),
        "write_error": engine.write_error(),
        "snapshot": snapshot_readiness(engine),
    })))
}
