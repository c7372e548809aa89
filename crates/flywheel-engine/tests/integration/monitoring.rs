//! Live monitoring end to end on the simulated shop: the engine serves simulated users
//! on a simulated clock, they react ([`World::respond`]), and the report compares the
//! live window with the served version's reference. Category tastes shift on day 10
//! ([`TasteDrift`]), so a window before it shows no drift and a window after it does.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::OnceLock;

use flywheel_core::{Action, Event, ItemId, LogRecord, Timestamp, UserId};
use flywheel_engine::{Engine, EngineConfig, MonitoringReport, ServeRequest};
use flywheel_sim::{SimConfig, TasteDrift, World};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::{config, wait_for_log};

const DRIFT_DAY: u32 = 10;

/// The monitoring settings of these tests: a two-day window of two-hour buckets (a
/// day of this shop holds a few hundred engagements, too few for KS to tell a 0.1
/// shift from noise).
fn monitoring_config(dir: &std::path::Path) -> EngineConfig {
    let mut config = config(dir);
    config.monitoring.window_secs = 2 * 86_400;
    config.monitoring.window_buckets = 24;
    // What is served must not depend on the machine's speed: a stage past its deadline
    // falls back to the fused order, which changes the features and predictions served.
    config.deadlines.retrieval_ms = 600_000;
    config.deadlines.ranking_ms = 600_000;
    // The default unwatched list leaves out what moves with the log's age.
    config
}

fn day(world: &World, d: f64) -> Timestamp {
    world
        .config()
        .start
        .plus_millis((d * Timestamp::DAY as f64) as i64)
}

/// Events waiting for their event time (reactions come seconds, purchases hours later).
#[derive(Default)]
struct Pending {
    queue: BinaryHeap<Reverse<(Timestamp, u64, EventBox)>>,
    seq: u64,
}

struct EventBox(Event);

impl PartialEq for EventBox {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for EventBox {}
impl PartialOrd for EventBox {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for EventBox {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl Pending {
    fn push(&mut self, event: Event) {
        self.seq += 1;
        self.queue
            .push(Reverse((event.timestamp, self.seq, EventBox(event))));
    }

    fn due(&mut self, until: Timestamp) -> Vec<Event> {
        let mut due = Vec::new();
        while self
            .queue
            .peek()
            .is_some_and(|Reverse((t, _, _))| *t < until)
        {
            if let Some(Reverse((_, _, EventBox(event)))) = self.queue.pop() {
                due.push(event);
            }
        }
        due
    }
}

/// A running shop: the engine, the world and the reactions still to come.
struct Traffic {
    engine: Engine,
    world: World,
    arrivals: Vec<(Timestamp, usize)>,
    pending: Pending,
    rng: StdRng,
}

impl Traffic {
    fn ingest_until(&mut self, until: Timestamp) {
        let due = self.pending.due(until);
        if !due.is_empty() {
            // Applied before the next request, so what is served never depends on
            // how fast the consumer was.
            let range = self.engine.ingest(due).unwrap();
            assert!(self
                .engine
                .wait_applied(range.end, std::time::Duration::from_secs(60)));
        }
    }

