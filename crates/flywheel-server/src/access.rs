//! Access control and rate limits, in front of every route.
//!
//! - **Keys.** When the data dir's key store holds a key, every route under `/v1/`
//!   needs `Authorization: Bearer KEY`: `read` for every `GET`, `events` for
//!   `POST /v1/events` (and `:batch`), `admin` for every other write and for the
//!   controller, `GET /v1/controller` included (an `admin` key may do everything). `/healthz`, `/readyz`, `/metrics` and `/openapi.json` stay open.
//!   Missing or unknown key: 401; a key without the scope: 403. An empty store leaves
//!   the API open (the binary then binds loopback only unless told otherwise). The
//!   store is re-read when its file changes, so new and revoked keys apply at once.
//! - **Rate limits.** Token buckets per key and per user (`user_id` of a
//!   recommendation request), both optional: an empty bucket is a 429 with
//!   `Retry-After`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::keys::{KeyStore, Scope};
use crate::routes::AppState;

/// A token bucket's refill rate and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_second: f64,
    /// Requests that may arrive at once.
    pub burst: f64,
}

/// How often the key file's modification time is looked at.
const KEY_FILE_CHECK: Duration = Duration::from_millis(250);
/// The most buckets kept; past it, full (idle) buckets are forgotten.
const MAX_BUCKETS: usize = 100_000;

