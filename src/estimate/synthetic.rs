//! A synthetic shadow's per-table scales, and the failures it predicts for production.
//!
//! `--synthesize` fills each table with rows generated from the profile ([`crate::synth`]); a table's counts are
//! scaled by production's rows over the rows generated for it. A statement that fails on those rows fails on the
//! data they are shaped like: the error is reported as predicted for production, with what the profile says of it;
//! so is the error of the COMMIT that ends the plan, where a deferred constraint fails on those rows.

use crate::profile::Profile;
use crate::report::{CommitError, StatementError, SyntheticFidelity, TableScale};

/// Each synthesized table's scale: production's rows (the profile's estimate) over the rows generated.
pub fn synthetic_scales(synthetic: &SyntheticFidelity) -> Vec<TableScale> {
    synthetic
        .tables
        .iter()
        .map(|t| TableScale {
            table: t.table.clone(),
            scale: t.scale,
            production_rows: t.production_rows.round() as u64,
            shadow_rows: t.rows,
            method: format!(
                "{} rows in production (the profile's estimate) / {} synthesized",
                t.production_rows.round() as u64,
                t.rows
            ),
        })
        .collect()
}

/// What a prediction reads of an error Postgres raised: its SQLSTATE, message, DETAIL, and the table and column it
/// names.
pub struct Raised<'a> {
    pub sqlstate: Option<&'a str>,
    pub message: &'a str,
    pub detail: Option<&'a str>,
    pub table_name: Option<&'a str>,
    pub column_name: Option<&'a str>,
}

/// An error a run can meet on synthetic rows: a statement's, or the COMMIT's that ends the plan.
pub trait Predictable {
    /// What Postgres raised.
    fn raised(&self) -> Raised<'_>;
    /// Where the prediction goes.
    fn predicted(&mut self) -> &mut Option<String>;
}

impl Predictable for StatementError {
    fn raised(&self) -> Raised<'_> {
        Raised {
            sqlstate: self.sqlstate.as_deref(),
            message: &self.message,
            detail: self.detail.as_deref(),
            table_name: self.table_name.as_deref(),
            column_name: self.column_name.as_deref(),
        }
    }
    fn predicted(&mut self) -> &mut Option<String> {
        &mut self.predicted
    }
}

impl Predictable for CommitError {
    fn raised(&self) -> Raised<'_> {
        Raised {
            sqlstate: self.sqlstate.as_deref(),
            message: &self.message,
            detail: self.detail.as_deref(),
            table_name: self.table_name.as_deref(),
            column_name: None,
        }
    }
    fn predicted(&mut self) -> &mut Option<String> {
        &mut self.predicted
    }
}

/// Marks `error`, raised on synthetic rows, as predicted for production, with the profile's statistic behind it
/// where Postgres names the column (`null_frac` for nulls, `n_distinct` for duplicates).
pub fn predict(error: &mut dyn Predictable, profile: Option<&Profile>) {
    let raised = error.raised();
    let Some(sqlstate) = raised.sqlstate else { return };
    let stats = || {
        let (schema, table) = raised.table_name?.split_once('.')?;
        let column = raised.column_name.or_else(|| duplicated_column(raised.detail?))?;
        let stats = profile?.table(schema, table)?.column(column)?.stats.as_ref()?;
        Some((column.to_owned(), stats.clone()))
    };
    let basis = match (sqlstate, stats()) {
        ("23502", Some((column, stats))) => format!(" (column {column}: null_frac {} in the profile)", stats.null_frac),
        ("23505", Some((column, stats))) => {
            format!(" (column {column}: n_distinct {} in the profile)", stats.n_distinct)
        }
        _ => String::new(),
    };
    let predicted = format!("fails on synthetic data shaped like production: {}{basis}", raised.message);
    *error.predicted() = Some(predicted);
}

/// The one column of a unique violation's `Key (column)=(...)` detail.
fn duplicated_column(detail: &str) -> Option<&str> {
    let columns = detail.strip_prefix("Key (")?.split_once(")=")?.0;
    (!columns.contains(", ")).then_some(columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unique_violation_names_its_one_column() {
        assert_eq!(duplicated_column("Key (email)=(a@b) is duplicated."), Some("email"));
        assert_eq!(duplicated_column("Key (a, b)=(1, 2) is duplicated."), None);
        let mut error = StatementError { sqlstate: Some("23503".into()), message: "m".into(), ..Default::default() };
        predict(&mut error, None);
        assert_eq!(error.predicted.as_deref(), Some("fails on synthetic data shaped like production: m"));
        let mut commit = CommitError { sqlstate: Some("23503".into()), message: "c".into(), ..Default::default() };
        predict(&mut commit, None);
        assert_eq!(commit.predicted.as_deref(), Some("fails on synthetic data shaped like production: c"));
    }
}
