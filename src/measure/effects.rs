//! Turning two snapshots of the tables (before and after a statement) into per-table effects, and the event
//! trigger's log into the list of dropped objects. Pure logic: the executor fetches, this module computes.
//!
//! Row counts are tracked, not re-counted: the executor counts every table once at the start of the plan, then
//! each statement's counter deltas (`pg_stat_get_xact_tuples_*`, which include rows that foreign-key actions and
//! triggers changed) keep the counts current. A table whose storage was replaced (TRUNCATE, or a rewrite such as
//! `ALTER COLUMN ... TYPE`) or shrank (a TRUNCATE of storage created earlier in the transaction happens in place),
//! whose counters went backwards (TRUNCATE resets them), or that is new, is counted exactly again; comparing that
//! count with the tracked one tells a truncation from a rewrite.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::report::{DroppedObject, RewrittenTable, TableEffect};

/// A table's oid.
pub(crate) type Oid = u32;

/// One table at one moment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct TableState {
    pub(crate) name: String,
    pub(crate) relfilenode: Oid,
    /// Size of the main fork in bytes.
    pub(crate) size: i64,
    pub(crate) inserted: i64,
    pub(crate) updated: i64,
    pub(crate) deleted: i64,
}

/// Every table at one moment, by oid.
pub(crate) type Snapshot = BTreeMap<Oid, TableState>;

/// The tables that must be counted exactly after a statement: new ones, and ones whose storage changed or shrank or
/// whose counters went backwards.
pub(crate) fn needs_recount(before: &Snapshot, after: &Snapshot) -> Vec<Oid> {
    after
        .iter()
        .filter(|(oid, now)| match before.get(oid) {
            None => true,
            Some(then) => {
                then.relfilenode != now.relfilenode
                    || now.size < then.size
                    || now.inserted < then.inserted
                    || now.updated < then.updated
                    || now.deleted < then.deleted
            }
        })
        .map(|(oid, _)| *oid)
        .collect()
}

/// What one statement did to the tables.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct TableChanges {
    /// Tables whose rows changed, sorted by name.
    pub(crate) effects: Vec<TableEffect>,
    /// Tables that no longer exist, with the rows they held before the statement.
    pub(crate) dropped_rows: HashMap<Oid, u64>,
    /// Tables whose storage was rewritten with every row kept, sorted by name.
    pub(crate) rewritten: Vec<RewrittenTable>,
}

/// Compares two snapshots. `known` holds the row count of every table before the statement and is updated to after
/// it; `recounted` holds exact counts for the tables [`needs_recount`] named; `direct` the tables the statement names.
pub(crate) fn compare(
    before: &Snapshot,
    after: &Snapshot,
    known: &mut HashMap<Oid, i64>,
    recounted: &HashMap<Oid, i64>,
    direct: &HashSet<Oid>,
) -> TableChanges {
    let mut changes = TableChanges::default();
    for oid in before.keys().filter(|oid| !after.contains_key(oid)) {
        let rows = known.remove(oid).unwrap_or(0);
        changes.dropped_rows.insert(*oid, rows.max(0) as u64);
    }
    for (oid, now) in after {
        let was = known.get(oid).copied().unwrap_or(0);
        let (effect, rows_now) = match (before.get(oid), recounted.get(oid)) {
            // A new table: its counters started at zero with it.
            (None, count) => (counts(now.inserted, now.updated, now.deleted, 0), count.copied().unwrap_or(0)),
            (Some(then), None) => {
                let effect =
                    counts(now.inserted - then.inserted, now.updated - then.updated, now.deleted - then.deleted, 0);
                let rows = was + now.inserted - then.inserted - (now.deleted - then.deleted);
                (effect, rows)
            }
            (Some(then), Some(&count)) => {
                let reset = now.inserted < then.inserted || now.updated < then.updated || now.deleted < then.deleted;
                if reset {
                    // TRUNCATE reset the counters: what they show now happened after it.
                    (counts(now.inserted, now.updated, now.deleted, was), count)
                } else {
                    let (ins, upd, del) =
                        (now.inserted - then.inserted, now.updated - then.updated, now.deleted - then.deleted);
                    // Storage replaced or shrunk with the rows all there: a rewrite. Otherwise the old rows went: a
                    // truncation.
                    let kept = count == was + ins - del;
                    if kept && then.relfilenode != now.relfilenode {
                        changes.rewritten.push(RewrittenTable {
                            table: now.name.clone(),
                            rows: Some(count.max(0) as u64),
                            size_bytes: Some(then.size.max(0) as u64),
                            production: None,
                            estimated_duration: None,
                        });
                    }
                    (counts(ins, upd, del, if kept { 0 } else { was }), count)
                }
            }
        };
        known.insert(*oid, rows_now);
        if effect != (0, 0, 0, 0) {
            let direct = direct.contains(oid) || !before.contains_key(oid);
            changes.effects.push(TableEffect { direct, ..TableEffect::measured(now.name.clone(), effect) });
        }
    }
    changes.effects.sort_by(|a, b| a.table.cmp(&b.table));
    changes.rewritten.sort_by(|a, b| a.table.cmp(&b.table));
    changes
}

