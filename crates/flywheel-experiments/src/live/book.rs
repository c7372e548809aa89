//! The book of experiments: which are running, which layer buckets each holds, and
//! which variant a user gets.
//!
//! Assignment, in two steps, both MurmurHash3 x86_32 (seed 0) modulo 10,000:
//! 1. the layer bucket `mmh3("<layer>:<user_id>") % 10000` picks the experiment of the
//!    layer whose bucket range holds it (experiments of one layer hold disjoint ranges,
//!    so they never share a user);
//! 2. the variant bucket `mmh3("<salt>:<user_id>") % 10000` picks the variant: variants
//!    take contiguous ranges in the order listed, bounded by `round(10000 · cumulative share)`.

use std::collections::BTreeMap;

use flywheel_core::{ExperimentDef, Timestamp};
use serde::{Deserialize, Serialize};

use crate::hash::{assign_bucket, VariantSplit, DEFAULT_BUCKETS};

/// An experiment the log started, with where it stands.
#[derive(Debug, Clone, Serialize)]
pub struct Running {
    /// The definition.
    pub def: ExperimentDef,
    /// The layer bucket range `[start, end)` it holds.
    pub layer_buckets: [u32; 2],
    /// When it started.
    pub started: Timestamp,
    /// When it stopped, if it has.
    pub stopped: Option<Timestamp>,
    #[serde(skip)]
    split: VariantSplit,
}

impl Running {
    /// Whether it still assigns users.
    pub fn is_active(&self) -> bool {
        self.stopped.is_none()
    }

    /// The layer bucket of a user (the first step of assignment).
    pub fn layer_bucket(&self, user_id: &str) -> u32 {
        assign_bucket(user_id, &self.def.layer_name())
    }

    /// Whether the user falls in this experiment's part of its layer.
    pub fn includes(&self, user_id: &str) -> bool {
        let bucket = self.layer_bucket(user_id);
        bucket >= self.layer_buckets[0] && bucket < self.layer_buckets[1]
    }

    /// The index of the user's variant (the second step; only meaningful when
    /// [`Running::includes`] the user).
    pub fn variant_of(&self, user_id: &str) -> usize {
        self.split.assign(user_id, &self.def.salt)
    }
}

/// Why an experiment cannot be started.
#[derive(Debug, Clone, PartialEq)]
pub enum BookError {
    /// An experiment with this id is running.
    AlreadyRunning(String),
    /// No running experiment has this id.
    NotRunning(String),
    /// The layer has too few free buckets for the requested traffic.
    LayerFull {
        /// The layer.
        layer: String,
        /// Buckets asked for.
        wanted: u32,
        /// The longest free run of buckets.
        free: u32,
    },
}

impl std::fmt::Display for BookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BookError::AlreadyRunning(id) => {
                write!(
                    f,
                    "experiment `{id}` is running; stop it first or choose another id"
                )
            }
            BookError::NotRunning(id) => write!(f, "no running experiment `{id}`"),
            BookError::LayerFull {
                layer,
                wanted,
                free,
            } => write!(
                f,
                "layer `{layer}` overlaps: the running experiments leave {free} free buckets \
                 in a row, this traffic needs {wanted} of 10000"
            ),
        }
    }
}

/// Every experiment the log has started, by id. Its serde form keeps each definition
/// as its JSON text (bincode cannot read optional fields left out) and rebuilds the
/// variant splits from the definitions when read back.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(into = "BookImage", from = "BookImage")]
pub struct Book {
    experiments: BTreeMap<String, Running>,
}

/// One experiment as a [`Book`] is stored.
#[derive(Serialize, Deserialize)]
struct RunningImage {
    #[serde(with = "flywheel_core::canonical::as_json")]
    def: ExperimentDef,
    layer_buckets: [u32; 2],
    started: Timestamp,
    stopped: Option<Timestamp>,
}

/// The stored form of a [`Book`].
#[derive(Serialize, Deserialize)]
struct BookImage {
    experiments: Vec<RunningImage>,
}

