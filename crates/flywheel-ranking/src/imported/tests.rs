//! The imported model behind the ranker seam: binding, scoring featurised vectors,
//! storage round trip and load-time errors.

use super::*;
use crate::{Ranker, FEATURE_NAMES};

/// A LightGBM model over two flywheel features, one of them under its own name:
/// `ctr ≤ 0.5 → 1 | 2` plus `item_price_log1p ≤ 3 → 10 | 20`.
fn lightgbm_text() -> String {
    let tree = |index: usize, feature: usize, threshold: f64, low: f64, high: f64| {
        format!(
            "Tree={index}\nnum_leaves=2\nnum_cat=0\nsplit_feature={feature}\nthreshold={threshold}\n\
             decision_type=2\nleft_child=-1\nright_child=-2\nleaf_value={low} {high}\n\n"
        )
    };
    format!(
        "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nmax_feature_idx=1\n\
         objective=lambdarank\nfeature_names=ctr item_price_log1p\ntree_sizes=1 1\n\n{}{}end of trees\n",
        tree(0, 0, 0.5, 1.0, 2.0),
        tree(1, 1, 3.0, 10.0, 20.0)
    )
}

fn manifest() -> FeatureManifest {
    FeatureManifest::from_json(
        r#"{"format": "lightgbm", "features": {"ctr": "item_ctr_log_odds"}}"#,
    )
    .unwrap()
}

fn index_of(name: &str) -> usize {
    FEATURE_NAMES.iter().position(|n| *n == name).unwrap()
}

fn model() -> ImportedModel {
    let booster = ImportedBooster::parse(&lightgbm_text(), ModelFormat::LightGbm).unwrap();
    ImportedModel::new(booster, &manifest()).unwrap()
}

#[test]
fn scores_featurised_vectors_through_the_manifest() {
    let model = model();
    assert_eq!(
        model.inputs(),
        [index_of("item_ctr_log_odds"), index_of("item_price_log1p")]
    );
    let mut features = vec![0.0f32; FEATURE_NAMES.len()];
    features[index_of("item_ctr_log_odds")] = 0.7;
    features[index_of("item_price_log1p")] = 2.0;
    let ranker = Ranker::from(model);
    assert_eq!(ranker.kind(), "imported_lightgbm");
    assert!(ranker.accepts_current_features());
    assert_eq!(ranker.predict(&features), 2.0 + 10.0);
    features[index_of("item_ctr_log_odds")] = 0.1;
    features[index_of("item_price_log1p")] = 3.5;
    assert_eq!(ranker.predict(&features), 1.0 + 20.0);
}

#[test]
fn survives_the_registry_encoding() {
    let ranker = Ranker::from(model());
    let bytes = bincode::serialize(&ranker).unwrap();
    let back: Ranker = bincode::deserialize(&bytes).unwrap();
    let features = vec![0.25f32; FEATURE_NAMES.len()];
    assert_eq!(back.predict(&features), ranker.predict(&features));
    match back {
        Ranker::Imported(model) => assert_eq!(model, self::model()),
        other => panic!("decoded as {}", other.kind()),
    }
}

#[test]
fn load_errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.txt");
    let error = ImportedBooster::load(&missing, ModelFormat::LightGbm).unwrap_err();
    assert!(error.to_string().contains("nope.txt"), "{error}");

    let truncated = dir.path().join("cut.txt");
    let text = lightgbm_text();
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    let error = ImportedBooster::load(&truncated, ModelFormat::LightGbm).unwrap_err();
    assert!(error.to_string().contains("cut.txt"), "{error}");
    assert!(error.to_string().contains("truncated"), "{error}");

    let error = ImportedBooster::load(&truncated, ModelFormat::XgBoost).unwrap_err();
    assert!(error.to_string().contains("LightGBM"), "{error}");

    let binary = dir.path().join("m.ubj");
    std::fs::write(&binary, [b'{', b'L', 0xff, 0xfe]).unwrap();
    let error = ImportedBooster::load(&binary, ModelFormat::XgBoost).unwrap_err();
    assert!(error.to_string().contains("not UTF-8"), "{error}");
}

#[test]
fn a_manifest_naming_a_missing_flywheel_feature_fails_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.txt");
    std::fs::write(&model_path, lightgbm_text()).unwrap();
    let manifest_path = dir.path().join("manifest.json");
    std::fs::write(&manifest_path, r#"{"features": {"ctr": "item_ctr"}}"#).unwrap();
    let error =
        ImportedModel::load(&model_path, ModelFormat::LightGbm, &manifest_path).unwrap_err();
    assert!(error.to_string().contains("`item_ctr`"), "{error}");

    std::fs::write(
        &manifest_path,
        r#"{"format": "xgboost", "features": {"ctr": "item_ctr_log_odds"}}"#,
    )
    .unwrap();
    let error =
        ImportedModel::load(&model_path, ModelFormat::LightGbm, &manifest_path).unwrap_err();
    assert!(error.to_string().contains("loaded as lightgbm"), "{error}");

    std::fs::write(
        &manifest_path,
        r#"{"features": {"ctr": "item_ctr_log_odds"}}"#,
    )
    .unwrap();
    assert!(ImportedModel::load(&model_path, ModelFormat::LightGbm, &manifest_path).is_ok());
}

#[test]
fn formats_parse_from_their_cli_names() {
    assert_eq!(
        "lightgbm".parse::<ModelFormat>().unwrap(),
        ModelFormat::LightGbm
    );
    assert_eq!(
        "xgboost".parse::<ModelFormat>().unwrap(),
        ModelFormat::XgBoost
    );
    let error = "onnx".parse::<ModelFormat>().unwrap_err();
    assert!(error.to_string().contains("onnx"), "{error}");
}
