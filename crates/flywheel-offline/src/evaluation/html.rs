//! The evaluation as one self-contained HTML page: inline CSS and hand-drawn SVG,
//! no scripts, no external fonts.

use std::fmt::Write;

use super::metrics::{SystemMetrics, CURVE_KS};
use super::{Comparison, EvalReport, RankerCalibration};

const STYLE: &str = "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}";
const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f",
];
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 320.0;
const MARGIN: f64 = 48.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the report (and a gate verdict, if any) as an HTML page.
pub fn render_html(report: &EvalReport, comparison: Option<&Comparison>) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>flywheel evaluation</title><style>{STYLE}</style></head><body><h1>flywheel evaluation</h1><p>{}; recommendations as of {}. {} training events, {} test events, {} test users ({} with no history), {} items.</p>",
        escape(&report.protocol),
        report.cut,
        report.train_events,
        report.test_events,
        report.test_users,
        report.cold_users,
        report.catalog_items
    );
    systems_table(&mut out, "Users with training history", &report.systems);
    systems_table(
        &mut out,
        "Users with no history (cold start)",
        &report.cold_start,
    );
    out.push_str("<h2>NDCG@k by k</h2>");
    out.push_str(&ndcg_curve(&report.systems));
    slices_table(&mut out, report);
    if let Some(calibration) = &report.calibration {
        calibration_section(&mut out, calibration);
    }
    if let Some(c) = comparison {
        let _ = write!(
            out,
            "<h2>Promotion gate</h2><p>{} against {} on {} users: mean NDCG@10 lift {:+.5}, {:.0}% bootstrap CI [{:+.5}, {:+.5}] ({} resamples, seed {}); rule {:?} → <b>{}</b>.</p>",
            escape(&c.candidate_version),
            escape(&c.serving_version),
            c.users,
            c.mean_difference,
            c.confidence * 100.0,
            c.ci_low,
            c.ci_high,
            c.resamples,
            c.seed,
            c.rule,
            if c.promote { "promote" } else { "keep serving" }
        );
    }
    out.push_str("</body></html>\n");
    out
}

fn systems_table(
    out: &mut String,
    title: &str,
    systems: &std::collections::BTreeMap<String, SystemMetrics>,
) {
    if systems.is_empty() {
        return;
    }
    let header = systems
        .values()
        .next()
        .map(SystemMetrics::columns)
        .unwrap_or_default();
    let _ = write!(out, "<h2>{}</h2><table><tr><th>system</th>", escape(title));
    for (name, _) in header {
        let _ = write!(out, "<th>{name}</th>");
    }
    out.push_str("<th>served</th></tr>");
    for (name, m) in systems {
        let _ = write!(out, "<tr><td>{}</td>", escape(name));
        for (_, value) in m.columns() {
            let _ = write!(out, "<td>{value:.4}</td>");
        }
        let _ = write!(out, "<td>{}</td></tr>", m.users_served);
    }
    out.push_str("</table>");
}

