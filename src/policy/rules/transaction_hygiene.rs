//! `transaction-hygiene`: how the plan uses transactions, from what the run already records: it commits part-way
//! and goes on (a failure after that leaves production half-migrated), it opens a transaction it never commits, or
//! it mixes statements that must run outside a transaction block with ones inside. A check over the whole plan.

use super::RuleDoc;
use crate::plan::StatementKind;
use crate::report::StatementReport;

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "the plan commits part-way, leaves a transaction open, or mixes statements that must run outside a transaction with ones inside",
    safer: "one transaction per plan, committed at its end; statements that need their own transaction (CONCURRENTLY, VACUUM) in a plan of their own",
    explanation: "A plan that commits and then goes on is applied in pieces: when a later statement fails, what was committed stays, and production is left half-migrated with no rollback. A plan that opens a transaction and never commits it applies nothing under psql (which rolls it back at the end) and, under a tool that keeps the session, holds its locks until the connection closes. Statements that must run outside a transaction block (CREATE INDEX CONCURRENTLY, VACUUM, ...) fail inside one, and outside one they force everything before them to be committed first. Keep one transaction per plan, committed at its end, and put the statements that need their own in a plan of their own.",
    schema: "CREATE TABLE accounts (id int PRIMARY KEY, plan text);\nINSERT INTO accounts VALUES (1, 'free');",
    bad: "BEGIN;\nALTER TABLE accounts ADD COLUMN tier text;\nCOMMIT;\nUPDATE accounts SET tier = plan WHERE id = 1;",
    safe: "BEGIN;\nALTER TABLE accounts ADD COLUMN tier text;\nUPDATE accounts SET tier = plan WHERE id = 1;\nCOMMIT;",
};

/// Transaction control, which neither does work nor counts as work after a commit.
fn is_control(report: &StatementReport) -> bool {
    use StatementKind as K;
    matches!(
        report.kind,
        K::Begin
            | K::Commit
            | K::Rollback
            | K::Savepoint
            | K::ReleaseSavepoint
            | K::RollbackToSavepoint
            | K::Set
            | K::Reset
    )
}

fn noted(report: &StatementReport, what: &str) -> bool {
    report.note.as_deref().is_some_and(|n| n.contains(what))
}

/// Findings over the whole plan: (statement index, message).
pub(super) fn check_plan(reports: &[StatementReport]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let work = |r: &&StatementReport| !is_control(r);
    for (i, report) in reports.iter().enumerate() {
        let (before, after) = (&reports[..i], &reports[i + 1..]);
        if report.kind == StatementKind::Commit && noted(report, "commits its transaction") {
            let later = after.iter().filter(work).count();
            if later > 0 {
                found.push((
                    report.index,
                    format!(
                        "commits part-way: {later} more statement(s) run after this COMMIT, and if one fails, what was committed stays (production half-migrated)"
                    ),
                ));
            }
        }
        if report.kind == StatementKind::Begin && noted(report, "never committed") {
            found.push((
                report.index,
                "opens a transaction that is never committed: psql rolls it back at the end (nothing is applied), other tools keep it open with its locks".to_owned(),
            ));
        }
        let others = before.iter().chain(after).filter(work).count();
        if noted(report, "run outside a transaction block") && others > 0 {
            found.push((
                report.index,
                format!(
                    "must run outside a transaction block, beside {others} statement(s) that run inside one: the ones before it are committed first, and stay if it fails"
                ),
            ));
        }
        if report.error.as_ref().is_some_and(|e| e.sqlstate.as_deref() == Some("25001")) {
            found.push((
                report.index,
                "cannot run inside the plan's transaction block, and fails there: run it in a plan of its own"
                    .to_owned(),
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Plan;
    use crate::report::Status;

    fn reports(sql: &str, notes: &[(usize, &str)]) -> Vec<StatementReport> {
        let plan = Plan::parse("plan.sql", sql).expect("plan");
        let mut reports: Vec<StatementReport> = plan
            .statements
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut r = StatementReport::not_run(i + 1, s);
                r.status = Status::Ok;
                r
            })
            .collect();
        for (index, note) in notes {
            reports[index - 1].note = Some((*note).to_owned());
        }
        reports
    }

    #[test]
    fn a_commit_followed_by_work_is_found_on_the_commit() {
        let r = reports(
            "BEGIN; UPDATE a SET x = 1; COMMIT; UPDATE b SET y = 2",
            &[(1, "the plan's transaction starts here"), (3, "the plan commits its transaction here")],
        );
        let found = check_plan(&r);
        assert_eq!(found.len(), 1);
        assert!(found[0].0 == 3 && found[0].1.starts_with("commits part-way: 1 more statement"));
        let r = reports("BEGIN; UPDATE a SET x = 1; COMMIT", &[(3, "the plan commits its transaction here")]);
        assert!(check_plan(&r).is_empty());
    }

    #[test]
    fn an_open_transaction_and_a_statement_outside_are_found() {
        let r = reports(
            "UPDATE a SET x = 1; VACUUM a; BEGIN; UPDATE a SET x = 2",
            &[(2, "run outside a transaction block, as Postgres requires"), (3, "never committed: it is rolled back")],
        );
        let found: Vec<usize> = check_plan(&r).iter().map(|f| f.0).collect();
        assert_eq!(found, [2, 3]);
        let alone = reports("VACUUM a", &[(1, "run outside a transaction block, as Postgres requires")]);
        assert!(check_plan(&alone).is_empty());
    }
}
