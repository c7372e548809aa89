//! The model routes over HTTP: a canary started, ramped, promoted and rolled back in
//! one call each, all of it visible in `GET /v1/models` with who did it; bad bodies
//! and versions that do not load are 400s that change nothing.

use super::{api, Api};
use axum::http::StatusCode;
use flywheel_core::Timestamp;
use flywheel_engine::ModelSet;
use flywheel_pipeline::Manifest;
use flywheel_registry as registry;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Registers an empty version (it serves the fallback channels).
fn register(api: &Api) -> String {
    let dir = &api.engine.config().data_dir;
    let version = registry::reserve_version(dir).unwrap();
    let manifest = Manifest {
        version: version.clone(),
        trained_at: Timestamp::from_secs(1),
        log_records: 0,
        interactions: 0,
        ranker_rows: 0,
        models: Vec::new(),
        fusion_weights: BTreeMap::new(),
        trained_until: None,
        log_end_offset: None,
        config: None,
    };
    let set = ModelSet {
        manifest: Some(manifest),
        ..ModelSet::default()
    };
    registry::save(dir, &set).unwrap();
    version
}

fn version<'a>(listing: &'a Value, name: &str) -> &'a Value {
    listing["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["version"] == name)
        .unwrap_or_else(|| panic!("{name} listed: {listing}"))
}

fn last_action(listing: &Value, name: &str) -> (String, String) {
    let last = version(listing, name)["lineage"]["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    (
        last["action"].as_str().unwrap().into(),
        last["by"].as_str().unwrap().into(),
    )
}

#[tokio::test]
async fn a_canary_is_started_promoted_and_rolled_back_in_one_call_each() {
    let api = api();
    let first = register(&api);
    let reply = api
        .post_json(&format!("/v1/models/{first}/promote"), &json!({}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let second = register(&api);
    let path = format!("/v1/models/{second}/canary");

    // Bad bodies and shares are refused and start nothing.
    for (body, code) in [
        (json!({}), "invalid_canary"),
        (json!({"share": "0.1"}), "invalid_canary"),
        (json!({"share": 0.1, "extra": 1}), "invalid_canary"),
        (json!([0.1]), "invalid_canary"),
        (json!({"share": 1.0}), "precondition_failed"),
        (json!({"share": -0.1}), "precondition_failed"),
    ] {
        api.post_json(&path, &body)
            .await
            .error(StatusCode::BAD_REQUEST, code);
    }
    api.post_json("/v1/models/v99/canary", &json!({"share": 0.1}))
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    assert!(api.get("/v1/models").await.json()["canary"].is_null());

    let reply = api.post_json(&path, &json!({"share": 0.25})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["canary"]["buckets"], 2_500);
    let listing = api.get("/v1/models").await.json();
    assert_eq!(listing["serving"], first.as_str());
    assert_eq!(listing["canary"]["version"], second.as_str());
    assert_eq!(version(&listing, &second)["status"], "canary");
    assert_eq!(version(&listing, &second)["canary_share"], 0.25);
    assert_eq!(
        last_action(&listing, &second),
        ("canary_started".into(), "api".into())
    );

    // Requests are counted per serving version.
    for i in 0..200 {
        let reply = api
            .get(&format!("/v1/recommendations?user_id=u{i}&count=3"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    let mut counted = 0;
    for _ in 0..200 {
        api.engine.catch_up();
        let listing = api.get("/v1/models").await.json();
        let requests = |name: &str| version(&listing, name)["served"]["requests"].as_u64();
        counted = requests(&first).unwrap_or(0) + requests(&second).unwrap_or(0);
        if counted == 200 {
            assert!(requests(&second).unwrap() > 20, "{listing}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(counted, 200, "every request is counted once");

    // Promote: one call, the canary ends and the version serves everyone.
    let reply = api
        .post_json(&format!("/v1/models/{second}/promote"), &json!({}))
        .await;
    assert_eq!(reply.json()["serving"], second.as_str(), "{}", reply.text);
    let listing = api.get("/v1/models").await.json();
    assert!(listing["canary"].is_null(), "{listing}");
    assert_eq!(version(&listing, &second)["status"], "serving");
    assert_eq!(version(&listing, &first)["status"], "retired");
    assert_eq!(version(&listing, &second)["canary_share"], Value::Null);

    // Roll back: one call, the canary ends and its version is marked rolled back.
    let third = register(&api);
    let reply = api
        .post_json(
            &format!("/v1/models/{third}/canary"),
            &json!({"share": 0.1}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let reply = api
        .post_json("/v1/models/canary/rollback", &json!({}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["rolled_back"], third.as_str());
    let listing = api.get("/v1/models").await.json();
    assert!(listing["canary"].is_null());
    assert_eq!(listing["serving"], second.as_str());
    assert_eq!(version(&listing, &third)["status"], "rolled_back");
    assert_eq!(
        last_action(&listing, &third),
        ("rolled_back".into(), "api".into())
    );
    api.post_json("/v1/models/canary/rollback", &json!({}))
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_version_that_does_not_load_is_refused_as_a_canary() {
    let api = api();
    let serving = register(&api);
    api.post_json(&format!("/v1/models/{serving}/promote"), &json!({}))
        .await;
    let broken = register(&api);
    let dir = registry::models_dir(&api.engine.config().data_dir).join(&broken);
    std::fs::write(dir.join("ranker.bin"), b"garbage").unwrap();
    let error = api
        .post_json(
            &format!("/v1/models/{broken}/canary"),
            &json!({"share": 0.5}),
        )
        .await
        .error(StatusCode::BAD_REQUEST, "precondition_failed");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("cannot serve as a canary"), "{message}");
    let listing = api.get("/v1/models").await.json();
    assert!(listing["canary"].is_null());
    assert_eq!(listing["serving"], serving.as_str());
    assert_eq!(version(&listing, &broken)["status"], "candidate");
}
