//! `constraint-validation-scan`: a CHECK or FOREIGN KEY constraint added to a table with rows was validated at once,
//! scanning every row while the statement's lock is held (measured: a new, validated constraint on an existing table).

use super::{rows, RuleDoc, Seen};
use crate::report::StatementReport;

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a CHECK or FOREIGN KEY constraint was added and validated on a table with rows in one step",
    safer: "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a later transaction",
    explanation: "Adding a CHECK or FOREIGN KEY constraint checks every existing row while ALTER TABLE holds its lock (ACCESS EXCLUSIVE for a CHECK; SHARE ROW EXCLUSIVE on both tables for a foreign key): writes, and for a CHECK reads too, wait for the whole scan. Add it NOT VALID (instant: only new rows are checked), then VALIDATE CONSTRAINT in a later transaction, which lets reads and writes go on.",
    schema: "CREATE TABLE orders (id int PRIMARY KEY, total int);\nINSERT INTO orders VALUES (1, 10), (2, 20);",
    bad: "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0);",
    safe: "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0) NOT VALID;",
};

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let constraints: Vec<String> = report
        .constraint_changes
        .iter()
        .filter(|c| {
            c.change == "added"
                && (c.constraint_type == "check" || c.constraint_type == "foreign key")
                && c.rows.unwrap_or(0) > 0
        })
        .map(|c| format!("{} ({} checked)", c.constraint, rows(c.rows.unwrap_or(0))))
        .collect();
    (!constraints.is_empty()).then(|| {
        format!("adds and validates {} at once; add it NOT VALID, then VALIDATE CONSTRAINT", constraints.join(", "))
    })
}

/// A CHECK or FOREIGN KEY validated on a table with no rows here, or on a table new in this plan.
pub(super) fn disagreement(seen: &Seen<'_>) -> Option<(String, String)> {
    seen.constrained("a scan of every row to validate the constraint", &["check", "foreign key"])
}
