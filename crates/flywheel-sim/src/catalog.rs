//! The catalog: items in categories, with titles, tags, prices, creation times,
//! latent vectors and a long-tailed prominence.

use flywheel_core::{Item, ItemId, Timestamp};
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, Pareto};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::config::SimConfig;
use crate::rng::{normal, normal_vector, stream, weighted_index, Stream};
use crate::taxonomy::{top_category, Subcategory, ADJECTIVES, BRANDS};
use crate::truth::ItemTruth;

/// Days of catalog history before the simulated period.
const CATALOG_HISTORY_DAYS: i64 = 365;
/// Spread (σ of the log) of prices around the category median.
const PRICE_LOG_SIGMA: f64 = 0.6;
/// Cap of the Pareto prominence, so one item cannot take every slot.
const MAX_PROMINENCE: f64 = 200.0;
/// Number of sellers items are spread over.
const SELLERS: usize = 30;

/// The category layout shared by all items: names, medians and latent centroids.
pub(crate) struct Taxonomy {
    pub names: Vec<String>,
    pub medians: Vec<f64>,
    pub subcategories: Vec<&'static [Subcategory]>,
    pub top_centroids: Vec<Vec<f64>>,
    pub sub_offsets: Vec<Vec<Vec<f64>>>,
    pub size_weights: Vec<f64>,
}

impl Taxonomy {
    pub(crate) fn generate(config: &SimConfig) -> Taxonomy {
        let mut rng = stream(config.seed, Stream::Taxonomy);
        let scale = 1.0 / (config.latent_dim as f64).sqrt();
        let mut taxonomy = Taxonomy {
            names: Vec::new(),
            medians: Vec::new(),
            subcategories: Vec::new(),
            top_centroids: Vec::new(),
            sub_offsets: Vec::new(),
            size_weights: Vec::new(),
        };
        for c in 0..config.categories {
            let (name, median, subs) = top_category(c);
            taxonomy.names.push(name);
            taxonomy.medians.push(median);
            taxonomy.subcategories.push(subs);
            taxonomy
                .top_centroids
                .push(normal_vector(&mut rng, config.latent_dim, scale));
            let offsets = subs
                .iter()
                .map(|_| normal_vector(&mut rng, config.latent_dim, scale))
                .collect();
            taxonomy.sub_offsets.push(offsets);
            // Department sizes differ: the first departments are the biggest.
            taxonomy.size_weights.push(1.0 / (1.0 + c as f64).sqrt());
        }
        taxonomy
    }
}

/// Creation times of all items, ascending: most before the period, the rest during it.
fn creation_times(config: &SimConfig) -> Vec<Timestamp> {
    let mut rng = stream(config.seed, Stream::Catalog);
    let new_items = ((config.items as f64) * config.new_item_share).round() as usize;
    let old_items = config.items - new_items.min(config.items - 1);
    let history = CATALOG_HISTORY_DAYS * Timestamp::DAY;
    let period = config.end().millis() - config.start.millis();
    let mut times: Vec<Timestamp> = (0..config.items)
        .map(|i| {
            if i < old_items {
                config.start.plus_millis(-rng.gen_range(1..=history))
            } else {
                config.start.plus_millis(rng.gen_range(0..period))
            }
        })
        .collect();
    times.sort();
    times
}

/// Generates the catalog; items are ordered by creation time, ids `i00000`, `i00001`, …
pub(crate) fn generate_items(
    config: &SimConfig,
    taxonomy: &Taxonomy,
) -> (Vec<Item>, Vec<ItemTruth>) {
    let times = creation_times(config);
    times
        .into_iter()
        .enumerate()
        .map(|(index, created_at)| generate_item(config, taxonomy, index, created_at))
        .unzip()
}

