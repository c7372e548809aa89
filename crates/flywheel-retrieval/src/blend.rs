//! Blending channel lists into one candidate set: per-channel quotas, deduplication
//! (the first channel to propose an item keeps it), leftover quota redistributed.

use std::collections::{BTreeMap, HashMap, HashSet};

use flywheel_core::{Candidate, Channel, ItemId};
use serde::{Deserialize, Serialize};

/// One channel's ranked proposals: `(item, channel score, source item)`, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelList {
    /// The channel that produced the list.
    pub channel: Channel,
    /// The proposals, best first; the source item says "because you viewed X".
    pub items: Vec<(ItemId, f32, Option<ItemId>)>,
}

impl ChannelList {
    /// A list without source items, from `(item, score)` pairs.
    pub fn from_scored(channel: Channel, items: Vec<(ItemId, f32)>) -> Self {
        let items = items
            .into_iter()
            .map(|(id, score)| (id, score, None))
            .collect();
        ChannelList { channel, items }
    }
}

/// How many candidates each channel may contribute, and how many in total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlendConfig {
    /// Slots per channel. Channels without an entry get no reserved slot but may receive
    /// leftover slots. When the quotas add up to more than `total` they are scaled down
    /// proportionally (largest remainder).
    pub quotas: BTreeMap<Channel, usize>,
    /// The number of candidates wanted.
    pub total: usize,
}

/// Blends channel lists into at most `config.total` distinct candidates.
///
/// 1. Each list, in the order given, takes up to its quota of items not yet taken; an
///    item proposed by several channels stays with the first list that took it.
/// 2. Slots a channel could not fill are handed out round-robin over the lists (in the
///    order given), each taking its next untaken item, until `total` or exhaustion.
/// 3. The result interleaves channels in proportion to what each contributed (a
///    channel's `r`-th of `m` picks sorts at `(r + 1) / m`), so a ranker-less fallback
///    still shows a mix. `channel_rank` is the item's 0-based position in its own list.
pub fn blend(lists: Vec<ChannelList>, config: &BlendConfig) -> Vec<Candidate> {
    let quotas = effective_quotas(&lists, config);
    let mut taken: HashSet<ItemId> = HashSet::new();
    let mut cursors = vec![0usize; lists.len()];
    let mut picks: Vec<Vec<Candidate>> = vec![Vec::new(); lists.len()];
    let mut count = 0;
    for (l, list) in lists.iter().enumerate() {
        while picks[l].len() < quotas[l] && count < config.total {
            let Some(candidate) = next_untaken(list, &mut cursors[l], &taken) else {
                break;
            };
            taken.insert(candidate.item_id.clone());
            picks[l].push(candidate);
            count += 1;
        }
    }
    let mut active: Vec<usize> = (0..lists.len()).collect();
    while count < config.total && !active.is_empty() {
        active.retain(|&l| {
            if count >= config.total {
                return true;
            }
            match next_untaken(&lists[l], &mut cursors[l], &taken) {
                Some(candidate) => {
                    taken.insert(candidate.item_id.clone());
                    picks[l].push(candidate);
                    count += 1;
                    true
                }
                None => false,
            }
        });
    }
    interleave(picks)
}

/// The next item of `list` at or after `cursor` that nobody has taken yet.
fn next_untaken(
    list: &ChannelList,
    cursor: &mut usize,
    taken: &HashSet<ItemId>,
) -> Option<Candidate> {
    while let Some((item, score, source)) = list.items.get(*cursor) {
        let rank = *cursor;
        *cursor += 1;
        if !taken.contains(item) {
            return Some(Candidate {
                item_id: item.clone(),
                channel: list.channel,
                channel_score: *score,
                channel_rank: u32::try_from(rank).unwrap_or(u32::MAX),
                source_item: source.clone(),
            });
        }
    }
    None
}

