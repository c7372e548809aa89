//! Experiments as data: the definition a client posts, validated field by field, and
//! the tags an impression carries. Assignment and statistics live in
//! `flywheel-experiments`; this crate only says what an experiment *is*, so that the
//! log can store its start and stop like any other record.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::error::{CoreError, Result};
use crate::json::{kind_of, quoted, ObjectReader};

/// The longest experiment id, layer or variant name, in bytes.
pub const MAX_EXPERIMENT_NAME: usize = 64;
/// The most variants one experiment may have.
pub const MAX_VARIANTS: usize = 16;
/// The attribution window an action gets when the definition names none, in hours.
pub const DEFAULT_ATTRIBUTION_HOURS: f64 = 24.0;

/// What an experiment compares and how its variants reach users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentKind {
    /// Each user sees one variant, by stable assignment.
    Ab,
    /// Every user sees one list merged from two variants by team draft.
    Interleaving,
    /// The first variant serves; the others rank the same requests unseen.
    Shadow,
}

impl ExperimentKind {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ExperimentKind::Ab => "ab",
            ExperimentKind::Interleaving => "interleaving",
            ExperimentKind::Shadow => "shadow",
        }
    }
}

/// The metric an experiment is decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrimaryMetric {
    /// Σclicks / Σimpressions per user (delta method).
    Ctr,
    /// Σpurchases / Σclicks.
    Cvr,
    /// 1000 · Σrevenue / Σimpressions.
    Rpm,
}

/// Exploration switched on for a variant: ε-greedy slots and, optionally, a
/// Thompson-sampling slot for under-exposed items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplorationSettings {
    /// The probability that a slot is given to a uniformly drawn candidate.
    pub epsilon: f64,
    /// The slot given to Thompson sampling over under-exposed candidates, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thompson_slot: Option<u32>,
    /// An item shown fewer times than this is under-exposed.
    #[serde(default = "default_under_exposed")]
    pub under_exposed_impressions: f64,
    /// Monte Carlo draws behind a Thompson slot's propensity (at least 10,000).
    #[serde(default = "default_thompson_draws")]
    pub thompson_draws: u32,
}

fn default_under_exposed() -> f64 {
    50.0
}

fn default_thompson_draws() -> u32 {
    10_000
}

/// The least number of Monte Carlo draws a Thompson propensity may rest on.
pub const MIN_THOMPSON_DRAWS: u32 = 10_000;

/// Re-ranking parameters a variant changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RerankOverride {
    /// MMR relevance weight in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmr_lambda: Option<f64>,
    /// The most items of one top-level category among the first `rerank.cap_window`
    /// slots (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_category: Option<u32>,
}

/// One arm of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantDef {
    /// The variant's name, unique in the experiment.
    pub name: String,
    /// The registered model version it serves; none means whichever version serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// Its share of the experiment's users (A/B only; interleaving and shadow need none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
    /// Exploration for this variant (off when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exploration: Option<ExplorationSettings>,
    /// Re-ranking overrides for this variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerank: Option<RerankOverride>,
}

/// Limits that say a variant is harming users whatever its primary metric does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guardrails {
    /// The highest acceptable p99 request latency, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p99_latency_ms: Option<f64>,
    /// The highest acceptable share of requests that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_error_rate: Option<f64>,
    /// The highest acceptable share of requests served by a fallback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fallback_rate: Option<f64>,
}