/// An UPDATE that changes a row's partition key moves the row: Postgres deletes it from its partition and inserts it
/// into the new one, and the counters say so. Among the partitions of the partitioned tables the statement names
/// (`partitions`), as many deletions as insertions are such moves, as far as the UPDATE's own count (`updated`, its
/// command tag's, which counts a moved row as updated) leaves room for them beside the rows updated in place; they
/// count as updates of the partitions the rows left, not as rows deleted (destroyed) and inserted. A partition that
/// only received moved rows has no effect left. Returns the rows moved.
pub(crate) fn moves_as_updates(effects: &mut Vec<TableEffect>, partitions: &HashSet<String>, updated: u64) -> u64 {
    let moving = |e: &TableEffect| e.direct && partitions.contains(&e.table);
    let deleted: u64 = effects.iter().filter(|e| moving(e)).filter_map(|e| e.deleted).sum();
    let inserted: u64 = effects.iter().filter(|e| moving(e)).map(|e| e.inserted).sum();
    let in_place: u64 = effects.iter().filter(|e| e.direct).filter_map(|e| e.updated).sum();
    let moved = deleted.min(inserted).min(updated.saturating_sub(in_place));
    let (mut left, mut arrived) = (moved, moved);
    for effect in effects.iter_mut().filter(|e| moving(e)) {
        if let (Some(deleted), Some(updated)) = (effect.deleted, effect.updated) {
            let out = deleted.min(left);
            left -= out;
            (effect.deleted, effect.updated) = (Some(deleted - out), Some(updated + out));
        }
        let into = effect.inserted.min(arrived);
        arrived -= into;
        effect.inserted -= into;
    }
    effects.retain(|e| (e.inserted, e.updated, e.deleted, e.truncated) != (0, Some(0), Some(0), Some(0)));
    moved
}

fn counts(inserted: i64, updated: i64, deleted: i64, truncated: i64) -> (u64, u64, u64, u64) {
    let n = |v: i64| v.max(0) as u64;
    (n(inserted), n(updated), n(deleted), n(truncated))
}

/// What a held lock mode makes wait in production: (plain reads, writes). Only ACCESS EXCLUSIVE stops reads; the
/// SHARE-and-stronger modes stop INSERT/UPDATE/DELETE (they conflict with ROW EXCLUSIVE).
pub(crate) fn blocks(mode: &str) -> (bool, bool) {
    match mode {
        "AccessExclusiveLock" => (true, true),
        "ExclusiveLock" | "ShareRowExclusiveLock" | "ShareLock" => (false, true),
        _ => (false, false),
    }
}

/// The kinds of query a lock in `mode` makes wait in production, from Postgres's lock conflict table: plain
/// `SELECT` takes ACCESS SHARE, `SELECT ... FOR UPDATE/NO KEY UPDATE/SHARE/KEY SHARE` ROW SHARE, and
/// `UPDATE`/`DELETE`/`INSERT`/`MERGE` ROW EXCLUSIVE.
pub(crate) fn blocked_queries(mode: &str) -> Vec<String> {
    let (select, locking, writes) = match mode {
        "AccessExclusiveLock" => (true, true, true),
        "ExclusiveLock" => (false, true, true),
        "ShareRowExclusiveLock" | "ShareLock" => (false, false, true),
        _ => (false, false, false),
    };
    let mut blocked = Vec::new();
    if select {
        blocked.push("SELECT");
    }
    if locking {
        blocked.extend(["SELECT FOR UPDATE", "SELECT FOR NO KEY UPDATE", "SELECT FOR SHARE", "SELECT FOR KEY SHARE"]);
    }
    if writes {
        blocked.extend(["INSERT", "UPDATE", "DELETE", "MERGE"]);
    }
    blocked.into_iter().map(str::to_owned).collect()
}

