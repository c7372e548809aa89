//! The ranking feature definition: one function, [`featurize`], used online when a
//! request is scored and offline when training rows are rebuilt "as of" each
//! impression. Any change to the list or the meaning of a feature must bump
//! [`FEATURE_SCHEMA_VERSION`], so that a model trained on the old schema is refused.

use flywheel_core::{
    Candidate, Channel, Item, ItemFeatures, RequestContext, Timestamp, UserFeatures,
};
use serde::{Deserialize, Serialize};

/// The version of [`FEATURE_NAMES`] and of their meaning.
pub const FEATURE_SCHEMA_VERSION: u32 = 2;

/// The features produced by [`featurize`], in order.
pub const FEATURE_NAMES: &[&str] = &[
    "user_category_affinity",
    "item_ctr_log_odds",
    "item_views_1h_log1p",
    "item_views_24h_log1p",
    "item_views_7d_log1p",
    "item_clicks_1h_log1p",
    "item_clicks_24h_log1p",
    "item_clicks_7d_log1p",
    "item_purchases_1h_log1p",
    "item_purchases_24h_log1p",
    "item_purchases_7d_log1p",
    "item_trending_signed_log1p",
    "item_age_days_log1p",
    "item_age_missing",
    "item_is_new_7d",
    "item_hours_since_last_event_log1p",
    "item_price_log1p",
    "item_price_missing",
    "channel_popularity",
    "channel_trending",
    "channel_co_visitation",
    "channel_als",
    "channel_ease",
    "channel_content",
    "channel_exploration",
    "channel_rank_log1p",
    "channel_score_squashed",
    "user_event_count_log1p",
    "user_has_history",
    "user_times_shown_item_log1p",
    "user_knows_item_category",
    "user_recently_interacted_with_item",
    "candidate_has_source_item",
    "user_recently_interacted_with_source_item",
    "user_purchased_item",
    "cross_affinity_x_ctr",
    "cross_affinity_x_is_new",
    "cross_affinity_x_trending",
    "cross_cold_user_x_views_7d",
    "context_device_mobile",
    "context_device_tablet",
    "context_device_desktop",
    "context_device_other",
    "context_page_home",
    "context_page_item",
    "context_page_category",
    "context_page_search",
    "context_page_cart",
    "context_page_other",
    "context_hour_sin",
    "context_hour_cos",
];

/// The devices with a one-hot feature of their own (matched ignoring ASCII case;
/// `phone` counts as `mobile`); any other given device is `context_device_other`, and
/// no device sets none of them.
pub const CONTEXT_DEVICES: &[&str] = &["mobile", "tablet", "desktop"];
/// The pages with a one-hot feature of their own (ignoring ASCII case; `product`
/// counts as `item`); any other given page is `context_page_other`.
pub const CONTEXT_PAGES: &[&str] = &["home", "item", "category", "search", "cart"];

/// Index of the first channel one-hot feature; channel `c` is at `CHANNEL_OFFSET + c.index()`.
const CHANNEL_OFFSET: usize = 18;
/// Age (days) used when an item has no `created_at`: a typical catalog age, so
/// that the missing flag, not the value, carries the information.
pub const NEUTRAL_AGE_DAYS: f64 = 30.0;
/// Hours since the last event used when an item never had one (one year).
pub const NO_EVENT_HOURS: f64 = 24.0 * 365.0;
/// Items younger than this many days are "new".
pub const NEW_ITEM_DAYS: f64 = 7.0;
/// The CTR is clamped to `[CTR_FLOOR, 1 - CTR_FLOOR]` before taking log-odds.
const CTR_FLOOR: f64 = 1e-4;
/// Every feature is clamped to `±FEATURE_LIMIT`, so that the output is always finite.
const FEATURE_LIMIT: f64 = 1e6;

/// Everything [`featurize`] looks at for one (user, candidate) pair.
#[derive(Debug, Clone, Copy)]
pub struct RankingInput<'a> {
    /// The user's feature snapshot.
    pub user: &'a UserFeatures,
    /// The candidate item from the catalog.
    pub item: &'a Item,
    /// The item's feature snapshot.
    pub item_features: &'a ItemFeatures,
    /// The candidate as retrieval produced it.
    pub candidate: &'a Candidate,
    /// The moment the features are taken at (request time, or impression time offline).
    pub now: Timestamp,
    /// The request's context (device, page, hour), as logged on the impression.
    pub context: &'a RequestContext,
}

