//! `trigger-change`: a trigger was created, dropped, disabled or enabled on a table that existed before the plan.
//! Measured: the trigger created or dropped (the event triggers' logs) and the lock taken on the existing table; an
//! ENABLE or DISABLE TRIGGER is read from the text, with the lock measured. Triggers of tables the plan creates, or
//! dropped with their table, are not reported.

use super::text::{find, starts_with, tokens};
use super::{count, RuleDoc};
use crate::report::StatementReport;

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a trigger was created, dropped, disabled or enabled on an existing table",
    safer: "change triggers in a plan of their own, with lock_timeout set, and deploy the code that expects the new behaviour with it",
    explanation: "A trigger changes what every write to its table does, from the moment the plan commits: a new trigger runs (and can fail, or slow every write) on writes the running code makes, a dropped or disabled one silently stops what it did (an audit row, a denormalised total, a check). Creating or enabling a trigger takes a SHARE ROW EXCLUSIVE lock that blocks writes, and DROP TRIGGER an ACCESS EXCLUSIVE one. pgshadow reports the trigger, what fires differently afterwards, and the lock on the table.",
    schema: "CREATE TABLE orders (id int PRIMARY KEY, total int);\nCREATE FUNCTION audit_order() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;\nCREATE TRIGGER orders_audit AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION audit_order();\nINSERT INTO orders VALUES (1, 10);",
    bad: "ALTER TABLE orders DISABLE TRIGGER orders_audit;",
    safe: "CREATE TABLE refunds (id int PRIMARY KEY, total int);\nCREATE TRIGGER refunds_audit AFTER UPDATE ON refunds FOR EACH ROW EXECUTE FUNCTION audit_order();",
};

/// An ENABLE or DISABLE TRIGGER the text shows: (`enables`/`disables`, the trigger named or `ALL`/`USER`, table).
fn toggled(sql: &str) -> Option<(&'static str, String, String)> {
    let t = tokens(sql);
    if !starts_with(&t, &["ALTER", "TABLE"]) {
        return None;
    }
    let trigger = find(&t, "TRIGGER")?;
    let verb = t[..trigger].iter().rev().take(3).find(|w| w.is("ENABLE") || w.is("DISABLE"))?;
    let verb = if verb.is("ENABLE") { "enables" } else { "disables" };
    let (object, at) = super::text::object_after_verb(&t)?;
    let table = (object == "TABLE").then(|| super::text::name_at(&t, at)).flatten()?.0;
    Some((verb, t.get(trigger + 1)?.name.clone(), table))
}

pub(super) fn text_shows(sql: &str) -> bool {
    let t = tokens(sql);
    starts_with(&t, &["CREATE", "TRIGGER"])
        || starts_with(&t, &["CREATE", "OR", "REPLACE", "TRIGGER"])
        || starts_with(&t, &["CREATE", "CONSTRAINT", "TRIGGER"])
        || starts_with(&t, &["DROP", "TRIGGER"])
        || toggled(sql).is_some()
}

