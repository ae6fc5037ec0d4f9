//! `not-null-validation-scan`: `SET NOT NULL` on a column of a table with rows scans every row under an ACCESS
//! EXCLUSIVE lock (measured: the column's nullability changed on an existing table).

use super::{rows, RuleDoc};
use crate::report::StatementReport;

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "SET NOT NULL scanned a table with rows under a lock that blocks reads and writes",
    safer: "ADD CONSTRAINT ... CHECK (column IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, then SET NOT NULL",
    explanation: "ALTER COLUMN ... SET NOT NULL checks every row while holding an ACCESS EXCLUSIVE lock: reads and writes wait for the whole scan. Since PostgreSQL 12 a validated CHECK (column IS NOT NULL) constraint lets SET NOT NULL skip the scan: add the constraint NOT VALID, VALIDATE it in a later transaction (that takes a lock that lets reads and writes go on), then SET NOT NULL and drop the CHECK.",
    schema: "CREATE TABLE users (id int PRIMARY KEY, email text);\nINSERT INTO users VALUES (1, 'a@example.com'), (2, 'b@example.com');",
    bad: "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
    safe: "ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;",
};

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let columns: Vec<String> = report
        .column_changes
        .iter()
        .filter(|c| c.change == "set not null" && c.rows.unwrap_or(0) > 0)
        .map(|c| format!("{} ({} to check)", c.column, rows(c.rows.unwrap_or(0))))
        .collect();
    (!columns.is_empty()).then(|| format!("SET NOT NULL scans {} under an ACCESS EXCLUSIVE lock", columns.join(", ")))
}
