//! Ranking features, logistic regression, calibration, re-ranking and explanations.
