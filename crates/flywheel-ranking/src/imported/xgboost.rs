//! XGBoost's JSON model format (what `Booster.save_model("m.json")` writes) and
//! XGBoost's own CPU prediction rule, re-implemented (no C++ linked).
//!
//! The trees are `learner.gradient_booster.model.trees[*]`, each a set of parallel
//! arrays over node ids: `left_children` (−1 for a leaf), `right_children`,
//! `split_indices` (the feature), `split_conditions` (the threshold, or a leaf's output
//! with the learning rate folded in), `default_left` (where a missing value goes) and
//! `split_type` (1 = categorical). A categorical node's categories are
//! `categories[categories_segments[k]..][..categories_sizes[k]]` for the `k` with
//! `categories_nodes[k]` = the node: the categories that go **right**.
//!
//! Prediction follows XGBoost exactly, in `f32`: each value is rounded to `f32`; NaN is
//! missing and takes the default child; a numerical node sends `x < threshold` left;
//! a categorical node sends a value right iff it is a valid category (`0 ≤ x < 2^24`)
//! whose truncation is in the node's set; the margin starts at the base score — stored
//! in the output space (a probability for `binary:logistic`, turned into a margin with
//! `−ln(1/b − 1)` as XGBoost does) — and adds each tree's leaf in `f32`, in file order;
//! `binary:logistic` returns `1/(1+exp(−margin))`, ranking objectives the margin.

use serde::{Deserialize, Serialize};

use crate::{RankingError, Result};

const FORMAT: &str = "XGBoost JSON";
/// XGBoost's `OutOfRangeCat()`: category values at or above this are invalid.
const MAX_CATEGORY: f32 = 16_777_216.0;

/// How XGBoost turns the margin into a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum XgBoostOutput {
    /// `1 / (1 + exp(−margin))`: `binary:logistic`, `reg:logistic`.
    Sigmoid,
    /// The margin: ranking (`rank:ndcg`, `rank:pairwise`, `rank:map`),
    /// `binary:logitraw` and the identity-link regression objectives.
    Raw,
}

/// A parsed XGBoost model (`gbtree` booster, one output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct XgBoostModel {
    feature_names: Vec<String>,
    objective: String,
    output: XgBoostOutput,
    base_margin: f32,
    trees: Vec<Tree>,
}

/// One tree: nodes by id, and the category bitsets of its categorical nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tree {
    nodes: Vec<Node>,
    category_sets: Vec<Vec<u32>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Node {
    /// −1 for a leaf.
    left: i32,
    right: i32,
    feature: usize,
    /// The threshold of a split, the output of a leaf.
    value: f32,
    default_left: bool,
    /// Index into `category_sets` for a categorical split.
    categories: Option<usize>,
}

impl XgBoostModel {
    /// Parses the text of an XGBoost JSON model file.
    ///
    /// Refuses, naming what is wrong: another format (LightGBM text, UBJSON), a
    /// truncated file, `dart`/`gblinear` boosters, multi-class or multi-target models,
    /// unsupported objectives, and arrays whose lengths or indices do not make a tree.
    pub fn parse(text: &str) -> Result<Self> {
        let trimmed = text.trim_start();
        if trimmed.starts_with("tree") {
            return Err(bad(
                "the file starts with `tree`: it looks like a LightGBM text model (use --format lightgbm)".into(),
            ));
        }
        if !trimmed.starts_with('{') {
            return Err(bad(
                "the file does not start with `{`: an XGBoost JSON model is one JSON object".into(),
            ));
        }
        let file: json::File = serde_json::from_str(text).map_err(|error| {
            let hint = if error.is_eof() {
                " (the file ends early: is it truncated?)"
            } else {
                ""
            };
            bad(format!("{error}{hint}"))
        })?;
        Self::from_file(file)
    }

    fn from_file(file: json::File) -> Result<Self> {
        let learner = file.learner;
        let booster = learner.gradient_booster;
        if booster.name != "gbtree" {
            return Err(bad(format!(
                "booster `{}` is not supported (only gbtree is)",
                booster.name
            )));
        }
        let model = booster
            .model
            .ok_or_else(|| bad("gradient_booster has no `model`".into()))?;
        let param = &learner.learner_model_param;
        check_single_output(param)?;
        let feature_count = parse_count("num_feature", &param.num_feature)?;
        if model.tree_info.iter().any(|&group| group != 0) {
            return Err(bad(
                "tree_info names output groups other than 0: multi-class models are not supported"
                    .into(),
            ));
        }
        let objective = learner.objective.name;
        let (output, base_margin) = output_and_margin(&objective, &param.base_score)?;
        let trees = model
            .trees
            .into_iter()
            .enumerate()
            .map(|(index, tree)| Tree::from_json(index, tree, feature_count))
            .collect::<Result<Vec<_>>>()?;
        Ok(XgBoostModel {
            feature_names: feature_names(learner.feature_names, feature_count)?,
            objective,
            output,
            base_margin,
            trees,
        })
    }

