//! Property tests (proptest) of the file readers: qrels, runs, predictions and bandit
//! logs written and read back, and arbitrary bytes refused or read, never a panic and
//! never a NaN in what is evaluated. The `eval_files` fuzz target (`fuzz/` at the
//! repository root) checks the same at millions of inputs.

use flywheel_eval::preds::read_predictions;
use flywheel_eval::trec::{read_qrels, read_run};
use flywheel_eval::{metrics_from_files, ope_from_file, OpeOptions};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};

fn judgments() -> impl Strategy<Value = BTreeMap<String, HashMap<String, f64>>> {
    let docs = prop::collection::hash_map("d[a-z0-9]{1,6}", (0u8..4).prop_map(f64::from), 1..8);
    prop::collection::btree_map("q[0-9]{1,3}", docs, 1..6)
}

fn all_finite(values: impl IntoIterator<Item = f64>) -> bool {
    values.into_iter().all(f64::is_finite)
}

/// Found by the `eval_files` fuzz target: a grade of 1.2e27 was read, and `ndcg_exp`
/// (gain `2^rel - 1`) came out NaN. Grades are now bounded by `MAX_GRADE`.
#[test]
fn a_huge_relevance_grade_is_refused_naming_the_line() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (qrels, run) = (dir.path().join("qrels"), dir.path().join("run"));
    std::fs::write(&qrels, "q0 0 d0 1222222222222222222222222222\nq0 0 d1 0\n").expect("writes");
    std::fs::write(&run, "q0 Q0 d0 1 0.5 t\nq0 Q0 d1 2 0.25 t\n").expect("writes");
    let error = metrics_from_files(Some(&qrels), Some(&run), None, &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("line 1, column `rel`"), "{error}");
    std::fs::write(&qrels, "q0 0 d0 100\nq0 0 d1 -100\n").expect("writes");
    let report = metrics_from_files(Some(&qrels), Some(&run), None, &[]).expect("evaluates");
    assert!(
        all_finite(report.mean.0.iter().map(|(_, v)| *v)),
        "{:?}",
        report.mean
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn qrels_and_runs_written_read_back_the_same(queries in judgments(), scores in any::<u64>()) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (mut qrels, mut run) = (String::new(), String::new());
        let mut expected_run: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
        for (n, (query, docs)) in queries.iter().enumerate() {
            for (rank, (doc, grade)) in docs.iter().enumerate() {
                qrels.push_str(&format!("{query} 0 {doc} {grade}\n"));
                let score = ((scores >> (rank % 60)) % 97) as f64 / 8.0 - n as f64;
                run.push_str(&format!("{query} Q0 {doc} {rank} {score} tag\n"));
                expected_run.entry(query.clone()).or_default().push((doc.clone(), score));
            }
        }
        let (qrels_path, run_path) = (dir.path().join("qrels"), dir.path().join("run"));
        std::fs::write(&qrels_path, qrels).expect("writes");
        std::fs::write(&run_path, run).expect("writes");
        prop_assert_eq!(read_qrels(&qrels_path).expect("qrels read").queries, queries);
        prop_assert_eq!(read_run(&run_path).expect("a run reads").queries, expected_run);
        let report = metrics_from_files(Some(&qrels_path), Some(&run_path), None, &[1, 5])
            .expect("evaluates");
        prop_assert!(all_finite(report.mean.0.iter().map(|(_, v)| *v)), "{:?}", report.mean);
    }

    #[test]
    fn predictions_written_read_back_the_same(
        rows in prop::collection::vec(("u[0-9]{1,2}", any::<bool>(), 0.0f64..1.0), 1..40),
        quoted in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut text = String::from("user_id,label,score\n");
        for (user, label, score) in &rows {
            let user = if quoted { format!("\"{user}\"") } else { user.clone() };
            text.push_str(&format!("{user},{},{score}\n", u8::from(*label)));
        }
        let path = dir.path().join("preds.csv");
        std::fs::write(&path, text).expect("writes");
        let preds = read_predictions(&path).expect("predictions read");
        prop_assert_eq!(&preds.labels, &rows.iter().map(|r| r.1).collect::<Vec<_>>());
        prop_assert_eq!(&preds.scores, &rows.iter().map(|r| r.2).collect::<Vec<_>>());
        let names: Vec<&str> = preds.users.iter().map(|u| preds.user_names[*u as usize].as_str()).collect();
        prop_assert_eq!(names, rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>());
        let report = metrics_from_files(None, None, Some(&path), &[]).expect("evaluates");
        prop_assert!(all_finite(report.mean.0.iter().map(|(_, v)| *v)), "{:?}", report.mean);
    }

    #[test]
    fn arbitrary_eval_files_never_panic_nor_give_a_nan(
        bytes in prop::collection::vec(prop::sample::select(
            b"0123456789.,-e\n \t\"qQdu_abcnfiNaNinf".to_vec()), 0..200),
        header in prop::sample::select(vec!["", "user_id,label,score\n", "reward,pscore,pi_e\n",
            "reward,pscore,pi_e,q_hat,dm_term,position\n"]),
    ) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("input");
        let mut file = header.as_bytes().to_vec();
        file.extend_from_slice(&bytes);
        std::fs::write(&path, &file).expect("writes");
        let _ = read_qrels(&path);
        let _ = read_run(&path);
        if let Ok(report) = metrics_from_files(None, None, Some(&path), &[]) {
            prop_assert!(all_finite(report.mean.0.iter().map(|(_, v)| *v)), "{:?}", report.mean);
        }
        if let Ok(report) = metrics_from_files(Some(&path), Some(&path), None, &[]) {
            prop_assert!(all_finite(report.mean.0.iter().map(|(_, v)| *v)), "{:?}", report.mean);
        }
        if let Ok(report) = ope_from_file(&path, &OpeOptions::default()) {
            let estimates = report.estimators.iter().flat_map(|e| [e.estimate, e.se, e.ci_low, e.ci_high]);
            prop_assert!(all_finite(estimates), "{report:?}");
        }
    }
}
