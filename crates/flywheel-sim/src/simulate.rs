//! The organic history: users arrive in sessions, the site shows a list, users
//! examine slots with position bias, click what they like, browse on to similar
//! items, add to cart and buy hours later.

use flywheel_core::{Event, Impression, Timestamp};
use rand::rngs::StdRng;
use rand::Rng;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::config::SimConfig;
use crate::corrupt::Corrupter;
use crate::error::Result;
use crate::rng::{poisson, stream, Stream};
use crate::session::Run;
use crate::world::World;

/// The model version the simulated site's lists are logged under.
pub const LOGGING_POLICY_VERSION: &str = "sim-logging-policy";

/// A simulated shop and everything that happened in it.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// The world, with its ground truth.
    pub world: World,
    /// Every event, sorted by timestamp, all in `[start, start + days)`.
    pub events: Vec<Event>,
    /// Every list the site showed, sorted by timestamp, with the logging policy's propensities.
    pub impressions: Vec<Impression>,
}

/// Generates a world and simulates its history (the site's organic traffic) in memory.
pub fn simulate(config: &SimConfig) -> Result<Simulation> {
    let mut events = Vec::new();
    let mut impressions = Vec::new();
    let world = simulate_streaming(
        config,
        |event| {
            events.push(event);
            Ok(())
        },
        |impression| {
            impressions.push(impression);
            Ok(())
        },
    )?;
    Ok(Simulation {
        world,
        events,
        impressions,
    })
}

/// Simulates without holding the history in memory: events reach `on_event` in
/// timestamp order (ties in generation order, exactly the order of
/// [`Simulation::events`]) and lists reach `on_impression` in time order. Only
/// events still in the future of the current session (delayed carts and purchases)
/// are buffered, so load tests can write hundreds of millions of events.
/// A configured [`crate::StreamCorruption`] damages events as they are released.
/// An error from a callback stops the simulation and is returned.
pub fn simulate_streaming(
    config: &SimConfig,
    mut on_event: impl FnMut(Event) -> Result<()>,
    mut on_impression: impl FnMut(Impression) -> Result<()>,
) -> Result<World> {
    let world = World::generate(config)?;
    let end = config.end();
    let mut run = Run::new(&world);
    let mut pending = BinaryHeap::new();
    let mut generated = 0u64;
    let corrupter = Corrupter::of(&world);
    let mut corruption_rng = stream(config.seed, Stream::Corruption);
    let mut emit = |mut event: Event| {
        corrupter.apply(&world, &mut corruption_rng, &mut event);
        on_event(event)
    };
    for (session, (at, user)) in schedule(&world).into_iter().enumerate() {
        // Everything generated from here on is at or after `at`.
        release_before(&mut pending, at, &mut emit)?;
        run.session(session, at, user);
        for impression in run.impressions.drain(..) {
            on_impression(impression)?;
        }
        for event in run.events.drain(..).filter(|e| e.timestamp < end) {
            pending.push(Pending { generated, event });
            generated += 1;
        }
    }
    release_before(&mut pending, end, &mut emit)?;
    drop(run);
    Ok(world)
}

/// An event waiting for earlier ones; the heap pops the earliest (then first generated).
struct Pending {
    generated: u64,
    event: Event,
}

impl Pending {
    fn key(&self) -> (Timestamp, u64) {
        (self.event.timestamp, self.generated)
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap.
        other.key().cmp(&self.key())
    }
}

fn release_before(
    pending: &mut BinaryHeap<Pending>,
    before: Timestamp,
    on_event: &mut impl FnMut(Event) -> Result<()>,
) -> Result<()> {
    while pending.peek().is_some_and(|p| p.event.timestamp < before) {
        if let Some(next) = pending.pop() {
            on_event(next.event)?;
        }
    }
    Ok(())
}

/// Session start times of every user, sorted by (time, user).
pub(crate) fn schedule(world: &World) -> Vec<(Timestamp, usize)> {
    let config = world.config();
    let mut sessions = Vec::new();
    for (user, truth) in world.truth.users.iter().enumerate() {
        let mut rng = stream(config.seed, Stream::Sessions(user));
        let signed_up = world.users[user].created_at.unwrap_or(config.start);
        let rate = config.sessions_per_user_per_day * truth.activity;
        for day in 0..i64::from(config.days) {
            let day_start = config.start.plus_millis(day * Timestamp::DAY);
            for _ in 0..poisson(&mut rng, rate) {
                let at = day_start.plus_millis(time_of_day(&mut rng));
                if at >= signed_up {
                    sessions.push((at, user));
                }
            }
        }
    }
    sessions.sort();
    sessions
}

/// Milliseconds into a day at which a session starts: a daily rhythm with the
/// peak at 20:00 UTC and the trough (a fifth of the peak) at 08:00.
fn time_of_day(rng: &mut StdRng) -> i64 {
    loop {
        let ms = rng.gen_range(0..Timestamp::DAY);
        let hours = ms as f64 / Timestamp::HOUR as f64;
        let phase = 2.0 * std::f64::consts::PI * (hours - 20.0) / 24.0;
        let intensity = 0.6 + 0.4 * phase.cos();
        if rng.gen::<f64>() < intensity {
            return ms;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_follow_the_daily_rhythm() {
        let mut rng = stream(3, Stream::Site);
        let mut by_hour = [0usize; 24];
        for _ in 0..48_000 {
            by_hour[(time_of_day(&mut rng) / Timestamp::HOUR) as usize] += 1;
        }
        // Intensity 0.6 + 0.4·cos: 1.0 at 20:00 and 0.2 at 08:00, a ratio of 5
        // (about 3.5 when averaged over the hour bins either side).
        let evening = by_hour[19] + by_hour[20];
        let morning = by_hour[7] + by_hour[8];
        assert!(evening > 3 * morning, "{evening} vs {morning}");
    }
}
