//! `flywheel ranker predict` end to end on the Python-trained fixtures of
//! flywheel-ranking (`crates/flywheel-ranking/tests/fixtures/imported`, made by
//! `scripts/imported_models.py`): the printed predictions equal the libraries' own
//! `predict` to max(1e-6 abs, 1e-6 rel), the CSV columns (in another order than the
//! model's) are matched by name, and bad input fails with a message naming it.

#![allow(clippy::unwrap_used)] // test helpers: a failed call is a failed test

use std::path::PathBuf;
use std::process::Command;

use super::BIN;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../flywheel-ranking/tests/fixtures/imported")
        .join(name)
}

fn predict(model: &str, format: &str, rows: &std::path::Path, json: bool) -> std::process::Output {
    let mut command = Command::new(BIN);
    command.args(["ranker", "predict", "--format", format, "--model"]);
    command.arg(fixture(model)).arg("--rows").arg(rows);
    if json {
        command.arg("--json");
    }
    command.output().unwrap()
}

#[test]
fn predictions_equal_the_libraries() {
    for (model, format) in [
        ("lgb_binary.txt", "lightgbm"),
        ("lgb_rank.txt", "lightgbm"),
        ("xgb_binary.json", "xgboost"),
        ("xgb_rank.json", "xgboost"),
    ] {
        let rows = fixture(&format!("{model}.rows.csv"));
        let expected: Vec<f64> = serde_json::from_str(
            &std::fs::read_to_string(fixture(&format!("{model}.expected.json"))).unwrap(),
        )
        .unwrap();
        let output = predict(model, format, &rows, true);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: Vec<f64> = serde_json::from_slice(&output.stdout).unwrap();
        let output = predict(model, format, &rows, false);
        let lines: Vec<f64> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| line.parse().unwrap())
            .collect();
        assert_eq!(
            json, lines,
            "{model}: --json and plain output agree exactly"
        );
        assert_eq!(json.len(), expected.len(), "{model}");
        for (row, (got, want)) in json.iter().zip(&expected).enumerate() {
            let tolerance = 1e-6f64.max(1e-6 * want.abs());
            assert!(
                (got - want).abs() <= tolerance,
                "{model} row {row}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let rows = fixture("lgb_rank.txt.rows.csv");
    let output = predict("xgb_rank.json", "lightgbm", &rows, false);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("xgb_rank.json") && stderr.contains("XGBoost"),
        "{stderr}"
    );

    let truncated = dir.path().join("cut.json");
    let text = std::fs::read_to_string(fixture("xgb_rank.json")).unwrap();
    std::fs::write(&truncated, &text[..text.len() / 3]).unwrap();
    let output = Command::new(BIN)
        .args(["ranker", "predict", "--format", "xgboost", "--model"])
        .arg(&truncated)
        .arg("--rows")
        .arg(&rows)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("truncated"),
        "{stderr}"
    );

    let narrow = dir.path().join("narrow.csv");
    std::fs::write(&narrow, "ctr,age\n1,2\n").unwrap();
    let output = predict("lgb_rank.txt", "lightgbm", &narrow, false);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("affinity"),
        "{stderr}"
    );

    let output = predict("lgb_rank.txt", "onnx", &rows, false);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("onnx"),
        "{stderr}"
    );
}
