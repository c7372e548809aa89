//! The self-healing loop inside the engine: [`Engine::control_step`] turns the
//! monitoring report and the registry into an [`Observation`], asks the
//! [`flywheel_controller::Controller`] what to do, carries out the decisions it takes
//! and records every one of them with its evidence.
//!
//! - **pause / resume**: a `training_paused` flag that [`Engine::train`] and
//!   [`Engine::start_training`] refuse with [`EngineError::TrainingPaused`];
//! - **rollback**: [`Engine::promote`] of the last good version (not
//!   [`Engine::rollback`], which returns to the previous version, good or not);
//! - **retrain**: a background training job ([`Engine::start_training`]); its candidate
//!   must pass the promotion gate like any other.
//!
//! Breach periods are recorded even in dry-run (they are facts of the monitor, not
//! actions): from the first breaching window to the start of the recovery period. A
//! training run leaves the events inside every recorded breach out of its replay, and
//! remembers which breaches it left out, so a version is *trained on a breach* when
//! its training window (up to `trained_until`) reaches into a breach it did not leave
//! out. Everything the loop remembers is in `<data_dir>/controller/`: `state.json`
//! (the controller's state, the breaches, the versions' exclusions: a restart in the
//! middle of a breach keeps training paused) and `decisions.jsonl` (every decision,
//! one JSON object a line).

use flywheel_controller::{
    ActionKind, ControlAction, Controller, ControllerState, ControllerStatus, DataQuality,
    Decision, DriftStatistic, FeatureDrift, Observation, Outcome, PredictionDrift,
};
use flywheel_core::{LogRecord, Timestamp};
use flywheel_monitor::{MonitoringReport, Statistic};
use flywheel_pipeline::EngineConfig;
use flywheel_registry as registry;
use flywheel_registry::Origin;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::engine::Engine;
use crate::error::{EngineError, Result};

/// How many decisions are kept in memory for `GET /v1/controller`.
const KEPT_DECISIONS: usize = 200;

/// The monitoring report's field for the device context; the simulator's (and a
/// broken tracker's) "missing fields" events lose their whole context.
const MISSING_FIELD: &str = "context.device";

/// A period of data-quality breach, as the loop recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreachPeriod {
    /// The start of the first breaching window.
    pub from: Timestamp,
    /// The start of the recovery period; `None` while the breach lasts.
    pub until: Option<Timestamp>,
}

impl BreachPeriod {
    /// Whether an event at `at` falls inside the breach.
    pub fn contains(&self, at: Timestamp) -> bool {
        at >= self.from && self.until.is_none_or(|until| at < until)
    }
}

/// One decision as the engine records it: the controller's decision and what
/// carrying it out did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The controller's decision (time, rule, action, evidence, outcome).
    #[serde(flatten)]
    pub decision: Decision,
    /// What the engine did for a taken decision (`training job …`, `serving v1`).
    #[serde(default)]
    pub result: Option<String>,
    /// Why carrying out a taken decision failed.
    #[serde(default)]
    pub error: Option<String>,
}

/// The loop's state, as `GET /v1/controller` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ControllerView {
    /// `dry_run` or `active`.
    pub mode: &'static str,
    /// Whether training is paused by the breaker.
    pub paused: bool,
    /// The controller's own status (breaker, drift, actions in the last hour).
    pub status: ControllerStatus,
    /// The recorded breach periods, oldest first.
    pub breaches: Vec<BreachPeriod>,
    /// The most recent decisions, oldest first.
    pub decisions: Vec<DecisionRecord>,
    /// Decisions since the engine opened, by action kind and outcome.
    pub counts: Vec<DecisionCount>,
}

/// How many decisions of one action kind had one outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionCount {
    /// The action kind (`pause_training`, `resume_training`, `rollback`, `retrain`).
    pub action: &'static str,
    /// `taken`, or why it was held back (`cooldown`, `dry_run`…).
    pub outcome: &'static str,
    /// How many.
    pub count: u64,
}

/// What is persisted in `state.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Books {
    controller: ControllerState,
    breaches: Vec<BreachPeriod>,
    /// Per version trained while breaches were known, the breaches it left out.
    excluded: BTreeMap<String, Vec<BreachPeriod>>,
    /// The start of the window of the first observation, in the current run of
    /// observations with a share above its threshold (even on too few events to
    /// count): where a breach the breaker opens on began.
    #[serde(default)]
    suspect_since: Option<Timestamp>,
}

