//! `index-not-concurrent`: CREATE INDEX without CONCURRENTLY on a table that existed before the plan builds under a
//! lock that blocks writes (measured: the table is locked SHARE or stronger when the statement ends — taken by it,
//! or already held since an earlier statement, which the build keeps waiting).

use super::{count, RuleDoc, Seen};
use crate::plan::{Classification, StatementKind};
use crate::report::StatementReport;

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "an index was built on an existing table without CONCURRENTLY, blocking writes",
    safer: "CREATE INDEX CONCURRENTLY, outside a transaction block",
    explanation: "CREATE INDEX holds a SHARE lock on the table until the index is built: every INSERT, UPDATE and DELETE waits, for a time that grows with the table. CREATE INDEX CONCURRENTLY builds it without blocking writes (it cannot run inside a transaction block; a failed build leaves an INVALID index to drop).",
    schema: "CREATE TABLE orders (id int PRIMARY KEY, customer_id int);\nINSERT INTO orders SELECT g, g % 10 FROM generate_series(1, 100) AS g;",
    bad: "CREATE INDEX orders_customer_idx ON orders (customer_id);",
    safe: "CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);",
};

pub(super) fn check(report: &StatementReport, classification: &Classification) -> Option<String> {
    if classification.kind != StatementKind::CreateIndex {
        return None;
    }
    let target = classification.targets.first()?;
    let names_target = |table: &str| table == target || table.ends_with(&format!(".{target}"));
    let lock = report.locks_held.iter().find(|l| names_target(&l.table))?;
    let rows = report.locks.iter().find(|l| names_target(&l.table)).map(|l| format!(" ({})", count(l.rows)));
    Some(format!(
        "builds an index on {}{} while it is locked {} (blocking writes); use CREATE INDEX CONCURRENTLY",
        lock.table,
        rows.unwrap_or_default(),
        lock.mode
    ))
}

/// An index built without CONCURRENTLY on a table this plan created: no one else writes to it.
pub(super) fn disagreement(seen: &Seen<'_>) -> Option<(String, String)> {
    let measured = seen.new_table_reason("no lock on a table that existed before the plan")?;
    Some(("a lock that blocks writes while the index builds".to_owned(), measured))
}