/// One row of the event trigger's log.
#[derive(Debug, Clone)]
pub(crate) struct DroppedRow {
    pub(crate) is_relation: bool,
    pub(crate) objid: Oid,
    pub(crate) original: bool,
    pub(crate) normal: bool,
    pub(crate) object_type: String,
    pub(crate) schema_name: Option<String>,
    pub(crate) identity: String,
}

/// The dropped objects to report, with the rows of dropped tables. Implementation details of another dropped
/// object are left out: TOAST storage, a relation's row and array types, a view's `_RETURN` rule, column defaults,
/// and the internal triggers that implement foreign keys.
/// `column_values` holds the non-null values of the columns of tables the statement altered, by identity.
/// `unknown` holds the tables of unknown size: their rows, and their columns' values, are reported unknown.
pub(crate) fn dropped_objects(
    rows: &[DroppedRow],
    dropped_rows: &HashMap<Oid, u64>,
    column_values: &HashMap<String, u64>,
    unknown: &HashSet<Oid>,
) -> Vec<DroppedObject> {
    let mut objects: Vec<(bool, DroppedObject)> = rows
        .iter()
        .filter(|r| !is_implementation_detail(r))
        .map(|r| {
            // A column's objid is its table's.
            let rows_known = !(r.is_relation
                && matches!(r.object_type.as_str(), "table" | "table column")
                && unknown.contains(&r.objid));
            let rows = (r.is_relation && r.object_type == "table" && rows_known)
                .then(|| dropped_rows.get(&r.objid).copied())
                .flatten();
            let values = (r.object_type == "table column" && rows_known)
                .then(|| column_values.get(&r.identity).copied())
                .flatten();
            let object = DroppedObject {
                object_type: r.object_type.clone(),
                identity: r.identity.clone(),
                cascaded: !r.original && r.normal,
                rows,
                values,
                rows_known,
                estimated: None,
            };
            (r.original, object)
        })
        .collect();
    // Named objects first, then what went with them, then what only CASCADE took.
    objects.sort_by(|(a_named, a), (b_named, b)| {
        (a.cascaded, !a_named, &a.object_type, &a.identity).cmp(&(b.cascaded, !b_named, &b.object_type, &b.identity))
    });
    objects.into_iter().map(|(_, o)| o).collect()
}

/// Which count of a table a statement's action on it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    Updated,
    Deleted,
    Truncated,
}

/// Marks what a statement did to tables of unknown size: each `(table, count, direct)` gets that count unknown in
/// its effect (an effect is added for a table the shadow saw no change in), and `rows_known` false.
pub(crate) fn mark_unknown(effects: &mut Vec<TableEffect>, reached: &[(String, Count, bool)]) {
    for (table, count, direct) in reached {
        let at = match effects.iter().position(|e| &e.table == table) {
            Some(at) => at,
            None => {
                effects.push(TableEffect { direct: *direct, ..TableEffect::measured(table.clone(), (0, 0, 0, 0)) });
                effects.len() - 1
            }
        };
        let effect = &mut effects[at];
        effect.rows_known = false;
        match count {
            Count::Updated => effect.updated = None,
            Count::Deleted => effect.deleted = None,
            Count::Truncated => effect.truncated = None,
        }
    }
    effects.sort_by(|a, b| a.table.cmp(&b.table));
}

