//! Reading the shadow's state from the plan's own connection: tables and their counters, locks, columns and
//! constraints, functions called, the event triggers' logs. Every query is one of [`queries`]; nothing here decides
//! anything, [`super::effects`] and [`super::catalog`] compare what is read.

use std::collections::{HashMap, HashSet};

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;

use super::effects::{self, DroppedRow, Oid, Snapshot, TableState};
use super::{catalog, queries, quote_name, Decimal, Run};
use crate::error::{Error, Result};
use crate::plan::PlanStatement;
use crate::report::{
    FunctionCalled, HeldSince, LockTaken, RuleFired, SchemaChange, Settings, StatementReport, TableEffect,
};

/// Languages whose functions keep nothing in a session that outlives its transaction and a reset as `DISCARD ALL`'s
/// (PL/Perl's `%_SHARED`, PL/Python's `GD`, a C function's connections, as dblink's, do).
const STATELESS_LANGUAGES: [&str; 2] = ["sql", "plpgsql"];

/// A query parameter with its type.
pub(super) type Param<'a> = (&'a (dyn ToSql + Sync), Type);

/// What is read right after a statement, in one round trip ([`Run::read_after`]).
pub(super) struct After {
    /// The transaction's start time: if it changed, the plan ended the dry-run's transaction.
    pub(super) transaction_start: String,
    pub(super) tables: Snapshot,
    pub(super) locks: Vec<Row>,
    pub(super) dropped: Vec<Row>,
    pub(super) changed: Vec<Row>,
    pub(super) calls: Vec<Row>,
    /// Columns, constraints and rules, when read.
    pub(super) catalog: Option<CatalogRows>,
}

/// The foreign keys as the plan leaves them ([`Run::keys_at_end`]): the unindexed ones
/// ([`queries::UNINDEXED_FOREIGN_KEYS`]), and the column types of those the plan added
/// ([`queries::FOREIGN_KEY_COLUMN_TYPES`]).
pub(super) struct KeysAtEnd {
    unindexed: Vec<Row>,
    column_types: Vec<Row>,
}

/// The rows of the catalog reads: columns, constraints, rules.
pub(super) type CatalogRows = (Vec<Row>, Vec<Row>, Vec<Row>);

/// A rule: relation, `name on relation`, event (`2` update, `3` insert, `4` delete) and whether it is INSTEAD.
pub(super) type Rule = (Oid, String, char, bool);

