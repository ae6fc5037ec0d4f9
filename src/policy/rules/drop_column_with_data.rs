//! `drop-column-with-data`: a statement dropped a column that held values (measured just before the statement).

use super::{RuleDoc, Seen};
use crate::report::{thousands, StatementReport};

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a statement dropped a column that held non-null values",
    safer: "stop using the column, copy what must be kept, and drop it once it is empty or unused",
    explanation: "Dropping a column destroys its values for good, and code still reading it breaks. pgshadow counts the non-null values each dropped column held just before the statement. Stop reading and writing the column first, copy what must be kept, and drop it once it is empty or unused.",
    schema: "CREATE TABLE users (id int PRIMARY KEY, legacy_phone text, fax text);\nINSERT INTO users VALUES (1, '555-0100', NULL), (2, '555-0101', NULL);",
    bad: "ALTER TABLE users DROP COLUMN legacy_phone;",
    safe: "ALTER TABLE users DROP COLUMN fax;  -- empty: nothing is lost",
};

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let columns: Vec<String> = report
        .dropped_objects
        .iter()
        .filter(|o| o.object_type == "table column")
        .filter(|o| o.values.unwrap_or(0) > 0 || o.estimated.as_ref().map_or(!o.rows_known, |e| e.rows > 0))
        .map(|o| match (o.values.filter(|_| o.rows_known), &o.estimated) {
            (_, Some(e)) => format!("{} (about {} values, {})", o.identity, thousands(e.rows), e.basis.label()),
            (Some(values), None) => format!("{} ({values} values)", o.identity),
            (None, None) => format!("{} (values unknown: the shadow has no rows for its table)", o.identity),
        })
        .collect();
    (!columns.is_empty()).then(|| format!("drops column {}", columns.join(", ")))
}

/// A dropped column that held no values on the shadow.
pub(super) fn disagreement(seen: &Seen<'_>) -> Option<(String, String)> {
    let empty: Vec<&str> = seen
        .report
        .dropped_objects
        .iter()
        .filter(|o| o.object_type == "table column" && o.rows_known && o.estimated.is_none() && o.values == Some(0))
        .map(|o| o.identity.as_str())
        .collect();
    (!empty.is_empty()).then(|| {
        ("values lost with the column".to_owned(), format!("{} held no values on the shadow", empty.join(", ")))
    })
}