struct LoopState {
    controller: Controller,
    books: Books,
    recent: VecDeque<DecisionRecord>,
    counts: BTreeMap<(&'static str, &'static str), u64>,
}

/// The engine's controller, its books and the pause flag.
pub(crate) struct ControlLoop {
    /// Held for a whole step, so two steps never interleave.
    step: Mutex<()>,
    state: Mutex<LoopState>,
    paused: AtomicBool,
    dir: PathBuf,
}

fn controller_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("controller")
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |e| EngineError::io(path, e)
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> EngineError {
    EngineError::io(
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    )
}

fn read_books(dir: &Path) -> Result<Books> {
    let path = dir.join("state.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| corrupt(&path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Books::default()),
        Err(e) => Err(EngineError::io(&path, e)),
    }
}

/// The last [`KEPT_DECISIONS`] decisions of `decisions.jsonl` (a torn last line, from
/// a crash in the middle of an append, is ignored).
fn read_recent(dir: &Path) -> Result<VecDeque<DecisionRecord>> {
    let path = dir.join("decisions.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(VecDeque::new()),
        Err(e) => return Err(EngineError::io(&path, e)),
    };
    let mut recent = VecDeque::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Ok(record) = serde_json::from_str::<DecisionRecord>(line) {
            if recent.len() == KEPT_DECISIONS {
                recent.pop_front();
            }
            recent.push_back(record);
        }
    }
    Ok(recent)
}

impl ControlLoop {
    /// Opens the loop of a data directory: the configured controller resumed from
    /// the persisted state (a damaged state file is an error naming it).
    pub(crate) fn open(config: &EngineConfig) -> Result<ControlLoop> {
        let dir = controller_dir(&config.data_dir);
        let books = read_books(&dir)?;
        let controller =
            Controller::with_state(config.controller.clone(), books.controller.clone()).map_err(
                |e| EngineError::Pipeline(flywheel_pipeline::PipelineError::Config(e.to_string())),
            )?;
        let paused = controller.training_paused();
        Ok(ControlLoop {
            step: Mutex::new(()),
            state: Mutex::new(LoopState {
                controller,
                books,
                recent: read_recent(&dir)?,
                counts: BTreeMap::new(),
            }),
            paused: AtomicBool::new(paused),
            dir,
        })
    }

    fn lock(&self) -> MutexGuard<'_, LoopState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn persist(&self, books: &Books) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(io_error(&self.dir))?;
        let bytes = serde_json::to_vec_pretty(books).map_err(|e| corrupt(&self.dir, e))?;
        registry::write_atomically(&self.dir.join("state.json"), &bytes)?;
        Ok(())
    }

    fn append_decisions(&self, records: &[DecisionRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir).map_err(io_error(&self.dir))?;
        let path = self.dir.join("decisions.jsonl");
        let mut text = String::new();
        for record in records {
            let line = serde_json::to_string(record).map_err(|e| corrupt(&path, e))?;
            text.push_str(&line);
            text.push('\n');
        }
        let mut file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        file.write_all(text.as_bytes()).map_err(io_error(&path))?;
        file.sync_data().map_err(io_error(&path))
    }

    /// Whether training is paused.
    pub(crate) fn training_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// The breach periods a training starting now must leave out.
    pub(crate) fn breaches(&self) -> Vec<BreachPeriod> {
        self.lock().books.breaches.clone()
    }

    /// Records that `version` was trained with `excluded` left out, so it does not
    /// count as trained on them.
    pub(crate) fn note_training(&self, version: &str, excluded: Vec<BreachPeriod>) -> Result<()> {
        if excluded.is_empty() {
            return Ok(());
        }
        let mut state = self.lock();
        state.books.excluded.insert(version.to_string(), excluded);
        let books = state.books.clone();
        drop(state);
        self.persist(&books)
    }
}

/// A version's training window reaches into a breach it did not leave out.
fn trained_on_breach(books: &Books, version: &str, trained_until: Option<Timestamp>) -> bool {
    let Some(until) = trained_until else {
        return false;
    };
    let excluded = books.excluded.get(version);
    books.breaches.iter().any(|breach| {
        breach.from <= until && !excluded.is_some_and(|skipped| skipped.contains(breach))
    })
}

