//! `column-type-narrowing`: a column's type change altered existing values (measured: the new values, cast back to
//! the old type, differ from the old ones), e.g. rounding numerics or truncating timestamps to dates.

use super::RuleDoc;
use crate::report::StatementReport;

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a column type change altered existing values (rounded, truncated or converted)",
    safer: "widen instead, or convert into a new column and compare the values before switching",
    explanation: "ALTER COLUMN ... TYPE converts every value, and a narrower type changes some silently: numeric(10,2) to numeric(10,0) rounds prices, timestamp to date drops the time, a USING expression rewrites values. pgshadow compares the values before with the new values cast back to the old type. Widen instead, or convert into a new column and compare before switching.",
    schema: "CREATE TABLE products (id int PRIMARY KEY, price numeric(10,2));\nINSERT INTO products VALUES (1, 9.99), (2, 20.00);",
    bad: "ALTER TABLE products ALTER COLUMN price TYPE numeric(10,0);",
    safe: "ALTER TABLE products ALTER COLUMN price TYPE numeric(12,2);",
};

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let columns: Vec<String> = report
        .column_changes
        .iter()
        .filter(|c| c.values_changed == Some(true))
        .map(|c| {
            format!("{} from {} to {}", c.column, c.from.as_deref().unwrap_or("?"), c.to.as_deref().unwrap_or("?"))
        })
        .collect();
    (!columns.is_empty()).then(|| format!("converting {} changed existing values", columns.join(", ")))
}
