//! Property tests (proptest): generated batches written and read back, arbitrary bytes
//! as a segment file, and a last segment cut anywhere. The same properties as the
//! `log_recovery` fuzz target (`fuzz/` at the repository root), at a few hundred cases.

use super::*;
use proptest::prelude::*;

fn small_segments(dir: &Path) -> LogConfig {
    let mut config = config(dir);
    config.segment_max_bytes = 256;
    config.max_batch_delay = Duration::ZERO;
    config
}

fn all_records(log: &EventLog) -> Vec<Vec<u8>> {
    log.read_from(0)
        .expect("reads from 0")
        .map(|item| item.expect("every record reads").1)
        .collect()
}

fn batches() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
    let payload = prop::collection::vec(any::<u8>(), 0..64);
    prop::collection::vec(prop::collection::vec(payload, 1..5), 1..12)
}

/// Writes the batches to a fresh log in `dir`; returns the record count at each batch
/// boundary.
fn write(dir: &Path, batches: &[Vec<Vec<u8>>]) -> Vec<usize> {
    let (log, _) = open(small_segments(dir));
    let mut boundaries = vec![0];
    for batch in batches {
        log.append_batch(batch).expect("appends");
        boundaries.push(boundaries[boundaries.len() - 1] + batch.len());
    }
    log.close().expect("closes");
    boundaries
}

/// Found by the `log_recovery` fuzz target: a last segment whose header was incomplete
/// was rewritten, but the report said 0 bytes dropped whatever the partial header held.
#[test]
fn a_rewritten_partial_header_reports_the_bytes_it_dropped() {
    for partial in [&b""[..], b"FLYWLOG\0\x01", &[0xA5; 32]] {
        let dir = tempfile::tempdir().expect("a temp dir");
        let segment = dir.path().join(format!("{:020}.log", 0));
        std::fs::write(&segment, partial).expect("writes");
        let (log, report) = open(small_segments(dir.path()));
        let cut = report.truncated.expect("the rewrite is reported");
        assert_eq!(
            (cut.valid_bytes, cut.dropped_bytes),
            (SEGMENT_HEADER, partial.len() as u64)
        );
        assert_eq!(file_len(&segment), SEGMENT_HEADER);
        assert_eq!(log.append(b"x").expect("appends"), 0);
        log.close().expect("closes");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn written_batches_read_back_after_a_reopen(batches in batches()) {
        let dir = tempfile::tempdir().expect("a temp dir");
        write(dir.path(), &batches);
        let (log, report) = open(small_segments(dir.path()));
        let written: Vec<Vec<u8>> = batches.into_iter().flatten().collect();
        prop_assert_eq!(report.truncated, None);
        prop_assert_eq!(report.records, written.len() as u64);
        prop_assert_eq!(all_records(&log), written);
        log.close().expect("closes");
    }

    #[test]
    fn a_last_segment_cut_anywhere_recovers_to_whole_batches(
        batches in batches(), cut in any::<prop::sample::Index>()
    ) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let boundaries = write(dir.path(), &batches);
        let last = segment_paths(dir.path()).expect("segments").pop().expect("a segment");
        let bytes = std::fs::read(&last).expect("reads");
        let keep = cut.index(bytes.len() + 1);
        std::fs::write(&last, &bytes[..keep]).expect("cuts");
        let (log, report) = open(small_segments(dir.path()));
        let records = all_records(&log);
        let written: Vec<Vec<u8>> = batches.into_iter().flatten().collect();
        prop_assert!(boundaries.contains(&records.len()), "a batch was cut in two");
        prop_assert_eq!(&records[..], &written[..records.len()]);
        prop_assert_eq!(report.records, records.len() as u64);
        log.close().expect("closes");
    }

    #[test]
    fn arbitrary_bytes_as_a_segment_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let segment = dir.path().join(format!("{:020}.log", 0));
        std::fs::write(&segment, &bytes).expect("writes");
        match EventLog::open(small_segments(dir.path())) {
            Err(_) => prop_assert_eq!(std::fs::read(&segment).expect("reads"), bytes),
            Ok((log, report)) => {
                prop_assert_eq!(all_records(&log).len() as u64, report.records);
                log.close().expect("closes");
            }
        }
    }
}
