//! `GET /v1/overview`: the operator's one document (serving health, HTTP errors,
//! ingestion and freshness, the registry, running experiments) that the dashboard
//! at `/` polls. The figures come from the engine's [`Engine::overview`] and the
//! server's own HTTP counters; nothing is computed differently from the routes that
//! show each part (`/metrics`, `/v1/models`, `/v1/experiments/:id/metrics`).
//!
//! [`Engine::overview`]: flywheel_engine::Engine::overview

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use flywheel_core::Timestamp;
use flywheel_engine::{ExperimentOverview, Ingestion, Overview, ServingHealth, StageLatency};
use serde::Serialize;

use crate::error::ApiError;
use crate::routes::{blocking, AppState};

/// Latency figures of one stage, in milliseconds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WireLatency {
    /// Observations.
    pub count: u64,
    /// Mean.
    pub mean_ms: Option<f64>,
    /// Median (interpolated in its histogram bucket).
    pub p50_ms: Option<f64>,
    /// 99th percentile (interpolated in its histogram bucket).
    pub p99_ms: Option<f64>,
}

impl From<&StageLatency> for WireLatency {
    fn from(stage: &StageLatency) -> Self {
        WireLatency {
            count: stage.count,
            mean_ms: stage.mean_ms,
            p50_ms: stage.p50_ms,
            p99_ms: stage.p99_ms,
        }
    }
}

/// Serving health.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WireServing {
    /// Recommendation lists served.
    pub recommendations: u64,
    /// Lists served with a fallback.
    pub fallbacks: u64,
    /// Lists with a fallback per kind of reason (a list counts once per kind).
    #[schema(value_type = BTreeMap<String, u64>)]
    pub fallbacks_by_reason: BTreeMap<&'static str, u64>,
    /// Impressions dropped.
    pub impressions_dropped: u64,
    /// Shadow requests dropped.
    pub shadows_dropped: u64,
    /// Latency per stage (`retrieval`, `ranking`, `rerank`) and `total`.
    #[schema(value_type = BTreeMap<String, WireLatency>)]
    pub latency: BTreeMap<&'static str, WireLatency>,
}

impl From<&ServingHealth> for WireServing {
    fn from(serving: &ServingHealth) -> Self {
        WireServing {
            recommendations: serving.recommendations,
            fallbacks: serving.fallbacks,
            fallbacks_by_reason: serving.fallbacks_by_kind.iter().copied().collect(),
            impressions_dropped: serving.impressions_dropped,
            shadows_dropped: serving.shadows_dropped,
            latency: serving
                .latency
                .iter()
                .map(|stage| (stage.stage, WireLatency::from(stage)))
                .collect(),
        }
    }
}

/// HTTP requests and errors, as `/metrics` counts them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WireHttp {
    /// Every request answered.
    pub requests: u64,
    /// Answers per status class: `2xx`, `3xx`, `4xx`, `5xx`.
    pub by_class: BTreeMap<String, u64>,
    /// Answers per status code.
    #[schema(value_type = BTreeMap<String, u64>)]
    pub by_status: BTreeMap<u16, u64>,
}

impl WireHttp {
    fn of(by_status: BTreeMap<u16, u64>) -> Self {
        let mut by_class: BTreeMap<String, u64> = ["2xx", "3xx", "4xx", "5xx"]
            .iter()
            .map(|class| (class.to_string(), 0))
            .collect();
        for (status, count) in &by_status {
            *by_class.entry(format!("{}xx", status / 100)).or_default() += count;
        }
        WireHttp {
            requests: by_status.values().sum(),
            by_class,
            by_status,
        }
    }
}

