//! Parity with the Python libraries without Python: the fixtures in
//! `tests/fixtures/imported/` were written by `scripts/imported_models.py`
//! (`--rounds 20 --rows 150 --train-rows 2000`; `versions.json` names LightGBM 4.7.0,
//! XGBoost 3.2.0, numpy 2.4.6, pandas 3.1.1). Each model's rows (missing values, zeros,
//! tiny values, odd categories) must score what the library's own `predict` returned,
//! to max(1e-6 absolute, 1e-6 relative).

#![allow(clippy::unwrap_used)] // test helpers: a failed read is a failed test

use std::path::PathBuf;

use flywheel_ranking::{ImportedBooster, ModelFormat};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/imported")
        .join(name)
}

/// The rows CSV in the model's column order (the file's header is in another order).
fn rows_in_model_order(model: &ImportedBooster, csv: &str) -> Vec<Vec<f64>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let columns: Vec<usize> = model
        .feature_names()
        .iter()
        .map(|name| header.iter().position(|h| h == name).unwrap())
        .collect();
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            columns
                .iter()
                .map(|&c| match fields[c] {
                    "" => f64::NAN,
                    text => text.parse().unwrap(),
                })
                .collect()
        })
        .collect()
}

/// The largest error over the rows, in units of the tolerance (≤ 1 passes).
fn worst_error(file: &str, format: ModelFormat) -> (f64, usize) {
    let model = ImportedBooster::load(&fixture(file), format).unwrap();
    let csv = std::fs::read_to_string(fixture(&format!("{file}.rows.csv"))).unwrap();
    let expected: Vec<f64> = serde_json::from_str(
        &std::fs::read_to_string(fixture(&format!("{file}.expected.json"))).unwrap(),
    )
    .unwrap();
    let rows = rows_in_model_order(&model, &csv);
    assert_eq!(rows.len(), expected.len(), "{file}: rows and predictions");
    let mut worst = (0.0f64, 0);
    for (i, (row, want)) in rows.iter().zip(&expected).enumerate() {
        let got = model.predict(row);
        let tolerance = 1e-6f64.max(1e-6 * want.abs());
        let error = (got - want).abs() / tolerance;
        assert!(
            error <= 1.0,
            "{file} row {i}: flywheel {got}, library {want} ({row:?})"
        );
        if error > worst.0 {
            worst = (error, i);
        }
    }
    worst
}

#[test]
fn lightgbm_binary_matches_lightgbm() {
    worst_error("lgb_binary.txt", ModelFormat::LightGbm);
}

#[test]
fn lightgbm_lambdarank_with_zero_as_missing_matches_lightgbm() {
    worst_error("lgb_rank.txt", ModelFormat::LightGbm);
}

#[test]
fn xgboost_binary_logistic_matches_xgboost() {
    worst_error("xgb_binary.json", ModelFormat::XgBoost);
}

#[test]
fn xgboost_rank_ndcg_matches_xgboost() {
    worst_error("xgb_rank.json", ModelFormat::XgBoost);
}

#[test]
fn the_fixtures_exercise_missing_values_and_categorical_splits() {
    let lightgbm = std::fs::read_to_string(fixture("lgb_rank.txt")).unwrap();
    let decision_types: Vec<u8> = lightgbm
        .lines()
        .filter_map(|line| line.strip_prefix("decision_type="))
        .flat_map(|line| line.split_whitespace().map(|d| d.parse::<u8>().unwrap()))
        .collect();
    assert!(
        decision_types.iter().any(|d| d & 1 == 1),
        "a categorical split"
    );
    assert!(
        decision_types.iter().any(|d| (d >> 2) & 3 == 1),
        "a zero-as-missing split"
    );
    let binary = std::fs::read_to_string(fixture("lgb_binary.txt")).unwrap();
    assert!(binary.contains("objective=binary sigmoid:0.7"));
    for file in ["xgb_binary.json", "xgb_rank.json"] {
        let text = std::fs::read_to_string(fixture(file)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let trees = json["learner"]["gradient_booster"]["model"]["trees"]
            .as_array()
            .unwrap();
        let categorical = trees
            .iter()
            .filter(|tree| !tree["categories_nodes"].as_array().unwrap().is_empty())
            .count();
        let default_left = trees
            .iter()
            .filter(|tree| {
                tree["default_left"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| d == 1)
            })
            .count();
        assert!(categorical > 0, "{file}: a categorical split");
        assert!(default_left > 0, "{file}: missing values sent left");
    }
}

/// Seeded corruptions of the real model files (truncations, changed bytes, dropped
/// lines): loading either fails with an error or gives a model that predicts every row
/// without panicking.
#[test]
fn corrupted_model_files_never_panic() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    const NOISE: &[u8] = b"0123456789-.e \n=[]{},\":Tree";
    let mut rng = StdRng::seed_from_u64(10);
    for (file, format) in [
        ("lgb_binary.txt", ModelFormat::LightGbm),
        ("xgb_rank.json", ModelFormat::XgBoost),
    ] {
        let text = std::fs::read_to_string(fixture(file)).unwrap();
        let rows = vec![
            vec![f64::NAN; 6],
            vec![0.0; 6],
            vec![3.0, -1.0, 1e10, 5.0, 2.0, 40.0],
        ];
        let (mut refused, mut accepted) = (0, 0);
        for round in 0..400 {
            let mut bytes = text.as_bytes().to_vec();
            match round % 3 {
                0 => bytes.truncate(rng.gen_range(0..bytes.len())),
                1 => {
                    for _ in 0..rng.gen_range(1..4) {
                        let at = rng.gen_range(0..bytes.len());
                        bytes[at] = NOISE[rng.gen_range(0..NOISE.len())];
                    }
                }
                _ => {
                    let at = rng.gen_range(0..bytes.len());
                    let end = (at + rng.gen_range(1..200)).min(bytes.len());
                    bytes.drain(at..end);
                }
            }
            let corrupted = String::from_utf8_lossy(&bytes);
            match ImportedBooster::parse(&corrupted, format) {
                Ok(model) => {
                    accepted += 1;
                    for row in &rows {
                        model.predict(row);
                    }
                }
                Err(error) => {
                    refused += 1;
                    assert!(!error.to_string().is_empty());
                }
            }
        }
        assert!(
            refused > 250,
            "{file}: only {refused} of 400 corruptions refused ({accepted} loaded)"
        );
    }
}
