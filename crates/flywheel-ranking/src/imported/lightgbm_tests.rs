//! Hand-written LightGBM text models with predictions worked out by hand.

use super::*;

/// x0 ≤ 0.5 (NaN missing, default left) → [x1 ≤ −1.25 (no missing type) → 1 | 100] | 10.
const NUMERICAL: &str = "Tree=0
num_leaves=3
num_cat=0
split_feature=0 1
split_gain=1 1
threshold=0.5 -1.25
decision_type=10 0
left_child=1 -1
right_child=-2 -3
leaf_value=1 10 100
shrinkage=1
";

/// x1 ≤ −1 (zeros missing, default left) → 0.25 | −0.5.
const ZERO_AS_MISSING: &str = "Tree=1
num_leaves=2
num_cat=0
split_feature=1
split_gain=1
threshold=-1
decision_type=6
left_child=-1
right_child=-2
leaf_value=0.25 -0.5
shrinkage=0.1
";

/// x2 in {1, 3, 33} → 7 | −7.
const CATEGORICAL: &str = "Tree=2
num_leaves=2
num_cat=1
split_feature=2
split_gain=1
threshold=0
decision_type=1
left_child=-1
right_child=-2
leaf_value=7 -7
cat_boundaries=0 2
cat_threshold=10 2
is_linear=0
shrinkage=0.1
";

/// A single-leaf tree (a constant).
const CONSTANT: &str = "Tree=3
num_leaves=1
num_cat=0
split_feature=
split_gain=
threshold=
decision_type=
left_child=
right_child=
leaf_value=0.125
";

fn model_text(objective: &str, trees: &[&str]) -> String {
    let mut text = format!(
        "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n\
         max_feature_idx=2\nobjective={objective}\nfeature_names=a b c\n\
         feature_infos=[-5:5] [-5:5] 0:1:3:33\ntree_sizes={}\n\n",
        vec!["100"; trees.len()].join(" ")
    );
    for tree in trees {
        text.push_str(tree);
        text.push('\n');
    }
    text.push_str("end of trees\n\nfeature_importances:\na=1\n\nparameters:\n[boosting: gbdt]\nend of parameters\n\npandas_categorical:null\n");
    text
}

fn one_tree(tree: &str) -> LightGbmModel {
    let tree = tree.replacen(|c: char| c.is_ascii_digit(), "0", 1);
    LightGbmModel::parse(&model_text("lambdarank", &[&tree])).unwrap()
}

const NAN: f64 = f64::NAN;

#[test]
fn numerical_splits_and_nan_default_left() {
    let model = one_tree(NUMERICAL);
    assert_eq!(model.predict(&[0.0, -2.0, 0.0]), 1.0);
    assert_eq!(
        model.predict(&[0.5, 0.0, 0.0]),
        100.0,
        "x ≤ threshold goes left"
    );
    assert_eq!(model.predict(&[0.6, -2.0, 0.0]), 10.0);
    assert_eq!(
        model.predict(&[NAN, -2.0, 0.0]),
        1.0,
        "NaN takes the default (left)"
    );
    assert_eq!(
        model.predict(&[NAN, NAN, 0.0]),
        100.0,
        "missing type None: NaN is 0"
    );
    assert_eq!(model.predict(&[]), 100.0, "absent values are NaN");
}

#[test]
fn zero_as_missing_sends_zeros_nan_and_tiny_values_to_the_default() {
    let model = one_tree(ZERO_AS_MISSING);
    assert_eq!(model.predict(&[0.0, -2.0, 0.0]), 0.25);
    assert_eq!(model.predict(&[0.0, 3.0, 0.0]), -0.5);
    assert_eq!(
        model.predict(&[0.0, 0.0, 0.0]),
        0.25,
        "0 > −1 but is missing"
    );
    assert_eq!(model.predict(&[0.0, -0.0, 0.0]), 0.25);
    assert_eq!(model.predict(&[0.0, NAN, 0.0]), 0.25, "NaN is read as 0");
    assert_eq!(
        model.predict(&[0.0, 1e-36, 0.0]),
        0.25,
        "|x| ≤ 1e-35 is zero"
    );
    assert_eq!(model.predict(&[0.0, 1e-30, 0.0]), -0.5);
}

#[test]
fn categorical_bitsets_follow_lightgbm() {
    let model = one_tree(CATEGORICAL);
    for (value, expected) in [
        (1.0, 7.0),
        (3.0, 7.0),
        (33.0, 7.0),
        (3.9, 7.0),
        (2.0, -7.0),
        (0.0, -7.0),
        (-0.5, -7.0),
        (64.0, -7.0),
        (-1.0, -7.0),
        (1e10, -7.0),
        (NAN, -7.0),
    ] {
        assert_eq!(
            model.predict(&[0.0, 0.0, value]),
            expected,
            "category {value}"
        );
    }
    // With category 0 in the set: NaN is not category 0 (C++'s `(int)NaN` is negative on
    // x86-64, so it goes right, as the Python-trained fixtures confirm), but −0.5 is.
    let with_zero = one_tree(&CATEGORICAL.replace("cat_threshold=10 2", "cat_threshold=5 0"));
    assert_eq!(with_zero.predict(&[0.0, 0.0, 0.0]), 7.0);
    assert_eq!(with_zero.predict(&[0.0, 0.0, -0.5]), 7.0);
    assert_eq!(with_zero.predict(&[0.0, 0.0, 2.0]), 7.0);
    assert_eq!(with_zero.predict(&[0.0, 0.0, NAN]), -7.0);
}

