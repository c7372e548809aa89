//! The holdout report of `flywheel eval --html`, drawn with flywheel-eval's report kit
//! ([`flywheel_eval::report_html`]): which sections and which numbers.

use std::collections::{BTreeMap, BTreeSet};

use flywheel_eval::report_html::{
    escape, line_chart, number, reliability_diagram, reliability_table, Page, Series, Table, YAxis,
};

use super::metrics::{SystemMetrics, CURVE_KS};
use super::{Comparison, EvalReport, RankerCalibration};

/// Renders the report (and a gate verdict, if any) as an HTML page.
pub fn render_html(report: &EvalReport, comparison: Option<&Comparison>) -> String {
    let mut page = Page::new("flywheel evaluation");
    page.paragraph(&format!(
        "{}; recommendations as of {}. {} training events, {} test events, {} test users ({} with no history), {} items.",
        report.protocol,
        report.cut,
        report.train_events,
        report.test_events,
        report.test_users,
        report.cold_users,
        report.catalog_items
    ));
    systems_table(&mut page, "Users with training history", &report.systems);
    systems_table(
        &mut page,
        "Users with no history (cold start)",
        &report.cold_start,
    );
    page.h2("NDCG@k by k")
        .push_html(&ndcg_curve(&report.systems));
    slices_table(&mut page, report);
    if let Some(calibration) = &report.calibration {
        calibration_section(&mut page, calibration);
    }
    if let Some(c) = comparison {
        page.h2("Promotion gate")
            .paragraph(&format!("{}. {}", c.method.describe(), c.figures()))
            .push_html(&format!("<p><b>{}</b>.</p>", escape(&c.verdict())));
    }
    page.finish()
}

fn systems_table(page: &mut Page, title: &str, systems: &BTreeMap<String, SystemMetrics>) {
    let Some(first) = systems.values().next() else {
        return;
    };
    let header = first.columns().map(|(name, _)| name);
    let mut table = Table::new(
        std::iter::once("system")
            .chain(header)
            .chain(std::iter::once("served")),
    );
    for (name, m) in systems {
        table.row(
            std::iter::once(name.clone())
                .chain(m.columns().iter().map(|(_, value)| format!("{value:.4}")))
                .chain(std::iter::once(m.users_served.to_string())),
        );
    }
    page.h2(title).table(&table);
}

fn slices_table(page: &mut Page, report: &EvalReport) {
    if report.slices.is_empty() {
        return;
    }
    let mut header = vec!["slice".to_string()];
    for system in report.slices.keys() {
        header.extend([
            format!("{system} ndcg@10"),
            "recall@20".to_string(),
            "users".to_string(),
        ]);
    }
    let mut table = Table::new(header);
    let names: BTreeSet<&String> = report.slices.values().flat_map(|s| s.keys()).collect();
    for name in names {
        let mut cells = vec![name.clone()];
        for by_slice in report.slices.values() {
            match by_slice.get(name) {
                Some(m) => cells.extend([
                    format!("{:.4}", m.ndcg_at_10),
                    format!("{:.4}", m.recall_at_20),
                    m.users.to_string(),
                ]),
                None => cells.extend(["–", "–", "–"].map(String::from)),
            }
        }
        table.row(cells);
    }
    page.h2("Metrics by slice")
        .paragraph("Item slices keep the relevant items of the slice; user slices keep the users (new: the third with the shortest training history, power: the longest).")
        .table(&table);
}

fn calibration_section(page: &mut Page, c: &RankerCalibration) {
    page.h2("Ranker calibration on the holdout candidates")
        .paragraph(&format!(
            "{} rows, {} positive; AUC {}; log-loss {:.4}; ECE {:.4}; MCE {:.4}.",
            c.rows,
            c.positives,
            number(c.auc, 4),
            c.log_loss,
            c.ece,
            c.mce
        ))
        .table(&reliability_table(&c.reliability))
        .push_html(&reliability_diagram(&c.reliability));
}

