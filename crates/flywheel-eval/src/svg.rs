//! Hand-drawn inline SVG charts: line chart, reliability diagram, interval (forest) plot.
//! No scripts, no fonts beyond the browser's default sans-serif. Reached through
//! [`crate::report_html`], the report kit.

use std::fmt::Write;

use crate::pointwise::ReliabilityBin;
use crate::report_html::escape;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 320.0;
const MARGIN: f64 = 48.0;
/// Room right of a line chart's plot for its legend.
const LEGEND: f64 = 130.0;
const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f",
];

/// One named line of a [`line_chart`]: its `(x, y)` points, drawn in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend entry (and the line's tooltip).
    pub name: String,
    /// The points; missing values are simply left out.
    pub points: Vec<(f64, f64)>,
}

/// How far up a [`line_chart`]'s y axis goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YAxis {
    /// `[0, 1]`, ticks every 0.2: for values that are fractions and compared across charts.
    Unit,
    /// From 0 to a tenth above the largest value, five ticks: small values stay readable.
    Fit,
}

/// One row of an [`interval_plot`]: an estimate and its interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// The row's label, left of the axis.
    pub label: String,
    /// The point estimate (a dot).
    pub estimate: f64,
    /// The interval's lower end.
    pub low: f64,
    /// The interval's upper end.
    pub high: f64,
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

fn open(out: &mut String, title: &str, height: f64) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" font-family="sans-serif" font-size="11"><title>{}</title><rect width="100%" height="100%" fill="white"/>"#,
        escape(title)
    );
}

/// The axes of a chart whose plot spans `MARGIN..right` by `16..HEIGHT - MARGIN`.
struct Axes<'a> {
    right: f64,
    x: Scale,
    y: Scale,
    x_ticks: &'a [(f64, String)],
    y_ticks: &'a [(f64, String)],
    x_label: &'a str,
    y_label: &'a str,
}

impl Axes<'_> {
    fn draw(&self, out: &mut String) {
        let (left, right, top, bottom) = (MARGIN, self.right, 16.0, HEIGHT - MARGIN);
        let _ = write!(
            out,
            r##"<path d="M{left} {top}V{bottom}H{right}" fill="none" stroke="#444"/>"##
        );
        for (v, label) in self.x_ticks {
            let px = self.x.at(*v);
            let _ = write!(
                out,
                r##"<line x1="{px:.1}" y1="{bottom}" x2="{px:.1}" y2="{:.1}" stroke="#444"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                bottom + 4.0,
                bottom + 16.0,
                escape(label)
            );
        }
        for (v, label) in self.y_ticks {
            let py = self.y.at(*v);
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
            escape(self.x_label)
        );
        let _ = write!(
            out,
            r#"<text x="12" y="{:.1}" text-anchor="middle" transform="rotate(-90 12 {:.1})">{}</text>"#,
            (top + bottom) / 2.0,
            (top + bottom) / 2.0,
            escape(self.y_label)
        );
    }
}

/// `count + 1` evenly spaced ticks from 0 to `max`, labelled with `decimals` decimals.
fn ticks(max: f64, count: usize, decimals: usize) -> Vec<(f64, String)> {
    (0..=count)
        .map(|i| {
            let v = max * i as f64 / count as f64;
            (v, format!("{v:.decimals$}"))
        })
        .collect()
}

/// Lines over cutoffs `x_ticks` (e.g. a metric at k = 1, 3, 5, 10), one per series, with
/// a legend; the x axis runs from 0 to the largest tick.
pub fn line_chart(
    title: &str,
    x_label: &str,
    x_ticks: &[usize],
    y_axis: YAxis,
    series: &[Series],
) -> String {
    let mut out = String::new();
    open(&mut out, title, HEIGHT);
    let right = WIDTH - LEGEND;
    let kmax = x_ticks.iter().copied().max().unwrap_or(1) as f64;
    let x = Scale::new(0.0, kmax, MARGIN, right - 8.0);
    let (y_max, y_ticks) = match y_axis {
        YAxis::Unit => (1.0, ticks(1.0, 5, 1)),
        YAxis::Fit => {
            let max = series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1))
                .fold(0.0f64, f64::max)
                .max(1e-6)
                * 1.1;
            (max, ticks(max, 4, 3))
        }
    };
    let y = Scale::new(0.0, y_max, HEIGHT - MARGIN, 16.0);
    let x_ticks: Vec<(f64, String)> = x_ticks.iter().map(|k| (*k as f64, k.to_string())).collect();
    Axes {
        right,
        x,
        y,
        x_ticks: &x_ticks,
        y_ticks: &y_ticks,
        x_label,
        y_label: "value",
    }
    .draw(&mut out);
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let points: Vec<(f64, f64)> = s.points.iter().map(|&(a, b)| (x.at(a), y.at(b))).collect();
        let line: Vec<String> = points
            .iter()
            .map(|(px, py)| format!("{px:.1},{py:.1}"))
            .collect();
        let _ = write!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"><title>{}</title></polyline>"#,
            line.join(" "),
            escape(&s.name)
        );
        for (px, py) in &points {
            let _ = write!(
                out,
                r#"<circle cx="{px:.1}" cy="{py:.1}" r="3" fill="{color}"/>"#
            );
        }
        let ly = 24.0 + 16.0 * i as f64;
        let _ = write!(
            out,
            r#"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="{color}"/><text x="{:.1}" y="{ly:.1}">{}</text>"#,
            right + 10.0,
            ly - 9.0,
            right + 24.0,
            escape(&s.name)
        );
    }
    out.push_str("</svg>");
    out
}