fn slices_table(out: &mut String, report: &EvalReport) {
    if report.slices.is_empty() {
        return;
    }
    out.push_str("<h2>Metrics by slice</h2><p>Item slices keep the relevant items of the slice; user slices keep the users (new: the third with the shortest training history, power: the longest).</p><table><tr><th>slice</th>");
    for system in report.slices.keys() {
        let _ = write!(
            out,
            "<th>{} ndcg@10</th><th>recall@20</th><th>users</th>",
            escape(system)
        );
    }
    out.push_str("</tr>");
    let names: std::collections::BTreeSet<&String> =
        report.slices.values().flat_map(|s| s.keys()).collect();
    for name in names {
        let _ = write!(out, "<tr><td>{}</td>", escape(name));
        for by_slice in report.slices.values() {
            match by_slice.get(name) {
                Some(m) => {
                    let _ = write!(
                        out,
                        "<td>{:.4}</td><td>{:.4}</td><td>{}</td>",
                        m.ndcg_at_10, m.recall_at_20, m.users
                    );
                }
                None => out.push_str("<td>–</td><td>–</td><td>–</td>"),
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

fn calibration_section(out: &mut String, c: &RankerCalibration) {
    let _ = write!(
        out,
        "<h2>Ranker calibration on the holdout candidates</h2><p>{} rows, {} positive; AUC {}; log-loss {:.4}; ECE {:.4}; MCE {:.4}.</p><table><tr><th>bin</th><th>rows</th><th>mean predicted</th><th>fraction positive</th></tr>",
        c.rows,
        c.positives,
        c.auc.map_or_else(|| "–".to_string(), |a| format!("{a:.4}")),
        c.log_loss,
        c.ece,
        c.mce
    );
    for b in &c.reliability {
        let _ = write!(
            out,
            "<tr><td>({:.1}, {:.1}]</td><td>{}</td><td>{:.4}</td><td>{:.4}</td></tr>",
            b.lo, b.hi, b.count, b.mean_pred, b.frac_pos
        );
    }
    out.push_str("</table>");
    let points: Vec<(f64, f64)> = c
        .reliability
        .iter()
        .map(|b| (b.mean_pred, b.frac_pos))
        .collect();
    out.push_str(&reliability_svg(&points));
}

fn svg_open(out: &mut String, title: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" font-family="sans-serif" font-size="11"><title>{}</title><rect width="100%" height="100%" fill="white"/><path d="M{MARGIN} 16V{bottom}H{right}" fill="none" stroke="black"/>"#,
        escape(title),
        bottom = HEIGHT - MARGIN,
        right = WIDTH - 140.0,
    );
}

/// Maps a data value in [0, max] to the plot's vertical pixel.
fn y_at(value: f64, max: f64) -> f64 {
    let bottom = HEIGHT - MARGIN;
    bottom - (value / max) * (bottom - 16.0)
}

fn y_ticks(out: &mut String, max: f64) {
    for i in 0..=4 {
        let v = max * i as f64 / 4.0;
        let y = y_at(v, max);
        let _ = write!(
            out,
            r##"<line x1="{MARGIN}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.3}</text>"##,
            WIDTH - 140.0,
            MARGIN - 4.0,
            y + 4.0
        );
    }
}

/// NDCG@k against k, one line per system.
fn ndcg_curve(systems: &std::collections::BTreeMap<String, SystemMetrics>) -> String {
    let mut out = String::new();
    svg_open(&mut out, "NDCG@k by k");
    let max = systems
        .values()
        .flat_map(|m| m.ndcg_by_k.values().copied())
        .fold(0.0f64, f64::max)
        .max(1e-6)
        * 1.1;
    y_ticks(&mut out, max);
    let kmax = CURVE_KS[CURVE_KS.len() - 1] as f64;
    let x_at = |k: usize| MARGIN + (k as f64 / kmax) * (WIDTH - 140.0 - MARGIN - 8.0);
    for k in CURVE_KS {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{k}</text>"#,
            x_at(k),
            HEIGHT - MARGIN + 16.0
        );
    }
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">cut-off k</text>"#,
        (WIDTH - 140.0) / 2.0,
        HEIGHT - 8.0
    );
    for (i, (name, m)) in systems.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let points: Vec<String> = m
            .ndcg_by_k
            .iter()
            .map(|(k, v)| format!("{:.1},{:.1}", x_at(*k), y_at(*v, max)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"><title>{}</title></polyline>"#,
            points.join(" "),
            escape(name)
        );
        let ly = 24.0 + 16.0 * i as f64;
        let _ = write!(
            out,
            r#"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="{color}"/><text x="{:.1}" y="{ly:.1}">{}</text>"#,
            WIDTH - 130.0,
            ly - 9.0,
            WIDTH - 116.0,
            escape(name)
        );
    }
    out.push_str("</svg>");
    out
}

/// Fraction positive against mean prediction, with the diagonal.
fn reliability_svg(points: &[(f64, f64)]) -> String {
    let mut out = String::new();
    svg_open(&mut out, "Reliability diagram");
    y_ticks(&mut out, 1.0);
    let x_at = |p: f64| MARGIN + p * (WIDTH - 140.0 - MARGIN);
    let _ = write!(
        out,
        r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" text-anchor="middle">mean predicted probability</text>"##,
        x_at(0.0),
        y_at(0.0, 1.0),
        x_at(1.0),
        y_at(1.0, 1.0),
        (WIDTH - 140.0) / 2.0,
        HEIGHT - 8.0
    );
    let line: Vec<String> = points
        .iter()
        .map(|(p, f)| format!("{:.1},{:.1}", x_at(*p), y_at(*f, 1.0)))
        .collect();
    let _ = write!(
        out,
        r##"<polyline points="{}" fill="none" stroke="#d62728" stroke-width="2"/>"##,
        line.join(" ")
    );
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::Timestamp;
    use std::collections::BTreeMap;

    #[test]
    fn page_is_self_contained_and_escaped() {
        let metrics = SystemMetrics {
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
        };
        let report = EvalReport {
            protocol: "temporal <holdout>".into(),
            split: super::super::Split::Temporal,
            cut: Timestamp(0),
            train_events: 1,
            test_events: 1,
            test_users: 1,
            cold_users: 0,
            catalog_items: 1,
            systems: BTreeMap::from([("blend".to_string(), metrics)]),
            cold_start: BTreeMap::new(),
            slices: BTreeMap::new(),
            calibration: None,
        };
        let page = render_html(&report, None);
        assert!(page.contains("temporal &lt;holdout&gt;"));
        assert!(page.contains("<svg") && page.contains("<polyline"));
        assert!(!page.contains("<script") && !page.contains("src=") && !page.contains("href="));
    }
}
