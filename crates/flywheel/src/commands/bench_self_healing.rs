//! `flywheel bench self-healing [--json]`: the self-healing controller end to end on
//! the simulator, on simulated time, through the real engine.
//!
//! The shop's organic events ([`flywheel_sim::simulate`]: the site's own surfaces,
//! where users' tastes and the stream's damage show) are ingested in event time
//! order, and at every session start flywheel serves the user a list
//! (`Engine::serve` at the simulated `now`, logged as an impression); every `step_hours` the engine's controller takes one step
//! ([`Engine::control_step`]) and the bench waits for any training job it started.
//! Each served list is scored against the simulator's truth: its expected clicks over
//! those of the ideal list of that moment ([`World::expected_clicks_at`],
//! [`World::ideal_list_at`]), so 1.0 is the best any model could do.
//!
//! - **A, corrupted stream**: from day 3 to day 4 a share of events names unknown
//!   items and loses its context ([`StreamCorruption`]). The operator's schedule trains
//!   v1 on day 2 and another version three hours into the corruption, before the
//!   breaker has seen enough to open; the controller pauses training, rolls back to
//!   the last good version, refuses the schedule while quality is bad, resumes after
//!   the recovery period, and the next scheduled training leaves the breach out.
//! - **B, taste drift**: users' category tastes shift on day 4 ([`TasteDrift`]). No
//!   training is scheduled after v1: the controller sees the engaged-category PSI
//!   cross its threshold and starts a retraining whose candidate has to pass the gate.
//!   The same world is run once more with the controller in dry-run (nothing is
//!   retrained), so the quality after the retraining is compared with the quality the
//!   old version gives in the same hours.

use anyhow::{bail, Context, Result};
use flywheel_core::{Event, LogRecord, Timestamp};
use flywheel_engine::{DecisionRecord, Engine, EngineConfig, JobState, ServeRequest};
use flywheel_sim::{SimConfig, StreamCorruption, TasteDrift, World};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// The flags of `flywheel bench self-healing`.
#[derive(Debug, Clone, clap::Args)]
pub struct SelfHealingArgs {
    /// Users of the simulated shop (more users: less noisy quality figures).
    #[arg(long, default_value_t = 800)]
    pub users: usize,
    /// Items of the simulated shop.
    #[arg(long, default_value_t = 300)]
    pub items: usize,
    /// Seed of the world and of the users' reactions.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Simulated hours between two controller steps (also the monitoring window).
    #[arg(long, default_value_t = 3)]
    pub step_hours: u32,
    /// Only one scenario: `corruption` or `drift`.
    #[arg(long)]
    pub only: Option<String>,
    /// Print the timelines as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The first day of the corruption and the first clean day after it (scenario A).
const CORRUPTION_DAYS: (u32, u32) = (3, 4);
/// The day tastes shift (scenario B).
const DRIFT_DAY: u32 = 4;
/// The watched feature of the drift rule: the top-level category of engaged items,
/// a fact of the users' behaviour (the served lists' features change with every new
/// version, which is not drift of the world).
const WATCHED: &str = "engaged_item_category";

/// One step of a timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The step's time (its end).
    pub at: String,
    /// Days since the start of the simulation.
    pub day: f64,
    /// The version serving during the step.
    pub serving: String,
    /// Lists served during the step.
    pub served: usize,
    /// Mean quality of those lists against the truth (expected clicks / ideal).
    pub quality: Option<f64>,
    /// The monitoring window's unknown-item share at the step.
    pub unknown_item_share: f64,
    /// The monitoring window's share of events without their device context.
    pub missing_field_share: f64,
    /// The watched feature's PSI against the serving version's reference.
    pub watched_psi: Option<f64>,
    /// What happened outside the controller (scheduled trainings, refusals, jobs).
    pub notes: Vec<String>,
    /// The controller's decisions at this step, in words.
    pub decisions: Vec<String>,
    /// The same decisions, as the engine records them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decision_records: Vec<DecisionRecord>,
}