/// An experiment as defined by its owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentDef {
    /// The id (letters, digits, `-`, `_`, `.`; at most 64 bytes).
    pub id: String,
    /// A/B, interleaving or shadow.
    pub kind: ExperimentKind,
    /// The assignment salt (defaults to the id).
    pub salt: String,
    /// The layer: experiments of one layer never share a user. `None` is a layer of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// The share of the layer's users the experiment takes, in (0, 1].
    pub traffic: f64,
    /// The variants, in order; the first is the control.
    pub variants: Vec<VariantDef>,
    /// The metric the experiment is decided on.
    pub primary_metric: PrimaryMetric,
    /// Guardrail limits.
    #[serde(default)]
    pub guardrails: Guardrails,
    /// Per action, how long after an impression the action is attributed to it (hours).
    pub attribution_hours: BTreeMap<String, f64>,
    /// Significance level of the reported intervals.
    pub alpha: f64,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl ExperimentDef {
    const FIELDS: [&'static str; 11] = [
        "id",
        "kind",
        "salt",
        "layer",
        "traffic",
        "variants",
        "primary_metric",
        "guardrails",
        "attribution_hours",
        "alpha",
        "description",
    ];

    /// Parses and validates a definition. Every error names the offending field
    /// (`variants[1].share`, `traffic`, …). Model versions are checked for form here
    /// and for existence by the engine, which knows the registry.
    pub fn from_json(value: &Value) -> Result<Self> {
        let r = ObjectReader::new(value, &Self::FIELDS, "")?;
        let id = r.required("id", ObjectReader::string)?;
        check_name("id", &id)?;
        let kind = parse_kind(&r.required("kind", ObjectReader::string)?)?;
        let salt = r.string("salt")?.unwrap_or_else(|| id.clone());
        check_salt(&salt)?;
        let layer = r.string("layer")?;
        if let Some(layer) = &layer {
            check_name("layer", layer)?;
        }
        let traffic = r.number("traffic")?.unwrap_or(1.0);
        if !(traffic > 0.0 && traffic <= 1.0) {
            return Err(invalid("traffic", "must be in (0, 1]"));
        }
        let variants = parse_variants(r.raw("variants"), kind)?;
        let def = ExperimentDef {
            id,
            kind,
            salt,
            layer,
            traffic,
            variants,
            primary_metric: parse_metric(r.string("primary_metric")?.as_deref())?,
            guardrails: parse_guardrails(r.raw("guardrails"))?,
            attribution_hours: parse_attribution(r.raw("attribution_hours"))?,
            alpha: r.number("alpha")?.unwrap_or(0.05),
            description: r.bounded_string("description", 4096)?,
        };
        if !(def.alpha > 0.0 && def.alpha < 0.5) {
            return Err(invalid("alpha", "must be in (0, 0.5)"));
        }
        Ok(def)
    }

    /// The layer the experiment lives in: its own unless one is named.
    pub fn layer_name(&self) -> String {
        self.layer
            .clone()
            .unwrap_or_else(|| format!("experiment:{}", self.id))
    }

    /// The variants' shares in order (equal shares when the kind needs none).
    pub fn shares(&self) -> Vec<f64> {
        match self.kind {
            ExperimentKind::Ab => self
                .variants
                .iter()
                .map(|v| v.share.unwrap_or(0.0))
                .collect(),
            ExperimentKind::Interleaving | ExperimentKind::Shadow => {
                // Every user sees the first variant's list (merged, or shadowed).
                let mut shares = vec![0.0; self.variants.len()];
                shares[0] = 1.0;
                shares
            }
        }
    }

    /// The attribution window of an action, in milliseconds.
    pub fn attribution_ms(&self, action: &str) -> i64 {
        let hours = self
            .attribution_hours
            .get(action)
            .copied()
            .unwrap_or(DEFAULT_ATTRIBUTION_HOURS);
        (hours * 3_600_000.0).round() as i64
    }

    /// The longest attribution window of any action, in milliseconds.
    pub fn longest_window_ms(&self) -> i64 {
        let hours = self
            .attribution_hours
            .values()
            .copied()
            .fold(DEFAULT_ATTRIBUTION_HOURS, f64::max);
        (hours * 3_600_000.0).round() as i64
    }

    /// The variant named `name`, with its index.
    pub fn variant(&self, name: &str) -> Option<(usize, &VariantDef)> {
        self.variants
            .iter()
            .enumerate()
            .find(|(_, v)| v.name == name)
    }
}

/// The experiment and variant a served request belonged to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExperimentTag {
    /// The experiment id.
    pub id: String,
    /// The variant the user was assigned (for interleaving, the experiment's first variant).
    pub variant: String,
}

fn invalid(field: &str, reason: &str) -> CoreError {
    CoreError::InvalidValue {
        field: field.to_string(),
        reason: reason.to_string(),
    }
}

/// Checks a name (id, layer, variant): 1–64 bytes of letters, digits, `-`, `_`, `.`.
pub fn check_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_EXPERIMENT_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            &format!(
                "`{}` must be 1 to {MAX_EXPERIMENT_NAME} letters, digits, `-`, `_` or `.`",
                quoted(name)
            ),
        ))
    }
}

fn check_salt(salt: &str) -> Result<()> {
    if salt.is_empty() || salt.len() > 256 || salt.chars().any(char::is_control) {
        return Err(invalid(
            "salt",
            "must be 1 to 256 bytes without control characters",
        ));
    }
    Ok(())
}

fn parse_kind(text: &str) -> Result<ExperimentKind> {
    match text {
        "ab" => Ok(ExperimentKind::Ab),
        "interleaving" => Ok(ExperimentKind::Interleaving),
        "shadow" => Ok(ExperimentKind::Shadow),
        other => Err(invalid(
            "kind",
            &format!("`{}` is not one of ab, interleaving, shadow", quoted(other)),
        )),
    }
}

