//! `delete-without-where`: a DELETE with no WHERE clause removed rows — usually every row of the table.

use super::rows;
use crate::plan::{Classification, StatementKind};
use crate::report::StatementReport;

pub(super) const SUMMARY: &str = "a DELETE without a WHERE clause deleted rows";

pub(super) fn check(report: &StatementReport, classification: &Classification) -> Option<String> {
    let touched = report.rows_affected.unwrap_or(0);
    (classification.kind == StatementKind::Delete && classification.has_where == Some(false) && touched > 0)
        .then(|| format!("DELETE without WHERE deleted {} from {}", rows(touched), classification.targets.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::test_support::measured;

    #[test]
    fn a_delete_without_where_that_deleted_rows_is_found() {
        let (mut report, c) = measured("DELETE FROM users");
        report.rows_affected = Some(5);
        assert_eq!(check(&report, &c).as_deref(), Some("DELETE without WHERE deleted 5 rows from users"));
    }

    #[test]
    fn a_delete_with_where_or_on_an_empty_table_is_not() {
        let (mut report, c) = measured("DELETE FROM users WHERE id = 1");
        report.rows_affected = Some(1);
        assert_eq!(check(&report, &c), None);
        let (report, c) = measured("DELETE FROM users");
        assert_eq!(check(&report, &c), None);
    }
}
