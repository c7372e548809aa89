//! The controller's rules, limits and modes, each on simulated time.

use flywheel_core::Timestamp;

use crate::*;

/// `minutes` after an arbitrary origin.
fn t(minutes: i64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + minutes * 60)
}

/// A healthy observation: clean data, no drift, v2 serving and good.
fn healthy(minute: i64) -> Observation {
    Observation {
        at: t(minute),
        quality: DataQuality {
            events: 1_000,
            unknown_item_share: 0.0,
            missing_field_share: 0.0,
            rejected_share: 0.0,
        },
        features: vec![FeatureDrift {
            feature: "category".into(),
            statistic: DriftStatistic::Psi,
            value: 0.02,
            threshold: 0.1,
        }],
        prediction: Some(PredictionDrift {
            observed_over_expected: 1.0,
            band_low: 0.8,
            band_high: 1.25,
        }),
        serving_version: Some("v2".into()),
        last_good_version: Some("v2".into()),
        training_running: false,
        serving_trained_on_breach: false,
    }
}

fn corrupted(minute: i64, unknown: f64) -> Observation {
    let mut o = healthy(minute);
    o.quality.unknown_item_share = unknown;
    o
}

fn drifting(minute: i64, psi: f64) -> Observation {
    let mut o = healthy(minute);
    o.features[0].value = psi;
    o
}

/// v3 serves, trained on the corrupted window; v2 is the last good one.
fn bad_version(mut o: Observation) -> Observation {
    o.serving_version = Some("v3".into());
    o.last_good_version = Some("v2".into());
    o.serving_trained_on_breach = true;
    o
}

fn controller(config: ControllerConfig) -> Controller {
    Controller::new(config).unwrap()
}

fn kinds(decisions: &[Decision]) -> Vec<(ActionKind, bool)> {
    decisions
        .iter()
        .map(|d| (d.action.kind(), d.is_taken()))
        .collect()
}

fn suppression(decision: &Decision) -> Option<&Suppression> {
    match &decision.outcome {
        Outcome::Suppressed { why } => Some(why),
        Outcome::Taken => None,
    }
}

#[test]
fn a_breach_opens_the_breaker_only_after_it_persists() {
    let mut c = controller(ControllerConfig::default());
    assert!(c.observe(&corrupted(0, 0.2)).unwrap().is_empty());
    assert!(!c.status().breaker_open);
    // A healthy observation in between restarts the count.
    assert!(c.observe(&healthy(10)).unwrap().is_empty());
    assert!(c.observe(&corrupted(20, 0.2)).unwrap().is_empty());
    let decisions = c.observe(&corrupted(30, 0.2)).unwrap();
    assert_eq!(kinds(&decisions), vec![(ActionKind::PauseTraining, true)]);
    let d = &decisions[0];
    assert_eq!(d.rule, Rule::DataQualityBreach);
    assert_eq!(d.evidence[0].signal, "unknown_item_share");
    assert_eq!(d.evidence[0].value, 0.2);
    assert_eq!(d.evidence[0].threshold, Threshold::Above { limit: 0.05 });
    let status = c.status();
    assert!(status.breaker_open && c.training_paused());
    assert_eq!(status.breaker_opened_at, Some(t(30)));
    // Open: no second pause while it stays open.
    assert!(c.observe(&corrupted(40, 0.3)).unwrap().is_empty());
}

#[test]
fn too_few_events_are_no_evidence_of_a_breach() {
    let mut c = controller(ControllerConfig::default());
    for minute in 0..10 {
        let mut o = corrupted(minute * 10, 0.9);
        o.quality.events = 50;
        assert!(c.observe(&o).unwrap().is_empty());
    }
    assert!(!c.status().breaker_open);
}

