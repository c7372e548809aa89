//! `GET /v1/monitoring` and its gauges: the shape other parts read, refused events
//! counted by reason, "no reference" before training and a comparison after it.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::{api, small_shop, train_job, view};

#[tokio::test(flavor = "multi_thread")]
async fn monitoring_reports_its_window_refusals_and_reference() {
    let api = api();
    small_shop(&api).await;
    let before = api.get("/v1/monitoring").await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.text);
    let report = before.json();
    for key in [
        "window",
        "reference_version",
        "features",
        "prediction",
        "data_quality",
        "freshness",
    ] {
        assert!(report.get(key).is_some(), "`{key}` missing: {report}");
    }
    for key in ["from", "to", "events", "impressions"] {
        assert!(
            report["window"].get(key).is_some(),
            "window.{key}: {report}"
        );
    }
    for key in [
        "mean_predicted_ctr",
        "observed_ctr",
        "observed_over_expected",
        "band",
        "finalized_impressions",
    ] {
        assert!(report["prediction"].get(key).is_some(), "prediction.{key}");
    }
    assert_eq!(report["reference_version"], Value::Null);
    assert!(report["reference_status"]
        .as_str()
        .unwrap()
        .starts_with("no reference"));
    assert_eq!(report["window"]["events"], 27, "{report}");
    assert!(report["window"]["from"].as_str().unwrap().ends_with('Z'));

    // A refused batch: one unknown action, one missing field, two valid events.
    let batch = json!([
        view("u1", "i1"),
        {"user_id": "u1", "item_id": "i2", "action": "teleport"},
        view("u1", "i3"),
        {"item_id": "i4", "action": "view"},
    ]);
    let reply = api.post_json("/v1/events", &batch).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let quality = api.get("/v1/monitoring").await.json()["data_quality"].clone();
    let rejected = &quality["rejected_events"];
    assert_eq!(rejected["missing_field"], 1, "{quality}");
    assert_eq!(rejected["in_a_rejected_batch"], 2, "{quality}");
    assert_eq!(
        rejected
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        4,
        "{quality}"
    );
    assert!(quality["rejected_share"].as_f64().unwrap() > 0.0);

    train_job(&api, true).await;
    let after = api.get("/v1/monitoring").await.json();
    assert_eq!(after["reference_status"], "ok", "{after}");
    let features = after["features"].as_array().unwrap();
    assert!(!features.is_empty(), "{after}");
    for feature in features {
        for key in ["name", "kind", "statistic", "value", "threshold", "drifted"] {
            assert!(feature.get(key).is_some(), "{key}: {feature}");
        }
        let kind = feature["kind"].as_str().unwrap();
        let statistic = feature["statistic"].as_str().unwrap();
        assert!(
            matches!(
                (kind, statistic),
                ("numeric", "ks" | "psi") | ("categorical", "psi")
            ),
            "{feature}"
        );
    }

    // Latency per stage: three served lists are three observations of each stage.
    for _ in 0..3 {
        let reply = api.get("/v1/recommendations?user_id=u1&count=3").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    let latency = api.get("/v1/monitoring").await.json()["latency"].clone();
    let stages: Vec<&str> = latency
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["retrieval", "ranking", "rerank", "total", "feature_update"],
        "{latency}"
    );
    assert!(latency[3]["count"].as_u64().unwrap() >= 3, "{latency}");
    assert!(latency[3]["p99_ms"].as_f64().unwrap() > 0.0, "{latency}");

    let metrics = api.get("/metrics").await.text;
    assert!(
        metrics.contains("flywheel_monitor_reference_present 1"),
        "{metrics}"
    );
    assert!(metrics.contains("flywheel_monitor_unknown_item_share "));
    assert!(metrics.contains("flywheel_monitor_feature_drifted{feature=\"event_action\""));
}