/// Whether any share of the window is above its threshold (whatever the number of
/// events: the controller decides whether there were enough to count).
fn above_a_threshold(rule: &flywheel_controller::QualityRule, quality: &DataQuality) -> bool {
    quality.unknown_item_share > rule.unknown_item_share
        || quality.missing_field_share > rule.missing_field_share
        || quality.rejected_share > rule.rejected_share
}

/// The share of events missing their device context, unless no event has one (a shop
/// that never sends it is not a broken stream).
fn missing_field_share(report: &MonitoringReport) -> f64 {
    match report.data_quality.missing.get(MISSING_FIELD) {
        Some(share) if *share < 1.0 => share.clamp(0.0, 1.0),
        _ => 0.0,
    }
}

/// The controller's view of the monitoring report: data quality, every judged feature
/// the monitor watches (`monitoring.watched_features`; the controller's own
/// `drift.watched_features` narrows them further), and O/E when it was judged.
pub fn observe_report(report: &MonitoringReport, at: Timestamp) -> Observation {
    let quality = &report.data_quality;
    let features = report
        .features
        .iter()
        .filter(|f| f.watched)
        .filter_map(|f| {
            let value = f.value.filter(|v| v.is_finite() && *v >= 0.0)?;
            let statistic = match f.statistic {
                Statistic::Psi => DriftStatistic::Psi,
                Statistic::Ks => DriftStatistic::Ks,
            };
            (f.threshold.is_finite() && f.threshold > 0.0).then(|| FeatureDrift {
                feature: f.name.clone(),
                statistic,
                value,
                threshold: f.threshold,
            })
        })
        .collect();
    let p = &report.prediction;
    let prediction = p
        .observed_over_expected
        .filter(|oe| p.judged && oe.is_finite() && *oe >= 0.0)
        .filter(|_| 0.0 < p.band[0] && p.band[0] < 1.0 && 1.0 < p.band[1])
        .map(|oe| PredictionDrift {
            observed_over_expected: oe,
            band_low: p.band[0],
            band_high: p.band[1],
        });
    Observation {
        at,
        quality: DataQuality {
            events: quality.events,
            unknown_item_share: quality.unknown_item_share.clamp(0.0, 1.0),
            missing_field_share: missing_field_share(report),
            rejected_share: quality.rejected_share.clamp(0.0, 1.0),
        },
        features,
        prediction,
        serving_version: None,
        last_good_version: None,
        training_running: false,
        serving_trained_on_breach: false,
    }
}

/// The kind of an action, as counters and the API name it.
pub fn action_name(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::PauseTraining => "pause_training",
        ActionKind::ResumeTraining => "resume_training",
        ActionKind::Rollback => "rollback",
        ActionKind::Retrain => "retrain",
    }
}

/// An outcome in one word: `taken`, or the reason it was held back.
pub fn outcome_name(outcome: &Outcome) -> &'static str {
    use flywheel_controller::Suppression as S;
    match outcome {
        Outcome::Taken => "taken",
        Outcome::Suppressed { why } => match why {
            S::Cooldown { .. } => "cooldown",
            S::Cap { .. } => "cap",
            S::DryRun => "dry_run",
            S::TrainingPaused => "training_paused",
            S::TrainingRunning => "training_running",
            S::NoRollbackTarget => "no_rollback_target",
        },
    }
}

impl Engine {
    fn control(&self) -> &ControlLoop {
        &self.inner.control
    }

    /// Whether training is paused by the controller's circuit breaker.
    pub fn training_paused(&self) -> bool {
        self.control().training_paused()
    }

    /// Refuses to train while the breaker is open.
    pub(crate) fn check_training_allowed(&self) -> Result<()> {
        if !self.training_paused() {
            return Ok(());
        }
        let since = self.control().lock().controller.status().breaker_opened_at;
        Err(EngineError::TrainingPaused { since })
    }

    /// The breach periods recorded so far (a training leaves their events out).
    pub fn breach_periods(&self) -> Vec<BreachPeriod> {
        self.control().breaches()
    }

    /// A replay filter for a training run: events inside `breaches` are left out.
    pub(crate) fn outside_breaches(breaches: &[BreachPeriod], record: &LogRecord) -> bool {
        match record {
            LogRecord::Event(event) => !breaches.iter().any(|b| b.contains(event.timestamp)),
            _ => true,
        }
    }

