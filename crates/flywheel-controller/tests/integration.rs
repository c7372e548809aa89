//! The controller in a closed loop with a toy shop (registry, training jobs, a gate,
//! a monitor), on simulated time: the two self-healing scenarios of the operations
//! issue, at the level of the controller's decisions.

// The toy shop's helpers panic on a broken invariant, like the tests they serve.
#![allow(clippy::unwrap_used)]

#[path = "integration/scenarios.rs"]
mod scenarios;
#[path = "integration/toy.rs"]
mod toy;