#[test]
fn a_version_trained_on_a_bad_window_is_rolled_back_to_the_last_good_one() {
    // The rollback does not wait for the breaker's hysteresis: the version is bad.
    let mut c = controller(ControllerConfig::default());
    let decisions = c.observe(&bad_version(corrupted(0, 0.2))).unwrap();
    assert_eq!(kinds(&decisions), vec![(ActionKind::Rollback, true)]);
    assert_eq!(
        decisions[0].action,
        ControlAction::Rollback {
            from: "v3".into(),
            to: Some("v2".into())
        }
    );
    let decisions = c.observe(&corrupted(10, 0.2)).unwrap();
    assert_eq!(kinds(&decisions), vec![(ActionKind::PauseTraining, true)]);
}

#[test]
fn a_rollback_with_nowhere_to_go_is_suppressed_and_says_so_once() {
    let mut c = controller(ControllerConfig::default());
    let mut o = bad_version(corrupted(0, 0.2));
    o.last_good_version = None;
    let decisions = c.observe(&o).unwrap();
    assert_eq!(kinds(&decisions), vec![(ActionKind::Rollback, false)]);
    assert_eq!(
        suppression(&decisions[0]),
        Some(&Suppression::NoRollbackTarget)
    );
    o.at = t(10);
    let again = c.observe(&o).unwrap();
    assert_eq!(kinds(&again), vec![(ActionKind::PauseTraining, true)]);
}

#[test]
fn training_stays_paused_until_quality_is_clear_for_the_recovery_period() {
    // Recovery: two hours under half the threshold (0.025).
    let mut c = controller(ControllerConfig::default());
    c.observe(&corrupted(0, 0.2)).unwrap();
    c.observe(&corrupted(10, 0.2)).unwrap();
    assert!(c.training_paused());
    // Under the threshold but above the lower one: not a recovery.
    assert!(c.observe(&corrupted(20, 0.04)).unwrap().is_empty());
    assert_eq!(c.status().quality_clear_since, None);
    c.observe(&corrupted(30, 0.01)).unwrap();
    assert_eq!(c.status().quality_clear_since, Some(t(30)));
    assert_eq!(c.status().breaker_closes_at, Some(t(150)));
    // An interruption restarts the period.
    c.observe(&corrupted(60, 0.04)).unwrap();
    c.observe(&healthy(70)).unwrap();
    assert!(c.observe(&healthy(189)).unwrap().is_empty());
    assert!(c.training_paused());
    let decisions = c.observe(&healthy(190)).unwrap();
    assert_eq!(kinds(&decisions), vec![(ActionKind::ResumeTraining, true)]);
    assert_eq!(decisions[0].rule, Rule::DataQualityRecovered);
    assert_eq!(
        decisions[0].evidence[0].threshold,
        Threshold::AtMost { limit: 0.025 }
    );
    assert!(!c.training_paused() && !c.status().breaker_open);
}

#[test]
fn drift_while_the_breaker_is_open_waits_for_recovery_then_retrains() {
    let mut c = controller(ControllerConfig::default());
    c.observe(&corrupted(0, 0.2)).unwrap();
    c.observe(&corrupted(10, 0.2)).unwrap();
    let mut o = drifting(20, 0.3);
    o.quality.unknown_item_share = 0.2;
    assert!(c.observe(&o).unwrap().is_empty());
    o.at = t(30);
    let decisions = c.observe(&o).unwrap();
    assert_eq!(kinds(&decisions), vec![(ActionKind::Retrain, false)]);
    assert_eq!(
        suppression(&decisions[0]),
        Some(&Suppression::TrainingPaused)
    );
    // Held back for the same reason: not recorded again.
    o.at = t(40);
    assert!(c.observe(&o).unwrap().is_empty());
    c.observe(&drifting(50, 0.3)).unwrap();
    let decisions = c.observe(&drifting(170, 0.3)).unwrap();
    assert_eq!(
        kinds(&decisions),
        vec![
            (ActionKind::ResumeTraining, true),
            (ActionKind::Retrain, true)
        ]
    );
}

