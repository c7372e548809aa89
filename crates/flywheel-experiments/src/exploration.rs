//! A stochastic logging policy over a final list, reporting each slot's propensity.
//!
//! Off-policy evaluation of a new ranker on logged traffic divides by the probability
//! that the logging policy showed the logged item at its slot. This module turns the
//! deterministic final list into such a policy and logs that probability exactly:
//!
//! * **Thompson slot** (optional): one slot always shows an under-exposed pool item, the
//!   argmax of Beta posterior draws over the items with fewer than `max_impressions`
//!   impressions. Its propensity — the probability of being the argmax — has no closed
//!   form and is estimated by Monte Carlo ([`thompson_probabilities`]).
//! * **ε-greedy** on every other slot: each slot is independently replaced with
//!   probability ε by an item drawn uniformly without replacement from the rest of the
//!   pool. A kept item has propensity exactly `1 − ε`, an explored item exactly `ε / M`
//!   for an ε-pool of `M` items.
//!
//! When the ε-pool has fewer items than the slots that could be explored, the draws
//! without replacement could run out, so exploration is switched off for that request
//! and those slots are [`SlotKind::Deterministic`] with propensity 1. Everything is
//! deterministic given the random number generator.

use std::collections::HashSet;
use std::hash::Hash;

use rand::Rng;
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};

/// The fewest Monte Carlo draws [`ExplorationPolicy::validate`] accepts for the Thompson
/// propensity (its standard error is then at most 0.005).
pub const MIN_THOMPSON_DRAWS: usize = 10_000;

/// A candidate that is not in the final list, with its exposure so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolItem<T> {
    /// The candidate.
    pub item: T,
    /// Times it has been shown.
    pub impressions: f64,
    /// Times it has been clicked.
    pub clicks: f64,
}

/// How the final list is randomised before it is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplorationPolicy {
    /// Probability that each non-Thompson slot shows a random pool item, in `[0, 1]`.
    pub epsilon: f64,
    /// The Thompson slot for under-exposed items; `None` to disable it.
    #[serde(default)]
    pub thompson: Option<ThompsonSettings>,
}

/// Where and for whom the Thompson slot works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThompsonSettings {
    /// The 0-based slot it fills; ignored for lists too short to have it.
    pub slot: usize,
    /// A pool item with fewer impressions than this is under-exposed.
    pub max_impressions: f64,
    /// Monte Carlo draws estimating its propensity, at least [`MIN_THOMPSON_DRAWS`].
    pub draws: usize,
}

impl ExplorationPolicy {
    /// Checks that `epsilon` is a finite value in `[0, 1]` and, when the Thompson slot is
    /// set, that `thompson.max_impressions` is a number and `thompson.draws` is at least
    /// [`MIN_THOMPSON_DRAWS`]; the error names the offending field.
    pub fn validate(&self) -> Result<()> {
        if !(self.epsilon.is_finite() && (0.0..=1.0).contains(&self.epsilon)) {
            return Err(invalid_field(
                "epsilon",
                format!("{} must be a finite value in [0, 1]", self.epsilon),
            ));
        }
        self.thompson
            .as_ref()
            .map_or(Ok(()), ThompsonSettings::validate)
    }
}

impl ThompsonSettings {
    fn validate(&self) -> Result<()> {
        if self.max_impressions.is_nan() {
            return Err(invalid_field(
                "thompson.max_impressions",
                "is NaN; give the impression count below which an item is under-exposed".into(),
            ));
        }
        if self.draws < MIN_THOMPSON_DRAWS {
            return Err(invalid_field(
                "thompson.draws",
                format!(
                    "{} is too few Monte Carlo draws; use at least {MIN_THOMPSON_DRAWS}",
                    self.draws
                ),
            ));
        }
        Ok(())
    }
}

fn invalid_field(field: &str, message: String) -> ExperimentError {
    ExperimentError::InvalidInput(format!("`{field}` {message}"))
}

