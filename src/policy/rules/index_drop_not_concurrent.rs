//! `index-drop-not-concurrent`: DROP INDEX, REINDEX or ALTER TABLE ... DETACH PARTITION without CONCURRENTLY on an
//! existing table. Measured: the lock the statement took on the existing table (or its index) that blocks reads or
//! writes; an index of a table the plan created locks nothing anyone else waits on, and is not reported.

use super::text::{find, starts_with, tokens};
use super::{count, RuleDoc};
use crate::report::{size_label, LockTaken, StatementReport};

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "DROP INDEX, REINDEX or DETACH PARTITION without CONCURRENTLY locked an existing table",
    safer: "DROP INDEX CONCURRENTLY, REINDEX ... CONCURRENTLY or DETACH PARTITION ... CONCURRENTLY, outside a transaction block",
    explanation: "DROP INDEX takes an ACCESS EXCLUSIVE lock on the index's table: every query on it waits, and while the DROP itself waits for running transactions, every new query queues behind it. REINDEX blocks writes for the whole rebuild, and DETACH PARTITION blocks reads and writes on the parent. Each has a CONCURRENTLY form (PostgreSQL 12 for REINDEX, 14 for DETACH PARTITION) that takes only a weak lock; it cannot run inside a transaction block. pgshadow reports the lock the statement took on the existing table and the table's rows.",
    schema: "CREATE TABLE orders (id int PRIMARY KEY, customer_id int);\nCREATE INDEX orders_customer_idx ON orders (customer_id);\nINSERT INTO orders SELECT g, g % 10 FROM generate_series(1, 100) AS g;",
    bad: "DROP INDEX orders_customer_idx;",
    safe: "DROP INDEX CONCURRENTLY orders_customer_idx;",
};

/// What the text is, when it is one of the statements this rule is about and lacks CONCURRENTLY.
/// (By its words: sqlparser does not parse REINDEX.)
pub(super) fn text_shows(sql: &str) -> Option<&'static str> {
    let t = tokens(sql);
    if find(&t, "CONCURRENTLY").is_some() {
        return None;
    }
    match () {
        _ if starts_with(&t, &["DROP", "INDEX"]) => Some("DROP INDEX"),
        _ if starts_with(&t, &["REINDEX"]) => Some("REINDEX"),
        _ if starts_with(&t, &["ALTER", "TABLE"])
            && find(&t, "DETACH").is_some_and(|d| t.get(d + 1).is_some_and(|p| p.is("PARTITION")))
            && find(&t, "FINALIZE").is_none() =>
        {
            Some("DETACH PARTITION")
        }
        _ => None,
    }
}

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let what = text_shows(&report.sql)?;
    let blocking = |l: &&LockTaken| l.blocks_reads || l.blocks_writes;
    // The table's lock says what production waits on; an index's lock alone (REINDEX INDEX) blocks the reads that
    // would use it.
    let lock = report
        .locks
        .iter()
        .filter(blocking)
        .find(|l| l.kind == "table")
        .or_else(|| report.locks.iter().find(|l| blocking(l)))?;
    // The production size is the table's: an index's own lock names the index, whose table the table lock names.
    let size = report.locks.iter().filter(|l| l.kind == "table").find_map(|l| l.production.as_ref());
    let rows = size.map_or_else(|| count(lock.rows), size_label);
    Some(format!(
        "{what} without CONCURRENTLY takes {} on {} {} ({rows}): {} wait until the transaction ends",
        lock.mode,
        lock.kind,
        lock.table,
        lock.blocks.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::test_support::measured;

    fn lock(table: &str, kind: &str, mode: &str, reads: bool) -> LockTaken {
        LockTaken {
            table: table.into(),
            kind: kind.into(),
            mode: mode.into(),
            blocks_reads: reads,
            blocks_writes: true,
            blocks: if reads { vec!["SELECT".into(), "INSERT".into()] } else { vec!["INSERT".into()] },
            rows: Some(100),
            production: None,
        }
    }

    #[test]
    fn the_lock_on_the_existing_table_is_reported() {
        let (mut report, _) = measured("DROP INDEX orders_customer_idx");
        report.locks = vec![
            lock("public.orders_customer_idx", "index", "AccessExclusiveLock", true),
            lock("public.orders", "table", "AccessExclusiveLock", true),
        ];
        assert_eq!(
            check(&report).as_deref(),
            Some("DROP INDEX without CONCURRENTLY takes AccessExclusiveLock on table public.orders (100 rows): SELECT, INSERT wait until the transaction ends")
        );
    }

    #[test]
    fn concurrently_or_no_lock_on_an_existing_table_is_not() {
        let (report, _) = measured("DROP INDEX orders_customer_idx");
        assert_eq!(check(&report), None);
        let (mut report, _) = measured("DROP INDEX orders_customer_idx");
        report.sql = "DROP INDEX CONCURRENTLY orders_customer_idx".into();
        report.locks = vec![lock("public.orders", "table", "ShareUpdateExclusiveLock", false)];
        assert_eq!(check(&report), None);
    }

    #[test]
    fn the_text_names_each_statement() {
        for (sql, expected) in [
            ("REINDEX TABLE orders", Some("REINDEX")),
            ("REINDEX (VERBOSE) INDEX CONCURRENTLY i", None),
            ("ALTER TABLE events DETACH PARTITION events_2020", Some("DETACH PARTITION")),
            ("ALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY", None),
            ("ALTER TABLE events DETACH PARTITION events_2020 FINALIZE", None),
            ("ALTER TABLE events ADD COLUMN detach int", None),
        ] {
            assert_eq!(text_shows(sql), expected, "{sql}");
        }
    }
}
