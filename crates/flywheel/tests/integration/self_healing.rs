//! `flywheel bench self-healing --json`: the two controller scenarios on the simulator,
//! end to end through the real engine on simulated time. Each test fails if the
//! controller does the wrong thing: acts before the trouble, misses it, rolls back
//! to the wrong version, lets training run on a bad window, or retrains in dry-run.

// Test helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::sync::OnceLock;

use super::run_flywheel;

/// Both scenarios at a small scale (the decisions, not the figures' precision, are
/// what these tests judge), run once per test binary.
fn timelines() -> &'static Vec<Value> {
    static TIMELINES: OnceLock<Vec<Value>> = OnceLock::new();
    TIMELINES.get_or_init(|| {
        let out = run_flywheel(&[
            "bench",
            "self-healing",
            "--json",
            "--users",
            "250",
            "--items",
            "120",
        ]);
        match serde_json::from_str::<Value>(&out) {
            Ok(Value::Array(timelines)) => timelines,
            other => panic!("not a JSON array of timelines: {other:?}\n{out}"),
        }
    })
}

fn timeline(name: &str) -> &'static Value {
    timelines()
        .iter()
        .find(|t| t["scenario"] == name)
        .unwrap_or_else(|| panic!("no timeline {name}"))
}

/// Every decision of a timeline as (day, action kind, outcome status, record).
fn decisions(timeline: &Value) -> Vec<(f64, String, String, Value)> {
    let mut all = Vec::new();
    for step in timeline["steps"].as_array().unwrap() {
        let day = step["day"].as_f64().unwrap();
        for record in step["decision_records"].as_array().into_iter().flatten() {
            all.push((
                day,
                record["action"]["kind"].as_str().unwrap().to_string(),
                record["outcome"]["status"].as_str().unwrap().to_string(),
                record.clone(),
            ));
        }
    }
    all
}

fn notes(timeline: &Value) -> Vec<(f64, String)> {
    let mut all = Vec::new();
    for step in timeline["steps"].as_array().unwrap() {
        for note in step["notes"].as_array().unwrap() {
            all.push((
                step["day"].as_f64().unwrap(),
                note.as_str().unwrap().to_string(),
            ));
        }
    }
    all
}

#[test]
fn a_version_trained_on_a_corrupted_window_is_rolled_back_and_training_waits() {
    let a = timeline("corrupted_stream");
    let taken: Vec<(f64, String)> = decisions(a)
        .into_iter()
        .filter(|(_, _, status, _)| status == "taken")
        .map(|(day, kind, _, _)| (day, kind))
        .collect();
    eprintln!("taken: {taken:?}");
    let day_of = |kind: &str| taken.iter().find(|(_, k)| k == kind).map(|(d, _)| *d);
    // Nothing before the corruption (day 3), and the breaker opens during it.
    assert!(taken.iter().all(|(day, _)| *day > 3.0), "{taken:?}");
    let paused = day_of("pause_training").expect("the breaker opened");
    assert!(paused < 4.0, "opened at day {paused}");
    // The version deployed by hand in the corruption is rolled back to v1.
    let rollback = decisions(a)
        .into_iter()
        .find(|(_, kind, status, _)| kind == "rollback" && status == "taken")
        .expect("a rollback was taken");
    assert_eq!(rollback.3["action"]["from"], "v2", "{:?}", rollback.3);
    assert_eq!(rollback.3["action"]["to"], "v1", "{:?}", rollback.3);
    assert_eq!(rollback.3["result"], "serving v1", "{:?}", rollback.3);
    assert_eq!(
        taken.iter().filter(|(_, k)| k == "rollback").count(),
        1,
        "{taken:?}"
    );
    // The schedule is refused while the breaker is open, and resumes after.
    let resumed = day_of("resume_training").expect("training resumed");
    assert!(resumed > 4.0 && resumed < 5.0, "resumed at day {resumed}");
    let notes = notes(a);
    assert!(
        notes
            .iter()
            .any(|(day, n)| (*day - 4.0).abs() < 1e-6 && n.contains("refused")),
        "{notes:?}"
    );
    // No training ran while the breaker was open.
    for (day, note) in &notes {
        if *day > paused && *day < resumed && note.contains("training") {
            assert!(note.contains("refused"), "day {day}: {note}");
        }
    }
    // The next training leaves the breach out: it is promoted and never rolled back.
    assert!(
        notes
            .iter()
            .any(|(day, n)| *day > resumed && n.contains("promoted")),
        "{notes:?}"
    );
    let last = a["steps"].as_array().unwrap().last().unwrap();
    assert_ne!(last["serving"], "v2");
    assert_ne!(
        last["serving"], "v1",
        "nothing newer served after the breach"
    );
}

#[test]
fn a_taste_drift_triggers_a_retraining_that_passes_the_gate() {
    let b = timeline("taste_drift");
    let all = decisions(b);
    eprintln!(
        "{:?}",
        all.iter().map(|(d, k, s, _)| (d, k, s)).collect::<Vec<_>>()
    );
    // No retraining is asked for before the tastes shift on day 4.
    assert!(all.iter().all(|(day, _, _, _)| *day > 4.0), "{all:?}");
    let retrain = all
        .iter()
        .find(|(_, kind, status, _)| kind == "retrain" && status == "taken")
        .expect("a retraining was taken");
    assert!(retrain.0 < 6.0, "retrained only on day {}", retrain.0);
    let evidence = retrain.3["evidence"][0]["signal"].as_str().unwrap();
    assert_eq!(evidence, "psi:engaged_item_category");
    let trained = b["trained"].as_array().unwrap();
    assert!(
        trained.iter().any(|t| t[1] == true && t[2] == "controller"),
        "the controller's candidate passed the gate: {trained:?}"
    );
    // The retraining began from the serving version's factors, not from scratch.
    let notes = notes(b);
    let job = notes
        .iter()
        .find(|(_, n)| n.starts_with("retraining job:"))
        .expect("the retraining job finished");
    assert!(job.1.contains("(warm start: "), "{job:?}");
}

#[test]
fn in_dry_run_the_drift_is_recorded_and_nothing_is_retrained() {
    let dry = timeline("taste_drift_dry_run");
    assert_eq!(dry["dry_run"], true);
    let all = decisions(dry);
    assert!(all
        .iter()
        .any(|(_, kind, _, record)| kind == "retrain" && record["outcome"]["reason"] == "dry_run"));
    assert!(
        all.iter().all(|(_, _, status, _)| status != "taken"),
        "{all:?}"
    );
    assert_eq!(dry["trained"].as_array().unwrap().len(), 1);
}

#[test]
fn simulate_injects_a_corrupted_stream_and_names_a_bad_share() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shop");
    let out = out.to_str().unwrap();
    let args = [
        "simulate", "--out", out, "--users", "60", "--items", "40", "--days", "3",
    ];
    fn with<'a>(args: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [args, extra].concat()
    }
    run_flywheel(&with(
        &args,
        &[
            "--corruption-day",
            "1",
            "--unknown-item-share",
            "0.5",
            "--drift-day",
            "2",
        ],
    ));
    let events = std::fs::read_to_string(dir.path().join("shop/events.jsonl")).unwrap();
    assert!(events.contains("\"unknown-"), "no unknown item ids written");
    let bad = super::flywheel_output(&with(
        &args,
        &["--corruption-day", "1", "--unknown-item-share", "1.5"],
    ));
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("unknown_item_share"), "{stderr}");
}