/// Why a slot holds its item, which tells how its propensity was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotKind {
    /// The slot could not have held anything else (propensity 1).
    Deterministic,
    /// The slot was subject to ε-greedy exploration; its propensity is exact.
    EpsilonGreedy,
    /// The Thompson slot; its propensity is a Monte Carlo estimate.
    Thompson,
}

/// One shown slot: its item and the probability that the policy put it there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExploredSlot<T> {
    /// The item shown.
    pub item: T,
    /// The marginal probability that this item is at this slot under the policy.
    pub propensity: f64,
    /// How the slot was filled.
    pub kind: SlotKind,
}

/// Randomises `list` with items of `pool` under `policy` and reports every slot's
/// propensity; the result has the length of `list`.
///
/// The Thompson slot (when set, inside the list, and some pool item has fewer than
/// `max_impressions` impressions) displaces the list's item with the Thompson winner.
/// Every other slot is ε-greedy over the remaining pool, or deterministic when
/// ε = 0 or that pool is smaller than the number of such slots (see the module docs).
/// Pool items that are also in `list`, and repeated pool items, are ignored. Expects a
/// validated policy: an ε outside `[0, 1]` is clamped (NaN counts as 0) and fewer
/// than [`MIN_THOMPSON_DRAWS`] draws are raised to it, so the reported propensities
/// stay those of what was done.
pub fn explore<T: Clone + Eq + Hash>(
    list: &[T],
    pool: &[PoolItem<T>],
    policy: &ExplorationPolicy,
    rng: &mut impl Rng,
) -> Vec<ExploredSlot<T>> {
    let plan = Plan::new(list, pool, policy);
    let mut epsilon_pool = plan.epsilon_pool.clone();
    (0..list.len())
        .map(|slot| match &plan.thompson {
            Some(thompson) if thompson.slot == slot => thompson.fill(rng),
            _ => plan.fill_epsilon_slot(slot, &mut epsilon_pool, rng),
        })
        .collect()
}

/// The exact probability that `policy` puts `item` at `slot` of the explored `list`,
/// for off-policy estimators scoring a candidate's item.
///
/// Returns `None` for the active Thompson slot, whose probability has no closed form
/// (estimate it with [`thompson_probabilities`]), and `Some(0.0)` for a slot past the
/// end of the list. Uses the same pool filtering and clamping as [`explore`].
pub fn propensity_of<T: Clone + Eq + Hash>(
    list: &[T],
    pool: &[PoolItem<T>],
    policy: &ExplorationPolicy,
    slot: usize,
    item: &T,
) -> Option<f64> {
    Plan::new(list, pool, policy).exact_propensity(slot, item)
}

/// Monte Carlo estimate of each candidate's probability of winning Thompson sampling.
///
/// Candidate `j`, given as `(impressions, clicks)`, draws
/// `θ_j ~ Beta(1 + clicks, 1 + max(impressions − clicks, 0))` (negative or non-finite
/// counts count as 0); the result holds the share of `draws` independent draws of the
/// whole vector in which `j` had the largest θ, so it sums to 1. With `draws = 0`
/// there is no estimate and every share is 0.
pub fn thompson_probabilities(
    candidates: &[(f64, f64)],
    draws: usize,
    rng: &mut impl Rng,
) -> Vec<f64> {
    let samplers = posterior_samplers(candidates);
    let mut wins = vec![0_usize; candidates.len()];
    for _ in 0..draws {
        if let Some(winner) = thompson_winner(&samplers, rng) {
            wins[winner] += 1;
        }
    }
    let total = draws.max(1) as f64;
    wins.into_iter().map(|w| w as f64 / total).collect()
}

