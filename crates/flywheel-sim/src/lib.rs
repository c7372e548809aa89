//! A deterministic synthetic shop with ground truth.
