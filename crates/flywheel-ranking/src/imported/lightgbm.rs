//! LightGBM's text model format (what `Booster.save_model` writes) and LightGBM's own
//! prediction rule, re-implemented from its `tree.h` (no C++ linked).
//!
//! The file is a header of `key=value` lines after a first line `tree`, then one block
//! per tree (`Tree=0`, `Tree=1`, …) and `end of trees`. In a block, internal node `i`
//! splits on `split_feature[i]` at `threshold[i]` with the flags of `decision_type[i]`
//! (bit 0: categorical, bit 1: missing values go left, bits 2–3: the missing type
//! None/Zero/NaN); a child `c ≥ 0` is an internal node, `c < 0` is leaf `!c`, whose
//! output `leaf_value[!c]` already includes the learning rate. A categorical node's
//! threshold indexes `cat_boundaries`, which delimit the words of `cat_threshold`: a
//! bitset of the categories that go left.
//!
//! Prediction follows LightGBM exactly: a value with `|x| ≤ 1e-35` is a zero (the C API
//! drops such values from a row before it reaches the trees); on a numerical node a NaN
//! becomes 0 unless the node's missing type is NaN, and a missing value (NaN for type
//! NaN, a zero for type Zero) takes the default direction, else `x ≤ threshold` goes
//! left; on a categorical node the value is truncated to an integer as C++'s `(int)`
//! cast does on x86-64 (NaN and values outside `i32` become `i32::MIN`), a negative one
//! goes right, and one whose bit is set goes left. Tree outputs are summed in `f64`
//! in file order; `binary sigmoid:K` maps the sum `s` to `1/(1+exp(−K·s))`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{RankingError, Result};

const FORMAT: &str = "LightGBM text";
/// LightGBM's `kZeroThreshold`: the float literal `1e-35f` widened to `double`.
const ZERO_THRESHOLD: f64 = 1e-35_f32 as f64;
const CATEGORICAL_BIT: u8 = 1;
const DEFAULT_LEFT_BIT: u8 = 2;

/// How LightGBM turns the summed tree output into a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum LightGbmOutput {
    /// `1 / (1 + exp(−k·raw))`: `binary` (`sigmoid:k`) and `cross_entropy` (k = 1).
    Sigmoid(f64),
    /// The raw score: ranking (`lambdarank`, `rank_xendcg`) and regression objectives.
    Raw,
}

impl LightGbmOutput {
    fn apply(self, raw: f64) -> f64 {
        match self {
            LightGbmOutput::Sigmoid(k) => 1.0 / (1.0 + (-k * raw).exp()),
            LightGbmOutput::Raw => raw,
        }
    }
}

/// What a node does with a missing value (bits 2–3 of `decision_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum MissingType {
    /// No missing values in training: NaN is read as 0.
    None,
    /// Zeros (and NaN, read as 0) are missing.
    Zero,
    /// NaN is missing.
    NaN,
}

/// A parsed LightGBM model: one tree per boosting round, a single output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LightGbmModel {
    feature_names: Vec<String>,
    objective: String,
    output: LightGbmOutput,
    average_output: bool,
    trees: Vec<Tree>,
}

/// One tree in LightGBM's own layout (internal nodes `0..num_leaves-1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tree {
    split_feature: Vec<usize>,
    threshold: Vec<f64>,
    categorical: Vec<bool>,
    default_left: Vec<bool>,
    missing: Vec<MissingType>,
    left_child: Vec<i32>,
    right_child: Vec<i32>,
    leaf_value: Vec<f64>,
    cat_boundaries: Vec<usize>,
    cat_threshold: Vec<u32>,
}

impl LightGbmModel {
    /// Parses the text of a model file written by LightGBM's `save_model`.
    ///
    /// Refuses, naming the line or the tree and field: another format, a truncated
    /// file (no `end of trees`, fewer trees than `tree_sizes` says), multi-class
    /// models, linear trees, unsupported objectives, and any array whose length or
    /// indices do not describe a tree.
    pub fn parse(text: &str) -> Result<Self> {
        let mut lines = Lines::new(text);
        expect_first_line(&mut lines)?;
        let header = read_header(&mut lines)?;
        let feature_names = header.feature_names()?;
        let output = header.output()?;
        let mut trees = Vec::new();
        loop {
            let Some((number, line)) = lines.next_nonblank() else {
                return Err(bad(format!(
                    "the file ends after {} tree(s) without `end of trees`: it is truncated",
                    trees.len()
                )));
            };
            if line == "end of trees" {
                break;
            }
            let index = parse_tree_header(number, line, trees.len())?;
            let block = read_block(&mut lines);
            trees.push(Tree::from_block(index, &block, feature_names.len())?);
        }
        header.check_tree_count(trees.len())?;
        Ok(LightGbmModel {
            feature_names,
            objective: header.objective_text(),
            output,
            average_output: header.average_output,
            trees,
        })
    }

