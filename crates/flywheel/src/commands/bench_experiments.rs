//! `flywheel bench experiments`: the simulator closes the loop and checks, over many
//! seeded runs, that the experiment statistics are right — false positives of A/A
//! tests (fixed horizon, sequential, naive peeking), power of an A/B with a known true
//! lift against the power calculator, users needed by interleaving against A/B, and the
//! coverage of off-policy intervals on ε-greedy logs — plus one run through the real
//! HTTP server compared with the in-process path.
//!
//! Every run drives the real ledger (`Ledger::apply` on the records the simulated
//! serving produces) and `live::metrics` on a simulated clock. The lists come from a
//! cheap policy (candidates ranked by noisy true preference), not the trained
//! pipeline, so hundreds of runs fit in minutes; the HTTP run uses the real pipeline.

mod ab;
mod http;
mod interleave;
mod ope;
mod report;
mod sim;

use std::time::Instant;

use anyhow::{Context, Result};
use flywheel_experiments::power::{
    minimum_detectable_effect, power_two_sample, sample_size_per_arm,
};
use flywheel_sim::{SimConfig, World};

use ab::{ab_def, mean, rms, share, two_arm_run, AbRun, ALPHA};
use interleave::{interleaving_def, interleaving_run, InterleavingRun};
use report::{Figure, Report};
use sim::{par_map, Arm, Shop};

/// The ranking noise of the better and the worse ranker compared by interleaving and A/B.
const RANKERS: [f64; 2] = [0.5, 1.0];
/// Power the sample sizes are planned for.
const POWER: f64 = 0.8;