    /// The model's feature names in column order (`f0`, `f1`, … when it has none).
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// The objective's name, e.g. `binary:logistic`.
    pub fn objective(&self) -> &str {
        &self.objective
    }

    /// How the margin becomes a prediction.
    pub fn output(&self) -> XgBoostOutput {
        self.output
    }

    /// The margin every row starts from.
    pub fn base_margin(&self) -> f32 {
        self.base_margin
    }

    /// The number of trees.
    pub fn tree_count(&self) -> usize {
        self.trees.len()
    }

    /// The margin for one row in the model's column order (NaN, or a value past the
    /// end of `row`, is missing), accumulated in `f32` as XGBoost does.
    pub fn predict_margin(&self, row: &[f64]) -> f32 {
        let mut margin = self.base_margin;
        for tree in &self.trees {
            margin += tree.predict(row);
        }
        margin
    }

    /// What XGBoost's `predict` returns for the row: a probability for
    /// `binary:logistic`, the margin for ranking objectives.
    pub fn predict(&self, row: &[f64]) -> f32 {
        let margin = self.predict_margin(row);
        match self.output {
            XgBoostOutput::Sigmoid => 1.0 / (1.0 + (-margin).exp()),
            XgBoostOutput::Raw => margin,
        }
    }
}

fn bad(reason: String) -> RankingError {
    RankingError::BadModel {
        format: FORMAT,
        reason,
    }
}

fn parse_count(field: &str, text: &str) -> Result<usize> {
    text.trim().parse().map_err(|_| {
        bad(format!(
            "learner_model_param.{field} = `{text}` is not a count"
        ))
    })
}

fn check_single_output(param: &json::ModelParam) -> Result<()> {
    let classes = param
        .num_class
        .as_deref()
        .map(|n| parse_count("num_class", n))
        .transpose()?;
    if classes.unwrap_or(0) > 1 {
        return Err(bad(
            "num_class > 1: multi-class models are not supported".into()
        ));
    }
    let targets = param
        .num_target
        .as_deref()
        .map(|n| parse_count("num_target", n))
        .transpose()?;
    if targets.unwrap_or(1) > 1 {
        return Err(bad(
            "num_target > 1: multi-target models are not supported".into()
        ));
    }
    Ok(())
}

/// The objective's output transform and the base score as a margin.
///
/// XGBoost stores `base_score` in the output space (`"5E-1"`, or `"[5E-1]"` since 3.0)
/// and turns it into a margin with the objective's link, in `f32`.
fn output_and_margin(objective: &str, base_score: &str) -> Result<(XgBoostOutput, f32)> {
    let text = base_score
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if text.contains(',') {
        return Err(bad(format!(
            "base_score `{base_score}` holds several values: multi-output models are not supported"
        )));
    }
    let score: f32 = text
        .trim()
        .parse()
        .map_err(|_| bad(format!("base_score `{base_score}` is not a number")))?;
    match objective {
        "binary:logistic" | "reg:logistic" => Ok((XgBoostOutput::Sigmoid, logit(score)?)),
        "binary:logitraw" => Ok((XgBoostOutput::Raw, logit(score)?)),
        "rank:ndcg"
        | "rank:pairwise"
        | "rank:map"
        | "reg:squarederror"
        | "reg:linear"
        | "reg:absoluteerror"
        | "reg:pseudohubererror" => Ok((XgBoostOutput::Raw, score)),
        _ => Err(bad(format!(
            "objective `{objective}` is not supported (binary:logistic, binary:logitraw, \
             reg:logistic, rank:ndcg, rank:pairwise, rank:map and the identity-link \
             regression objectives are)"
        ))),
    }
}

/// XGBoost's `ProbToMargin` for the logistic link, in `f32`.
fn logit(probability: f32) -> Result<f32> {
    if !(probability > 0.0 && probability < 1.0) {
        return Err(bad(format!(
            "base_score {probability} must lie strictly between 0 and 1 for a logistic objective"
        )));
    }
    Ok(-(1.0f32 / probability - 1.0f32).ln())
}

