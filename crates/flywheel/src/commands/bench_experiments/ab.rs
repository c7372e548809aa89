//! A/A and A/B studies: each run is a whole experiment on the simulated clock, its
//! statistics read from `live::metrics` (the figures `/v1/experiments/:id/metrics`
//! shows) at the end of every simulated day and at the end.

use anyhow::{Context, Result};
use flywheel_core::ExperimentDef;
use flywheel_experiments::dist::normal_ppf;
use flywheel_experiments::live::{metrics, ComparisonMetrics, ExperimentMetrics};
use flywheel_experiments::Ledger;
use serde::Serialize;
use serde_json::json;

use super::sim::{simulate, Arm, Run, RunSpec, Shop};

/// Significance level of every test here.
pub const ALPHA: f64 = 0.05;

/// What one two-arm run showed.
#[derive(Debug, Clone, Serialize)]
pub struct AbRun {
    /// The fixed-horizon delta-method test rejected at the end.
    pub fixed_final: bool,
    /// The fixed-horizon test rejected at some daily peek (or at the end).
    pub fixed_any_peek: bool,
    /// The always-valid sequential test rejected at some daily peek (or at the end).
    pub sequential_any_peek: bool,
    /// treatment − control CTR at the end.
    pub effect: f64,
    /// Per-user standard deviation of the CTR estimate (delta method).
    pub sd: f64,
    /// Users per arm (mean of the two).
    pub users_per_arm: f64,
    /// The true CTR of each arm's served lists (the world's click model).
    pub true_ctr: [f64; 2],
}

/// A two-variant A/B definition with a per-run salt.
pub fn ab_def(id: &str, salt: &str, names: [&str; 2]) -> Result<ExperimentDef> {
    let value = json!({
        "id": id, "kind": "ab", "salt": salt, "primary_metric": "ctr",
        "variants": [{"name": names[0], "share": 0.5}, {"name": names[1], "share": 0.5}],
    });
    ExperimentDef::from_json(&value).context("building the experiment definition")
}

/// The first treatment's comparison, if the statistics could be computed.
fn comparison(ledger: &Ledger, id: &str) -> Option<ComparisonMetrics> {
    metrics(ledger, id).and_then(|m| m.comparisons.into_iter().next().map(|(_, c)| c))
}

/// Runs one two-arm experiment, peeking daily.
pub fn two_arm_run(shop: &Shop, def: &ExperimentDef, arms: &[Arm; 2], seed: u64) -> Result<AbRun> {
    let mut fixed_any = false;
    let mut sequential_any = false;
    let spec = RunSpec {
        def,
        arms,
        seed,
        keep_served: false,
    };
    let run = simulate(shop, &spec, |ledger, _| {
        if let Some(c) = comparison(ledger, &def.id) {
            fixed_any |= c.p_value < ALPHA;
            sequential_any |= c.sequential.is_some_and(|s| s.p_value < ALPHA);
        }
    });
    finish(&run, &def.id, fixed_any, sequential_any)
}

fn finish(run: &Run, id: &str, fixed_any: bool, sequential_any: bool) -> Result<AbRun> {
    let m = metrics(&run.ledger, id).context("the experiment has no metrics")?;
    let c = m
        .comparisons
        .first()
        .map(|(_, c)| c.clone())
        .with_context(|| format!("no comparison at the end: {:?}", m.warnings))?;
    let fixed_final = c.p_value < ALPHA;
    let sequential_final = c.sequential.as_ref().is_some_and(|s| s.p_value < ALPHA);
    Ok(AbRun {
        fixed_final,
        fixed_any_peek: fixed_any || fixed_final,
        sequential_any_peek: sequential_any || sequential_final,
        effect: c.effect,
        sd: per_user_sd(&m, &c)?,
        users_per_arm: users(&m).iter().sum::<f64>() / 2.0,
        true_ctr: [run.true_ctr(0), run.true_ctr(1)],
    })
}

fn users(m: &ExperimentMetrics) -> Vec<f64> {
    m.variants.iter().map(|(_, v)| v.users as f64).collect()
}

/// The per-user sd behind the delta-method interval: `se² = sd² (1/n_c + 1/n_t)`.
fn per_user_sd(m: &ExperimentMetrics, c: &ComparisonMetrics) -> Result<f64> {
    let z = normal_ppf(1.0 - m.alpha / 2.0)?;
    let se = (c.ci_high - c.ci_low) / (2.0 * z);
    let n = users(m);
    let harmonic = n.iter().map(|n| 1.0 / n.max(1.0)).sum::<f64>();
    Ok(se / harmonic.sqrt())
}

/// Share of runs for which `f` holds.
pub fn share<T>(runs: &[T], f: impl Fn(&T) -> bool) -> f64 {
    if runs.is_empty() {
        return 0.0;
    }
    runs.iter().filter(|r| f(r)).count() as f64 / runs.len() as f64
}

/// Mean of a figure over runs.
pub fn mean<T>(runs: &[T], f: impl Fn(&T) -> f64) -> f64 {
    if runs.is_empty() {
        return 0.0;
    }
    runs.iter().map(f).sum::<f64>() / runs.len() as f64
}

/// Root mean square of a figure over runs (to pool standard deviations).
pub fn rms<T>(runs: &[T], f: impl Fn(&T) -> f64) -> f64 {
    mean(runs, |r| f(r).powi(2)).sqrt()
}
