//! A toy shop that does what the engine will do with the controller's decisions:
//! it monitors a window every `STEP` minutes, trains versions on log windows, gates
//! candidates, rolls back, and pauses training while the breaker is open.

use flywheel_controller::*;
use flywheel_core::Timestamp;

/// Minutes between observations.
pub const STEP: i64 = 30;
/// Minutes a training job takes.
pub const TRAINING: i64 = 60;
/// Minutes of post-drift data a candidate needs to pass the gate.
pub const GATE_NEEDS_AFTER_DRIFT: i64 = 360;

/// A registered version: trained on the log between two instants (minutes).
#[derive(Debug, Clone)]
pub struct Version {
    pub name: String,
    pub from: i64,
    pub to: i64,
    pub promoted: bool,
}

/// A training job in flight.
#[derive(Debug, Clone)]
pub struct Job {
    pub started: i64,
    pub from: i64,
}

/// The world the toy shop lives in.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// `[start, end)` minutes in which 30% of events carry unknown item ids.
    pub corruption: Option<(i64, i64)>,
    /// The minute from which users' tastes have shifted.
    pub drift_at: Option<i64>,
    /// Minutes at which the operator's schedule starts a training (if not paused).
    pub scheduled_trainings: Vec<i64>,
}

/// The shop.
pub struct Shop {
    pub world: World,
    pub controller: Controller,
    pub versions: Vec<Version>,
    pub serving: usize,
    pub job: Option<Job>,
    pub paused: bool,
    /// Known breach periods `[start, end)`, in minutes; the last may be open.
    pub breaches: Vec<(i64, Option<i64>)>,
    /// Every decision, in order.
    pub decisions: Vec<Decision>,
    /// (minute, version, promoted) of every finished job.
    pub trained: Vec<(i64, String, bool)>,
    /// Minutes at which jobs started.
    pub started: Vec<(i64, bool)>,
}

pub fn at(minute: i64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + minute * 60)
}

impl Shop {
    /// A shop serving `v1`, trained on the day before minute 0.
    pub fn new(world: World, config: ControllerConfig) -> Shop {
        Shop {
            world,
            controller: Controller::new(config).unwrap(),
            versions: vec![Version {
                name: "v1".into(),
                from: -1_440,
                to: 0,
                promoted: true,
            }],
            serving: 0,
            job: None,
            paused: false,
            breaches: Vec::new(),
            decisions: Vec::new(),
            trained: Vec::new(),
            started: Vec::new(),
        }
    }

    /// Runs every step from 0 to `until` minutes.
    pub fn run(&mut self, until: i64) {
        for minute in (STEP..=until).step_by(STEP as usize) {
            self.step(minute);
        }
    }

    fn step(&mut self, now: i64) {
        self.finish_job(now);
        if self.world.scheduled_trainings.contains(&now) && !self.paused {
            self.start_job(now, false);
        }
        let observation = self.observe(now);
        let decisions = self.controller.observe(&observation).unwrap();
        for decision in decisions {
            self.note_breach(&decision.action, now);
            if decision.is_taken() {
                self.carry_out(&decision.action, now);
            }
            self.decisions.push(decision);
        }
    }

    fn start_job(&mut self, now: i64, warm_start: bool) {
        if self.job.is_some() {
            return;
        }
        // Training never reads a known bad window: it starts after the last breach.
        let from = self
            .breaches
            .iter()
            .filter_map(|(_, end)| *end)
            .max()
            .unwrap_or(-1_440);
        self.job = Some(Job { started: now, from });
        self.started.push((now, warm_start));
    }

    fn finish_job(&mut self, now: i64) {
        let Some(job) = self.job.clone().filter(|j| now - j.started >= TRAINING) else {
            return;
        };
        self.job = None;
        let name = format!("v{}", self.versions.len() + 1);
        let passes = self.world.drift_at.is_none_or(|drift| {
            job.started <= drift || job.started - drift >= GATE_NEEDS_AFTER_DRIFT
        });
        self.versions.push(Version {
            name: name.clone(),
            from: job.from,
            to: job.started,
            promoted: passes,
        });
        if passes {
            self.serving = self.versions.len() - 1;
        }
        self.trained.push((now, name, passes));
    }

    /// The breach periods are facts of the monitor, kept whether or not the breaker's
    /// decisions are carried out (dry-run): from the first breaching window to the
    /// start of the recovery period.
    fn note_breach(&mut self, action: &ControlAction, now: i64) {
        let config = self.controller.config().clone();
        match action {
            ControlAction::PauseTraining => {
                let lead = i64::from(config.quality.breach_observations) * STEP;
                self.breaches.push((now - lead, None));
            }
            ControlAction::ResumeTraining => {
                let recovery = config.quality.recovery_secs as i64 / 60;
                if let Some(open) = self.breaches.last_mut() {
                    open.1 = Some(now - recovery);
                }
            }
            _ => {}
        }
    }

    fn carry_out(&mut self, action: &ControlAction, now: i64) {
        match action {
            ControlAction::PauseTraining => self.paused = true,
            ControlAction::ResumeTraining => self.paused = false,
            ControlAction::Rollback { to, .. } => {
                let to = to.as_deref().unwrap();
                self.serving = self.versions.iter().position(|v| v.name == to).unwrap();
            }
            ControlAction::Retrain { warm_start } => self.start_job(now, *warm_start),
        }
    }

    fn overlaps_breach(&self, version: &Version) -> bool {
        self.breaches
            .iter()
            .any(|(start, end)| version.to > *start && end.is_none_or(|e| version.from < e))
    }

    fn observe(&self, now: i64) -> Observation {
        let serving = &self.versions[self.serving];
        let last_good = self
            .versions
            .iter()
            .rev()
            .find(|v| v.promoted && !self.overlaps_breach(v));
        Observation {
            at: at(now),
            quality: self.quality(now),
            features: vec![FeatureDrift {
                feature: "category".into(),
                statistic: DriftStatistic::Psi,
                value: self.psi(serving, now),
                threshold: 0.1,
            }],
            prediction: None,
            serving_version: Some(serving.name.clone()),
            last_good_version: last_good.map(|v| v.name.clone()),
            training_running: self.job.is_some(),
            serving_trained_on_breach: self.overlaps_breach(serving),
        }
    }

    fn quality(&self, now: i64) -> DataQuality {
        let corrupted = self
            .world
            .corruption
            .is_some_and(|(start, end)| now > start && now - STEP < end);
        DataQuality {
            events: 1_000,
            unknown_item_share: if corrupted { 0.3 } else { 0.0 },
            missing_field_share: 0.0,
            rejected_share: 0.0,
        }
    }

    /// The category PSI of the live window against the serving version's reference:
    /// high once tastes have shifted, unless the version learned enough of the new ones.
    fn psi(&self, serving: &Version, now: i64) -> f64 {
        match self.world.drift_at {
            Some(drift) if now > drift && serving.to - drift < GATE_NEEDS_AFTER_DRIFT => 0.3,
            _ => 0.02,
        }
    }

    /// The taken decisions, as (minute, action kind).
    pub fn taken(&self) -> Vec<(i64, ActionKind)> {
        self.decisions
            .iter()
            .filter(|d| d.is_taken())
            .map(|d| ((d.at.millis() - at(0).millis()) / 60_000, d.action.kind()))
            .collect()
    }
}
