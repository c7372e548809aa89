//! Scenario A (a version trained on a corrupted window is rolled back, training waits
//! for quality to recover) and scenario B (natural drift is retrained away, the gate
//! deciding), with the toy shop.

use flywheel_controller::*;

use crate::toy::{Shop, World};

/// Corruption from 11:00 to 20:00 on day 0; the operator trains at 11:30, 18:00 and
/// midnight.
fn corrupted_day() -> World {
    World {
        corruption: Some((660, 1_200)),
        drift_at: None,
        scheduled_trainings: vec![690, 1_080, 1_440],
    }
}

#[test]
fn scenario_a_a_version_trained_on_a_corrupted_window_is_rolled_back_and_training_waits() {
    let mut shop = Shop::new(corrupted_day(), ControllerConfig::default());
    shop.run(1_800);
    // The breaker opens after two corrupted windows; the version the 11:30 training
    // produced (on a log that holds corrupted events) is rolled back as soon as it
    // serves; training resumes two hours after quality is back.
    assert_eq!(
        shop.taken(),
        vec![
            (720, ActionKind::PauseTraining),
            (750, ActionKind::Rollback),
            (1_350, ActionKind::ResumeTraining),
        ]
    );
    let rollback = shop
        .decisions
        .iter()
        .find(|d| d.action.kind() == ActionKind::Rollback)
        .unwrap();
    assert_eq!(
        rollback.action,
        ControlAction::Rollback {
            from: "v2".into(),
            to: Some("v1".into())
        }
    );
    let pause = &shop.decisions[0];
    assert_eq!(pause.evidence[0].signal, "unknown_item_share");
    assert_eq!(pause.evidence[0].value, 0.3);
    // The 18:00 training did not run: it was paused. Midnight's ran on a clean window.
    assert_eq!(shop.started, vec![(690, false), (1_440, false)]);
    let serving = &shop.versions[shop.serving];
    assert_eq!(serving.name, "v3");
    assert!(serving.from >= 1_200, "{serving:?}");
    assert!(!shop.controller.status().breaker_open);
}

#[test]
fn scenario_a_in_dry_run_records_the_same_decisions_and_changes_nothing() {
    let config = ControllerConfig {
        dry_run: true,
        ..ControllerConfig::default()
    };
    let mut shop = Shop::new(corrupted_day(), config);
    shop.run(1_800);
    assert!(shop.taken().is_empty());
    let dry_run = Outcome::Suppressed {
        why: Suppression::DryRun,
    };
    let would: Vec<(i64, ActionKind)> = shop
        .decisions
        .iter()
        .filter(|d| d.outcome == dry_run)
        .map(|d| {
            (
                (d.at.millis() - crate::toy::at(0).millis()) / 60_000,
                d.action.kind(),
            )
        })
        .collect();
    // The same first decisions as scenario A, at the same times…
    assert_eq!(
        &would[..2],
        &[
            (720, ActionKind::PauseTraining),
            (750, ActionKind::Rollback)
        ]
    );
    assert!(would.contains(&(1_350, ActionKind::ResumeTraining)));
    // …then, since nothing was carried out, the bad versions keep serving and the
    // controller would keep rolling them back, once per cooldown.
    let rollbacks = would
        .iter()
        .filter(|(_, k)| *k == ActionKind::Rollback)
        .count();
    assert!(rollbacks >= 2, "{would:?}");
    // Nothing was carried out: the 18:00 training ran, the latest version serves.
    assert_eq!(shop.started.len(), 3);
    assert_eq!(shop.versions[shop.serving].name, "v4");
}

#[test]
fn scenario_b_natural_drift_is_retrained_with_a_warm_start_until_the_gate_passes() {
    let world = World {
        corruption: None,
        drift_at: Some(1_440),
        scheduled_trainings: Vec::new(),
    };
    let mut shop = Shop::new(world, ControllerConfig::default());
    shop.run(3_000);
    // Drift is confirmed at 01:00; the first candidate knows one hour of the new tastes
    // and the gate rejects it; six hours later (the cooldown) the second passes.
    assert_eq!(
        shop.taken(),
        vec![(1_500, ActionKind::Retrain), (1_860, ActionKind::Retrain)]
    );
    assert_eq!(shop.started, vec![(1_500, true), (1_860, true)]);
    assert_eq!(
        shop.trained,
        vec![
            (1_560, "v2".to_string(), false),
            (1_920, "v3".to_string(), true)
        ]
    );
    let reasons: Vec<&Suppression> = shop
        .decisions
        .iter()
        .filter_map(|d| match &d.outcome {
            Outcome::Suppressed { why } => Some(why),
            Outcome::Taken => None,
        })
        .collect();
    assert!(reasons.contains(&&Suppression::TrainingRunning));
    assert!(reasons
        .iter()
        .any(|r| matches!(r, Suppression::Cooldown { .. })));
    let first = &shop.decisions[0];
    assert_eq!(first.evidence[0].signal, "psi:category");
    assert_eq!(
        first.evidence[0].threshold,
        Threshold::Above { limit: 0.15 }
    );
    // The promoted version's reference matches the new tastes: drift has cleared.
    assert_eq!(shop.versions[shop.serving].name, "v3");
    assert!(!shop.controller.status().drift_active);
}
