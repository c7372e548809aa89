//! Checks flywheel-eval against every value in `tests/fixtures/reference` (the repository's
//! copy of `shared/reference`: trec_eval/pytrec_eval, ranx, scikit-learn via
//! `metrics_reference.py`; Open Bandit Pipeline 0.5.7 via `obp_reference.py` and its
//! standard-library re-computation `check_obd_csv.py`), plus malformed-input cases, and
//! that the copy still matches `../shared/reference` where that folder exists.

use std::path::{Path, PathBuf};

use flywheel_eval::ope::{evaluate_policy, read_logged_bandit, BootstrapOptions};
use flywheel_eval::pointwise::downsampling_correction;
use flywheel_eval::trec::{QueryScope, RankingOptions, TieBreak};
use flywheel_eval::{
    metrics_from_files, metrics_from_files_with, ope_from_file, EvalError, MetricsOptions,
    OpeOptions,
};
use serde_json::Value;

#[path = "integration/props.rs"]
mod props;
#[path = "../../../tests/support/skip.rs"]
mod skip;

/// The reference fixtures kept in the repository (`tests/fixtures/reference/README.md`).
fn reference() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/reference"
    ))
}

fn example(file: &str) -> PathBuf {
    reference().join("metrics_example").join(file)
}

fn load_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("reference JSON is readable");
    serde_json::from_str(&text).expect("reference JSON parses")
}

fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} (diff {:e})",
        (got - want).abs()
    );
}

fn num(v: &Value) -> f64 {
    v.as_f64().expect("reference value is a number")
}

/// Reference key -> flywheel metric name prefix.
const RANKING_NAMES: [(&str, &str); 8] = [
    ("ndcg_lin", "ndcg"),
    ("ndcg_exp", "ndcg_exp"),
    ("ap", "map"),
    ("ap_minKR", "map_minkr"),
    ("rr", "mrr"),
    ("p", "p"),
    ("r", "r"),
    ("hit", "hit"),
];

fn ranking_report(
    tie_break: TieBreak,
    scope: QueryScope,
    sklearn_ndcg: bool,
) -> flywheel_eval::MetricsReport {
    let options = MetricsOptions {
        ranking: RankingOptions {
            ks: vec![1, 3, 5, 10],
            tie_break,
            scope,
            sklearn_ndcg,
        },
        n_bins: 10,
    };
    metrics_from_files_with(
        Some(&example("qrels.txt")),
        Some(&example("run.txt")),
        None,
        &options,
    )
    .expect("reference files evaluate")
}

#[test]
fn ranking_matches_trec_eval_canonical_all_queries() {
    // metrics_expected.json "canonical_all_queries"/"per_query_canonical": trec_eval order
    // (score desc, docid desc), every judged query, missing run = 0 (trec_eval -c, ranx).
    let expected = load_json(&example("metrics_expected.json"));
    let report = metrics_from_files(
        Some(&example("qrels.txt")),
        Some(&example("run.txt")),
        None,
        &[1, 3, 5, 10],
    )
    .expect("evaluates");
    assert_eq!(report.per_query.len(), 8);
    for (k, by_metric) in expected["ranking"].as_object().expect("object") {
        for (ref_name, ours) in RANKING_NAMES {
            let name = format!("{ours}@{k}");
            let entry = &by_metric[ref_name];
            close(
                report.mean.get(&name).expect("metric present"),
                num(&entry["canonical_all_queries"]),
                1e-12,
                &name,
            );
            for (qid, want) in entry["per_query_canonical"].as_object().expect("object") {
                close(
                    report.per_query[qid].get(&name).expect("metric"),
                    num(want),
                    1e-12,
                    &format!("{name} {qid}"),
                );
            }
        }
    }
}