/// Reliability diagram: fraction positive against mean prediction per bin, with the
/// diagonal of perfect calibration and bin counts as a faint histogram; each point's
/// tooltip gives its bin.
pub fn reliability_diagram(bins: &[ReliabilityBin]) -> String {
    let mut out = String::new();
    open(&mut out, "Reliability diagram", HEIGHT);
    let right = WIDTH - 16.0;
    let x = Scale::new(0.0, 1.0, MARGIN, right);
    let y = Scale::new(0.0, 1.0, HEIGHT - MARGIN, 16.0);
    let unit = ticks(1.0, 5, 1);
    Axes {
        right,
        x,
        y,
        x_ticks: &unit,
        y_ticks: &unit,
        x_label: "mean predicted probability",
        y_label: "fraction positive",
    }
    .draw(&mut out);
    let max_count = bins.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64;
    for b in bins {
        let h = (b.count as f64 / max_count) * 60.0;
        let _ = write!(
            out,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#c6dbef"/>"##,
            x.at(b.lo),
            y.at(0.0) - h,
            x.at(b.hi) - x.at(b.lo)
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
        .map(|b| format!("{:.1},{:.1}", x.at(b.mean_pred), y.at(b.frac_pos)))
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
            x.at(b.mean_pred),
            y.at(b.frac_pos),
            b.lo,
            b.hi,
            b.count,
            b.mean_pred,
            b.frac_pos
        );
    }
    out.push_str("</svg>");
    out
}

/// Horizontal interval plot: one row per [`Interval`], with an optional dashed,
/// labelled reference value.
pub fn interval_plot(title: &str, rows: &[Interval], reference: Option<(&str, f64)>) -> String {
    let mut out = String::new();
    let height = 40.0 + 28.0 * rows.len() as f64 + MARGIN;
    open(&mut out, title, height);
    let mut lo = rows.iter().map(|r| r.low).fold(f64::INFINITY, f64::min);
    let mut hi = rows
        .iter()
        .map(|r| r.high)
        .fold(f64::NEG_INFINITY, f64::max);
    if let Some((_, v)) = reference {
        lo = lo.min(v);
        hi = hi.max(v);
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
    if let Some((label, v)) = reference {
        let _ = write!(
            out,
            r##"<line x1="{:.1}" y1="20" x2="{:.1}" y2="{bottom}" stroke="#2ca02c" stroke-dasharray="4 3"/><text x="{:.1}" y="14" text-anchor="middle" fill="#2ca02c">{}</text>"##,
            x.at(v),
            x.at(v),
            x.at(v),
            escape(label)
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let py = 40.0 + 28.0 * i as f64;
        let label = escape(&r.label);
        let _ = write!(
            out,
            r##"<text x="82" y="{:.1}" text-anchor="end">{label}</text><line x1="{:.1}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#1f77b4" stroke-width="2"/><circle cx="{:.1}" cy="{py:.1}" r="4" fill="#1f77b4"><title>{label}: {:.6} [{:.6}, {:.6}]</title></circle>"##,
            py + 4.0,
            x.at(r.low),
            x.at(r.high),
            x.at(r.estimate),
            r.estimate,
            r.low,
            r.high
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balanced(svg: &str) -> bool {
        svg.starts_with("<svg") && svg.ends_with("</svg>") && svg.matches("<svg").count() == 1
    }

    #[test]
    fn line_chart_draws_every_series_and_escapes_names() {
        let series = [
            Series {
                name: "a<b".into(),
                points: vec![(1.0, 0.1), (5.0, 0.3)],
            },
            Series {
                name: "c".into(),
                points: vec![(1.0, 0.2)],
            },
        ];
        for axis in [YAxis::Unit, YAxis::Fit] {
            let svg = line_chart("t", "cutoff k", &[1, 5], axis, &series);
            assert!(balanced(&svg), "{svg}");
            assert_eq!(svg.matches("<polyline").count(), 2);
            assert_eq!(svg.matches("<circle").count(), 3);
            assert!(svg.contains("a&lt;b") && !svg.contains("a<b"));
        }
        // Fit: the top tick is a tenth above the largest value.
        let fit = line_chart("t", "k", &[1, 5], YAxis::Fit, &series);
        assert!(fit.contains(">0.330</text>"), "{fit}");
        let unit = line_chart("t", "k", &[1, 5], YAxis::Unit, &series);
        assert!(unit.contains(">1.0</text>"), "{unit}");
    }

    #[test]
    fn charts_survive_empty_input() {
        assert!(balanced(&line_chart("t", "k", &[], YAxis::Fit, &[])));
        assert!(balanced(&reliability_diagram(&[])));
        let svg = interval_plot("t", &[], None);
        assert!(balanced(&svg) && !svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn reliability_diagram_has_a_point_per_bin() {
        let bins = [
            ReliabilityBin {
                bin: 0,
                lo: 0.0,
                hi: 0.5,
                count: 3,
                mean_pred: 0.2,
                frac_pos: 0.3,
            },
            ReliabilityBin {
                bin: 1,
                lo: 0.5,
                hi: 1.0,
                count: 1,
                mean_pred: 0.8,
                frac_pos: 0.7,
            },
        ];
        let svg = reliability_diagram(&bins);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("(0.50, 1.00]: n=1"));
    }

    #[test]
    fn interval_plot_labels_rows_and_reference() {
        let rows = [Interval {
            label: "ips".into(),
            estimate: 0.5,
            low: 0.4,
            high: 0.6,
        }];
        let svg = interval_plot("CIs", &rows, Some(("logging <policy>", 0.45)));
        assert!(balanced(&svg));
        assert!(svg.contains("ips: 0.500000 [0.400000, 0.600000]"));
        assert!(svg.contains("logging &lt;policy&gt;"));
    }
}