fn parse_metric(text: Option<&str>) -> Result<PrimaryMetric> {
    match text {
        None | Some("ctr") => Ok(PrimaryMetric::Ctr),
        Some("cvr") => Ok(PrimaryMetric::Cvr),
        Some("rpm") => Ok(PrimaryMetric::Rpm),
        Some(other) => Err(invalid(
            "primary_metric",
            &format!("`{}` is not one of ctr, cvr, rpm", quoted(other)),
        )),
    }
}

/// Reads a JSON value into a typed struct through serde, naming the field on error.
fn typed<T: serde::de::DeserializeOwned>(field: &str, value: &Value) -> Result<T> {
    serde_json::from_value(value.clone()).map_err(|e| invalid(field, &e.to_string()))
}

fn parse_guardrails(value: Option<&Value>) -> Result<Guardrails> {
    let Some(value) = value else {
        return Ok(Guardrails::default());
    };
    let guardrails: Guardrails = typed("guardrails", value)?;
    let checks = [
        (
            "guardrails.max_p99_latency_ms",
            guardrails.max_p99_latency_ms,
            f64::MAX,
        ),
        ("guardrails.max_error_rate", guardrails.max_error_rate, 1.0),
        (
            "guardrails.max_fallback_rate",
            guardrails.max_fallback_rate,
            1.0,
        ),
    ];
    for (field, limit, max) in checks {
        if limit.is_some_and(|x| !(x.is_finite() && x >= 0.0 && x <= max)) {
            return Err(invalid(field, &format!("must be a number in [0, {max}]")));
        }
    }
    Ok(guardrails)
}

fn parse_attribution(value: Option<&Value>) -> Result<BTreeMap<String, f64>> {
    let Some(value) = value else {
        return Ok(BTreeMap::new());
    };
    let map = value.as_object().ok_or_else(|| CoreError::WrongType {
        field: "attribution_hours".into(),
        expected: "an object of action → hours",
        found: kind_of(value),
    })?;
    let mut hours = BTreeMap::new();
    for (action, h) in map {
        let field = format!("attribution_hours.{}", quoted(action));
        match h.as_f64() {
            Some(x) if x.is_finite() && x > 0.0 && x <= 24.0 * 90.0 => {
                hours.insert(action.clone(), x);
            }
            _ => return Err(invalid(&field, "must be a number of hours in (0, 2160]")),
        }
    }
    Ok(hours)
}

fn parse_variants(value: Option<&Value>, kind: ExperimentKind) -> Result<Vec<VariantDef>> {
    let Some(value) = value else {
        return Err(CoreError::MissingField {
            field: "variants".into(),
        });
    };
    let list = value.as_array().ok_or_else(|| CoreError::WrongType {
        field: "variants".into(),
        expected: "an array",
        found: kind_of(value),
    })?;
    if list.len() < 2 || list.len() > MAX_VARIANTS {
        return Err(invalid(
            "variants",
            &format!("needs 2 to {MAX_VARIANTS} variants, got {}", list.len()),
        ));
    }
    if kind == ExperimentKind::Interleaving && list.len() != 2 {
        return Err(invalid(
            "variants",
            &format!(
                "an interleaving experiment has exactly 2 variants, got {}",
                list.len()
            ),
        ));
    }
    let mut variants = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let variant = parse_variant(item, i)?;
        if variants.iter().any(|v: &VariantDef| v.name == variant.name) {
            return Err(invalid(
                &format!("variants[{i}].name"),
                &format!("`{}` is used by an earlier variant", variant.name),
            ));
        }
        variants.push(variant);
    }
    check_shares(&variants, kind)?;
    Ok(variants)
}

fn parse_variant(value: &Value, index: usize) -> Result<VariantDef> {
    let field = |name: &str| format!("variants[{index}].{name}");
    let variant: VariantDef = typed(&format!("variants[{index}]"), value)?;
    check_name(&field("name"), &variant.name)?;
    if let Some(version) = &variant.model_version {
        let ok = version.len() > 1
            && version.len() <= 20
            && version.starts_with('v')
            && version[1..].bytes().all(|b| b.is_ascii_digit());
        if !ok {
            return Err(invalid(
                &field("model_version"),
                &format!("`{}` is not a version name like v3", quoted(version)),
            ));
        }
    }
    if let Some(exploration) = &variant.exploration {
        check_exploration(exploration, &field("exploration"))?;
    }
    if let Some(lambda) = variant.rerank.as_ref().and_then(|r| r.mmr_lambda) {
        if !(0.0..=1.0).contains(&lambda) {
            return Err(invalid(&field("rerank.mmr_lambda"), "must be in [0, 1]"));
        }
    }
    if variant.rerank.as_ref().and_then(|r| r.max_per_category) == Some(0) {
        return Err(invalid(
            &field("rerank.max_per_category"),
            "must be at least 1",
        ));
    }
    Ok(variant)
}

