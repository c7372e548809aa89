//! `flywheel ranker predict`: score rows from a CSV file with a LightGBM text or
//! XGBoost JSON model, as the library's own `predict` would.
//!
//! The CSV has a header. Its columns are matched to the model's feature names when
//! the header names them all (other columns are ignored); otherwise, when it has as
//! many columns as the model has features, by position (a header name that is a model
//! feature must then sit at that feature's position). An empty field (or `NaN`) is a
//! missing value. One prediction is printed per row, in order, with the shortest text
//! that reads back as the same `f64`; `--json` prints one JSON array instead.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use flywheel_ranking::{ImportedBooster, ModelFormat};

/// `flywheel ranker`: imported rankers.
#[derive(Debug, Subcommand)]
pub enum RankerCommand {
    /// Score the rows of a CSV file with a LightGBM or XGBoost model file.
    Predict(PredictArgs),
}

/// The arguments of `flywheel ranker predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The model file: LightGBM `save_model` text or XGBoost `save_model("m.json")`.
    #[arg(long)]
    pub model: PathBuf,
    /// The model's format: lightgbm or xgboost.
    #[arg(long, value_parser = parse_format)]
    pub format: ModelFormat,
    /// The rows: CSV with a header of feature names; an empty field is missing.
    #[arg(long)]
    pub rows: PathBuf,
    /// Print a JSON array of the predictions instead of one per line.
    #[arg(long)]
    pub json: bool,
}

fn parse_format(text: &str) -> std::result::Result<ModelFormat, String> {
    text.parse()
        .map_err(|error: flywheel_ranking::RankingError| error.to_string())
}

/// Runs a `ranker` subcommand.
pub fn run(what: RankerCommand) -> Result<()> {
    match what {
        RankerCommand::Predict(args) => predict(&args),
    }
}

