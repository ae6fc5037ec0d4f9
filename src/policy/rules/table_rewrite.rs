//! `table-rewrite`: a statement rewrote a table's storage (measured: its relfilenode changed with every row kept),
//! holding an ACCESS EXCLUSIVE lock for as long as copying every row takes.

use super::{rows, RuleDoc};
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