#[test]
fn ranking_matches_pytrec_eval_on_run_queries() {
    // "pytrec_eval_run_queries" (pytrec_eval 0.5: ndcg_cut, map_cut, P, recall) and
    // "pytrec_eval_full_run" (map, recip_rank, ndcg without cutoff) average over the 7
    // queries present in both qrels and run.
    let expected = load_json(&example("metrics_expected.json"));
    let report = ranking_report(TieBreak::TrecEval, QueryScope::RunAndJudged, false);
    assert_eq!(report.per_query.len(), 7);
    for (k, by_metric) in expected["ranking"].as_object().expect("object") {
        for (ref_name, ours) in RANKING_NAMES {
            let name = format!("{ours}@{k}");
            let entry = &by_metric[ref_name];
            close(
                report.mean.get(&name).expect("metric"),
                num(&entry["canonical_run_queries"]),
                1e-12,
                &name,
            );
            if let Some(want) = entry["pytrec_eval_run_queries"].as_f64() {
                close(
                    report.mean.get(&name).expect("metric"),
                    want,
                    1e-12,
                    &format!("pytrec {name}"),
                );
            }
        }
    }
    let full = &expected["pytrec_eval_full_run"];
    close(
        report.mean.get("map").expect("map"),
        num(&full["map"]),
        1e-12,
        "pytrec map",
    );
    close(
        report.mean.get("mrr").expect("mrr"),
        num(&full["recip_rank"]),
        1e-12,
        "pytrec recip_rank",
    );
    close(
        report.mean.get("ndcg").expect("ndcg"),
        num(&full["ndcg"]),
        1e-12,
        "pytrec ndcg",
    );
}

#[test]
fn ranking_matches_ranx_with_input_order_ties() {
    // ranx 0.3 breaks ties by input order (stable sort): "ranx_all_queries" and "per_query_ranx".
    let expected = load_json(&example("metrics_expected.json"));
    let report = ranking_report(TieBreak::InputOrder, QueryScope::AllJudged, false);
    for (k, by_metric) in expected["ranking"].as_object().expect("object") {
        for (ref_name, ours) in RANKING_NAMES {
            let name = format!("{ours}@{k}");
            let entry = &by_metric[ref_name];
            if let Some(want) = entry["ranx_all_queries"].as_f64() {
                close(
                    report.mean.get(&name).expect("metric"),
                    want,
                    1e-12,
                    &format!("ranx {name}"),
                );
            }
            if let Some(per_query) = entry.get("per_query_ranx").and_then(Value::as_object) {
                for (qid, want) in per_query {
                    close(
                        report.per_query[qid].get(&name).expect("metric"),
                        num(want),
                        1e-12,
                        &format!("ranx {name} {qid}"),
                    );
                }
            }
        }
    }
}

#[test]
fn tie_averaged_ndcg_matches_sklearn() {
    // sklearn.metrics.ndcg_score (ignore_ties=False): "sklearn_ndcg_all_queries", "per_query_sklearn".
    let expected = load_json(&example("metrics_expected.json"));
    let report = ranking_report(TieBreak::TrecEval, QueryScope::AllJudged, true);
    for (k, by_metric) in expected["ranking"].as_object().expect("object") {
        let name = format!("ndcg_sklearn@{k}");
        let entry = &by_metric["ndcg_lin"];
        // ndcg_score(ignore_ties=True) happens to order these ties as trec_eval does
        let trec = report.mean.get(&format!("ndcg@{k}")).expect("ndcg@k");
        close(
            trec,
            num(&entry["sklearn_ndcg_ignore_ties_all_queries"]),
            1e-12,
            "sklearn ignore_ties",
        );
        close(
            report.mean.get(&name).expect("metric"),
            num(&entry["sklearn_ndcg_all_queries"]),
            1e-12,
            &name,
        );
        for (qid, want) in entry["per_query_sklearn"].as_object().expect("object") {
            close(
                report.per_query[qid].get(&name).expect("metric"),
                num(want),
                1e-12,
                &format!("{name} {qid}"),
            );
        }
    }
}

#[test]
fn pointwise_matches_sklearn() {
    // "pointwise": sklearn roc_auc_score, log_loss, calibration_curve(n_bins=10, uniform), GAUC.
    let expected = load_json(&example("metrics_expected.json"));
    let want = &expected["pointwise"];
    let report =
        metrics_from_files(None, None, Some(&example("preds.csv")), &[]).expect("evaluates");
    let pw = report.pointwise.as_ref().expect("pointwise section");
    let m = &pw.overall;
    assert_eq!(m.n, 4000);
    assert_eq!(m.positives, 736);
    let pairs = [
        ("auc", "roc_auc_sklearn"),
        ("gauc", "gauc_impression_weighted"),
        ("log_loss", "log_loss_sklearn"),
        ("normalized_entropy", "normalized_entropy"),
        ("ece", "ece_10_uniform"),
        ("mce", "mce_10_uniform"),
        ("observed_over_expected", "observed_over_expected"),
    ];
    for (ours, theirs) in pairs {
        close(
            report.mean.get(ours).expect("metric"),
            num(&want[theirs]),
            1e-12,
            ours,
        );
    }
    close(
        m.expected_over_observed.expect("defined"),
        num(&want["expected_over_observed"]),
        1e-12,
        "E/O",
    );
    let table = want["reliability_table"].as_array().expect("array");
    assert_eq!(m.reliability.len(), table.len());
    for (got, row) in m.reliability.iter().zip(table) {
        assert_eq!(got.bin as u64, row["bin"].as_u64().expect("bin"));
        assert_eq!(got.count, row["count"].as_u64().expect("count"));
        close(got.lo, num(&row["lo"]), 0.0, "lo");
        close(got.hi, num(&row["hi"]), 0.0, "hi");
        close(got.mean_pred, num(&row["mean_pred"]), 1e-12, "mean_pred");
        close(got.frac_pos, num(&row["frac_pos"]), 1e-12, "frac_pos");
    }
}