/// Ingestion and freshness.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WireIngestion {
    /// Events acknowledged (durable).
    pub events_accepted: u64,
    /// Events rejected as invalid.
    pub events_rejected: u64,
    /// Log records skipped as undecodable.
    pub skipped_records: u64,
    /// The offset the next record gets.
    pub log_end_offset: u64,
    /// Records applied to the online state.
    pub applied_offset: u64,
    /// Records not yet applied.
    pub consumer_lag: u64,
    /// Event time of the newest event applied.
    #[schema(value_type = Option<String>)]
    pub newest_event_time: Option<Timestamp>,
    /// Its age in seconds: the freshness of the online features.
    pub freshness_secs: Option<f64>,
    /// Acknowledgement to features updated.
    pub feature_update: WireLatency,
    /// Whether the state caught up with the log held at start.
    pub ready: bool,
    /// Why appends fail, while they do.
    pub write_error: Option<String>,
    /// Why the consumer cannot read the log, while it cannot.
    pub consumer_error: Option<String>,
}

impl From<&Ingestion> for WireIngestion {
    fn from(ingestion: &Ingestion) -> Self {
        WireIngestion {
            events_accepted: ingestion.events_accepted,
            events_rejected: ingestion.events_rejected,
            skipped_records: ingestion.skipped_records,
            log_end_offset: ingestion.log_end_offset,
            applied_offset: ingestion.applied_offset,
            consumer_lag: ingestion.consumer_lag,
            newest_event_time: ingestion.newest_event_time,
            freshness_secs: ingestion.newest_event_age_secs,
            feature_update: WireLatency::from(&ingestion.feature_update),
            ready: ingestion.ready,
            write_error: ingestion.write_error.clone(),
            consumer_error: ingestion.consumer_error.clone(),
        }
    }
}

/// One registered version, without its full configuration (`/v1/models` has it).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WireVersion {
    /// The version.
    pub version: String,
    /// `serving`, `candidate`, `rejected`, `canary` or `retired`.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// When training finished.
    #[schema(value_type = String)]
    pub trained_at: Timestamp,
    /// The end of its training window (latest event time).
    #[schema(value_type = Option<String>)]
    pub trained_until: Option<Timestamp>,
    /// The log offset its training read up to.
    pub log_end_offset: Option<u64>,
    /// Its models.
    pub models: Vec<String>,
    /// Its evaluation figures on the gate's holdout.
    pub metrics: BTreeMap<String, f64>,
    /// The gate's decision.
    #[schema(value_type = Option<Object>)]
    pub gate: Option<flywheel_registry::GateRecord>,
}

impl From<&flywheel_registry::VersionInfo> for WireVersion {
    fn from(info: &flywheel_registry::VersionInfo) -> Self {
        WireVersion {
            version: info.version.clone(),
            status: info.status.as_str(),
            trained_at: info.manifest.trained_at,
            trained_until: info.manifest.trained_until,
            log_end_offset: info.manifest.log_end_offset,
            models: info.manifest.models.clone(),
            metrics: info.metrics.clone(),
            gate: info.gate.clone(),
        }
    }
}

/// The registry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WireModels {
    /// The version serving now (empty before the first training).
    pub serving: String,
    /// Every registered version, newest first.
    pub versions: Vec<WireVersion>,
}

/// The headline of one comparison of an experiment: an A/B treatment against the
/// control on the primary metric, or the interleaving preference.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WireHeadline {
    /// The treatment (A/B) or `A vs B` (interleaving).
    pub variant: String,
    /// The metric (`ctr`, `cvr`, `rpm`, or `preference`).
    pub metric: String,
    /// The effect: treatment − control, or the preference score.
    pub effect: f64,
    /// Relative lift, when it has one.
    pub relative_lift: Option<f64>,
    /// Lower end of the confidence interval.
    pub ci_low: f64,
    /// Upper end of the confidence interval.
    pub ci_high: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// One running experiment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WireExperiment {
    /// Its id.
    pub id: String,
    /// `ab`, `interleaving` or `shadow`.
    #[schema(value_type = String)]
    pub kind: &'static str,
    /// When it started.
    #[schema(value_type = String)]
    pub started: Timestamp,
    /// The share of its layer's users it takes.
    pub traffic: f64,
    /// The headline effects with their intervals.
    pub headline: Vec<WireHeadline>,
    /// Every figure of `GET /v1/experiments/:id/metrics`, unchanged.
    #[schema(value_type = Object)]
    pub metrics: serde_json::Value,
}

