//! Live monitoring in the engine: the consumer feeds every record it applies to the
//! [`LiveWindow`] of `flywheel-monitor` (served lists with their logged features and
//! scores, events with what the catalog knew of their item, outcomes the joiner
//! finalized), so the request path does nothing more than log its impression, and a
//! replay of the log (a stopped data directory) rebuilds the same window.
//! [`Engine::monitoring_report`] compares the window with the served version's
//! reference; that report is what the server, the CLI and the controller read.

use std::sync::Mutex;

use flywheel_core::{Event, Impression, LogRecord, Timestamp};
use flywheel_experiments::live::ClosedRequest;
use flywheel_monitor::{
    key, EventObservation, ImpressionObservation, LiveWindow, MonitoringReport, SlotObservation,
};
use flywheel_offline::reference::{engaged_affinity, top_level_category};
use flywheel_pipeline::{EngineConfig, ModelSet, State};
use flywheel_ranking::FEATURE_NAMES;
use flywheel_registry as registry;

use crate::engine::Engine;

/// The engine's live window, behind its own lock (taken once per applied chunk and
/// per report; never on the request path).
pub(crate) struct Monitor {
    window: Mutex<LiveWindow>,
}

/// What the consumer knows about when it applies a record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Applying {
    /// Whether the record arrived while the engine runs (not in the start-up replay):
    /// only then is arrival time minus event time a skew.
    pub(crate) live: bool,
    /// The wall clock when the chunk was applied.
    pub(crate) now: Timestamp,
}

impl Monitor {
    pub(crate) fn new(config: &EngineConfig, models: &ModelSet) -> Monitor {
        let monitor = Monitor {
            window: Mutex::new(LiveWindow::new(config.monitoring.clone(), FEATURE_NAMES)),
        };
        monitor.serve(models);
        monitor
    }

    fn window(&self) -> std::sync::MutexGuard<'_, LiveWindow> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Served lists of `models` get their calibrated P(click) from now on.
    pub(crate) fn serve(&self, models: &ModelSet) {
        let calibration = models
            .reference
            .as_ref()
            .and_then(|r| r.calibration.clone());
        self.window().set_calibration(models.version(), calibration);
    }

    /// Feeds a chunk the consumer is applying: `state` is as of each record (the
    /// caller applies them one by one, calling `before` first).
    pub(crate) fn chunk(&self) -> ChunkFeeder<'_> {
        ChunkFeeder {
            window: self.window(),
        }
    }

    /// Counts events refused before the log.
    pub(crate) fn rejected(&self, reason: &str, count: u64) {
        self.window().observe_rejected(reason, count);
    }
}

/// The window locked for one chunk of records.
pub(crate) struct ChunkFeeder<'a> {
    window: std::sync::MutexGuard<'a, LiveWindow>,
}

impl ChunkFeeder<'_> {
    /// One record, with `state` as it was before the record is applied.
    pub(crate) fn before(&mut self, state: &State, record: &LogRecord, applying: Applying) {
        match record {
            LogRecord::Event(event) => self.event(state, event, applying),
            LogRecord::Impression(impression) => self.impression(state, impression),
            _ => {}
        }
    }

    /// A record that could not be decoded.
    pub(crate) fn skipped(&mut self) {
        self.window.observe_skipped_record();
    }

    /// Outcomes the joiner finalized.
    pub(crate) fn finalized(&mut self, closed: Vec<ClosedRequest>) {
        for request in closed {
            let positive: Vec<bool> = request
                .clicks
                .iter()
                .zip(&request.purchases)
                .map(|(c, p)| *c > 0 || *p > 0)
                .collect();
            self.window
                .observe_finalized(request.request_id.as_str(), &positive);
        }
    }

    fn event(&mut self, state: &State, event: &Event, applying: Applying) {
        let item = state.catalog.item(&event.item_id);
        let category = item.and_then(|i| top_level_category(&i.category));
        let request = event.request_id.as_ref().map_or("", |r| r.as_str());
        let at = event.timestamp.millis();
        let observation = EventObservation {
            at_ms: at,
            user_key: key(&[event.user_id.as_str().as_bytes()]),
            event_key: key(&[
                event.user_id.as_str().as_bytes(),
                event.item_id.as_str().as_bytes(),
                event.action.as_str().as_bytes(),
                &at.to_le_bytes(),
                request.as_bytes(),
            ]),
            action: event.action.as_str(),
            engagement: event.action.is_engagement(),
            item_known: item.is_some(),
            item_category: category,
            device: event.context.get("device").map(String::as_str),
            page: event.context.get("page").map(String::as_str),
            has_request_id: event.request_id.is_some(),
            has_position: event.position.is_some(),
            arrival_skew_ms: applying
                .live
                .then(|| applying.now.millis().saturating_sub(at)),
            engaged_affinity: category
                .filter(|_| event.action.is_engagement())
                .map(|c| engaged_affinity(state, event, c)),
        };
        self.window.observe_event(&observation);
    }

    fn impression(&mut self, state: &State, impression: &Impression) {
        let slots = impression
            .slots
            .iter()
            .map(|slot| SlotObservation {
                features: &slot.features,
                score: slot.score,
                category: state
                    .catalog
                    .item(&slot.item_id)
                    .and_then(|i| top_level_category(&i.category)),
            })
            .collect();
        self.window.observe_impression(&ImpressionObservation {
            at_ms: impression.timestamp.millis(),
            request_id: impression.request_id.as_str(),
            model_version: &impression.model_version,
            slots,
        });
    }
}