/// The Beta posterior of each candidate; `None` if its parameters were rejected.
fn posterior_samplers(candidates: &[(f64, f64)]) -> Vec<Option<Beta<f64>>> {
    candidates
        .iter()
        .map(|&(impressions, clicks)| {
            let clicks = non_negative(clicks);
            let misses = non_negative(non_negative(impressions) - clicks);
            Beta::new(1.0 + clicks, 1.0 + misses).ok()
        })
        .collect()
}

/// `x` when it is finite and positive, otherwise 0.
fn non_negative(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 {
        x
    } else {
        0.0
    }
}

/// The index of the largest draw (the first on an exact tie); `None` without samplers.
fn thompson_winner(samplers: &[Option<Beta<f64>>], rng: &mut impl Rng) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (index, sampler) in samplers.iter().enumerate() {
        let theta = sampler.map_or(f64::NEG_INFINITY, |beta| beta.sample(rng));
        if best.is_none_or(|(_, top)| theta > top) {
            best = Some((index, theta));
        }
    }
    best.map(|(index, _)| index)
}

/// The active Thompson slot: where it is, who competes for it, how many draws.
struct ThompsonSlot<'a, T> {
    slot: usize,
    candidates: Vec<&'a PoolItem<T>>,
    draws: usize,
}

impl<T: Clone> ThompsonSlot<'_, T> {
    /// Picks the Thompson winner, then estimates its propensity from fresh draws.
    fn fill(&self, rng: &mut impl Rng) -> ExploredSlot<T> {
        let exposure = self.exposure();
        let winner = self.pick(&exposure, rng);
        let probabilities = thompson_probabilities(&exposure, self.draws, rng);
        ExploredSlot {
            item: self.candidates[winner].item.clone(),
            propensity: probabilities[winner],
            kind: SlotKind::Thompson,
        }
    }

    fn exposure(&self) -> Vec<(f64, f64)> {
        self.candidates
            .iter()
            .map(|c| (c.impressions, c.clicks))
            .collect()
    }

    /// The index of the candidate winning one Thompson draw.
    fn pick(&self, exposure: &[(f64, f64)], rng: &mut impl Rng) -> usize {
        // `candidates` is never empty for an active slot, so a winner always exists.
        thompson_winner(&posterior_samplers(exposure), rng).unwrap_or(0)
    }
}

/// What the policy will do with one request's inputs, shared by [`explore`] and
/// [`propensity_of`] so that the propensities describe exactly what is done.
struct Plan<'a, T> {
    list: &'a [T],
    thompson: Option<ThompsonSlot<'a, T>>,
    epsilon_pool: Vec<&'a T>,
    /// The ε in force: 0 when exploration is off for this request.
    epsilon: f64,
}

impl<'a, T: Clone + Eq + Hash> Plan<'a, T> {
    fn new(list: &'a [T], pool: &'a [PoolItem<T>], policy: &ExplorationPolicy) -> Self {
        let pool = distinct_outside_list(list, pool);
        let under_exposed = |p: &PoolItem<T>| {
            policy
                .thompson
                .as_ref()
                .is_some_and(|t| p.impressions < t.max_impressions)
        };
        let (thompson_pool, rest): (Vec<_>, Vec<_>) =
            pool.into_iter().partition(|p| under_exposed(p));
        let thompson = policy
            .thompson
            .as_ref()
            .filter(|t| t.slot < list.len() && !thompson_pool.is_empty())
            .map(|t| ThompsonSlot {
                slot: t.slot,
                candidates: thompson_pool.clone(),
                draws: t.draws.max(MIN_THOMPSON_DRAWS),
            });
        // Without an active Thompson slot its would-be candidates join the ε-pool.
        let epsilon_pool: Vec<&T> = if thompson.is_some() {
            rest.iter().map(|p| &p.item).collect()
        } else {
            thompson_pool.iter().chain(&rest).map(|p| &p.item).collect()
        };
        let explorable_slots = list.len() - usize::from(thompson.is_some());
        let epsilon = if epsilon_pool.len() < explorable_slots {
            0.0
        } else {
            clamped_epsilon(policy.epsilon)
        };
        Self {
            list,
            thompson,
            epsilon_pool,
            epsilon,
        }
    }