/// The lock the statement holds on an existing table at its end (its own, else one held since earlier), when it has
/// one: `None` for a table the plan created.
fn lock_on(report: &StatementReport, table: &str) -> Option<String> {
    if let Some(lock) = report.locks.iter().rev().find(|l| l.kind == "table" && l.table == table) {
        return Some(format!("{} on {table} ({})", lock.mode, count(lock.rows)));
    }
    let held = report.locks_held.iter().rev().find(|l| l.table == table)?;
    Some(format!("{} on {table}, held since statement {}", held.mode, held.since))
}

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let table_of = |identity: &str| identity.rsplit_once(" on ").map(|(_, t)| t.to_owned());
    let mut changes = Vec::new();
    for change in report.schema_changes.iter().filter(|c| c.object_type == "trigger" && c.command.starts_with("CREATE"))
    {
        let Some(table) = table_of(&change.identity) else { continue };
        if let Some(lock) = lock_on(report, &table) {
            changes
                .push(format!("creates trigger {} ({lock}): writes to {table} fire it from now on", change.identity));
        }
    }
    for dropped in report.dropped_objects.iter().filter(|o| o.object_type == "trigger") {
        let Some(table) = table_of(&dropped.identity) else { continue };
        let table_dropped = report.dropped_objects.iter().any(|o| o.object_type == "table" && o.identity == table);
        if let Some(lock) = lock_on(report, &table).filter(|_| !table_dropped) {
            changes.push(format!("drops trigger {} ({lock}): writes to {table} no longer fire it", dropped.identity));
        }
    }
    if let Some((verb, trigger, _)) = toggled(&report.sql) {
        // The table as the catalog names it: the one ALTER TABLE locked.
        let table = report.schema_changes.iter().find(|c| c.object_type == "table").map(|c| c.identity.clone());
        if let Some((table, lock)) = table.and_then(|t| lock_on(report, &t).map(|l| (t, l))) {
            let after = if verb == "enables" { "fire again" } else { "no longer fire" };
            changes.push(format!("{verb} trigger {trigger} on {table} ({lock}): writes to {table} {after}"));
        }
    }
    (!changes.is_empty()).then(|| changes.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::test_support::measured;
    use crate::report::{DroppedObject, HeldSince, LockTaken, SchemaChange};

    fn lock(mode: &str) -> LockTaken {
        LockTaken {
            table: "public.orders".into(),
            kind: "table".into(),
            mode: mode.into(),
            blocks_reads: false,
            blocks_writes: true,
            blocks: vec!["INSERT".into()],
            rows: Some(4),
            production: None,
        }
    }

    #[test]
    fn a_created_trigger_on_an_existing_table_is_found_with_its_lock() {
        let (mut report, _) = measured("CREATE TRIGGER audit AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION f()");
        report.schema_changes = vec![SchemaChange {
            command: "CREATE TRIGGER".into(),
            object_type: "trigger".into(),
            identity: "audit on public.orders".into(),
        }];
        assert_eq!(check(&report), None, "no lock on an existing table: the table is new");
        report.locks = vec![lock("ShareRowExclusiveLock")];
        assert_eq!(
            check(&report).as_deref(),
            Some("creates trigger audit on public.orders (ShareRowExclusiveLock on public.orders (4 rows)): writes to public.orders fire it from now on")
        );
        assert!(text_shows(&report.sql));
    }

    #[test]
    fn dropped_and_disabled_triggers_are_found() {
        let (mut report, _) = measured("DROP TRIGGER old ON orders");
        report.dropped_objects = vec![DroppedObject {
            object_type: "trigger".into(),
            identity: "old on public.orders".into(),
            cascaded: false,
            rows: None,
            rows_known: true,
            estimated: None,
            values: None,
        }];
        report.locks = vec![lock("AccessExclusiveLock")];
        assert!(
            check(&report).is_some_and(|m| m.starts_with("drops trigger old on public.orders (AccessExclusiveLock"))
        );

        let (mut report, _) = measured("ALTER TABLE orders DISABLE TRIGGER audit");
        report.schema_changes = vec![SchemaChange {
            command: "ALTER TABLE".into(),
            object_type: "table".into(),
            identity: "public.orders".into(),
        }];
        report.locks_held = vec![HeldSince {
            table: "public.orders".into(),
            mode: "AccessExclusiveLock".into(),
            blocks_reads: true,
            since: 1,
        }];
        assert_eq!(
            check(&report).as_deref(),
            Some("disables trigger audit on public.orders (AccessExclusiveLock on public.orders, held since statement 1): writes to public.orders no longer fire")
        );
        assert_eq!(toggled("ALTER TABLE orders ENABLE ALWAYS TRIGGER ALL").map(|t| t.0), Some("enables"));
        assert_eq!(toggled("ALTER TABLE orders ADD COLUMN trigger int"), None);
    }
}
