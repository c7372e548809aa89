//! Reading a logged-bandit CSV with validated propensities.

use std::path::Path;

use super::LoggedBandit;
use crate::csvio::{parse_f64, CsvFile};
use crate::error::{EvalError, Result};

/// Reads a logged-bandit CSV (columns `reward`, `pscore`, `pi_e`; optional `action`,
/// `position`, `q_hat`, `dm_term`; other columns ignored).
pub fn read_logged_bandit(path: &Path) -> Result<LoggedBandit> {
    let file = CsvFile::open(path)?;
    let (reward_col, pscore_col, pi_e_col) = (
        file.column("reward")?,
        file.column("pscore")?,
        file.column("pi_e")?,
    );
    let position_col = file.optional_column("position");
    let model_cols = match (
        file.optional_column("q_hat"),
        file.optional_column("dm_term"),
    ) {
        (Some(q), Some(d)) => Some((q, d)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(file
                .column("dm_term")
                .err()
                .unwrap_or(EvalError::InvalidArgument("dm_term".into())))
        }
        (None, Some(_)) => {
            return Err(file
                .column("q_hat")
                .err()
                .unwrap_or(EvalError::InvalidArgument("q_hat".into())))
        }
    };
    let mut log = LoggedBandit {
        q_hat: model_cols.map(|_| Vec::new()),
        dm_term: model_cols.map(|_| Vec::new()),
        ..Default::default()
    };
    let mut positions = std::collections::BTreeSet::new();
    file.for_each_row(|row| {
        let reward = parse_f64(path, row, reward_col, "reward")?;
        let pscore = parse_f64(path, row, pscore_col, "pscore")?;
        if !(pscore > 0.0 && pscore <= 1.0) {
            let raw = row.get(pscore_col);
            return Err(EvalError::invalid(
                path,
                row.line,
                "pscore",
                raw,
                "a propensity must lie in (0, 1]",
            ));
        }
        let pi_e = parse_f64(path, row, pi_e_col, "pi_e")?;
        if !(0.0..=1.0).contains(&pi_e) {
            let raw = row.get(pi_e_col);
            return Err(EvalError::invalid(
                path,
                row.line,
                "pi_e",
                raw,
                "a probability must lie in [0, 1]",
            ));
        }
        if let Some(col) = position_col {
            let raw = row.get(col);
            if !positions.contains(raw) {
                positions.insert(raw.to_vec());
            }
        }
        if let (Some((q_col, d_col)), Some(q), Some(d)) =
            (model_cols, log.q_hat.as_mut(), log.dm_term.as_mut())
        {
            q.push(parse_f64(path, row, q_col, "q_hat")?);
            d.push(parse_f64(path, row, d_col, "dm_term")?);
        }
        log.reward.push(reward);
        log.pscore.push(pscore);
        log.pi_e.push(pi_e);
        Ok(())
    })?;
    if log.reward.is_empty() {
        return Err(EvalError::Empty {
            path: path.to_path_buf(),
        });
    }
    log.n_positions = positions.len().max(1);
    Ok(log)
}
