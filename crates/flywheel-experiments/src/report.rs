//! The A/B report: every statistic of the crate run on a per-user CSV, as JSON
//! (`Serialize`) or as text. A metric whose test is undefined on this data (for example
//! zero variance) is left out with a warning instead of failing the whole report.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::classic::{srm_test, two_proportion_test, welch_test, SrmResult};
use crate::comparison::Comparison;
use crate::cuped::{cuped_test, CupedArm, CupedResult};
use crate::error::Result;
use crate::gbstats::{gb_sequential_ttest, DifferenceType, GbArm, SequentialConfig};
use crate::ratio::{delta_ratio_test, RatioArm, RatioComparison};
use crate::users_csv::{read_users, UserTable};

/// How to read and analyse an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbOptions {
    /// Variant name of the control arm.
    pub control: String,
    /// Variant name of the treatment arm.
    pub treatment: String,
    /// Configured share of users in treatment (for the SRM check).
    pub treatment_share: f64,
    /// Significance level; intervals are `1 − alpha`.
    pub alpha: f64,
    /// Tuning parameter `N*` of the sequential interval.
    pub sequential_tuning: f64,
}

impl Default for AbOptions {
    fn default() -> Self {
        Self {
            control: "control".into(),
            treatment: "treatment".into(),
            treatment_share: 0.5,
            alpha: 0.05,
            sequential_tuning: crate::gbstats::DEFAULT_SEQUENTIAL_TUNING,
        }
    }
}

/// Every statistic of one experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AbReport {
    /// The options the report was computed with.
    pub options: AbOptions,
    /// Users in the file.
    pub n_users: u64,
    /// Sample-ratio-mismatch check.
    pub srm: SrmResult,
    /// Share of users with at least one conversion (two-proportion z-test).
    pub conversion: Option<Comparison>,
    /// Revenue per user (Welch).
    pub revenue_per_user: Option<Comparison>,
    /// Clicks per user (Welch).
    pub clicks_per_user: Option<Comparison>,
    /// CTR = Σclicks / Σexposures (delta method).
    pub ctr: Option<RatioComparison>,
    /// Clicks per user with CUPED on the pre-period metric.
    pub cuped_clicks: Option<CupedResult>,
    /// Revenue per user with CUPED on the pre-period metric.
    pub cuped_revenue: Option<CupedResult>,
    /// Always-valid interval for clicks per user (safe to peek).
    pub sequential_clicks: Option<Comparison>,
    /// Always-valid interval for revenue per user.
    pub sequential_revenue: Option<Comparison>,
    /// Why a metric is missing, one line each.
    pub warnings: Vec<String>,
}

/// Reads a per-user CSV (columns as in `ab_users.csv`) and computes the report.
pub fn ab_from_file(users_csv: &Path, options: &AbOptions) -> Result<AbReport> {
    let table = read_users(users_csv, &options.control, &options.treatment)?;
    analyse(&table, options)
}

