//! `/metrics` in the Prometheus text format, and the middleware that counts HTTP
//! requests per route and status.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use flywheel_engine::{EngineStats, Histogram};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use crate::routes::AppState;

/// Requests per (method, route, status) and latency per route. Every label has a
/// bounded set of values: methods outside the standard ones count as `other`, and
/// requests no route matched as `unmatched`.
#[derive(Default)]
pub(crate) struct HttpStats {
    requests: Mutex<BTreeMap<(&'static str, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, std::sync::Arc<Histogram>>>,
}

impl HttpStats {
    /// Requests answered per status code, over every method and route.
    pub(crate) fn by_status(&self) -> BTreeMap<u16, u64> {
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let mut by_status = BTreeMap::new();
        for ((_, _, status), count) in requests.iter() {
            *by_status.entry(*status).or_default() += count;
        }
        by_status
    }
}

/// The method as a label: a standard method, or `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Middleware: times and counts every request by its matched route.
pub(crate) async fn track(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    {
        let mut requests = app.http.requests.lock().unwrap_or_else(|e| e.into_inner());
        *requests.entry((method, route.clone(), status)).or_default() += 1;
    }
    let histogram = {
        let mut latency = app.http.latency.lock().unwrap_or_else(|e| e.into_inner());
        std::sync::Arc::clone(latency.entry(route).or_default())
    };
    histogram.observe(started.elapsed());
    response
}

fn write_histogram(out: &mut String, name: &str, labels: &str, histogram: &Histogram) {
    let (buckets, count, sum) = histogram.snapshot();
    let sep = if labels.is_empty() { "" } else { "," };
    for (bound, cumulative) in buckets {
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
        );
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
}

fn header_line(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header_line(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    header_line(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

/// Renders every metric.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics (open: no key needed)",
    responses((status = 200, description = "The text exposition format", content_type = "text/plain; version=0.0.4", body = String))
)]
pub(crate) async fn render(State(app): State<AppState>) -> Response {
    let mut out = String::with_capacity(8192);
    let engine = &app.engine;
    let stats = engine.stats();
    header_line(
        &mut out,
        "flywheel_http_requests_total",
        "counter",
        "HTTP requests by method, route and status.",
    );
    for ((method, route, status), count) in app
        .http
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        let _ = writeln!(out, "flywheel_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}");
    }
    header_line(
        &mut out,
        "flywheel_http_request_duration_seconds",
        "histogram",
        "HTTP request latency by route.",
    );
    for (route, histogram) in app
        .http
        .latency
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        write_histogram(
            &mut out,
            "flywheel_http_request_duration_seconds",
            &format!("route=\"{route}\""),
            histogram,
        );
    }
    header_line(
        &mut out,
        "flywheel_stage_duration_seconds",
        "histogram",
        "Recommendation latency per pipeline stage.",
    );
    for (stage, histogram) in [
        ("retrieval", &stats.retrieval_latency),
        ("ranking", &stats.ranking_latency),
        ("rerank", &stats.rerank_latency),
        ("total", &stats.request_latency),
    ] {
        write_histogram(
            &mut out,
            "flywheel_stage_duration_seconds",
            &format!("stage=\"{stage}\""),
            histogram,
        );
    }
    counter(
        &mut out,
        "flywheel_events_ingested_total",
        "Events acknowledged (durable).",
        EngineStats::get(&stats.events_ingested),
    );
    counter(
        &mut out,
        "flywheel_events_rejected_total",
        "Events rejected as invalid.",
        EngineStats::get(&stats.events_rejected),
    );
    counter(
        &mut out,
        "flywheel_skipped_records_total",
        "Log records the consumer skipped because they cannot be decoded.",
        EngineStats::get(&stats.skipped_records),
    );
    let snapshots = engine.snapshot_status();
    counter(
        &mut out,
        "flywheel_snapshots_rejected_total",
        "Snapshot files start-up refused (corrupt, truncated, old format, another config, beyond the log's end).",
        EngineStats::get(&stats.snapshots_rejected),
    );
    gauge(
        &mut out,
        "flywheel_snapshot_loaded_offset",
        "The log offset of the snapshot start-up loaded (-1: none, a full replay).",
        snapshots.startup.loaded.map_or(-1.0, |l| l.offset as f64),
    );
    counter(
        &mut out,
        "flywheel_snapshots_taken_total",
        "Snapshots of the state taken by this process.",
        snapshots.taken,
    );
    counter(
        &mut out,
        "flywheel_snapshot_failures_total",
        "Snapshots that could not be written.",
        snapshots.failures,
    );
    counter(
        &mut out,
        "flywheel_recommendations_total",
        "Recommendation lists served.",
        EngineStats::get(&stats.recommendations),
    );
    counter(
        &mut out,
        "flywheel_fallbacks_total",
        "Lists served with a fallback.",
        EngineStats::get(&stats.fallbacks),
    );
    header_line(
        &mut out,
        "flywheel_fallbacks_by_reason_total",
        "counter",
        "Lists served with a fallback, per kind of reason (a list counts once per kind).",
    );
    for (kind, count) in stats.fallback_kinds.snapshot() {
        let _ = writeln!(
            out,
            "flywheel_fallbacks_by_reason_total{{reason=\"{kind}\"}} {count}"
        );
    }
    counter(
        &mut out,
        "flywheel_impressions_dropped_total",
        "Impressions dropped: the queue was full, or the log refused them.",
        EngineStats::get(&stats.impressions_dropped),
    );
    header_line(
        &mut out,
        "flywheel_feature_freshness_seconds",
        "histogram",
        "Time from an event's acknowledgement to its features being updated.",
    );
    write_histogram(
        &mut out,
        "flywheel_feature_freshness_seconds",
        "",
        &stats.feature_freshness,
    );
    crate::controller::render_metrics(&mut out, engine);
    gauge(
        &mut out,
        "flywheel_consumer_lag_records",
        "Log records not yet applied to the online features.",
        engine.consumer_lag() as f64,
    );
    gauge(
        &mut out,
        "flywheel_log_end_offset",
        "Records in the durable log.",
        engine.log_end_offset() as f64,
    );
    gauge(
        &mut out,
        "flywheel_log_write_failing",
        "1 while appends to the log fail (see /readyz for why).",
        if engine.write_error().is_some() {
            1.0
        } else {
            0.0
        },
    );
    gauge(
        &mut out,
        "flywheel_consumer_failing",
        "1 while the consumer cannot read the log (see /readyz for why).",
        if engine.consumer_error().is_some() {
            1.0
        } else {
            0.0
        },
    );
    gauge(
        &mut out,
        "flywheel_ready",
        "1 when the state has caught up with the log.",
        if engine.is_ready() { 1.0 } else { 0.0 },
    );
    let engine = std::sync::Arc::clone(&app.engine);
    if let Ok(report) = tokio::task::spawn_blocking(move || engine.monitoring_report()).await {
        crate::monitoring::write_gauges(&mut out, &report);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