impl From<Book> for BookImage {
    fn from(book: Book) -> Self {
        let experiments = book
            .experiments
            .into_values()
            .map(|r| RunningImage {
                def: r.def,
                layer_buckets: r.layer_buckets,
                started: r.started,
                stopped: r.stopped,
            })
            .collect();
        BookImage { experiments }
    }
}

impl From<BookImage> for Book {
    fn from(image: BookImage) -> Self {
        let mut book = Book::default();
        for running in image.experiments {
            let id = running.def.id.clone();
            book.start(running.def, running.layer_buckets, running.started);
            if let Some(at) = running.stopped {
                book.stop(&id, at);
            }
        }
        book
    }
}

/// The buckets a traffic share takes, `round(10000 · traffic)`, at least one.
pub fn buckets_for(traffic: f64) -> u32 {
    ((traffic * f64::from(DEFAULT_BUCKETS)).round() as u32).clamp(1, DEFAULT_BUCKETS)
}

impl Book {
    /// Where a new experiment would go in its layer: the first free run of buckets
    /// long enough for its traffic, or why there is none.
    pub fn place(&self, def: &ExperimentDef) -> Result<[u32; 2], BookError> {
        if self.get(&def.id).is_some_and(Running::is_active) {
            return Err(BookError::AlreadyRunning(def.id.clone()));
        }
        let layer = def.layer_name();
        let wanted = buckets_for(def.traffic);
        let mut taken: Vec<[u32; 2]> = self
            .active()
            .filter(|r| r.def.layer_name() == layer)
            .map(|r| r.layer_buckets)
            .collect();
        taken.sort_unstable();
        let mut cursor = 0;
        let mut longest = 0;
        for range in taken.iter().chain(std::iter::once(&[DEFAULT_BUCKETS; 2])) {
            let gap = range[0].saturating_sub(cursor);
            if gap >= wanted {
                return Ok([cursor, cursor + wanted]);
            }
            longest = longest.max(gap);
            cursor = cursor.max(range[1]);
        }
        Err(BookError::LayerFull {
            layer,
            wanted,
            free: longest,
        })
    }

    /// Where a running experiment would be with `traffic`: its range keeps its start
    /// and grows or shrinks at its end, which must not reach another running
    /// experiment of its layer.
    pub fn place_ramp(&self, id: &str, traffic: f64) -> Result<[u32; 2], BookError> {
        let running = self
            .get(id)
            .filter(|r| r.is_active())
            .ok_or_else(|| BookError::NotRunning(id.to_string()))?;
        let layer = running.def.layer_name();
        let start = running.layer_buckets[0];
        let wanted = buckets_for(traffic);
        let limit = self
            .active()
            .filter(|r| r.def.layer_name() == layer && r.def.id != id)
            .map(|r| r.layer_buckets[0])
            .filter(|&other| other >= start)
            .min()
            .unwrap_or(DEFAULT_BUCKETS);
        if start + wanted > limit {
            return Err(BookError::LayerFull {
                layer,
                wanted,
                free: limit - start,
            });
        }
        Ok([start, start + wanted])
    }

    /// Records a ramp from the log; unknown ids change nothing.
    pub fn ramp(&mut self, id: &str, traffic: f64, layer_buckets: [u32; 2]) {
        if let Some(running) = self.experiments.get_mut(id) {
            running.def.traffic = traffic;
            running.layer_buckets = layer_buckets;
        }
    }

    /// Records a start from the log. A start whose id is running replaces it (the
    /// engine never writes one; a hand-made log may).
    pub fn start(&mut self, def: ExperimentDef, layer_buckets: [u32; 2], at: Timestamp) {
        // The shares were validated when the definition was parsed; a hand-made log
        // with bad ones gets every user in the first variant rather than a panic.
        let split = VariantSplit::new(&def.shares()).unwrap_or_else(|_| VariantSplit::single());
        self.experiments.insert(
            def.id.clone(),
            Running {
                def,
                layer_buckets,
                started: at,
                stopped: None,
                split,
            },
        );
    }