fn check_exploration(e: &ExplorationSettings, field: &str) -> Result<()> {
    if !(0.0..=1.0).contains(&e.epsilon) {
        return Err(invalid(&format!("{field}.epsilon"), "must be in [0, 1]"));
    }
    if !(e.under_exposed_impressions.is_finite() && e.under_exposed_impressions >= 0.0) {
        return Err(invalid(
            &format!("{field}.under_exposed_impressions"),
            "must be a non-negative number",
        ));
    }
    if e.thompson_draws < MIN_THOMPSON_DRAWS {
        return Err(invalid(
            &format!("{field}.thompson_draws"),
            &format!("must be at least {MIN_THOMPSON_DRAWS}"),
        ));
    }
    Ok(())
}

fn check_shares(variants: &[VariantDef], kind: ExperimentKind) -> Result<()> {
    if kind != ExperimentKind::Ab {
        return Ok(());
    }
    let mut total = 0.0;
    for (i, v) in variants.iter().enumerate() {
        match v.share {
            Some(s) if s > 0.0 && s <= 1.0 => total += s,
            Some(_) => {
                return Err(invalid(
                    &format!("variants[{i}].share"),
                    "must be in (0, 1]",
                ))
            }
            None => {
                return Err(CoreError::MissingField {
                    field: format!("variants[{i}].share"),
                })
            }
        }
    }
    if (total - 1.0).abs() > 1e-9 {
        return Err(invalid(
            "variants",
            &format!("the shares must sum to 1, they sum to {total}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ab() -> Value {
        json!({"id": "exp-1", "kind": "ab", "salt": "exp-1", "variants": [
            {"name": "control", "model_version": "v1", "share": 0.5},
            {"name": "treatment", "model_version": "v2", "share": 0.5}]})
    }

    #[test]
    fn the_minimal_definition_parses_with_defaults() {
        let def = ExperimentDef::from_json(&ab()).unwrap();
        assert_eq!(def.kind, ExperimentKind::Ab);
        assert_eq!(def.traffic, 1.0);
        assert_eq!(def.primary_metric, PrimaryMetric::Ctr);
        assert_eq!(def.attribution_ms("purchase"), 24 * 3_600_000);
        assert_eq!(def.layer_name(), "experiment:exp-1");
        let back: ExperimentDef =
            serde_json::from_value(serde_json::to_value(&def).unwrap()).unwrap();
        assert_eq!(back, def);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                json!({"variants": [{"name": "a", "share": 0.6}, {"name": "b", "share": 0.6}]}),
                "variants",
            ),
            (
                json!({"variants": [{"name": "a", "share": 0.5}, {"name": "a", "share": 0.5}]}),
                "variants[1].name",
            ),
            (
                json!({"variants": [{"name": "a", "share": 0.5}, {"name": "b"}]}),
                "variants[1].share",
            ),
            (
                json!({"variants": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5, "model_version": "latest"}]}),
                "variants[1].model_version",
            ),
            (json!({"traffic": 0}), "traffic"),
            (json!({"kind": "bandit"}), "kind"),
            (json!({"id": "no spaces"}), "id"),
            (json!({"primary_metric": "ndcg"}), "primary_metric"),
            (
                json!({"attribution_hours": {"purchase": -1}}),
                "attribution_hours.purchase",
            ),
            (
                json!({"variants": [{"name": "a", "share": 0.5, "exploration": {"epsilon": 2}}, {"name": "b", "share": 0.5}]}),
                "variants[0].exploration.epsilon",
            ),
            (
                json!({"variants": [{"name": "a", "share": 0.5, "rerank": {"max_per_category": 0}}, {"name": "b", "share": 0.5}]}),
                "variants[0].rerank.max_per_category",
            ),
            (json!({"surprise": 1}), "surprise"),
        ];
        for (patch, field) in cases {
            let mut value = ab();
            for (k, v) in patch.as_object().unwrap() {
                value[k] = v.clone();
            }
            let err = ExperimentDef::from_json(&value).unwrap_err();
            assert_eq!(err.field(), Some(field), "{err}");
        }
    }

    #[test]
    fn interleaving_needs_exactly_two_variants_and_no_shares() {
        let def = ExperimentDef::from_json(&json!({"id": "i", "kind": "interleaving",
            "variants": [{"name": "a"}, {"name": "b"}]}))
        .unwrap();
        assert_eq!(def.shares(), vec![1.0, 0.0]);
        let err = ExperimentDef::from_json(&json!({"id": "i", "kind": "interleaving",
            "variants": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}))
        .unwrap_err();
        assert_eq!(err.field(), Some("variants"));
    }
}
