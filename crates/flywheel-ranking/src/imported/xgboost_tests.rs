//! Hand-written XGBoost JSON models with predictions worked out by hand.

use super::*;

/// x0 < 0.5 (missing → left) → 0.25 | [x1 < −1 (missing → right) → −0.5 | 1.5].
const NUMERICAL: &str = r#"{"base_weights": [0, 0, 0, 0, 0], "categories": [], "categories_nodes": [],
 "categories_segments": [], "categories_sizes": [], "default_left": [1, 0, 0, 0, 0], "id": 0,
 "left_children": [1, -1, 3, -1, -1], "loss_changes": [1, 0, 1, 0, 0],
 "parents": [2147483647, 0, 0, 2, 2], "right_children": [2, -1, 4, -1, -1],
 "split_conditions": [0.5, 0.25, -1.0, -0.5, 1.5], "split_indices": [0, 0, 1, 0, 0],
 "split_type": [0, 0, 0, 0, 0], "sum_hessian": [1, 1, 1, 1, 1],
 "tree_param": {"num_deleted": "0", "num_feature": "3", "num_nodes": "5", "size_leaf_vector": "1"}}"#;

/// x2 in {1, 3, 33} (missing → right) → right 2 | left −2.
const CATEGORICAL: &str = r#"{"base_weights": [0, 0, 0], "categories": [1, 3, 33], "categories_nodes": [0],
 "categories_segments": [0], "categories_sizes": [3], "default_left": [0, 0, 0], "id": 1,
 "left_children": [1, -1, -1], "loss_changes": [1, 0, 0], "parents": [2147483647, 0, 0],
 "right_children": [2, -1, -1], "split_conditions": [1e-45, -2.0, 2.0], "split_indices": [2, 0, 0],
 "split_type": [1, 0, 0], "sum_hessian": [1, 1, 1],
 "tree_param": {"num_deleted": "0", "num_feature": "3", "num_nodes": "3", "size_leaf_vector": "1"}}"#;

fn model_text(objective: &str, base_score: &str, trees: &[&str]) -> String {
    let info = vec!["0"; trees.len()].join(", ");
    format!(
        r#"{{"learner": {{"attributes": {{}}, "feature_names": ["a", "b", "c"],
 "feature_types": ["float", "float", "c"],
 "gradient_booster": {{"model": {{"gbtree_model_param": {{"num_parallel_tree": "1", "num_trees": "{}"}},
 "iteration_indptr": [], "tree_info": [{info}], "trees": [{}]}}, "name": "gbtree"}},
 "learner_model_param": {{"base_score": "{base_score}", "boost_from_average": "1", "num_class": "0",
 "num_feature": "3", "num_target": "1"}},
 "objective": {{"name": "{objective}", "reg_loss_param": {{"scale_pos_weight": "1"}}}}}},
 "version": [3, 2, 0]}}"#,
        trees.len(),
        trees.join(", ")
    )
}

const NAN: f64 = f64::NAN;

fn raw_model(trees: &[&str]) -> XgBoostModel {
    XgBoostModel::parse(&model_text("rank:ndcg", "[0E0]", trees)).unwrap()
}

#[test]
fn numerical_splits_use_strict_less_than_and_default_children() {
    let model = raw_model(&[NUMERICAL]);
    assert_eq!(model.predict(&[0.0, 0.0, 0.0]), 0.25);
    assert_eq!(
        model.predict(&[0.5, -2.0, 0.0]),
        -0.5,
        "x = threshold goes right"
    );
    assert_eq!(model.predict(&[0.7, -1.0, 0.0]), 1.5);
    assert_eq!(
        model.predict(&[NAN, 5.0, 0.0]),
        0.25,
        "missing → default left"
    );
    assert_eq!(
        model.predict(&[0.7, NAN, 0.0]),
        1.5,
        "missing → default right"
    );
    assert_eq!(model.predict(&[0.7]), 1.5, "absent values are missing");
}

#[test]
fn values_are_compared_in_f32() {
    let model = raw_model(&[NUMERICAL]);
    // 0.49999999 rounds to 0.5f32, which is not < 0.5.
    assert_eq!(model.predict(&[0.499_999_99, -2.0, 0.0]), -0.5);
    assert_eq!(model.predict(&[0.4999, -2.0, 0.0]), 0.25);
}

#[test]
fn categorical_splits_send_the_set_right() {
    let model = raw_model(&[CATEGORICAL]);
    for (value, expected) in [
        (1.0, 2.0),
        (3.0, 2.0),
        (33.0, 2.0),
        (3.9, 2.0),
        (2.0, -2.0),
        (0.0, -2.0),
        (64.0, -2.0),
        (-1.0, -2.0),
        (-0.5, -2.0),
        (1e10, -2.0),
        (NAN, 2.0),
    ] {
        assert_eq!(
            model.predict(&[0.0, 0.0, value]),
            expected,
            "category {value}"
        );
    }
}