    /// Records a stop from the log; unknown or stopped ids change nothing.
    pub fn stop(&mut self, id: &str, at: Timestamp) {
        if let Some(running) = self.experiments.get_mut(id) {
            running.stopped.get_or_insert(at);
        }
    }

    /// The experiment with this id, running or stopped.
    pub fn get(&self, id: &str) -> Option<&Running> {
        self.experiments.get(id)
    }

    /// Every experiment, by id.
    pub fn all(&self) -> impl Iterator<Item = &Running> {
        self.experiments.values()
    }

    /// The running experiments, by id.
    pub fn active(&self) -> impl Iterator<Item = &Running> {
        self.experiments.values().filter(|r| r.is_active())
    }

    /// The running experiments that include the user, with the user's variant index.
    pub fn assign(&self, user_id: &str) -> Vec<(&Running, usize)> {
        self.active()
            .filter(|r| r.includes(user_id))
            .map(|r| (r, r.variant_of(user_id)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(id: &str, layer: Option<&str>, traffic: f64) -> ExperimentDef {
        let mut v = json!({"id": id, "kind": "ab", "traffic": traffic, "variants": [
            {"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}]});
        if let Some(layer) = layer {
            v["layer"] = json!(layer);
        }
        ExperimentDef::from_json(&v).unwrap()
    }

    #[test]
    fn experiments_of_one_layer_take_disjoint_ranges_and_never_share_a_user() {
        let mut book = Book::default();
        let first = def("e1", Some("home"), 0.3);
        let range = book.place(&first).unwrap();
        assert_eq!(range, [0, 3000]);
        book.start(first, range, Timestamp(0));
        let second = def("e2", Some("home"), 0.7);
        let range = book.place(&second).unwrap();
        assert_eq!(range, [3000, 10000]);
        book.start(second, range, Timestamp(0));
        let third = def("e3", Some("home"), 0.1);
        assert!(matches!(
            book.place(&third),
            Err(BookError::LayerFull { .. })
        ));
        for u in 0..2000 {
            let user = format!("u{u}");
            assert_eq!(book.assign(&user).len(), 1, "{user}");
        }
        book.stop("e1", Timestamp(5));
        assert_eq!(book.place(&third).unwrap(), [0, 1000]);
    }

    #[test]
    fn a_ramp_keeps_its_users_and_stops_at_the_next_experiment() {
        let mut book = Book::default();
        let first = def("e1", Some("home"), 0.2);
        book.start(first, [0, 2000], Timestamp(0));
        book.start(def("e2", Some("home"), 0.5), [5000, 10000], Timestamp(0));
        assert_eq!(book.place_ramp("e1", 0.5).unwrap(), [0, 5000]);
        assert!(matches!(
            book.place_ramp("e1", 0.6),
            Err(BookError::LayerFull { .. })
        ));
        let before: Vec<_> = (0..3000)
            .map(|u| format!("u{u}"))
            .filter(|u| book.get("e1").unwrap().includes(u))
            .map(|u| (book.get("e1").unwrap().variant_of(&u), u))
            .collect();
        book.ramp("e1", 0.5, [0, 5000]);
        let e1 = book.get("e1").unwrap();
        for (variant, user) in &before {
            assert!(e1.includes(user));
            assert_eq!(e1.variant_of(user), *variant);
        }
    }

    #[test]
    fn the_variant_is_the_salt_formula() {
        let mut book = Book::default();
        let d = def("exp-1", None, 1.0);
        book.start(d, [0, 10000], Timestamp(0));
        for u in 0..500 {
            let user = format!("user-{u}");
            let bucket = crate::hash::bucket_mod_10000(crate::hash::murmur3_x86_32(
                format!("exp-1:{user}").as_bytes(),
                0,
            ));
            let (_, variant) = book.assign(&user)[0];
            assert_eq!(variant, usize::from(bucket >= 5000));
        }
    }
}