struct CachedKeys {
    checked: Option<Instant>,
    modified: Option<SystemTime>,
    store: KeyStore,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The server's access state: the cached key store and the rate-limit buckets.
pub(crate) struct Access {
    key_file: PathBuf,
    keys: Mutex<CachedKeys>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Access {
    /// Access over the key store at `key_file`.
    pub(crate) fn new(key_file: PathBuf) -> Self {
        Access {
            key_file,
            keys: Mutex::new(CachedKeys {
                checked: None,
                modified: None,
                store: KeyStore::default(),
            }),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The key store, re-read when the file changed (a store that cannot be read
    /// keeps the last good one, so a half-written edit never opens the API).
    fn with_store<T>(&self, read: impl FnOnce(&KeyStore) -> T) -> T {
        let mut cached = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let due = cached.checked.is_none_or(|t| t.elapsed() >= KEY_FILE_CHECK);
        if due {
            cached.checked = Some(Instant::now());
            let modified = std::fs::metadata(&self.key_file)
                .and_then(|m| m.modified())
                .ok();
            if modified != cached.modified {
                match KeyStore::load(&self.key_file) {
                    Ok(store) => {
                        cached.store = store;
                        cached.modified = modified;
                    }
                    Err(e) => tracing::error!("keeping the previous API keys: {e}"),
                }
            }
        }
        read(&cached.store)
    }

    /// Takes one token from the bucket `name`, or says how long until one is there.
    fn take(&self, name: String, limit: RateLimit) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            let now = Instant::now();
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * limit.per_second
                    < limit.burst
            });
        }
        let now = Instant::now();
        let bucket = buckets.entry(name).or_insert(Bucket {
            tokens: limit.burst,
            updated: now,
        });
        let refill = now.duration_since(bucket.updated).as_secs_f64() * limit.per_second;
        bucket.tokens = (bucket.tokens + refill).min(limit.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / limit.per_second.max(f64::MIN_POSITIVE);
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

/// The scope a request needs; `None` for the open routes.
pub(crate) fn required_scope(method: &Method, path: &str) -> Option<Scope> {
    if !path.starts_with("/v1/") {
        return None;
    }
    if path == "/v1/controller" || path.starts_with("/v1/controller/") {
        return Some(Scope::Admin);
    }
    if method == Method::GET || method == Method::HEAD {
        return Some(Scope::Read);
    }
    if method == Method::POST && (path == "/v1/events" || path == "/v1/events:batch") {
        return Some(Scope::Events);
    }
    Some(Scope::Admin)
}

fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, key) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

/// The user a recommendation request is for, decoded as the route decodes it (a
/// query that does not decode is left to the route to refuse).
fn requested_user(request: &Request) -> Option<String> {
    if request.uri().path() != "/v1/recommendations" {
        return None;
    }
    crate::edge::query_pairs(request.uri().query())
        .ok()?
        .into_iter()
        .find_map(|(name, value)| (name == "user_id").then_some(value))
}

/// Who makes a request, as the registry's history writes it: `key:NAME` for an API
/// key, `api` on a server without keys. Handlers read it from the request's extensions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Caller(pub(crate) String);

impl Caller {
    fn of(key_name: Option<&str>) -> Caller {
        Caller(key_name.map_or_else(|| "api".to_string(), |name| format!("key:{name}")))
    }
}

/// Checks the key, its scope and the rate limits, in that order; returns the key's
/// name (`None` on an open server or an open route).
fn admit(app: &AppState, request: &Request) -> Result<Option<String>, ApiError> {
    let Some(scope) = required_scope(request.method(), request.uri().path()) else {
        return Ok(None);
    };
    let key_name = app.access.with_store(|store| {
        if store.keys.is_empty() {
            return Ok(None);
        }
        let key = bearer(request).ok_or_else(|| {
            ApiError::Unauthorized(
                "this server requires an API key: send `Authorization: Bearer KEY` \
                 (create one with `flywheel keys create`)"
                    .into(),
            )
        })?;
        let stored = store.find(key).ok_or_else(|| {
            ApiError::Unauthorized("the API key is not valid (mistyped or revoked)".into())
        })?;
        if !(stored.scopes.contains(&scope) || stored.scopes.contains(&Scope::Admin)) {
            return Err(ApiError::Forbidden(format!(
                "key `{}` lacks the `{}` scope this route needs",
                stored.name,
                scope.as_str()
            )));
        }
        Ok(Some(stored.name.clone()))
    })?;
    let limited = |who: String, limit: Option<RateLimit>, what: &str| match limit {
        Some(limit) => {
            app.access
                .take(who, limit)
                .map_err(|retry_after_secs| ApiError::RateLimited {
                    message: format!(
                        "rate limit of {} requests per second (burst {}) reached for {what}",
                        limit.per_second, limit.burst
                    ),
                    retry_after_secs,
                })
        }
        None => Ok(()),
    };
    if let Some(name) = &key_name {
        limited(format!("key:{name}"), app.options.rate_per_key, "this key")?;
    }
    if let Some(user) = requested_user(request) {
        limited(
            format!("user:{user}"),
            app.options.rate_per_user,
            "this user",
        )?;
    }
    Ok(key_name)
}

/// The access middleware.
pub(crate) async fn authorize(
    State(app): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    match admit(&app, &request) {
        Ok(key_name) => {
            let caller = Caller::of(key_name.as_deref());
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_the_documented_scopes() {
        let cases = [
            (Method::GET, "/v1/recommendations", Some(Scope::Read)),
            (Method::GET, "/v1/experiments/e/metrics", Some(Scope::Read)),
            (Method::POST, "/v1/events", Some(Scope::Events)),
            (Method::POST, "/v1/events:batch", Some(Scope::Events)),
            (Method::PUT, "/v1/items/i", Some(Scope::Admin)),
            (Method::POST, "/v1/experiments", Some(Scope::Admin)),
            (Method::POST, "/v1/models/train", Some(Scope::Admin)),
            (Method::GET, "/v1/controller", Some(Scope::Admin)),
            (Method::POST, "/v1/controller/step", Some(Scope::Admin)),
            (Method::DELETE, "/v1/users/u", Some(Scope::Admin)),
            (Method::GET, "/healthz", None),
            (Method::GET, "/metrics", None),
        ];
        for (method, path, scope) in cases {
            assert_eq!(required_scope(&method, path), scope, "{method} {path}");
        }
    }

    #[test]
    fn a_bucket_admits_its_burst_then_refuses_with_a_wait() {
        let access = Access::new(PathBuf::from("/nonexistent/keys.json"));
        let limit = RateLimit {
            per_second: 0.5,
            burst: 3.0,
        };
        for _ in 0..3 {
            assert!(access.take("k".into(), limit).is_ok());
        }
        assert_eq!(access.take("k".into(), limit), Err(2));
        assert!(
            access.take("other".into(), limit).is_ok(),
            "buckets are per name"
        );
    }
}
