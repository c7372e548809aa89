//! Explanations: one human reason per recommended item, chosen from what
//! retrieval and the features know, most personal reason first.

use flywheel_core::{
    Candidate, Channel, Explanation, ExplanationKind, Item, ItemFeatures, ItemId, Timestamp,
};

use crate::features::{item_age_days, NEW_ITEM_DAYS};

/// An item whose trending score is at least this is "trending" even when it did
/// not come from the trending channel (the score compares short-horizon
/// engagement with the long-horizon rate, so 2 means "twice the usual").
pub const TRENDING_THRESHOLD: f64 = 2.0;

/// Chooses the explanation of one recommended item. The first rule that applies wins:
///
/// 1. exploration slot → "something new for you to try";
/// 2. the candidate has a source item (co-visitation, content from the user's
///    item) → "because you viewed X", with X's title from `titles` when known;
/// 3. it came from the trending channel → "trending in Y";
/// 4. it is younger than [`NEW_ITEM_DAYS`] → "new in Y";
/// 5. it came from a collaborative channel (ALS, EASE) → "popular with people like you";
/// 6. its trending score reaches [`TRENDING_THRESHOLD`] → "trending in Y";
/// 7. otherwise → "popular in Y".
///
/// `Y` is the item's top-level category (an uncategorised item reads "trending
/// now", "new arrival", "popular right now").
pub fn explain(
    candidate: &Candidate,
    item: &Item,
    item_features: &ItemFeatures,
    titles: impl Fn(&ItemId) -> Option<String>,
    now: Timestamp,
) -> Explanation {
    let category = item.top_category().to_string();
    let is_new = item_age_days(item, now).is_some_and(|days| days < NEW_ITEM_DAYS);
    let kind = match (candidate.channel, &candidate.source_item) {
        (Channel::Exploration, _) => ExplanationKind::Exploration,
        (_, Some(source)) => ExplanationKind::BecauseYouViewed {
            item_id: source.clone(),
            title: titles(source),
        },
        (Channel::Trending, None) => ExplanationKind::TrendingIn { category },
        _ if is_new => ExplanationKind::NewIn { category },
        (Channel::Als | Channel::Ease, None) => ExplanationKind::PopularWithSimilarUsers,
        _ if item_features.trending >= TRENDING_THRESHOLD => {
            ExplanationKind::TrendingIn { category }
        }
        (Channel::Popularity | Channel::CoVisitation | Channel::Content, None) => {
            ExplanationKind::PopularIn { category }
        }
    };
    Explanation::new(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(channel: Channel, source: Option<&str>) -> (Candidate, Item) {
        let item = Item::new(ItemId::new_unchecked("i1"), "books/scifi");
        let candidate = Candidate {
            item_id: item.id.clone(),
            channel,
            channel_score: 1.0,
            channel_rank: 0,
            source_item: source.map(ItemId::new_unchecked),
        };
        (candidate, item)
    }

    fn text(candidate: &Candidate, item: &Item, features: &ItemFeatures, now: Timestamp) -> String {
        let titles = |id: &ItemId| (id.as_str() == "dune").then(|| "Dune".to_string());
        explain(candidate, item, features, titles, now).text
    }

    #[test]
    fn each_rule_renders_its_sentence() {
        let now = Timestamp::from_secs(1_700_000_000);
        let plain = ItemFeatures::default();
        let (c, item) = setup(Channel::CoVisitation, Some("dune"));
        assert_eq!(text(&c, &item, &plain, now), "because you viewed Dune");
        let (c, item) = setup(Channel::Content, Some("x9"));
        assert_eq!(
            text(&c, &item, &plain, now),
            "because you viewed x9",
            "no title: the id"
        );
        let (c, item) = setup(Channel::Trending, None);
        assert_eq!(text(&c, &item, &plain, now), "trending in books");
        let (c, mut item) = setup(Channel::Popularity, None);
        item.created_at = Some(now.plus_millis(-2 * Timestamp::DAY));
        assert_eq!(text(&c, &item, &plain, now), "new in books");
        item.created_at = Some(now.plus_millis(-8 * Timestamp::DAY));
        assert_eq!(
            text(&c, &item, &plain, now),
            "popular in books",
            "8 days is not new"
        );
        let hot = ItemFeatures {
            trending: 3.0,
            ..Default::default()
        };
        assert_eq!(text(&c, &item, &hot, now), "trending in books");
        for channel in [Channel::Als, Channel::Ease] {
            let (c, item) = setup(channel, None);
            assert_eq!(text(&c, &item, &plain, now), "popular with people like you");
        }
        let (c, item) = setup(Channel::Exploration, Some("dune"));
        assert_eq!(text(&c, &item, &plain, now), "something new for you to try");
        let (c, mut item) = setup(Channel::Popularity, None);
        item.category.clear();
        assert_eq!(text(&c, &item, &plain, now), "popular right now");
    }
}
