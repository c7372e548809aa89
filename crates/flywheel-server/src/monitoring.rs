//! `GET /v1/monitoring` (scope `read`): the engine's monitoring report as JSON, and
//! its gauges for `/metrics`. Feature labels come from the engine's fixed list of
//! monitored features, never from a request or a file.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use flywheel_core::CoreError;
use flywheel_engine::{monitored_feature_names, MonitoringReport};

use crate::error::ApiError;
use crate::openapi::Monitoring;
use crate::routes::{blocking, AppState};

/// The report: window, reference, per-feature drift, prediction drift, data quality
/// and freshness.
#[utoipa::path(
    get,
    path = "/v1/monitoring",
    tag = "operations",
    summary = "Live drift and data quality: the monitoring window against the serving version's reference",
    responses((status = 200, description = "The report", body = Monitoring))
)]
pub(crate) async fn report(
    State(app): State<AppState>,
) -> Result<Json<MonitoringReport>, ApiError> {
    let engine = Arc::clone(&app.engine);
    let report = blocking(move || Ok(engine.monitoring_report())).await?;
    Ok(Json(report))
}

/// Why an event was refused, as a bounded label (the kind of error, never the field
/// name, which may be a client's unknown key).
pub(crate) fn rejection_reason(error: &CoreError) -> &'static str {
    match error {
        CoreError::NotAnObject { .. } => "not_an_object",
        CoreError::MissingField { .. } => "missing_field",
        CoreError::WrongType { .. } => "wrong_type",
        CoreError::InvalidValue { .. } => "invalid_value",
        CoreError::UnknownField { .. } => "unknown_field",
    }
}

fn gauge_header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

/// Writes the monitoring gauges.
pub(crate) fn write_gauges(out: &mut String, report: &MonitoringReport) {
    let known: Vec<&str> = monitored_feature_names().collect();
    let features: Vec<_> = report
        .features
        .iter()
        .filter(|f| known.contains(&f.name.as_str()))
        .collect();
    gauge_header(
        out,
        "flywheel_monitor_feature_drift",
        "Drift statistic per monitored feature (KS D or PSI) against the served version's reference.",
    );
    for f in &features {
        if let Some(value) = f.value {
            let statistic = serde_json::to_value(f.statistic)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "flywheel_monitor_feature_drift{{feature=\"{}\",statistic=\"{statistic}\"}} {value}",
                f.name
            );
        }
    }
    gauge_header(
        out,
        "flywheel_monitor_feature_drifted",
        "1 when a monitored feature crossed its drift threshold.",
    );
    for f in &features {
        let _ = writeln!(
            out,
            "flywheel_monitor_feature_drifted{{feature=\"{}\",watched=\"{}\"}} {}",
            f.name,
            f.watched,
            u8::from(f.drifted)
        );
    }
    let p = &report.prediction;
    let q = &report.data_quality;
    let mut plain = |name: &str, help: &str, value: Option<f64>| {
        if let Some(value) = value {
            gauge_header(out, name, help);
            let _ = writeln!(out, "{name} {value}");
        }
    };
    plain(
        "flywheel_monitor_reference_present",
        "1 when the served version has a monitoring reference.",
        Some(f64::from(u8::from(report.reference_version.is_some()))),
    );
    plain(
        "flywheel_monitor_mean_predicted_ctr",
        "Mean calibrated P(click) of the finalized served items in the window.",
        p.mean_predicted_ctr,
    );
    plain(
        "flywheel_monitor_observed_ctr",
        "Observed CTR of the finalized served items in the window.",
        p.observed_ctr,
    );
    plain(
        "flywheel_monitor_observed_over_expected",
        "Observed over expected CTR (prediction drift).",
        p.observed_over_expected,
    );
    plain(
        "flywheel_monitor_finalized_impressions",
        "Served items whose labels are final in the window.",
        Some(p.finalized_impressions as f64),
    );
    plain(
        "flywheel_monitor_window_events",
        "Events in the live window.",
        Some(report.window.events as f64),
    );
    plain(
        "flywheel_monitor_unknown_item_share",
        "Share of the window's events naming an unknown item.",
        Some(q.unknown_item_share),
    );
    plain(
        "flywheel_monitor_duplicate_share",
        "Share of the window's events seen before.",
        Some(q.duplicate_share),
    );
    plain(
        "flywheel_monitor_rejected_share",
        "Share of refused events among refused and applied ones in the window.",
        Some(q.rejected_share),
    );
    plain(
        "flywheel_monitor_missing_features_share",
        "Share of served items logged without features in the window.",
        Some(q.missing_features_share),
    );
    plain(
        "flywheel_monitor_bot_like_users",
        "Users above the configured events per minute in the window.",
        Some(q.bot_like_users as f64),
    );
    plain(
        "flywheel_monitor_event_time_skew_p99_seconds",
        "99th percentile of arrival minus event time in the window.",
        q.event_time_skew.p99_ms.map(|ms| ms / 1000.0),
    );
    plain(
        "flywheel_monitor_newest_event_age_seconds",
        "Wall clock minus the event time of the newest applied event.",
        report.freshness.newest_event_age_seconds,
    );
    plain(
        "flywheel_bot_flagged_users",
        "Users with an event the bot rules dropped, since the state was built.",
        Some(q.bot_filter.flagged_users as f64),
    );
    write_bot_drops(out, &q.bot_filter);
}

/// The bot rules' drops per reason (labels from the fixed list of reasons).
fn write_bot_drops(out: &mut String, figures: &flywheel_engine::monitor::BotFilterFigures) {
    gauge_header(
        out,
        "flywheel_bot_events_dropped",
        "Events the bot rules dropped before features and training, by reason, since the state was built.",
    );
    for reason in flywheel_core::BotReason::ALL {
        let n = figures.dropped.get(reason.as_str()).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "flywheel_bot_events_dropped{{reason=\"{}\"}} {n}",
            reason.as_str()
        );
    }
}