/// The schema a model was trained on: its version and feature names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSchema {
    /// The schema version ([`FEATURE_SCHEMA_VERSION`] for rows built by [`featurize`]).
    pub version: u32,
    /// The feature names, in row order.
    pub names: Vec<String>,
}

impl FeatureSchema {
    /// The schema of [`featurize`].
    pub fn current() -> Self {
        FeatureSchema {
            version: FEATURE_SCHEMA_VERSION,
            names: FEATURE_NAMES.iter().map(|n| n.to_string()).collect(),
        }
    }

    /// A schema for rows built elsewhere (tests, imported data), named `x0, x1, …`.
    pub fn custom(version: u32, width: usize) -> Self {
        FeatureSchema {
            version,
            names: (0..width).map(|j| format!("x{j}")).collect(),
        }
    }

    /// Whether this is the schema [`featurize`] produces today.
    pub fn is_current(&self) -> bool {
        *self == Self::current()
    }
}

/// A non-finite value becomes 0: inputs are sanitised, never propagated as NaN.
fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

/// `ln(1 + max(x, 0))` of a sanitised count.
fn log1p_count(x: f64) -> f64 {
    finite(x).max(0.0).ln_1p()
}

/// `sign(x)·ln(1 + |x|)`: compresses heavy tails on both sides.
fn signed_log1p(x: f64) -> f64 {
    let x = finite(x);
    x.signum() * x.abs().ln_1p()
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// Days from `earlier` to `now`, computed in floating point (no overflow), never negative.
fn days_between(earlier: Timestamp, now: Timestamp) -> f64 {
    ((now.millis() as f64 - earlier.millis() as f64) / Timestamp::DAY as f64).max(0.0)
}

/// The item's age in days, if it has a `created_at`.
pub fn item_age_days(item: &Item, now: Timestamp) -> Option<f64> {
    item.created_at.map(|created| days_between(created, now))
}

/// The user's affinity to the item's top-level category, in `[0, 1]`.
fn category_affinity(user: &UserFeatures, item: &Item) -> f64 {
    let affinity = user.category_affinity.get(item.top_category()).copied();
    finite(affinity.unwrap_or(0.0)).clamp(0.0, 1.0)
}

/// The item's smoothed CTR in `[CTR_FLOOR, 1 - CTR_FLOOR]` and its log-odds.
fn ctr_and_log_odds(features: &ItemFeatures) -> (f64, f64) {
    let ctr = finite(features.ctr).clamp(CTR_FLOOR, 1.0 - CTR_FLOOR);
    (ctr, (ctr / (1.0 - ctr)).ln())
}

/// A value's one-hot slot among `known` (after `aliases`), or `known.len()` for
/// "other"; `None` when no value was given.
fn one_hot_slot(value: Option<&str>, known: &[&str], aliases: &[(&str, &str)]) -> Option<usize> {
    let value = value?.trim().to_ascii_lowercase();
    let value = aliases
        .iter()
        .find(|(alias, _)| *alias == value)
        .map_or(value.as_str(), |(_, name)| name);
    Some(
        known
            .iter()
            .position(|k| *k == value)
            .unwrap_or(known.len()),
    )
}

/// The context features: device and page one-hot (with "other"), the hour of day on
/// the unit circle (so 23 h and 0 h are neighbours).
fn push_context(x: &mut Vec<f64>, context: &RequestContext, now: Timestamp) {
    let device = one_hot_slot(
        context.device.as_deref(),
        CONTEXT_DEVICES,
        &[("phone", "mobile")],
    );
    x.extend((0..=CONTEXT_DEVICES.len()).map(|slot| flag(device == Some(slot))));
    let page = one_hot_slot(
        context.page.as_deref(),
        CONTEXT_PAGES,
        &[("product", "item")],
    );
    x.extend((0..=CONTEXT_PAGES.len()).map(|slot| flag(page == Some(slot))));
    let angle = std::f64::consts::TAU * f64::from(context.hour_at(now)) / 24.0;
    x.push(angle.sin());
    x.push(angle.cos());
}

/// Computes the feature vector of one (user, candidate) pair, in the order of
/// [`FEATURE_NAMES`]. Deterministic, and every value is finite for any input.
pub fn featurize(input: &RankingInput) -> Vec<f32> {
    let RankingInput {
        user,
        item,
        item_features: f,
        candidate,
        now,
        context,
    } = *input;
    let affinity = category_affinity(user, item);
    let (ctr, ctr_log_odds) = ctr_and_log_odds(f);
    let age = item_age_days(item, now);
    let is_new = age.is_some_and(|days| days < NEW_ITEM_DAYS);
    let trending = signed_log1p(f.trending);
    let hours_since_event = f
        .last_event
        .map_or(NO_EVENT_HOURS, |t| days_between(t, now) * 24.0);
    let has_history = user.event_count > 0 || !user.recent.is_empty();
    let recently = |id: &flywheel_core::ItemId| user.recent.iter().any(|(i, _, _)| i == id);
    let shown = user.shown.get(&item.id).copied().unwrap_or(0);
    let price = item.price.map(finite).filter(|p| *p >= 0.0);
    let score = f64::from(candidate.channel_score);
    let score = finite(score);

    let mut x = Vec::with_capacity(FEATURE_NAMES.len());
    x.push(affinity);
    x.push(ctr_log_odds);
    x.extend(f.views.iter().map(|&v| log1p_count(v)));
    x.extend(f.clicks.iter().map(|&v| log1p_count(v)));
    x.extend(f.purchases.iter().map(|&v| log1p_count(v)));
    x.push(trending);
    x.push(age.unwrap_or(NEUTRAL_AGE_DAYS).ln_1p());
    x.push(flag(age.is_none()));
    x.push(flag(is_new));
    x.push(hours_since_event.min(NO_EVENT_HOURS).ln_1p());
    x.push(price.unwrap_or(0.0).ln_1p());
    x.push(flag(price.is_none()));
    debug_assert_eq!(x.len(), CHANNEL_OFFSET);
    x.extend(Channel::ALL.iter().map(|&c| flag(c == candidate.channel)));
    x.push(f64::from(candidate.channel_rank).ln_1p());
    x.push(score / (1.0 + score.abs()));
    x.push((user.event_count as f64).ln_1p());
    x.push(flag(has_history));
    x.push(f64::from(shown).ln_1p());
    x.push(flag(affinity > 0.0));
    x.push(flag(recently(&item.id)));
    x.push(flag(candidate.source_item.is_some()));
    x.push(flag(candidate.source_item.as_ref().is_some_and(recently)));
    x.push(flag(user.purchased.contains(&item.id)));
    x.push(affinity * ctr);
    x.push(affinity * flag(is_new));
    x.push(affinity * trending);
    x.push(flag(!has_history) * log1p_count(f.views[2]));
    push_context(&mut x, context, now);
    debug_assert_eq!(x.len(), FEATURE_NAMES.len());
    x.into_iter()
        .map(|v| finite(v).clamp(-FEATURE_LIMIT, FEATURE_LIMIT) as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::{Action, ItemId};

    fn value(x: &[f32], name: &str) -> f32 {
        let j = FEATURE_NAMES
            .iter()
            .position(|n| *n == name)
            .expect("known feature name");
        x[j]
    }

    #[test]
    fn channel_one_hot_names_follow_channel_index() {
        for c in Channel::ALL {
            assert_eq!(
                FEATURE_NAMES[CHANNEL_OFFSET + c.index()],
                format!("channel_{}", c.as_str())
            );
        }
        let unique: std::collections::BTreeSet<_> = FEATURE_NAMES.iter().collect();
        assert_eq!(
            unique.len(),
            FEATURE_NAMES.len(),
            "feature names are distinct"
        );
    }

    #[test]
    fn features_have_the_documented_values() {
        let now = Timestamp::from_secs(1_700_000_000);
        let mut item = Item::new(ItemId::new_unchecked("i1"), "books/scifi");
        item.created_at = Some(now.plus_millis(-3 * Timestamp::DAY));
        item.price = Some(9.0);
        let mut user = UserFeatures::default();
        user.category_affinity.insert("books".into(), 0.25);
        user.event_count = 3;
        user.recent
            .push((ItemId::new_unchecked("s"), Action::Click, now));
        user.shown.insert(item.id.clone(), 2);
        let f = ItemFeatures {
            ctr: 0.2,
            views: [0.0, 1.0, 3.0],
            ..Default::default()
        };
        let candidate = Candidate {
            item_id: item.id.clone(),
            channel: Channel::CoVisitation,
            channel_score: 1.0,
            channel_rank: 3,
            source_item: Some(ItemId::new_unchecked("s")),
        };
        let input = RankingInput {
            user: &user,
            item: &item,
            item_features: &f,
            candidate: &candidate,
            now,
            context: &RequestContext::default(),
        };
        let x = featurize(&input);
        assert_eq!(x.len(), FEATURE_NAMES.len());
        assert_eq!(value(&x, "user_category_affinity"), 0.25);
        assert!((value(&x, "item_ctr_log_odds") - (0.25f64).ln() as f32).abs() < 1e-6);
        assert!((value(&x, "item_views_7d_log1p") - 4f32.ln()).abs() < 1e-6);
        assert!((value(&x, "item_age_days_log1p") - 4f32.ln()).abs() < 1e-6);
        assert_eq!(value(&x, "item_is_new_7d"), 1.0);
        assert_eq!(value(&x, "item_age_missing"), 0.0);
        assert!((value(&x, "item_price_log1p") - 10f32.ln()).abs() < 1e-6);
        assert_eq!(value(&x, "channel_co_visitation"), 1.0);
        assert_eq!(value(&x, "channel_als"), 0.0);
        assert!((value(&x, "channel_rank_log1p") - 4f32.ln()).abs() < 1e-6);
        assert_eq!(value(&x, "channel_score_squashed"), 0.5);
        assert!((value(&x, "user_times_shown_item_log1p") - 3f32.ln()).abs() < 1e-6);
        assert_eq!(value(&x, "user_recently_interacted_with_source_item"), 1.0);
        assert_eq!(value(&x, "user_recently_interacted_with_item"), 0.0);
        assert!((value(&x, "cross_affinity_x_ctr") - 0.05).abs() < 1e-7);
        assert_eq!(
            value(&x, "item_hours_since_last_event_log1p"),
            (NO_EVENT_HOURS as f32).ln_1p()
        );
    }

    #[test]
    fn missing_created_at_gives_neutral_age_and_flag() {
        let item = Item::new(ItemId::new_unchecked("i"), "");
        let user = UserFeatures::default();
        let f = ItemFeatures::default();
        let c = Candidate {
            item_id: item.id.clone(),
            channel: Channel::Popularity,
            channel_score: 0.0,
            channel_rank: 0,
            source_item: None,
        };
        let x = featurize(&RankingInput {
            user: &user,
            item: &item,
            item_features: &f,
            candidate: &c,
            now: Timestamp(0),
            context: &RequestContext::default(),
        });
        assert_eq!(value(&x, "item_age_missing"), 1.0);
        assert_eq!(
            value(&x, "item_age_days_log1p"),
            (NEUTRAL_AGE_DAYS as f32).ln_1p()
        );
        assert_eq!(value(&x, "item_is_new_7d"), 0.0);
        assert_eq!(value(&x, "user_has_history"), 0.0);
        assert_eq!(value(&x, "item_price_missing"), 1.0);
    }

    #[test]
    fn context_features_are_one_hot_with_other_and_a_cyclic_hour() {
        let item = Item::new(ItemId::new_unchecked("i"), "books");
        let (user, f) = (UserFeatures::default(), ItemFeatures::default());
        let c = Candidate {
            item_id: item.id.clone(),
            channel: Channel::Popularity,
            channel_score: 0.0,
            channel_rank: 0,
            source_item: None,
        };
        let at = |context: &RequestContext, now: Timestamp| {
            featurize(&RankingInput {
                user: &user,
                item: &item,
                item_features: &f,
                candidate: &c,
                now,
                context,
            })
        };
        let six = Timestamp::from_millis(6 * Timestamp::HOUR);
        let none = at(&RequestContext::default(), six);
        for name in FEATURE_NAMES
            .iter()
            .filter(|n| n.starts_with("context_device") || n.starts_with("context_page"))
        {
            assert_eq!(value(&none, name), 0.0, "{name}");
        }
        // No hour given: the request time's UTC hour (6 h is a quarter turn).
        assert!((value(&none, "context_hour_sin") - 1.0).abs() < 1e-6);
        assert!(value(&none, "context_hour_cos").abs() < 1e-6);
        let phone = RequestContext::new(Some("Phone"), Some("product"), Some(0)).unwrap();
        let x = at(&phone, six);
        assert_eq!(value(&x, "context_device_mobile"), 1.0);
        assert_eq!(value(&x, "context_page_item"), 1.0);
        assert_eq!(value(&x, "context_hour_cos"), 1.0);
        let odd = RequestContext::new(Some("tv"), Some("checkout"), None).unwrap();
        let x = at(&odd, six);
        assert_eq!(value(&x, "context_device_other"), 1.0);
        assert_eq!(value(&x, "context_page_other"), 1.0);
        assert_eq!(value(&x, "context_device_mobile"), 0.0);
    }
}
