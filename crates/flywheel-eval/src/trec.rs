//! TREC qrels and run files: parsing with precise errors, and per-query evaluation.
//!
//! qrels: `<qid> <iter> <docid> <rel>`; run: `<qid> Q0 <docid> <rank> <score> <tag>`.
//! As in trec_eval, the run's rank column is ignored: order comes from the score.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;

use crate::error::{EvalError, Result};
use crate::metric_map::MetricMap;
use crate::ranking::{
    ap_from_grades, ap_min_kr_from_grades, hits_from_grades, ndcg_from_grades,
    ndcg_tie_averaged_at_k, rr_from_grades, Gain, JudgedSummary,
};

/// Relevance judgments: query id -> (document id -> grade).
#[derive(Debug, Clone, Default)]
pub struct Qrels {
    /// Judgments per query.
    pub queries: BTreeMap<String, HashMap<String, f64>>,
}

/// A run: query id -> retrieved (document id, score) in file order.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Scored documents per query, in the order the file lists them.
    pub queries: BTreeMap<String, Vec<(String, f64)>>,
}

/// How documents with equal scores are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TieBreak {
    /// Score descending, then document id descending, byte-wise (trec_eval, pytrec_eval).
    #[default]
    TrecEval,
    /// Score descending, ties kept in file order (a stable sort; ranx's behaviour).
    InputOrder,
}

/// Which queries the means average over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QueryScope {
    /// Every judged query; a query absent from the run scores 0 (trec_eval `-c`, ranx).
    #[default]
    AllJudged,
    /// Only queries both judged and in the run (pytrec_eval, trec_eval without `-c`).
    RunAndJudged,
}

/// Options of ranking evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct RankingOptions {
    /// Cutoffs k.
    pub ks: Vec<usize>,
    /// Tie order.
    pub tie_break: TieBreak,
    /// Queries averaged.
    pub scope: QueryScope,
    /// Also report scikit-learn's tie-averaged NDCG as `ndcg_sklearn@k`.
    pub sklearn_ndcg: bool,
}

impl Default for RankingOptions {
    fn default() -> Self {
        RankingOptions {
            ks: vec![1, 3, 5, 10],
            tie_break: TieBreak::TrecEval,
            scope: QueryScope::AllJudged,
            sklearn_ndcg: false,
        }
    }
}

/// Ranking metrics per query and their means.
#[derive(Debug, Clone, Serialize)]
pub struct RankingReport {
    /// The options used.
    pub options: RankingOptions,
    /// Queries in the qrels.
    pub queries_judged: usize,
    /// Queries in the run.
    pub queries_in_run: usize,
    /// Queries averaged (depends on the scope).
    pub queries_evaluated: usize,
    /// Run queries without judgments (ignored, as trec_eval does).
    pub run_queries_without_judgments: Vec<String>,
    /// Mean of each metric over the evaluated queries.
    pub mean: MetricMap,
    /// Metrics of each evaluated query.
    pub per_query: BTreeMap<String, MetricMap>,
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))
}

fn parse_number(path: &Path, line: u64, column: &str, text: &str) -> Result<f64> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(EvalError::invalid(
            path,
            line,
            column,
            text.as_bytes(),
            "expected a finite number",
        )),
    }
}

/// The largest relevance grade (in magnitude) a qrels file may hold: far above any
/// grading scale, and small enough that the exponential gain `2^rel - 1` and the sums
/// of gains stay finite (a grade of 1e27 made `ndcg_exp` NaN; found by fuzzing).
pub const MAX_GRADE: f64 = 100.0;

