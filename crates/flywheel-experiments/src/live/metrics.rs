//! An experiment's statistics, computed from its tally at the moment they are asked
//! for: per variant the counts and rates; per treatment the primary metric's effect
//! (delta method), its CUPED-adjusted and always-valid sequential intervals and the
//! guardrails; the sample-ratio check; interleaving preference; shadow comparison;
//! and how many labels are still pending.
//!
//! Definitions (the unit is the user): an impression is one slot shown in a counted
//! (non-shadow, non-forced) request; `users` are the users exposed at least once;
//! CTR = Σclicks/Σimpressions, CVR = Σpurchases/Σclicks, RPM = 1000·Σrevenue/Σimpressions,
//! each a ratio of per-user sums.

use std::io::Write;

use crate::users_csv::REQUIRED_COLUMNS;

use flywheel_core::{ExperimentKind, PrimaryMetric, Timestamp};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::book::Running;
use super::joiner::Unattributed;
use super::tally::{ExperimentTally, ShadowTally, VariantTally};
use super::Ledger;
use crate::comparison::relative_lift;
use crate::cuped::{cuped_test, CupedArm};
use crate::dist::chi2_sf;
use crate::error::{ExperimentError, Result};
use crate::gbstats::{gb_sequential_ttest, DifferenceType, GbArm, SequentialConfig};
use crate::interleaving::{preference_test, PreferenceResult};
use crate::ratio::{delta_ratio_test, RatioArm};

/// One variant's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantMetrics {
    /// Users exposed at least once.
    pub users: u64,
    /// Requests served.
    pub requests: u64,
    /// Slots shown.
    pub impressions: u64,
    /// Attributed clicks.
    pub clicks: u64,
    /// Attributed purchases.
    pub purchases: u64,
    /// Attributed revenue.
    pub revenue: f64,
    /// Σclicks / Σimpressions.
    pub ctr: f64,
    /// Σpurchases / Σclicks.
    pub cvr: f64,
    /// 1000 · Σrevenue / Σimpressions.
    pub rpm: f64,
    /// Slots whose attribution windows are still open.
    pub pending_labels: u64,
    /// Share of requests a fallback served.
    pub fallback_rate: f64,
    /// p99 request latency, where impressions carried latencies.
    pub p99_latency_ms: Option<f64>,
    /// Purchases still to come, judged from the closed requests.
    pub delayed_feedback: DelayedFeedback,
}

/// Delayed feedback: what the pending labels are expected to become.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DelayedFeedback {
    /// Purchases per slot on requests whose windows closed.
    pub closed_purchase_rate: Option<f64>,
    /// Purchases already attributed to pending slots.
    pub pending_observed_purchases: u64,
    /// Purchases the pending slots should end with at the closed rate.
    pub pending_expected_purchases: Option<f64>,
    /// Observed over expected (below 1 while windows are open).
    pub observed_over_expected: Option<f64>,
}

/// The CUPED-adjusted comparison of the primary metric's numerator per user.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CupedSummary {
    /// The per-user metric adjusted (`clicks_per_user`, `purchases_per_user`, `revenue_per_user`).
    pub metric: &'static str,
    /// The pre-period covariate: each user's events before the experiment started.
    pub covariate: &'static str,
    /// Adjusted effect.
    pub effect: f64,
    /// Interval.
    pub ci_low: f64,
    /// Interval.
    pub ci_high: f64,
    /// p-value.
    pub p_value: f64,
    /// The unadjusted effect on the same metric.
    pub unadjusted_effect: f64,
    /// 1 − var(adjusted)/var(raw).
    pub variance_reduction: f64,
}

/// The always-valid interval of the primary metric (safe to peek).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SequentialSummary {
    /// Interval.
    pub ci_low: f64,
    /// Interval.
    pub ci_high: f64,
    /// Always-valid p-value.
    pub p_value: f64,
}

