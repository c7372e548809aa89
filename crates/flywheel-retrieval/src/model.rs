//! The retrieval-model seam: every trained candidate model is a variant of one enum
//! with one interface, so the pipeline, the registry and training treat them alike.
//! A new kind of model (two-tower on an ANN index, item-kNN) is a new variant here
//! and a new arm in each method below, not edits across crates.

use flywheel_core::{Channel, ItemId};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

use crate::error::{Result, RetrievalError};
use crate::item_index::{AnnSettings, ItemIndex};
use crate::{AlsModel, EaseModel};

/// A trained retrieval model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RetrievalModel {
    /// Implicit ALS with live fold-in.
    Als(AlsModel),
    /// EASE, the closed-form item-item model.
    Ease(EaseModel),
}

impl RetrievalModel {
    /// Every kind of retrieval model, in the order the registry stores them.
    pub const KINDS: [&'static str; 2] = ["als", "ease"];

    /// The model's kind: its file stem in the registry and its name in manifests.
    pub fn kind(&self) -> &'static str {
        match self {
            RetrievalModel::Als(_) => "als",
            RetrievalModel::Ease(_) => "ease",
        }
    }

    /// The retrieval channel its candidates are credited to.
    pub fn channel(&self) -> Channel {
        match self {
            RetrievalModel::Als(_) => Channel::Als,
            RetrievalModel::Ease(_) => Channel::Ease,
        }
    }

    /// Top-`k` items for a live history of `(item, weight)`, most recent first,
    /// skipping `exclude`. An empty or entirely unknown history gives an empty list.
    pub fn recommend_for_history(
        &self,
        history: &[(ItemId, f32)],
        k: usize,
        exclude: &HashSet<ItemId>,
    ) -> Vec<(ItemId, f32)> {
        match self {
            RetrievalModel::Als(model) => model.recommend_for_history(history, k, exclude),
            RetrievalModel::Ease(model) => model.recommend_for_history(history, k, exclude),
        }
    }

    /// Whether the model's internal arrays agree (a loaded file is trusted only then).
    pub fn is_consistent(&self) -> bool {
        match self {
            RetrievalModel::Als(model) => model.is_consistent(),
            RetrievalModel::Ease(model) => model.is_consistent(),
        }
    }

    /// The model's ANN index over item vectors, when it has one (the registry stores it
    /// beside the model file).
    pub fn item_index(&self) -> Option<&ItemIndex> {
        match self {
            RetrievalModel::Als(model) => model.index(),
            RetrievalModel::Ease(_) => None,
        }
    }

    /// Builds the model's item index when `settings` want one for its catalog; returns
    /// whether it did (models without item vectors never do).
    pub fn build_item_index(&mut self, settings: &AnnSettings) -> Result<bool> {
        match self {
            RetrievalModel::Als(model) => model.build_index(settings),
            RetrievalModel::Ease(_) => Ok(false),
        }
    }

    /// Serves from an item index read back from its file; refused for a model without
    /// item vectors or an index that does not fit the model.
    pub fn attach_item_index(&mut self, index: ItemIndex) -> Result<()> {
        match self {
            RetrievalModel::Als(model) => model.attach_index(index),
            RetrievalModel::Ease(_) => Err(RetrievalError::Index(
                "EASE has no item vectors to index".into(),
            )),
        }
    }

    /// Drops what the model keeps per user for every user `erase` says yes to (ALS: the
    /// user's id and factors; EASE keeps nothing per user); returns how many users.
    pub fn forget_users(&mut self, erase: &dyn Fn(&flywheel_core::UserId) -> bool) -> usize {
        match self {
            RetrievalModel::Als(model) => model.forget_users(erase),
            RetrievalModel::Ease(_) => 0,
        }
    }

    /// The ALS model, when this is one.
    pub fn as_als(&self) -> Option<&AlsModel> {
        match self {
            RetrievalModel::Als(model) => Some(model),
            RetrievalModel::Ease(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AlsParams, Interactions};

    fn interactions() -> Interactions {
        let triples = (0..6u32).flat_map(|u| {
            (0..4u32).map(move |i| {
                (
                    flywheel_core::UserId::new_unchecked(format!("u{u}")),
                    ItemId::new_unchecked(format!("i{}", (u + i) % 8)),
                    1.0,
                )
            })
        });
        Interactions::from_triples(triples)
    }

    #[test]
    fn each_variant_answers_through_the_seam_like_the_model_itself() {
        let data = interactions();
        let params = AlsParams {
            factors: 4,
            iterations: 3,
            ..AlsParams::default()
        };
        let als = AlsModel::train(&data, &params).unwrap();
        let ease = EaseModel::train(&data, 10.0).unwrap();
        let history = vec![(ItemId::new_unchecked("i1"), 1.0)];
        let exclude = HashSet::new();
        let direct = als.recommend_for_history(&history, 3, &exclude);
        let seam = RetrievalModel::Als(als);
        assert_eq!(seam.recommend_for_history(&history, 3, &exclude), direct);
        assert_eq!((seam.kind(), seam.channel()), ("als", Channel::Als));
        let direct = ease.recommend_for_history(&history, 3, &exclude);
        let seam = RetrievalModel::Ease(ease);
        assert_eq!(seam.recommend_for_history(&history, 3, &exclude), direct);
        assert_eq!((seam.kind(), seam.channel()), ("ease", Channel::Ease));
        assert!(seam.is_consistent() && seam.as_als().is_none());
    }

    #[test]
    fn forgetting_a_user_drops_their_id_and_factors_and_keeps_the_others() {
        let params = AlsParams {
            factors: 4,
            iterations: 2,
            ..AlsParams::default()
        };
        let als = AlsModel::train(&interactions(), &params).unwrap();
        let u3 = flywheel_core::UserId::new_unchecked("u3");
        let u4 = flywheel_core::UserId::new_unchecked("u4");
        let kept = als.user_vector(&u4).unwrap().to_vec();
        let mut seam = RetrievalModel::Als(als);
        assert_eq!(seam.forget_users(&|id| id == &u3), 1);
        let als = seam.as_als().unwrap();
        assert!(als.user_vector(&u3).is_none() && als.is_consistent());
        assert_eq!(als.user_vector(&u4).unwrap(), &kept[..]);
        let bytes = bincode::serialize(&seam).unwrap();
        assert!(
            !bytes.windows(2).any(|w| w == b"u3"),
            "no trace in the file"
        );
    }
}