#[test]
fn downsampling_correction_matches_reference_vectors() {
    // "downsampling_correction_vectors": q = p / (p + (1 - p) / w), He et al. 2014.
    let expected = load_json(&example("metrics_expected.json"));
    for v in expected["downsampling_correction_vectors"]
        .as_array()
        .expect("array")
    {
        close(
            downsampling_correction(num(&v["p"]), num(&v["w"])),
            num(&v["q"]),
            1e-15,
            "q",
        );
    }
}

const OBP_NAMES: [(&str, &str); 5] = [
    ("ipw", "ips"),
    ("snipw", "snips"),
    ("dm", "dm"),
    ("dr", "dr"),
    ("sndr", "sndr"),
];

fn check_ope(csv: &str, expected: &Value) {
    let report = ope_from_file(
        &reference().join("obd_sample").join(csv),
        &OpeOptions::default(),
    )
    .expect("evaluates");
    assert_eq!(report.n, 10_000);
    let behavior = expected
        .get("behavior_on_policy_ctr")
        .or_else(|| expected.get("behavior_on_policy_value"));
    close(
        report.behavior_value,
        num(behavior.expect("behavior value")),
        1e-15,
        "behavior value",
    );
    if let Some(ratio) = expected.get("relative_value_vs_behavior_ipw") {
        let ips = report.estimator("ips").expect("ips").estimate;
        close(
            ips / report.behavior_value,
            num(ratio),
            1e-12,
            "IPS / behavior CTR",
        );
    }
    let truth = expected
        .get("ground_truth_on_policy_value_of_evaluation_policy")
        .or_else(|| expected.get("ground_truth"));
    let truth = num(truth.expect("ground truth"));
    for (obp, ours) in OBP_NAMES {
        let rel = (report.estimator(ours).expect("estimator").estimate - truth).abs() / truth;
        close(
            rel,
            num(&expected["estimators"][obp]["relative_estimation_error"]),
            1e-9,
            "relative error",
        );
    }
    for (obp, ours) in OBP_NAMES {
        let want = &expected["estimators"][obp];
        let got = report.estimator(ours).expect("estimator present");
        close(
            got.estimate,
            num(&want["estimate"]),
            1e-12,
            &format!("{csv} {ours} estimate"),
        );
        close(got.se, num(&want["se"]), 1e-12, &format!("{csv} {ours} se"));
        close(
            got.ci_low,
            num(&want["normal_ci95"][0]),
            1e-12,
            &format!("{csv} {ours} ci_low"),
        );
        close(
            got.ci_high,
            num(&want["normal_ci95"][1]),
            1e-12,
            &format!("{csv} {ours} ci_high"),
        );
    }
}

#[test]
fn ope_matches_open_bandit_pipeline_on_obd() {
    // obd_sample/expected.json: OBP 0.5.7 point estimates; normal CIs/SEs from obp_reference.py's
    // neutral_estimates (re-derived with the standard library in check_obd_csv.py).
    let expected = load_json(&reference().join("obd_sample/expected.json"));
    check_ope("random_all.csv", &expected["obd"]["random"]);
    check_ope("bts_all.csv", &expected["obd"]["bts"]);
    check_ope("synthetic_bandit.csv", &expected["synthetic"]);
}