fn feature_names(names: Vec<String>, count: usize) -> Result<Vec<String>> {
    if names.is_empty() {
        return Ok((0..count).map(|j| format!("f{j}")).collect());
    }
    if names.len() != count {
        return Err(bad(format!(
            "feature_names lists {} names, num_feature says {count}",
            names.len()
        )));
    }
    Ok(names)
}

impl Tree {
    fn from_json(index: usize, tree: json::Tree, feature_count: usize) -> Result<Tree> {
        let error = |reason: String| bad(format!("tree {index}: {reason}"));
        let leaf_size = tree.tree_param.size_leaf_vector.trim();
        if !matches!(leaf_size, "0" | "1") {
            return Err(error(format!(
                "size_leaf_vector={leaf_size}: vector leaves (multi-target trees) are not supported"
            )));
        }
        let count = tree.left_children.len();
        let lengths = [
            ("right_children", tree.right_children.len()),
            ("split_indices", tree.split_indices.len()),
            ("split_conditions", tree.split_conditions.len()),
            ("default_left", tree.default_left.len()),
        ];
        for (name, length) in lengths {
            if length != count {
                return Err(error(format!(
                    "`{name}` has {length} entries, `left_children` has {count}"
                )));
            }
        }
        if !tree.split_type.is_empty() && tree.split_type.len() != count {
            return Err(error(format!(
                "`split_type` has {} entries, `left_children` has {count}",
                tree.split_type.len()
            )));
        }
        if count == 0 {
            return Err(error("the tree has no nodes".into()));
        }
        let category_sets = category_sets(&tree).map_err(error)?;
        let mut nodes = Vec::with_capacity(count);
        for id in 0..count {
            nodes.push(node(&tree, id, feature_count, &category_sets.0).map_err(error)?);
        }
        let built = Tree {
            nodes,
            category_sets: category_sets.1,
        };
        built.check_shape().map_err(error)?;
        Ok(built)
    }

    /// Every node reached once from the root, so prediction always ends at a leaf.
    fn check_shape(&self) -> std::result::Result<(), String> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![0usize];
        while let Some(id) = stack.pop() {
            if seen[id] {
                return Err(format!("node {id} is reached twice: not a tree"));
            }
            seen[id] = true;
            let node = &self.nodes[id];
            if node.left >= 0 {
                stack.push(node.left as usize);
                stack.push(node.right as usize);
            }
        }
        Ok(())
    }

    fn predict(&self, row: &[f64]) -> f32 {
        let mut node = &self.nodes[0];
        while node.left >= 0 {
            let value = row.get(node.feature).map_or(f32::NAN, |v| *v as f32);
            let go_left = if value.is_nan() {
                node.default_left
            } else if let Some(set) = node.categories {
                !in_category_set(&self.category_sets[set], value)
            } else {
                value < node.value
            };
            let next = if go_left { node.left } else { node.right };
            node = &self.nodes[next as usize];
        }
        node.value
    }
}

/// Whether a value is a valid category whose bit is set (XGBoost's `Decision` negated).
fn in_category_set(bits: &[u32], value: f32) -> bool {
    if !(0.0..MAX_CATEGORY).contains(&value) {
        return false;
    }
    let category = value as usize;
    bits.get(category / 32)
        .is_some_and(|word| (word >> (category % 32)) & 1 == 1)
}

/// Per node id, the index of its category set (if categorical), and the sets as bitsets.
type CategorySets = (Vec<Option<usize>>, Vec<Vec<u32>>);

fn category_sets(tree: &json::Tree) -> std::result::Result<CategorySets, String> {
    let count = tree.left_children.len();
    let mut by_node = vec![None; count];
    let mut sets = Vec::new();
    let k = tree.categories_nodes.len();
    if tree.categories_segments.len() != k || tree.categories_sizes.len() != k {
        return Err(format!(
            "categories_nodes has {k} entries, categories_segments {} and categories_sizes {}",
            tree.categories_segments.len(),
            tree.categories_sizes.len()
        ));
    }
    for i in 0..k {
        let node = usize::try_from(tree.categories_nodes[i])
            .ok()
            .filter(|&n| n < count)
            .ok_or_else(|| {
                format!(
                    "categories_nodes[{i}] = {} is not a node",
                    tree.categories_nodes[i]
                )
            })?;
        let start = usize::try_from(tree.categories_segments[i]).unwrap_or(usize::MAX);
        let size = usize::try_from(tree.categories_sizes[i]).unwrap_or(usize::MAX);
        let values = start
            .checked_add(size)
            .and_then(|end| tree.categories.get(start..end))
            .ok_or_else(|| format!("the categories of node {node} lie outside `categories`"))?;
        by_node[node] = Some(sets.len());
        sets.push(
            bitset(values)
                .map_err(|c| format!("node {node} has category {c}, expected 0 ≤ c < 2^24"))?,
        );
    }
    Ok((by_node, sets))
}

