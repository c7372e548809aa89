//! The controller routes: `POST /v1/controller/step` on a simulated clock opens the
//! circuit breaker on a stream of unknown items, `GET /v1/controller` shows it with
//! its evidence, training is refused with a 409 while it is open, `/metrics` counts
//! the decisions, both routes need the `admin` scope, and a restart keeps the
//! breaker open and the decisions.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use flywheel_engine::{Engine, EngineConfig};
use flywheel_server::keys::{key_file, parse_scopes, KeyStore};
use flywheel_server::{router, ServerOptions};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

use super::{send_to, Reply};

const T0: i64 = 1_800_000_000;

fn controller_config(dir: &Path) -> EngineConfig {
    let mut config = super::config(dir);
    config.controller.quality.min_events = 20;
    config
}

fn app(engine: &Arc<Engine>) -> axum::Router {
    router(
        Arc::clone(engine),
        ServerOptions {
            simulated_clock: true,
            ..ServerOptions::default()
        },
    )
}

fn request(method: Method, uri: &str, key: &str, body: Option<Value>) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {key}"));
    let body = match body {
        Some(value) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Body::from(value.to_string())
        }
        None => Body::empty(),
    };
    builder.body(body).unwrap()
}

/// Events naming items the (empty) catalog does not know, in `[from, from + n)` s.
fn unknown_item_events(from: i64, n: i64) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                json!({"user_id": format!("u{}", i % 7), "item_id": format!("ghost-{i}"),
                       "action": "view", "timestamp": from + i,
                       "context": {"device": "mobile"}})
            })
            .collect(),
    )
}

async fn step(app: &axum::Router, key: &str, at: i64) -> Reply {
    let uri = format!("/v1/controller/step?now={at}");
    send_to(app, request(Method::POST, &uri, key, None)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_breach_opens_the_breaker_training_is_409_and_a_restart_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_file(dir.path());
    let mut store = KeyStore::load(&path).unwrap();
    let admin = store
        .create("admin", parse_scopes("admin").unwrap(), "t".into())
        .unwrap();
    let reader = store
        .create("reader", parse_scopes("read").unwrap(), "t".into())
        .unwrap();
    store.save(&path).unwrap();
    let engine = Arc::new(Engine::open(controller_config(dir.path())).unwrap());
    let api = app(&engine);

    // Both routes are the administrator's.
    for (method, uri) in [
        (Method::GET, "/v1/controller"),
        (Method::POST, "/v1/controller/step"),
    ] {
        let reply = send_to(&api, request(method.clone(), uri, &reader, None)).await;
        reply.error(StatusCode::FORBIDDEN, "forbidden");
    }
    let empty = send_to(&api, request(Method::GET, "/v1/controller", &admin, None)).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.text);
    let empty = empty.json();
    assert_eq!(empty["mode"], "active", "{empty}");
    assert_eq!(empty["paused"], false);
    assert_eq!(empty["decisions"], json!([]));

    let events = unknown_item_events(T0, 100);
    let reply = send_to(
        &api,
        request(Method::POST, "/v1/events", &admin, Some(events)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    engine.catch_up();
    // Two breaching observations in a row open the breaker (hysteresis).
    let first = step(&api, &admin, T0 + 100).await.json();
    assert_eq!(first["step"], json!([]), "{first}");
    let second = step(&api, &admin, T0 + 200).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    let second = second.json();
    let decision = &second["step"][0];
    assert_eq!(decision["action"], "pause_training", "{second}");
    assert_eq!(decision["outcome"], "taken", "{second}");
    assert_eq!(decision["rule"], "data_quality_breach");
    assert_eq!(
        decision["evidence"]["unknown_item_share"], 1.0,
        "{decision}"
    );
    assert_eq!(decision["thresholds"]["unknown_item_share"], "> 0.050");
    assert_eq!(second["paused"], true);
    assert_eq!(second["breaches"][0]["until"], Value::Null);

    let train = send_to(
        &api,
        request(Method::POST, "/v1/models/train", &admin, Some(json!({}))),
    )
    .await;
    let error = train.error(StatusCode::CONFLICT, "training_paused");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("circuit breaker"),
        "{error}"
    );
    // A bad `now` names the parameter.
    let bad = send_to(
        &api,
        request(Method::POST, "/v1/controller/step?now=soon", &admin, None),
    )
    .await;
    bad.error(StatusCode::BAD_REQUEST, "invalid_parameter");

    let metrics = send_to(&api, request(Method::GET, "/metrics", &admin, None)).await;
    assert!(
        metrics.text.contains(
            "flywheel_controller_decisions_total{action=\"pause_training\",outcome=\"taken\"} 1"
        ),
        "{}",
        metrics.text
    );
    assert!(metrics
        .text
        .contains("flywheel_controller_training_paused 1"));

    // A restart in the middle of the breach keeps training paused and the decisions.
    drop(api);
    drop(Arc::try_unwrap(engine).ok().expect("the only handle"));
    let engine = Arc::new(Engine::open(controller_config(dir.path())).unwrap());
    assert!(engine.training_paused());
    let api = app(&engine);
    let shown = send_to(&api, request(Method::GET, "/v1/controller", &admin, None))
        .await
        .json();
    assert_eq!(shown["paused"], true, "{shown}");
    assert_eq!(shown["decisions"][0]["action"], "pause_training", "{shown}");
    assert!(engine.train(false, &mut |_| {}).is_err());
}