/// A guardrail's reading for one variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardrailCheck {
    /// Which guardrail.
    pub name: &'static str,
    /// The control's value.
    pub control: Option<f64>,
    /// The treatment's value.
    pub treatment: Option<f64>,
    /// The limit.
    pub limit: f64,
    /// Whether the treatment exceeds it.
    pub breached: bool,
}

/// One treatment against the first variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonMetrics {
    /// The primary metric.
    pub metric: &'static str,
    /// The control's value.
    pub control: f64,
    /// The treatment's value.
    pub treatment: f64,
    /// treatment − control.
    pub effect: f64,
    /// treatment / control − 1.
    pub relative_lift: Option<f64>,
    /// Fixed-horizon interval (delta method).
    pub ci_low: f64,
    /// Fixed-horizon interval.
    pub ci_high: f64,
    /// Fixed-horizon p-value.
    pub p_value: f64,
    /// CUPED on the metric's numerator per user.
    pub cuped: Option<CupedSummary>,
    /// Always-valid interval.
    pub sequential: Option<SequentialSummary>,
    /// Guardrails.
    pub guardrails: Vec<GuardrailCheck>,
}

/// The sample-ratio check over every variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SrmSummary {
    /// Users per variant, in order.
    pub users: Vec<u64>,
    /// Configured shares, in order.
    pub expected_shares: Vec<f64>,
    /// Chi-square statistic (variants − 1 degrees of freedom).
    pub chi2: f64,
    /// p-value.
    pub p_value: f64,
    /// p < 0.001: the assignment is broken, do not trust the effects.
    pub mismatch: bool,
}

/// A shadow variant's comparison with the live list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShadowMetrics {
    /// Requests shadowed.
    pub requests: u64,
    /// Share that missed the shadow deadline.
    pub timeout_rate: f64,
    /// Share of shadow lists a fallback produced.
    pub fallback_rate: f64,
    /// Median shadow latency.
    pub p50_latency_ms: Option<f64>,
    /// p99 shadow latency.
    pub p99_latency_ms: Option<f64>,
    /// Mean overlap@k with the live list.
    pub overlap_at_k: f64,
    /// Clicked items of closed requests.
    pub engaged_items: u64,
    /// Share of them the shadow list held.
    pub engaged_recall: Option<f64>,
    /// Mean reciprocal rank of clicked items in the shadow list.
    pub shadow_mrr: Option<f64>,
    /// Mean reciprocal rank of clicked items in the live list.
    pub live_mrr: Option<f64>,
}

/// Interleaving outcomes: the preference for the first variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InterleavingMetrics {
    /// The preference test over closed requests.
    #[serde(flatten)]
    pub preference: Option<PreferenceResult>,
    /// Wins, losses and ties of closed requests.
    pub wins: u64,
    /// Losses.
    pub losses: u64,
    /// Ties.
    pub ties: u64,
    /// Requests whose windows are still open.
    pub pending_requests: u64,
}

/// Every figure of one experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentMetrics {
    /// The experiment.
    pub id: String,
    /// Its kind.
    pub kind: ExperimentKind,
    /// `running` or `stopped`.
    pub status: &'static str,
    /// When it started.
    pub started: Timestamp,
    /// When it stopped.
    pub stopped: Option<Timestamp>,
    /// The primary metric.
    pub primary_metric: PrimaryMetric,
    /// Significance level.
    pub alpha: f64,
    /// Event time up to which windows are closed.
    pub watermark: Option<Timestamp>,
    /// Slots whose labels are not final yet, over all variants.
    pub pending_labels: u64,
    /// Requests with a forced variant (served, not counted).
    pub forced_requests: u64,
    /// Per variant, in definition order.
    #[serde(serialize_with = "ordered_map")]
    pub variants: Vec<(String, VariantMetrics)>,
    /// A/B: each treatment against the first variant.
    #[serde(serialize_with = "ordered_map")]
    pub comparisons: Vec<(String, ComparisonMetrics)>,
    /// A/B: the sample-ratio check.
    pub srm: Option<SrmSummary>,
    /// Interleaving outcomes.
    pub interleaving: Option<InterleavingMetrics>,
    /// Shadow variants against the live one.
    #[serde(serialize_with = "ordered_map")]
    pub shadow: Vec<(String, ShadowMetrics)>,
    /// Outcomes no experiment could take (over the whole log, not only this experiment).
    pub unattributed: Unattributed,
    /// Why a statistic is missing.
    pub warnings: Vec<String>,
}

