//! The HTTP API in process: every request goes through the real router (with its
//! body limit and metrics middleware) via `tower::ServiceExt::oneshot`, against a
//! real engine on a temporary data directory.

// Test helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use flywheel_engine::{Engine, EngineConfig};
use flywheel_server::{router, ServerOptions};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

fn config(dir: &Path) -> EngineConfig {
    let mut config = EngineConfig {
        data_dir: dir.to_path_buf(),
        ..Default::default()
    };
    config.log.fsync = false;
    // Debug builds are slow; a deadline must never change what a test sees.
    config.deadlines.retrieval_ms = 600_000;
    config.deadlines.ranking_ms = 600_000;
    config
}

struct Api {
    _dir: tempfile::TempDir,
    engine: Arc<Engine>,
    app: Router,
}

fn api_with(options: ServerOptions) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(config(dir.path())).unwrap());
    let app = router(Arc::clone(&engine), options);
    Api {
        _dir: dir,
        engine,
        app,
    }
}

fn api() -> Api {
    api_with(ServerOptions::default())
}

/// A response: status, content type and body (JSON when it parses, else a string).
struct Reply {
    status: StatusCode,
    content_type: String,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text))
    }

    /// Asserts the uniform error shape and returns the error object.
    fn error(&self, status: StatusCode, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert!(
            self.content_type.starts_with("application/json"),
            "error content type {}",
            self.content_type
        );
        let body = self.json();
        let object = body.as_object().expect("error body is an object");
        assert_eq!(object.len(), 1, "only `error` at the top: {body}");
        let error = &body["error"];
        assert_eq!(error["code"], code, "{body}");
        let message = error["message"].as_str().expect("message is a string");
        assert!(!message.is_empty());
        error.clone()
    }
}

