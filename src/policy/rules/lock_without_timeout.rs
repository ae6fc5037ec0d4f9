//! `lock-without-timeout`: a statement took a lock that blocks reads or writes on an existing table while
//! `lock_timeout` was 0.

use super::RuleDoc;
use crate::report::{size_label, ProductionSize, StatementReport};

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a statement took a lock that blocks reads or writes with no lock_timeout",
    safer: "SET lock_timeout = '2s' (and retry) before statements that take strong locks",
    explanation: "A lock that conflicts with reads or writes must first wait for every running transaction on the table; while it waits, every new query on the table queues behind it. With lock_timeout = 0 that wait has no end, and a short ALTER TABLE becomes an outage. Set lock_timeout (and retry) so the statement gives up instead.",
    schema: "CREATE TABLE users (id int PRIMARY KEY);\nINSERT INTO users VALUES (1);",
    bad: "ALTER TABLE users ADD COLUMN nickname text;",
    safe: "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN nickname text;",
};

/// Lock modes from weakest to strongest.
const STRENGTH: [&str; 8] = [
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
];

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let no_timeout = report.settings.as_ref().is_some_and(|s| s.lock_timeout == "0");
    // The strongest blocking lock per table.
    let mut strongest: Vec<(&str, &str, Option<&ProductionSize>)> = Vec::new();
    for lock in report.locks.iter().filter(|l| l.kind == "table" && (l.blocks_reads || l.blocks_writes)) {
        let strength = |mode: &str| STRENGTH.iter().position(|m| *m == mode);
        match strongest.iter_mut().find(|(table, _, _)| *table == lock.table) {
            Some(entry) if strength(&lock.mode) > strength(entry.1) => entry.1 = &lock.mode,
            Some(_) => {}
            None => strongest.push((&lock.table, &lock.mode, lock.production.as_ref())),
        }
    }
    let locks: Vec<String> = strongest
        .iter()
        .map(|(table, mode, size)| match size {
            Some(size) => format!("{mode} on {table} ({})", size_label(size)),
            None => format!("{mode} on {table}"),
        })
        .collect();
    (no_timeout && !locks.is_empty()).then(|| {
        format!(
            "takes {} with lock_timeout = 0: in production it can queue every query on the table behind it",
            locks.join(", ")
        )
    })
}
