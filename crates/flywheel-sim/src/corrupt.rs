//! The corrupted stream: damage applied to events on their way to the log, from the
//! configured [`StreamCorruption`] day on, and the check that finds it again against
//! the world's truth (what the monitor's data-quality shares should measure).

use flywheel_core::{Action, Event, ItemId};
use rand::Rng;

use crate::config::StreamCorruption;
use crate::world::World;

/// The prefix of the item ids the corrupted stream invents; the catalog's ids never
/// start with it.
const UNKNOWN_PREFIX: &str = "unknown-";

/// What is wrong with one event, as the simulator knows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventDamage {
    /// The event names an item the catalog does not know.
    pub unknown_item: bool,
    /// The event lost its optional fields (context, and a purchase's value).
    pub missing_fields: bool,
}

impl EventDamage {
    /// Whether the event is intact.
    pub fn is_clean(&self) -> bool {
        !self.unknown_item && !self.missing_fields
    }
}

/// Damages the events of a run whose config has a corruption, in the order they reach
/// the log. Two draws per event in the damaged period, none outside it, so a config
/// without corruption gives exactly the stream it gave before corruption existed.
pub(crate) struct Corrupter {
    corruption: Option<StreamCorruption>,
}

impl Corrupter {
    /// The corrupter of a world's config (a no-op when it has no corruption).
    pub(crate) fn of(world: &World) -> Corrupter {
        Corrupter {
            corruption: world.config().corruption,
        }
    }

    /// Damages `event` if it falls in the damaged period.
    pub(crate) fn apply<R: Rng + ?Sized>(&self, world: &World, rng: &mut R, event: &mut Event) {
        let Some(corruption) = &self.corruption else {
            return;
        };
        if !corruption.is_active_at(world.config().start, event.timestamp) {
            return;
        }
        let unknown = rng.gen::<f64>() < corruption.unknown_item_share;
        let missing = rng.gen::<f64>() < corruption.missing_field_share;
        if unknown {
            event.item_id =
                ItemId::new_unchecked(format!("{UNKNOWN_PREFIX}{:08x}", rng.gen::<u32>()));
        }
        if missing {
            event.context.clear();
            if event.action == Action::Purchase {
                event.value = None;
            }
        }
    }
}

impl World {
    /// What is wrong with `event` against the truth: its item is not in the catalog, or
    /// it lacks the fields every simulated event carries (a `device` in its context,
    /// a `value` on a purchase). An event the simulator generated is damaged exactly
    /// when the corrupted stream damaged it, so shares measured by the monitor can be
    /// checked against these.
    pub fn damage_of(&self, event: &Event) -> EventDamage {
        let missing_value = event.action == Action::Purchase && event.value.is_none();
        EventDamage {
            unknown_item: self.item_index(event.item_id.as_str()).is_none(),
            missing_fields: !event.context.contains_key("device") || missing_value,
        }
    }

    /// Whether the stream is damaged at `at` (the configured corruption's period).
    pub fn is_corrupted_at(&self, at: flywheel_core::Timestamp) -> bool {
        let config = self.config();
        config
            .corruption
            .is_some_and(|c| c.is_active_at(config.start, at))
    }
}
