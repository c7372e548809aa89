//! Drift statistics (PSI, KS) and data quality checks.