    /// The model's feature names, in column order (`Column_0`, … when it has none).
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// The objective line as the file writes it, e.g. `binary sigmoid:1`.
    pub fn objective(&self) -> &str {
        &self.objective
    }

    /// How the summed output becomes a prediction.
    pub fn output(&self) -> LightGbmOutput {
        self.output
    }

    /// The number of trees.
    pub fn tree_count(&self) -> usize {
        self.trees.len()
    }

    /// The summed tree outputs for one row in the model's column order (a value
    /// past the end of `row` is missing).
    pub fn predict_raw(&self, row: &[f64]) -> f64 {
        let sum: f64 = self.trees.iter().map(|tree| tree.predict(row)).sum();
        if self.average_output && !self.trees.is_empty() {
            sum / self.trees.len() as f64
        } else {
            sum
        }
    }

    /// What LightGBM's `predict` returns for the row: a probability for `binary`,
    /// the raw score for ranking and regression objectives.
    pub fn predict(&self, row: &[f64]) -> f64 {
        self.output.apply(self.predict_raw(row))
    }
}

fn bad(reason: String) -> RankingError {
    RankingError::BadModel {
        format: FORMAT,
        reason,
    }
}

/// The lines of the file, numbered from 1, without `\r`.
struct Lines<'a> {
    inner: std::iter::Peekable<std::iter::Enumerate<std::str::Lines<'a>>>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines {
            inner: text.lines().enumerate().peekable(),
        }
    }

    fn next_nonblank(&mut self) -> Option<(usize, &'a str)> {
        for (index, line) in self.inner.by_ref() {
            let line = line.trim();
            if !line.is_empty() {
                return Some((index + 1, line));
            }
        }
        None
    }

    /// The next non-blank line, left in place.
    fn peek_nonblank(&mut self) -> Option<&'a str> {
        while let Some((_, line)) = self.inner.peek() {
            if line.trim().is_empty() {
                self.inner.next();
            } else {
                return Some(line.trim());
            }
        }
        None
    }
}

fn expect_first_line(lines: &mut Lines<'_>) -> Result<()> {
    match lines.next_nonblank() {
        Some((_, "tree")) => Ok(()),
        Some((_, line)) if line.starts_with('{') => Err(bad(
            "the file starts with `{`: it looks like JSON (an XGBoost model? use --format xgboost); \
             a LightGBM text model starts with the line `tree`"
                .into(),
        )),
        Some((number, line)) => Err(bad(format!(
            "line {number} is `{}`, expected `tree`: a LightGBM text model (from save_model) starts with it",
            shorten(line)
        ))),
        None => Err(bad("the file is empty".into())),
    }
}

fn shorten(line: &str) -> String {
    let mut short: String = line.chars().take(60).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    short
}

/// The `key=value` lines before the first tree, with their line numbers.
struct Header {
    fields: HashMap<String, (usize, String)>,
    average_output: bool,
}

fn read_header(lines: &mut Lines<'_>) -> Result<Header> {
    let mut header = Header {
        fields: HashMap::new(),
        average_output: false,
    };
    while let Some(line) = lines.peek_nonblank() {
        if line.starts_with("Tree=") || line == "end of trees" {
            break;
        }
        let Some((number, line)) = lines.next_nonblank() else {
            break;
        };
        match line.split_once('=') {
            Some((key, value)) => {
                header
                    .fields
                    .insert(key.trim().to_string(), (number, value.trim().to_string()));
            }
            None if line == "average_output" => header.average_output = true,
            None => {
                return Err(bad(format!(
                    "line {number}: `{}` is not a `key=value` header line",
                    shorten(line)
                )))
            }
        }
    }
    Ok(header)
}

impl Header {
    fn get(&self, key: &str) -> Option<(usize, &str)> {
        self.fields
            .get(key)
            .map(|(number, value)| (*number, value.as_str()))
    }

    fn integer(&self, key: &str) -> Result<Option<i64>> {
        let Some((number, value)) = self.get(key) else {
            return Ok(None);
        };
        value
            .parse()
            .map(Some)
            .map_err(|_| bad(format!("line {number}: `{key}={value}` is not an integer")))
    }