#[test]
fn drift_on_a_watched_feature_asks_for_a_warm_start_retraining() {
    let mut c = controller(ControllerConfig::default());
    assert!(c.observe(&drifting(0, 0.3)).unwrap().is_empty());
    let decisions = c.observe(&drifting(10, 0.3)).unwrap();
    assert_eq!(kinds(&decisions), vec![(ActionKind::Retrain, true)]);
    let d = &decisions[0];
    assert_eq!(d.rule, Rule::Drift);
    assert_eq!(d.action, ControlAction::Retrain { warm_start: true });
    assert_eq!(d.evidence[0].signal, "psi:category");
    assert_eq!(d.evidence[0].threshold, Threshold::Above { limit: 0.15 });
    // An unwatched feature's drift does not count.
    let config = ControllerConfig {
        drift: DriftRule {
            watched_features: vec!["price".into()],
            ..DriftRule::default()
        },
        ..ControllerConfig::default()
    };
    let mut c = controller(config);
    for minute in 0..5 {
        let mut o = drifting(minute * 10, 0.3);
        o.prediction = None;
        assert!(c.observe(&o).unwrap().is_empty());
    }
}

#[test]
fn observed_over_expected_outside_its_band_is_drift() {
    let mut c = controller(ControllerConfig::default());
    let biased = |minute| {
        let mut o = healthy(minute);
        o.prediction = Some(PredictionDrift {
            observed_over_expected: 0.6,
            band_low: 0.8,
            band_high: 1.25,
        });
        o
    };
    c.observe(&biased(0)).unwrap();
    let decisions = c.observe(&biased(10)).unwrap();
    assert_eq!(kinds(&decisions), vec![(ActionKind::Retrain, true)]);
    assert_eq!(decisions[0].evidence[0].signal, "observed_over_expected");
    assert_eq!(
        decisions[0].evidence[0].threshold,
        Threshold::Outside {
            low: 0.8,
            high: 1.25
        }
    );
}

#[test]
fn drift_clears_only_under_the_lower_threshold() {
    let mut c = controller(ControllerConfig::default());
    c.observe(&drifting(0, 0.3)).unwrap();
    c.observe(&drifting(10, 0.3)).unwrap();
    // 0.13 < 0.15 but > 0.12 (0.8 × 0.15): still drifting, and still worth a
    // retraining once the cooldown is over.
    c.observe(&drifting(20, 0.13)).unwrap();
    assert!(c.status().drift_active);
    let after_cooldown = c.observe(&drifting(370, 0.13)).unwrap();
    assert_eq!(kinds(&after_cooldown), vec![(ActionKind::Retrain, true)]);
    c.observe(&drifting(380, 0.1)).unwrap();
    assert!(!c.status().drift_active);
    assert!(c.observe(&drifting(1_000, 0.1)).unwrap().is_empty());
}

#[test]
fn a_retraining_has_a_cooldown_recorded_once_and_then_runs_again() {
    // Retrain cooldown: six hours.
    let mut c = controller(ControllerConfig::default());
    c.observe(&drifting(0, 0.3)).unwrap();
    assert!(c.observe(&drifting(10, 0.3)).unwrap()[0].is_taken());
    let held = c.observe(&drifting(20, 0.3)).unwrap();
    assert_eq!(kinds(&held), vec![(ActionKind::Retrain, false)]);
    assert_eq!(
        suppression(&held[0]),
        Some(&Suppression::Cooldown { until: t(370) })
    );
    for minute in (30..370).step_by(10) {
        assert!(c.observe(&drifting(minute, 0.3)).unwrap().is_empty());
    }
    let again = c.observe(&drifting(370, 0.3)).unwrap();
    assert_eq!(kinds(&again), vec![(ActionKind::Retrain, true)]);
}

#[test]
fn a_rollback_has_a_cooldown() {
    let mut c = controller(ControllerConfig::default());
    assert!(c.observe(&bad_version(healthy(0))).unwrap()[0].is_taken());
    // The engine has not switched yet: the same version still serves.
    let held = c.observe(&bad_version(healthy(10))).unwrap();
    assert_eq!(
        suppression(&held[0]),
        Some(&Suppression::Cooldown { until: t(60) })
    );
    let again = c.observe(&bad_version(healthy(60))).unwrap();
    assert_eq!(kinds(&again), vec![(ActionKind::Rollback, true)]);
}