fn predict(args: &PredictArgs) -> Result<()> {
    let model = ImportedBooster::load(&args.model, args.format)?;
    let predictions = score_csv(&model, &args.rows)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.json {
        serde_json::to_writer(&mut out, &predictions)?;
        writeln!(out)?;
    } else {
        for prediction in &predictions {
            writeln!(out, "{prediction}")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The model's prediction for every row of the CSV file, in order.
pub fn score_csv(model: &ImportedBooster, path: &Path) -> Result<Vec<f64>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("opening the rows file {}", path.display()))?;
    let header: Vec<String> = reader
        .headers()
        .with_context(|| format!("reading the header of {}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let columns = match_columns(&header, model.feature_names())
        .with_context(|| format!("matching the columns of {} to the model", path.display()))?;
    if columns.by_position {
        eprintln!(
            "note: the header of {} does not name every model feature; its columns are taken \
             by position as: {}",
            path.display(),
            model.feature_names().join(", ")
        );
    }
    let mut predictions = Vec::new();
    let mut row = vec![f64::NAN; columns.index.len()];
    for record in reader.records() {
        let record = record.with_context(|| format!("reading {}", path.display()))?;
        let line = record.position().map_or(0, |p| p.line());
        for (value, &column) in row.iter_mut().zip(&columns.index) {
            let field = record.get(column).unwrap_or("");
            *value = parse_value(field).with_context(|| {
                format!(
                    "{} line {line}, column `{}`: `{field}` is not a number (an empty field is missing)",
                    path.display(),
                    header[column]
                )
            })?;
        }
        predictions.push(model.predict(&row));
    }
    Ok(predictions)
}

/// For each model feature, the CSV column that holds it.
#[derive(Debug, PartialEq)]
struct Columns {
    index: Vec<usize>,
    by_position: bool,
}

fn match_columns(header: &[String], features: &[String]) -> Result<Columns> {
    let by_name: Vec<Option<usize>> = features
        .iter()
        .map(|feature| header.iter().position(|h| h == feature))
        .collect();
    for feature in features {
        if header.iter().filter(|h| *h == feature).count() > 1 {
            bail!("the header names `{feature}` twice");
        }
    }
    if let Some(index) = by_name.iter().copied().collect::<Option<Vec<usize>>>() {
        return Ok(Columns {
            index,
            by_position: false,
        });
    }
    let missing: Vec<&str> = features
        .iter()
        .zip(&by_name)
        .filter(|(_, found)| found.is_none())
        .map(|(feature, _)| feature.as_str())
        .collect();
    if header.len() != features.len() {
        bail!(
            "the header lacks the model features {} and has {} columns where the model has {} \
             features, so columns can be matched neither by name nor by position",
            missing.join(", "),
            header.len(),
            features.len()
        );
    }
    for (position, found) in by_name.iter().enumerate() {
        if let Some(column) = found {
            if *column != position {
                bail!(
                    "the header lacks the model features {}, so columns are taken by position, \
                     but it names `{}` in column {} where the model has it at {}",
                    missing.join(", "),
                    features[position],
                    column + 1,
                    position + 1
                );
            }
        }
    }
    Ok(Columns {
        index: (0..features.len()).collect(),
        by_position: true,
    })
}

fn parse_value(field: &str) -> Result<f64> {
    if field.is_empty() {
        return Ok(f64::NAN);
    }
    Ok(field.parse::<f64>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn columns_are_matched_by_name_in_any_order() {
        let columns =
            match_columns(&names(&["c", "id", "a", "b"]), &names(&["a", "b", "c"])).unwrap();
        assert_eq!(
            columns,
            Columns {
                index: vec![2, 3, 0],
                by_position: false
            }
        );
    }

    #[test]
    fn columns_fall_back_to_position_when_the_width_fits() {
        let columns = match_columns(&names(&["x", "b", "z"]), &names(&["a", "b", "c"])).unwrap();
        assert_eq!(columns.index, vec![0, 1, 2]);
        assert!(columns.by_position);
    }

    #[test]
    fn ambiguous_headers_are_refused_naming_the_features() {
        let error = match_columns(&names(&["x", "y"]), &names(&["a", "b", "c"])).unwrap_err();
        assert!(error.to_string().contains("a, b, c"), "{error}");
        let error = match_columns(&names(&["b", "x", "z"]), &names(&["a", "b", "c"])).unwrap_err();
        assert!(error.to_string().contains("`b` in column 1"), "{error}");
        let error = match_columns(&names(&["a", "a", "b"]), &names(&["a", "b"])).unwrap_err();
        assert!(error.to_string().contains("`a` twice"), "{error}");
    }

    #[test]
    fn empty_fields_are_missing_and_text_is_refused() {
        assert!(parse_value("").unwrap().is_nan());
        assert!(parse_value("NaN").unwrap().is_nan());
        assert_eq!(parse_value("-0.25").unwrap(), -0.25);
        assert_eq!(parse_value("1e-40").unwrap(), 1e-40);
        assert!(parse_value("abc").is_err());
    }

    #[test]
    fn a_bad_field_is_named_by_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let model_text = "tree\nversion=v4\nnum_class=1\nmax_feature_idx=1\nobjective=lambdarank\n\
             feature_names=a b\n\nTree=0\nnum_leaves=1\nnum_cat=0\nleaf_value=0.5\n\nend of trees\n";
        let model = ImportedBooster::parse(model_text, ModelFormat::LightGbm).unwrap();
        let rows = dir.path().join("rows.csv");
        std::fs::write(&rows, "b,a\n1,2\n,\n3,oops\n").unwrap();
        let error = format!("{:#}", score_csv(&model, &rows).unwrap_err());
        assert!(error.contains("line 4, column `a`: `oops`"), "{error}");
        std::fs::write(&rows, "b,a\n1,2\n,\n").unwrap();
        assert_eq!(score_csv(&model, &rows).unwrap(), vec![0.5, 0.5]);
        std::fs::write(&rows, "b,a\n1,2,3\n").unwrap();
        assert!(
            score_csv(&model, &rows).is_err(),
            "a row wider than the header"
        );
    }
}