/// Per-list quota: the channel's configured slots (a channel listed twice shares its
/// quota with its first list only), scaled down when they exceed `total`.
fn effective_quotas(lists: &[ChannelList], config: &BlendConfig) -> Vec<usize> {
    let mut seen = HashSet::new();
    let raw: Vec<usize> = lists
        .iter()
        .map(|l| {
            if seen.insert(l.channel) {
                config.quotas.get(&l.channel).copied().unwrap_or(0)
            } else {
                0
            }
        })
        .collect();
    let sum: usize = raw.iter().sum();
    if sum <= config.total {
        return raw;
    }
    let exact: Vec<f64> = raw
        .iter()
        .map(|&q| q as f64 * config.total as f64 / sum as f64)
        .collect();
    let mut scaled: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut order: Vec<usize> = (0..raw.len()).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    let missing = config.total - scaled.iter().sum::<usize>();
    for &l in order.iter().take(missing) {
        scaled[l] += 1;
    }
    scaled
}

fn interleave(picks: Vec<Vec<Candidate>>) -> Vec<Candidate> {
    let mut keyed: Vec<(f64, usize, Candidate)> = Vec::new();
    for (l, list) in picks.into_iter().enumerate() {
        let m = list.len() as f64;
        for (r, candidate) in list.into_iter().enumerate() {
            keyed.push(((r as f64 + 1.0) / m, l, candidate));
        }
    }
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    keyed.into_iter().map(|(_, _, c)| c).collect()
}

/// The rank offset of reciprocal-rank fusion (Cormack et al. 2009 use 60).
pub const FUSION_RANK_OFFSET: f64 = 60.0;

