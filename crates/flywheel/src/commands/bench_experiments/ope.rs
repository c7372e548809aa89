//! Off-policy evaluation on ε-greedy logs: the logged impressions (with the propensities
//! `explore` reported) and the joiner's closed requests become one logged-bandit row per
//! (request, slot); each candidate policy is scored by IPS, SNIPS and DR
//! (`evaluate_policy`) and compared with its true value from the world's click model.
//!
//! ε-greedy gives a listed item zero probability at any other slot, so the candidate
//! policies choose, slot by slot, among what the logger could have put there: the
//! slot's own item or any pool item. The reward model of DR is deliberately
//! misspecified (examination × the item's mean preference over users).

use std::collections::HashMap;

use anyhow::{Context, Result};
use flywheel_core::RequestId;
use flywheel_eval::ope::{evaluate_policy, LoggedBandit, OpeOptions};
use flywheel_sim::World;
use serde::Serialize;

use super::ab::ab_def;
use super::sim::{simulate, Arm, RunSpec, Served, Shop};

/// The logging policy's exploration rate.
pub const EPSILON: f64 = 0.2;
/// The candidate policies, in report order.
pub const POLICIES: [&str; 4] = ["true_preference", "popularity", "random", "logged_list"];
/// The estimators checked, in report order.
pub const ESTIMATORS: [&str; 3] = ["ips", "snips", "dr"];

/// One estimator's reading in one run.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    /// Point estimate.
    pub estimate: f64,
    /// The 95% interval covered the true value.
    pub covered: bool,
}

/// One run: per policy, its true value and each estimator's reading.
#[derive(Debug, Clone, Serialize)]
pub struct OpeRun {
    /// Per policy (in [`POLICIES`] order): the true value and the estimates.
    pub policies: Vec<(f64, Vec<Estimate>)>,
}

/// A policy's choice at one slot: a distribution over the slot's support.
enum Choice {
    One(usize),
    Uniform,
}

/// One logging run and the evaluation of every candidate policy on it.
pub fn ope_run(shop: &Shop, seed: u64, mean_preference: &[f64]) -> Result<OpeRun> {
    let def = ab_def("ope-log", &format!("ope-{seed}"), ["a", "b"])?;
    let arm = Arm {
        epsilon: Some(EPSILON),
        ..Arm::ranker(1.0)
    };
    let spec = RunSpec {
        def: &def,
        arms: &[arm, arm],
        seed,
        keep_served: true,
    };
    let mut run = simulate(shop, &spec, |_, _| {});
    let ledger = &mut run.ledger;
    ledger.joiner.close_all(&ledger.book);
    let clicks: HashMap<RequestId, Vec<u32>> = ledger
        .joiner
        .take_closed()
        .into_iter()
        .map(|c| (c.request_id, c.clicks))
        .collect();
    let contexts = contexts(&shop.world, &run.served);
    let mut policies = Vec::new();
    for name in POLICIES {
        policies.push(evaluate(
            &shop.world,
            &contexts,
            &clicks,
            name,
            mean_preference,
        )?);
    }
    Ok(OpeRun { policies })
}

/// One request with the true preference of each candidate (list, then pool).
struct Request<'a> {
    served: &'a Served,
    preferences: Vec<(usize, f64)>,
}

impl Request<'_> {
    fn preference(&self, item: usize) -> f64 {
        self.preferences
            .iter()
            .find(|(i, _)| *i == item)
            .map_or(0.0, |(_, p)| *p)
    }
}

fn contexts<'a>(world: &World, served: &'a [Served]) -> Vec<Request<'a>> {
    served
        .iter()
        .map(|s| Request {
            served: s,
            preferences: s
                .base
                .iter()
                .chain(&s.pool)
                .map(|&i| (i, world.true_preference(s.user, i)))
                .collect(),
        })
        .collect()
}

