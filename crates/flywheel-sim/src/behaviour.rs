//! How a user reacts to an item they examined: the view, maybe a click, then
//! maybe a cart and, hours later, a purchase. Shared by the organic simulation and
//! by [`crate::World::respond`], which lets flywheel's own lists meet simulated users.

use flywheel_core::{Action, Event, RequestId, Timestamp};
use rand::Rng;
use std::collections::BTreeMap;

use crate::rng::normal;
use crate::world::World;

/// Where an interaction came from: a list slot, or an item page.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub request: Option<(RequestId, u32)>,
    pub context: BTreeMap<String, String>,
}

/// The user's device attribute, or `unknown`.
pub(crate) fn device_of(world: &World, user: usize) -> String {
    world.users[user]
        .attributes
        .get("device")
        .and_then(|d| d.as_str())
        .unwrap_or("unknown")
        .to_string()
}

/// A view of an examined item, and the click, cart and purchase that may follow;
/// returns whether the item was clicked.
pub(crate) fn react<R: Rng + ?Sized>(
    world: &World,
    rng: &mut R,
    user: usize,
    item: usize,
    at: Timestamp,
    origin: &Origin,
    events: &mut Vec<Event>,
) -> bool {
    events.push(event(world, user, item, Action::View, at, origin, None));
    let device = origin.context.get("device").map_or("", String::as_str);
    let preference = world.true_preference_on(user, item, at, device);
    if rng.gen::<f64>() >= preference {
        return false;
    }
    let clicked_at = at.plus_millis(rng.gen_range(1_000..15_000));
    events.push(event(
        world,
        user,
        item,
        Action::Click,
        clicked_at,
        origin,
        None,
    ));
    after_click(
        world, rng, user, item, clicked_at, preference, origin, events,
    );
    true
}

/// Cart and purchase after a click: `P(purchase | click)` exactly, through the cart.
#[allow(clippy::too_many_arguments)]
fn after_click<R: Rng + ?Sized>(
    world: &World,
    rng: &mut R,
    user: usize,
    item: usize,
    at: Timestamp,
    preference: f64,
    origin: &Origin,
    events: &mut Vec<Event>,
) {
    let purchase = world.purchase_given_preference(user, item, preference);
    let cart = world.cart_given_purchase(purchase);
    if cart <= 0.0 || rng.gen::<f64>() >= cart {
        return;
    }
    let carted_at = at.plus_millis(log_normal_millis(rng, 60.0, 0.8));
    events.push(event(
        world,
        user,
        item,
        Action::AddToCart,
        carted_at,
        origin,
        None,
    ));
    if rng.gen::<f64>() >= purchase / cart {
        return;
    }
    // Purchases arrive hours later (median one hour, long right tail).
    let bought_at = carted_at.plus_millis(log_normal_millis(rng, 3_600.0, 1.0));
    let price = world.truth.items[item].price;
    events.push(event(
        world,
        user,
        item,
        Action::Purchase,
        bought_at,
        origin,
        Some(price),
    ));
}

fn event(
    world: &World,
    user: usize,
    item: usize,
    action: Action,
    at: Timestamp,
    origin: &Origin,
    value: Option<f64>,
) -> Event {
    Event {
        user_id: world.users[user].id.clone(),
        item_id: world.items[item].id.clone(),
        action,
        value,
        timestamp: at,
        request_id: origin.request.as_ref().map(|(r, _)| r.clone()),
        position: origin.request.as_ref().map(|(_, p)| *p),
        context: origin.context.clone(),
    }
}

/// A log-normal delay in milliseconds with the given median (seconds) and σ,
/// between one second and 30 days.
fn log_normal_millis<R: Rng + ?Sized>(rng: &mut R, median_secs: f64, sigma: f64) -> i64 {
    let secs = (median_secs.ln() + sigma * normal(rng)).exp();
    (secs * 1_000.0).round().clamp(1_000.0, 30.0 * 86_400_000.0) as i64
}
