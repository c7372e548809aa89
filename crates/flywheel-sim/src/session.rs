//! One session of one user: the list, the examined slots, clicks, carts,
//! purchases hours later, and browse chains to similar items.

use flywheel_core::{Event, Impression, ImpressionSlot, PropensityKind, RequestId, Timestamp};
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::BTreeMap;

use crate::behaviour::{device_of, react, Origin};
use crate::rng::{stream, Stream};
use crate::simulate::LOGGING_POLICY_VERSION;
use crate::site::Site;
use crate::world::World;

/// Longest browse chain from one clicked list item.
const MAX_CHAIN: usize = 5;

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
        let devices = (0..world.users.len())
            .map(|u| device_of(world, u))
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
        let available = world.items_available_at(at);
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
                    // The site policy's probability is conditional on the slots before
                    // it, not the marginal of the item at its slot: labelled so that
                    // no estimator divides by it as if it were.
                    propensity_kind: PropensityKind::Conditional,
                    team: None,
                    channel: slot.channel,
                    channel_rank,
                    channel_score: slot.score as f32,
                    source_item: None,
                    features: Vec::new(),
                }
            })
            .collect();
        self.impressions.push(Impression {
            context: Default::default(),
            request_id: request_id.clone(),
            user_id: self.world.users[user].id.clone(),
            timestamp: at,
            experiments: Vec::new(),
            forced: false,
            category: None,
            count: None,
            model_version: LOGGING_POLICY_VERSION.to_string(),
            fallback: false,
            features_offset: None,
            latency_ms: None,
            slots,
        });
    }

    /// A view of an examined item; returns whether it was clicked.
    fn examine(&mut self, user: usize, item: usize, at: Timestamp, origin: &Origin) -> bool {
        let clicked = react(
            self.world,
            &mut self.rng,
            user,
            item,
            at,
            origin,
            &mut self.events,
        );
        if clicked {
            self.site.record_click(user, item);
        }
        clicked
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
}
