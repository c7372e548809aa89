//! What retrieval hands to ranking: candidates that remember their channel, and
//! the human explanation that travels with each recommended item.

use serde::{Deserialize, Serialize};

use crate::ids::ItemId;

/// The retrieval channel a candidate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Globally or per-category popular items (also the universal fallback).
    Popularity,
    /// Items whose recent engagement is rising.
    Trending,
    /// "Users who viewed X also viewed Y", from the user's recent items.
    CoVisitation,
    /// Implicit alternating least squares matrix factorisation.
    Als,
    /// EASE, the closed-form item-item model.
    Ease,
    /// Content similarity (category, tags, text, supplied embeddings).
    Content,
    /// Exploration slots for new or under-exposed items.
    Exploration,
}

impl Channel {
    /// Every channel, in a fixed order.
    pub const ALL: [Channel; 7] = [
        Channel::Popularity,
        Channel::Trending,
        Channel::CoVisitation,
        Channel::Als,
        Channel::Ease,
        Channel::Content,
        Channel::Exploration,
    ];

    /// The channel's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Popularity => "popularity",
            Channel::Trending => "trending",
            Channel::CoVisitation => "co_visitation",
            Channel::Als => "als",
            Channel::Ease => "ease",
            Channel::Content => "content",
            Channel::Exploration => "exploration",
        }
    }

    /// A stable small integer per channel, used as a one-hot index by ranking.
    pub fn index(self) -> usize {
        match self {
            Channel::Popularity => 0,
            Channel::Trending => 1,
            Channel::CoVisitation => 2,
            Channel::Als => 3,
            Channel::Ease => 4,
            Channel::Content => 5,
            Channel::Exploration => 6,
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// Why an item is recommended, in a form both machines and people can read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExplanationKind {
    /// The user recently interacted with a related item.
    BecauseYouViewed {
        /// The item the user interacted with.
        item_id: ItemId,
        /// Its title, when known.
        title: Option<String>,
    },
    /// The item is trending in a category (or overall when the category is empty).
    TrendingIn {
        /// The category.
        category: String,
    },
    /// The item is new in a category.
    NewIn {
        /// The category.
        category: String,
    },
    /// Collaborative filtering: people with similar tastes engaged with it.
    PopularWithSimilarUsers,
    /// The item is popular in a category (or overall when empty).
    PopularIn {
        /// The category.
        category: String,
    },
    /// The item is shown to learn how people like it.
    Exploration,
}

/// An explanation and its rendered sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The structured reason.
    pub kind: ExplanationKind,
    /// The sentence shown to people, e.g. "because you viewed Dune".
    pub text: String,
}

impl Explanation {
    /// Builds an explanation and renders its sentence.
    pub fn new(kind: ExplanationKind) -> Self {
        let text = match &kind {
            ExplanationKind::BecauseYouViewed { item_id, title } => {
                format!(
                    "because you viewed {}",
                    title.as_deref().unwrap_or(item_id.as_str())
                )
            }
            ExplanationKind::TrendingIn { category } if category.is_empty() => {
                "trending now".into()
            }
            ExplanationKind::TrendingIn { category } => format!("trending in {category}"),
            ExplanationKind::NewIn { category } if category.is_empty() => "new arrival".into(),
            ExplanationKind::NewIn { category } => format!("new in {category}"),
            ExplanationKind::PopularWithSimilarUsers => "popular with people like you".into(),
            ExplanationKind::PopularIn { category } if category.is_empty() => {
                "popular right now".into()
            }
            ExplanationKind::PopularIn { category } => format!("popular in {category}"),
            ExplanationKind::Exploration => "something new for you to try".into(),
        };
        Explanation { kind, text }
    }
}

/// One item proposed by a retrieval channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The proposed item.
    pub item_id: ItemId,
    /// The channel that proposed it (the first one, when several did).
    pub channel: Channel,
    /// The candidate's retrieval score: a channel's own score inside that channel,
    /// and after blending the fused score in [0, 1] over every channel that proposed
    /// the item (reciprocal-rank fusion), which is what the ranker sees.
    pub channel_score: f32,
    /// The 0-based rank of the item within its channel's list.
    pub channel_rank: u32,
    /// For channels driven by one of the user's items: that item ("because you viewed X").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_item: Option<ItemId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_round_trip_and_indices_are_distinct() {
        for (i, c) in Channel::ALL.into_iter().enumerate() {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
            assert_eq!(c.index(), i);
        }
    }

    #[test]
    fn explanations_read_like_sentences() {
        let e = Explanation::new(ExplanationKind::BecauseYouViewed {
            item_id: ItemId::new_unchecked("i1"),
            title: Some("Dune".into()),
        });
        assert_eq!(e.text, "because you viewed Dune");
        assert_eq!(
            Explanation::new(ExplanationKind::TrendingIn {
                category: "books".into()
            })
            .text,
            "trending in books"
        );
    }
}