/// NDCG@k against k, one line per system.
fn ndcg_curve(systems: &BTreeMap<String, SystemMetrics>) -> String {
    let series: Vec<Series> = systems
        .iter()
        .map(|(name, m)| Series {
            name: name.clone(),
            points: m.ndcg_by_k.iter().map(|(k, v)| (*k as f64, *v)).collect(),
        })
        .collect();
    line_chart("NDCG@k by k", "cut-off k", &CURVE_KS, YAxis::Fit, &series)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::Timestamp;
    use std::collections::BTreeMap;

    fn metrics() -> SystemMetrics {
        SystemMetrics {
            ndcg_at_10: 0.2,
            recall_at_20: 0.3,
            precision_at_10: 0.1,
            map_at_10: 0.1,
            hit_at_10: 0.5,
            coverage: 0.4,
            intra_list_diversity: 0.6,
            novelty: 3.0,
            ndcg_by_k: CURVE_KS.iter().map(|k| (*k, 0.02 * *k as f64)).collect(),
            users_served: 9,
        }
    }

    fn report() -> EvalReport {
        EvalReport {
            protocol: "temporal <holdout>".into(),
            split: super::super::Split::Temporal,
            cut: Timestamp(0),
            train_events: 1,
            test_events: 1,
            test_users: 1,
            cold_users: 0,
            catalog_items: 1,
            systems: BTreeMap::from([("blend".to_string(), metrics())]),
            cold_start: BTreeMap::new(),
            slices: BTreeMap::new(),
            calibration: None,
        }
    }

    #[test]
    fn page_is_self_contained_and_escaped() {
        let page = render_html(&report(), None);
        assert!(page.contains("temporal &lt;holdout&gt;"));
        assert!(page.contains("<svg") && page.contains("<polyline"));
        assert!(!page.contains("<script") && !page.contains("src=") && !page.contains("href="));
    }

    #[test]
    fn every_section_shows_its_numbers() {
        use super::super::{GateMethod, PromotionRule, SliceMetrics};
        use flywheel_eval::pointwise::ReliabilityBin;
        let mut report = report();
        report.cold_start = BTreeMap::from([("popularity".to_string(), metrics())]);
        report.slices = BTreeMap::from([(
            "blend".to_string(),
            BTreeMap::from([(
                "items:tail".to_string(),
                SliceMetrics {
                    users: 4,
                    ndcg_at_10: 0.125,
                    recall_at_20: 0.25,
                    hit_at_10: 0.5,
                },
            )]),
        )]);
        report.calibration = Some(RankerCalibration {
            rows: 10,
            positives: 3,
            auc: None,
            log_loss: 0.5,
            ece: 0.05,
            mce: 0.1,
            reliability: vec![ReliabilityBin {
                bin: 0,
                lo: 0.0,
                hi: 0.1,
                count: 10,
                mean_pred: 0.05,
                frac_pos: 0.3,
            }],
        });
        let comparison = Comparison {
            protocol: "temporal".into(),
            method: GateMethod::Frozen,
            cut: Timestamp(0),
            serving_version: "v1".into(),
            candidate_version: "v<2>".into(),
            users: 7,
            serving: metrics(),
            candidate: metrics(),
            mean_difference: 0.01,
            ci_low: -0.002,
            ci_high: 0.02,
            confidence: 0.95,
            resamples: 1000,
            seed: 42,
            rule: PromotionRule::NonInferiority { margin: 0.005 },
            promote: true,
        };
        let page = render_html(&report, Some(&comparison));
        for needle in [
            "<h2>Users with training history</h2>",
            "<h2>Users with no history (cold start)</h2>",
            "<tr><th>system</th><th>ndcg@10</th><th>recall@20</th>",
            "<td>blend</td><td>0.2000</td>",
            "<td>popularity</td>",
            "<th>served</th>",
            "<th>blend ndcg@10</th>",
            "<tr><td>items:tail</td><td>0.1250</td><td>0.2500</td><td>4</td></tr>",
            "10 rows, 3 positive; AUC –; log-loss 0.5000; ECE 0.0500; MCE 0.1000.",
            "<tr><td>(0.0, 0.1]</td><td>10</td><td>0.0500</td><td>0.3000</td></tr>",
            "Reliability diagram",
            "<h2>Promotion gate</h2>",
            "(v&lt;2&gt;, candidate) vs",
            "(v1, serving), difference +0.0100, 95% paired bootstrap CI",
            "on 7 users",
            ": promote</b>.</p>",
        ] {
            assert!(page.contains(needle), "missing {needle}");
        }
        assert_eq!(page.matches("<svg").count(), 2);
        assert_eq!(page.matches("<svg").count(), page.matches("</svg>").count());
    }
}