#[test]
fn a_running_job_holds_a_retraining_back() {
    let mut c = controller(ControllerConfig::default());
    c.observe(&drifting(0, 0.3)).unwrap();
    let mut o = drifting(10, 0.3);
    o.training_running = true;
    let held = c.observe(&o).unwrap();
    assert_eq!(suppression(&held[0]), Some(&Suppression::TrainingRunning));
    let taken = c.observe(&drifting(20, 0.3)).unwrap();
    assert_eq!(kinds(&taken), vec![(ActionKind::Retrain, true)]);
}

#[test]
fn the_cap_limits_model_actions_per_trailing_hour() {
    let config = ControllerConfig {
        limits: ActionLimits {
            rollback_cooldown_secs: 0,
            retrain_cooldown_secs: 0,
            max_actions_per_hour: 2,
        },
        drift: DriftRule {
            trigger_observations: 1,
            ..DriftRule::default()
        },
        ..ControllerConfig::default()
    };
    let mut c = controller(config);
    // A bad version and drift: a rollback and a retraining, then the cap.
    let decisions = c.observe(&bad_version(drifting(0, 0.3))).unwrap();
    assert_eq!(
        kinds(&decisions),
        vec![(ActionKind::Rollback, true), (ActionKind::Retrain, true)]
    );
    let capped = c.observe(&bad_version(drifting(10, 0.3))).unwrap();
    assert_eq!(
        kinds(&capped),
        vec![(ActionKind::Rollback, false), (ActionKind::Retrain, false)]
    );
    assert!(capped
        .iter()
        .all(|d| suppression(d) == Some(&Suppression::Cap { limit: 2 })));
    assert_eq!(c.status().actions_last_hour, 2);
    assert!(c
        .observe(&bad_version(drifting(59, 0.3)))
        .unwrap()
        .is_empty());
    // An hour after the first two, room again: the rollback goes first.
    let later = c.observe(&bad_version(drifting(60, 0.3))).unwrap();
    assert_eq!(
        kinds(&later),
        vec![(ActionKind::Rollback, true), (ActionKind::Retrain, true)]
    );
}

#[test]
fn the_breaker_is_not_capped() {
    let config = ControllerConfig {
        limits: ActionLimits {
            max_actions_per_hour: 1,
            ..ActionLimits::default()
        },
        ..ControllerConfig::default()
    };
    let mut c = controller(config);
    assert!(c.observe(&bad_version(corrupted(0, 0.2))).unwrap()[0].is_taken());
    let decisions = c.observe(&corrupted(10, 0.2)).unwrap();
    assert_eq!(kinds(&decisions), vec![(ActionKind::PauseTraining, true)]);
}

#[test]
fn dry_run_records_every_decision_and_takes_none() {
    let config = ControllerConfig {
        dry_run: true,
        ..ControllerConfig::default()
    };
    let mut c = controller(config);
    let mut all = Vec::new();
    all.extend(c.observe(&bad_version(corrupted(0, 0.2))).unwrap());
    all.extend(c.observe(&bad_version(corrupted(10, 0.2))).unwrap());
    for minute in (20..=200).step_by(10) {
        all.extend(c.observe(&drifting(minute, 0.3)).unwrap());
    }
    let recorded: Vec<ActionKind> = all.iter().map(|d| d.action.kind()).collect();
    assert!(recorded.contains(&ActionKind::Rollback));
    assert!(recorded.contains(&ActionKind::PauseTraining));
    assert!(recorded.contains(&ActionKind::ResumeTraining));
    assert!(recorded.contains(&ActionKind::Retrain));
    assert!(all.iter().all(|d| !d.is_taken()), "{all:?}");
    let breaker =
        |k: &ActionKind| matches!(k, ActionKind::PauseTraining | ActionKind::ResumeTraining);
    assert!(all
        .iter()
        .filter(|d| breaker(&d.action.kind()))
        .all(|d| suppression(d) == Some(&Suppression::DryRun)));
    for kind in [ActionKind::Rollback, ActionKind::Retrain] {
        assert!(all
            .iter()
            .any(|d| d.action.kind() == kind && suppression(d) == Some(&Suppression::DryRun)));
    }
    // Kept as if taken: the would-be retraining starts its cooldown.
    assert!(all
        .iter()
        .any(|d| matches!(suppression(d), Some(Suppression::Cooldown { .. }))));
    // The books move as if the actions had been taken: the breaker opened and closed.
    let status = c.status();
    assert!(status.dry_run && !status.breaker_open && status.drift_active);
}