fn ordered_map<S: Serializer, T: Serialize>(
    entries: &[(String, T)],
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(entries.len()))?;
    for (key, value) in entries {
        map.serialize_entry(key, value)?;
    }
    map.end()
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

fn p99(values: &[f64]) -> Option<f64> {
    quantile(values, 0.99)
}

fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(flywheel_eval::percentile(&sorted, q))
}

fn variant_metrics(tally: &VariantTally) -> VariantMetrics {
    let (mut impressions, mut clicks, mut purchases, mut revenue) = (0, 0, 0, 0.0);
    for user in tally.users.values() {
        impressions += user.impressions;
        clicks += user.clicks;
        purchases += user.purchases;
        revenue += user.revenue;
    }
    let closed_rate =
        (tally.closed_slots > 0).then(|| tally.closed_purchases as f64 / tally.closed_slots as f64);
    let pending_observed = purchases.saturating_sub(tally.closed_purchases);
    let expected = closed_rate.map(|r| r * tally.pending_slots as f64);
    VariantMetrics {
        users: tally.users.len() as u64,
        requests: tally.requests,
        impressions,
        clicks,
        purchases,
        revenue,
        ctr: ratio(clicks as f64, impressions as f64),
        cvr: ratio(purchases as f64, clicks as f64),
        rpm: 1000.0 * ratio(revenue, impressions as f64),
        pending_labels: tally.pending_slots,
        fallback_rate: ratio(tally.fallbacks as f64, tally.requests as f64),
        p99_latency_ms: p99(&tally.latencies_ms),
        delayed_feedback: DelayedFeedback {
            closed_purchase_rate: closed_rate,
            pending_observed_purchases: pending_observed,
            pending_expected_purchases: expected,
            observed_over_expected: expected
                .filter(|e| *e > 0.0)
                .map(|e| pending_observed as f64 / e),
        },
    }
}

/// Per-user columns of one variant, in user-id order.
pub struct UserColumns {
    /// User ids.
    pub users: Vec<String>,
    /// Slots shown.
    pub impressions: Vec<f64>,
    /// Clicks.
    pub clicks: Vec<f64>,
    /// Purchases.
    pub purchases: Vec<f64>,
    /// Revenue.
    pub revenue: Vec<f64>,
    /// Events before the experiment started.
    pub pre_period: Vec<f64>,
}

fn user_columns(ledger: &Ledger, tally: &ExperimentTally, variant: usize) -> UserColumns {
    let users = &tally.variants[variant].users;
    let mut columns = UserColumns {
        users: Vec::with_capacity(users.len()),
        impressions: Vec::with_capacity(users.len()),
        clicks: Vec::with_capacity(users.len()),
        purchases: Vec::with_capacity(users.len()),
        revenue: Vec::with_capacity(users.len()),
        pre_period: Vec::with_capacity(users.len()),
    };
    for (id, user) in users {
        let all = ledger.joiner.activity.get(id).copied().unwrap_or(0);
        let since = tally.activity_since_start.get(id).copied().unwrap_or(0);
        columns.users.push(id.to_string());
        columns.impressions.push(user.impressions as f64);
        columns.clicks.push(user.clicks as f64);
        columns.purchases.push(user.purchases as f64);
        columns.revenue.push(user.revenue);
        columns.pre_period.push(all.saturating_sub(since) as f64);
    }
    columns
}

