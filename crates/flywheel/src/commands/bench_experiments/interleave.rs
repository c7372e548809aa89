//! Interleaving against A/B on the same two rankers: per design, the per-user effect
//! and its variance from the simulations, and the users each needs at 80% power.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};
use flywheel_core::{ExperimentDef, RequestId};
use flywheel_experiments::live::metrics;
use flywheel_experiments::{credit, outcome, Outcome, Team};
use serde::Serialize;
use serde_json::json;

use super::ab::ALPHA;
use super::sim::{simulate, Arm, RunSpec, Served, Shop};

/// What one interleaving run showed.
#[derive(Debug, Clone, Serialize)]
pub struct InterleavingRun {
    /// Mean over users of the user's mean request score (+1 win, −1 loss, 0 tie).
    pub effect: f64,
    /// Per-user sd of that score.
    pub sd: f64,
    /// Users exposed.
    pub users: f64,
    /// The ledger's per-request preference test rejected.
    pub preference_rejected: bool,
    /// The wins, losses and ties recounted from closed requests equal the ledger's tally.
    pub joiner_agrees: bool,
}

/// The interleaving definition: the better ranker first.
pub fn interleaving_def(salt: &str, names: [&str; 2]) -> Result<ExperimentDef> {
    let value = json!({
        "id": "rankers-interleaved", "kind": "interleaving", "salt": salt,
        "variants": [{"name": names[0]}, {"name": names[1]}],
    });
    ExperimentDef::from_json(&value).context("building the interleaving definition")
}

/// One interleaving run; per-user scores from the joiner's closed requests.
pub fn interleaving_run(
    shop: &Shop,
    def: &ExperimentDef,
    arms: &[Arm; 2],
    seed: u64,
) -> Result<InterleavingRun> {
    let spec = RunSpec {
        def,
        arms,
        seed,
        keep_served: true,
    };
    let mut run = simulate(shop, &spec, |_, _| {});
    let ledger = &mut run.ledger;
    ledger.joiner.close_all(&ledger.book);
    let closed = ledger.joiner.take_closed();
    let by_id: HashMap<&RequestId, &Served> =
        run.served.iter().map(|s| (&s.request_id, s)).collect();
    let mut per_user: BTreeMap<usize, (f64, f64)> = BTreeMap::new();
    let mut counts = [0u64; 3];
    for request in &closed {
        let Some(served) = by_id.get(&request.request_id) else {
            continue;
        };
        let (score, index) = score(served, &request.clicks);
        counts[index] += 1;
        let entry = per_user.entry(served.user).or_default();
        entry.0 += score;
        entry.1 += 1.0;
    }
    let m = metrics(ledger, &def.id).context("no interleaving metrics")?;
    let tally = m.interleaving.context("no interleaving figures")?;
    let scores: Vec<f64> = per_user.values().map(|(s, n)| s / n).collect();
    let (effect, variance) = mean_variance(&scores);
    Ok(InterleavingRun {
        effect,
        sd: variance.sqrt(),
        users: scores.len() as f64,
        preference_rejected: tally.preference.is_some_and(|p| p.p_value < ALPHA),
        joiner_agrees: counts == [tally.wins, tally.losses, tally.ties],
    })
}

/// A request's score for the first team and its outcome index (win, loss, tie).
fn score(served: &Served, clicks: &[u32]) -> (f64, usize) {
    let teams: Vec<Team> = served
        .teams
        .iter()
        .map(|t| if *t == Some(0) { Team::A } else { Team::B })
        .collect();
    let clicked: Vec<usize> = (0..clicks.len()).filter(|&p| clicks[p] > 0).collect();
    let (a, b) = credit(&teams, &clicked);
    match outcome(a, b) {
        Outcome::Win => (1.0, 0),
        Outcome::Loss => (-1.0, 1),
        Outcome::Tie => (0.0, 2),
    }
}

/// Mean and sample variance (ddof 1).
pub fn mean_variance(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if n < 2.0 {
        return (values.first().copied().unwrap_or(0.0), 0.0);
    }
    let mean = values.iter().sum::<f64>() / n;
    let ss = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>();
    (mean, ss / (n - 1.0))
}
