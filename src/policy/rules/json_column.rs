//! `json-column`: a column of type `json` was added, or a column was changed to `json` (measured on the catalog).

use super::RuleDoc;
use crate::report::StatementReport;

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a column of type json was added or a column was changed to json",
    safer: "use jsonb",
    explanation: "json keeps the text as written and has no equality operator: SELECT DISTINCT, GROUP BY, UNION and unique indexes on it fail, and every read parses it again. jsonb supports all of json's uses, compares and indexes, and is usually smaller. Use jsonb unless you need the exact text and key order kept.",
    schema: "CREATE TABLE events (id int PRIMARY KEY);",
    bad: "ALTER TABLE events ADD COLUMN payload json;",
    safe: "ALTER TABLE events ADD COLUMN payload jsonb;",
};

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let columns: Vec<&str> = report
        .column_changes
        .iter()
        .filter(|c| matches!(c.change.as_str(), "added" | "type changed") && c.to.as_deref() == Some("json"))
        .map(|c| c.column.as_str())
        .collect();
    (!columns.is_empty()).then(|| format!("makes {} json, which has no equality: use jsonb", columns.join(", ")))
}