#[test]
fn binary_logistic_turns_the_stored_probability_into_a_margin() {
    for base_score in ["[2E-1]", "2E-1"] {
        let text = model_text("binary:logistic", base_score, &[NUMERICAL, CATEGORICAL]);
        let model = XgBoostModel::parse(&text).unwrap();
        let margin = -(1.0f32 / 0.2f32 - 1.0).ln();
        assert_eq!(model.base_margin(), margin);
        assert_eq!(model.predict_margin(&[0.0, 0.0, 3.0]), margin + 0.25 + 2.0);
        let expected = 1.0 / (1.0 + (-(margin + 0.25 + 2.0)).exp());
        assert!((model.predict(&[0.0, 0.0, 3.0]) - expected).abs() < 1e-7);
    }
}

#[test]
fn ranking_objectives_keep_the_base_score_as_the_margin() {
    let text = model_text("rank:pairwise", "[5E-1]", &[NUMERICAL]);
    let model = XgBoostModel::parse(&text).unwrap();
    assert_eq!(model.output(), XgBoostOutput::Raw);
    assert_eq!(model.predict(&[0.0, 0.0, 0.0]), 0.75);
    assert_eq!(model.feature_names(), ["a", "b", "c"]);
}

fn parse_error(text: &str) -> String {
    XgBoostModel::parse(text).unwrap_err().to_string()
}

#[test]
fn truncated_files_are_refused_at_every_cut() {
    let text = model_text("binary:logistic", "[5E-1]", &[NUMERICAL, CATEGORICAL]);
    for cut in (0..text.len() - 1).step_by(5) {
        assert!(
            XgBoostModel::parse(&text[..cut]).is_err(),
            "cut at {cut} was accepted"
        );
    }
    let error = parse_error(&text[..text.len() / 2]);
    assert!(error.contains("truncated"), "{error}");
}

#[test]
fn other_formats_are_named() {
    let error = parse_error("tree\nversion=v4\n");
    assert!(error.contains("LightGBM"), "{error}");
    assert!(parse_error("\u{8}ONNX").contains("does not start with `{`"));
    assert!(parse_error(r#"{"booster": 1}"#).contains("missing field `learner`"));
}

#[test]
fn unsupported_models_are_named() {
    let good = model_text("binary:logistic", "[5E-1]", &[NUMERICAL]);
    let cases = [
        (
            good.replace("\"name\": \"gbtree\"", "\"name\": \"dart\""),
            "booster `dart`",
        ),
        (
            good.replace("\"num_class\": \"0\"", "\"num_class\": \"3\""),
            "multi-class",
        ),
        (
            good.replace("binary:logistic", "multi:softprob"),
            "`multi:softprob` is not supported",
        ),
        (good.replace("[5E-1]", "[0E0]"), "strictly between 0 and 1"),
        (good.replace("[5E-1]", "[5E-1,2E-1]"), "several values"),
        (
            good.replace("\"size_leaf_vector\": \"1\"", "\"size_leaf_vector\": \"3\""),
            "vector leaves",
        ),
    ];
    for (text, expected) in cases {
        let error = parse_error(&text);
        assert!(
            error.contains(expected),
            "expected `{expected}` in: {error}"
        );
    }
}

#[test]
fn malformed_trees_are_named() {
    let cases = [
        (
            NUMERICAL.replace("[1, -1, 3, -1, -1]", "[1, -1, 9, -1, -1]"),
            "children 9",
        ),
        (
            NUMERICAL.replace("[1, -1, 3, -1, -1]", "[1, -1, 1, -1, -1]"),
            "reached twice",
        ),
        (
            NUMERICAL.replace(
                "\"split_indices\": [0, 0, 1, 0, 0]",
                "\"split_indices\": [0, 0, 7, 0, 0]",
            ),
            "feature 7",
        ),
        (
            NUMERICAL.replace("[0.5, 0.25, -1.0, -0.5, 1.5]", "[0.5, 0.25, -1.0]"),
            "`split_conditions` has 3",
        ),
        (
            CATEGORICAL.replace("\"categories\": [1, 3, 33]", "\"categories\": [1, -3, 33]"),
            "category -3",
        ),
        (
            CATEGORICAL.replace("\"categories_sizes\": [3]", "\"categories_sizes\": [4]"),
            "outside `categories`",
        ),
        (
            CATEGORICAL.replace("\"categories_nodes\": [0]", "\"categories_nodes\": []"),
            "categories_nodes has 0",
        ),
    ];
    for (tree, expected) in cases {
        let error = parse_error(&model_text("rank:ndcg", "[0E0]", &[&tree]));
        assert!(
            error.contains(expected),
            "expected `{expected}` in: {error}"
        );
        assert!(error.contains("tree 0"), "{error}");
    }
}
