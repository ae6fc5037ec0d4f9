//! `statement-error`: a statement failed on the shadow, so it would fail in production too (and a transactional
//! apply would stop there).

use super::RuleDoc;
use crate::report::{StatementReport, Status};

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a statement failed on the shadow",
    safer: "fix the statement where Postgres points",
    explanation: "A statement that fails on the shadow fails in production too, and a transactional apply stops there. The report gives the SQLSTATE and the line and column Postgres pointed at.",
    schema: "CREATE TABLE users (id int PRIMARY KEY);",
    bad: "ALTER TABLE users ADD COLUMN age INTEGR;",
    safe: "ALTER TABLE users ADD COLUMN age integer;",
};

pub(super) fn check(report: &StatementReport) -> Option<String> {
    if report.status != Status::Error {
        return None;
    }
    let error = report.error.as_ref()?;
    let code = error.sqlstate.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default();
    Some(format!("failed at line {}, column {}{code}: {}", error.line, error.column, error.message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::test_support::measured;
    use crate::report::StatementError;

    #[test]
    fn a_failed_statement_is_found_with_its_position_and_code() {
        let (mut report, _) = measured("SELECT 1");
        report.status = Status::Error;
        report.error = Some(StatementError {
            sqlstate: Some("42601".into()),
            message: "syntax error at or near \"UPDTE\"".into(),
            detail: None,
            hint: None,
            line: 4,
            column: 3,
            ..Default::default()
        });
        assert_eq!(
            check(&report).as_deref(),
            Some("failed at line 4, column 3 [42601]: syntax error at or near \"UPDTE\"")
        );
    }

    #[test]
    fn a_successful_statement_is_not() {
        let (report, _) = measured("SELECT 1");
        assert_eq!(check(&report), None);
    }
}
