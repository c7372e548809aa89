//! Team Draft Interleaving (Radlinski, Kurup and Joachims, 2008) and its preference test.
//!
//! Two rankers A and B are compared inside one result list: like captains picking
//! players, the team with fewer picks (a fair coin on a tie) adds its best item not yet
//! shown. A click is credited to the team that contributed the clicked item; a request
//! is a win for A when A's items drew more clicks than B's. [`preference_test`] turns the
//! per-request wins, losses and ties into a preference score with a normal interval.

use std::collections::HashSet;
use std::hash::Hash;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::comparison::check_alpha;
use crate::dist::{normal_ppf, normal_two_sided_p};
use crate::error::{ExperimentError, Result};

/// The ranker that contributed an item to an interleaved list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Team {
    /// Ranker A (serialised as `"a"`).
    A,
    /// Ranker B (serialised as `"b"`).
    B,
}

/// One team's draft state: its ranking, a cursor into it and how many items it picked.
struct Drafter<'a, T> {
    ranking: &'a [T],
    next: usize,
    picks: usize,
}

impl<'a, T: Eq + Hash> Drafter<'a, T> {
    fn new(ranking: &'a [T]) -> Self {
        Self {
            ranking,
            next: 0,
            picks: 0,
        }
    }

    /// Moves the cursor past items already in the output; true if an item is left.
    fn has_unpicked(&mut self, picked: &HashSet<&'a T>) -> bool {
        while self.next < self.ranking.len() && picked.contains(&self.ranking[self.next]) {
            self.next += 1;
        }
        self.next < self.ranking.len()
    }

    /// The highest-ranked unpicked item; call only after `has_unpicked` returned true.
    fn take(&mut self) -> &'a T {
        let item = &self.ranking[self.next];
        self.next += 1;
        self.picks += 1;
        item
    }
}

/// Interleaves rankings `a` and `b` into at most `count` distinct items, each labelled
/// with the team that contributed it.
///
/// While the output is shorter than `count` and an unpicked item remains, the team with
/// fewer picks picks next (a fair coin from `rng` breaks ties) and contributes its
/// highest-ranked item not yet in the output; once one ranking is exhausted the other
/// team continues alone. Each team's items therefore appear in its own ranking's order.
pub fn team_draft<T: Clone + Eq + Hash>(
    a: &[T],
    b: &[T],
    count: usize,
    rng: &mut impl Rng,
) -> Vec<(T, Team)> {
    let mut team_a = Drafter::new(a);
    let mut team_b = Drafter::new(b);
    let mut picked: HashSet<&T> = HashSet::new();
    let mut out = Vec::with_capacity(count.min(a.len() + b.len()));
    while out.len() < count {
        let a_open = team_a.has_unpicked(&picked);
        let b_open = team_b.has_unpicked(&picked);
        let team = match (a_open, b_open) {
            (false, false) => break,
            (true, false) => Team::A,
            (false, true) => Team::B,
            (true, true) => next_team(team_a.picks, team_b.picks, rng),
        };
        let drafter = match team {
            Team::A => &mut team_a,
            Team::B => &mut team_b,
        };
        let item = drafter.take();
        picked.insert(item);
        out.push((item.clone(), team));
    }
    out
}

/// The team with fewer picks, or a fair coin when both have picked equally often.
fn next_team(a_picks: usize, b_picks: usize, rng: &mut impl Rng) -> Team {
    match a_picks.cmp(&b_picks) {
        std::cmp::Ordering::Less => Team::A,
        std::cmp::Ordering::Greater => Team::B,
        std::cmp::Ordering::Equal if rng.gen_bool(0.5) => Team::A,
        std::cmp::Ordering::Equal => Team::B,
    }
}

/// Clicks credited to A and to B, given the team of each shown position.
///
/// A position outside `teams` is ignored and a position clicked twice counts once.
pub fn credit(teams: &[Team], clicked_positions: &[usize]) -> (u32, u32) {
    let distinct: HashSet<usize> = clicked_positions.iter().copied().collect();
    let mut a_clicks = 0;
    let mut b_clicks = 0;
    for team in distinct.into_iter().filter_map(|p| teams.get(p)) {
        match team {
            Team::A => a_clicks += 1,
            Team::B => b_clicks += 1,
        }
    }
    (a_clicks, b_clicks)
}

/// The result of one interleaved request, from A's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A's items drew more clicks than B's.
    Win,
    /// B's items drew more clicks than A's.
    Loss,
    /// Both drew the same number of clicks (including none).
    Tie,
}

/// Win, loss or tie for A given the clicks credited to each team.
pub fn outcome(a_clicks: u32, b_clicks: u32) -> Outcome {
    match a_clicks.cmp(&b_clicks) {
        std::cmp::Ordering::Greater => Outcome::Win,
        std::cmp::Ordering::Less => Outcome::Loss,
        std::cmp::Ordering::Equal => Outcome::Tie,
    }
}

