//! Hand-drawn inline SVG charts: line chart, reliability diagram, interval (forest) plot.
//! No scripts, no fonts beyond the browser's default sans-serif.

use std::fmt::Write;

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 320.0;
const MARGIN: f64 = 48.0;
const PALETTE: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

/// Escapes text for HTML/SVG.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Linear map from a data range to a pixel range.
#[derive(Clone, Copy)]
struct Scale {
    d0: f64,
    d1: f64,
    p0: f64,
    p1: f64,
}

impl Scale {
    fn new(d0: f64, d1: f64, p0: f64, p1: f64) -> Self {
        let d1 = if (d1 - d0).abs() < 1e-12 {
            d0 + 1.0
        } else {
            d1
        };
        Scale { d0, d1, p0, p1 }
    }
    fn at(&self, v: f64) -> f64 {
        self.p0 + (v - self.d0) / (self.d1 - self.d0) * (self.p1 - self.p0)
    }
}

fn open(out: &mut String, title: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" font-family="sans-serif" font-size="11"><title>{}</title><rect width="100%" height="100%" fill="white"/>"#,
        escape(title)
    );
}

fn axes(
    out: &mut String,
    x: Scale,
    y: Scale,
    x_ticks: &[(f64, String)],
    y_ticks: &[(f64, String)],
    x_label: &str,
    y_label: &str,
) {
    let (left, right, top, bottom) = (MARGIN, WIDTH - 16.0, 16.0, HEIGHT - MARGIN);
    let _ = write!(
        out,
        r##"<path d="M{left} {top}V{bottom}H{right}" fill="none" stroke="#444"/>"##
    );
    for (v, label) in x_ticks {
        let px = x.at(*v);
        let _ = write!(
            out,
            r##"<line x1="{px:.1}" y1="{bottom}" x2="{px:.1}" y2="{:.1}" stroke="#444"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            bottom + 4.0,
            bottom + 16.0,
            escape(label)
        );
    }
    for (v, label) in y_ticks {
        let py = y.at(*v);
        let _ = write!(
            out,
            r##"<line x1="{left}" y1="{py:.1}" x2="{right}" y2="{py:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            left - 4.0,
            py + 4.0,
            escape(label)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        (left + right) / 2.0,
        HEIGHT - 8.0,
        escape(x_label)
    );
    let _ = write!(
        out,
        r#"<text x="12" y="{:.1}" text-anchor="middle" transform="rotate(-90 12 {:.1})">{}</text>"#,
        (top + bottom) / 2.0,
        (top + bottom) / 2.0,
        escape(y_label)
    );
}

fn unit_ticks() -> Vec<(f64, String)> {
    (0..=5)
        .map(|i| (i as f64 / 5.0, format!("{:.1}", i as f64 / 5.0)))
        .collect()
}

/// Metric value against cutoff k, one line per series, y in [0, 1].
pub fn line_chart(title: &str, ks: &[usize], series: &[(String, Vec<Option<f64>>)]) -> String {
    let mut out = String::new();
    open(&mut out, title);
    let kmax = ks.iter().copied().max().unwrap_or(1) as f64;
    let x = Scale::new(0.0, kmax, MARGIN, WIDTH - 120.0);
    let y = Scale::new(0.0, 1.0, HEIGHT - MARGIN, 16.0);
    let x_ticks: Vec<(f64, String)> = ks.iter().map(|k| (*k as f64, k.to_string())).collect();
    axes(&mut out, x, y, &x_ticks, &unit_ticks(), "cutoff k", "value");
    for (i, (name, values)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let points: Vec<String> = ks
            .iter()
            .zip(values)
            .filter_map(|(k, v)| v.map(|v| format!("{:.1},{:.1}", x.at(*k as f64), y.at(v))))
            .collect();
        let _ = write!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            points.join(" ")
        );
        for p in &points {
            let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(out, r#"<circle cx="{px}" cy="{py}" r="3" fill="{color}"/>"#);
        }
        let ly = 24.0 + 16.0 * i as f64;
        let _ = write!(
            out,
            r#"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="{color}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            WIDTH - 110.0,
            ly - 9.0,
            WIDTH - 96.0,
            ly,
            escape(name)
        );
    }
    out.push_str("</svg>");
    out
}

/// Reliability diagram: fraction positive against mean prediction per bin, with the
/// diagonal of perfect calibration and bin counts as a faint histogram.
pub fn reliability_diagram(bins: &[(f64, f64, f64, f64, u64)]) -> String {
    // (lo, hi, mean_pred, frac_pos, count)
    let mut out = String::new();
    open(&mut out, "Reliability diagram");
    let x = Scale::new(0.0, 1.0, MARGIN, WIDTH - 16.0);
    let y = Scale::new(0.0, 1.0, HEIGHT - MARGIN, 16.0);
    axes(
        &mut out,
        x,
        y,
        &unit_ticks(),
        &unit_ticks(),
        "mean predicted probability",
        "fraction positive",
    );
    let max_count = bins.iter().map(|b| b.4).max().unwrap_or(1).max(1) as f64;
    for (lo, hi, _, _, count) in bins {
        let h = (*count as f64 / max_count) * 60.0;
        let _ = write!(
            out,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#c6dbef"/>"##,
            x.at(*lo),
            y.at(0.0) - h,
            x.at(*hi) - x.at(*lo)
        );
    }
    let _ = write!(
        out,
        r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="4 3"/>"##,
        x.at(0.0),
        y.at(0.0),
        x.at(1.0),
        y.at(1.0)
    );
    let points: Vec<String> = bins
        .iter()
        .map(|b| format!("{:.1},{:.1}", x.at(b.2), y.at(b.3)))
        .collect();
    let _ = write!(
        out,
        r##"<polyline points="{}" fill="none" stroke="#d62728" stroke-width="2"/>"##,
        points.join(" ")
    );
    for b in bins {
        let _ = write!(
            out,
            r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="#d62728"><title>({:.2}, {:.2}]: n={}, mean_pred={:.4}, frac_pos={:.4}</title></circle>"##,
            x.at(b.2),
            y.at(b.3),
            b.0,
            b.1,
            b.4,
            b.2,
            b.3
        );
    }
    out.push_str("</svg>");
    out
}

/// Horizontal interval plot: one row per (label, estimate, low, high), with an optional
/// dashed reference value.
pub fn interval_plot(
    title: &str,
    rows: &[(String, f64, f64, f64)],
    reference: Option<(String, f64)>,
) -> String {
    let mut out = String::new();
    let height = 40.0 + 28.0 * rows.len() as f64 + MARGIN;
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" font-family="sans-serif" font-size="11"><title>{}</title><rect width="100%" height="100%" fill="white"/>"#,
        escape(title)
    );
    let mut lo = rows.iter().map(|r| r.2).fold(f64::INFINITY, f64::min);
    let mut hi = rows.iter().map(|r| r.3).fold(f64::NEG_INFINITY, f64::max);
    if let Some((_, v)) = &reference {
        lo = lo.min(*v);
        hi = hi.max(*v);
    }
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = (hi - lo).max(1e-12) * 0.08;
    let x = Scale::new(lo - pad, hi + pad, 90.0, WIDTH - 24.0);
    let bottom = height - MARGIN + 8.0;
    let _ = write!(
        out,
        r##"<line x1="90" y1="{bottom}" x2="{:.1}" y2="{bottom}" stroke="#444"/>"##,
        WIDTH - 24.0
    );
    for i in 0..=4 {
        let v = lo - pad + (hi - lo + 2.0 * pad) * i as f64 / 4.0;
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{v:.4}</text>"#,
            x.at(v),
            bottom + 16.0
        );
    }
    if let Some((label, v)) = &reference {
        let _ = write!(
            out,
            r##"<line x1="{:.1}" y1="20" x2="{:.1}" y2="{bottom}" stroke="#2ca02c" stroke-dasharray="4 3"/><text x="{:.1}" y="14" text-anchor="middle" fill="#2ca02c">{}</text>"##,
            x.at(*v),
            x.at(*v),
            x.at(*v),
            escape(label)
        );
    }
    for (i, (label, estimate, low, high)) in rows.iter().enumerate() {
        let py = 40.0 + 28.0 * i as f64;
        let _ = write!(
            out,
            r##"<text x="82" y="{:.1}" text-anchor="end">{}</text><line x1="{:.1}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#1f77b4" stroke-width="2"/><circle cx="{:.1}" cy="{py:.1}" r="4" fill="#1f77b4"><title>{}: {estimate:.6} [{low:.6}, {high:.6}]</title></circle>"##,
            py + 4.0,
            escape(label),
            x.at(*low),
            x.at(*high),
            x.at(*estimate),
            escape(label)
        );
    }
    out.push_str("</svg>");
    out
}