/// Computes the report from users already split by arm.
pub fn analyse(table: &UserTable, options: &AbOptions) -> Result<AbReport> {
    let (c, t) = (&table.control, &table.treatment);
    let srm = srm_test(c.len() as u64, t.len() as u64, options.treatment_share)?;
    let mut warnings = Vec::new();
    let alpha = options.alpha;
    let seq = SequentialConfig {
        alpha,
        tuning_parameter: options.sequential_tuning,
    };
    let sequential = |yc: &[f64], yt: &[f64]| -> Result<Comparison> {
        let a = GbArm::sample_mean(yc, "control")?;
        let b = GbArm::sample_mean(yt, "treatment")?;
        gb_sequential_ttest(&a, &b, DifferenceType::Absolute, &seq)
    };
    let cuped = |yc: &[f64], yt: &[f64]| {
        let arm_c = CupedArm {
            metric: yc,
            covariate: &c.pre_period_metric,
        };
        let arm_t = CupedArm {
            metric: yt,
            covariate: &t.pre_period_metric,
        };
        cuped_test(&arm_c, &arm_t, alpha)
    };
    let ctr = delta_ratio_test(
        &RatioArm {
            numerators: &c.clicks,
            denominators: &c.exposures,
        },
        &RatioArm {
            numerators: &t.clicks,
            denominators: &t.exposures,
        },
        alpha,
    );
    let conversion = two_proportion_test(
        c.converted_users(),
        c.len() as u64,
        t.converted_users(),
        t.len() as u64,
        alpha,
    );
    Ok(AbReport {
        options: options.clone(),
        n_users: (c.len() + t.len()) as u64,
        srm,
        conversion: keep("conversion", conversion, &mut warnings),
        revenue_per_user: keep(
            "revenue_per_user",
            welch_test(&c.revenue, &t.revenue, alpha),
            &mut warnings,
        ),
        clicks_per_user: keep(
            "clicks_per_user",
            welch_test(&c.clicks, &t.clicks, alpha),
            &mut warnings,
        ),
        ctr: keep("ctr", ctr, &mut warnings),
        cuped_clicks: keep("cuped_clicks", cuped(&c.clicks, &t.clicks), &mut warnings),
        cuped_revenue: keep(
            "cuped_revenue",
            cuped(&c.revenue, &t.revenue),
            &mut warnings,
        ),
        sequential_clicks: keep(
            "sequential_clicks",
            sequential(&c.clicks, &t.clicks),
            &mut warnings,
        ),
        sequential_revenue: keep(
            "sequential_revenue",
            sequential(&c.revenue, &t.revenue),
            &mut warnings,
        ),
        warnings,
    })
}

fn keep<T>(metric: &str, result: Result<T>, warnings: &mut Vec<String>) -> Option<T> {
    result
        .map_err(|e| warnings.push(format!("{metric}: {e}")))
        .ok()
}

impl AbReport {
    /// A plain-text summary, one line per metric.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let level = 100.0 * (1.0 - self.options.alpha);
        let s = &self.srm;
        let _ = writeln!(
            out,
            "users: {} = {} {} + {} {}   SRM chi2 {:.4} p {:.4}{}",
            self.n_users,
            s.n_control,
            self.options.control,
            s.n_treatment,
            self.options.treatment,
            s.chi2,
            s.p_value,
            if s.p_value < 0.001 {
                "  << SAMPLE RATIO MISMATCH: do not trust the results"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "metric (effect = treatment - control, {level:.0}% CI, two-sided p)"
        );
        let rows: [(&str, Option<&Comparison>); 7] = [
            ("conversion rate", self.conversion.as_ref()),
            ("revenue per user", self.revenue_per_user.as_ref()),
            ("clicks per user", self.clicks_per_user.as_ref()),
            ("CTR (delta method)", self.ctr.as_ref().map(|r| &r.absolute)),
            (
                "clicks/user CUPED",
                self.cuped_clicks.as_ref().map(|r| &r.adjusted),
            ),
            (
                "revenue/user CUPED",
                self.cuped_revenue.as_ref().map(|r| &r.adjusted),
            ),
            ("clicks/user sequential", self.sequential_clicks.as_ref()),
        ];
        for (name, row) in rows {
            if let Some(c) = row {
                let _ = writeln!(out, "{}", format_row(name, c));
            }
        }
        if let Some(c) = &self.sequential_revenue {
            let _ = writeln!(out, "{}", format_row("revenue/user sequential", c));
        }
        for (name, r) in [
            ("clicks", &self.cuped_clicks),
            ("revenue", &self.cuped_revenue),
        ] {
            if let Some(r) = r {
                let _ = writeln!(
                    out,
                    "CUPED {name}: theta {:.4}, variance reduction {:.1}%",
                    r.theta,
                    100.0 * r.variance_reduction
                );
            }
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }
}

fn format_row(name: &str, c: &Comparison) -> String {
    let lift = c
        .relative_lift
        .map_or("n/a".to_string(), |l| format!("{:+.2}%", 100.0 * l));
    format!(
        "  {name:<24} control {:.6}  treatment {:.6}  effect {:+.6} ({lift})  CI [{:.6}, {:.6}]  p {:.4}",
        c.control, c.treatment, c.effect, c.ci_low, c.ci_high, c.p_value
    )
}