/// (numerators, denominators, per-user numerator name) of the primary metric.
fn metric_columns(metric: PrimaryMetric, c: &UserColumns) -> (Vec<f64>, Vec<f64>, &'static str) {
    match metric {
        PrimaryMetric::Ctr => (c.clicks.clone(), c.impressions.clone(), "clicks_per_user"),
        PrimaryMetric::Cvr => (c.purchases.clone(), c.clicks.clone(), "purchases_per_user"),
        PrimaryMetric::Rpm => (
            c.revenue.iter().map(|r| 1000.0 * r).collect(),
            c.impressions.clone(),
            "revenue_per_user",
        ),
    }
}

fn metric_name(metric: PrimaryMetric) -> &'static str {
    match metric {
        PrimaryMetric::Ctr => "ctr",
        PrimaryMetric::Cvr => "cvr",
        PrimaryMetric::Rpm => "rpm",
    }
}

fn compare(
    running: &Running,
    control: &UserColumns,
    treatment: &UserColumns,
    warnings: &mut Vec<String>,
    name: &str,
) -> Result<ComparisonMetrics> {
    let metric = running.def.primary_metric;
    let alpha = running.def.alpha;
    let (cn, cd, per_user) = metric_columns(metric, control);
    let (tn, td, _) = metric_columns(metric, treatment);
    let arm_c = RatioArm {
        numerators: &cn,
        denominators: &cd,
    };
    let arm_t = RatioArm {
        numerators: &tn,
        denominators: &td,
    };
    let fixed = delta_ratio_test(&arm_c, &arm_t, alpha)?.absolute;
    let sequential = GbArm::ratio(&arm_c, "control")
        .and_then(|a| Ok((a, GbArm::ratio(&arm_t, "treatment")?)))
        .and_then(|(a, b)| {
            let config = SequentialConfig {
                alpha,
                tuning_parameter: crate::gbstats::DEFAULT_SEQUENTIAL_TUNING,
            };
            gb_sequential_ttest(&a, &b, DifferenceType::Absolute, &config)
        })
        .map(|s| SequentialSummary {
            ci_low: s.ci_low,
            ci_high: s.ci_high,
            p_value: s.p_value,
        })
        .map_err(|e| warnings.push(format!("{name}: sequential: {e}")))
        .ok();
    let cuped = cuped_test(
        &CupedArm {
            metric: &cn,
            covariate: &control.pre_period,
        },
        &CupedArm {
            metric: &tn,
            covariate: &treatment.pre_period,
        },
        alpha,
    )
    .map(|c| CupedSummary {
        metric: per_user,
        covariate: "events_before_start",
        effect: c.adjusted.effect,
        ci_low: c.adjusted.ci_low,
        ci_high: c.adjusted.ci_high,
        p_value: c.adjusted.p_value,
        unadjusted_effect: c.unadjusted.effect,
        variance_reduction: c.variance_reduction,
    })
    .map_err(|e| warnings.push(format!("{name}: cuped: {e}")))
    .ok();
    Ok(ComparisonMetrics {
        metric: metric_name(metric),
        control: fixed.control,
        treatment: fixed.treatment,
        effect: fixed.effect,
        relative_lift: relative_lift(fixed.control, fixed.treatment),
        ci_low: fixed.ci_low,
        ci_high: fixed.ci_high,
        p_value: fixed.p_value,
        cuped,
        sequential,
        guardrails: Vec::new(),
    })
}

fn guardrails(running: &Running, c: &VariantMetrics, t: &VariantMetrics) -> Vec<GuardrailCheck> {
    let g = &running.def.guardrails;
    let mut checks = Vec::new();
    if let Some(limit) = g.max_p99_latency_ms {
        checks.push(GuardrailCheck {
            name: "p99_latency_ms",
            control: c.p99_latency_ms,
            treatment: t.p99_latency_ms,
            limit,
            breached: t.p99_latency_ms.is_some_and(|v| v > limit),
        });
    }
    if let Some(limit) = g.max_fallback_rate {
        checks.push(GuardrailCheck {
            name: "fallback_rate",
            control: Some(c.fallback_rate),
            treatment: Some(t.fallback_rate),
            limit,
            breached: t.fallback_rate > limit,
        });
    }
    if let Some(limit) = g.max_error_rate {
        // A request that failed logs no impression; the engine's error counter is not
        // per variant, so the served share that errored is 0 by construction here.
        checks.push(GuardrailCheck {
            name: "error_rate",
            control: Some(0.0),
            treatment: Some(0.0),
            limit,
            breached: false,
        });
    }
    checks
}