/// A's preference over B across interleaved requests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PreferenceResult {
    /// Requests A won.
    pub wins: u64,
    /// Requests A lost.
    pub losses: u64,
    /// Tied requests (including requests without clicks).
    pub ties: u64,
    /// `(wins − losses) / (wins + losses + ties)`: the mean per-request score
    /// (+1 win, −1 loss, 0 tie); positive means A is preferred.
    pub preference: f64,
    /// Lower end of the `1 − alpha` normal interval for `preference`.
    pub ci_low: f64,
    /// Upper end of the interval.
    pub ci_high: f64,
    /// Two-sided normal p-value of `preference / standard error` against no preference.
    pub p_value: f64,
}

/// Tests whether A is preferred over B from per-request win, loss and tie counts.
///
/// The scores +1/−1/0 of the `n = wins + losses + ties` requests have mean
/// `(wins − losses) / n` and sample variance (ddof 1)
/// `(n·(wins + losses) − (wins − losses)²) / (n·(n − 1))`, computed exactly from the
/// counts. The interval is `mean ± z₁₋α/₂ · sd/√n`. When the variance is zero every
/// request scored the same: all ties give preference 0, interval `[0, 0]` and p = 1;
/// all wins (or all losses) give a zero-width interval at ±1 and p = 0.
/// Errors when `n < 2` or `alpha` is not strictly between 0 and 1.
pub fn preference_test(wins: u64, losses: u64, ties: u64, alpha: f64) -> Result<PreferenceResult> {
    check_alpha(alpha)?;
    let n = total_requests(wins, losses, ties)?;
    let difference = i128::from(wins) - i128::from(losses);
    let decided = i128::from(wins) + i128::from(losses);
    let n_wide = i128::from(n);
    let squared_deviations = n_wide * decided - difference * difference;
    let n_f = n as f64;
    let preference = difference as f64 / n_f;
    let standard_error = (squared_deviations as f64 / (n_f * n_f * (n_f - 1.0))).sqrt();
    let (ci_low, ci_high, p_value) = if squared_deviations == 0 {
        let p_value = if difference == 0 { 1.0 } else { 0.0 };
        (preference, preference, p_value)
    } else {
        let half_width = normal_ppf(1.0 - alpha / 2.0)? * standard_error;
        let p_value = normal_two_sided_p(preference / standard_error);
        (preference - half_width, preference + half_width, p_value)
    };
    Ok(PreferenceResult {
        wins,
        losses,
        ties,
        preference,
        ci_low,
        ci_high,
        p_value,
    })
}

