//! Online features updated from the log; the same definitions replayed offline as of a past moment.