#[test]
fn bad_or_out_of_order_observations_are_refused_and_change_nothing() {
    let mut c = controller(ControllerConfig::default());
    c.observe(&corrupted(10, 0.2)).unwrap();
    let err = c.observe(&corrupted(5, 0.2)).unwrap_err();
    assert!(matches!(err, ControllerError::OutOfOrder { .. }), "{err}");
    let mut bad = corrupted(20, 0.2);
    bad.quality.rejected_share = 2.0;
    assert!(c
        .observe(&bad)
        .unwrap_err()
        .to_string()
        .contains("rejected_share"));
    assert!(!c.status().breaker_open);
    assert_eq!(c.status().last_observation, Some(t(10)));
    // The count of breaching observations was not advanced by the refused ones.
    let decisions = c.observe(&corrupted(30, 0.2)).unwrap();
    assert_eq!(kinds(&decisions), vec![(ActionKind::PauseTraining, true)]);
    let mut config = ControllerConfig::default();
    config.quality.clear_ratio = 0.0;
    assert!(Controller::new(config).is_err());
}

#[test]
fn the_same_observations_give_the_same_decisions() {
    let script: Vec<Observation> = (0..40)
        .map(|i| match i % 7 {
            0 | 1 => bad_version(corrupted(i * 15, 0.1)),
            2 | 3 => drifting(i * 15, 0.4),
            _ => healthy(i * 15),
        })
        .collect();
    let run = || {
        let mut c = controller(ControllerConfig::default());
        let decisions: Vec<Decision> = script.iter().flat_map(|o| c.observe(o).unwrap()).collect();
        serde_json::to_string(&decisions).unwrap()
    };
    let first = run();
    assert!(first.len() > 100);
    assert_eq!(first, run());
}

#[test]
fn a_restored_state_carries_on_exactly_where_it_stopped() {
    let script: Vec<Observation> = (0..30)
        .map(|i| match i {
            0..=3 => bad_version(corrupted(i * 10, 0.2)),
            4..=7 => drifting(i * 10, 0.3),
            _ => healthy(i * 10),
        })
        .collect();
    let mut straight = controller(ControllerConfig::default());
    let expected: Vec<Decision> = script
        .iter()
        .flat_map(|o| straight.observe(o).unwrap())
        .collect();
    let mut first = controller(ControllerConfig::default());
    let mut got: Vec<Decision> = script[..5]
        .iter()
        .flat_map(|o| first.observe(o).unwrap())
        .collect();
    assert!(first.training_paused());
    // A restart in the middle of the breach: the state goes through JSON.
    let saved = serde_json::to_string(first.state()).unwrap();
    let state: ControllerState = serde_json::from_str(&saved).unwrap();
    let mut restored = Controller::with_state(ControllerConfig::default(), state).unwrap();
    assert!(restored.training_paused());
    got.extend(
        script[5..]
            .iter()
            .flat_map(|o| restored.observe(o).unwrap()),
    );
    assert_eq!(got, expected);
    assert_eq!(restored.state(), straight.state());
    assert!(serde_json::from_str::<ControllerState>(r#"{"last": 1}"#).is_err());
}
