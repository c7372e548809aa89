//! The figures beside their targets, as a table or as JSON.

use std::fmt::Write;

use serde::Serialize;

use super::http::HttpCheck;
use super::sim::{Shop, CANDIDATES, LIST};

/// One figure and its target.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// The study it belongs to.
    pub study: String,
    /// What it measures.
    pub name: String,
    /// The measured value.
    pub value: f64,
    /// The target, in words.
    pub target: String,
    /// Whether the target is met (`None` for figures without one).
    pub pass: Option<bool>,
}

impl Figure {
    fn new(study: &str, name: &str, value: f64, target: String, pass: Option<bool>) -> Figure {
        Figure {
            study: study.to_string(),
            name: name.to_string(),
            value,
            target,
            pass,
        }
    }

    /// A figure that must lie in `[low, high]`.
    pub fn range(study: &str, name: &str, value: f64, low: f64, high: f64) -> Figure {
        let pass = (low..=high).contains(&value);
        Figure::new(
            study,
            name,
            value,
            format!("in [{low}, {high}]"),
            Some(pass),
        )
    }

    /// A figure that must not exceed `limit`.
    pub fn at_most(study: &str, name: &str, value: f64, limit: f64) -> Figure {
        Figure::new(
            study,
            name,
            value,
            format!("<= {limit}"),
            Some(value <= limit),
        )
    }

    /// A figure that must reach `limit`.
    pub fn at_least(study: &str, name: &str, value: f64, limit: f64) -> Figure {
        Figure::new(
            study,
            name,
            value,
            format!(">= {limit}"),
            Some(value >= limit),
        )
    }

    /// A figure that must lie within `tolerance` of `expected`.
    pub fn within(study: &str, name: &str, value: f64, expected: f64, tolerance: f64) -> Figure {
        let pass = (value - expected).abs() <= tolerance;
        Figure::new(
            study,
            name,
            value,
            format!("{expected:.3} ± {tolerance}"),
            Some(pass),
        )
    }

    /// A figure shown for information.
    pub fn info(study: &str, name: &str, value: f64, note: &str) -> Figure {
        Figure::new(study, name, value, note.to_string(), None)
    }
}

/// Everything the benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The command that reproduces it.
    pub command: String,
    /// A/A runs (the other studies use fewer, proportionally).
    pub runs: usize,
    /// The seed.
    pub seed: u64,
    /// Requests per simulated run.
    pub requests_per_run: usize,
    /// What is simplified, and why.
    pub simplifications: Vec<String>,
    /// The figures.
    pub figures: Vec<Figure>,
    /// The run through the real HTTP server.
    pub http: Option<HttpCheck>,
    /// Figures with a target that missed it (the HTTP checks included).
    pub failed: usize,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl Report {
    /// An empty report for this command line and shop.
    pub fn new(runs: usize, seed: u64, shop: &Shop) -> Report {
        let config = shop.world.config();
        Report {
            command: format!("flywheel bench experiments --runs {runs} --seed {seed}"),
            runs,
            seed,
            requests_per_run: shop.arrivals.len(),
            simplifications: vec![
                format!(
                    "in-process runs serve lists from a cheap policy, not the trained pipeline: \
                     {CANDIDATES} random available items ranked by logit(true preference) + Gaussian \
                     noise, top {LIST} shown; users react through World::respond ({} users, {} items, \
                     {} days); every record goes through Ledger::apply and live::metrics",
                    config.users, config.items, config.days
                ),
                "the known A/B lift thins the control's clicks (each kept with probability \
                 1/(1+lift), its cart and purchase with it), so the true relative lift is exact"
                    .to_string(),
                "off-policy candidates choose per slot among what epsilon-greedy could log there \
                 (the slot's item or a pool item); DR's reward model is examination x the item's \
                 mean preference (misspecified on purpose)"
                    .to_string(),
                "view events are not applied to the in-process ledgers (no statistic here reads them); \
                 the HTTP run uses the real pipeline of an untrained engine on a 150-user shop and \
                 posts every event"
                    .to_string(),
            ],
            figures: Vec::new(),
            http: None,
            failed: 0,
            seconds: 0.0,
        }
    }

    /// Adds a figure.
    pub fn push(&mut self, figure: Figure) {
        self.figures.push(figure);
    }

    /// Counts the failures and records the wall time.
    pub fn finish(&mut self, seconds: f64) {
        let http_failures = self.http.as_ref().map_or(1, |h| {
            usize::from(!h.metrics_identical) + usize::from(!h.counts_identical)
        });
        self.failed = self
            .figures
            .iter()
            .filter(|f| f.pass == Some(false))
            .count()
            + http_failures;
        self.seconds = seconds;
    }

    /// The table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}  ({} requests per run)",
            self.command, self.requests_per_run
        );
        for note in &self.simplifications {
            let _ = writeln!(out, "  note: {note}");
        }
        let mut study = "";
        for f in &self.figures {
            if f.study != study {
                study = &f.study;
                let _ = writeln!(out, "\n{study}");
            }
            let verdict = match f.pass {
                Some(true) => "PASS",
                Some(false) => "FAIL",
                None => "",
            };
            let _ = writeln!(
                out,
                "  {:<58} {:>10}  {:<28} {verdict}",
                f.name,
                number(f.value),
                f.target
            );
        }
        if let Some(http) = &self.http {
            render_http(&mut out, http);
        }
        let _ = writeln!(out, "\n{} failed; {:.0} s", self.failed, self.seconds);
        out
    }
}

fn number(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.4}")
    }
}

fn render_http(out: &mut String, http: &HttpCheck) {
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    let _ = writeln!(
        out,
        "\nHTTP run ({} requests, {} events posted, {:.1} s)",
        http.requests, http.events, http.seconds
    );
    let _ = writeln!(
        out,
        "  {:<12} {:>18} {:>18} {:>22} {:>16}",
        "variant", "users http/in-proc", "requests", "impressions", "clicks"
    );
    for (s, p) in http.server.iter().zip(&http.in_process) {
        let _ = writeln!(
            out,
            "  {:<12} {:>18} {:>18} {:>22} {:>16}",
            s.variant,
            format!("{}/{}", s.users, p.users),
            format!("{}/{}", s.requests, p.requests),
            format!("{}/{}", s.impressions, p.impressions),
            format!("{}/{}", s.clicks, p.clicks)
        );
    }
    let _ = writeln!(
        out,
        "  {:<58} {:>10}  {:<28} {}",
        "server metrics == live::metrics (A/B and interleaving)",
        http.metrics_identical,
        "true",
        verdict(http.metrics_identical)
    );
    let _ = writeln!(
        out,
        "  {:<58} {:>10}  {:<28} {}",
        "users/requests/impressions per variant == in-process",
        http.counts_identical,
        "true",
        verdict(http.counts_identical)
    );
    let i = &http.interleaving;
    let _ = writeln!(
        out,
        "  interleaving over HTTP (half the users): {} wins, {} losses, {} ties, preference {}",
        i["wins"], i["losses"], i["ties"], i["preference"]
    );
    for d in &http.differences {
        let _ = writeln!(out, "    differs: {d}");
    }
}
