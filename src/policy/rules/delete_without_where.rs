//! `delete-without-where`: a DELETE with no WHERE clause removed rows — usually every row of the table.

use super::{rows, RuleDoc};
use crate::plan::{Classification, StatementKind};
use crate::report::about;
use crate::report::{StatementReport, Status};

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a DELETE without a WHERE clause deleted rows",
    safer: "add the WHERE clause that says which rows go",
    explanation: "A DELETE with no WHERE clause deletes every row of the table: usually a forgotten condition.",
    schema: "CREATE TABLE sessions (id int PRIMARY KEY, expires_at date);\nINSERT INTO sessions VALUES (1, '2020-01-01'), (2, '2999-01-01');",
    bad: "DELETE FROM sessions;",
    safe: "DELETE FROM sessions WHERE expires_at < current_date;",
};

pub(super) fn check(report: &StatementReport, classification: &Classification) -> Option<String> {
    if classification.kind != StatementKind::Delete || classification.has_where != Some(false) {
        return None;
    }
    let estimated: Vec<String> = report
        .table_effects
        .iter()
        .filter(|e| e.direct && e.deleted.is_none())
        .filter_map(|e| {
            Some(format!("{} ({})", e.table, about(e.estimated.as_ref()?.deleted?, e.estimated.as_ref()?.basis)))
        })
        .collect();
    let unknown: Vec<&str> = report
        .table_effects
        .iter()
        .filter(|e| e.direct && e.production_deleted().is_none())
        .map(|e| e.table.as_str())
        .collect();
    if unknown.is_empty() && !estimated.is_empty() {
        return Some(format!("DELETE without WHERE deletes every row of {}", estimated.join(", ")));
    }
    if !unknown.is_empty() {
        return Some(format!(
            "DELETE without WHERE deletes every row of {}, and the shadow has no rows for it: production's count is unknown",
            unknown.join(", ")
        ));
    }
    let touched = report.rows_affected.unwrap_or(0);
    (touched > 0)
        .then(|| format!("DELETE without WHERE deleted {} from {}", rows(touched), classification.targets.join(", ")))
}

/// No row touched on the shadow, but the text says every row would be in production.
pub(super) fn check_static(report: &StatementReport, classification: &Classification) -> Option<String> {
    let ran_on_nothing = report.status == Status::Ok && report.rows_affected == Some(0);
    (classification.kind == StatementKind::Delete && classification.has_where == Some(false) && ran_on_nothing).then(
        || {
            format!(
                "DELETE without WHERE touched no row here, but deletes every row of {} wherever the table has rows",
                classification.targets.join(", ")
            )
        },
    )
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
