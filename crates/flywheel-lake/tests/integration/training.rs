use flywheel_core::LogRecord;
use flywheel_lake::read_records;
use flywheel_offline::training::{train, TrainReport};
use flywheel_pipeline::{EngineConfig, ModelSet};

use crate::fixture::with_offsets;
use crate::roundtrip::exported;

fn train_on(records: &[(u64, LogRecord)]) -> (ModelSet, TrainReport) {
    let replay = |visit: &mut dyn FnMut(u64, &LogRecord) -> flywheel_offline::Result<()>| {
        records
            .iter()
            .try_for_each(|(offset, record)| visit(*offset, record))
    };
    let config = EngineConfig::default();
    train(&config, &replay, "v1".into(), &mut |_| {}).unwrap()
}

/// The report without its timings.
fn figures(report: &TrainReport) -> serde_json::Value {
    let mut value = serde_json::to_value(report).unwrap();
    value.as_object_mut().unwrap().remove("seconds");
    value
}

fn model_bytes(models: &ModelSet) -> Vec<u8> {
    let mut bytes = bincode::serialize(&models.retrieval).unwrap();
    bytes.extend(bincode::serialize(&models.ranker).unwrap());
    bytes
}

#[test]
fn a_model_trained_from_the_lake_equals_one_trained_from_the_log() {
    let (_dir, lake) = exported(1_000);
    let from_log = train_on(&with_offsets(crate::fixture::records()));
    let from_lake = train_on(&read_records(&lake).unwrap());
    assert_eq!(figures(&from_lake.1), figures(&from_log.1));
    assert!(from_log.1.interactions > 100);
    assert_eq!(
        model_bytes(&from_lake.0),
        model_bytes(&from_log.0),
        "models differ"
    );
}