#[test]
fn bootstrap_is_seeded_and_near_obp_bootstrap() {
    // OBP's percentile bootstrap uses numpy's RNG; only agreement in width is expected.
    let expected = load_json(&reference().join("obd_sample/expected.json"));
    let log = read_logged_bandit(&reference().join("obd_sample/random_all.csv")).expect("reads");
    let options = OpeOptions {
        bootstrap: Some(BootstrapOptions {
            resamples: 1000,
            seed: 12345,
        }),
        ..OpeOptions::default()
    };
    let a = evaluate_policy(&log, &options).expect("evaluates");
    let b = evaluate_policy(&log, &options).expect("evaluates");
    assert_eq!(a, b, "same seed, same intervals");
    for (obp, ours) in OBP_NAMES {
        let [lo, hi] = a
            .estimator(ours)
            .and_then(|e| e.bootstrap_ci)
            .expect("bootstrap CI");
        let want = &expected["obd"]["random"]["estimators"][obp]["obp_bootstrap_ci95"];
        let width = num(&want[1]) - num(&want[0]);
        assert!(
            ((hi - lo) - width).abs() < 0.25 * width,
            "{ours}: width {} vs OBP {width}",
            hi - lo
        );
    }
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("temp file writable");
    path
}

#[test]
fn malformed_inputs_name_file_line_and_column() {
    let dir = tempfile::tempdir().expect("temp dir");
    let preds = write(&dir, "p.csv", "user_id,label,score\nu1,1,0.5\nu2,0,abc\n");
    let msg = metrics_from_files(None, None, Some(&preds), &[])
        .expect_err("bad score")
        .to_string();
    assert!(
        msg.contains("p.csv") && msg.contains("line 3") && msg.contains("`score`"),
        "{msg}"
    );

    let preds = write(&dir, "m.csv", "user_id,score\nu1,0.5\n");
    let err = metrics_from_files(None, None, Some(&preds), &[]).expect_err("missing label");
    assert!(
        matches!(err, EvalError::MissingColumn { ref column, .. } if column == "label"),
        "{err}"
    );

    let preds = write(&dir, "e.csv", "user_id,label,score\n");
    let err = metrics_from_files(None, None, Some(&preds), &[]).expect_err("empty");
    assert!(matches!(err, EvalError::Empty { .. }), "{err}");
    let empty = write(&dir, "z.csv", "");
    assert!(metrics_from_files(None, None, Some(&empty), &[]).is_err());

    let preds = write(&dir, "n.csv", "user_id,label,score\nu1,1,NaN\n");
    assert!(
        metrics_from_files(None, None, Some(&preds), &[]).is_err(),
        "NaN score rejected"
    );
    let preds = write(&dir, "l.csv", "user_id,label,score\nu1,2,0.5\n");
    assert!(metrics_from_files(None, None, Some(&preds), &[])
        .expect_err("label 2")
        .to_string()
        .contains("`label`"));

    let log = write(
        &dir,
        "log.csv",
        "action,reward,pscore,pi_e\n1,0,0.5,0.1\n2,1,0,0.2\n",
    );
    let msg = ope_from_file(&log, &OpeOptions::default())
        .expect_err("pscore 0")
        .to_string();
    assert!(
        msg.contains("log.csv") && msg.contains("line 3") && msg.contains("`pscore`"),
        "{msg}"
    );
    let log = write(&dir, "log2.csv", "action,reward,pscore,pi_e\n1,0,1.5,0.1\n");
    assert!(ope_from_file(&log, &OpeOptions::default())
        .expect_err("pscore > 1")
        .to_string()
        .contains("(0, 1]"));
    let log = write(&dir, "log3.csv", "action,reward,pi_e\n1,0,0.1\n");
    assert!(matches!(
        ope_from_file(&log, &OpeOptions::default()),
        Err(EvalError::MissingColumn { .. })
    ));

    let qrels = write(&dir, "q.txt", "q1 0 d1 1\nq1 0 d2\n");
    let run = write(&dir, "r.txt", "q1 Q0 d1 1 0.5 t\n");
    let msg = metrics_from_files(Some(&qrels), Some(&run), None, &[5])
        .expect_err("short qrels line")
        .to_string();
    assert!(msg.contains("q.txt") && msg.contains("line 2"), "{msg}");
    let qrels = write(&dir, "q2.txt", "q1 0 d1 1\n");
    let run = write(&dir, "r2.txt", "q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 high t\n");
    let msg = metrics_from_files(Some(&qrels), Some(&run), None, &[5])
        .expect_err("bad score")
        .to_string();
    assert!(
        msg.contains("r2.txt") && msg.contains("line 2") && msg.contains("`score`"),
        "{msg}"
    );
}