fn srm(running: &Running, variants: &[(String, VariantMetrics)]) -> Option<SrmSummary> {
    let shares = running.def.shares();
    let users: Vec<u64> = variants.iter().map(|(_, v)| v.users).collect();
    let total: u64 = users.iter().sum();
    if total == 0 {
        return None;
    }
    let chi2: f64 = users
        .iter()
        .zip(&shares)
        .map(|(&o, &s)| {
            let expected = total as f64 * s;
            (o as f64 - expected).powi(2) / expected
        })
        .sum();
    let p_value = chi2_sf(chi2, (users.len() - 1) as f64).ok()?;
    Some(SrmSummary {
        users,
        expected_shares: shares,
        chi2,
        p_value,
        mismatch: p_value < 0.001,
    })
}

fn shadow_metrics(tally: &ShadowTally) -> ShadowMetrics {
    let answered = tally.requests - tally.timeouts;
    let engaged = tally.engaged as f64;
    let per_engaged = |x: f64| (tally.engaged > 0).then(|| x / engaged);
    ShadowMetrics {
        requests: tally.requests,
        timeout_rate: ratio(tally.timeouts as f64, tally.requests as f64),
        fallback_rate: ratio(tally.fallbacks as f64, answered as f64),
        p50_latency_ms: quantile(&tally.latencies_ms, 0.5),
        p99_latency_ms: p99(&tally.latencies_ms),
        overlap_at_k: ratio(tally.overlap_sum, answered as f64),
        engaged_items: tally.engaged,
        engaged_recall: per_engaged(tally.engaged_in_shadow as f64),
        shadow_mrr: per_engaged(tally.shadow_reciprocal_rank),
        live_mrr: per_engaged(tally.live_reciprocal_rank),
    }
}

fn interleaving(
    running: &Running,
    tally: &ExperimentTally,
    warnings: &mut Vec<String>,
) -> InterleavingMetrics {
    let [wins, losses, ties] = tally.interleaving;
    let closed = wins + losses + ties;
    let pending = tally.variants[0].requests.saturating_sub(closed);
    let preference = preference_test(wins, losses, ties, running.def.alpha)
        .map_err(|e| warnings.push(format!("interleaving: {e}")))
        .ok();
    InterleavingMetrics {
        preference,
        wins,
        losses,
        ties,
        pending_requests: pending,
    }
}

/// Whether an experiment decides which lists users see: a model version, re-ranking
/// or exploration for some variant, or a merged (interleaving) list.
fn decides_the_list(running: &Running) -> bool {
    running.def.kind == ExperimentKind::Interleaving
        || running
            .def
            .variants
            .iter()
            .any(|v| v.model_version.is_some() || v.rerank.is_some() || v.exploration.is_some())
}

/// Experiments of other layers that also decide the list and ran at the same time:
/// their users are shared (layers are independent), and where both apply the one
/// that wins (interleaving over A/B; otherwise the later id) shapes the list.
fn overlap_warnings(ledger: &Ledger, running: &Running) -> Vec<String> {
    if !decides_the_list(running) {
        return Vec::new();
    }
    let layer = running.def.layer_name();
    ledger
        .book
        .all()
        .filter(|other| other.def.id != running.def.id && other.def.layer_name() != layer)
        .filter(|other| decides_the_list(other))
        .filter(|other| {
            let ends = |r: &Running| r.stopped.unwrap_or(Timestamp(i64::MAX));
            other.started < ends(running) && running.started < ends(other)
        })
        .map(|other| {
            format!(
                "experiment `{}` (layer `{}`) also decides the list and shares users with this one; \
                 for users in both, the list is not this variant's alone: put experiments \
                 that change the same thing in one layer",
                other.def.id,
                other.def.layer_name()
            )
        })
        .collect()
}

