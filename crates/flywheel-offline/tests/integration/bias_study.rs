//! On the simulator, against its true preferences: the position-bias correction moves
//! the ranking toward them, and context features win where the device changes what
//! appeals (`flywheel_offline::bias_study`, the figures of `flywheel bench ranker-bias`).

use flywheel_offline::bias_study::{context_study, position_study, StudySettings};

/// The bench's study with fewer evaluation requests.
fn settings() -> StudySettings {
    StudySettings {
        eval_requests: 300,
        ..StudySettings::default()
    }
}

#[test]
fn the_position_correction_moves_the_ranking_toward_the_true_preferences() {
    let [plain, corrected] = position_study(&settings()).unwrap();
    eprintln!("{plain:?}\n{corrected:?}");
    assert!(
        corrected.ndcg_at_10 > plain.ndcg_at_10 + 0.05,
        "NDCG@10: corrected {} vs plain {}",
        corrected.ndcg_at_10,
        plain.ndcg_at_10
    );
    assert!(
        corrected.kendall_tau > plain.kendall_tau + 0.05,
        "Kendall tau: corrected {} vs plain {}",
        corrected.kendall_tau,
        plain.kendall_tau
    );
}

#[test]
fn context_features_win_where_the_device_changes_what_appeals() {
    let [without, with] = context_study(&settings()).unwrap();
    eprintln!("{without:?}\n{with:?}");
    assert!(
        with.ndcg_at_10 > without.ndcg_at_10 + 0.05,
        "NDCG@10: with context {} vs without {}",
        with.ndcg_at_10,
        without.ndcg_at_10
    );
    assert!(
        with.kendall_tau > without.kendall_tau + 0.05,
        "Kendall tau: with context {} vs without {}",
        with.kendall_tau,
        without.kendall_tau
    );
}
