//! Every value of `drift_example/drift_expected.json` (the repository's copy of
//! `shared/reference`, `tests/fixtures/reference`), recomputed from
//! `drift_samples.csv`. Sources (via `drift_reference.py`): Evidently 0.7.23
//! (`psi_stat_test`, default stattests wasserstein / jensenshannon / ks), scipy
//! `ks_2samp`, and the script's classic decile PSI.

use std::collections::BTreeMap;
use std::path::PathBuf;

use flywheel_monitor::psi::EVIDENTLY_PSI_THRESHOLD;
use flywheel_monitor::*;
use serde_json::Value;

const TOL: f64 = 1e-9;

fn reference_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/reference/drift_example"
    ))
}

#[derive(Default)]
struct Case {
    reference: Vec<String>,
    current: Vec<String>,
}

fn load() -> (BTreeMap<String, Case>, Value) {
    let mut cases: BTreeMap<String, Case> = BTreeMap::new();
    let mut reader = csv::Reader::from_path(reference_dir().join("drift_samples.csv"))
        .expect("drift_samples.csv is readable");
    for record in reader.records() {
        let r = record.expect("row");
        let case = cases.entry(r[0].to_string()).or_default();
        match &r[1] {
            "reference" => case.reference.push(r[2].to_string()),
            "current" => case.current.push(r[2].to_string()),
            other => panic!("unexpected sample {other}"),
        }
    }
    let text = std::fs::read_to_string(reference_dir().join("drift_expected.json"))
        .expect("drift_expected.json is readable");
    (cases, serde_json::from_str(&text).expect("json"))
}

fn floats(values: &[String]) -> Vec<f64> {
    values
        .iter()
        .map(|v| v.parse().expect("numeric sample"))
        .collect()
}

fn num(v: &Value, path: &str) -> f64 {
    path.split('.')
        .fold(v, |v, key| &v[key])
        .as_f64()
        .unwrap_or_else(|| panic!("{path} is a number in the reference"))
}

fn close(label: &str, actual: f64, expected: f64) {
    let err = (actual - expected).abs();
    assert!(
        err <= TOL * expected.abs().max(1.0),
        "{label}: got {actual:.17e}, reference {expected:.17e} (diff {err:.3e})"
    );
}

#[test]
fn numerical_cases_match_evidently_and_scipy() {
    let (cases, expected) = load();
    let mut checked = 0;
    for (name, case) in cases.iter().filter(|(n, _)| n.starts_with("num")) {
        let e = &expected[name.as_str()];
        let (r, c) = (floats(&case.reference), floats(&case.current));
        assert_eq!(r.len() as f64, num(e, "n_ref"));
        assert_eq!(c.len() as f64, num(e, "n_cur"));
        // Evidently psi_stat_test (and the script's re-implementation, equal to 1e-12)
        let psi = psi_evidently(&r, &c).expect("psi");
        close(
            &format!("{name} psi evidently"),
            psi.psi,
            num(e, "psi_evidently_reimpl"),
        );
        close(
            &format!("{name} psi evidently score"),
            psi.psi,
            num(e, "evidently.psi.score"),
        );
        assert_eq!(psi.bins as f64, num(e, "psi_evidently_bins"), "{name} bins");
        assert_eq!(
            psi.drifted,
            e["evidently"]["psi"]["drifted"].as_bool().expect("bool")
        );
        assert_eq!(EVIDENTLY_PSI_THRESHOLD, num(e, "evidently.psi.threshold"));
        // classic decile PSI (drift_reference.py psi_deciles, eps 1e-4)
        let deciles = psi_deciles(&r, &c, 10, 1e-4).expect("psi");
        close(
            &format!("{name} psi deciles"),
            deciles.psi,
            num(e, "psi_deciles_eps1e-4"),
        );
        // scipy.stats.ks_2samp, mode="auto" (exact here: max(n) <= 10000)
        let ks = ks_2samp(&r, &c, KsMethod::Auto).expect("ks");
        assert_eq!(ks.method, KsMethod::Exact);
        close(
            &format!("{name} ks D"),
            ks.statistic,
            num(e, "ks_statistic"),
        );
        close(&format!("{name} ks p"), ks.p_value, num(e, "ks_pvalue"));
        close(
            &format!("{name} evidently ks"),
            ks.p_value,
            num(e, "evidently.ks_p.score"),
        );
        assert_eq!(
            ks.drifted,
            e["evidently"]["ks_p"]["drifted"].as_bool().expect("bool")
        );
        // Evidently's default test for this size
        let default = &e["evidently"]["default_test"];
        let score = match default["name"].as_str().expect("name") {
            "wasserstein" => wasserstein_distance_norm(&r, &c).expect("wd"),
            "ks" => ks.p_value,
            other => panic!("unexpected default test {other}"),
        };
        close(
            &format!("{name} default test"),
            score,
            num(default, "score"),
        );
        checked += 1;
    }
    assert_eq!(checked, 5);
}

#[test]
fn categorical_cases_match_evidently() {
    let (cases, expected) = load();
    let mut checked = 0;
    for (name, case) in cases.iter().filter(|(n, _)| n.starts_with("cat")) {
        let e = &expected[name.as_str()];
        let psi = psi_categorical(&case.reference, &case.current).expect("psi");
        close(
            &format!("{name} psi"),
            psi.psi,
            num(e, "psi_evidently_reimpl"),
        );
        close(
            &format!("{name} psi score"),
            psi.psi,
            num(e, "evidently.psi.score"),
        );
        assert_eq!(psi.bins as f64, num(e, "psi_evidently_bins"));
        assert_eq!(
            psi.drifted,
            e["evidently"]["psi"]["drifted"].as_bool().expect("bool")
        );
        assert_eq!(e["evidently"]["default_test"]["name"], "jensenshannon");
        let js = jensen_shannon_categorical(&case.reference, &case.current).expect("js");
        close(
            &format!("{name} jensenshannon"),
            js,
            num(e, "evidently.default_test.score"),
        );
        checked += 1;
    }
    assert_eq!(checked, 2);
}

#[test]
fn evidently_and_decile_psi_are_different_definitions() {
    // README: "0.0743 vs 0.0683 on one case" — both exist and are named apart.
    let (cases, _) = load();
    let case = &cases["num_shift"];
    let (r, c) = (floats(&case.reference), floats(&case.current));
    let evidently = psi_evidently(&r, &c).expect("psi").psi;
    let classic = psi_deciles(&r, &c, 10, 1e-4).expect("psi").psi;
    assert!((evidently - 0.0743).abs() < 1e-4 && (classic - 0.0683).abs() < 1e-4);
}

#[test]
fn edge_cases_are_errors_or_finite() {
    assert!(psi_evidently(&[], &[1.0]).is_err());
    assert!(ks_2samp(&[1.0, f64::INFINITY], &[1.0], KsMethod::Auto).is_err());
    let err = psi_deciles(&[1.0, f64::NAN], &[1.0], 10, 1e-4).expect_err("nan");
    assert!(err.to_string().contains("index 1"), "{err}");
    // zero variance on both sides: everything defined, no drift
    let flat = vec![2.0; 30];
    assert_eq!(psi_evidently(&flat, &flat).expect("psi").psi, 0.0);
    let ks = ks_2samp(&flat, &flat, KsMethod::Exact).expect("ks");
    assert_eq!((ks.statistic, ks.p_value), (0.0, 1.0));
    assert_eq!(wasserstein_distance_norm(&flat, &flat).expect("wd"), 0.0);
}