/// A scenario's timeline and its summary figures.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// `corrupted_stream`, `taste_drift` or `taste_drift_dry_run`.
    pub scenario: String,
    /// Whether the controller only recorded its decisions.
    pub dry_run: bool,
    /// Every step.
    pub steps: Vec<Step>,
    /// Every version trained, with whether it was promoted.
    pub trained: Vec<(String, bool, String)>,
}

/// A simulated shop served by the real engine.
struct Shop {
    engine: Arc<Engine>,
    world: World,
    arrivals: Vec<(Timestamp, usize)>,
    next_arrival: usize,
    /// The shop's organic events (the site's other surfaces), in time order.
    organic: Vec<Event>,
    next_event: usize,
    timeline: Timeline,
    dir: ScratchDir,
}

/// A data directory of its own, removed when the scenario ends.
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn new(name: &str) -> Result<ScratchDir> {
        let path = std::env::temp_dir().join(format!(
            "flywheel-bench-self-healing-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(ScratchDir(path))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sim_config(args: &SelfHealingArgs, days: u32) -> SimConfig {
    SimConfig {
        seed: args.seed,
        users: args.users,
        items: args.items,
        categories: 6,
        days,
        latent_dim: 8,
        new_item_share: 0.0,
        new_user_share: 0.0,
        ..SimConfig::quickstart()
    }
}

fn engine_config(dir: &std::path::Path, args: &SelfHealingArgs, dry_run: bool) -> EngineConfig {
    let mut config = EngineConfig {
        data_dir: dir.to_path_buf(),
        ..EngineConfig::default()
    };
    config.log.fsync = false;
    // Offline results never depend on timing: nor does this benchmark.
    config.deadlines.retrieval_ms = 600_000;
    config.deadlines.ranking_ms = 600_000;
    let step_secs = u64::from(args.step_hours) * 3_600;
    config.monitoring.window_secs = step_secs;
    config.monitoring.window_buckets = args.step_hours.max(1) as usize;
    // The gate holds out the latest 2% of events (10% by default), so a version's
    // training window reaches close to when it was trained.
    config.gate.holdout = 0.02;
    config.controller.dry_run = dry_run;
    config.controller.drift.watched_features = vec![WATCHED.to_string()];
    config.controller.drift.prediction = false;
    config
}

impl Shop {
    fn open(args: &SelfHealingArgs, world: SimConfig, dry_run: bool, name: &str) -> Result<Shop> {
        let sim = flywheel_sim::simulate(&world).context("simulating the shop")?;
        let world = sim.world;
        let dir = ScratchDir::new(name)?;
        let engine = Engine::open(engine_config(&dir.0, args, dry_run))?;
        let records: Vec<LogRecord> = world
            .items
            .iter()
            .cloned()
            .map(LogRecord::ItemUpsert)
            .chain(world.users.iter().cloned().map(LogRecord::UserUpsert))
            .collect();
        engine.append_records(&records)?;
        engine.catch_up();
        engine.rebuild_content_index();
        let arrivals = world.arrivals();
        Ok(Shop {
            engine: Arc::new(engine),
            world,
            arrivals,
            next_arrival: 0,
            organic: sim.events,
            next_event: 0,
            timeline: Timeline {
                scenario: name.to_string(),
                dry_run,
                steps: Vec::new(),
                trained: Vec::new(),
            },
            dir,
        })
    }

    fn at_day(&self, day: f64) -> Timestamp {
        self.world
            .config()
            .start
            .plus_millis((day * Timestamp::DAY as f64).round() as i64)
    }

    fn day_of(&self, at: Timestamp) -> f64 {
        at.secs_since(self.world.config().start) / 86_400.0
    }

    /// Ingests the organic events before `until` and waits until they are applied, so
    /// what the next request sees never depends on the consumer's timing.
    fn ingest_until(&mut self, until: Timestamp) -> Result<()> {
        let first = self.next_event;
        while self
            .organic
            .get(self.next_event)
            .is_some_and(|e| e.timestamp < until)
        {
            self.next_event += 1;
        }
        let due = self.organic[first..self.next_event].to_vec();
        if !due.is_empty() {
            self.engine.ingest(due)?;
            self.engine.catch_up();
        }
        Ok(())
    }

    /// Waits until the impression writer has logged the list just served, so the
    /// log's order (and every training on it) is the same in every run.
    fn wait_for_impression(&self, offset: u64) -> Result<()> {
        for _ in 0..200_000 {
            if self.engine.log_end_offset() >= offset {
                self.engine.catch_up();
                return Ok(());
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        bail!("the impression of a served list was not logged (dropped: see the engine's log)")
    }

    /// Serves every arrival before `until`; returns the lists served and the sum
    /// of their quality.
    fn serve_until(&mut self, until: Timestamp) -> Result<(usize, f64)> {
        let (mut served, mut quality) = (0, 0.0);
        while let Some(&(at, user)) = self.arrivals.get(self.next_arrival) {
            if at >= until {
                break;
            }
            self.next_arrival += 1;
            self.ingest_until(at)?;
            let request = ServeRequest {
                user_id: self.world.users[user].id.clone(),
                count: 10,
                category: None,
                now: Some(at),
                forced: Vec::new(),
                context: Default::default(),
            };
            let before = self.engine.log_end_offset();
            let answer = self.engine.serve(&request)?;
            self.wait_for_impression(before + 1)?;
            let list: Vec<usize> = answer
                .recommendation
                .items
                .iter()
                .filter_map(|i| self.world.item_index(i.item_id.as_str()))
                .collect();
            let ideal = self.world.ideal_list_at(user, 10, at);
            let best = self.world.expected_clicks_at(user, &ideal, at);
            if best > 0.0 {
                quality += self.world.expected_clicks_at(user, &list, at) / best;
                served += 1;
            }
        }
        self.ingest_until(until)?;
        self.engine.catch_up();
        Ok((served, quality))
    }

    /// The operator's scheduled training at `at` (refused while the breaker is open).
    fn scheduled_training(&mut self, force: bool) -> String {
        match self.engine.train(force, &mut |_| {}) {
            Ok(outcome) => {
                let verdict = if outcome.forced {
                    "deployed (forced)"
                } else if outcome.promoted {
                    "promoted"
                } else {
                    "rejected by the gate"
                };
                self.timeline.trained.push((
                    outcome.version.clone(),
                    outcome.promoted,
                    "schedule".into(),
                ));
                format!("scheduled training: {} {verdict}", outcome.version)
            }
            Err(e) => format!("scheduled training refused: {e}"),
        }
    }

    /// Waits for the training job the controller started, if any (simulated time
    /// stands still meanwhile).
    fn wait_for_job(&mut self, records: &[DecisionRecord]) -> Result<Option<String>> {
        let Some(id) = records
            .iter()
            .filter_map(|r| r.result.as_deref())
            .find_map(|r| r.strip_prefix("training job "))
            .and_then(|r| r.split_whitespace().next())
        else {
            return Ok(None);
        };
        loop {
            let status = self
                .engine
                .job(id)
                .with_context(|| format!("job {id} vanished"))?;
            match status.state {
                JobState::Succeeded => {
                    let result = status.result.context("a finished job has a result")?;
                    let verdict = if result.promoted {
                        "promoted"
                    } else {
                        "rejected by the gate"
                    };
                    self.timeline.trained.push((
                        result.version.clone(),
                        result.promoted,
                        "controller".into(),
                    ));
                    let start = match &result.warm_start {
                        Some(w) => format!(
                            "warm start: {} of {} items' factors reused, {} sweeps",
                            w.items_initialised, w.items, w.iterations
                        ),
                        None => "cold start".to_string(),
                    };
                    return Ok(Some(format!(
                        "retraining job: {} {verdict} ({start})",
                        result.version
                    )));
                }
                JobState::Failed => {
                    return Ok(Some(format!(
                        "retraining job failed: {}",
                        status.error.unwrap_or_default()
                    )))
                }
                JobState::Queued | JobState::Running => {
                    std::thread::sleep(Duration::from_millis(50))
                }
            }
        }
    }

    /// Runs from `from_day` to `until_day` in steps; `schedule` names the days at
    /// whose step the operator trains (after the traffic, before the controller), and
    /// whether that training is forced past the gate.
    fn run(
        &mut self,
        from_day: f64,
        until_day: f64,
        step_hours: u32,
        schedule: &[(f64, bool)],
    ) -> Result<()> {
        let step = f64::from(step_hours) / 24.0;
        let mut day = from_day;
        while day + step <= until_day + 1e-9 {
            day += step;
            let at = self.at_day(day);
            let serving = self.engine.models().version().to_string();
            let (served, quality) = self.serve_until(at)?;
            let mut notes = Vec::new();
            if let Some(&(_, force)) = schedule.iter().find(|(d, _)| (d - day).abs() < 1e-6) {
                notes.push(self.scheduled_training(force));
            }
            let records = self.engine.control_step(at)?;
            notes.extend(self.wait_for_job(&records)?);
            let report = self.engine.monitoring_report();
            let observation = flywheel_engine::observe_report(&report, at);
            self.timeline.steps.push(Step {
                at: at.to_string(),
                day: (self.day_of(at) * 1000.0).round() / 1000.0,
                serving,
                served,
                quality: (served > 0).then(|| quality / served as f64),
                unknown_item_share: observation.quality.unknown_item_share,
                missing_field_share: observation.quality.missing_field_share,
                watched_psi: report.feature(WATCHED).and_then(|f| f.value),
                notes,
                decisions: records.iter().map(|r| r.decision.to_string()).collect(),
                decision_records: records,
            });
        }
        Ok(())
    }

    /// Stops the engine (before its directory goes) and returns the timeline.
    fn finish(self) -> Timeline {
        let Shop {
            engine,
            timeline,
            dir,
            ..
        } = self;
        drop(engine);
        drop(dir);
        timeline
    }

    /// The untrained shop's first two days, then v1 (forced: nothing serves yet).
    fn start(&mut self, step_hours: u32) -> Result<()> {
        self.run(0.0, 2.0, step_hours, &[])?;
        let outcome = self.engine.train(true, &mut |_| {})?;
        self.timeline
            .trained
            .push((outcome.version.clone(), true, "start".into()));
        if let Some(last) = self.timeline.steps.last_mut() {
            last.notes
                .push(format!("initial training: {} promoted", outcome.version));
        }
        Ok(())
    }
}

/// Scenario A: a corrupted stream.
pub fn corrupted_stream(args: &SelfHealingArgs) -> Result<Timeline> {
    let (first, clean) = CORRUPTION_DAYS;
    let mut world = sim_config(args, 7);
    world.corruption = Some(StreamCorruption {
        day: first,
        until_day: Some(clean),
        unknown_item_share: 0.3,
        missing_field_share: 0.3,
    });
    let mut shop = Shop::open(args, world, false, "corrupted_stream")?;
    shop.start(args.step_hours)?;
    let hour = 1.0 / 24.0;
    let into_corruption = f64::from(first) + 2.0 * f64::from(args.step_hours) * hour;
    // The operator trains every day at midnight (through the gate), and deploys one
    // version by hand (forced) two steps into the corruption, just before the breaker
    // sees its second breaching window and opens: a version trained on a bad window serves.
    let schedule = [
        (into_corruption, true),
        (4.0, false),
        (5.0, false),
        (6.0, false),
    ];
    shop.run(2.0, 7.0, args.step_hours, &schedule)?;
    Ok(shop.finish())
}

/// Scenario B: a shift of the users' tastes; `dry_run` runs the same world with the
/// controller only recording (the counterfactual without retraining).
pub fn taste_drift(args: &SelfHealingArgs, dry_run: bool) -> Result<Timeline> {
    let mut world = sim_config(args, 8);
    world.drift = Some(TasteDrift {
        day: DRIFT_DAY,
        strength: 1.0,
    });
    let name = if dry_run {
        "taste_drift_dry_run"
    } else {
        "taste_drift"
    };
    let mut shop = Shop::open(args, world, dry_run, name)?;
    shop.start(args.step_hours)?;
    shop.run(2.0, 8.0, args.step_hours, &[])?;
    Ok(shop.finish())
}

/// Mean quality of the steps whose day is in `[from, until)`, weighted by lists.
pub fn mean_quality(timeline: &Timeline, from: f64, until: f64) -> Option<f64> {
    let (mut sum, mut lists) = (0.0, 0usize);
    for step in &timeline.steps {
        if step.day > from + 1e-9 && step.day <= until + 1e-9 {
            if let Some(q) = step.quality {
                sum += q * step.served as f64;
                lists += step.served;
            }
        }
    }
    (lists > 0).then(|| sum / lists as f64)
}

fn print_timeline(timeline: &Timeline) {
    let mode = if timeline.dry_run { " (dry run)" } else { "" };
    println!("== {}{mode}", timeline.scenario);
    println!(
        "{:>6}  {:<8} {:>6} {:>8} {:>8} {:>8} {:>7}",
        "day", "serving", "lists", "quality", "unknown", "missing", "psi"
    );
    for step in &timeline.steps {
        let eventful = !step.notes.is_empty() || !step.decisions.is_empty();
        let daily = (step.day.fract() < 1e-6) || (1.0 - step.day.fract()) < 1e-6;
        if !(eventful || daily) {
            continue;
        }
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        println!(
            "{:>6.3}  {:<8} {:>6} {:>8} {:>8.3} {:>8.3} {:>7}",
            step.day,
            step.serving,
            step.served,
            opt(step.quality),
            step.unknown_item_share,
            step.missing_field_share,
            opt(step.watched_psi)
        );
        for note in &step.notes {
            println!("          · {note}");
        }
        for decision in &step.decisions {
            println!("          ▸ {decision}");
        }
    }
}

fn print_quality(label: &str, value: Option<f64>) {
    let text = value.map_or("-".to_string(), |v| format!("{v:.4}"));
    println!("  {label:<52} {text}");
}

/// Runs the benchmark.
pub fn run(args: &SelfHealingArgs) -> Result<()> {
    if args.step_hours == 0 || 24 % args.step_hours != 0 {
        bail!("--step-hours must divide 24 (1, 2, 3, 4, 6, 8, 12 or 24)");
    }
    if args.users < 50 || args.items < 20 {
        bail!("--users must be at least 50 and --items at least 20");
    }
    let wanted = |name: &str| args.only.as_deref().is_none_or(|o| o == name);
    if let Some(only) = &args.only {
        if only != "corruption" && only != "drift" {
            bail!("--only {only}: expected `corruption` or `drift`");
        }
    }
    let mut timelines = Vec::new();
    if wanted("corruption") {
        timelines.push(corrupted_stream(args)?);
    }
    if wanted("drift") {
        timelines.push(taste_drift(args, false)?);
        timelines.push(taste_drift(args, true)?);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&timelines)?);
        return Ok(());
    }
    for timeline in &timelines {
        print_timeline(timeline);
        println!("  trained: {:?}", timeline.trained);
        let (first, clean) = (f64::from(CORRUPTION_DAYS.0), f64::from(CORRUPTION_DAYS.1));
        match timeline.scenario.as_str() {
            "corrupted_stream" => {
                print_quality(
                    "quality, days 2–3 (v1, clean)",
                    mean_quality(timeline, 2.0, first),
                );
                print_quality(
                    "quality, day 3 (the corruption)",
                    mean_quality(timeline, first, clean),
                );
                print_quality(
                    "quality, days 4–7 (after)",
                    mean_quality(timeline, clean, 7.0),
                );
            }
            _ => {
                let drift = f64::from(DRIFT_DAY);
                print_quality(
                    "quality, days 2–4 (before the drift)",
                    mean_quality(timeline, 2.0, drift),
                );
                print_quality(
                    "quality, day 4 (the drift's first day)",
                    mean_quality(timeline, drift, drift + 1.0),
                );
                print_quality(
                    "quality, days 5–8",
                    mean_quality(timeline, drift + 1.0, 8.0),
                );
            }
        }
        println!();
    }
    Ok(())
}