/// Reads a qrels file (`<qid> <iter> <docid> <rel>`, whitespace separated; grades
/// within ±[`MAX_GRADE`]).
pub fn read_qrels(path: &Path) -> Result<Qrels> {
    let text = read_text(path)?;
    let mut qrels = Qrels::default();
    for (index, line) in text.lines().enumerate() {
        let line_no = index as u64 + 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let [qid, _iter, doc, rel] = fields[..] else {
            return Err(EvalError::BadLine {
                path: path.to_path_buf(),
                line: line_no,
                reason: format!(
                    "qrels lines have 4 fields `<qid> <iter> <docid> <rel>`, found {}",
                    fields.len()
                ),
            });
        };
        let grade = parse_number(path, line_no, "rel", rel)?;
        if grade.abs() > MAX_GRADE {
            return Err(EvalError::invalid(
                path,
                line_no,
                "rel",
                rel.as_bytes(),
                format!("a relevance grade lies within ±{MAX_GRADE}"),
            ));
        }
        if qrels
            .queries
            .entry(qid.to_string())
            .or_default()
            .insert(doc.to_string(), grade)
            .is_some()
        {
            return Err(EvalError::BadLine {
                path: path.to_path_buf(),
                line: line_no,
                reason: format!(
                    "document `{doc}` is judged twice for query `{qid}`; keep one line"
                ),
            });
        }
    }
    if qrels.queries.is_empty() {
        return Err(EvalError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(qrels)
}

/// Reads a run file (`<qid> Q0 <docid> <rank> <score> <tag>`, whitespace separated).
pub fn read_run(path: &Path) -> Result<Run> {
    let text = read_text(path)?;
    let mut run = Run::default();
    let mut seen: HashMap<(String, String), ()> = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index as u64 + 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let [qid, _q0, doc, _rank, score, _tag] = fields[..] else {
            return Err(EvalError::BadLine {
                path: path.to_path_buf(),
                line: line_no,
                reason: format!(
                    "run lines have 6 fields `<qid> Q0 <docid> <rank> <score> <tag>`, found {}",
                    fields.len()
                ),
            });
        };
        let score = parse_number(path, line_no, "score", score)?;
        if seen
            .insert((qid.to_string(), doc.to_string()), ())
            .is_some()
        {
            return Err(EvalError::BadLine {
                path: path.to_path_buf(),
                line: line_no,
                reason: format!(
                    "document `{doc}` is retrieved twice for query `{qid}`; keep one line"
                ),
            });
        }
        run.queries
            .entry(qid.to_string())
            .or_default()
            .push((doc.to_string(), score));
    }
    if run.queries.is_empty() {
        return Err(EvalError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(run)
}

/// Orders scored documents best first under a tie policy.
pub fn rank_documents(scored: &[(String, f64)], tie_break: TieBreak) -> Vec<&str> {
    let mut order: Vec<&(String, f64)> = scored.iter().collect();
    match tie_break {
        TieBreak::TrecEval => order.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then_with(|| b.0.as_bytes().cmp(a.0.as_bytes()))
        }),
        TieBreak::InputOrder => order.sort_by(|a, b| b.1.total_cmp(&a.1)),
    }
    order.into_iter().map(|(d, _)| d.as_str()).collect()
}

/// All metrics of one scored query for the given options (ties broken per the options).
pub fn evaluate_query(
    judgments: &HashMap<String, f64>,
    scored: &[(String, f64)],
    options: &RankingOptions,
) -> MetricMap {
    let ranked = rank_documents(scored, options.tie_break);
    metrics_of_ranking(judgments, &ranked, Some(scored), options)
}

/// All metrics of one already-ranked list (best first). `scored` is needed only for
/// the tie-averaged `ndcg_sklearn@k`, which is skipped without it.
pub fn metrics_of_ranking(
    judgments: &HashMap<String, f64>,
    ranked: &[&str],
    scored: Option<&[(String, f64)]>,
    options: &RankingOptions,
) -> MetricMap {
    let grades: Vec<f64> = ranked
        .iter()
        .map(|d| judgments.get(*d).copied().unwrap_or(0.0))
        .collect();
    let judged = JudgedSummary::from_grades(judgments.values().copied());
    let r = judged.n_relevant as f64;
    let mut out = MetricMap::default();
    for &k in &options.ks {
        let hits = hits_from_grades(&grades, k) as f64;
        out.push(
            format!("ndcg@{k}"),
            ndcg_from_grades(&grades, &judged, k, Gain::Linear),
        );
        out.push(
            format!("ndcg_exp@{k}"),
            ndcg_from_grades(&grades, &judged, k, Gain::Exponential),
        );
        out.push(
            format!("ndcg_bin@{k}"),
            ndcg_from_grades(&grades, &judged, k, Gain::Binary),
        );
        if let (true, Some(scored)) = (options.sklearn_ndcg, scored) {
            let pairs: Vec<(&str, f64)> = scored.iter().map(|(d, s)| (d.as_str(), *s)).collect();
            out.push(
                format!("ndcg_sklearn@{k}"),
                ndcg_tie_averaged_at_k(&pairs, judgments, k),
            );
        }
        out.push(format!("map@{k}"), ap_from_grades(&grades, &judged, k));
        out.push(
            format!("map_minkr@{k}"),
            ap_min_kr_from_grades(&grades, &judged, k),
        );
        out.push(format!("mrr@{k}"), rr_from_grades(&grades, k));
        out.push(format!("p@{k}"), hits / k as f64);
        out.push(format!("r@{k}"), if r > 0.0 { hits / r } else { 0.0 });
        out.push(format!("hit@{k}"), f64::from(u8::from(hits > 0.0)));
    }
    out.push(
        "ndcg",
        ndcg_from_grades(&grades, &judged, usize::MAX, Gain::Linear),
    );
    out.push("map", ap_from_grades(&grades, &judged, usize::MAX));
    out.push("mrr", rr_from_grades(&grades, usize::MAX));
    out
}

/// Evaluates a run against qrels.
pub fn evaluate_run(qrels: &Qrels, run: &Run, options: &RankingOptions) -> Result<RankingReport> {
    check_cutoffs(options)?;
    let empty = Vec::new();
    let mut per_query = BTreeMap::new();
    for (qid, judgments) in &qrels.queries {
        let scored = match (run.queries.get(qid), options.scope) {
            (Some(scored), _) => scored,
            (None, QueryScope::AllJudged) => &empty,
            (None, QueryScope::RunAndJudged) => continue,
        };
        per_query.insert(qid.clone(), evaluate_query(judgments, scored, options));
    }
    let mean = mean_of(&per_query);
    Ok(RankingReport {
        options: options.clone(),
        queries_judged: qrels.queries.len(),
        queries_in_run: run.queries.len(),
        queries_evaluated: per_query.len(),
        run_queries_without_judgments: run
            .queries
            .keys()
            .filter(|q| !qrels.queries.contains_key(*q))
            .cloned()
            .collect(),
        mean,
        per_query,
    })
}

/// Evaluates lists the engine ranked itself (best first), e.g. each test user's top 10
/// against their held-out items (`judgments`: user -> item -> grade, 1 for "relevant").
/// Under [`QueryScope::AllJudged`] a judged query without a list scores 0.
pub fn evaluate_ranked_lists(
    judgments: &Qrels,
    lists: &BTreeMap<String, Vec<String>>,
    options: &RankingOptions,
) -> Result<RankingReport> {
    check_cutoffs(options)?;
    let mut per_query = BTreeMap::new();
    for (qid, grades) in &judgments.queries {
        let ranked: Vec<&str> = match (lists.get(qid), options.scope) {
            (Some(list), _) => list.iter().map(String::as_str).collect(),
            (None, QueryScope::AllJudged) => Vec::new(),
            (None, QueryScope::RunAndJudged) => continue,
        };
        per_query.insert(
            qid.clone(),
            metrics_of_ranking(grades, &ranked, None, options),
        );
    }
    Ok(RankingReport {
        options: options.clone(),
        queries_judged: judgments.queries.len(),
        queries_in_run: lists.len(),
        queries_evaluated: per_query.len(),
        run_queries_without_judgments: lists
            .keys()
            .filter(|q| !judgments.queries.contains_key(*q))
            .cloned()
            .collect(),
        mean: mean_of(&per_query),
        per_query,
    })
}

fn check_cutoffs(options: &RankingOptions) -> Result<()> {
    if options.ks.is_empty() || options.ks.contains(&0) {
        return Err(EvalError::InvalidArgument(format!(
            "cutoffs must be >= 1, got {:?}",
            options.ks
        )));
    }
    Ok(())
}

fn mean_of(per_query: &BTreeMap<String, MetricMap>) -> MetricMap {
    let mut mean = MetricMap::default();
    let Some(first) = per_query.values().next() else {
        return mean;
    };
    let n = per_query.len() as f64;
    for (i, name) in first.names().enumerate() {
        let total: f64 = per_query.values().map(|m| m.0[i].1).sum();
        mean.push(name, total / n);
    }
    mean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trec_ties_break_by_docid_descending_input_order_keeps_file_order() {
        let scored = vec![
            ("d1".to_string(), 0.5),
            ("d3".to_string(), 0.5),
            ("d2".to_string(), 0.9),
        ];
        assert_eq!(
            rank_documents(&scored, TieBreak::TrecEval),
            ["d2", "d3", "d1"]
        );
        assert_eq!(
            rank_documents(&scored, TieBreak::InputOrder),
            ["d2", "d1", "d3"]
        );
    }

    #[test]
    fn ranked_lists_equal_scored_run_with_the_same_order() {
        let mut qrels = Qrels::default();
        qrels.queries.insert(
            "u1".into(),
            HashMap::from([("a".into(), 1.0), ("b".into(), 1.0)]),
        );
        qrels
            .queries
            .insert("u2".into(), HashMap::from([("c".into(), 1.0)]));
        let lists = BTreeMap::from([(
            "u1".to_string(),
            vec!["x".to_string(), "b".to_string(), "a".to_string()],
        )]);
        let mut run = Run::default();
        run.queries.insert(
            "u1".into(),
            vec![("x".into(), 3.0), ("b".into(), 2.0), ("a".into(), 1.0)],
        );
        let options = RankingOptions {
            ks: vec![1, 2, 10],
            ..RankingOptions::default()
        };
        let from_lists = evaluate_ranked_lists(&qrels, &lists, &options).expect("valid");
        let from_run = evaluate_run(&qrels, &run, &options).expect("valid");
        assert_eq!(from_lists.mean, from_run.mean);
        assert_eq!(from_lists.per_query["u2"].get("ndcg@10"), Some(0.0));
        // u1: hits at ranks 2 and 3, R = 2 -> AP@10 = (1/2 + 2/3) / 2; u2 scores 0
        let want = ((0.5 + 2.0 / 3.0) / 2.0) / 2.0;
        assert!((from_lists.mean.get("map@10").expect("map@10") - want).abs() < 1e-15);
        assert!(evaluate_ranked_lists(
            &qrels,
            &lists,
            &RankingOptions {
                ks: vec![0],
                ..options
            }
        )
        .is_err());
    }
}