fn generate_item(
    config: &SimConfig,
    taxonomy: &Taxonomy,
    index: usize,
    created_at: Timestamp,
) -> (Item, ItemTruth) {
    let mut rng = stream(config.seed, Stream::Item(index));
    let category = weighted_index(&mut rng, &taxonomy.size_weights);
    let subs = taxonomy.subcategories[category];
    let sub = rng.gen_range(0..subs.len());
    let latent = item_latent(&mut rng, taxonomy, category, sub);
    let median = taxonomy.medians[category];
    let price = price(&mut rng, median);
    let prominence = Pareto::<f64>::new(1.0, 1.2)
        .expect("scale and shape are positive constants")
        .sample(&mut rng)
        .min(MAX_PROMINENCE);
    let quality = 0.5 * normal(&mut rng);
    let id = ItemId::new_unchecked(format!("i{index:05}"));
    let path = format!("{}/{}", taxonomy.names[category], subs[sub].name);
    let mut item = describe(
        &mut rng,
        id.clone(),
        &path,
        &subs[sub],
        price,
        median,
        created_at,
    );
    item.embedding = config
        .embedding_noise
        .map(|noise| content_embedding(&mut rng, &latent, noise));
    let truth = ItemTruth {
        id,
        category,
        category_path: path,
        latent,
        quality,
        prior_popularity: prominence,
        price,
        median_price: median,
    };
    (item, truth)
}

fn item_latent(rng: &mut StdRng, taxonomy: &Taxonomy, category: usize, sub: usize) -> Vec<f64> {
    let top = &taxonomy.top_centroids[category];
    let offset = &taxonomy.sub_offsets[category][sub];
    let scale = 1.0 / (top.len() as f64).sqrt();
    top.iter()
        .zip(offset)
        .map(|(t, o)| 0.6 * t + 0.4 * o + 0.6 * scale * normal(rng))
        .collect()
}

/// The item's latent vector seen through a noisy content model, L2-normalised.
fn content_embedding(rng: &mut StdRng, latent: &[f64], noise: f64) -> Vec<f32> {
    let scale = 1.0 / (latent.len() as f64).sqrt();
    let noisy: Vec<f64> = latent
        .iter()
        .map(|x| x + noise * scale * normal(rng))
        .collect();
    let norm = noisy.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    noisy.iter().map(|x| (x / norm) as f32).collect()
}

fn price(rng: &mut StdRng, median: f64) -> f64 {
    let raw = (median.ln() + PRICE_LOG_SIGMA * normal(rng)).exp();
    ((raw * 100.0).round() / 100.0).max(0.5)
}

fn describe(
    rng: &mut StdRng,
    id: ItemId,
    path: &str,
    sub: &Subcategory,
    price: f64,
    median: f64,
    created_at: Timestamp,
) -> Item {
    let brand = BRANDS[rng.gen_range(0..BRANDS.len())];
    let adjective = ADJECTIVES[rng.gen_range(0..ADJECTIVES.len())];
    let noun = sub.nouns[rng.gen_range(0..sub.nouns.len())];
    let model = rng.gen_range(10..1000);
    let mut tags = vec![sub.name.to_string(), adjective.to_lowercase()];
    if price < 0.6 * median {
        tags.push("budget".to_string());
    } else if price > 1.6 * median {
        tags.push("premium".to_string());
    }
    let mut attributes = BTreeMap::new();
    attributes.insert("brand".to_string(), Value::from(brand));
    let seller = format!("seller{:02}", rng.gen_range(0..SELLERS));
    attributes.insert("seller".to_string(), Value::from(seller));
    let mut item = Item::new(id, path);
    item.tags = tags;
    item.price = Some(price);
    item.title = Some(format!("{brand} {adjective} {noun} {model}"));
    item.text = Some(format!(
        "{adjective} {} by {brand}, from our {path} range.",
        noun.to_lowercase()
    ));
    item.created_at = Some(created_at);
    item.attributes = attributes;
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_ordered_by_creation_and_some_are_new() {
        let config = SimConfig::small();
        let taxonomy = Taxonomy::generate(&config);
        let (items, truth) = generate_items(&config, &taxonomy);
        assert_eq!(items.len(), config.items);
        assert_eq!(truth.len(), config.items);
        let created: Vec<Timestamp> = items.iter().filter_map(|i| i.created_at).collect();
        assert!(created.windows(2).all(|w| w[0] <= w[1]));
        let new = created.iter().filter(|t| **t >= config.start).count();
        // new_item_share 0.15 of 150 items.
        assert_eq!(new, 23);
        assert!(created.iter().all(|t| *t < config.end()));
        for (item, t) in items.iter().zip(&truth) {
            assert_eq!(item.category, t.category_path);
            assert!(item.category.starts_with(&taxonomy.names[t.category]));
            assert!(item.price.is_some_and(|p| p >= 0.5));
        }
    }
}
