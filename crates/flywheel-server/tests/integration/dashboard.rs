//! The dashboard page at `/` and the document it polls, `GET /v1/overview`: the page
//! is self-contained (its policy forbids anything from elsewhere and it names no
//! outside URL), it stays open when keys are required, and the overview's figures
//! are the engine's counters, the registry and the experiments' own metrics.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};

use super::{api, small_shop, Api};

/// Every value of `attribute="…"` (or `'…'`) in `html`.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let mut values = Vec::new();
    for quote in ['"', '\''] {
        let marker = format!("{attribute}={quote}");
        for (start, _) in html.match_indices(&marker) {
            let rest = &html[start + marker.len()..];
            values.push(rest.split(quote).next().unwrap_or(rest));
        }
    }
    values
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_is_html_under_a_policy_that_forbids_every_outside_source() {
    let api = api();
    let reply = api.get("/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(
        reply.content_type.starts_with("text/html"),
        "{}",
        reply.content_type
    );
    let policy = reply
        .headers
        .get(header::CONTENT_SECURITY_POLICY)
        .expect("a Content-Security-Policy header")
        .to_str()
        .unwrap();
    for directive in [
        "default-src 'none'",
        "connect-src 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "`{directive}` in {policy}");
    }
    assert!(
        policy.contains("script-src 'sha256-") && !policy.contains("unsafe-inline"),
        "the inline script is allowed by its hash only: {policy}"
    );
    let html = &reply.text;
    assert!(html.contains("<script>") && html.contains("/v1/overview"));
    for attribute in ["src", "href", "action"] {
        for value in attribute_values(html, attribute) {
            let lower = value.to_ascii_lowercase();
            assert!(
                !lower.contains("//") && !lower.starts_with("http"),
                "{attribute}=\"{value}\" points outside the page"
            );
        }
    }
    let lower = html.to_ascii_lowercase();
    for needle in [
        "@import", "url(http", "url(//", "<iframe", "<object", "<embed",
    ] {
        assert!(!lower.contains(needle), "the page holds `{needle}`");
    }
    assert!(
        !lower.contains("src=\"http") && !lower.contains("href=\"http"),
        "no outside URL"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_server_gives_an_overview_of_zeroes() {
    let api = api();
    let reply = api.get("/v1/overview").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let o = reply.json();
    assert_eq!(o["serving"]["recommendations"], 0);
    assert_eq!(o["serving"]["latency"]["total"]["count"], 0);
    assert_eq!(o["serving"]["latency"]["total"]["p99_ms"], Value::Null);
    assert_eq!(o["ingestion"]["events_accepted"], 0);
    assert_eq!(o["ingestion"]["newest_event_time"], Value::Null);
    assert_eq!(o["models"]["serving"], "none", "as /v1/models says");
    assert_eq!(o["models"]["versions"], json!([]));
    assert_eq!(o["experiments"], json!([]));
}

async fn recommend(api: &Api, user: &str) -> Value {
    let reply = api
        .get(&format!("/v1/recommendations?user_id={user}&count=5"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_overview_counts_what_was_served_ingested_and_refused() {
    let api = api();
    small_shop(&api).await;
    let served = 7;
    let mut with_fallback = 0;
    for n in 0..served {
        let list = recommend(&api, &format!("u{n}")).await;
        with_fallback += u64::from(list["fallback"] == true);
    }
    let bad = api.get("/v1/recommendations?count=5").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    api.engine.catch_up();
    let o = api.get("/v1/overview").await.json();
    let serving = &o["serving"];
    assert_eq!(serving["recommendations"], served);
    assert_eq!(serving["fallbacks"], with_fallback);
    for stage in ["retrieval", "ranking", "rerank", "total"] {
        let latency = &serving["latency"][stage];
        assert_eq!(latency["count"], served, "{stage}: {latency}");
        let (p50, p99) = (
            latency["p50_ms"].as_f64().unwrap(),
            latency["p99_ms"].as_f64().unwrap(),
        );
        assert!(0.0 <= p50 && p50 <= p99, "{stage}: {latency}");
    }
    // No model is trained: every list falls back, and each says why.
    assert_eq!(with_fallback, served);
    assert_eq!(serving["fallbacks_by_reason"]["no_ranker"], served);
    assert_eq!(serving["fallbacks_by_reason"]["other"], 0);
    let http = &o["http"];
    assert!(http["by_status"]["400"].as_u64().unwrap() >= 1, "{http}");
    assert!(http["by_class"]["4xx"].as_u64().unwrap() >= 1, "{http}");
    assert_eq!(http["by_class"]["5xx"], 0);
    let ingestion = &o["ingestion"];
    // The shop's 24 clicks and 3 events of `shopper`.
    assert_eq!(ingestion["events_accepted"], 27);
    // The impression writer appends off the request path, so the log may have grown
    // since the overview was read: its end is at most today's, its applied offset at most
    // its end.
    let (end, applied) = (
        ingestion["log_end_offset"].as_u64().unwrap(),
        ingestion["applied_offset"].as_u64().unwrap(),
    );
    assert!(applied <= end && end <= api.end(), "{ingestion}");
    assert!(end >= 27, "at least the accepted events: {ingestion}");
    assert!(ingestion["newest_event_time"].is_string(), "{ingestion}");
    let freshness = ingestion["freshness_secs"].as_f64().unwrap();
    assert!(
        (0.0..3600.0).contains(&freshness),
        "events stamped now are fresh: {freshness}"
    );
    assert_eq!(ingestion["ready"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn running_experiments_show_the_figures_of_their_metrics_route() {
    let api = api();
    small_shop(&api).await;
    let definition = json!({"id": "exp-d", "kind": "ab", "salt": "exp-d", "variants": [
        {"name": "control", "share": 0.5}, {"name": "treatment", "share": 0.5}]});
    let reply = api.post_json("/v1/experiments", &definition).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let mut clicks = Vec::new();
    for n in 0..40 {
        let list = recommend(&api, &format!("visitor{n}")).await;
        if n % 3 == 0 {
            clicks.push(
                json!({"user_id": format!("visitor{n}"), "item_id": list["items"][0]["item_id"],
                "action": "click", "request_id": list["request_id"]}),
            );
        }
    }
    let reply = api.post_json("/v1/events", &Value::Array(clicks)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    api.engine.catch_up();
    let metrics = api.get("/v1/experiments/exp-d/metrics").await.json();
    let o = api.get("/v1/overview").await.json();
    let experiments = o["experiments"].as_array().unwrap();
    assert_eq!(experiments.len(), 1);
    let shown = &experiments[0];
    assert_eq!(shown["id"], "exp-d");
    assert_eq!(shown["kind"], "ab");
    assert_eq!(
        shown["metrics"], metrics,
        "the metrics route's figures, unchanged"
    );
    let comparison = &metrics["comparisons"]["treatment"];
    let headline = &shown["headline"][0];
    assert_eq!(headline["variant"], "treatment");
    for field in ["effect", "ci_low", "ci_high", "p_value"] {
        assert_eq!(headline[field], comparison[field], "{field}");
    }
    let reply = api
        .send(
            Method::POST,
            "/v1/experiments/exp-d/stop",
            None,
            Body::empty(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let o = api.get("/v1/overview").await.json();
    assert_eq!(o["experiments"], json!([]), "only running experiments");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_keys_the_page_stays_open_and_the_overview_needs_the_read_scope() {
    use flywheel_server::keys::{key_file, parse_scopes, KeyStore};
    let api = api();
    let path = key_file(&api.engine.config().data_dir);
    let mut store = KeyStore::load(&path).unwrap();
    let reader = store
        .create("reader", parse_scopes("read").unwrap(), "t".into())
        .unwrap();
    let ingest = store
        .create("ingest", parse_scopes("events").unwrap(), "t".into())
        .unwrap();
    store.save(&path).unwrap();
    let get = |uri: &str, key: Option<&str>| {
        let mut request = Request::builder().method(Method::GET).uri(uri);
        if let Some(key) = key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        request.body(Body::empty()).unwrap()
    };
    let page = api.request(get("/", None)).await;
    assert_eq!(page.status, StatusCode::OK, "the page holds no data");
    api.request(get("/v1/overview", None))
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    api.request(get("/v1/overview", Some(&ingest)))
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    let reply = api.request(get("/v1/overview", Some(&reader))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}
