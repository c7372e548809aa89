//! Reading a per-user experiment CSV (one row per user, the randomisation unit):
//! `user_id, variant, exposures, clicks, conversions, revenue, pre_period_metric`.
//! Every malformed value is reported with its line and column; nothing is guessed.

use std::path::Path;

use crate::error::{ExperimentError, Result};

/// The columns a users CSV must have (extra columns are ignored).
pub const REQUIRED_COLUMNS: [&str; 7] = [
    "user_id",
    "variant",
    "exposures",
    "clicks",
    "conversions",
    "revenue",
    "pre_period_metric",
];

/// Per-user columns of one arm, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArmColumns {
    /// Impressions shown to each user.
    pub exposures: Vec<f64>,
    /// Clicks of each user.
    pub clicks: Vec<f64>,
    /// Conversions of each user.
    pub conversions: Vec<f64>,
    /// Revenue of each user.
    pub revenue: Vec<f64>,
    /// The pre-period covariate used by CUPED.
    pub pre_period_metric: Vec<f64>,
}

impl ArmColumns {
    /// Number of users in the arm.
    pub fn len(&self) -> usize {
        self.exposures.len()
    }

    /// True when the arm has no users.
    pub fn is_empty(&self) -> bool {
        self.exposures.is_empty()
    }

    /// Users with at least one conversion.
    pub fn converted_users(&self) -> u64 {
        self.conversions.iter().filter(|c| **c > 0.0).count() as u64
    }
}

/// The users of a two-arm experiment, split by variant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserTable {
    /// Users whose `variant` equals the control name.
    pub control: ArmColumns,
    /// Users whose `variant` equals the treatment name.
    pub treatment: ArmColumns,
}

/// Reads `path`, assigning rows to arms by the `control` / `treatment` variant names.
pub fn read_users(path: &Path, control: &str, treatment: &str) -> Result<UserTable> {
    let file = std::fs::File::open(path).map_err(|source| ExperimentError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(file);
    let malformed = |line: u64, column: &str, message: String| ExperimentError::Malformed {
        path: path.to_path_buf(),
        line,
        column: column.to_string(),
        message,
    };
    let headers = reader
        .headers()
        .map_err(|e| malformed(1, "(header)", format!("unreadable header: {e}")))?
        .clone();
    if headers.is_empty() || headers.iter().all(|h| h.trim().is_empty()) {
        return Err(malformed(
            1,
            "(header)",
            format!(
                "the file is empty; expected a header with columns {}",
                REQUIRED_COLUMNS.join(",")
            ),
        ));
    }
    let mut index = [0usize; 7];
    for (slot, name) in index.iter_mut().zip(REQUIRED_COLUMNS) {
        *slot = headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| {
                malformed(
                    1,
                    name,
                    format!(
                        "missing column; the header must contain {}",
                        REQUIRED_COLUMNS.join(",")
                    ),
                )
            })?;
    }
    let mut table = UserTable::default();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            malformed(line, "(row)", format!("unreadable row: {e}"))
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(index[i]).unwrap_or("").trim();
        let arm = match field(1) {
            v if v == control => &mut table.control,
            v if v == treatment => &mut table.treatment,
            other => {
                return Err(malformed(
                    line,
                    "variant",
                    format!("unknown variant `{other}`; expected `{control}` or `{treatment}`"),
                ))
            }
        };
        let mut values = [0.0; 5];
        for (k, value) in values.iter_mut().enumerate() {
            let column = REQUIRED_COLUMNS[k + 2];
            *value = parse_value(
                field(k + 2),
                column == "revenue" || column == "pre_period_metric",
            )
            .map_err(|message| malformed(line, column, message))?;
        }
        arm.exposures.push(values[0]);
        arm.clicks.push(values[1]);
        arm.conversions.push(values[2]);
        arm.revenue.push(values[3]);
        arm.pre_period_metric.push(values[4]);
    }
    if table.control.is_empty() && table.treatment.is_empty() {
        return Err(malformed(
            2,
            "(row)",
            "the file has a header but no users".into(),
        ));
    }
    Ok(table)
}

fn parse_value(text: &str, may_be_negative: bool) -> std::result::Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if !value.is_finite() {
        return Err(format!("`{text}` is not a finite number"));
    }
    if !may_be_negative && value < 0.0 {
        return Err(format!("`{text}` is negative; counts must be >= 0"));
    }
    Ok(value)
}
