//! `table-rewrite`: a statement rewrote a table's storage (measured: its relfilenode changed with every row kept),
//! holding an ACCESS EXCLUSIVE lock for as long as copying every row takes.

use super::{rows, RuleDoc, Seen};
use crate::report::{size_label, StatementReport};

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a statement rewrote a table with rows, under a lock that blocks reads and writes",
    safer: "avoid the rewrite: no volatile DEFAULT on a new column; for a type change, add a new column, backfill it in batches and swap",
    explanation: "Some ALTER TABLE forms (a column type change that is not binary-compatible, a volatile DEFAULT on a new column, SET LOGGED) and VACUUM FULL or CLUSTER copy the whole table into new storage while holding an ACCESS EXCLUSIVE lock: reads and writes wait for as long as the copy takes, which grows with the rows. pgshadow measures the rewrite instead of guessing it from the SQL.",
    schema: "CREATE TABLE events (id int PRIMARY KEY, payload text);\nINSERT INTO events SELECT g, 'x' FROM generate_series(1, 100) AS g;",
    bad: "ALTER TABLE events ALTER COLUMN id TYPE bigint;",
    safe: "ALTER TABLE events ADD COLUMN id_new bigint;  -- backfill in batches, then swap the columns in a short transaction",
};

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let tables: Vec<String> = report
        .rewritten_tables
        .iter()
        .filter(|t| t.rows.unwrap_or(0) > 0 || t.production.as_ref().is_some_and(|p| p.rows != Some(0)))
        .map(|t| match &t.production {
            Some(size) => {
                let took = t.estimated_duration.as_ref().map(|d| format!("; {}", d.method)).unwrap_or_default();
                format!("{} ({}{took})", t.table, size_label(size))
            }
            None => format!("{} ({})", t.table, rows(t.rows.unwrap_or(0))),
        })
        .collect();
    (!tables.is_empty()).then(|| format!("rewrites {} under an ACCESS EXCLUSIVE lock", tables.join(", ")))
}

/// A type change PostgreSQL made without a rewrite (binary-coercible on this version), or a rewrite of a table with no
/// rows here.
pub(super) fn disagreement(seen: &Seen<'_>) -> Option<(String, String)> {
    let expected = || "a table rewrite".to_owned();
    if let Some(t) = seen.report.rewritten_tables.first() {
        let why = seen.empty_here(&t.table, t.rows).unwrap_or_else(|| format!("production's {} is empty", t.table));
        return Some((expected(), format!("rewrote {}, but {why}", t.table)));
    }
    let retyped: Vec<String> = seen
        .report
        .column_changes
        .iter()
        .filter(|c| c.change == "type changed")
        .map(|c| format!("{} ({} to {})", c.column, c.from.as_deref().unwrap_or("?"), c.to.as_deref().unwrap_or("?")))
        .collect();
    if !retyped.is_empty() {
        let measured = format!(
            "no rewrite on {}: the stored values of {} are binary-coercible to the new type",
            seen.postgres(),
            retyped.join(", ")
        );
        return Some((expected(), measured));
    }
    Some((expected(), seen.new_table_reason("no rewrite")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::test_support::{measured, seen};
    use crate::report::{ColumnChange, RewrittenTable};

    #[test]
    fn a_type_change_without_a_rewrite_names_the_version() {
        let (mut report, classification) = measured("ALTER TABLE t ALTER COLUMN v TYPE varchar(50)");
        report.column_changes = vec![ColumnChange {
            column: "public.t.v".into(),
            change: "type changed".into(),
            from: Some("character varying(10)".into()),
            to: Some("character varying(50)".into()),
            rows: Some(2),
            values_changed: Some(false),
        }];
        let (expected, measured) = disagreement(&seen(&report, &classification, &[])).expect("a disagreement");
        assert_eq!(expected, "a table rewrite");
        assert_eq!(
            measured,
            "no rewrite on PostgreSQL 18.1: the stored values of public.t.v (character varying(10) to character varying(50)) are binary-coercible to the new type"
        );
    }

    #[test]
    fn a_rewrite_of_an_empty_table_says_it_is_empty() {
        let (mut report, classification) = measured("ALTER TABLE t ALTER COLUMN v TYPE bigint");
        report.rewritten_tables = vec![RewrittenTable {
            table: "public.t".into(),
            rows: Some(0),
            size_bytes: Some(0),
            production: None,
            estimated_duration: None,
        }];
        let (_, measured) = disagreement(&seen(&report, &classification, &[])).expect("a disagreement");
        assert_eq!(measured, "rewrote public.t, but public.t has no rows on the shadow");
        report.rewritten_tables[0].rows = None;
        let (_, measured) = disagreement(&seen(&report, &classification, &[])).expect("a disagreement");
        assert!(measured.contains("the shadow has no rows for public.t"), "{measured}");
    }

    #[test]
    fn nothing_measured_on_an_existing_table_is_no_reason() {
        let (report, classification) = measured("ALTER TABLE t ALTER COLUMN v TYPE bigint");
        assert_eq!(disagreement(&seen(&report, &classification, &[])), None);
    }
}
