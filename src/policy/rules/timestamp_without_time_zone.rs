//! `timestamp-without-time-zone`: a column was created, added or retyped as `timestamp` (without time zone).
//! Measured on the catalog for existing tables; from the text for a table the statement creates, whose columns the
//! shadow does not compare.

use super::text::column_types;
use super::{columns_made, RuleDoc};
use crate::report::{StatementReport, Status};

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a column was made timestamp without time zone",
    safer: "use timestamptz (timestamp with time zone)",
    explanation: "timestamp without time zone stores a wall-clock reading with no zone: the same instant written from two servers or sessions in different zones is stored as two different values, and arithmetic across a daylight-saving change is off by an hour. timestamptz stores the instant (in UTC) and shows it in the session's zone; it takes the same 8 bytes. Use timestamptz unless the column really holds a local wall-clock time.",
    schema: "CREATE TABLE orders (id int PRIMARY KEY);",
    bad: "ALTER TABLE orders ADD COLUMN placed_at timestamp;",
    safe: "ALTER TABLE orders ADD COLUMN placed_at timestamptz;",
};

const CONSEQUENCE: &str = "the same instant written from different time zones is stored as different values";

/// Columns the text makes `timestamp` without time zone: (`table.column`, whether the statement creates the table).
fn in_text(sql: &str) -> Vec<(String, bool)> {
    column_types(sql)
        .into_iter()
        .filter(|c| {
            c.data_type.starts_with("TIMESTAMP")
                && !c.data_type.contains("TZ")
                && !c.data_type.contains("WITH TIME ZONE")
        })
        .map(|c| (c.column, c.new_table))
        .collect()
}

pub(super) fn text_shows(sql: &str) -> bool {
    !in_text(sql).is_empty()
}

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let without_zone = |t: &str| t.starts_with("timestamp") && t.ends_with("without time zone");
    let columns: Vec<&str> = columns_made(report, without_zone).into_iter().map(|(column, _)| column).collect();
    (!columns.is_empty()).then(|| format!("makes {} timestamp without time zone: {CONSEQUENCE}", columns.join(", ")))
}

/// A new table's columns (or those of a table the plan created earlier), which the catalog comparison leaves out.
pub(super) fn check_static(report: &StatementReport) -> Option<String> {
    let columns: Vec<String> = in_text(&report.sql).into_iter().map(|(c, _)| c).collect();
    (report.status == Status::Ok && !columns.is_empty()).then(|| {
        format!(
            "makes {} timestamp without time zone (from the text: columns of a table the plan creates are not compared on the catalog): {CONSEQUENCE}",
            columns.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::test_support::measured;
    use crate::report::ColumnChange;

    #[test]
    fn timestamp_columns_are_found_in_the_catalog_and_the_text() {
        let (mut report, _) = measured("ALTER TABLE orders ADD COLUMN placed_at timestamp(3)");
        report.column_changes = vec![ColumnChange {
            column: "public.orders.placed_at".into(),
            change: "added".into(),
            from: None,
            to: Some("timestamp(3) without time zone".into()),
            rows: Some(0),
            values_changed: None,
        }];
        assert!(check(&report).is_some_and(|m| m.starts_with("makes public.orders.placed_at timestamp without")));
        assert!(text_shows(&report.sql));
        for sql in ["CREATE TABLE t (a timestamp with time zone, b timestamptz, c date)", "SELECT now()::timestamp"] {
            assert!(!text_shows(sql), "{sql}");
        }
        let (report, _) = measured("CREATE TABLE t (a timestamp without time zone)");
        assert!(check_static(&report)
            .is_some_and(|m| m.starts_with("makes t.a timestamp without time zone (from the text")));
    }
}
