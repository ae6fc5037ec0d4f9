//! Column and constraint changes: two snapshots of the catalog (before and after a statement) compared. Pure logic:
//! the executor fetches, this module compares.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::effects::Oid;
use crate::report::{ColumnChange, ConstraintChange};

/// A column, as `pgshadow_internal.column_state()` returns it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Column {
    pub(crate) identity: String,
    /// The bare column name.
    pub(crate) name: String,
    pub(crate) data_type: String,
    pub(crate) not_null: bool,
    pub(crate) default: Option<String>,
}

/// Columns keyed by (table, attnum): a rename keeps its key.
pub(crate) type Columns = BTreeMap<(Oid, i16), Column>;

/// A constraint, as `pgshadow_internal.constraint_state()` returns it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Constraint {
    pub(crate) table: Oid,
    pub(crate) identity: String,
    pub(crate) kind: String,
    pub(crate) validated: bool,
    /// A copy PostgreSQL keeps of another constraint: a partition's of its parent's, or a foreign key's for each
    /// partition of the table it references. Its parent's change is the one reported.
    pub(crate) inherited: bool,
}

/// Constraints keyed by their oid.
pub(crate) type Constraints = BTreeMap<Oid, Constraint>;

/// A table's rows before the statement; `None` for a table of unknown size.
fn rows_of(rows: &HashMap<Oid, i64>, unknown: &HashSet<Oid>, table: Oid) -> Option<u64> {
    (!unknown.contains(&table)).then(|| rows.get(&table).copied().unwrap_or(0).max(0) as u64)
}

/// The changes to columns of tables that existed before the plan (a new table's columns are part of creating it).
/// `rows` gives each table's rows before the statement, `unknown` the tables of unknown size.
pub(crate) fn column_changes(
    before: &Columns,
    after: &Columns,
    existing: &HashSet<Oid>,
    rows: &HashMap<Oid, i64>,
    unknown: &HashSet<Oid>,
) -> Vec<ColumnChange> {
    let mut changes = Vec::new();
    let rows_of = |table: Oid| rows_of(rows, unknown, table);
    let mut push = |key: &(Oid, i16), column: &Column, change: &str, from: Option<String>, to: Option<String>| {
        changes.push(ColumnChange {
            column: column.identity.clone(),
            change: change.to_owned(),
            from,
            to,
            rows: rows_of(key.0),
            values_changed: None,
        });
    };
    for (key, then) in before.iter().filter(|(k, _)| existing.contains(&k.0)) {
        let Some(now) = after.get(key) else {
            if after.keys().any(|k| k.0 == key.0) {
                push(key, then, "dropped", Some(then.data_type.clone()), None);
            }
            continue;
        };
        if then.identity != now.identity {
            push(key, now, "renamed", Some(then.identity.clone()), Some(now.identity.clone()));
        }
        if then.data_type != now.data_type {
            push(key, now, "type changed", Some(then.data_type.clone()), Some(now.data_type.clone()));
        }
        if then.not_null != now.not_null {
            push(key, now, if now.not_null { "set not null" } else { "dropped not null" }, None, None);
        }
        if then.default != now.default {
            push(key, now, "default changed", then.default.clone(), now.default.clone());
        }
    }
    for (key, now) in after.iter().filter(|(k, _)| existing.contains(&k.0) && !before.contains_key(k)) {
        push(key, now, "added", None, Some(now.data_type.clone()));
    }
    changes
}

