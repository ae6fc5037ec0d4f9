//! `statements-after-exclusive-lock`: statements ran after one that took an ACCESS EXCLUSIVE lock, which is held
//! through them (measured: the plan's held locks). Reported once, on the first statement after the lock.

use super::RuleDoc;
use crate::report::StatementReport;

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a statement ran while an earlier statement's ACCESS EXCLUSIVE lock was still held",
    safer: "take the ACCESS EXCLUSIVE lock last, or commit right after the statement that needs it",
    explanation: "Locks are held until the transaction ends. Once a statement takes an ACCESS EXCLUSIVE lock, every later statement in the same transaction stretches the time during which nobody can read or write that table. Take the exclusive lock last, or commit right after the statement that needs it.",
    schema: "CREATE TABLE users (id int PRIMARY KEY);\nCREATE TABLE audit (id int);\nINSERT INTO users VALUES (1);",
    bad: "ALTER TABLE users ADD COLUMN nickname text;\nINSERT INTO audit SELECT g FROM generate_series(1, 1000) AS g;",
    safe: "INSERT INTO audit SELECT g FROM generate_series(1, 1000) AS g;\nALTER TABLE users ADD COLUMN nickname text;",
};

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let held: Vec<String> = report
        .locks_held
        .iter()
        .filter(|l| l.mode == "AccessExclusiveLock" && l.since + 1 == report.index)
        .map(|l| format!("{} (since statement {})", l.table, l.since))
        .collect();
    (!held.is_empty()).then(|| {
        format!(
            "runs while {} is locked ACCESS EXCLUSIVE: reads and writes wait through this statement too",
            held.join(", ")
        )
    })
}