    fn thompson_slot(&self) -> Option<usize> {
        self.thompson.as_ref().map(|t| t.slot)
    }

    /// Keeps the list's item or, with probability ε, draws one from `remaining`.
    fn fill_epsilon_slot(
        &self,
        slot: usize,
        remaining: &mut Vec<&'a T>,
        rng: &mut impl Rng,
    ) -> ExploredSlot<T> {
        let kept = &self.list[slot];
        if self.epsilon == 0.0 {
            return slot_of(kept, 1.0, SlotKind::Deterministic);
        }
        if rng.gen::<f64>() < self.epsilon {
            if let Some(drawn) = draw_without_replacement(remaining, rng) {
                let propensity = self.epsilon / self.epsilon_pool.len() as f64;
                return slot_of(drawn, propensity, SlotKind::EpsilonGreedy);
            }
        }
        slot_of(kept, 1.0 - self.epsilon, SlotKind::EpsilonGreedy)
    }

    fn exact_propensity(&self, slot: usize, item: &T) -> Option<f64> {
        let listed = self.list.get(slot)?;
        if self.thompson_slot() == Some(slot) {
            return None;
        }
        let probability = if listed == item {
            1.0 - self.epsilon
        } else if self.epsilon > 0.0 && self.epsilon_pool.contains(&item) {
            self.epsilon / self.epsilon_pool.len() as f64
        } else {
            0.0
        };
        Some(probability)
    }
}

/// Pool items in pool order, without items of `list` and without repeats.
fn distinct_outside_list<'a, T: Eq + Hash>(
    list: &'a [T],
    pool: &'a [PoolItem<T>],
) -> Vec<&'a PoolItem<T>> {
    let mut seen: HashSet<&T> = list.iter().collect();
    pool.iter().filter(|p| seen.insert(&p.item)).collect()
}

/// ε clamped to `[0, 1]`, NaN counting as 0.
fn clamped_epsilon(epsilon: f64) -> f64 {
    if epsilon.is_nan() {
        0.0
    } else {
        epsilon.clamp(0.0, 1.0)
    }
}

/// Removes and returns a uniformly chosen element; `None` when `remaining` is empty.
fn draw_without_replacement<'a, T>(
    remaining: &mut Vec<&'a T>,
    rng: &mut impl Rng,
) -> Option<&'a T> {
    if remaining.is_empty() {
        return None;
    }
    let index = rng.gen_range(0..remaining.len());
    Some(remaining.swap_remove(index))
}

