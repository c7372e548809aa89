//! Candidate channels (ALS, EASE, content, popularity) and blending with quotas.