    fn feature_names(&self) -> Result<Vec<String>> {
        let max = self.integer("max_feature_idx")?.ok_or_else(|| {
            bad("the header has no `max_feature_idx=` line: is the file truncated?".into())
        })?;
        if max < 0 {
            return Err(bad(format!("max_feature_idx={max} is negative")));
        }
        let count = max as usize + 1;
        let Some((number, names)) = self.get("feature_names") else {
            return Ok((0..count).map(|j| format!("Column_{j}")).collect());
        };
        let names: Vec<String> = names.split_whitespace().map(str::to_string).collect();
        if names.len() != count {
            return Err(bad(format!(
                "line {number}: feature_names lists {} names, max_feature_idx={max} says {count}",
                names.len()
            )));
        }
        Ok(names)
    }

    fn objective_text(&self) -> String {
        self.get("objective")
            .map(|(_, value)| value.to_string())
            .unwrap_or_default()
    }

    fn output(&self) -> Result<LightGbmOutput> {
        for key in ["num_class", "num_tree_per_iteration"] {
            if let Some(n) = self.integer(key)? {
                if n != 1 {
                    return Err(bad(format!(
                        "{key}={n}: only single-output models (binary, ranking, regression) are supported"
                    )));
                }
            }
        }
        let Some((number, objective)) = self.get("objective") else {
            // A custom objective writes no objective line; LightGBM predicts raw scores.
            return Ok(LightGbmOutput::Raw);
        };
        let mut tokens = objective.split_whitespace();
        let name = tokens.next().unwrap_or_default();
        let options: Vec<&str> = tokens.collect();
        match name {
            "binary" => Ok(LightGbmOutput::Sigmoid(sigmoid_option(number, &options)?)),
            "cross_entropy" | "xentropy" => Ok(LightGbmOutput::Sigmoid(1.0)),
            "lambdarank" | "rank_xendcg" | "regression_l1" | "huber" | "fair" | "quantile"
            | "mape" => Ok(LightGbmOutput::Raw),
            "regression" if !options.contains(&"sqrt") => Ok(LightGbmOutput::Raw),
            _ => Err(bad(format!(
                "line {number}: objective `{objective}` is not supported (binary, cross_entropy, \
                 lambdarank, rank_xendcg and the regression objectives are)"
            ))),
        }
    }

    fn check_tree_count(&self, found: usize) -> Result<()> {
        let Some((number, sizes)) = self.get("tree_sizes") else {
            return Ok(());
        };
        let expected = sizes.split_whitespace().count();
        if expected != found {
            return Err(bad(format!(
                "line {number}: tree_sizes lists {expected} trees but the file holds {found}"
            )));
        }
        Ok(())
    }
}

fn sigmoid_option(number: usize, options: &[&str]) -> Result<f64> {
    let Some(value) = options.iter().find_map(|o| o.strip_prefix("sigmoid:")) else {
        return Ok(1.0);
    };
    match value.parse::<f64>() {
        Ok(k) if k.is_finite() && k > 0.0 => Ok(k),
        _ => Err(bad(format!(
            "line {number}: `sigmoid:{value}` must be a positive number"
        ))),
    }
}

fn parse_tree_header(number: usize, line: &str, expected: usize) -> Result<usize> {
    let index = line
        .strip_prefix("Tree=")
        .and_then(|n| n.trim().parse::<usize>().ok());
    match index {
        Some(index) if index == expected => Ok(index),
        Some(index) => Err(bad(format!(
            "line {number}: `Tree={index}` where tree {expected} was expected"
        ))),
        None => Err(bad(format!(
            "line {number}: `{}`, expected `Tree={expected}` or `end of trees`",
            shorten(line)
        ))),
    }
}

/// A tree block: its `key=value` lines up to the next tree or `end of trees`.
type Block = HashMap<String, String>;

fn read_block(lines: &mut Lines<'_>) -> Block {
    let mut block = Block::new();
    while let Some(line) = lines.peek_nonblank() {
        if line.starts_with("Tree=") || line == "end of trees" {
            break;
        }
        lines.next_nonblank();
        if let Some((key, value)) = line.split_once('=') {
            block.insert(key.trim().to_string(), value.trim().to_string());
        }
    }
    block
}

/// Reads the fields of one tree block, naming the tree and the field in every error.
struct BlockReader<'a> {
    tree: usize,
    block: &'a Block,
}