fn slot_of<T: Clone>(item: &T, propensity: f64, kind: SlotKind) -> ExploredSlot<T> {
    ExploredSlot {
        item: item.clone(),
        propensity,
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use statrs::distribution::{Continuous, ContinuousCDF};
    use std::collections::HashMap;

    const LIST: [u32; 4] = [0, 1, 2, 3];

    fn pool_item(item: u32, impressions: f64, clicks: f64) -> PoolItem<u32> {
        PoolItem {
            item,
            impressions,
            clicks,
        }
    }

    fn well_exposed_pool() -> Vec<PoolItem<u32>> {
        (10..16).map(|i| pool_item(i, 500.0, 10.0)).collect()
    }

    /// Three under-exposed items (below 50 impressions) and four well-exposed ones.
    fn mixed_pool() -> Vec<PoolItem<u32>> {
        vec![
            pool_item(20, 0.0, 0.0),
            pool_item(30, 500.0, 20.0),
            pool_item(21, 4.0, 2.0),
            pool_item(31, 300.0, 10.0),
            pool_item(22, 10.0, 1.0),
            pool_item(32, 1000.0, 90.0),
            pool_item(33, 60.0, 3.0),
        ]
    }

    fn epsilon_only(epsilon: f64) -> ExplorationPolicy {
        ExplorationPolicy {
            epsilon,
            thompson: None,
        }
    }

    fn with_thompson(epsilon: f64, slot: usize) -> ExplorationPolicy {
        ExplorationPolicy {
            epsilon,
            thompson: Some(ThompsonSettings {
                slot,
                max_impressions: 50.0,
                draws: MIN_THOMPSON_DRAWS,
            }),
        }
    }

    /// The share of requests showing each (slot, item).
    type Frequencies = HashMap<(usize, u32), f64>;

    /// How often each (slot, item) appeared over `runs` requests, checking on the way
    /// that exact kinds report the same propensity every time they show a pair.
    fn tally(
        pool: &[PoolItem<u32>],
        policy: &ExplorationPolicy,
        runs: usize,
        seed: u64,
    ) -> (Frequencies, Vec<ExploredSlot<u32>>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut counts: HashMap<(usize, u32), f64> = HashMap::new();
        let mut exact: HashMap<(usize, u32), f64> = HashMap::new();
        let mut thompson_slots = Vec::new();
        for _ in 0..runs {
            let shown = explore(&LIST, pool, policy, &mut rng);
            assert_eq!(shown.len(), LIST.len());
            let distinct: HashSet<u32> = shown.iter().map(|s| s.item).collect();
            assert_eq!(
                distinct.len(),
                shown.len(),
                "an item shown twice: {shown:?}"
            );
            for (slot, s) in shown.into_iter().enumerate() {
                *counts.entry((slot, s.item)).or_default() += 1.0;
                if s.kind == SlotKind::Thompson {
                    thompson_slots.push(s);
                } else {
                    let first = *exact.entry((slot, s.item)).or_insert(s.propensity);
                    assert_eq!(first, s.propensity, "slot {slot} item {}", s.item);
                }
            }
        }
        for (pair, reported) in &exact {
            let expected = propensity_of(&LIST, pool, policy, pair.0, &pair.1);
            assert_eq!(Some(*reported), expected, "{pair:?}");
        }
        let frequencies = counts.into_iter().map(|(k, c)| (k, c / runs as f64));
        (frequencies.collect(), thompson_slots)
    }

    fn all_items(pool: &[PoolItem<u32>]) -> Vec<u32> {
        LIST.iter()
            .copied()
            .chain(pool.iter().map(|p| p.item))
            .collect()
    }

    fn assert_within_standard_errors(frequency: f64, p: f64, n: f64, what: &str) {
        let tolerance = 4.0 * (p * (1.0 - p) / n).sqrt();
        assert!(
            (frequency - p).abs() <= tolerance,
            "{what}: frequency {frequency} vs propensity {p} (tolerance {tolerance})"
        );
    }

    /// Compares every exact (slot, item) propensity with its empirical frequency and
    /// checks that each exact slot's propensities sum to 1.
    fn check_exact_slots(
        pool: &[PoolItem<u32>],
        policy: &ExplorationPolicy,
        frequencies: &Frequencies,
        runs: usize,
    ) {
        for (slot, listed) in LIST.iter().enumerate() {
            let mut total = 0.0;
            for item in all_items(pool) {
                let Some(p) = propensity_of(&LIST, pool, policy, slot, &item) else {
                    continue;
                };
                total += p;
                let frequency = frequencies.get(&(slot, item)).copied().unwrap_or(0.0);
                let what = format!("slot {slot} item {item}");
                assert_within_standard_errors(frequency, p, runs as f64, &what);
            }
            if propensity_of(&LIST, pool, policy, slot, listed).is_some() {
                assert!((total - 1.0).abs() < 1e-12, "slot {slot} sums to {total}");
            }
        }
    }

    #[test]
    fn epsilon_greedy_frequencies_match_exact_propensities() {
        let pool = well_exposed_pool();
        let policy = epsilon_only(0.3);
        let runs = 200_000;
        let (frequencies, thompson) = tally(&pool, &policy, runs, 11);
        assert!(thompson.is_empty());
        check_exact_slots(&pool, &policy, &frequencies, runs);
        let kept = propensity_of(&LIST, &pool, &policy, 2, &2);
        assert_eq!(kept, Some(1.0 - 0.3));
        let explored = propensity_of(&LIST, &pool, &policy, 2, &13).expect("exact");
        assert!((explored - 0.3 / 6.0).abs() < 1e-15);
    }

    /// P(candidate j has the largest Beta draw) = ∫ f_j(x) Π_{k≠j} F_k(x) dx, by
    /// Simpson's rule on [0, 1] — an answer independent of any sampling.
    fn thompson_truth(candidates: &[(f64, f64)]) -> Vec<f64> {
        let betas: Vec<statrs::distribution::Beta> = candidates
            .iter()
            .map(|&(n, c)| statrs::distribution::Beta::new(1.0 + c, 1.0 + n - c).expect("beta"))
            .collect();
        let intervals = 4_000;
        let h = 1.0 / intervals as f64;
        let integrand = |j: usize, x: f64| {
            let others: f64 = (0..betas.len())
                .filter(|&k| k != j)
                .map(|k| betas[k].cdf(x))
                .product();
            betas[j].pdf(x) * others
        };
        (0..betas.len())
            .map(|j| {
                let inner: f64 = (1..intervals)
                    .map(|i| {
                        let weight = if i % 2 == 1 { 4.0 } else { 2.0 };
                        weight * integrand(j, i as f64 * h)
                    })
                    .sum();
                (integrand(j, 0.0) + inner + integrand(j, 1.0)) * h / 3.0
            })
            .collect()
    }

    const UNDER_EXPOSED: [(u32, f64, f64); 3] = [(20, 0.0, 0.0), (21, 4.0, 2.0), (22, 10.0, 1.0)];

    fn under_exposed_truth() -> HashMap<u32, f64> {
        let exposure: Vec<(f64, f64)> = UNDER_EXPOSED.iter().map(|&(_, n, c)| (n, c)).collect();
        let truth = thompson_truth(&exposure);
        UNDER_EXPOSED.iter().map(|u| u.0).zip(truth).collect()
    }

    #[test]
    fn thompson_probabilities_match_the_integral() {
        let exposure: Vec<(f64, f64)> = UNDER_EXPOSED.iter().map(|&(_, n, c)| (n, c)).collect();
        let truth = thompson_truth(&exposure);
        assert!((truth.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{truth:?}");
        let draws = 200_000;
        let mut rng = StdRng::seed_from_u64(5);
        let estimate = thompson_probabilities(&exposure, draws, &mut rng);
        assert!((estimate.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        for (p, e) in truth.iter().zip(&estimate) {
            assert_within_standard_errors(*e, *p, draws as f64, "thompson estimate");
        }
        assert!(thompson_probabilities(&[], 100, &mut rng).is_empty());
        assert_eq!(
            thompson_probabilities(&[(1.0, 0.0)], 0, &mut rng),
            vec![0.0]
        );
        assert_eq!(
            thompson_probabilities(&[(1.0, 0.0)], 50, &mut rng),
            vec![1.0]
        );
    }

    #[test]
    fn thompson_slot_frequencies_match_its_propensities() {
        let pool = mixed_pool();
        let policy = with_thompson(0.25, 1);
        let draws = MIN_THOMPSON_DRAWS as f64;
        let runs = 800;
        let (frequencies, thompson) = tally(&pool, &policy, runs, 23);
        assert_eq!(thompson.len(), runs, "slot 1 is always the Thompson slot");
        assert_eq!(propensity_of(&LIST, &pool, &policy, 1, &20), None);
        assert_eq!(
            frequencies.get(&(1, 1)),
            None,
            "the displaced item never shows"
        );
        let truth = under_exposed_truth();
        for (item, p) in &truth {
            let frequency = frequencies.get(&(1, *item)).copied().unwrap_or(0.0);
            assert_within_standard_errors(frequency, *p, runs as f64, "thompson slot");
            let reported: Vec<f64> = thompson
                .iter()
                .filter(|s| s.item == *item)
                .map(|s| s.propensity)
                .collect();
            let mean = reported.iter().sum::<f64>() / reported.len() as f64;
            let n = reported.len() as f64 * draws;
            assert_within_standard_errors(mean, *p, n, "mean reported propensity");
            // Every single estimate uses `draws` draws; 5 SE keeps 800 checks honest.
            let worst = 5.0 * (p * (1.0 - p) / draws).sqrt();
            assert!(reported.iter().all(|r| (r - p).abs() <= worst), "{item}");
        }
        check_exact_slots(&pool, &policy, &frequencies, runs);
        let explored = propensity_of(&LIST, &pool, &policy, 0, &32).expect("exact");
        assert!((explored - 0.25 / 4.0).abs() < 1e-15, "ε-pool excludes U");
        assert_eq!(propensity_of(&LIST, &pool, &policy, 0, &21), Some(0.0));
    }

    #[test]
    fn thompson_picks_follow_the_integral() {
        // The pick explore makes at the Thompson slot, repeated often enough for a tight
        // check (the full explore loop above is limited by its Monte Carlo estimates).
        let pool = mixed_pool();
        let plan = Plan::new(&LIST, &pool, &with_thompson(0.25, 1));
        let slot = plan.thompson.expect("active Thompson slot");
        let exposure = slot.exposure();
        let mut rng = StdRng::seed_from_u64(29);
        let runs = 200_000;
        let mut counts: HashMap<u32, f64> = HashMap::new();
        for _ in 0..runs {
            let winner = slot.pick(&exposure, &mut rng);
            *counts.entry(slot.candidates[winner].item).or_default() += 1.0;
        }
        for (item, p) in under_exposed_truth() {
            let frequency = counts.get(&item).copied().unwrap_or(0.0) / runs as f64;
            assert_within_standard_errors(frequency, p, runs as f64, "thompson pick");
        }
    }

    #[test]
    fn zero_epsilon_keeps_the_list() {
        let mut rng = StdRng::seed_from_u64(1);
        let shown = explore(&LIST, &well_exposed_pool(), &epsilon_only(0.0), &mut rng);
        let expected: Vec<ExploredSlot<u32>> = LIST
            .iter()
            .map(|&item| slot_of(&item, 1.0, SlotKind::Deterministic))
            .collect();
        assert_eq!(shown, expected);
        assert!(explore(&[], &well_exposed_pool(), &epsilon_only(0.5), &mut rng).is_empty());
    }

    #[test]
    fn a_small_pool_switches_exploration_off() {
        let mut rng = StdRng::seed_from_u64(2);
        let pool: Vec<PoolItem<u32>> = well_exposed_pool().into_iter().take(3).collect();
        let policy = epsilon_only(0.9);
        for _ in 0..50 {
            let shown = explore(&LIST, &pool, &policy, &mut rng);
            let items: Vec<u32> = shown.iter().map(|s| s.item).collect();
            assert_eq!(items, LIST);
            assert!(shown
                .iter()
                .all(|s| s.kind == SlotKind::Deterministic && s.propensity == 1.0));
        }
        assert_eq!(propensity_of(&LIST, &pool, &policy, 0, &0), Some(1.0));
        assert_eq!(propensity_of(&LIST, &pool, &policy, 0, &10), Some(0.0));
        assert_eq!(propensity_of(&LIST, &pool, &policy, 9, &0), None);
        // With Thompson on slot 0 only three slots can explore: three ε-items suffice.
        let thompson_pool: Vec<PoolItem<u32>> = pool
            .iter()
            .cloned()
            .chain([pool_item(20, 0.0, 0.0)])
            .collect();
        let on = propensity_of(&LIST, &thompson_pool, &with_thompson(0.9, 0), 1, &1);
        assert!(on.is_some_and(|p| (p - 0.1).abs() < 1e-12), "{on:?}");
    }

    #[test]
    fn thompson_needs_a_slot_in_the_list_and_an_under_exposed_item() {
        let mut rng = StdRng::seed_from_u64(3);
        let beyond = with_thompson(0.0, 4);
        let shown = explore(&LIST, &mixed_pool(), &beyond, &mut rng);
        assert!(shown.iter().all(|s| s.kind == SlotKind::Deterministic));
        let exposed = well_exposed_pool();
        let shown = explore(&LIST, &exposed, &with_thompson(0.0, 1), &mut rng);
        assert!(shown.iter().all(|s| s.kind == SlotKind::Deterministic));
        // Inactive Thompson: the under-exposed items join the ε-pool (7 items).
        let p = propensity_of(&LIST, &mixed_pool(), &with_thompson(0.5, 9), 0, &20);
        assert!(p.is_some_and(|p| (p - 0.5 / 7.0).abs() < 1e-15), "{p:?}");
    }

    #[test]
    fn pool_items_in_the_list_or_repeated_are_ignored() {
        let pool = vec![
            pool_item(2, 500.0, 1.0),
            pool_item(10, 500.0, 1.0),
            pool_item(10, 500.0, 1.0),
            pool_item(11, 500.0, 1.0),
            pool_item(12, 500.0, 1.0),
            pool_item(13, 500.0, 1.0),
        ];
        let policy = epsilon_only(0.2);
        assert_eq!(propensity_of(&LIST, &pool, &policy, 0, &2), Some(0.0));
        let p = propensity_of(&LIST, &pool, &policy, 0, &10).expect("exact");
        assert!((p - 0.2 / 4.0).abs() < 1e-15);
    }

    #[test]
    fn validate_names_the_bad_field() {
        assert!(epsilon_only(0.0).validate().is_ok());
        assert!(with_thompson(1.0, 0).validate().is_ok());
        for epsilon in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let err = epsilon_only(epsilon).validate().expect_err("bad epsilon");
            assert!(err.to_string().contains("`epsilon`"), "{err}");
        }
        let mut policy = with_thompson(0.1, 0);
        if let Some(t) = policy.thompson.as_mut() {
            t.draws = MIN_THOMPSON_DRAWS - 1;
        }
        let err = policy.validate().expect_err("too few draws");
        assert!(err.to_string().contains("`thompson.draws`"), "{err}");
        let mut policy = with_thompson(0.1, 0);
        if let Some(t) = policy.thompson.as_mut() {
            t.max_impressions = f64::NAN;
        }
        let err = policy.validate().expect_err("NaN threshold");
        assert!(
            err.to_string().contains("`thompson.max_impressions`"),
            "{err}"
        );
    }

    #[test]
    fn policy_json_is_strict() {
        let policy: ExplorationPolicy =
            serde_json::from_str(r#"{"epsilon": 0.1}"#).expect("thompson is optional");
        assert_eq!(policy, epsilon_only(0.1));
        let json = serde_json::to_string(&with_thompson(0.1, 2)).expect("serialise");
        let back: ExplorationPolicy = serde_json::from_str(&json).expect("round trip");
        assert_eq!(back, with_thompson(0.1, 2));
        assert!(serde_json::from_str::<ExplorationPolicy>(r#"{"epsilon":0.1,"eps":1}"#).is_err());
        let typo = r#"{"epsilon":0.1,"thompson":{"slot":0,"max_impressions":5,"draw":10000}}"#;
        assert!(serde_json::from_str::<ExplorationPolicy>(typo).is_err());
    }
}