fn is_implementation_detail(r: &DroppedRow) -> bool {
    if r.original {
        return false;
    }
    r.schema_name.as_deref() == Some("pg_toast")
        || r.object_type == "type"
        || r.object_type == "default value"
        || (r.object_type == "rule"
            && (r.identity.starts_with("\"_RETURN\" on ") || r.identity.starts_with("_RETURN on ")))
        || (r.object_type == "trigger" && r.identity.starts_with("\"RI_ConstraintTrigger_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(name: &str, relfilenode: Oid, counters: (i64, i64, i64)) -> TableState {
        let (inserted, updated, deleted) = counters;
        TableState { name: name.to_owned(), relfilenode, size: 8192, inserted, updated, deleted }
    }

    fn effect(table: &str, c: (u64, u64, u64, u64), direct: bool) -> TableEffect {
        TableEffect { direct, ..TableEffect::measured(table, c) }
    }

    #[test]
    fn counter_deltas_become_effects_and_keep_counts_current() {
        let before = Snapshot::from([(1, state("public.a", 10, (0, 0, 0))), (2, state("public.b", 20, (5, 0, 0)))]);
        let after = Snapshot::from([(1, state("public.a", 10, (0, 0, 3))), (2, state("public.b", 20, (5, 2, 0)))]);
        let mut known = HashMap::from([(1, 10), (2, 7)]);
        assert!(needs_recount(&before, &after).is_empty());
        let changes = compare(&before, &after, &mut known, &HashMap::new(), &HashSet::from([1]));
        assert_eq!(changes.effects, [effect("public.a", (0, 0, 3, 0), true), effect("public.b", (0, 2, 0, 0), false)]);
        assert_eq!(known, HashMap::from([(1, 7), (2, 7)]));
    }

    #[test]
    fn new_storage_with_fewer_rows_is_a_truncation_and_with_all_rows_a_rewrite() {
        let before = Snapshot::from([(1, state("public.t", 10, (0, 0, 0))), (2, state("public.r", 20, (0, 0, 0)))]);
        let after = Snapshot::from([(1, state("public.t", 11, (0, 0, 0))), (2, state("public.r", 21, (0, 0, 0)))]);
        assert_eq!(needs_recount(&before, &after), [1, 2]);
        let mut known = HashMap::from([(1, 42), (2, 9)]);
        let recounted = HashMap::from([(1, 0), (2, 9)]);
        let changes = compare(&before, &after, &mut known, &recounted, &HashSet::from([1]));
        assert_eq!(changes.effects, [effect("public.t", (0, 0, 0, 42), true)]);
        assert_eq!(
            changes.rewritten,
            [RewrittenTable {
                table: "public.r".into(),
                rows: Some(9),
                size_bytes: Some(8192),
                production: None,
                estimated_duration: None
            }]
        );
        assert_eq!(known, HashMap::from([(1, 0), (2, 9)]));
    }

    #[test]
    fn storage_that_shrank_in_place_is_counted_again() {
        let before = Snapshot::from([(1, state("public.t", 10, (0, 0, 0)))]);
        let mut after = before.clone();
        after.get_mut(&1).expect("t").size = 0;
        assert_eq!(needs_recount(&before, &after), [1]);
        let mut known = HashMap::from([(1, 40)]);
        let changes = compare(&before, &after, &mut known, &HashMap::from([(1, 0)]), &HashSet::from([1]));
        assert_eq!(changes.effects, [effect("public.t", (0, 0, 0, 40), true)]);
    }

    #[test]
    fn counters_going_backwards_mean_a_truncation_then_fresh_activity() {
        let before = Snapshot::from([(1, state("public.t", 10, (8, 0, 0)))]);
        let after = Snapshot::from([(1, state("public.t", 10, (2, 0, 0)))]);
        assert_eq!(needs_recount(&before, &after), [1]);
        let mut known = HashMap::from([(1, 8)]);
        let changes = compare(&before, &after, &mut known, &HashMap::from([(1, 2)]), &HashSet::new());
        assert_eq!(changes.effects, [effect("public.t", (2, 0, 0, 8), false)]);
        assert_eq!(known[&1], 2);
    }

    #[test]
    fn a_vanished_table_reports_the_rows_it_held_and_a_new_one_is_direct() {
        let before = Snapshot::from([(1, state("public.gone", 10, (0, 0, 0)))]);
        let after = Snapshot::from([(2, state("public.copy", 30, (4, 0, 0)))]);
        let mut known = HashMap::from([(1, 5)]);
        let changes = compare(&before, &after, &mut known, &HashMap::from([(2, 4)]), &HashSet::new());
        assert_eq!(changes.dropped_rows, HashMap::from([(1, 5)]));
        assert_eq!(changes.effects, [effect("public.copy", (4, 0, 0, 0), true)]);
        assert_eq!(known, HashMap::from([(2, 4)]));
    }

    fn row(object_type: &str, identity: &str, original: bool, normal: bool) -> DroppedRow {
        DroppedRow {
            is_relation: matches!(object_type, "table" | "view" | "index" | "sequence"),
            objid: if identity == "public.users" { 1 } else { 99 },
            original,
            normal,
            object_type: object_type.to_owned(),
            schema_name: Some(if object_type == "toast table" { "pg_toast" } else { "public" }.to_owned()),
            identity: identity.to_owned(),
        }
    }

    #[test]
    fn dropped_objects_hide_implementation_details_and_flag_cascades() {
        let rows = [
            row("table", "public.users", true, false),
            row("type", "public.users", false, false),
            row("type", "public.users[]", false, false),
            row("toast table", "pg_toast.pg_toast_1", false, false),
            row("index", "public.users_pkey", false, false),
            row("default value", "for public.users.id", false, false),
            row("view", "public.active_users", false, true),
            row("rule", "\"_RETURN\" on public.active_users", false, true),
            row("table constraint", "orders_user_id_fkey on public.orders", false, true),
            row("trigger", "\"RI_ConstraintTrigger_c_16406\" on public.orders", false, false),
        ];
        let objects = dropped_objects(&rows, &HashMap::from([(1, 12)]), &HashMap::new(), &HashSet::new());
        let got: Vec<_> =
            objects.iter().map(|o| (o.object_type.as_str(), o.identity.as_str(), o.cascaded, o.rows)).collect();
        assert_eq!(
            got,
            [
                ("table", "public.users", false, Some(12)),
                ("index", "public.users_pkey", false, None),
                ("table constraint", "orders_user_id_fkey on public.orders", true, None),
                ("view", "public.active_users", true, None),
            ]
        );
    }

    #[test]
    fn rows_an_update_moved_to_another_partition_are_updates_not_deletions() {
        let partitions: HashSet<String> = ["p1", "p2", "p3"].map(String::from).into();
        // 5 rows left p1 (3 of them for p2, 2 for p3), 1 row was updated in place in p1 (the UPDATE says 6); a trigger
        // deleted 4 rows of the audit table, which the statement does not name.
        let mut effects = vec![
            effect("p1", (0, 1, 5, 0), true),
            effect("p2", (3, 0, 0, 0), true),
            effect("p3", (2, 0, 0, 0), true),
            effect("audit", (0, 0, 4, 0), false),
        ];
        assert_eq!(moves_as_updates(&mut effects, &partitions, 6), 5);
        assert_eq!(effects, vec![effect("p1", (0, 6, 0, 0), true), effect("audit", (0, 0, 4, 0), false)]);
        // A table that is no partition: a trigger deleting and inserting rows of the table it fired on moves none.
        let mut effects = vec![effect("jobs", (40, 40, 40, 0), true)];
        assert_eq!(moves_as_updates(&mut effects, &HashSet::new(), 40), 0);
        assert_eq!(effects, vec![effect("jobs", (40, 40, 40, 0), true)]);
        // In a partition too, no more moves than the UPDATE's count leaves beside its updates in place.
        let mut effects = vec![effect("p1", (2, 3, 2, 0), true)];
        assert_eq!(moves_as_updates(&mut effects, &partitions, 3), 0);
        assert_eq!(effects, vec![effect("p1", (2, 3, 2, 0), true)]);
    }

    #[test]
    fn tables_of_unknown_size_have_unknown_counts_never_zero() {
        let rows = [row("table", "public.users", true, false), row("index", "public.users_pkey", false, false)];
        let objects = dropped_objects(&rows, &HashMap::from([(1, 0)]), &HashMap::new(), &HashSet::from([1]));
        assert_eq!((objects[0].rows, objects[0].rows_known), (None, false));
        assert_eq!((objects[1].rows, objects[1].rows_known), (None, true));

        let mut effects = vec![effect("public.b", (1, 0, 0, 0), true)];
        mark_unknown(
            &mut effects,
            &[("public.b".into(), Count::Deleted, true), ("public.a".into(), Count::Updated, false)],
        );
        let got: Vec<_> =
            effects.iter().map(|e| (e.table.as_str(), e.inserted, e.updated, e.deleted, e.rows_known)).collect();
        assert_eq!(got, [("public.a", 0, None, Some(0), false), ("public.b", 1, Some(0), None, false)]);
        assert!(!effects[0].direct && effects[1].direct);
    }
}
