//! # flywheel-sim: a synthetic shop that knows the truth
//!
//! Evaluation code can only be trusted once it has been checked against a world
//! whose answers are known. This crate builds such a world from a seed:
//!
//! * a **catalog** of items in categories (`electronics/audio`, `books/scifi`…) with
//!   titles drawn from word lists, tags, log-normal prices per category, creation
//!   times (some items appear during the run, for cold start) and a long-tailed
//!   prominence;
//! * **users** with skewed activity, Dirichlet tastes over categories, latent
//!   vectors, price sensitivity, country and device;
//! * a **behaviour model** ([`ClickModel`]): position bias `1/(1+p)^0.7`, a true
//!   `P(click | examined)` per user and item, `P(purchase | click)` that falls with
//!   price, carts before purchases, purchases hours after the click;
//! * a **site** (the logging policy): popular-in-your-categories lists with
//!   epsilon exploration, each slot logged with its exact propensity;
//! * **browse chains** from clicked items to similar items, so co-visitation has signal;
//! * optional **drift** ([`TasteDrift`]): category tastes shift on a given day;
//! * an optional **corrupted stream** ([`StreamCorruption`]): from a given day, a
//!   share of events name unknown items or lose their optional fields
//!   ([`World::damage_of`] finds them again).
//!
//! [`simulate`] runs the history in memory ([`simulate_streaming`] and
//! [`simulate_to_dir`] without holding it, for load tests); [`write_dataset`] writes `items.jsonl`,
//! `users.jsonl`, `events.jsonl` and `impressions.jsonl` in the wire format
//! `flywheel import` reads, plus `truth.json`, which [`read_truth`] loads back into
//! a [`World`] whose [`World::true_preference`] answers "what does this user really
//! like?". The same seed gives byte-identical files.
//!
//! For online experiments, [`World::arrivals`] says when users come and
//! [`World::respond`] lets a simulated user react to a list flywheel served, so an
//! A/B test or an interleaving run can be compared with [`World::expected_clicks`],
//! the true value of each list.
//!
//! ```
//! use flywheel_sim::{simulate, SimConfig};
//! let sim = simulate(&SimConfig { users: 20, items: 30, days: 2, ..SimConfig::small() }).unwrap();
//! assert!(sim.events.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
//! let truth = sim.world.true_preference(0, 0);
//! assert!((0.0..=1.0).contains(&truth));
//! ```

mod behaviour;
mod catalog;
mod config;
mod corrupt;
mod dataset;
mod error;
mod fenwick;
mod population;
mod respond;
mod rng;
mod session;
mod similar;
mod simulate;
mod site;
mod taxonomy;
mod truth;
mod world;

pub use config::{SimConfig, StreamCorruption, TasteDrift};
pub use corrupt::EventDamage;
pub use dataset::{read_events, read_truth, simulate_to_dir, write_dataset, DatasetFiles};
pub use error::{Result, SimError};
pub use simulate::{simulate, simulate_streaming, Simulation, LOGGING_POLICY_VERSION};
pub use truth::{ClickModel, ItemTruth, Truth, UserTruth, TRUTH_FORMAT};
pub use world::World;