fn bitset(categories: &[i64]) -> std::result::Result<Vec<u32>, i64> {
    let mut bits = Vec::new();
    for &category in categories {
        if !(0..MAX_CATEGORY as i64).contains(&category) {
            return Err(category);
        }
        let category = category as usize;
        if bits.len() <= category / 32 {
            bits.resize(category / 32 + 1, 0u32);
        }
        bits[category / 32] |= 1 << (category % 32);
    }
    Ok(bits)
}

fn node(
    tree: &json::Tree,
    id: usize,
    feature_count: usize,
    category_of: &[Option<usize>],
) -> std::result::Result<Node, String> {
    let count = tree.left_children.len() as i64;
    let left = tree.left_children[id];
    let right = tree.right_children[id];
    let value = tree.split_conditions[id] as f32;
    let default_left = tree.default_left[id].is_true();
    if left == -1 {
        return Ok(Node {
            left: -1,
            right: -1,
            feature: 0,
            value,
            default_left,
            categories: None,
        });
    }
    if !(1..count).contains(&left) || !(1..count).contains(&right) {
        return Err(format!(
            "node {id} has children {left} and {right}, the tree has {count} nodes"
        ));
    }
    let feature = usize::try_from(tree.split_indices[id])
        .ok()
        .filter(|&f| f < feature_count)
        .ok_or_else(|| {
            format!(
                "node {id} splits on feature {}, the model has {feature_count}",
                tree.split_indices[id]
            )
        })?;
    let categorical = tree.split_type.get(id).is_some_and(|&t| t == 1);
    let categories = if categorical {
        Some(category_of[id].ok_or_else(|| format!("categorical node {id} has no categories"))?)
    } else {
        None
    };
    Ok(Node {
        left: left as i32,
        right: right as i32,
        feature,
        value,
        default_left,
        categories,
    })
}

/// The parts of the JSON document the evaluator reads (everything else is ignored).
mod json {
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct File {
        pub learner: Learner,
    }

    #[derive(Deserialize)]
    pub struct Learner {
        pub learner_model_param: ModelParam,
        pub objective: Objective,
        pub gradient_booster: GradientBooster,
        #[serde(default)]
        pub feature_names: Vec<String>,
    }

    #[derive(Deserialize)]
    pub struct ModelParam {
        pub base_score: String,
        pub num_feature: String,
        #[serde(default)]
        pub num_class: Option<String>,
        #[serde(default)]
        pub num_target: Option<String>,
    }

    #[derive(Deserialize)]
    pub struct Objective {
        pub name: String,
    }

    #[derive(Deserialize)]
    pub struct GradientBooster {
        pub name: String,
        #[serde(default)]
        pub model: Option<GbTreeModel>,
    }

    #[derive(Deserialize)]
    pub struct GbTreeModel {
        pub trees: Vec<Tree>,
        #[serde(default)]
        pub tree_info: Vec<i64>,
    }

    #[derive(Deserialize)]
    pub struct Tree {
        pub tree_param: TreeParam,
        pub left_children: Vec<i64>,
        pub right_children: Vec<i64>,
        pub split_indices: Vec<i64>,
        pub split_conditions: Vec<f64>,
        pub default_left: Vec<Flag>,
        #[serde(default)]
        pub split_type: Vec<u8>,
        #[serde(default)]
        pub categories: Vec<i64>,
        #[serde(default)]
        pub categories_nodes: Vec<i64>,
        #[serde(default)]
        pub categories_segments: Vec<i64>,
        #[serde(default)]
        pub categories_sizes: Vec<i64>,
    }

    #[derive(Deserialize)]
    pub struct TreeParam {
        #[serde(default = "one")]
        pub size_leaf_vector: String,
    }

    fn one() -> String {
        "1".into()
    }

    /// `default_left` is 0/1 in files from XGBoost 1.x–3.x, booleans in some writers.
    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Flag {
        Int(i64),
        Bool(bool),
    }

    impl Flag {
        pub fn is_true(&self) -> bool {
            match self {
                Flag::Int(n) => *n != 0,
                Flag::Bool(b) => *b,
            }
        }
    }
}

#[cfg(test)]
#[path = "xgboost_tests.rs"]
mod tests;