    /// Serves every arrival in `[from, until)` and feeds the reactions back in event
    /// time order; the served list reaches the log before the reactions to it.
    fn run(&mut self, from: Timestamp, until: Timestamp) {
        let arrivals: Vec<(Timestamp, usize)> = self
            .arrivals
            .iter()
            .copied()
            .filter(|(t, _)| *t >= from && *t < until)
            .collect();
        for (at, user) in arrivals {
            self.ingest_until(at);
            let before = self.engine.log_end_offset();
            let request = ServeRequest {
                user_id: self.world.users[user].id.clone(),
                count: 10,
                category: None,
                now: Some(at),
                forced: Vec::new(),
                context: Default::default(),
            };
            let served = self.engine.serve(&request).unwrap();
            wait_for_log(&self.engine, before + 1);
            assert!(self
                .engine
                .wait_applied(before + 1, std::time::Duration::from_secs(60)));
            let list: Vec<usize> = served
                .recommendation
                .items
                .iter()
                .filter_map(|i| self.world.item_index(i.item_id.as_str()))
                .collect();
            for event in
                self.world
                    .respond(user, &list, at, Some(&served.request_id), &mut self.rng)
            {
                self.pending.push(event);
            }
        }
        self.ingest_until(until);
        self.engine.catch_up();
    }
}

/// What the scenario leaves for the tests to judge.
struct Scenario {
    /// Served by v2, days 8–10: no drift yet.
    before_drift: MonitoringReport,
    /// Days 11–13, after the tastes shifted on day 10.
    after_drift: MonitoringReport,
}

/// Every list is served by flywheel from day 0 (so the training windows and the live
/// window hold the same kind of traffic): untrained days 0–3, v1 days 3–7, v2
/// (trained on days 0–7) from day 7 on.
fn scenario() -> &'static Scenario {
    static SCENARIO: OnceLock<Scenario> = OnceLock::new();
    SCENARIO.get_or_init(|| {
        let world = World::generate(&SimConfig {
            days: 14,
            users: 400,
            drift: Some(TasteDrift {
                day: DRIFT_DAY,
                strength: 1.0,
            }),
            ..SimConfig::small()
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(monitoring_config(dir.path())).unwrap();
        let records: Vec<LogRecord> = world
            .items
            .iter()
            .cloned()
            .map(LogRecord::ItemUpsert)
            .chain(world.users.iter().cloned().map(LogRecord::UserUpsert))
            .collect();
        engine.append_records(&records).unwrap();
        engine.catch_up();
        // The watcher builds the content index a moment after the catalog changed,
        // perhaps from the first chunk of it; serving from that would depend on the
        // machine's speed. Built here from the whole catalog, it is never replaced by
        // an index of an older catalog.
        engine.rebuild_content_index();
        let arrivals = world.arrivals();
        let mut traffic = Traffic {
            engine,
            world,
            arrivals,
            pending: Pending::default(),
            rng: StdRng::seed_from_u64(7),
        };
        let at = |traffic: &Traffic, d: f64| day(&traffic.world, d);
        let phases = [0.0, 3.0, 7.0, 10.0, 13.0];
        let mut reports = Vec::new();
        for window in phases.windows(2) {
            let (from, until) = (at(&traffic, window[0]), at(&traffic, window[1]));
            traffic.run(from, until);
            match window[1] {
                d if d < 8.0 => {
                    traffic.engine.train(true, &mut |_| {}).unwrap();
                }
                _ => reports.push(traffic.engine.monitoring_report()),
            }
        }
        if let Some(c) = traffic.engine.models().reference.as_ref().and_then(|r| r.calibration.as_ref()) {
            eprintln!(
                "P(click) model: {} rows ({} positive); held out {} rows, rate {:.4}, mean prediction {:.4}",
                c.rows, c.positives, c.holdout_rows, c.holdout_positive_rate, c.holdout_mean_predicted
            );
        }
        traffic.engine.shutdown();
        drop(dir);
        let after_drift = reports.pop().unwrap();
        let before_drift = reports.pop().unwrap();
        Scenario {
            before_drift,
            after_drift,
        }
    })
}

fn describe(report: &MonitoringReport) -> String {
    let mut lines = vec![format!(
        "reference {:?} ({}), window {} events {} impressions, O/E {:?} on {} finalized",
        report.reference_version,
        report.reference_status,
        report.window.events,
        report.window.impressions,
        report.prediction.observed_over_expected,
        report.prediction.finalized_impressions
    )];
    for f in &report.features {
        lines.push(format!(
            "  {:<42} {:?} {:>8.4} (threshold {}) drifted {} watched {}",
            f.name,
            f.statistic,
            f.value.unwrap_or(f64::NAN),
            f.threshold,
            f.drifted,
            f.watched
        ));
    }
    lines.join("\n")
}

/// The scenario serves the same lists in every process (the content index is built from
/// the whole catalog before the first request), so its figures are fixed by the seeds.
#[test]
fn a_window_before_the_taste_drift_shows_no_drifted_feature() {
    let report = &scenario().before_drift;
    eprintln!("{}", describe(report));
    assert_eq!(report.reference_status, "ok");
    assert!(report.features.iter().filter(|f| f.value.is_some()).count() > 10);
    let drifted: Vec<&str> = report.drifted_features().map(|f| f.name.as_str()).collect();
    assert!(drifted.is_empty(), "drifted before the drift: {drifted:?}");
}

/// The scenario serves the same lists in every process (the content index is built from
/// the whole catalog before the first request), so its figures are fixed by the seeds.
#[test]
fn a_window_after_the_taste_drift_shows_drifted_features() {
    let report = &scenario().after_drift;
    eprintln!("{}", describe(report));
    let engaged = report.feature("engaged_category_affinity").unwrap();
    assert!(engaged.drifted && engaged.watched, "{engaged:?}");
}

#[test]
fn prediction_drift_is_judged_on_finalized_labels() {
    let prediction = &scenario().before_drift.prediction;
    assert!(prediction.calibrated && prediction.judged, "{prediction:?}");
    assert!(prediction.finalized_impressions > 0, "{prediction:?}");
    let oe = prediction.observed_over_expected.unwrap();
    assert!(oe.is_finite() && oe > 0.0, "O/E {oe}");
    let expected = prediction.mean_predicted_ctr.unwrap();
    assert!(
        (0.0..1.0).contains(&expected) && expected > 0.0,
        "{prediction:?}"
    );
}

/// Calibration of the served version's P(click) on the window before the drift. (Its O/E
/// once ranged 0.60–1.44 between processes: the watcher could build the content index
/// from the first chunk of the catalog, and the first days' lists then depended on timing.)
#[test]
fn observed_over_expected_is_near_one_without_drift() {
    let prediction = &scenario().before_drift.prediction;
    eprintln!("{prediction:?}");
    assert!(prediction.calibrated && prediction.judged, "{prediction:?}");
    let oe = prediction.observed_over_expected.unwrap();
    assert!((0.8..=1.25).contains(&oe), "O/E {oe}");
    assert!(!prediction.outside_band);
}

#[test]
fn a_stream_naming_unknown_items_raises_the_unknown_id_share() {
    let dir = tempfile::tempdir().unwrap();
    let engine = super::open_with_shop(dir.path());
    let clean = engine.monitoring_report().data_quality;
    assert_eq!(clean.unknown_item_events, 0, "{clean:?}");
    let last = super::shop()
        .records
        .iter()
        .filter_map(|r| match r {
            LogRecord::Event(e) => Some(e.timestamp),
            _ => None,
        })
        .max()
        .unwrap();
    let events: Vec<Event> = (0..400)
        .map(|i| Event {
            user_id: UserId::new_unchecked(format!("u{}", i % 20)),
            item_id: ItemId::new_unchecked(format!("no-such-item-{i}")),
            action: Action::View,
            value: None,
            timestamp: last.plus_millis(i64::from(i) * 1_000),
            request_id: None,
            position: None,
            context: Default::default(),
        })
        .collect();
    engine.ingest(events).unwrap();
    engine.catch_up();
    let dirty = engine.monitoring_report().data_quality;
    eprintln!("{dirty:?}");
    assert_eq!(dirty.unknown_item_events, 400);
    assert!(dirty.unknown_item_share > 0.05, "{dirty:?}");
    assert!(dirty.breaches.contains(&"unknown_item_share".to_string()));
}

#[test]
fn a_version_without_a_reference_serves_and_reports_no_reference() {
    let dir = tempfile::tempdir().unwrap();
    let version = {
        let engine = super::open_with_shop(dir.path());
        let report = engine.monitoring_report();
        assert!(
            report.reference_status.starts_with("no reference"),
            "{report:?}"
        );
        let outcome = engine.train(true, &mut |_| {}).unwrap();
        assert_eq!(engine.monitoring_report().reference_status, "ok");
        outcome.version
    };
    let file = flywheel_registry::models_dir(dir.path())
        .join(&version)
        .join(flywheel_registry::REFERENCE_FILE);
    std::fs::remove_file(&file).unwrap();
    let engine = Engine::open(config(dir.path())).unwrap();
    engine.catch_up();
    // Data quality is read before anything is served: the served list's impression is
    // stamped with the wall clock, far after the shop's events, and once the consumer
    // applies it the window slides to now and holds none of them (a race that made
    // this test flaky under load).
    assert!(engine.monitoring_report().data_quality.events > 0);
    let user = super::active_users(1).remove(0);
    let served = engine.recommend(user, 10, None);
    assert_eq!(served.model_version, version);
    assert!(!served.recommendation.items.is_empty());
    let report = engine.monitoring_report();
    assert!(
        report.reference_status.starts_with("no reference"),
        "{}",
        report.reference_status
    );
    assert!(report.features.is_empty());
}