/// The slot-by-slot choices of a policy for one request.
fn choices(world: &World, context: &Request<'_>, policy: &str) -> Vec<Choice> {
    let served = context.served;
    let score = |item: usize| match policy {
        "true_preference" => context.preference(item),
        _ => world.truth.items[item].prior_popularity,
    };
    match policy {
        "random" => served.base.iter().map(|_| Choice::Uniform).collect(),
        "logged_list" => served.base.iter().map(|&i| Choice::One(i)).collect(),
        _ => {
            let mut taken = Vec::new();
            for &own in &served.base {
                let best = std::iter::once(own)
                    .chain(served.pool.iter().copied())
                    .filter(|i| !taken.contains(i))
                    .max_by(|a, b| score(*a).total_cmp(&score(*b)))
                    .unwrap_or(own);
                taken.push(best);
            }
            taken.into_iter().map(Choice::One).collect()
        }
    }
}

/// The columns of one policy over every logged slot, and the policy's true value.
fn evaluate(
    world: &World,
    contexts: &[Request<'_>],
    clicks: &HashMap<RequestId, Vec<u32>>,
    policy: &str,
    mean_preference: &[f64],
) -> Result<(f64, Vec<Estimate>)> {
    let mut log = LoggedBandit {
        n_positions: super::sim::LIST,
        q_hat: Some(Vec::new()),
        dm_term: Some(Vec::new()),
        ..LoggedBandit::default()
    };
    let mut truth = 0.0;
    for context in contexts {
        let Some(clicks) = clicks.get(&context.served.request_id) else {
            continue;
        };
        for (slot, choice) in choices(world, context, policy).iter().enumerate() {
            truth += row(
                world,
                context,
                slot,
                choice,
                clicks,
                mean_preference,
                &mut log,
            );
        }
    }
    let rows = log.reward.len().max(1) as f64;
    let truth = truth / rows;
    let report = evaluate_policy(&log, &OpeOptions::default()).context("off-policy evaluation")?;
    let estimates = ESTIMATORS
        .iter()
        .map(|name| {
            report.estimator(name).map_or(
                Estimate {
                    estimate: f64::NAN,
                    covered: false,
                },
                |e| Estimate {
                    estimate: e.estimate,
                    covered: e.ci_low <= truth && truth <= e.ci_high,
                },
            )
        })
        .collect();
    Ok((truth, estimates))
}

/// Appends the row of one slot; returns the policy's true expected reward there.
fn row(
    world: &World,
    context: &Request<'_>,
    slot: usize,
    choice: &Choice,
    clicks: &[u32],
    mean_preference: &[f64],
    log: &mut LoggedBandit,
) -> f64 {
    let request = context.served;
    let support: Vec<usize> = std::iter::once(request.base[slot])
        .chain(request.pool.iter().copied())
        .collect();
    let probability = |item: usize| match choice {
        Choice::One(chosen) => f64::from(u8::from(*chosen == item)),
        Choice::Uniform => 1.0 / support.len() as f64,
    };
    let examination = world.examination_probability(slot as u32);
    let logged = request.shown[slot];
    let q = |item: usize| examination * mean_preference[item];
    let mut dm = 0.0;
    let mut truth = 0.0;
    for &item in &support {
        let p = probability(item);
        dm += p * q(item);
        truth += p * examination * context.preference(item);
    }
    log.reward
        .push(f64::from(clicks.get(slot).copied().unwrap_or(0).min(1)));
    log.pscore.push(request.propensities[slot]);
    log.pi_e.push(probability(logged));
    if let (Some(q_hat), Some(dm_term)) = (log.q_hat.as_mut(), log.dm_term.as_mut()) {
        q_hat.push(q(logged));
        dm_term.push(dm);
    }
    truth
}

/// Each item's mean true preference over users (the reward model's only knowledge).
pub fn mean_preferences(world: &World) -> Vec<f64> {
    let users = world.users.len().max(1) as f64;
    (0..world.items.len())
        .map(|i| {
            (0..world.users.len())
                .map(|u| world.true_preference(u, i))
                .sum::<f64>()
                / users
        })
        .collect()
}