    pub(crate) fn note_training(&self, version: &str, excluded: Vec<BreachPeriod>) -> Result<()> {
        self.control().note_training(version, excluded)
    }

    /// The controller's state and its recent decisions.
    pub fn controller_view(&self) -> ControllerView {
        let state = self.control().lock();
        let status = state.controller.status();
        ControllerView {
            mode: if status.dry_run { "dry_run" } else { "active" },
            paused: self.training_paused(),
            status,
            breaches: state.books.breaches.clone(),
            decisions: state.recent.iter().cloned().collect(),
            counts: state
                .counts
                .iter()
                .map(|(&(action, outcome), &count)| DecisionCount {
                    action,
                    outcome,
                    count,
                })
                .collect(),
        }
    }

    /// The observation of `now`: the monitoring report, the registry, the jobs.
    pub fn controller_observation(&self, now: Timestamp) -> Result<Observation> {
        let report = self.monitoring_report();
        let mut observation = observe_report(&report, now);
        let versions = self.list_versions()?;
        let models = self.models();
        let books = self.control().lock().books.clone();
        let tainted = |v: &registry::VersionInfo| {
            trained_on_breach(&books, &v.version, v.manifest.trained_until)
        };
        observation.last_good_version = versions
            .iter()
            .rev()
            .find(|v| {
                matches!(
                    v.status,
                    registry::Status::Serving | registry::Status::Retired
                ) && !tainted(v)
            })
            .map(|v| v.version.clone());
        if let Some(manifest) = &models.manifest {
            observation.serving_version = Some(manifest.version.clone());
            observation.serving_trained_on_breach =
                trained_on_breach(&books, &manifest.version, manifest.trained_until);
        }
        observation.training_running = self.jobs().running().is_some();
        Ok(observation)
    }

    /// One step of the self-healing loop at `now` (the wall clock in `serve`, the
    /// simulated clock in the benchmark): observe, decide, carry out the taken
    /// decisions, record all of them. Returns the decisions of this step.
    pub fn control_step(self: &Arc<Self>, now: Timestamp) -> Result<Vec<DecisionRecord>> {
        let _one_step_at_a_time = self
            .control()
            .step
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let observation = self.controller_observation(now)?;
        let window_ms = (self.config().monitoring.window_secs as i64).saturating_mul(1000);
        let mut state = self.control().lock();
        let clear_since = state.controller.status().quality_clear_since;
        let decisions = state
            .controller
            .observe(&observation)
            .map_err(|e| EngineError::Controller(e.to_string()))?;
        let window_from = now.plus_millis(-window_ms);
        let above = above_a_threshold(&state.controller.config().quality, &observation.quality);
        let suspect_since = match (above, state.books.suspect_since) {
            (false, _) => None,
            (true, Some(since)) => Some(since),
            (true, None) => Some(window_from),
        };
        state.books.suspect_since = suspect_since;
        let mut records = Vec::with_capacity(decisions.len());
        for decision in decisions {
            match decision.action {
                ControlAction::PauseTraining => state.books.breaches.push(BreachPeriod {
                    from: suspect_since.unwrap_or(window_from),
                    until: None,
                }),
                ControlAction::ResumeTraining => {
                    if let Some(open) = state.books.breaches.last_mut() {
                        open.until = Some(clear_since.unwrap_or(now));
                    }
                }
                _ => {}
            }
            records.push(DecisionRecord {
                decision,
                result: None,
                error: None,
            });
        }
        state.books.controller = state.controller.state().clone();
        let books = state.books.clone();
        drop(state);
        for record in &mut records {
            if record.decision.is_taken() {
                self.carry_out(record);
            }
        }
        self.control().persist(&books)?;
        self.control().append_decisions(&records)?;
        let mut state = self.control().lock();
        for record in &records {
            tracing::info!("controller: {}", record.decision);
            let key = (
                action_name(record.decision.action.kind()),
                outcome_name(&record.decision.outcome),
            );
            *state.counts.entry(key).or_default() += 1;
            if state.recent.len() == KEPT_DECISIONS {
                state.recent.pop_front();
            }
            state.recent.push_back(record.clone());
        }
        Ok(records)
    }

