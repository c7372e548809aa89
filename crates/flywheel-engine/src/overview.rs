//! The operator's overview: one read of the engine's counters, histograms, registry
//! and running experiments, for `GET /v1/overview` and the dashboard. Plain values;
//! the server turns them into JSON.

use flywheel_core::Timestamp;
use flywheel_experiments::live::ExperimentMetrics;
use flywheel_registry::VersionInfo;

use crate::engine::Engine;
use crate::error::Result;
use crate::experiments::ExperimentView;
use crate::stats::{EngineStats, Histogram};

/// Latency of one pipeline stage (or of the whole request), from its histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct StageLatency {
    /// `retrieval`, `ranking`, `rerank` or `total`.
    pub stage: &'static str,
    /// Observations.
    pub count: u64,
    /// Mean, in milliseconds (`None` without observations).
    pub mean_ms: Option<f64>,
    /// Median, in milliseconds, interpolated in its bucket.
    pub p50_ms: Option<f64>,
    /// 99th percentile, in milliseconds, interpolated in its bucket.
    pub p99_ms: Option<f64>,
}

impl StageLatency {
    /// The figures of `histogram` under the name `stage`.
    pub fn of(stage: &'static str, histogram: &Histogram) -> Self {
        let (_, count, sum) = histogram.snapshot();
        let ms = |secs: Option<f64>| secs.map(|s| s * 1000.0);
        StageLatency {
            stage,
            count,
            mean_ms: (count > 0).then(|| sum * 1000.0 / count as f64),
            p50_ms: ms(histogram.quantile(0.5)),
            p99_ms: ms(histogram.quantile(0.99)),
        }
    }
}

/// How serving goes.
#[derive(Debug, Clone, PartialEq)]
pub struct ServingHealth {
    /// Recommendation lists served.
    pub recommendations: u64,
    /// Lists served with a fallback.
    pub fallbacks: u64,
    /// Lists with a fallback, per kind of reason (a list counts once per kind).
    pub fallbacks_by_kind: Vec<(&'static str, u64)>,
    /// Impressions dropped (queue full, or the log refused them).
    pub impressions_dropped: u64,
    /// Shadow requests the shadow worker could not take.
    pub shadows_dropped: u64,
    /// Latency per stage, then `total`.
    pub latency: Vec<StageLatency>,
}

/// How ingestion and the consumer go.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingestion {
    /// Events acknowledged (durable).
    pub events_accepted: u64,
    /// Events rejected as invalid.
    pub events_rejected: u64,
    /// Log records the consumer skipped as undecodable.
    pub skipped_records: u64,
    /// The offset the next record gets.
    pub log_end_offset: u64,
    /// Records applied to the online state.
    pub applied_offset: u64,
    /// Records appended, not yet applied.
    pub consumer_lag: u64,
    /// The event time of the newest event applied.
    pub newest_event_time: Option<Timestamp>,
    /// Seconds from that event time to `now` (negative for events from the future).
    pub newest_event_age_secs: Option<f64>,
    /// Acknowledgement to features updated, from its histogram.
    pub feature_update: StageLatency,
    /// Whether the state caught up with the log held at start.
    pub ready: bool,
    /// Why appends fail, while they do.
    pub write_error: Option<String>,
    /// Why the consumer cannot read the log, while it cannot.
    pub consumer_error: Option<String>,
}

/// The model registry as `GET /v1/models` lists it.
#[derive(Debug, Clone)]
pub struct ModelsOverview {
    /// The version serving now.
    pub serving: String,
    /// Every registered version, oldest first.
    pub versions: Vec<VersionInfo>,
}

/// One experiment with the figures `GET /v1/experiments/:id/metrics` gives.
#[derive(Debug, Clone)]
pub struct ExperimentOverview {
    /// The experiment.
    pub view: ExperimentView,
    /// Its statistics.
    pub metrics: ExperimentMetrics,
}

/// Everything the overview shows.
#[derive(Debug, Clone)]
pub struct Overview {
    /// When it was read.
    pub at: Timestamp,
    /// Serving health.
    pub serving: ServingHealth,
    /// Ingestion and freshness.
    pub ingestion: Ingestion,
    /// The registry.
    pub models: ModelsOverview,
    /// The running experiments.
    pub experiments: Vec<ExperimentOverview>,
}

impl Engine {
    /// The overview as of `now`: counters, latency quantiles, the registry and the
    /// running experiments' metrics (computed as their metrics route computes them).
    pub fn overview(&self, now: Timestamp) -> Result<Overview> {
        Ok(Overview {
            at: now,
            serving: self.serving_health(),
            ingestion: self.ingestion(now),
            models: ModelsOverview {
                serving: self.models().version().to_string(),
                versions: self.list_versions()?,
            },
            experiments: self.running_experiments()?,
        })
    }

    fn serving_health(&self) -> ServingHealth {
        let stats = self.stats();
        ServingHealth {
            recommendations: EngineStats::get(&stats.recommendations),
            fallbacks: EngineStats::get(&stats.fallbacks),
            fallbacks_by_kind: stats.fallback_kinds.snapshot(),
            impressions_dropped: EngineStats::get(&stats.impressions_dropped),
            shadows_dropped: EngineStats::get(&stats.shadows_dropped),
            latency: self.stage_latencies(),
        }
    }

    /// Latency per pipeline stage and of whole requests, from the histograms.
    pub(crate) fn stage_latencies(&self) -> Vec<StageLatency> {
        let stats = self.stats();
        vec![
            StageLatency::of("retrieval", &stats.retrieval_latency),
            StageLatency::of("ranking", &stats.ranking_latency),
            StageLatency::of("rerank", &stats.rerank_latency),
            StageLatency::of("total", &stats.request_latency),
        ]
    }

    fn ingestion(&self, now: Timestamp) -> Ingestion {
        let stats = self.stats();
        let (applied, newest) = {
            let state = self.state();
            (state.applied, state.features.last_event_time())
        };
        let end = self.log_end_offset();
        Ingestion {
            events_accepted: EngineStats::get(&stats.events_ingested),
            events_rejected: EngineStats::get(&stats.events_rejected),
            skipped_records: EngineStats::get(&stats.skipped_records),
            log_end_offset: end,
            applied_offset: applied,
            consumer_lag: end.saturating_sub(applied),
            newest_event_time: newest,
            newest_event_age_secs: newest.map(|t| now.secs_since(t)),
            feature_update: StageLatency::of("feature_update", &stats.feature_freshness),
            ready: self.is_ready(),
            write_error: self.write_error(),
            consumer_error: self.consumer_error(),
        }
    }

    fn running_experiments(&self) -> Result<Vec<ExperimentOverview>> {
        self.experiments()
            .into_iter()
            .filter(|view| view.status == "running")
            .map(|view| {
                let metrics = self.experiment_metrics(&view.definition.id)?;
                Ok(ExperimentOverview { view, metrics })
            })
            .collect()
    }
}
