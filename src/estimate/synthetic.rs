//! A synthetic shadow's per-table scales, and the failures it predicts for production.
//!
//! `--synthesize` fills each table with rows generated from the profile ([`crate::synth`]); a table's counts are
//! scaled by production's rows over the rows generated for it. A statement that fails on those rows fails on the
//! data they are shaped like: the error is reported as predicted for production, with what the profile says of it.

use crate::profile::Profile;
use crate::report::{StatementError, SyntheticFidelity, TableScale};

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

/// Marks `error`, raised on synthetic rows, as predicted for production, with the profile's statistic behind it
/// where Postgres names the column (`null_frac` for nulls, `n_distinct` for duplicates).
pub fn predict(error: &mut StatementError, profile: Option<&Profile>) {
    if error.sqlstate.is_none() {
        return;
    }
    let stats = || {
        let (schema, table) = error.table_name.as_deref()?.split_once('.')?;
        let column = error.column_name.as_deref().or_else(|| duplicated_column(error.detail.as_deref()?))?;
        let stats = profile?.table(schema, table)?.column(column)?.stats.as_ref()?;
        Some((column.to_owned(), stats.clone()))
    };
    let basis = match (error.sqlstate.as_deref(), stats()) {
        (Some("23502"), Some((column, stats))) => {
            format!(" (column {column}: null_frac {} in the profile)", stats.null_frac)
        }
        (Some("23505"), Some((column, stats))) => {
            format!(" (column {column}: n_distinct {} in the profile)", stats.n_distinct)
        }
        _ => String::new(),
    };
    error.predicted = Some(format!("fails on synthetic data shaped like production: {}{basis}", error.message));
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
    }
}
