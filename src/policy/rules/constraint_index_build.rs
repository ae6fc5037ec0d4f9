//! `constraint-index-build`: a UNIQUE, PRIMARY KEY or EXCLUDE constraint added to a table with rows built its index
//! inside `ALTER TABLE`, holding ACCESS EXCLUSIVE for the whole build (measured: a new constraint of one of those
//! types on an existing table with rows, not attached with `USING INDEX`).

use super::{rows, RuleDoc, Seen};
use crate::report::StatementReport;

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a UNIQUE, PRIMARY KEY or EXCLUDE constraint built its index on a table with rows under ACCESS EXCLUSIVE",
    safer: "CREATE UNIQUE INDEX CONCURRENTLY, then ALTER TABLE ... ADD CONSTRAINT ... USING INDEX",
    explanation: "ALTER TABLE ... ADD CONSTRAINT ... UNIQUE (or PRIMARY KEY, or EXCLUDE) builds the constraint's index while holding ACCESS EXCLUSIVE on the table: every read and write waits for the whole build, which grows with the table. Build the index first with CREATE UNIQUE INDEX CONCURRENTLY (reads and writes go on), then attach it with ADD CONSTRAINT ... UNIQUE USING INDEX or PRIMARY KEY USING INDEX, which is instant. Exclusion constraints cannot use an existing index: add them when the table can be locked.",
    schema: "CREATE TABLE users (id int, email text);\nINSERT INTO users VALUES (1, 'a@example.com'), (2, 'b@example.com');",
    bad: "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);",
    safe: "CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);\nALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;",
};

pub(super) fn check(report: &StatementReport) -> Option<String> {
    if report
        .sql
        .to_ascii_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| w == ["using", "index"])
    {
        return None;
    }
    let built: Vec<String> = report
        .constraint_changes
        .iter()
        .filter(|c| {
            c.change == "added"
                && matches!(c.constraint_type.as_str(), "unique" | "primary key" | "exclusion")
                && c.rows.unwrap_or(0) > 0
        })
        .map(|c| format!("{} {} ({})", c.constraint_type, c.constraint, rows(c.rows.unwrap_or(0))))
        .collect();
    (!built.is_empty()).then(|| {
        format!(
            "builds the index of {} while holding ACCESS EXCLUSIVE: every read and write waits for the build",
            built.join(", ")
        )
    })
}

/// A UNIQUE, PRIMARY KEY or EXCLUDE index built on a table with no rows here, or on a table new in this plan.
pub(super) fn disagreement(seen: &Seen<'_>) -> Option<(String, String)> {
    seen.constrained("an index build under ACCESS EXCLUSIVE", &["unique", "primary key", "exclusion"])
}
