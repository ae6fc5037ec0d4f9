//! `update-without-where`: an UPDATE with no WHERE clause changed rows — usually every row of the table.

use super::{rows, RuleDoc};
use crate::plan::{Classification, StatementKind};
use crate::report::about;
use crate::report::{StatementReport, Status};

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "an UPDATE without a WHERE clause changed rows",
    safer: "add the WHERE clause that says which rows change",
    explanation:
        "An UPDATE with no WHERE clause overwrites a column in every row of the table: usually a forgotten condition.",
    schema: "CREATE TABLE accounts (id int PRIMARY KEY, balance int);\nINSERT INTO accounts VALUES (1, 10), (42, 20);",
    bad: "UPDATE accounts SET balance = 0;",
    safe: "UPDATE accounts SET balance = 0 WHERE id = 42;",
};

pub(super) fn check(report: &StatementReport, classification: &Classification) -> Option<String> {
    if classification.kind != StatementKind::Update || classification.has_where != Some(false) {
        return None;
    }
    let estimated: Vec<String> = report
        .table_effects
        .iter()
        .filter(|e| e.direct && e.updated.is_none())
        .filter_map(|e| {
            Some(format!("{} ({})", e.table, about(e.estimated.as_ref()?.updated?, e.estimated.as_ref()?.basis)))
        })
        .collect();
    let unknown: Vec<&str> = report
        .table_effects
        .iter()
        .filter(|e| e.direct && e.production_updated().is_none())
        .map(|e| e.table.as_str())
        .collect();
    if unknown.is_empty() && !estimated.is_empty() {
        return Some(format!("UPDATE without WHERE changes every row of {}", estimated.join(", ")));
    }
    if !unknown.is_empty() {
        return Some(format!(
            "UPDATE without WHERE changes every row of {}, and the shadow has no rows for it: production's count is unknown",
            unknown.join(", ")
        ));
    }
    let touched = report.rows_affected.unwrap_or(0);
    (touched > 0)
        .then(|| format!("UPDATE without WHERE changed {} in {}", rows(touched), classification.targets.join(", ")))
}

/// No row touched on the shadow, but the text says every row would be in production.
pub(super) fn check_static(report: &StatementReport, classification: &Classification) -> Option<String> {
    let ran_on_nothing = report.status == Status::Ok && report.rows_affected == Some(0);
    (classification.kind == StatementKind::Update && classification.has_where == Some(false) && ran_on_nothing).then(
        || {
            format!(
                "UPDATE without WHERE touched no row here, but changes every row of {} wherever the table has rows",
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
    fn an_update_without_where_that_changed_rows_is_found() {
        let (mut report, c) = measured("UPDATE accounts SET balance = 0");
        report.rows_affected = Some(1);
        assert_eq!(check(&report, &c).as_deref(), Some("UPDATE without WHERE changed 1 row in accounts"));
    }

    #[test]
    fn an_update_with_where_is_not() {
        let (mut report, c) = measured("UPDATE accounts SET balance = 0 WHERE id = 7");
        report.rows_affected = Some(1);
        assert_eq!(check(&report, &c), None);
    }
}