/// The figures of experiment `id`, or `None` when the log never started it.
pub fn metrics(ledger: &Ledger, id: &str) -> Option<ExperimentMetrics> {
    let running = ledger.book.get(id)?;
    let tally = ledger.tally(id)?;
    let mut warnings = overlap_warnings(ledger, running);
    let variants: Vec<(String, VariantMetrics)> = running
        .def
        .variants
        .iter()
        .zip(&tally.variants)
        .map(|(v, t)| (v.name.clone(), variant_metrics(t)))
        .collect();
    let mut comparisons = Vec::new();
    let mut srm_summary = None;
    let mut shadow = Vec::new();
    let mut interleaving_metrics = None;
    match running.def.kind {
        ExperimentKind::Ab => {
            let control = user_columns(ledger, tally, 0);
            for (index, variant) in running.def.variants.iter().enumerate().skip(1) {
                let treatment = user_columns(ledger, tally, index);
                match compare(running, &control, &treatment, &mut warnings, &variant.name) {
                    Ok(mut comparison) => {
                        comparison.guardrails =
                            guardrails(running, &variants[0].1, &variants[index].1);
                        comparisons.push((variant.name.clone(), comparison));
                    }
                    Err(e) => warnings.push(format!("{}: {e}", variant.name)),
                }
            }
            srm_summary = srm(running, &variants);
        }
        ExperimentKind::Interleaving => {
            interleaving_metrics = Some(interleaving(running, tally, &mut warnings));
        }
        ExperimentKind::Shadow => {
            for (variant, t) in running.def.variants.iter().zip(&tally.shadows).skip(1) {
                shadow.push((variant.name.clone(), shadow_metrics(t)));
            }
        }
    }
    Some(ExperimentMetrics {
        id: id.to_string(),
        kind: running.def.kind,
        status: if running.is_active() {
            "running"
        } else {
            "stopped"
        },
        started: running.started,
        stopped: running.stopped,
        primary_metric: running.def.primary_metric,
        alpha: running.def.alpha,
        watermark: ledger.joiner.watermark(),
        pending_labels: variants.iter().map(|(_, v)| v.pending_labels).sum(),
        forced_requests: tally.forced_requests,
        variants,
        comparisons,
        srm: srm_summary,
        interleaving: interleaving_metrics,
        shadow,
        unattributed: ledger.joiner.unattributed.clone(),
        warnings,
    })
}

/// Writes the per-user CSV of an experiment (`user_id, variant, exposures, clicks,
/// conversions, revenue, pre_period_metric`), the file `flywheel eval ab --users` reads.
pub fn export_users(ledger: &Ledger, id: &str, out: &mut dyn Write) -> Result<u64> {
    let running = ledger
        .book
        .get(id)
        .ok_or_else(|| ExperimentError::InvalidInput(format!("no experiment `{id}`")))?;
    let tally = ledger
        .tally(id)
        .ok_or_else(|| ExperimentError::InvalidInput(format!("no tally for `{id}`")))?;
    let failed = |e: csv::Error| ExperimentError::InvalidInput(format!("cannot write: {e}"));
    // The columns `read_users` requires, in its order: one definition for both sides.
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(REQUIRED_COLUMNS).map_err(failed)?;
    let mut rows = 0;
    for (index, variant) in running.def.variants.iter().enumerate() {
        let c = user_columns(ledger, tally, index);
        for i in 0..c.users.len() {
            writer
                .write_record([
                    c.users[i].clone(),
                    variant.name.clone(),
                    c.impressions[i].to_string(),
                    c.clicks[i].to_string(),
                    c.purchases[i].to_string(),
                    // Debug formatting of f64 round-trips exactly.
                    format!("{:?}", c.revenue[i]),
                    c.pre_period[i].to_string(),
                ])
                .map_err(failed)?;
            rows += 1;
        }
    }
    writer
        .flush()
        .map_err(|e| ExperimentError::InvalidInput(format!("cannot write: {e}")))?;
    Ok(rows)
}