/// Runs the benchmark: `runs` A/A runs, and proportionally fewer for the other studies.
pub fn run(runs: usize, seed: u64, json: bool) -> Result<()> {
    let started = Instant::now();
    let runs = runs.max(2);
    let shop = Shop::new(World::generate(&world_config(seed))?, 0);
    let progress = |what: &str| {
        if !json {
            eprintln!(
                "bench experiments: {what} ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    };
    let mut report = Report::new(runs, seed, &shop);
    progress(&format!("{} requests per run; A/A", shop.arrivals.len()));
    let aa = aa_study(&shop, seed, runs, &mut report)?;
    progress("A/B with a known lift");
    ab_study(&shop, seed, (runs / 2).max(2), &aa, &mut report)?;
    progress("interleaving against A/B");
    interleaving_study(&shop, seed, (runs / 5).max(2), &mut report)?;
    progress("off-policy evaluation");
    ope_study(&shop, seed, (runs / 4).max(2), &mut report)?;
    progress("one run over HTTP");
    report.http = Some(http::http_check(seed)?);
    report.finish(started.elapsed().as_secs_f64());
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

/// The in-process world: 1,000 users, 400 items, 14 days, one session a day on average.
fn world_config(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        users: 1_000,
        items: 400,
        categories: 8,
        days: 14,
        sessions_per_user_per_day: 1.0,
        ..SimConfig::quickstart()
    }
}

/// A run's seed: distinct per study and run.
fn run_seed(seed: u64, study: u64, run: usize) -> u64 {
    seed.wrapping_mul(1_000_003)
        .wrapping_add(study << 32)
        .wrapping_add(run as u64)
}

/// Runs `n` two-arm experiments of one study in parallel.
fn two_arm_runs(
    shop: &Shop,
    seed: u64,
    study: u64,
    n: usize,
    id: &str,
    arms: [Arm; 2],
) -> Result<Vec<AbRun>> {
    par_map(n, |i| {
        let s = run_seed(seed, study, i);
        let def = ab_def(id, &format!("{id}-{s}"), ["control", "treatment"])?;
        two_arm_run(shop, &def, &arms, s)
    })
    .into_iter()
    .collect()
}

fn aa_study(shop: &Shop, seed: u64, n: usize, report: &mut Report) -> Result<Vec<AbRun>> {
    let arm = Arm::ranker(RANKERS[1]);
    let runs = two_arm_runs(shop, seed, 1, n, "aa", [arm, arm])?;
    let study = format!("A/A ({n} runs, alpha {ALPHA})");
    report.push(Figure::range(
        &study,
        "false positives, fixed horizon at the end",
        share(&runs, |r| r.fixed_final),
        0.03,
        0.07,
    ));
    report.push(Figure::at_most(
        &study,
        "false positives, sequential peeked daily",
        share(&runs, |r| r.sequential_any_peek),
        0.07,
    ));
    report.push(Figure::info(
        &study,
        "false positives, fixed horizon peeked daily (naive)",
        share(&runs, |r| r.fixed_any_peek),
        "inflates, e.g. 0.15-0.25",
    ));
    report.push(Figure::info(
        &study,
        "users per arm",
        mean(&runs, |r| r.users_per_arm),
        "",
    ));
    report.push(Figure::info(
        &study,
        "per-user sd of CTR (delta method)",
        rms(&runs, |r| r.sd),
        "",
    ));
    Ok(runs)
}

fn ab_study(shop: &Shop, seed: u64, n: usize, aa: &[AbRun], report: &mut Report) -> Result<()> {
    let sd = rms(aa, |r| r.sd);
    let users = mean(aa, |r| r.users_per_arm);
    let ctr = mean(aa, |r| (r.true_ctr[0] + r.true_ctr[1]) / 2.0);
    // The lift is the A/A-planned MDE at 80% power: the control's clicks are thinned.
    let planned = minimum_detectable_effect(sd, users, ALPHA, POWER)?;
    let keep = (1.0 - planned / ctr).clamp(0.0, 1.0);
    let control = Arm {
        keep,
        ..Arm::ranker(RANKERS[1])
    };
    let runs = two_arm_runs(shop, seed, 2, n, "ab", [control, Arm::ranker(RANKERS[1])])?;
    // The design's effect: the population CTR times the share of clicks thinned away.
    let effect = ctr * (1.0 - keep);
    let promised = power_two_sample(effect, sd, mean(&runs, |r| r.users_per_arm), ALPHA)?;
    let observed = share(&runs, |r| r.fixed_final);
    let study = format!("A/B known lift ({n} runs)");
    report.push(Figure::info(
        &study,
        "true relative lift of the treatment's CTR",
        1.0 / keep - 1.0,
        "MDE at 80% planned from A/A",
    ));
    report.push(Figure::info(
        &study,
        "true CTR difference by design",
        effect,
        "population CTR x thinned share",
    ));
    report.push(Figure::info(
        &study,
        "true CTR difference of the served lists",
        mean(&runs, |r| r.true_ctr[1] - r.true_ctr[0]),
        "world's click model, per run",
    ));
    report.push(Figure::info(
        &study,
        "power promised by power_two_sample",
        promised,
        "",
    ));
    report.push(Figure::within(
        &study,
        "power observed, fixed horizon",
        observed,
        promised,
        0.10,
    ));
    report.push(Figure::info(
        &study,
        "power observed, sequential peeked daily",
        share(&runs, |r| r.sequential_any_peek),
        "below fixed: the price of peeking",
    ));
    report.push(Figure::info(
        &study,
        "mean estimated CTR difference",
        mean(&runs, |r| r.effect),
        "true difference",
    ));
    Ok(())
}

fn interleaving_study(shop: &Shop, seed: u64, n: usize, report: &mut Report) -> Result<()> {
    let arms = [Arm::ranker(RANKERS[1]), Arm::ranker(RANKERS[0])];
    let ab_runs = two_arm_runs(shop, seed, 3, n, "rankers-ab", arms)?;
    let better_first = [arms[1], arms[0]];
    let il_runs: Vec<InterleavingRun> = par_map(n, |i| {
        let s = run_seed(seed, 4, i);
        interleaving_run(
            shop,
            &interleaving_def(&format!("il-{s}"), ["better", "worse"])?,
            &better_first,
            s,
        )
    })
    .into_iter()
    .collect::<Result<_>>()?;
    let ab_effect = mean(&ab_runs, |r| r.effect);
    let ab_users = 2.0 * sample_size_per_arm(ab_effect, rms(&ab_runs, |r| r.sd), ALPHA, POWER)?;
    let il_effect = mean(&il_runs, |r| r.effect);
    // One sample of per-user scores: half the per-arm size of a two-sample test.
    let il_users = sample_size_per_arm(il_effect, rms(&il_runs, |r| r.sd), ALPHA, POWER)? / 2.0;
    let study = format!("interleaving vs A/B ({n} runs each)");
    report.push(Figure::info(
        &study,
        "A/B: CTR difference of the rankers",
        ab_effect,
        "",
    ));
    report.push(Figure::info(
        &study,
        "A/B: users for 80% power (both arms)",
        ab_users,
        "",
    ));
    report.push(Figure::info(
        &study,
        "interleaving: mean per-user preference",
        il_effect,
        "",
    ));
    report.push(Figure::info(
        &study,
        "interleaving: users for 80% power",
        il_users,
        "",
    ));
    report.push(Figure::at_least(
        &study,
        "users A/B needs / users interleaving needs",
        ab_users / il_users,
        1.0,
    ));
    report.push(Figure::info(
        &study,
        "A/B power observed at the simulated size",
        share(&ab_runs, |r| r.fixed_final),
        "",
    ));
    report.push(Figure::info(
        &study,
        "interleaving power observed (per-request test)",
        share(&il_runs, |r| r.preference_rejected),
        "",
    ));
    report.push(Figure::at_least(
        &study,
        "runs whose recount equals the joiner's wins/losses/ties",
        share(&il_runs, |r| r.joiner_agrees),
        1.0,
    ));
    Ok(())
}

fn ope_study(shop: &Shop, seed: u64, n: usize, report: &mut Report) -> Result<()> {
    let preferences = ope::mean_preferences(&shop.world);
    let runs: Vec<ope::OpeRun> = par_map(n, |i| {
        ope::ope_run(shop, run_seed(seed, 5, i), &preferences)
    })
    .into_iter()
    .collect::<Result<_>>()
    .context("off-policy study")?;
    let study = format!(
        "OPE on epsilon-greedy logs (eps {}, {n} runs)",
        ope::EPSILON
    );
    for (p, policy) in ope::POLICIES.iter().enumerate() {
        report.push(Figure::info(
            &study,
            &format!("{policy}: true value per slot"),
            mean(&runs, |r| r.policies[p].0),
            "",
        ));
        for (e, estimator) in ope::ESTIMATORS.iter().enumerate() {
            let error = |r: &ope::OpeRun| r.policies[p].1[e].estimate - r.policies[p].0;
            let coverage = share(&runs, |r| r.policies[p].1[e].covered);
            let name = format!("{policy}: {estimator} 95% CI coverage");
            report.push(match *estimator {
                "ips" => Figure::info(&study, &name, coverage, ">= 0.90 wanted, not required"),
                _ => Figure::at_least(&study, &name, coverage, 0.90),
            });
            report.push(Figure::info(
                &study,
                &format!("{policy}: {estimator} bias"),
                mean(&runs, error),
                "",
            ));
            report.push(Figure::info(
                &study,
                &format!("{policy}: {estimator} RMSE"),
                rms(&runs, error),
                "",
            ));
        }
    }
    Ok(())
}
