//! Online simulation: simulated users meet lists served by flywheel itself.
//! This is how A/B tests, interleaving and the self-healing loop are checked
//! against the truth: serve a list, let [`World::respond`] react, feed the events back.

use flywheel_core::{Event, RequestId, Timestamp};
use rand::Rng;
use std::collections::BTreeMap;

use crate::behaviour::{device_of, react, Origin};
use crate::corrupt::Corrupter;
use crate::simulate::schedule;
use crate::world::World;

impl World {
    /// How `user` reacts at `at` to `list` (item indices, slot 0 first) served by
    /// another policy: views of the slots they examine (position bias), clicks with
    /// the true preference, carts and purchases (purchases may land hours later,
    /// even after the simulated period; the caller decides what to keep). Events carry
    /// `request_id` and `position` when `request_id` is given; sorted by timestamp.
    /// Browse chains are not simulated here. The expected number of clicks is
    /// [`World::expected_clicks_at`]. In the period of a configured
    /// [`crate::StreamCorruption`], events are damaged as the log would receive them
    /// (drawing from `rng`); [`World::damage_of`] tells which.
    ///
    /// # Panics
    /// If `user` or an item of `list` is not an index of `users` / `items`.
    pub fn respond<R: Rng + ?Sized>(
        &self,
        user: usize,
        list: &[usize],
        at: Timestamp,
        request_id: Option<&RequestId>,
        rng: &mut R,
    ) -> Vec<Event> {
        let mut context = BTreeMap::new();
        context.insert("device".to_string(), device_of(self, user));
        context.insert("page".to_string(), "home".to_string());
        let mut events = Vec::new();
        let mut cursor = at;
        for (&item, position) in list.iter().zip(0u32..) {
            if rng.gen::<f64>() >= self.examination_probability(position) {
                continue;
            }
            cursor = cursor.plus_millis(rng.gen_range(1_000..12_000));
            let origin = Origin {
                request: request_id.map(|r| (r.clone(), position)),
                context: context.clone(),
            };
            react(self, rng, user, item, cursor, &origin, &mut events);
        }
        events.sort_by_key(|e| e.timestamp);
        let corrupter = Corrupter::of(self);
        for event in &mut events {
            corrupter.apply(self, rng, event);
        }
        events
    }

    /// When users arrive: every session start of the simulated period as
    /// `(time, user index)`, sorted, the same schedule [`crate::simulate`] uses.
    /// Drive online experiments with it: at each arrival, serve a list and
    /// [`World::respond`].
    pub fn arrivals(&self) -> Vec<(Timestamp, usize)> {
        schedule(self)
    }

    /// The items that exist at `at` (created by then), as indices `0..n`: items are
    /// ordered by creation time.
    pub fn items_available_at(&self, at: Timestamp) -> usize {
        self.items
            .partition_point(|item| item.created_at.is_none_or(|c| c <= at))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::SimConfig;
    use crate::world::World;
    use flywheel_core::{Action, RequestId};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn mean_clicks_of_responses_match_the_expected_clicks_of_the_truth() {
        let world = World::generate(&SimConfig::small()).unwrap();
        let user = 4;
        let mut by_preference: Vec<usize> = (0..world.items.len()).collect();
        by_preference.sort_by(|a, b| {
            world
                .true_preference(user, *b)
                .total_cmp(&world.true_preference(user, *a))
        });
        let best = &by_preference[..10];
        let worst = &by_preference[by_preference.len() - 10..];
        let at = world.config().start;
        let request = RequestId::new_unchecked("r1");
        let mut rng = StdRng::seed_from_u64(5);
        let trials = 4_000;
        for list in [best, worst] {
            let expected = world.expected_clicks(user, list);
            let mut clicks = 0usize;
            for _ in 0..trials {
                let events = world.respond(user, list, at, Some(&request), &mut rng);
                assert!(events.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
                assert!(events
                    .iter()
                    .all(|e| e.request_id.as_ref() == Some(&request)));
                clicks += events.iter().filter(|e| e.action == Action::Click).count();
            }
            let mean = clicks as f64 / trials as f64;
            // Clicks per list are a sum of 10 Bernoullis: variance ≤ expected.
            let se = (expected / trials as f64).sqrt();
            assert!(
                (mean - expected).abs() < 5.0 * se + 1e-3,
                "{mean} vs {expected}"
            );
        }
        assert!(world.expected_clicks(user, best) > 3.0 * world.expected_clicks(user, worst));
    }
}
