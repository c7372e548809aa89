//! Experiment assignment (MurmurHash3 bucketing) and A/B statistics.