#[test]
fn trees_sum_and_binary_applies_the_sigmoid_slope() {
    let text = model_text(
        "binary sigmoid:0.5",
        &[NUMERICAL, ZERO_AS_MISSING, CATEGORICAL, CONSTANT],
    );
    let model = LightGbmModel::parse(&text).unwrap();
    assert_eq!(model.tree_count(), 4);
    assert_eq!(model.output(), LightGbmOutput::Sigmoid(0.5));
    let row = [0.6, 3.0, 33.0];
    let raw = 10.0 - 0.5 + 7.0 + 0.125;
    assert_eq!(model.predict_raw(&row), raw);
    let expected = 1.0 / (1.0 + (-0.5 * raw).exp());
    assert!((model.predict(&row) - expected).abs() < 1e-15);
    assert_eq!(model.feature_names(), ["a", "b", "c"]);
}

#[test]
fn ranking_and_regression_objectives_are_raw() {
    for objective in ["lambdarank", "rank_xendcg", "regression"] {
        let model = LightGbmModel::parse(&model_text(
            objective,
            &[CONSTANT.replace("Tree=3", "Tree=0").as_str()],
        ))
        .unwrap();
        assert_eq!(model.output(), LightGbmOutput::Raw, "{objective}");
        assert_eq!(model.predict(&[1.0, 2.0, 3.0]), 0.125);
    }
}

fn parse_error(text: &str) -> String {
    LightGbmModel::parse(text).unwrap_err().to_string()
}

#[test]
fn truncated_files_are_refused_at_every_cut() {
    let text = model_text(
        "binary sigmoid:1",
        &[NUMERICAL, ZERO_AS_MISSING, CATEGORICAL],
    );
    let end = text.find("end of trees").unwrap();
    for cut in (0..end).step_by(7) {
        let truncated = &text[..cut];
        assert!(
            LightGbmModel::parse(truncated).is_err(),
            "cut at {cut} was accepted"
        );
    }
    let error = parse_error(&text[..end]);
    assert!(error.contains("truncated"), "{error}");
}

#[test]
fn other_formats_are_named() {
    let error = parse_error("{\"learner\": {}}");
    assert!(error.contains("XGBoost"), "{error}");
    let error = parse_error("ONNX\u{1}binary");
    assert!(error.contains("expected `tree`"), "{error}");
    assert!(parse_error("").contains("empty"));
}

#[test]
fn malformed_trees_are_named() {
    let cases = [
        (
            NUMERICAL.replace("left_child=1 -1", "left_child=1 -7"),
            "points past",
        ),
        (
            NUMERICAL.replace("left_child=1 -1", "left_child=0 -1"),
            "reached twice",
        ),
        (
            NUMERICAL.replace("split_feature=0 1", "split_feature=0 9"),
            "feature 9",
        ),
        (
            NUMERICAL.replace("threshold=0.5 -1.25", "threshold=0.5"),
            "`threshold` has 1 values",
        ),
        (
            NUMERICAL.replace("leaf_value=1 10 100", "leaf_value=1 x 100"),
            "`leaf_value` value 1",
        ),
        (
            NUMERICAL.replace("decision_type=10 0", "decision_type=10 12"),
            "missing type 3",
        ),
        (
            CATEGORICAL.replace("threshold=0", "threshold=1"),
            "bitset index",
        ),
        (
            CATEGORICAL.replace("is_linear=0", "is_linear=1"),
            "linear trees",
        ),
        (
            CATEGORICAL.replace("num_cat=1", "num_cat=18446744073709551615"),
            "`cat_boundaries` has 2 values",
        ),
        (NUMERICAL.replace("num_cat=0\n", ""), "`num_cat` is missing"),
    ];
    for (tree, expected) in cases {
        let tree = tree.replacen(|c: char| c.is_ascii_digit(), "0", 1);
        let error = parse_error(&model_text("lambdarank", &[&tree]));
        assert!(
            error.contains(expected),
            "expected `{expected}` in: {error}"
        );
        assert!(error.contains("tree 0"), "{error}");
    }
}

#[test]
fn unsupported_headers_are_named() {
    let text = model_text(
        "multiclass num_class:3",
        &[CONSTANT.replace("Tree=3", "Tree=0").as_str()],
    );
    assert!(parse_error(&text).contains("`multiclass num_class:3` is not supported"));
    let text = text.replace("num_class=1", "num_class=3");
    assert!(parse_error(&text).contains("num_class=3"));
    let constant = CONSTANT.replace("Tree=3", "Tree=0");
    let text = model_text("lambdarank", &[constant.as_str()])
        .replace("tree_sizes=100", "tree_sizes=100 100");
    assert!(parse_error(&text).contains("tree_sizes lists 2 trees"));
    let text = model_text("lambdarank", &[constant.as_str()])
        .replace("feature_names=a b c", "feature_names=a b");
    assert!(parse_error(&text).contains("feature_names lists 2 names"));
}