/// `wins + losses + ties`, rejecting fewer than two requests or an overflowing sum.
fn total_requests(wins: u64, losses: u64, ties: u64) -> Result<u64> {
    let n = wins
        .checked_add(losses)
        .and_then(|s| s.checked_add(ties))
        .ok_or_else(|| {
            ExperimentError::InvalidInput("wins + losses + ties overflows u64".into())
        })?;
    if n < 2 {
        return Err(ExperimentError::InvalidInput(format!(
            "{n} interleaved request(s); the preference test needs at least 2"
        )));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn letters(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    fn team_items(out: &[(char, Team)], team: Team) -> Vec<char> {
        out.iter()
            .filter(|(_, t)| *t == team)
            .map(|(c, _)| *c)
            .collect()
    }

    fn is_subsequence(sub: &[char], of: &[char]) -> bool {
        let mut rest = of.iter();
        sub.iter().all(|c| rest.any(|o| o == c))
    }

    #[test]
    fn team_draft_is_a_fair_deduplicated_draft() {
        let a = letters("abcdefghij");
        let b = letters("cbakdlemfn");
        for seed in 0..200 {
            let mut rng = StdRng::seed_from_u64(seed);
            let out = team_draft(&a, &b, 8, &mut rng);
            assert_eq!(out.len(), 8);
            let distinct: HashSet<char> = out.iter().map(|(c, _)| *c).collect();
            assert_eq!(distinct.len(), out.len(), "duplicates in {out:?}");
            let from_a = team_items(&out, Team::A);
            let from_b = team_items(&out, Team::B);
            assert!(is_subsequence(&from_a, &a), "A out of order: {out:?}");
            assert!(is_subsequence(&from_b, &b), "B out of order: {out:?}");
            assert!(from_a.len().abs_diff(from_b.len()) <= 1, "{out:?}");
        }
    }

    #[test]
    fn team_draft_continues_when_one_list_runs_out() {
        let mut rng = StdRng::seed_from_u64(7);
        let out = team_draft(&letters("x"), &letters("abcd"), 10, &mut rng);
        assert_eq!(out.len(), 5);
        assert_eq!(team_items(&out, Team::A), vec!['x']);
        assert_eq!(team_items(&out, Team::B), letters("abcd"));
        assert!(team_draft(&letters(""), &letters(""), 3, &mut rng).is_empty());
        assert!(team_draft(&letters("ab"), &letters("ab"), 0, &mut rng).is_empty());
    }

    #[test]
    fn identical_lists_tie_in_expectation() {
        let list = letters("abcdefgh");
        let (mut wins, mut losses) = (0_i64, 0_i64);
        let requests = 4_000;
        for seed in 0..requests {
            let mut rng = StdRng::seed_from_u64(seed);
            let out = team_draft(&list, &list, 6, &mut rng);
            let shown: Vec<char> = out.iter().map(|(c, _)| *c).collect();
            assert_eq!(shown, letters("abcdef"), "identical lists keep their order");
            let teams: Vec<Team> = out.iter().map(|(_, t)| *t).collect();
            let (a_clicks, b_clicks) = credit(&teams, &[0, 2]);
            match outcome(a_clicks, b_clicks) {
                Outcome::Win => wins += 1,
                Outcome::Loss => losses += 1,
                Outcome::Tie => {}
            }
        }
        // Each request scores +1, -1 or 0, so the sum has sd at most sqrt(requests).
        let bound = 4.0 * (requests as f64).sqrt();
        assert!(((wins - losses) as f64).abs() < bound, "{wins} vs {losses}");
        assert!(wins > 0 && losses > 0);
    }

    #[test]
    fn credit_ignores_out_of_range_and_repeated_positions() {
        let teams = [Team::A, Team::B, Team::A];
        assert_eq!(credit(&teams, &[0, 0, 1, 7, 2, 2]), (2, 1));
        assert_eq!(credit(&teams, &[]), (0, 0));
        assert_eq!(credit(&[], &[0, 1]), (0, 0));
        assert_eq!(outcome(2, 1), Outcome::Win);
        assert_eq!(outcome(0, 1), Outcome::Loss);
        assert_eq!(outcome(0, 0), Outcome::Tie);
    }

    #[test]
    fn preference_test_matches_a_hand_computation() {
        // 6 wins, 2 losses, 2 ties: n = 10, mean = (6 - 2) / 10 = 0.4.
        // Sum of squared deviations = 6·0.6² + 2·1.4² + 2·0.4² = 2.16 + 3.92 + 0.32 = 6.4,
        // so the sample variance is 6.4 / 9 and se = sqrt(6.4 / 9 / 10) = sqrt(16 / 225)
        // = 4/15 = 0.266667.
        // z = 0.4 / (4/15) = 1.5, p = 2·(1 − Φ(1.5)) = 0.1336144;
        // 95% interval 0.4 ± 1.959964·4/15 = 0.4 ± 0.5226572 = [-0.1226572, 0.9226572].
        let r = preference_test(6, 2, 2, 0.05).expect("valid counts");
        assert!((r.preference - 0.4).abs() < 1e-15);
        assert!((r.p_value - 0.133_614_4).abs() < 1e-6, "{}", r.p_value);
        assert!((r.ci_low + 0.122_657_2).abs() < 1e-6, "{}", r.ci_low);
        assert!((r.ci_high - 0.922_657_2).abs() < 1e-6, "{}", r.ci_high);
        assert_eq!((r.wins, r.losses, r.ties), (6, 2, 2));
    }

    #[test]
    fn preference_test_degenerate_and_invalid_inputs() {
        let ties = preference_test(0, 0, 5, 0.05).expect("all ties");
        assert_eq!(
            (ties.preference, ties.ci_low, ties.ci_high),
            (0.0, 0.0, 0.0)
        );
        assert_eq!(ties.p_value, 1.0);
        let sweep = preference_test(4, 0, 0, 0.05).expect("all wins");
        assert_eq!(
            (sweep.preference, sweep.ci_low, sweep.ci_high),
            (1.0, 1.0, 1.0)
        );
        assert_eq!(sweep.p_value, 0.0);
        assert!(preference_test(1, 0, 0, 0.05).is_err());
        assert!(preference_test(0, 0, 0, 0.05).is_err());
        assert!(preference_test(5, 5, 5, 0.0).is_err());
        assert!(preference_test(5, 5, 5, f64::NAN).is_err());
        assert!(preference_test(u64::MAX, 1, 0, 0.05).is_err());
    }

    #[test]
    fn team_serialises_in_snake_case() {
        let json = serde_json::to_string(&[Team::A, Team::B]).expect("serialise");
        assert_eq!(json, r#"["a","b"]"#);
        let back: Vec<Team> = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, vec![Team::A, Team::B]);
    }
}