#[test]
fn single_class_predictions_report_absent_auc_not_nan() {
    let dir = tempfile::tempdir().expect("temp dir");
    let preds = write(
        &dir,
        "p.csv",
        "user_id,label,score,device\nu1,0,0.5,ios\nu2,0,0.2,web\n",
    );
    let report = metrics_from_files(None, None, Some(&preds), &[]).expect("evaluates");
    assert_eq!(report.mean.get("auc"), None);
    assert!(report.warnings.iter().any(|w| w.contains("AUC undefined")));
    // serde_json writes a NaN as null, so check finiteness before serialization
    assert!(
        report.mean.0.iter().all(|(_, v)| v.is_finite()),
        "{:?}",
        report.mean
    );
    assert_eq!(
        report
            .pointwise
            .as_ref()
            .and_then(|p| p.overall.normalized_entropy),
        None
    );
    assert_eq!(report.pointwise.as_ref().map(|p| p.slices.len()), Some(2));
}

#[test]
fn reports_serialize_render_and_draw() {
    let dir = tempfile::tempdir().expect("temp dir");
    // preds with a slice column, built from the reference preds (slice = user id parity)
    let text = std::fs::read_to_string(example("preds.csv")).expect("readable");
    let mut sliced = String::from("user_id,label,score,cohort\n");
    for line in text.lines().skip(1) {
        let odd = line.as_bytes().get(3).is_some_and(|b| b % 2 == 1);
        sliced.push_str(&format!("{line},{}\n", if odd { "odd" } else { "even" }));
    }
    let preds = write(&dir, "sliced.csv", &sliced);
    let metrics = metrics_from_files(
        Some(&example("qrels.txt")),
        Some(&example("run.txt")),
        Some(&preds),
        &[1, 5, 10],
    )
    .expect("evaluates");
    let json: Value = serde_json::to_value(&metrics).expect("serializes");
    assert!(
        json["mean"]["ndcg@10"].is_f64()
            && json["mean"]["auc"].is_f64()
            && json["mean"]["ece"].is_f64()
    );
    assert!(json["per_query"]["q1"]["p@5"].is_f64());
    assert_eq!(
        json["pointwise"]["slices"].as_array().map(Vec::len),
        Some(2)
    );

    let ope = ope_from_file(
        &reference().join("obd_sample/bts_all.csv"),
        &OpeOptions::default(),
    )
    .expect("evaluates");
    let json: Value = serde_json::to_value(&ope).expect("serializes");
    for name in ["ips", "snips", "dm", "dr", "sndr"] {
        for field in ["estimate", "se", "ci_low", "ci_high"] {
            assert!(json["estimators"][name][field].is_f64(), "{name}.{field}");
        }
    }

    let text = metrics.render_text();
    assert!(
        text.contains("ndcg_exp") && text.contains("cohort=odd"),
        "{text}"
    );
    assert!(ope.render_text().contains("snips"));
    let html = flywheel_eval::html_report("flywheel <eval>", Some(&metrics), Some(&ope));
    assert!(html.contains("flywheel &lt;eval&gt;"));
    for needle in [
        "Reliability diagram",
        "Metrics by slice",
        "NDCG@k by k",
        "Estimator confidence intervals",
    ] {
        assert!(html.contains(needle), "missing {needle}");
    }
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    assert!(
        !html.contains("<script") && !html.contains("http://fonts") && !html.contains("src=\"http")
    );
}