impl Api {
    async fn send(
        &self,
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let response = self
            .app
            .clone()
            .oneshot(request.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            content_type,
            text: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    async fn get(&self, uri: &str) -> Reply {
        self.send(Method::GET, uri, None, Body::empty()).await
    }

    async fn post_json(&self, uri: &str, body: &Value) -> Reply {
        self.send(
            Method::POST,
            uri,
            Some("application/json"),
            body.to_string(),
        )
        .await
    }

    async fn put_json(&self, uri: &str, body: &Value) -> Reply {
        self.send(Method::PUT, uri, Some("application/json"), body.to_string())
            .await
    }

    fn end(&self) -> u64 {
        self.engine.log_end_offset()
    }
}

fn view(user: &str, item: &str) -> Value {
    json!({"user_id": user, "item_id": item, "action": "view"})
}

#[tokio::test(flavor = "multi_thread")]
async fn events_are_accepted_as_object_array_and_ndjson() {
    let api = api();
    let reply = api.post_json("/v1/events", &view("u1", "i1")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.json(),
        json!({"accepted": 1, "first_offset": 0, "last_offset": 0})
    );
    assert_eq!(api.end(), 1);

    let batch = json!([view("u1", "i2"), {"user_id": "u2", "item_id": "i1", "action": "purchase", "value": 9.5, "timestamp": "2026-01-05T10:00:00Z"}]);
    let reply = api.post_json("/v1/events", &batch).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.json(),
        json!({"accepted": 2, "first_offset": 1, "last_offset": 2})
    );

    let ndjson = format!(
        "{}\n\n{}\n{}\n",
        view("u3", "i1"),
        view("u3", "i2"),
        view("u3", "i3")
    );
    let reply = api
        .send(
            Method::POST,
            "/v1/events",
            Some("application/x-ndjson"),
            ndjson,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.json(),
        json!({"accepted": 3, "first_offset": 3, "last_offset": 5})
    );

    let reply = api
        .post_json("/v1/events:batch", &json!([view("u4", "i4")]))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(api.end(), 7);

    // Acknowledged events reach the features.
    api.engine.catch_up();
    let user = flywheel_core::UserId::new_unchecked("u3");
    let features = api
        .engine
        .state()
        .features
        .user_features(&user, flywheel_core::Timestamp::now());
    assert_eq!(features.event_count, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_with_one_bad_event_stores_nothing() {
    let api = api();
    api.post_json("/v1/events", &view("u0", "i0")).await;
    let before = api.end();
    let batch = json!([
        view("u1", "i1"),
        {"user_id": "u1", "item_id": "i2", "action": "teleport"},
        view("u1", "i3"),
        {"item_id": "i4", "action": "view"},
    ]);
    let reply = api.post_json("/v1/events", &batch).await;
    let error = reply.error(StatusCode::BAD_REQUEST, "invalid_event");
    let details = error["details"]
        .as_array()
        .expect("details list the bad events");
    assert_eq!(details.len(), 2, "{error}");
    assert_eq!(details[0]["index"], 1);
    assert_eq!(details[0]["field"], "action");
    assert_eq!(details[1]["index"], 3);
    assert_eq!(details[1]["field"], "user_id");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("none were stored"),
        "{error}"
    );
    assert_eq!(api.end(), before, "nothing of a rejected batch is stored");

    // The same in NDJSON.
    let ndjson = format!(
        "{}\n{{\"user_id\":\"u\",\"item_id\":\"i\",\"action\":\"view\",\"colour\":\"red\"}}\n",
        view("u1", "i1")
    );
    let reply = api
        .send(
            Method::POST,
            "/v1/events",
            Some("application/x-ndjson"),
            ndjson,
        )
        .await;
    let error = reply.error(StatusCode::BAD_REQUEST, "invalid_event");
    assert_eq!(error["details"][0]["index"], 1);
    assert_eq!(error["details"][0]["field"], "colour");
    assert_eq!(api.end(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_event_bodies_are_400_with_the_field() {
    let api = api();
    let cases = [
        (
            json!({"user_id": "u", "item_id": "i", "action": "view", "colour": "red"}),
            "colour",
        ),
        (
            json!({"user_id": "u", "item_id": "i", "action": "fly"}),
            "action",
        ),
        (json!({"item_id": "i", "action": "view"}), "user_id"),
        (
            json!({"user_id": "u", "item_id": "i", "action": "view", "timestamp": "soon"}),
            "timestamp",
        ),
    ];
    for (body, field) in cases {
        let reply = api.post_json("/v1/events", &body).await;
        let error = reply.error(StatusCode::BAD_REQUEST, "invalid_event");
        assert!(
            error["message"].as_str().unwrap().contains(field),
            "{error}"
        );
        assert_eq!(error["details"][0]["field"], field, "{error}");
        assert_eq!(error["details"][0]["index"], 0);
    }
    let reply = api
        .send(
            Method::POST,
            "/v1/events",
            Some("application/json"),
            "{\"user_id\": ",
        )
        .await;
    reply.error(StatusCode::BAD_REQUEST, "malformed_json");
    let reply = api
        .send(
            Method::POST,
            "/v1/events",
            Some("application/x-ndjson"),
            "{\"user_id\":\"u\"\nnot json\n",
        )
        .await;
    reply.error(StatusCode::BAD_REQUEST, "malformed_json");
    api.post_json("/v1/events", &json!([]))
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_event");
    api.post_json("/v1/events", &json!(42))
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_event");
    api.send(Method::POST, "/v1/events", None, Body::empty())
        .await
        .error(StatusCode::BAD_REQUEST, "malformed_json");
    assert_eq!(api.end(), 0, "no invalid request stored anything");
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_the_limit_are_413() {
    let api = api_with(ServerOptions {
        max_body_bytes: 200,
        ..ServerOptions::default()
    });
    let small = json!([view("u1", "i1")]);
    assert_eq!(
        api.post_json("/v1/events", &small).await.status,
        StatusCode::OK
    );
    let big: Vec<Value> = (0..20).map(|i| view("u1", &format!("item-{i}"))).collect();
    let body = Value::Array(big);
    assert!(body.to_string().len() > 200);
    let before = api.end();
    let error = api
        .post_json("/v1/events", &body)
        .await
        .error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    assert!(
        error["message"].as_str().unwrap().contains("200"),
        "{error}"
    );
    assert_eq!(api.end(), before);
    let item = json!({"category": "books", "text": "x".repeat(400)});
    api.put_json("/v1/items/big", &item)
        .await
        .error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");

    let limited = api_with(ServerOptions {
        max_batch_events: 2,
        ..ServerOptions::default()
    });
    let three = json!([view("u", "a"), view("u", "b"), view("u", "c")]);
    limited
        .post_json("/v1/events", &three)
        .await
        .error(StatusCode::BAD_REQUEST, "batch_too_large");
    assert_eq!(limited.end(), 0);
}

/// Twelve items in two categories and some history for `shopper`.
async fn small_shop(api: &Api) {
    for i in 0..12 {
        let category = if i % 2 == 0 {
            "books/scifi"
        } else {
            "music/jazz"
        };
        let item = json!({"category": category, "title": format!("Item {i}"), "tags": [format!("t{}", i % 3)]});
        let reply = api.put_json(&format!("/v1/items/i{i}"), &item).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    let mut events = Vec::new();
    for u in 0..6 {
        for i in 0..6 {
            if (u + i) % 3 != 0 {
                events.push(json!({"user_id": format!("u{u}"), "item_id": format!("i{i}"), "action": "click"}));
            }
        }
    }
    events.push(view("shopper", "i0"));
    events.push(view("shopper", "i1"));
    events.push(json!({"user_id": "shopper", "item_id": "i2", "action": "purchase"}));
    let reply = api.post_json("/v1/events", &Value::Array(events)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    api.engine.catch_up();
}

#[tokio::test(flavor = "multi_thread")]
async fn recommendations_validate_parameters_and_answer_the_wire_shape() {
    let api = api();
    small_shop(&api).await;
    let reply = api.get("/v1/recommendations?user_id=shopper&count=5").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = reply.json();
    let request_id = body["request_id"].as_str().unwrap();
    assert_eq!(request_id.len(), 32);
    assert!(request_id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(body["user_id"], "shopper");
    assert_eq!(body["model_version"], "none");
    assert_eq!(body["fallback"], true, "no models are trained");
    assert!(!body["fallback_reasons"].as_array().unwrap().is_empty());
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    for (index, item) in items.iter().enumerate() {
        let id = item["item_id"].as_str().unwrap();
        // The spec asks to drop bought items (also from the popular top-up).
        assert!(
            id.starts_with('i') && id != "i2",
            "bought item recommended: {id} in {body}"
        );
        assert!(item["score"].as_f64().unwrap().is_finite());
        assert_eq!(item["position"], index);
        assert!(
            flywheel_core::Channel::parse(item["channel"].as_str().unwrap()).is_some(),
            "{item}"
        );
        assert!(!item["explanation"].as_str().unwrap().is_empty());
        assert!(item.get("reason").is_some());
    }

    let default = api.get("/v1/recommendations?user_id=stranger").await.json();
    assert_eq!(
        default["items"].as_array().unwrap().len(),
        10,
        "count defaults to 10"
    );
    let books = api
        .get("/v1/recommendations?user_id=stranger&category=books&count=3")
        .await
        .json();
    let books = books["items"].as_array().unwrap();
    assert_eq!(books.len(), 3);
    for item in books {
        let id = item["item_id"].as_str().unwrap();
        let number: u32 = id[1..].parse().unwrap();
        assert_eq!(number % 2, 0, "{id} is not in books");
    }

    for uri in [
        "/v1/recommendations",
        "/v1/recommendations?count=5",
        "/v1/recommendations?user_id=",
        "/v1/recommendations?user_id=u1&count=0",
        "/v1/recommendations?user_id=u1&count=1000",
        "/v1/recommendations?user_id=u1&count=-1",
        "/v1/recommendations?user_id=u1&count=ten",
        "/v1/recommendations?user_id=u1&colour=red",
    ] {
        let error = api
            .get(uri)
            .await
            .error(StatusCode::BAD_REQUEST, "invalid_parameter");
        let message = error["message"].as_str().unwrap();
        let named = ["user_id", "count", "colour"]
            .iter()
            .any(|p| message.contains(p));
        assert!(named, "{uri}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn items_and_users_round_trip() {
    let api = api();
    let item = json!({"category": "books/scifi", "price": 9.5, "tags": ["space"], "title": "Dune", "attributes": {"author": "Herbert"}});
    let put = api.put_json("/v1/items/dune", &item).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    let put = put.json();
    assert_eq!(put["id"], "dune");
    assert_eq!(put["category"], "books/scifi");
    assert_eq!(put["price"], 9.5);
    let got = api.get("/v1/items/dune").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json(), put);
    // PUT replaces.
    let changed = api
        .put_json(
            "/v1/items/dune",
            &json!({"id": "dune", "category": "books", "available": false}),
        )
        .await
        .json();
    assert_eq!(api.get("/v1/items/dune").await.json(), changed);
    assert_eq!(changed["available"], false);
    api.put_json(
        "/v1/items/dune",
        &json!({"id": "other", "category": "books"}),
    )
    .await
    .error(StatusCode::BAD_REQUEST, "invalid_item");
    api.put_json("/v1/items/dune", &json!({"category": "books", "colour": 1}))
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_item");
    api.put_json("/v1/items/dune", &json!({"price": -1}))
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_item");
    api.send(Method::PUT, "/v1/items/dune", Some("application/json"), "{")
        .await
        .error(StatusCode::BAD_REQUEST, "malformed_json");
    assert_eq!(
        api.get("/v1/items/dune").await.json(),
        changed,
        "failed PUTs change nothing"
    );
    let deleted = api
        .send(Method::DELETE, "/v1/items/dune", None, Body::empty())
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.text.is_empty());
    api.get("/v1/items/dune")
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    api.send(Method::DELETE, "/v1/items/dune", None, Body::empty())
        .await
        .error(StatusCode::NOT_FOUND, "not_found");

    let user = json!({"attributes": {"country": "NL"}, "opted_out": true});
    let put = api.put_json("/v1/users/ann", &user).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    let put = put.json();
    assert_eq!(put["id"], "ann");
    assert_eq!(put["opted_out"], true);
    assert_eq!(api.get("/v1/users/ann").await.json(), put);
    api.put_json("/v1/users/ann", &json!({"id": "bob"}))
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_user");
    assert_eq!(api.get("/v1/users/ann").await.json(), put);
    let deleted = api
        .send(Method::DELETE, "/v1/users/ann", None, Body::empty())
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    api.get("/v1/users/ann")
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    api.get("/v1/users/nobody")
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_metrics_and_unknown_routes() {
    let api = api();
    let health = api.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "ok");
    // An empty log is ready at once.
    let ready = api.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.json()["status"], "ready");

    small_shop(&api).await;
    let reply = api.get("/v1/recommendations?user_id=shopper&count=3").await;
    assert_eq!(reply.status, StatusCode::OK);
    api.get("/v1/recommendations?user_id=shopper&count=0").await;

    api.get("/v1/nothing-here")
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    api.send(Method::DELETE, "/v1/recommendations", None, Body::empty())
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    api.send(Method::GET, "/v1/events", None, Body::empty())
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");

    let metrics = api.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics.content_type.starts_with("text/plain"),
        "{}",
        metrics.content_type
    );
    let text = &metrics.text;
    for line in [
        "flywheel_http_requests_total{method=\"GET\",route=\"/v1/recommendations\",status=\"200\"} 1",
        "flywheel_http_requests_total{method=\"GET\",route=\"/v1/recommendations\",status=\"400\"} 1",
        "flywheel_http_requests_total{method=\"PUT\",route=\"/v1/items/{id}\",status=\"200\"} 12",
        "flywheel_http_requests_total{method=\"POST\",route=\"/v1/events\",status=\"200\"} 1",
        "flywheel_recommendations_total 1",
        "flywheel_fallbacks_total 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
    }
    assert!(
        text.lines().any(|l| l.starts_with("flywheel_http_requests_total{") && l.contains("status=\"404\"")),
        "unknown routes are counted\n{text}"
    );
    assert!(
        text.contains("flywheel_stage_duration_seconds_bucket{stage=\"retrieval\",le="),
        "{text}"
    );
    assert!(
        text.contains("flywheel_stage_duration_seconds_bucket{stage=\"total\",le=\"+Inf\"} 1"),
        "{text}"
    );
    assert!(text.contains("# TYPE flywheel_stage_duration_seconds histogram"));
    // Every sample line is `name{labels} value` or `name value` with a numeric value.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad sample line `{line}`");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reopened_engine_is_ready_after_catching_up() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(config(dir.path())).unwrap();
        let events: Vec<_> = (0..50)
            .map(|i| {
                engine
                    .parse_event(
                        &view("u", &format!("i{i}")),
                        flywheel_core::Timestamp::now(),
                    )
                    .unwrap()
            })
            .collect();
        engine.ingest(events).unwrap();
    }
    let engine = Arc::new(Engine::open(config(dir.path())).unwrap());
    let app = router(Arc::clone(&engine), ServerOptions::default());
    engine.catch_up();
    // `catch_up` returns once `applied` is published; the consumer raises the
    // ready flag just after (engine.rs `publish_applied`), so wait for the flag.
    let started = Instant::now();
    while !engine.is_ready() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "caught up but never ready"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let request = Request::get("/readyz").body(Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body, json!({"status": "ready", "consumer_lag": 0}));
}

/// Regression: the popular top-up of a short list used to put back an item the user
/// had just viewed (retrieval excluded it, `fill_with_popular` did not) while
/// never-seen catalog items were still available.
#[tokio::test(flavor = "multi_thread")]
async fn the_popular_top_up_does_not_repeat_what_the_user_just_viewed() {
    let api = api();
    small_shop(&api).await;
    let body = api
        .get("/v1/recommendations?user_id=shopper&count=8")
        .await
        .json();
    for item in body["items"].as_array().unwrap() {
        let id = item["item_id"].as_str().unwrap();
        assert!(
            id != "i0" && id != "i1",
            "viewed item {id} recommended: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn opting_out_makes_lists_non_personal_and_is_stored() {
    let api = api();
    small_shop(&api).await;
    let reply = api.post_json("/v1/users/u1/opt-out", &json!({})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["opted_out"], true);
    assert_eq!(api.get("/v1/users/u1").await.json()["opted_out"], true);
    let list = api
        .get("/v1/recommendations?user_id=u1&count=5")
        .await
        .json();
    for item in list["items"].as_array().expect("items") {
        let channel = item["channel"].as_str().unwrap();
        assert!(["popularity", "trending"].contains(&channel), "{list}");
    }
    api.post_json("/v1/users/%20/opt-out", &json!({}))
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_id");
}

/// Polls a job until it ends; returns its final status.
async fn finished_job(api: &Api, id: &str) -> Value {
    for _ in 0..2400 {
        let job = api.get(&format!("/v1/jobs/{id}")).await.json();
        if matches!(job["state"].as_str(), Some("succeeded" | "failed")) {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("job {id} did not finish in 120 s");
}

/// Training runs as a background job: 202 with its id, 409 (naming it) for a second
/// one while it runs, progress and the gate's decision at `/v1/jobs/:id`.
async fn train_job(api: &Api, force: bool) -> Value {
    let reply = api
        .post_json(&format!("/v1/models/train?force={force}"), &json!({}))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    let id = reply.json()["id"].as_str().unwrap().to_string();
    let busy = api.post_json("/v1/models/train", &json!({})).await;
    if busy.status == StatusCode::CONFLICT {
        assert_eq!(busy.json()["error"]["job_id"], id.as_str(), "{}", busy.text);
    } else {
        // The job may already have finished on a fast machine; then a second one starts.
        assert_eq!(busy.status, StatusCode::ACCEPTED, "{}", busy.text);
        let other = busy.json()["id"].as_str().unwrap().to_string();
        finished_job(api, &other).await;
    }
    let job = finished_job(api, &id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    job
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_serves_the_previous_version() {
    let api = api();
    small_shop(&api).await;
    api.post_json("/v1/models/rollback", &json!({}))
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    api.get("/v1/jobs/nope")
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    let first = train_job(&api, false).await;
    assert_eq!(first["result"]["promoted"], true, "{first}");
    // Nothing new since the first version: only --force gets a second one serving.
    let second = train_job(&api, true).await;
    let v2 = second["result"]["version"].as_str().unwrap().to_string();
    assert_eq!(second["result"]["promoted"], true, "{second}");
    assert_eq!(api.engine.models().version(), v2);
    let reply = api.post_json("/v1/models/rollback", &json!({})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let v1 = first["result"]["version"].as_str().unwrap();
    assert_eq!(reply.json()["serving"], v1);
    assert_eq!(api.engine.models().version(), v1);
    let listing = api.get("/v1/models").await.json();
    assert_eq!(listing["serving"], v1);
    let statuses: Vec<(String, String)> = listing["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].to_string(), v["status"].to_string()))
        .collect();
    assert!(
        statuses.contains(&(format!("\"{v1}\""), "\"serving\"".into())),
        "{listing}"
    );
    // v1 is the oldest: nothing to roll back to.
    api.post_json("/v1/models/rollback", &json!({}))
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
}