impl BlockReader<'_> {
    fn error(&self, reason: String) -> RankingError {
        bad(format!("tree {}: {reason}", self.tree))
    }

    fn text(&self, key: &str) -> Result<&str> {
        self.block.get(key).map(String::as_str).ok_or_else(|| {
            self.error(format!(
                "the field `{key}` is missing (is the file truncated?)"
            ))
        })
    }

    fn scalar<T: std::str::FromStr>(&self, key: &str) -> Result<T> {
        let text = self.text(key)?;
        text.parse()
            .map_err(|_| self.error(format!("`{key}={text}` is not a valid number")))
    }

    fn array<T: std::str::FromStr>(&self, key: &str, expected: usize) -> Result<Vec<T>> {
        let text = self.text(key)?;
        let values = text
            .split_whitespace()
            .enumerate()
            .map(|(i, v)| {
                v.parse().map_err(|_| {
                    self.error(format!(
                        "`{key}` value {i} (`{}`) is not a valid number",
                        shorten(v)
                    ))
                })
            })
            .collect::<Result<Vec<T>>>()?;
        if values.len() != expected {
            return Err(self.error(format!(
                "`{key}` has {} values, expected {expected} (is the file truncated?)",
                values.len()
            )));
        }
        Ok(values)
    }
}

impl Tree {
    fn from_block(index: usize, block: &Block, feature_count: usize) -> Result<Tree> {
        let reader = BlockReader { tree: index, block };
        let num_leaves: usize = reader.scalar("num_leaves")?;
        if num_leaves == 0 {
            return Err(reader.error("num_leaves=0".into()));
        }
        if block.get("is_linear").is_some_and(|v| v != "0") {
            return Err(reader.error(
                "linear trees (linear_tree=true) are not supported; train without linear_tree"
                    .into(),
            ));
        }
        let leaf_value: Vec<f64> = reader.array("leaf_value", num_leaves)?;
        if num_leaves == 1 {
            return Ok(Tree::single_leaf(leaf_value));
        }
        let nodes = num_leaves - 1;
        let num_cat: usize = reader.scalar("num_cat")?;
        let decision_type: Vec<u8> = reader.array("decision_type", nodes)?;
        let (cat_boundaries, cat_threshold) = if num_cat > 0 {
            let boundaries: Vec<usize> =
                reader.array("cat_boundaries", num_cat.saturating_add(1))?;
            let words = boundaries.last().copied().unwrap_or(0);
            (boundaries, reader.array("cat_threshold", words)?)
        } else {
            (vec![0], Vec::new())
        };
        let tree = Tree {
            split_feature: reader.array("split_feature", nodes)?,
            threshold: reader.array("threshold", nodes)?,
            categorical: decision_type
                .iter()
                .map(|d| d & CATEGORICAL_BIT != 0)
                .collect(),
            default_left: decision_type
                .iter()
                .map(|d| d & DEFAULT_LEFT_BIT != 0)
                .collect(),
            missing: decision_type
                .iter()
                .map(|d| missing_type(*d))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    reader.error(
                        "a decision_type has missing type 3, which LightGBM does not define".into(),
                    )
                })?,
            left_child: reader.array("left_child", nodes)?,
            right_child: reader.array("right_child", nodes)?,
            leaf_value,
            cat_boundaries,
            cat_threshold,
        };
        tree.validate(&reader, feature_count, num_cat)?;
        Ok(tree)
    }

    fn single_leaf(leaf_value: Vec<f64>) -> Tree {
        Tree {
            split_feature: Vec::new(),
            threshold: Vec::new(),
            categorical: Vec::new(),
            default_left: Vec::new(),
            missing: Vec::new(),
            left_child: Vec::new(),
            right_child: Vec::new(),
            leaf_value,
            cat_boundaries: vec![0],
            cat_threshold: Vec::new(),
        }
    }

    /// Features in range, categorical thresholds naming a bitset, and children that form
    /// a tree reaching every leaf once (so prediction always ends at a leaf).
    fn validate(
        &self,
        reader: &BlockReader<'_>,
        feature_count: usize,
        num_cat: usize,
    ) -> Result<()> {
        for (node, &feature) in self.split_feature.iter().enumerate() {
            if feature >= feature_count {
                return Err(reader.error(format!(
                    "node {node} splits on feature {feature}, the model has {feature_count}"
                )));
            }
            if self.categorical[node] {
                let t = self.threshold[node];
                if t.fract() != 0.0 || t < 0.0 || t >= num_cat as f64 {
                    return Err(reader.error(format!(
                        "categorical node {node} has threshold {t}, expected a bitset index below num_cat={num_cat}"
                    )));
                }
            }
        }
        if self.cat_boundaries.windows(2).any(|w| w[0] > w[1])
            || self.cat_boundaries.first() != Some(&0)
        {
            return Err(reader.error("cat_boundaries must start at 0 and never decrease".into()));
        }
        self.check_shape(reader)
    }

    fn check_shape(&self, reader: &BlockReader<'_>) -> Result<()> {
        let nodes = self.split_feature.len();
        let leaves = self.leaf_value.len();
        let mut seen_node = vec![false; nodes];
        let mut seen_leaf = vec![false; leaves];
        let mut stack = vec![0i32];
        while let Some(child) = stack.pop() {
            let (seen, index) = if child >= 0 {
                (&mut seen_node, child as usize)
            } else {
                (&mut seen_leaf, !child as usize)
            };
            if index >= seen.len() {
                return Err(reader.error(format!(
                    "child {child} points past the {nodes} nodes and {leaves} leaves"
                )));
            }
            if seen[index] {
                return Err(reader.error(format!("child {child} is reached twice: not a tree")));
            }
            seen[index] = true;
            if child >= 0 {
                stack.push(self.left_child[index]);
                stack.push(self.right_child[index]);
            }
        }
        if seen_leaf.iter().any(|s| !s) {
            return Err(reader.error("some leaves are never reached: not a tree".into()));
        }
        Ok(())
    }

    fn predict(&self, row: &[f64]) -> f64 {
        if self.split_feature.is_empty() {
            return self.leaf_value.first().copied().unwrap_or(0.0);
        }
        let mut node = 0i32;
        while node >= 0 {
            let index = node as usize;
            let value = feature_value(row, self.split_feature[index]);
            node = if self.categorical[index] {
                self.categorical_decision(value, index)
            } else {
                self.numerical_decision(value, index)
            };
        }
        self.leaf_value[!node as usize]
    }

    fn numerical_decision(&self, value: f64, node: usize) -> i32 {
        let missing = self.missing[node];
        let value = if value.is_nan() && missing != MissingType::NaN {
            0.0
        } else {
            value
        };
        let is_missing = match missing {
            MissingType::None => false,
            MissingType::Zero => is_zero(value),
            MissingType::NaN => value.is_nan(),
        };
        let go_left = if is_missing {
            self.default_left[node]
        } else {
            value <= self.threshold[node]
        };
        self.child(node, go_left)
    }

    fn categorical_decision(&self, value: f64, node: usize) -> i32 {
        let category = cpp_int_cast(value);
        if category < 0 {
            return self.right_child[node];
        }
        let set = self.threshold[node] as usize;
        let words = &self.cat_threshold[self.cat_boundaries[set]..self.cat_boundaries[set + 1]];
        self.child(node, bit_is_set(words, category as usize))
    }

    fn child(&self, node: usize, left: bool) -> i32 {
        if left {
            self.left_child[node]
        } else {
            self.right_child[node]
        }
    }
}

