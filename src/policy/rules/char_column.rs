//! `char-column`: a column was created, added or retyped as `char(n)` / `character(n)`. Measured on the catalog for
//! existing tables; from the text for a table the statement creates.

use super::text::column_types;
use super::{columns_made, RuleDoc};
use crate::report::{StatementReport, Status};

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a column was made char(n) (blank-padded)",
    safer: "use text, or varchar(n) / a CHECK on length() when a limit is needed",
    explanation: "char(n) pads every value with spaces to n characters: it stores and compares the padding, trailing spaces are silently stripped or added in casts and comparisons, and it is no faster than text or varchar. A value longer than n is an error, as with varchar(n). Use text (with a CHECK on length() if a limit matters) or varchar(n).",
    schema: "CREATE TABLE countries (id int PRIMARY KEY);",
    bad: "ALTER TABLE countries ADD COLUMN code char(2);",
    safe: "ALTER TABLE countries ADD COLUMN code text CHECK (length(code) = 2);",
};

const CONSEQUENCE: &str = "values are blank-padded, and trailing spaces change meaning in casts and comparisons";

fn is_char(data_type: &str) -> bool {
    let base = data_type.split('(').next().unwrap_or(data_type).trim();
    matches!(base, "CHAR" | "CHARACTER" | "BPCHAR" | "character" | "bpchar")
}

fn in_text(sql: &str) -> Vec<String> {
    column_types(sql).into_iter().filter(|c| is_char(&c.data_type)).map(|c| c.column).collect()
}

pub(super) fn text_shows(sql: &str) -> bool {
    !in_text(sql).is_empty()
}

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let columns: Vec<String> =
        columns_made(report, is_char).into_iter().map(|(column, to)| format!("{column} {to}")).collect();
    (!columns.is_empty()).then(|| format!("makes {}: {CONSEQUENCE}", columns.join(", ")))
}

/// A new table's columns (or those of a table the plan created earlier), which the catalog comparison leaves out.
pub(super) fn check_static(report: &StatementReport) -> Option<String> {
    let columns = in_text(&report.sql);
    (report.status == Status::Ok && !columns.is_empty()).then(|| {
        format!(
            "makes {} char(n) (from the text: columns of a table the plan creates are not compared on the catalog): {CONSEQUENCE}",
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
    fn char_columns_are_found_but_not_varchar_or_the_internal_char() {
        let (mut report, _) = measured("ALTER TABLE countries ADD COLUMN code char(2)");
        report.column_changes = vec![ColumnChange {
            column: "public.countries.code".into(),
            change: "added".into(),
            from: None,
            to: Some("character(2)".into()),
            rows: Some(0),
            values_changed: None,
        }];
        assert!(check(&report).is_some_and(|m| m.starts_with("makes public.countries.code character(2):")));
        assert!(text_shows(&report.sql) && text_shows("CREATE TABLE t (a character(3))"));
        assert!(!text_shows("CREATE TABLE t (a varchar(2), b character varying(3), c \"char\", d text)"));
        report.column_changes[0].to = Some("\"char\"".into());
        assert_eq!(check(&report), None);
    }
}
