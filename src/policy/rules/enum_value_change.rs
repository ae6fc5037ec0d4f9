//! `enum-value-change`: an enum value renamed (code still running reads and writes the old label), or added inside
//! a transaction, where PostgreSQL 12 and later refuse to use it until the transaction commits (and older versions
//! refuse the ADD VALUE itself). A check over the whole plan: the plan's own transaction block is read from its
//! statements, and a use the server refused (SQLSTATE 55P04) is measured.

use super::text::{find, name_at, object_after_verb, starts_with, tokens};
use super::RuleDoc;
use crate::plan::StatementKind;
use crate::report::{FoundBy, StatementReport};

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "an enum value was renamed, or added inside a transaction that then uses it",
    safer: "add enum values in a plan of their own, committed before anything uses them; never rename a value the running code uses",
    explanation: "A renamed enum value breaks every query and every write of the running code that still uses the old label, the moment the plan commits. ALTER TYPE ... ADD VALUE is safe on its own, but inside a transaction the new value cannot be used until that transaction commits (PostgreSQL 12 and later fail the use with 55P04 'unsafe use of new value'; before 12 the ADD VALUE itself cannot run in a transaction block). Add the value in a plan of its own, commit, deploy the code that writes it, then use it.",
    schema: "CREATE TYPE mood AS ENUM ('sad', 'ok');\nCREATE TABLE people (id int PRIMARY KEY, mood mood);\nINSERT INTO people VALUES (1, 'ok');",
    bad: "BEGIN;\nALTER TYPE mood ADD VALUE 'happy';\nUPDATE people SET mood = 'happy' WHERE id = 1;\nCOMMIT;",
    safe: "ALTER TYPE mood ADD VALUE 'happy';",
};

/// `ALTER TYPE t ADD VALUE [IF NOT EXISTS] 'v'` or `ALTER TYPE t RENAME VALUE 'a' TO 'b'`: the type and what changes.
enum Change {
    Added { enum_type: String, value: String },
    Renamed { enum_type: String, from: String, to: String },
}

fn change(sql: &str) -> Option<Change> {
    let t = tokens(sql);
    if !starts_with(&t, &["ALTER", "TYPE"]) {
        return None;
    }
    let (_, at) = object_after_verb(&t)?;
    let (enum_type, _) = name_at(&t, at)?;
    let value = find(&t, "VALUE")?;
    let verb = t.get(value.checked_sub(1)?)?;
    let string_after = |i: usize| t[i..].iter().find(|w| w.key == "'").map(|w| w.name.clone());
    if verb.is("ADD") {
        Some(Change::Added { enum_type, value: string_after(value + 1)? })
    } else if verb.is("RENAME") {
        let from = t.get(value + 1).filter(|w| w.key == "'")?.name.clone();
        let to = t.get(value + 3).filter(|w| w.key == "'")?.name.clone();
        Some(Change::Renamed { enum_type, from, to })
    } else {
        None
    }
}

/// Findings over the whole plan: (statement index, message, how it was found).
pub(super) fn check_plan(reports: &[StatementReport]) -> Vec<(usize, String, FoundBy)> {
    let mut found = Vec::new();
    let mut block: Option<usize> = None;
    for report in reports {
        match report.kind {
            StatementKind::Begin => block = block.or(Some(report.index)),
            StatementKind::Commit | StatementKind::Rollback => block = None,
            _ => {}
        }
        match change(&report.sql) {
            Some(Change::Renamed { enum_type, from, to }) => found.push((
                report.index,
                format!("renames value '{from}' of enum {enum_type} to '{to}': code still running reads and writes '{from}' and fails"),
                FoundBy::Static,
            )),
            Some(Change::Added { enum_type, value }) => {
                if let Some(begin) = block {
                    found.push((
                        report.index,
                        format!("adds value '{value}' to enum {enum_type} inside the transaction that starts at statement {begin}: it cannot be used until that transaction commits (PostgreSQL 12+; before 12 the ADD VALUE fails in a transaction block)"),
                        FoundBy::Static,
                    ));
                }
            }
            None => {}
        }
        if report.error.as_ref().is_some_and(|e| e.sqlstate.as_deref() == Some("55P04")) {
            found.push((
                report.index,
                "uses an enum value added earlier in the same transaction, which PostgreSQL refuses until it commits (55P04; pgshadow runs the plan as one transaction, as a transactional migration does): commit between the ADD VALUE and its first use".to_owned(),
                FoundBy::Measured,
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Plan;
    use crate::report::{StatementError, Status};

    fn reports(sql: &str) -> Vec<StatementReport> {
        let plan = Plan::parse("plan.sql", sql).expect("plan");
        plan.statements
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut r = StatementReport::not_run(i + 1, s);
                r.status = Status::Ok;
                r
            })
            .collect()
    }

    #[test]
    fn a_value_added_in_the_plans_transaction_and_a_renamed_one_are_found() {
        let r = reports("ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'; BEGIN; ALTER TYPE app.mood ADD VALUE IF NOT EXISTS 'happy' AFTER 'ok'; COMMIT; ALTER TYPE mood ADD VALUE 'meh'");
        let found: Vec<(usize, FoundBy)> = check_plan(&r).into_iter().map(|(i, _, by)| (i, by)).collect();
        assert_eq!(found, [(1, FoundBy::Static), (3, FoundBy::Static)]);
        assert!(check_plan(&r)[1]
            .1
            .starts_with("adds value 'happy' to enum app.mood inside the transaction that starts at statement 2"));
    }

    #[test]
    fn a_refused_use_is_measured() {
        let mut r = reports("ALTER TYPE mood ADD VALUE 'happy'; UPDATE people SET mood = 'happy'");
        r[1].status = Status::Error;
        r[1].error = Some(StatementError {
            sqlstate: Some("55P04".into()),
            message: "unsafe use of new value \"happy\" of enum type mood".into(),
            detail: None,
            hint: None,
            line: 1,
            column: 1,
            ..Default::default()
        });
        let found: Vec<(usize, FoundBy)> = check_plan(&r).into_iter().map(|(i, _, by)| (i, by)).collect();
        assert_eq!(found, [(2, FoundBy::Measured)]);
    }
}