#[test]
fn large_predictions_parse_in_parallel_exactly() {
    // > 4 MiB, so read_predictions splits the file across threads; the columns and the
    // AUC must equal those of the generating arrays (oracle: the data we wrote).
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(11);
    let n = 300_000;
    let users: Vec<u32> = (0..n).map(|_| rng.gen_range(0..5000)).collect();
    let labels: Vec<bool> = (0..n).map(|_| rng.gen_bool(0.2)).collect();
    let scores: Vec<f64> = labels
        .iter()
        .map(|l| {
            if *l {
                rng.gen_range(0.1..1.0)
            } else {
                rng.gen_range(0.0..0.9)
            }
        })
        .collect();
    let mut text = String::from("user_id,label,score,region\n");
    for i in 0..n {
        text.push_str(&format!(
            "user-{},{},{},r{}\n",
            users[i],
            u8::from(labels[i]),
            scores[i],
            users[i] % 3
        ));
    }
    assert!(text.len() > 4 << 20);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(&dir, "big.csv", &text);
    let preds = flywheel_eval::preds::read_predictions(&path).expect("reads");
    assert_eq!(preds.labels, labels);
    assert_eq!(
        preds.scores, scores,
        "shortest round-trip formatting parses back exactly"
    );
    for (row, user) in preds.users.iter().enumerate() {
        assert_eq!(
            preds.user_names[*user as usize],
            format!("user-{}", users[row])
        );
    }
    let region = &preds.slices[0];
    for (row, code) in region.codes.iter().enumerate() {
        assert_eq!(
            region.values[*code as usize],
            format!("r{}", users[row] % 3)
        );
    }
    let direct = flywheel_eval::pointwise::roc_auc(&labels, &scores);
    let report = metrics_from_files(None, None, Some(&path), &[]).expect("evaluates");
    assert_eq!(report.mean.get("auc"), direct);
}

/// The Open Bandit CSVs, of which the repository keeps only the columns flywheel-eval reads
/// (`tests/fixtures/reference/copy_from_shared.sh`); every other fixture is a byte copy.
const PROJECTED: [&str; 3] = [
    "obd_sample/random_all.csv",
    "obd_sample/bts_all.csv",
    "obd_sample/synthetic_bandit.csv",
];

/// Files of the fixture folder that are the repository's own, not copies.
const NOT_COPIES: [&str; 3] = ["README.md", "copy_from_shared.sh", ".gitattributes"];

/// Every file under `dir`, as a `/`-separated path relative to `root`.
fn files_under(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("fixture folder is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files_under(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).expect("under the root");
            let parts: Vec<_> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect();
            out.push(parts.join("/"));
        }
    }
}

/// A CSV without quoted fields cut down to the columns named in `header`, in that order;
/// line ends are kept as they are.
fn project(text: &str, header: &str) -> String {
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().expect("a header line");
    let names: Vec<&str> = first.trim_end_matches(['\r', '\n']).split(',').collect();
    let keep: Vec<usize> = header
        .split(',')
        .map(|c| {
            names
                .iter()
                .position(|n| *n == c)
                .unwrap_or_else(|| panic!("column {c} is not in the source"))
        })
        .collect();
    let mut out = String::with_capacity(text.len());
    for line in std::iter::once(first).chain(lines) {
        let body = line.trim_end_matches(['\r', '\n']);
        let fields: Vec<&str> = body.split(',').collect();
        let picked: Vec<&str> = keep.iter().map(|&i| fields[i]).collect();
        out.push_str(&picked.join(","));
        out.push_str(&line[body.len()..]);
    }
    out
}

#[test]
fn fixtures_are_the_shared_reference_files() {
    // The repository's copy must stay the trusted tools' output: byte for byte, or for the
    // three Open Bandit CSVs, the same bytes of the kept columns in every row.
    const TEST: &str = "fixtures_are_the_shared_reference_files";
    let shared = skip::shared_dir().join("reference");
    if !shared.is_dir() {
        skip::skip(
            TEST,
            &format!(
                "{} not found, so tests/fixtures/reference was not compared with its source",
                shared.display()
            ),
        );
        return;
    }
    let root = reference();
    let mut files = Vec::new();
    files_under(&root, &root, &mut files);
    files.sort();
    let mut compared = 0;
    for rel in files.iter().filter(|f| !NOT_COPIES.contains(&f.as_str())) {
        let ours = std::fs::read(root.join(rel)).expect("fixture is readable");
        let theirs = std::fs::read(shared.join(rel))
            .unwrap_or_else(|e| panic!("{rel} is not in {}: {e}", shared.display()));
        let same = if PROJECTED.contains(&rel.as_str()) {
            let ours = String::from_utf8(ours).expect("UTF-8 CSV");
            let header = ours.lines().next().expect("a header").to_string();
            ours == project(&String::from_utf8(theirs).expect("UTF-8 CSV"), &header)
        } else {
            ours == theirs
        };
        assert!(
            same,
            "tests/fixtures/reference/{rel} differs from {}/{rel}; \
             re-run tests/fixtures/reference/copy_from_shared.sh",
            shared.display()
        );
        compared += 1;
    }
    assert_eq!(compared, 22, "every copied fixture was compared: {files:?}");
}