    /// Starts a thread that runs [`Engine::control_step`] at the wall clock every
    /// `every` (`flywheel serve` passes the monitoring window) until the engine shuts
    /// down or is dropped, once the start-up replay is done. A failed step is logged and
    /// the next one runs as planned.
    pub fn run_controller_every(self: &Arc<Self>, every: Duration) -> Result<()> {
        let engine = Arc::downgrade(self);
        let tick = Duration::from_millis(200);
        let body = move || {
            let mut next = Instant::now() + every;
            loop {
                std::thread::sleep(tick);
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                if engine.is_shutting_down() {
                    return;
                }
                // A window half rebuilt by the start-up replay is no evidence.
                if Instant::now() < next || !engine.is_ready() {
                    continue;
                }
                next = Instant::now() + every;
                if let Err(e) = engine.control_step(Timestamp::now()) {
                    tracing::error!("controller step failed: {e}");
                }
            }
        };
        std::thread::Builder::new()
            .name("flywheel-controller".into())
            .spawn(body)
            .map_err(|e| EngineError::io("controller thread", e))?;
        Ok(())
    }

    fn carry_out(self: &Arc<Self>, record: &mut DecisionRecord) {
        let done = match &record.decision.action {
            ControlAction::PauseTraining => {
                self.control().paused.store(true, Ordering::Release);
                Ok("training paused".to_string())
            }
            ControlAction::ResumeTraining => {
                self.control().paused.store(false, Ordering::Release);
                Ok("training resumed".to_string())
            }
            ControlAction::Rollback { to: Some(to), .. } => {
                self.promote(to).map(|v| format!("serving {v}"))
            }
            ControlAction::Rollback { to: None, .. } => Ok("nothing to roll back to".into()),
            ControlAction::Retrain { warm_start } => {
                let origin = match warm_start {
                    true => Origin::WarmStart,
                    false => Origin::Trained,
                };
                self.start_training_as(false, origin)
                    .map(|job| match warm_start {
                        true => format!(
                            "training job {} (warm start from the serving version's factors)",
                            job.id
                        ),
                        false => format!("training job {}", job.id),
                    })
            }
        };
        match done {
            Ok(result) => record.result = Some(result),
            Err(e) => {
                tracing::error!("controller: {} failed: {e}", record.decision.action);
                record.error = Some(e.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_secs(1_800_000_000 + secs)
    }

    #[test]
    fn a_version_is_trained_on_a_breach_its_window_reaches_unless_it_left_it_out() {
        let breach = BreachPeriod {
            from: at(100),
            until: Some(at(200)),
        };
        let mut books = Books {
            breaches: vec![breach],
            ..Books::default()
        };
        assert!(!trained_on_breach(&books, "v1", Some(at(50))));
        assert!(trained_on_breach(&books, "v2", Some(at(150))));
        assert!(trained_on_breach(&books, "v3", Some(at(500))));
        assert!(!trained_on_breach(&books, "v3", None));
        books.excluded.insert("v3".into(), vec![breach]);
        assert!(!trained_on_breach(&books, "v3", Some(at(500))));
    }

    #[test]
    fn a_training_replay_leaves_out_the_events_inside_a_breach() {
        use flywheel_core::{Action, Event, ItemId, UserId};
        let breach = BreachPeriod {
            from: at(100),
            until: Some(at(200)),
        };
        let event = |secs: i64| {
            LogRecord::Event(Event {
                user_id: UserId::new_unchecked("u".to_string()),
                item_id: ItemId::new_unchecked("i".to_string()),
                action: Action::View,
                value: None,
                timestamp: at(secs),
                request_id: None,
                position: None,
                context: Default::default(),
            })
        };
        let kept: Vec<bool> = [50, 100, 150, 200]
            .iter()
            .map(|&s| Engine::outside_breaches(&[breach], &event(s)))
            .collect();
        assert_eq!(kept, [true, false, false, true]);
        assert!(Engine::outside_breaches(&[], &event(150)));
    }

    #[test]
    fn breaches_contain_their_start_and_not_their_end() {
        let closed = BreachPeriod {
            from: at(100),
            until: Some(at(200)),
        };
        assert!(!closed.contains(at(99)) && closed.contains(at(100)));
        assert!(closed.contains(at(199)) && !closed.contains(at(200)));
        let open = BreachPeriod {
            from: at(100),
            until: None,
        };
        assert!(open.contains(at(1_000_000)));
    }
}