/// The changes to constraints of tables that existed before the plan (`existing`, partitioned tables among them; a new
/// table's constraints are part of creating it), with each table's rows before the statement (`rows_of`).
pub(crate) fn constraint_changes(
    before: &Constraints,
    after: &Constraints,
    existing: &HashSet<Oid>,
    rows_of: &dyn Fn(Oid) -> Option<u64>,
) -> Vec<ConstraintChange> {
    let change = |c: &Constraint, what: &str| ConstraintChange {
        constraint: c.identity.clone(),
        constraint_type: c.kind.clone(),
        change: what.to_owned(),
        rows: rows_of(c.table),
    };
    let mut changes = Vec::new();
    for (oid, now) in after.iter().filter(|(_, c)| existing.contains(&c.table) && !c.inherited) {
        match before.get(oid) {
            None if now.validated => changes.push(change(now, "added")),
            None => changes.push(change(now, "added not valid")),
            Some(then) if !then.validated && now.validated => changes.push(change(now, "validated")),
            Some(_) => {}
        }
    }
    let dropped =
        before.iter().filter(|(oid, c)| existing.contains(&c.table) && !c.inherited && !after.contains_key(oid));
    changes.extend(dropped.map(|(_, then)| change(then, "dropped")));
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(identity: &str, data_type: &str, not_null: bool, default: Option<&str>) -> Column {
        let name = identity.rsplit('.').next().unwrap_or(identity).to_owned();
        Column {
            identity: identity.into(),
            name,
            data_type: data_type.into(),
            not_null,
            default: default.map(Into::into),
        }
    }

    fn kinds(changes: &[ColumnChange]) -> Vec<(&str, &str)> {
        changes.iter().map(|c| (c.column.as_str(), c.change.as_str())).collect()
    }

    #[test]
    fn column_changes_of_existing_tables_are_named() {
        let before = Columns::from([
            ((1, 1), column("public.t.id", "integer", true, None)),
            ((1, 2), column("public.t.name", "text", false, None)),
            ((1, 3), column("public.t.legacy", "text", false, None)),
            ((1, 4), column("public.t.state", "text", false, Some("'new'::text"))),
        ]);
        let after = Columns::from([
            ((1, 1), column("public.t.id", "bigint", true, None)),
            ((1, 2), column("public.t.full_name", "text", true, None)),
            ((1, 4), column("public.t.state", "text", false, None)),
            ((1, 5), column("public.t.note", "text", false, None)),
            ((2, 1), column("public.new_table.id", "integer", false, None)),
        ]);
        let changes = column_changes(&before, &after, &HashSet::from([1]), &HashMap::from([(1, 9)]), &HashSet::new());
        assert_eq!(
            kinds(&changes),
            [
                ("public.t.id", "type changed"),
                ("public.t.full_name", "renamed"),
                ("public.t.full_name", "set not null"),
                ("public.t.legacy", "dropped"),
                ("public.t.state", "default changed"),
                ("public.t.note", "added"),
            ]
        );
        assert_eq!(
            (changes[0].from.as_deref(), changes[0].to.as_deref(), changes[0].rows),
            (Some("integer"), Some("bigint"), Some(9))
        );
    }

    #[test]
    fn a_dropped_table_is_not_a_list_of_dropped_columns() {
        let before = Columns::from([((1, 1), column("public.t.id", "integer", true, None))]);
        assert!(
            column_changes(&before, &Columns::new(), &HashSet::from([1]), &HashMap::new(), &HashSet::new()).is_empty()
        );
    }

    #[test]
    fn constraints_added_not_valid_validated_and_dropped() {
        let c = |table, identity: &str, kind: &str, validated| Constraint {
            table,
            identity: identity.into(),
            kind: kind.into(),
            validated,
            inherited: false,
        };
        let before = Constraints::from([
            (10, c(1, "a on public.t", "check", false)),
            (11, c(1, "b on public.t", "unique", true)),
        ]);
        let after = Constraints::from([
            (10, c(1, "a on public.t", "check", true)),
            (12, c(1, "fk on public.t", "foreign key", true)),
            (13, c(1, "later on public.t", "check", false)),
            (14, c(2, "pk on public.new", "primary key", true)),
        ]);
        let rows = |table| rows_of(&HashMap::from([(1, 3)]), &HashSet::new(), table);
        let changes = constraint_changes(&before, &after, &HashSet::from([1]), &rows);
        let got: Vec<_> = changes.iter().map(|c| (c.constraint.as_str(), c.change.as_str(), c.rows)).collect();
        assert_eq!(
            got,
            [
                ("a on public.t", "validated", Some(3)),
                ("fk on public.t", "added", Some(3)),
                ("later on public.t", "added not valid", Some(3)),
                ("b on public.t", "dropped", Some(3))
            ]
        );
        // A copy of a parent's constraint comes and goes with it, or with a partition detached: not reported.
        let copy = Constraint { inherited: true, ..c(1, "fk1 on public.t", "foreign key", true) };
        let with_copy = Constraints::from([(20, copy.clone())]);
        let none = |_| None;
        assert!(constraint_changes(&with_copy, &Constraints::new(), &HashSet::from([1]), &none).is_empty());
        assert!(constraint_changes(&Constraints::new(), &with_copy, &HashSet::from([1]), &none).is_empty());
        // A table of unknown size: its rows are unknown, not 0.
        let unknown = |table| rows_of(&HashMap::new(), &HashSet::from([1]), table);
        let changes = constraint_changes(&before, &after, &HashSet::from([1]), &unknown);
        assert!(changes.iter().all(|c| c.rows.is_none()), "{changes:?}");
    }
}
