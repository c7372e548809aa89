//! The HTML report kit every flywheel report is drawn with: the page shell and its style
//! sheet ([`Page`]), escaping ([`escape`]), tables ([`Table`], [`reliability_table`]) and
//! inline SVG charts ([`line_chart`], [`reliability_diagram`], [`interval_plot`]).
//!
//! Pages are self-contained: inline CSS and SVG only, no scripts, no external fonts,
//! nothing fetched. Text handed to the kit is escaped by it; only [`Page::push_html`]
//! takes markup as it is.
//!
//! ```
//! use flywheel_eval::report_html::{line_chart, Page, Series, Table, YAxis};
//! let mut table = Table::new(["system", "ndcg@10"]);
//! table.row(["blend", "0.2100"]);
//! let curve = Series { name: "blend".into(), points: vec![(1.0, 0.1), (10.0, 0.21)] };
//! let mut page = Page::new("a <report>");
//! page.h2("Systems")
//!     .table(&table)
//!     .push_html(&line_chart("NDCG@k", "cutoff k", &[1, 10], YAxis::Fit, &[curve]));
//! let html = page.finish();
//! assert!(html.contains("<h1>a &lt;report&gt;</h1>") && !html.contains("<script"));
//! ```

use std::fmt::Write;

use crate::pointwise::ReliabilityBin;
pub use crate::svg::{interval_plot, line_chart, reliability_diagram, Interval, Series, YAxis};

/// The style sheet inlined in every page.
pub const STYLE: &str = "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.warn{color:#a33}";

/// Escapes text for HTML and SVG (element content and quoted attributes).
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `value` with `decimals` decimals, or `–` when there is none.
pub fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "–".to_string(), |v| format!("{v:.decimals$}"))
}

/// An HTML page being written: [`Page::new`] writes the shell (doctype, title, the
/// [`STYLE`] sheet, the `<h1>`), the other methods append, [`Page::finish`] closes it.
#[derive(Debug, Clone)]
pub struct Page {
    html: String,
}

impl Page {
    /// Opens a page titled `title` (also its `<h1>`).
    pub fn new(title: &str) -> Self {
        let title = escape(title);
        Page {
            html: format!("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>{STYLE}</style></head><body><h1>{title}</h1>"),
        }
    }

    /// Appends a section heading (`<h2>`).
    pub fn h2(&mut self, text: &str) -> &mut Self {
        self.element("h2", text, "")
    }

    /// Appends a subsection heading (`<h3>`).
    pub fn h3(&mut self, text: &str) -> &mut Self {
        self.element("h3", text, "")
    }

    /// Appends a paragraph of text.
    pub fn paragraph(&mut self, text: &str) -> &mut Self {
        self.element("p", text, "")
    }

    /// Appends a warning, set apart in the warning colour with a ⚠.
    pub fn warning(&mut self, text: &str) -> &mut Self {
        self.element("p", &format!("⚠ {text}"), " class=\"warn\"")
    }

    /// Appends a table.
    pub fn table(&mut self, table: &Table) -> &mut Self {
        self.html.push_str(&table.render());
        self
    }

    /// Appends markup as it is: a chart of this kit, or HTML whose text the caller
    /// has passed through [`escape`].
    pub fn push_html(&mut self, html: &str) -> &mut Self {
        self.html.push_str(html);
        self
    }

    /// Closes the page and returns its HTML.
    pub fn finish(mut self) -> String {
        self.html.push_str("</body></html>\n");
        self.html
    }

    fn element(&mut self, tag: &str, text: &str, attributes: &str) -> &mut Self {
        let _ = write!(self.html, "<{tag}{attributes}>{}</{tag}>", escape(text));
        self
    }
}

/// A table of text cells with one header row; every cell is escaped when rendered. The
/// style sheet aligns the first column (the row's label) left and the others right.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headings and no rows yet.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row of cells.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Self {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as HTML.
    pub fn render(&self) -> String {
        let mut out = String::from("<table><tr>");
        for h in &self.header {
            let _ = write!(out, "<th>{}</th>", escape(h));
        }
        out.push_str("</tr>");
        for row in &self.rows {
            out.push_str("<tr>");
            for cell in row {
                let _ = write!(out, "<td>{}</td>", escape(cell));
            }
            out.push_str("</tr>");
        }
        out.push_str("</table>");
        out
    }
}

/// The reliability table: per bin its edges, rows, mean prediction and fraction positive.
pub fn reliability_table(bins: &[ReliabilityBin]) -> Table {
    let mut table = Table::new(["bin", "rows", "mean predicted", "fraction positive"]);
    for b in bins {
        table.row([
            format!("({:.1}, {:.1}]", b.lo, b.hi),
            b.count.to_string(),
            format!("{:.4}", b.mean_pred),
            format!("{:.4}", b.frac_pos),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_attribute_quotes() {
        assert_eq!(escape(r#"a & <b> "c""#), "a &amp; &lt;b&gt; &quot;c&quot;");
    }

    #[test]
    fn number_formats_or_dashes() {
        assert_eq!(number(Some(0.123456), 4), "0.1235");
        assert_eq!(number(None, 4), "–");
    }

    #[test]
    fn page_has_one_shell_and_escapes_its_text() {
        let mut table = Table::new(["name", "value"]);
        table.row(["<x>", "1"]);
        let mut page = Page::new("t&t");
        page.h2("h<2>")
            .h3("h3")
            .paragraph("p \"q\"")
            .warning("w<")
            .table(&table)
            .push_html("<svg></svg>");
        let html = page.finish();
        assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</body></html>\n"));
        assert_eq!(html.matches("<style>").count(), 1);
        assert!(html.contains("<title>t&amp;t</title>") && html.contains("<h1>t&amp;t</h1>"));
        assert!(html.contains("<h2>h&lt;2&gt;</h2>") && html.contains("<h3>h3</h3>"));
        assert!(html.contains("<p>p &quot;q&quot;</p>"));
        assert!(html.contains("<p class=\"warn\">⚠ w&lt;</p>"));
        assert!(html.contains("<tr><td>&lt;x&gt;</td><td>1</td></tr>"));
        assert!(html.contains("<svg></svg>"));
        assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));
    }

    #[test]
    fn reliability_table_has_a_row_per_bin() {
        let bins = [ReliabilityBin {
            bin: 0,
            lo: 0.0,
            hi: 0.1,
            count: 7,
            mean_pred: 0.05,
            frac_pos: 0.04,
        }];
        let table = reliability_table(&bins);
        assert!(!table.is_empty());
        assert!(table
            .render()
            .contains("<tr><td>(0.0, 0.1]</td><td>7</td><td>0.0500</td><td>0.0400</td></tr>"));
        assert!(reliability_table(&[]).is_empty());
    }
}
