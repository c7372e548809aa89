//! Durable append-only event log: segments, CRC per record, group commit, recovery, replay.