/// The feature store's bot counts as the monitoring report spells them.
fn bot_filter_figures(counts: &flywheel_core::BotCounts) -> flywheel_monitor::BotFilterFigures {
    flywheel_monitor::BotFilterFigures {
        judged: counts.judged,
        dropped: counts
            .dropped
            .iter()
            .map(|(reason, n)| (reason.as_str().to_string(), *n))
            .collect(),
        dropped_share: counts.dropped_total() as f64 / counts.judged.max(1) as f64,
        flagged_users: counts.flagged_users,
    }
}

impl Engine {
    /// The monitoring report now: the live window against the served version's
    /// reference — per feature its KS or PSI and whether it crossed its threshold,
    /// observed over expected CTR with its band, data quality and freshness. A version
    /// without a reference still reports its window, with `reference_status` saying
    /// why there is no comparison (it starts with `no reference`).
    pub fn monitoring_report(&self) -> MonitoringReport {
        let models = self.models();
        let reason = no_reference_reason(&self.config().data_dir, &models);
        let mut report = {
            let window = self.inner.monitor.window();
            window.report(models.reference.as_deref(), &reason)
        };
        let now = Timestamp::now().millis();
        report.freshness.newest_event_age_seconds = report
            .freshness
            .newest_event_time
            .map(|t| (now - t) as f64 / 1000.0);
        report.data_quality.bot_filter = bot_filter_figures(self.state().features.bot_counts());
        report.freshness.consumer_lag_records = self.consumer_lag();
        report.freshness.applied_offset = self.applied();
        let freshness =
            crate::overview::StageLatency::of("feature_update", &self.stats().feature_freshness);
        report.latency = self
            .stage_latencies()
            .into_iter()
            .chain(std::iter::once(freshness))
            .map(|s| flywheel_monitor::StageLatencySummary {
                stage: s.stage.to_string(),
                count: s.count,
                p50_ms: s.p50_ms,
                p99_ms: s.p99_ms,
            })
            .collect();
        report
    }

    /// Counts events refused before they reached the log (a bad batch), by reason
    /// (a bounded name such as the kind of error; never free text from a request).
    pub fn note_rejected_events(&self, reason: &str, count: u64) {
        self.inner.monitor.rejected(reason, count);
    }
}

/// Why the served models have no reference (empty when they have one).
fn no_reference_reason(data_dir: &std::path::Path, models: &ModelSet) -> String {
    if models.reference.is_some() {
        return String::new();
    }
    let version = models.version();
    if models.manifest.is_none() {
        return "no reference: nothing trained yet".into();
    }
    match registry::reference(data_dir, version) {
        Ok(None) => format!("no reference: {version} was saved without reference.json"),
        Ok(Some(_)) => format!("no reference: {version} was loaded before its reference"),
        Err(e) => format!("no reference: {e}"),
    }
}