impl Run<'_> {
    /// One measuring query, sent with its parameters' types: one round trip, as an unnamed statement, so nothing is
    /// left prepared on the server that a plan's `PREPARE` or `DEALLOCATE` could collide with. Queries awaited
    /// together (`try_join!`) go out in one pipeline and come back in one round trip.
    pub(super) async fn rows(&self, sql: &str, params: &[Param<'_>], context: &'static str) -> Result<Vec<Row>> {
        self.session.client().query_typed(sql, params).await.map_err(|e| Error::pg(context, e))
    }

    /// Everything read after a statement, in one round trip; the catalog (columns, constraints, rules) only when
    /// `with_catalog`.
    pub(super) async fn read_after(&self, with_catalog: bool) -> Result<After> {
        let catalog = async {
            match with_catalog {
                true => self.read_catalog().await.map(Some),
                false => Ok(None),
            }
        };
        let dropped_since: [Param; 1] = [(&self.dropped_seq, Type::INT8)];
        let changed_since: [Param; 1] = [(&self.changed_seq, Type::INT8)];
        let (start, tables, locks, dropped, changed, calls, catalog) = tokio::try_join!(
            self.rows(queries::TRANSACTION_START, &[], "checking the dry-run transaction"),
            self.snapshot(),
            self.rows(queries::RELATION_LOCKS, &[], "reading the locks held"),
            self.rows(queries::DROPPED_SINCE, &dropped_since, "reading the dropped objects"),
            self.rows(queries::CHANGED_SINCE, &changed_since, "reading the schema changes"),
            self.rows(queries::FUNCTION_CALLS, &[], "reading the functions called"),
            catalog,
        )?;
        let transaction_start = start.first().map(|r| r.get(0)).unwrap_or_default();
        Ok(After { transaction_start, tables, locks, dropped, changed, calls, catalog })
    }

    /// Columns, constraints and rules, in one round trip.
    pub(super) async fn read_catalog(&self) -> Result<CatalogRows> {
        let reading = "reading the columns and constraints";
        tokio::try_join!(
            self.rows(queries::COLUMN_STATE, &[], reading),
            self.rows(queries::CONSTRAINT_STATE, &[], reading),
            self.rows(queries::RULES, &[], "reading the rules"),
        )
    }

    /// The partitioned tables and materialized views (`rows` of [`queries::OTHER_TABLES`]), with the partitions
    /// that hold a partitioned table's rows ([`Run::other_tables`]).
    pub(super) fn other_tables(rows: &[Row]) -> HashMap<Oid, Option<Vec<Oid>>> {
        rows.iter().map(|r| (r.get::<_, Oid>(0), r.get::<_, bool>(2).then(|| r.get::<_, Vec<Oid>>(3)))).collect()
    }

    /// Every index of the tables that existed before the plan (`rows` of [`queries::INDEXES`]), and the tables of
    /// [`Run::other_tables`] (`others`): kind, name and table, by oid.
    pub(super) fn existing_relations(&self, rows: &[Row], others: &[Row]) -> HashMap<Oid, (String, String, Oid)> {
        let indexes = rows
            .iter()
            .map(|r| (r.get::<_, Oid>(0), r.get::<_, String>(1), r.get::<_, Oid>(2)))
            .filter(|(_, _, table)| self.is_existing_table(*table))
            .map(|(oid, name, table)| (oid, ("index".to_owned(), name, table)));
        let tables = others.iter().map(|r| (r.get::<_, Oid>(0), ("table".to_owned(), r.get(1), r.get(0))));
        indexes.chain(tables).collect()
    }

    /// Whether `oid` is a table that existed before the plan: one that holds rows, a partitioned table or a
    /// materialized view.
    pub(super) fn is_existing_table(&self, oid: Oid) -> bool {
        self.existing.contains(&oid) || self.other_tables.contains_key(&oid)
    }

    /// The rows of a table that existed before the plan as the plan has left them so far: a partitioned table's
    /// are its partitions'; `None` when some are unknown (a foreign table's are never counted), and for a
    /// materialized view.
    pub(super) fn rows_of(&self, table: Oid) -> Option<u64> {
        let counted = |oid: &Oid| self.known_rows.get(oid).filter(|_| !self.unknown.contains(oid)).map(|n| n.max(&0));
        match self.other_tables.get(&table) {
            Some(Some(leaves)) => leaves.iter().map(|leaf| counted(leaf).map(|&n| n as u64)).sum(),
            Some(None) => None,
            // A table that existed before the plan has a count; one the plan made has 0 before it.
            None => (!self.unknown.contains(&table)).then(|| counted(&table).map_or(0, |&n| n as u64)),
        }
    }

    /// The locks held now (`rows` of [`queries::RELATION_LOCKS`]) on tables that existed before the plan and on
    /// their indexes (ACCESS SHARE left out: measuring takes it too). Remembers each locked relation's kind, name and
    /// table.
    pub(super) fn locks_of(&mut self, rows: &[Row]) -> HashSet<(Oid, String)> {
        let mut held = HashSet::new();
        for r in rows {
            let (oid, mode, table): (Oid, String, Oid) = (r.get(0), r.get(1), r.get(2));
            // An index counts when its table existed before the plan and the index was there at the start too, and
            // only for locks that make queries wait (every write takes ROW EXCLUSIVE on every index).
            let blocking = effects::blocks(&mode) != (false, false);
            let existed =
                self.is_existing_table(oid) || (oid != table && blocking && self.relations.contains_key(&oid));
            if existed && mode != "AccessShareLock" {
                let name: Option<String> = r.get(4);
                let name = name.or_else(|| self.tables.get(&oid).map(|t| t.name.clone()));
                self.relations.entry(oid).or_insert_with(|| (r.get(3), name.unwrap_or_else(|| oid.to_string()), table));
                held.insert((oid, mode));
            }
        }
        held
    }

    /// The blocking locks held now, each with the statement that took it (`index` for new ones).
    pub(super) fn locks_held(&mut self, index: usize) -> Vec<HeldSince> {
        self.lock_since.retain(|lock, _| self.locks.contains(lock));
        let mut held: Vec<HeldSince> = self
            .locks
            .iter()
            // Tables only: an index's lock comes and goes with its table's.
            .filter(|(oid, _)| self.existing.contains(oid) || self.other_tables.contains_key(oid))
            .filter_map(|(oid, mode)| {
                let (blocks_reads, blocks_writes) = effects::blocks(mode);
                if !blocks_reads && !blocks_writes {
                    return None;
                }
                let since = *self.lock_since.entry((*oid, mode.clone())).or_insert(index);
                // A table the plan dropped is gone from the snapshot, not from what was remembered of its lock.
                let table = self
                    .tables
                    .get(oid)
                    .map(|t| t.name.clone())
                    .or_else(|| self.relations.get(oid).map(|(_, name, _)| name.clone()))
                    .unwrap_or_else(|| oid.to_string());
                Some(HeldSince { table, mode: mode.clone(), blocks_reads, since })
            })
            .collect();
        held.sort_by(|a, b| (a.since, &a.table, &a.mode).cmp(&(b.since, &b.table, &b.mode)));
        held
    }

    /// The locks taken since the last statement (`rows` of [`queries::RELATION_LOCKS`]), with the rows of their
    /// tables before this statement.
    pub(super) fn new_locks(&mut self, rows: &[Row]) -> Vec<LockTaken> {
        let held = self.locks_of(rows);
        let mut taken: Vec<LockTaken> = held
            .difference(&self.locks)
            .map(|(oid, mode)| {
                let (blocks_reads, blocks_writes) = effects::blocks(mode);
                let (kind, name, table) = self.relations.get(oid).cloned().unwrap_or_else(|| {
                    let name = self.tables.get(oid).map_or_else(|| oid.to_string(), |t| t.name.clone());
                    ("table".to_owned(), name, *oid)
                });
                LockTaken {
                    table: name,
                    kind,
                    mode: mode.clone(),
                    blocks_reads,
                    blocks_writes,
                    blocks: effects::blocked_queries(mode),
                    rows: self.rows_of(table),
                    production: None,
                }
            })
            .collect();
        taken.sort_by(|a, b| (&a.table, &a.mode).cmp(&(&b.table, &b.mode)));
        self.locks = held;
        taken
    }

    /// The settings the statement will run with.
    pub(super) async fn settings(&self) -> Result<Settings> {
        let rows = self.rows(queries::SETTINGS, &[], "reading the settings").await?;
        let row = one(&rows, "reading the settings")?;
        Ok(Settings { lock_timeout: row.get(0), statement_timeout: row.get(1) })
    }

    /// Non-null values per column of the given tables that existed before the plan.
    pub(super) async fn column_values(&self, tables: &HashSet<Oid>) -> Result<HashMap<String, u64>> {
        let mut values = HashMap::new();
        for oid in tables.iter().filter(|oid| self.existing.contains(oid)) {
            let rows = self.rows(queries::COLUMN_VALUES, &[(oid, Type::OID)], "counting column values").await?;
            values.extend(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1).max(0) as u64)));
        }
        Ok(values)
    }

    /// Values of the given tables' columns longer than the limits a statement retypes them to (`(column, limit)` as
    /// written), counted now. Each count runs in a savepoint: a role that may not read the table leaves it uncounted
    /// instead of aborting the dry-run.
    pub(super) async fn values_too_long(
        &self,
        tables: &HashSet<Oid>,
        limits: &[(String, u64)],
    ) -> Result<Vec<crate::report::ValuesTooLong>> {
        let mut found = Vec::new();
        let client = self.session.client();
        let savepoint = |e| Error::pg("counting values longer than a new limit", e);
        // A table of unknown size holds no values to count: none is reported, not 0.
        let counted = |oid: &Oid| tables.contains(oid) && self.existing.contains(oid) && !self.unknown.contains(oid);
        for (key, column) in self.columns.iter().filter(|(k, _)| counted(&k.0)) {
            let (Some((_, limit)), Some(table)) =
                (limits.iter().find(|(name, _)| *name == column.name), self.tables.get(&key.0))
            else {
                continue;
            };
            let sql = format!(
                "SELECT pg_catalog.count(*) FROM {} \
                 WHERE pg_catalog.char_length({}::pg_catalog.text) OPERATOR(pg_catalog.>) {limit}",
                table.name,
                crate::text::quote_ident(&column.name)
            );
            client.batch_execute("SAVEPOINT pgshadow_count").await.map_err(savepoint)?;
            // Unnamed, as every measuring query on the plan's session ([`Run::rows`]).
            match client.query_typed(&sql, &[]).await.map(|rows| rows.first().map(|row| row.get::<_, i64>(0))) {
                Ok(Some(count)) => {
                    client.batch_execute("RELEASE SAVEPOINT pgshadow_count").await.map_err(savepoint)?;
                    let values = count.max(0) as u64;
                    found.push(crate::report::ValuesTooLong { column: column.identity.clone(), limit: *limit, values });
                }
                Ok(None) | Err(_) => {
                    let undo = "ROLLBACK TO SAVEPOINT pgshadow_count; RELEASE SAVEPOINT pgshadow_count";
                    client.batch_execute(undo).await.map_err(savepoint)?;
                }
            }
        }
        Ok(found)
    }

    /// The fingerprint of every column of the given tables that existed before the plan, by (table, attnum).
    pub(super) async fn fingerprints(&self, tables: &HashSet<Oid>) -> Result<HashMap<(Oid, i16), Option<Decimal>>> {
        let mut prints = HashMap::new();
        // A table of unknown size: whether its values change is unknown (`values_changed` stays `null`), not `false`.
        let printed = |oid: &Oid| tables.contains(oid) && self.existing.contains(oid) && !self.unknown.contains(oid);
        for (key, column) in self.columns.iter().filter(|(k, _)| printed(&k.0)) {
            let none: Option<String> = None;
            let params: [Param; 3] = [(&key.0, Type::OID), (&column.name, Type::TEXT), (&none, Type::TEXT)];
            let rows = self.rows(queries::COLUMN_FINGERPRINT, &params, "fingerprinting column values").await?;
            prints.insert(*key, rows.first().and_then(|r| r.get::<_, Option<Decimal>>(0)));
        }
        Ok(prints)
    }

    /// For each retyped column, whether the conversion changed any value.
    pub(super) async fn values_changed(
        &self,
        report: &mut StatementReport,
        before: &HashMap<(Oid, i16), Option<Decimal>>,
    ) -> Result<()> {
        for change in report.column_changes.iter_mut().filter(|c| c.change == "type changed") {
            let Some((key, column)) = self.columns.iter().find(|(_, c)| c.identity == change.column) else { continue };
            let Some(Some(then)) = before.get(key) else { continue };
            let params: [Param; 3] = [(&key.0, Type::OID), (&column.name, Type::TEXT), (&change.from, Type::TEXT)];
            let rows = self.rows(queries::COLUMN_FINGERPRINT, &params, "fingerprinting column values").await?;
            change.values_changed = rows.first().and_then(|r| r.get::<_, Option<Decimal>>(0)).map(|now| &now != then);
        }
        Ok(())
    }

    /// A DO block or a procedure deletes through code its statement's text does not show: marks each table it deleted
    /// from as its own effect ([`TableEffect::direct`]), unless an `ON DELETE CASCADE` foreign key reaches it from
    /// another of them (a trigger's deletions look like the code's own here, and so do a self-referencing table's
    /// cascades within it).
    pub(super) async fn code_deletes_direct(&self, effects: &mut [TableEffect]) -> Result<()> {
        let oid_of = |name: &str| self.tables.iter().find(|(_, t)| t.name == name).map(|(oid, _)| *oid);
        let deleted = |e: &TableEffect| !e.direct && e.deleted.unwrap_or(0) > 0;
        let roots: Vec<Oid> = effects.iter().filter(|e| deleted(e)).filter_map(|e| oid_of(&e.table)).collect();
        if roots.is_empty() {
            return Ok(());
        }
        let rows =
            self.rows(queries::CASCADE_PATHS, &[(&roots, Type::OID_ARRAY)], "reading the foreign-key paths").await?;
        // Reached from another table: a table's foreign key to itself leaves the code's own deletions its own.
        let from_another = |r: &&Row| r.get::<_, Vec<Oid>>(3).first() != Some(&r.get::<_, Oid>(0));
        let cascaded: HashSet<Oid> = rows
            .iter()
            .filter(|r| r.get::<_, String>(1) == "c")
            .filter(from_another)
            .map(|r| r.get::<_, Oid>(0))
            .collect();
        for effect in effects.iter_mut().filter(|e| deleted(e)) {
            effect.direct = oid_of(&effect.table).is_some_and(|oid| !cascaded.contains(&oid));
        }
        Ok(())
    }

    /// Reads the foreign keys as the plan leaves them, in one round trip: those with no supporting index, and the
    /// column types of those the plan added. Sent ahead of what ends the dry-run, in its round trip
    /// ([`super::run_plan_in`]).
    pub(super) async fn keys_at_end(&self) -> Result<KeysAtEnd> {
        let added: Vec<Oid> = self.created_by.keys().copied().collect();
        let column_types = async {
            match added.is_empty() {
                true => Ok(Vec::new()),
                false => {
                    let context = "reading the foreign keys' column types";
                    self.rows(queries::FOREIGN_KEY_COLUMN_TYPES, &[(&added, Type::OID_ARRAY)], context).await
                }
            }
        };
        let (unindexed, column_types) = tokio::try_join!(
            self.rows(queries::UNINDEXED_FOREIGN_KEYS, &[], "looking for foreign keys without an index"),
            column_types,
        )?;
        Ok(KeysAtEnd { unindexed, column_types })
    }

    /// Attributes the foreign keys the plan added that have no supporting index at its end, or whose integer column
    /// is narrower than the key it references, to their statements; and the statements that wrote to a table an
    /// existing unindexed foreign key references.
    pub(super) fn unbacked_foreign_keys(&self, keys: &KeysAtEnd, reports: &mut [StatementReport]) {
        let mut existing = Vec::new();
        for row in &keys.unindexed {
            let oid: Oid = row.get(0);
            let Some(constraint) = self.constraints.get(&oid) else { continue };
            match self.created_by.get(&oid) {
                Some(index) => {
                    if let Some(report) = reports.iter_mut().find(|r| r.index == *index) {
                        report.unbacked_foreign_keys.push(constraint.identity.clone());
                    }
                }
                None => existing.push(row),
            }
        }
        self.unindexed_references(&existing, reports);
        self.narrow_foreign_keys(&keys.column_types, reports);
    }

    /// Foreign keys the plan added whose integer column is narrower than the key it references (`rows` of
    /// [`queries::FOREIGN_KEY_COLUMN_TYPES`]).
    fn narrow_foreign_keys(&self, rows: &[Row], reports: &mut [StatementReport]) {
        let width = |t: &str| match t {
            "smallint" => 2,
            "integer" => 4,
            _ => 8,
        };
        for row in rows {
            let oid: Oid = row.get(0);
            let (column_type, referenced_type): (String, String) = (row.get(2), row.get(4));
            let (Some(index), Some(constraint)) = (self.created_by.get(&oid), self.constraints.get(&oid)) else {
                continue;
            };
            if width(&column_type) >= width(&referenced_type) {
                continue;
            }
            if let Some(report) = reports.iter_mut().find(|r| r.index == *index) {
                report.narrow_foreign_keys.push(crate::report::NarrowForeignKey {
                    foreign_key: constraint.identity.clone(),
                    column: row.get(1),
                    column_type,
                    referenced_column: row.get(3),
                    referenced_type,
                });
            }
        }
    }

    /// For each existing unindexed foreign key (`rows` of [`queries::UNINDEXED_FOREIGN_KEYS`]), the statements that
    /// deleted rows from or updated the table it references.
    fn unindexed_references(&self, keys: &[&Row], reports: &mut [StatementReport]) {
        for row in keys {
            let (oid, child): (Oid, Oid) = (row.get(0), row.get(2));
            let (referenced, columns): (String, Vec<String>) = (row.get(3), row.get(4));
            let (Some(constraint), Some(child_name)) =
                (self.constraints.get(&oid), self.tables.get(&child).map(|t| t.name.clone()))
            else {
                continue;
            };
            // The referencing table's rows just before each statement: its rows now, plus what this statement and
            // the later ones removed, minus what they added.
            let at_end = self.known_rows.get(&child).copied().unwrap_or(0);
            let change = |r: &StatementReport| -> i64 {
                let e = r.table_effects.iter().filter(|e| e.table == child_name);
                // An unknown count (a table the shadow has no rows for) adds nothing it could know.
                e.map(|e| (e.deleted.unwrap_or(0) + e.truncated.unwrap_or(0)) as i64 - e.inserted as i64).sum()
            };
            let changes: Vec<i64> = reports.iter().map(change).collect();
            for (i, report) in reports.iter_mut().enumerate() {
                let writes = report
                    .table_effects
                    .iter()
                    .any(|e| e.table == referenced && (e.deleted != Some(0) || e.updated != Some(0)));
                if writes {
                    report.unindexed_references.push(crate::report::UnindexedReference {
                        foreign_key: constraint.identity.clone(),
                        referenced_table: referenced.clone(),
                        referenced_columns: columns.clone(),
                        referencing_rows: (!self.unknown.contains(&child))
                            .then(|| (at_end + changes[i..].iter().sum::<i64>()).max(0) as u64),
                        referencing_production: None,
                    });
                }
            }
        }
    }

    /// Every user column and constraint (`rows` of [`Run::read_catalog`]); remembers the rules.
    pub(super) fn catalog(&mut self, rows: &CatalogRows) -> (catalog::Columns, catalog::Constraints) {
        let (columns, constraints, rules) = rows;
        self.rules = rules
            .iter()
            .filter_map(|r| {
                let event: String = r.get(2);
                Some((r.get(0), r.get(1), event.chars().next()?, r.get(3)))
            })
            .collect();
        let columns = columns
            .iter()
            .map(|r| {
                let column = catalog::Column {
                    identity: r.get(2),
                    name: r.get(6),
                    data_type: r.get(3),
                    not_null: r.get(4),
                    default: r.get(5),
                };
                ((r.get::<_, Oid>(0), r.get::<_, i16>(1)), column)
            })
            .collect();
        let constraints = constraints
            .iter()
            .map(|r| {
                let constraint = catalog::Constraint {
                    table: r.get(1),
                    identity: r.get(2),
                    kind: r.get(3),
                    validated: r.get(4),
                    inherited: r.get(5),
                };
                (r.get::<_, Oid>(0), constraint)
            })
            .collect();
        (columns, constraints)
    }

    /// The user functions called since the last statement (`rows` of [`queries::FUNCTION_CALLS`]).
    pub(super) fn functions_called(&mut self, rows: &[Row]) -> Vec<FunctionCalled> {
        let mut called = Vec::new();
        for r in rows {
            let (oid, calls): (Oid, i64) = (r.get(0), r.get(2));
            let before = self.calls.insert(oid, calls).unwrap_or(0);
            if calls > before {
                let language: Option<String> = r.get(4);
                if !language.as_deref().is_some_and(|l| STATELESS_LANGUAGES.contains(&l)) {
                    self.session_keeps_state = true;
                }
                called.push(FunctionCalled { function: r.get(1), calls: (calls - before) as u64, triggers: r.get(3) });
            }
        }
        called.sort_by(|a, b| a.function.cmp(&b.function));
        called
    }

    /// The rules on `written` (relations, each with the events it saw: `2` update, `3` insert, `4` delete) that
    /// those events fire, from the rules read with the catalog.
    pub(super) fn rules_fired(&self, written: &[(Oid, Vec<char>)]) -> Vec<RuleFired> {
        let mut fired: Vec<RuleFired> = self
            .rules
            .iter()
            .filter(|(relation, _, event, _)| {
                written.iter().any(|(oid, events)| oid == relation && events.contains(event))
            })
            .map(|(_, rule, event, instead)| RuleFired {
                rule: rule.clone(),
                event: match event {
                    '2' => "update",
                    '3' => "insert",
                    _ => "delete",
                }
                .to_owned(),
                instead: *instead,
            })
            .collect();
        fired.sort_by(|a, b| a.rule.cmp(&b.rule));
        fired
    }

    /// The schema changes since the last statement (`rows` of [`queries::CHANGED_SINCE`]).
    pub(super) fn schema_changes(&mut self, rows: &[Row]) -> Vec<SchemaChange> {
        rows.iter()
            .map(|r| {
                self.changed_seq = self.changed_seq.max(r.get(0));
                SchemaChange { command: r.get(1), object_type: r.get(2), identity: r.get(3) }
            })
            .collect()
    }

    pub(super) async fn snapshot(&self) -> Result<Snapshot> {
        let rows = self.rows(queries::TABLE_STATE, &[], "reading the tables' state").await?;
        Ok(rows
            .iter()
            .map(|r| {
                let state = TableState {
                    name: r.get(1),
                    relfilenode: r.get(2),
                    size: r.get(3),
                    inserted: r.get(4),
                    updated: r.get(5),
                    deleted: r.get(6),
                };
                (r.get::<_, Oid>(0), state)
            })
            .collect())
    }

    pub(super) async fn recount(&self, tables: impl IntoIterator<Item = Oid>) -> Result<HashMap<Oid, i64>> {
        let mut counts_out = HashMap::new();
        let oids: Vec<Oid> = tables.into_iter().collect();
        let params: Vec<[Param; 1]> = oids.iter().map(|oid| [(oid as &(dyn ToSql + Sync), Type::OID)]).collect();
        // One pipeline for every table: the counts come back in one round trip.
        let counts = futures_util::future::try_join_all(
            params.iter().map(|params| self.rows(queries::COUNT_ROWS, params, "counting rows")),
        )
        .await?;
        for (oid, rows) in oids.into_iter().zip(counts) {
            counts_out.insert(oid, one(&rows, "counting rows")?.get(0));
        }
        Ok(counts_out)
    }

    /// The objects dropped since the last statement (`rows` of [`queries::DROPPED_SINCE`]).
    pub(super) fn dropped(&mut self, rows: &[Row]) -> Vec<DroppedRow> {
        const PG_CLASS: Oid = 1259;
        rows.iter()
            .map(|r| {
                self.dropped_seq = self.dropped_seq.max(r.get(0));
                DroppedRow {
                    is_relation: r.get::<_, Oid>(1) == PG_CLASS,
                    objid: r.get(2),
                    original: r.get(3),
                    normal: r.get(4),
                    object_type: r.get(5),
                    schema_name: r.get(6),
                    identity: r.get(7),
                }
            })
            .collect()
    }

    /// The tables the statement names, with their partitions and children, resolved as the plan would resolve them.
    pub(super) async fn resolve_targets(&self, statement: &PlanStatement) -> Result<HashSet<Oid>> {
        let names: Vec<String> = statement.classification.targets.iter().map(|t| quote_name(t)).collect();
        if names.is_empty() {
            return Ok(HashSet::new());
        }
        let context = "resolving the statement's tables";
        let rows = self.rows(queries::RESOLVE_TABLES, &[(&names, Type::TEXT_ARRAY)], context).await?;
        Ok(rows.iter().map(|r| r.get::<_, Oid>(0)).collect())
    }
}

/// The one row a query that always returns one row returned.
pub(super) fn one<'r>(rows: &'r [Row], what: &str) -> Result<&'r Row> {
    rows.first()
        .ok_or_else(|| Error::io("<shadow>", std::io::Error::other(format!("{what}: the server returned no row"))))
}
