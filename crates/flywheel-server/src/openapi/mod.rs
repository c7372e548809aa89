//! The API document: OpenAPI 3.1, generated from the code and served at
//! `GET /openapi.json` (open, like `/healthz`).
//!
//! Each handler carries its own part (`#[utoipa::path]`: path, method, parameters,
//! body, the statuses it answers itself), and the route table
//! ([`crate::routes::api`]) registers the route and its part in one line, so a route
//! cannot be served without being described. [`finish`] then adds what every route
//! shares, from the same code that applies it:
//! - the bearer scheme and, per `/v1/` operation, the scope
//!   [`required_scope`](crate::access::required_scope) asks for, with 401, 403 and 429;
//! - the edge's 414 and 431 on every operation, and on those with a body 408, 413 and
//!   503 (too many large bodies at once);
//! - 507 (a full disk) on every write under `/v1/`.

mod schemas;

use std::sync::OnceLock;

use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Object, Ref, RefOr, ResponseBuilder, Type};
use utoipa::OpenApi;

pub(crate) use schemas::*;

/// The name of the security scheme in the document.
const BEARER: &str = "bearer";

/// The document's fixed part: information, and the schemas the handlers name.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "flywheel",
        description = "A recommendation engine with evaluation built in. Every error is \
            `{\"error\": {\"code\", \"message\"}}` (JSON). With API keys configured, every \
            `/v1/` route needs `Authorization: Bearer KEY` with the scope each operation \
            names (`read`, `events`, `admin`; an admin key may do everything)."
    ),
    components(schemas(ErrorBody, ErrorDetail))
)]
struct ApiDoc;

/// The fixed part the route table starts from.
pub(crate) fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The whole document: the route table's parts and what every route shares.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = crate::routes::api().split_for_parts();
    finish(&mut doc);
    doc
}

/// The document as served, built once.
fn document_json() -> &'static [u8] {
    static JSON: OnceLock<Vec<u8>> = OnceLock::new();
    JSON.get_or_init(|| serde_json::to_vec(&document()).unwrap_or_default())
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    summary = "This document (OpenAPI 3.1)",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub(crate) async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
        .into_response()
}

/// Adds what every route shares (see the module's documentation).
fn finish(doc: &mut utoipa::openapi::OpenApi) {
    let components = doc
        .components
        .get_or_insert_with(utoipa::openapi::Components::new);
    let mut scheme = Http::new(HttpAuthScheme::Bearer);
    scheme.description = Some(
        "An API key made with `flywheel keys create --scopes read,events,admin`. Needed \
         on every `/v1/` route once the data dir's key store holds a key; without keys \
         the server is open (and binds loopback only)."
            .into(),
    );
    components.add_security_scheme(BEARER, SecurityScheme::Http(scheme));
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, operation) in operations(item) {
            add_shared(path, &method, operation);
        }
    }
}

/// Each operation of a path, with its method.
fn operations(item: &mut PathItem) -> Vec<(Method, &mut Operation)> {
    [
        (Method::GET, item.get.as_mut()),
        (Method::PUT, item.put.as_mut()),
        (Method::POST, item.post.as_mut()),
        (Method::DELETE, item.delete.as_mut()),
        (Method::PATCH, item.patch.as_mut()),
        (Method::HEAD, item.head.as_mut()),
        (Method::OPTIONS, item.options.as_mut()),
        (Method::TRACE, item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|o| (method, o)))
    .collect()
}

/// The statuses and security one operation shares with others.
fn add_shared(path: &str, method: &Method, operation: &mut Operation) {
    let mut shared: Vec<(u16, &str)> = vec![
        (414, "The request target is longer than the server's limit"),
        (
            431,
            "The request headers are larger than the server's limit",
        ),
    ];
    if operation.request_body.is_some() {
        shared.extend([
            (408, "The body did not arrive within the body deadline"),
            (413, "The body is larger than the limit"),
            (
                503,
                "Too many large bodies are being read at once; retry after `Retry-After` seconds",
            ),
        ]);
    }
    if let Some(scope) = crate::access::required_scope(method, path) {
        operation.security = Some(vec![SecurityRequirement::new(BEARER, [scope.as_str()])]);
        shared.extend([
            (401, "No valid API key (missing, mistyped or revoked)"),
            (403, "The key lacks the scope this operation needs"),
            (
                429,
                "A rate limit (per key, or per user) was reached; retry after `Retry-After` seconds",
            ),
        ]);
        if method != Method::GET {
            shared.push((507, "The server's storage is full; nothing was stored"));
        }
    }
    for (status, description) in shared {
        add_error(operation, status, description);
    }
}

/// Adds a JSON error answer, unless the operation already describes that status.
pub(crate) fn add_error(operation: &mut Operation, status: u16, description: &str) {
    let key = status.to_string();
    if operation.responses.responses.contains_key(&key) {
        return;
    }
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
    );
    if status == 429 || status == 503 {
        let mut retry_after = Header::new(Object::with_type(Type::Integer));
        retry_after.description = Some("Seconds to wait before retrying".into());
        response = response.header("Retry-After", retry_after);
    }
    operation
        .responses
        .responses
        .insert(key, RefOr::T(response.build()));
}