fn missing_type(decision_type: u8) -> Option<MissingType> {
    match (decision_type >> 2) & 3 {
        0 => Some(MissingType::None),
        1 => Some(MissingType::Zero),
        2 => Some(MissingType::NaN),
        _ => None,
    }
}

/// The row's value as LightGBM's predictor sees it: absent → NaN, `|x| ≤ 1e-35` → 0.
fn feature_value(row: &[f64], feature: usize) -> f64 {
    let value = row.get(feature).copied().unwrap_or(f64::NAN);
    if value.abs() <= ZERO_THRESHOLD {
        0.0
    } else {
        value
    }
}

fn is_zero(value: f64) -> bool {
    (-ZERO_THRESHOLD..=ZERO_THRESHOLD).contains(&value)
}

/// C++'s `static_cast<int>(double)` as x86-64 executes it: truncation toward zero, and
/// the "integer indefinite" `i32::MIN` for NaN and values outside `i32`.
fn cpp_int_cast(value: f64) -> i32 {
    if value.is_nan() || value >= 2_147_483_648.0 || value <= -2_147_483_649.0 {
        i32::MIN
    } else {
        value as i32
    }
}

/// LightGBM's `FindInBitset`: bit `pos` of the words, false past their end.
fn bit_is_set(words: &[u32], pos: usize) -> bool {
    words
        .get(pos / 32)
        .is_some_and(|word| (word >> (pos % 32)) & 1 == 1)
}

#[cfg(test)]
#[path = "lightgbm_tests.rs"]
mod tests;