impl From<&ExperimentOverview> for WireExperiment {
    fn from(experiment: &ExperimentOverview) -> Self {
        let metrics = &experiment.metrics;
        let mut headline: Vec<WireHeadline> = metrics
            .comparisons
            .iter()
            .map(|(variant, c)| WireHeadline {
                variant: variant.clone(),
                metric: c.metric.to_string(),
                effect: c.effect,
                relative_lift: c.relative_lift,
                ci_low: c.ci_low,
                ci_high: c.ci_high,
                p_value: c.p_value,
            })
            .collect();
        if let Some(p) = metrics
            .interleaving
            .as_ref()
            .and_then(|i| i.preference.as_ref())
        {
            let names: Vec<&str> = metrics.variants.iter().map(|(n, _)| n.as_str()).collect();
            headline.push(WireHeadline {
                variant: names.join(" vs "),
                metric: "preference".into(),
                effect: p.preference,
                relative_lift: None,
                ci_low: p.ci_low,
                ci_high: p.ci_high,
                p_value: p.p_value,
            });
        }
        WireExperiment {
            id: experiment.view.definition.id.clone(),
            kind: experiment.view.definition.kind.as_str(),
            started: experiment.view.started,
            traffic: experiment.view.definition.traffic,
            headline,
            metrics: serde_json::to_value(metrics).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// The answer of `GET /v1/overview`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WireOverview {
    /// When it was read.
    #[schema(value_type = String)]
    pub at: Timestamp,
    /// Serving health.
    pub serving: WireServing,
    /// HTTP requests and errors.
    pub http: WireHttp,
    /// Ingestion and freshness.
    pub ingestion: WireIngestion,
    /// The registry.
    pub models: WireModels,
    /// Running experiments.
    pub experiments: Vec<WireExperiment>,
}

impl WireOverview {
    fn of(overview: &Overview, http_by_status: BTreeMap<u16, u64>) -> Self {
        WireOverview {
            at: overview.at,
            serving: WireServing::from(&overview.serving),
            http: WireHttp::of(http_by_status),
            ingestion: WireIngestion::from(&overview.ingestion),
            models: WireModels {
                serving: overview.models.serving.clone(),
                versions: overview
                    .models
                    .versions
                    .iter()
                    .rev()
                    .map(WireVersion::from)
                    .collect(),
            },
            experiments: overview
                .experiments
                .iter()
                .map(WireExperiment::from)
                .collect(),
        }
    }
}

/// `GET /v1/overview`.
#[utoipa::path(
    get,
    path = "/v1/overview",
    tag = "operations",
    summary = "The operator's overview: serving health, ingestion and freshness, models, running experiments",
    responses((status = 200, description = "The overview", body = WireOverview))
)]
pub(crate) async fn get(State(app): State<AppState>) -> Result<Json<WireOverview>, ApiError> {
    let engine = Arc::clone(&app.engine);
    let overview =
        blocking(move || engine.overview(Timestamp::now()).map_err(ApiError::from)).await?;
    Ok(Json(WireOverview::of(&overview, app.http.by_status())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_answers_are_summed_per_status_class() {
        let http = WireHttp::of([(200, 5), (204, 1), (401, 2), (404, 3), (503, 1)].into());
        assert_eq!(http.requests, 12);
        assert_eq!(http.by_class["2xx"], 6);
        assert_eq!(http.by_class["3xx"], 0);
        assert_eq!(http.by_class["4xx"], 5);
        assert_eq!(http.by_class["5xx"], 1);
    }
}