/// Reciprocal-rank fusion: every item's score is `Σ_c w_c / (60 + rank_c)` over the
/// channels `c` that proposed it (rank 0-based within the channel's list), scaled so
/// the best item scores 1. Items several channels agree on rise above items only one
/// channel proposed; `weights` (e.g. the quota shares) say how much each channel is
/// trusted. Channels without a weight count with weight 0.
pub fn fuse_scores(
    lists: &[ChannelList],
    weights: &BTreeMap<Channel, f64>,
) -> HashMap<ItemId, f32> {
    let mut fused: HashMap<ItemId, f64> = HashMap::new();
    for list in lists {
        let weight = weights.get(&list.channel).copied().unwrap_or(0.0).max(0.0);
        for (rank, (item, _, _)) in list.items.iter().enumerate() {
            *fused.entry(item.clone()).or_insert(0.0) +=
                weight / (FUSION_RANK_OFFSET + rank as f64);
        }
    }
    let best = fused.values().copied().fold(0.0f64, f64::max);
    fused
        .into_iter()
        .map(|(item, score)| {
            let scaled = if best > 0.0 { score / best } else { 0.0 };
            (item, scaled as f32)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(channel: Channel, items: &[&str]) -> ChannelList {
        let items = items
            .iter()
            .enumerate()
            .map(|(r, id)| (ItemId::new_unchecked(*id), 1.0 / (r as f32 + 1.0), None))
            .collect();
        ChannelList { channel, items }
    }

    fn config(quotas: &[(Channel, usize)], total: usize) -> BlendConfig {
        BlendConfig {
            quotas: quotas.iter().copied().collect(),
            total,
        }
    }

    fn summary(candidates: &[Candidate]) -> Vec<(String, Channel, u32)> {
        candidates
            .iter()
            .map(|c| (c.item_id.to_string(), c.channel, c.channel_rank))
            .collect()
    }

    #[test]
    fn quotas_dedup_keeps_the_first_channel_and_ranks_are_kept() {
        let lists = vec![
            list(Channel::Ease, &["a", "b", "c", "d"]),
            list(Channel::Popularity, &["b", "x", "a", "y", "z"]),
        ];
        let got = blend(
            lists,
            &config(&[(Channel::Ease, 2), (Channel::Popularity, 2)], 4),
        );
        let mut sorted = summary(&got);
        sorted.sort();
        // Ease takes a, b; Popularity skips b (taken), takes x (rank 1), skips a, takes y (rank 3).
        let expected = [
            ("a".to_string(), Channel::Ease, 0),
            ("b".to_string(), Channel::Ease, 1),
            ("x".to_string(), Channel::Popularity, 1),
            ("y".to_string(), Channel::Popularity, 3),
        ];
        assert_eq!(sorted, expected);
        // Interleaved: each channel's first pick (key 1/2) precedes its second (key 1).
        assert_eq!(got[0].item_id.as_str(), "a");
        assert_eq!(got[1].item_id.as_str(), "x");
    }

    #[test]
    fn leftover_quota_goes_round_robin_to_channels_with_items() {
        let lists = vec![
            list(Channel::Content, &["a"]),
            list(Channel::Als, &["b", "c", "d", "e"]),
            list(Channel::Trending, &["f", "g"]),
        ];
        // Content can fill 1 of its 3 slots; Trending has no quota but may take leftovers.
        let got = blend(
            lists,
            &config(&[(Channel::Content, 3), (Channel::Als, 2)], 5),
        );
        let mut ids: Vec<String> = got.iter().map(|c| c.item_id.to_string()).collect();
        ids.sort();
        // Round 1: a | b c. Leftover 2: Content is empty, Als takes d, Trending takes f.
        assert_eq!(ids, ["a", "b", "c", "d", "f"]);
        assert_eq!(
            got.iter()
                .filter(|c| c.channel == Channel::Trending)
                .count(),
            1
        );
    }

    #[test]
    fn oversubscribed_quotas_scale_down_and_total_caps_the_result() {
        let lists = vec![
            list(Channel::Ease, &["a", "b", "c", "d", "e", "f"]),
            list(Channel::Als, &["g", "h", "i", "j", "k", "l"]),
        ];
        // 6 + 3 slots for a total of 3: exact shares 2 and 1.
        let got = blend(
            lists.clone(),
            &config(&[(Channel::Ease, 6), (Channel::Als, 3)], 3),
        );
        assert_eq!(got.len(), 3);
        assert_eq!(got.iter().filter(|c| c.channel == Channel::Ease).count(), 2);
        assert!(blend(lists.clone(), &config(&[(Channel::Ease, 6)], 0)).is_empty());
        assert!(blend(Vec::new(), &config(&[(Channel::Ease, 6)], 10)).is_empty());
        // Everything available when the total exceeds the supply; no duplicates.
        let all = blend(lists, &config(&[], 100));
        let unique: HashSet<&ItemId> = all.iter().map(|c| &c.item_id).collect();
        assert_eq!((all.len(), unique.len()), (12, 12));
    }

    #[test]
    fn source_items_and_scores_travel_with_the_candidate() {
        let lists = vec![ChannelList {
            channel: Channel::Content,
            items: vec![(
                ItemId::new_unchecked("a"),
                0.7,
                Some(ItemId::new_unchecked("seen")),
            )],
        }];
        let got = blend(lists, &config(&[(Channel::Content, 1)], 1));
        assert_eq!(
            got[0].source_item.as_ref().map(ItemId::as_str),
            Some("seen")
        );
        assert_eq!(got[0].channel_score, 0.7);
    }

    #[test]
    fn fusion_rewards_agreement_and_respects_weights() {
        let id = |s: &str| ItemId::new_unchecked(s);
        let lists = vec![
            ChannelList::from_scored(Channel::Als, vec![(id("a"), 1.0), (id("b"), 0.5)]),
            ChannelList::from_scored(Channel::Ease, vec![(id("b"), 1.0), (id("c"), 0.5)]),
        ];
        let weights: BTreeMap<Channel, f64> = [(Channel::Als, 1.0), (Channel::Ease, 1.0)]
            .into_iter()
            .collect();
        let fused = fuse_scores(&lists, &weights);
        // b: 1/61 + 1/60 is the best and scales to 1; a: 1/60; c: 1/61.
        let best = 1.0 / 61.0 + 1.0 / 60.0;
        assert!((fused[&id("b")] - 1.0).abs() < 1e-6);
        assert!((f64::from(fused[&id("a")]) - (1.0 / 60.0) / best).abs() < 1e-6);
        assert!((f64::from(fused[&id("c")]) - (1.0 / 61.0) / best).abs() < 1e-6);
        let only_als: BTreeMap<Channel, f64> = [(Channel::Als, 1.0)].into_iter().collect();
        let fused = fuse_scores(&lists, &only_als);
        assert_eq!(fused[&id("c")], 0.0);
        assert!((fused[&id("a")] - 1.0).abs() < 1e-6);
    }
}
