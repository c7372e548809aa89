//! One session of one user: the list, the examined slots, clicks, carts,
//! purchases hours later, and browse chains to similar items.

use flywheel_core::{Action, Event, Impression, ImpressionSlot, RequestId, Timestamp};
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::BTreeMap;

use crate::rng::{normal, stream, Stream};
use crate::simulate::LOGGING_POLICY_VERSION;
use crate::site::Site;
use crate::world::World;

/// Longest browse chain from one clicked list item.
const MAX_CHAIN: usize = 5;

/// Where an interaction came from: a list slot, or an item page.
#[derive(Clone)]
struct Origin {
    request: Option<(RequestId, u32)>,
    context: BTreeMap<String, String>,
}

pub(crate) struct Run<'w> {
    world: &'w World,
    site: Site,
    rng: StdRng,
    devices: Vec<String>,
    /// Events of the sessions run so far and not yet taken, in generation order.
    pub(crate) events: Vec<Event>,
    /// Lists shown so far and not yet taken.
    pub(crate) impressions: Vec<Impression>,
}

impl<'w> Run<'w> {
    pub(crate) fn new(world: &'w World) -> Run<'w> {
        let devices = world
            .users
            .iter()
            .map(|u| {
                u.attributes
                    .get("device")
                    .and_then(|d| d.as_str())
                    .unwrap_or("unknown")
                    .to_string()
            })
            .collect();
        Run {
            world,
            site: Site::new(world),
            rng: stream(world.config().seed, Stream::Site),
            devices,
            events: Vec::new(),
            impressions: Vec::new(),
        }
    }

    pub(crate) fn session(&mut self, session: usize, at: Timestamp, user: usize) {
        let world = self.world;
        let available = world
            .items
            .partition_point(|item| item.created_at.is_none_or(|c| c <= at));
        if available == 0 {
            return;
        }
        self.site.open_until(available);
        let slots = self
            .site
            .show(&mut self.rng, user, world.config().list_length);
        let request_id = RequestId::new_unchecked(format!("req-{session:08}"));
        self.log_impression(&request_id, user, at, &slots);
        let mut context = BTreeMap::new();
        context.insert("device".to_string(), self.devices[user].clone());
        context.insert("page".to_string(), "home".to_string());
        context.insert("session".to_string(), format!("s{session:08}"));
        let mut cursor = at;
        for (slot, position) in slots.iter().zip(0u32..) {
            if self.rng.gen::<f64>() >= world.examination_probability(position) {
                continue;
            }
            cursor = cursor.plus_millis(self.rng.gen_range(1_000..12_000));
            let origin = Origin {
                request: Some((request_id.clone(), position)),
                context: context.clone(),
            };
            if self.examine(user, slot.item, cursor, &origin) {
                cursor = self.browse(user, slot.item, cursor, available, &context);
            }
        }
    }

    fn log_impression(
        &mut self,
        request_id: &RequestId,
        user: usize,
        at: Timestamp,
        slots: &[crate::site::ShownSlot],
    ) {
        let mut per_channel = BTreeMap::new();
        let slots = slots
            .iter()
            .zip(0u32..)
            .map(|(slot, position)| {
                let rank = per_channel.entry(slot.channel).or_insert(0u32);
                let channel_rank = *rank;
                *rank += 1;
                ImpressionSlot {
                    item_id: self.world.items[slot.item].id.clone(),
                    position,
                    score: slot.score,
                    propensity: slot.propensity,
                    channel: slot.channel,
                    channel_rank,
                    channel_score: slot.score as f32,
                    source_item: None,
                    features: Vec::new(),
                }
            })
            .collect();
        self.impressions.push(Impression {
            request_id: request_id.clone(),
            user_id: self.world.users[user].id.clone(),
            timestamp: at,
            experiment: None,
            variant: None,
            model_version: LOGGING_POLICY_VERSION.to_string(),
            fallback: false,
            features_offset: None,
            slots,
        });
    }

    /// A view of an examined item; returns whether it was clicked.
    fn examine(&mut self, user: usize, item: usize, at: Timestamp, origin: &Origin) -> bool {
        self.emit(user, item, Action::View, at, origin, None);
        let preference = self.world.true_preference_at(user, item, at);
        if self.rng.gen::<f64>() >= preference {
            return false;
        }
        let clicked_at = at.plus_millis(self.rng.gen_range(1_000..15_000));
        self.emit(user, item, Action::Click, clicked_at, origin, None);
        self.site.record_click(user, item);
        self.after_click(user, item, clicked_at, preference, origin);
        true
    }

    /// Cart and purchase after a click: `P(purchase | click)` exactly, through the cart.
    fn after_click(
        &mut self,
        user: usize,
        item: usize,
        at: Timestamp,
        preference: f64,
        origin: &Origin,
    ) {
        let world = self.world;
        let purchase = world.purchase_given_preference(user, item, preference);
        let cart = world.cart_given_purchase(purchase);
        if cart <= 0.0 || self.rng.gen::<f64>() >= cart {
            return;
        }
        let carted_at = at.plus_millis(log_normal_millis(&mut self.rng, 60.0, 0.8));
        self.emit(user, item, Action::AddToCart, carted_at, origin, None);
        if self.rng.gen::<f64>() >= purchase / cart {
            return;
        }
        // Purchases arrive hours later (median one hour, long right tail).
        let bought_at = carted_at.plus_millis(log_normal_millis(&mut self.rng, 3_600.0, 1.0));
        let price = world.truth.items[item].price;
        self.emit(user, item, Action::Purchase, bought_at, origin, Some(price));
    }

    /// From a clicked item, the user may move on to similar items; returns the time it ends.
    fn browse(
        &mut self,
        user: usize,
        from: usize,
        at: Timestamp,
        available: usize,
        context: &BTreeMap<String, String>,
    ) -> Timestamp {
        let world = self.world;
        let mut current = from;
        let mut cursor = at;
        for _ in 0..MAX_CHAIN {
            if self.rng.gen::<f64>() >= world.config().browse_continue {
                break;
            }
            let options: Vec<usize> = world
                .similar_items(current)
                .iter()
                .copied()
                .filter(|i| *i < available)
                .collect();
            if options.is_empty() {
                break;
            }
            let next = options[self.rng.gen_range(0..options.len())];
            cursor = cursor.plus_millis(self.rng.gen_range(20_000..120_000));
            let mut page = context.clone();
            page.insert("page".to_string(), "item".to_string());
            page.insert("from_item".to_string(), world.items[current].id.to_string());
            let origin = Origin {
                request: None,
                context: page,
            };
            if !self.examine(user, next, cursor, &origin) {
                break;
            }
            current = next;
        }
        cursor
    }

    fn emit(
        &mut self,
        user: usize,
        item: usize,
        action: Action,
        at: Timestamp,
        origin: &Origin,
        value: Option<f64>,
    ) {
        self.events.push(Event {
            user_id: self.world.users[user].id.clone(),
            item_id: self.world.items[item].id.clone(),
            action,
            value,
            timestamp: at,
            request_id: origin.request.as_ref().map(|(r, _)| r.clone()),
            position: origin.request.as_ref().map(|(_, p)| *p),
            context: origin.context.clone(),
        });
    }
}

/// A log-normal delay in milliseconds with the given median (seconds) and σ.
fn log_normal_millis(rng: &mut StdRng, median_secs: f64, sigma: f64) -> i64 {
    let secs = (median_secs.ln() + sigma * normal(rng)).exp();
    (secs * 1_000.0).round().clamp(1_000.0, 30.0 * 86_400_000.0) as i64
}
