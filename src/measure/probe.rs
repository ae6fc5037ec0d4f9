//! Reading the shadow's state from the plan's own connection: tables and their counters, locks, columns and
//! constraints, functions called, the event triggers' logs. Every query is one of [`queries`]; nothing here decides
//! anything, [`super::effects`] and [`super::catalog`] compare what is read.

use std::collections::{HashMap, HashSet};

use super::effects::{self, DroppedRow, Oid, Snapshot, TableState};
use super::{catalog, queries, quote_name, Decimal, Run};
use crate::error::{Error, Result};
use crate::plan::PlanStatement;
use crate::report::{FunctionCalled, HeldSince, LockTaken, RuleFired, SchemaChange, Settings, StatementReport};

impl Run<'_> {
    /// Locks held now on tables that existed before the plan, ACCESS SHARE left out.
    /// Every index of the tables that existed before the plan: kind, name and table, by oid.
    pub(super) async fn existing_indexes(&self) -> Result<HashMap<Oid, (String, String, Oid)>> {
        let rows = self
            .session
            .client()
            .query(queries::INDEXES, &[])
            .await
            .map_err(|e| Error::pg("listing the indexes", e))?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, Oid>(0), r.get::<_, String>(1), r.get::<_, Oid>(2)))
            .filter(|(_, _, table)| self.existing.contains(table))
            .map(|(oid, name, table)| (oid, ("index".to_owned(), name, table)))
            .collect())
    }

    /// The locks held now on tables that existed before the plan and on their indexes (ACCESS SHARE left out:
    /// measuring takes it too). Remembers each locked relation's kind, name and table.
    pub(super) async fn held_locks(&mut self) -> Result<HashSet<(Oid, String)>> {
        let rows = self
            .session
            .client()
            .query(queries::RELATION_LOCKS, &[])
            .await
            .map_err(|e| Error::pg("reading the locks held", e))?;
        let mut held = HashSet::new();
        for r in &rows {
            let (oid, mode, table): (Oid, String, Oid) = (r.get(0), r.get(1), r.get(2));
            // An index counts when its table existed before the plan and the index was there at the start too, and
            // only for locks that make queries wait (every write takes ROW EXCLUSIVE on every index).
            let blocking = effects::blocks(&mode) != (false, false);
            let existed =
                self.existing.contains(&oid) || (oid != table && blocking && self.relations.contains_key(&oid));
            if existed && mode != "AccessShareLock" {
                let name: Option<String> = r.get(4);
                let name = name.or_else(|| self.tables.get(&oid).map(|t| t.name.clone()));
                self.relations.entry(oid).or_insert_with(|| (r.get(3), name.unwrap_or_else(|| oid.to_string()), table));
                held.insert((oid, mode));
            }
        }
        Ok(held)
    }

    /// The blocking locks held now, each with the statement that took it (`index` for new ones).
    pub(super) fn locks_held(&mut self, index: usize) -> Vec<HeldSince> {
        self.lock_since.retain(|lock, _| self.locks.contains(lock));
        let mut held: Vec<HeldSince> = self
            .locks
            .iter()
            // Tables only: an index's lock comes and goes with its table's.
            .filter(|(oid, _)| self.existing.contains(oid))
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

    /// The locks taken since the last statement, with the rows of their tables before this statement.
    pub(super) async fn new_locks(&mut self) -> Result<Vec<LockTaken>> {
        let held = self.held_locks().await?;
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
                    rows: (!self.unknown.contains(&table))
                        .then(|| self.known_rows.get(&table).copied().unwrap_or(0).max(0) as u64),
                    production: None,
                }
            })
            .collect();
        taken.sort_by(|a, b| (&a.table, &a.mode).cmp(&(&b.table, &b.mode)));
        self.locks = held;
        Ok(taken)
    }

    /// The settings the statement will run with.
    pub(super) async fn settings(&self) -> Result<Settings> {
        let row = self
            .session
            .client()
            .query_one(queries::SETTINGS, &[])
            .await
            .map_err(|e| Error::pg("reading the settings", e))?;
        Ok(Settings { lock_timeout: row.get(0), statement_timeout: row.get(1) })
    }

    /// Non-null values per column of the given tables that existed before the plan.
    pub(super) async fn column_values(&self, tables: &HashSet<Oid>) -> Result<HashMap<String, u64>> {
        let mut values = HashMap::new();
        for oid in tables.iter().filter(|oid| self.existing.contains(oid)) {
            let rows = self
                .session
                .client()
                .query(queries::COLUMN_VALUES, &[oid])
                .await
                .map_err(|e| Error::pg("counting column values", e))?;
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
        for (key, column) in self.columns.iter().filter(|(k, _)| tables.contains(&k.0) && self.existing.contains(&k.0))
        {
            let (Some((_, limit)), Some(table)) =
                (limits.iter().find(|(name, _)| *name == column.name), self.tables.get(&key.0))
            else {
                continue;
            };
            let sql = format!(
                "SELECT pg_catalog.count(*) FROM {} WHERE pg_catalog.char_length({}::pg_catalog.text) > {limit}",
                table.name,
                crate::text::quote_ident(&column.name)
            );
            client.batch_execute("SAVEPOINT pgshadow_count").await.map_err(savepoint)?;
            match client.query_one(&sql, &[]).await {
                Ok(row) => {
                    client.batch_execute("RELEASE SAVEPOINT pgshadow_count").await.map_err(savepoint)?;
                    let values = row.get::<_, i64>(0).max(0) as u64;
                    found.push(crate::report::ValuesTooLong { column: column.identity.clone(), limit: *limit, values });
                }
                Err(_) => {
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
        for (key, column) in self.columns.iter().filter(|(k, _)| tables.contains(&k.0) && self.existing.contains(&k.0))
        {
            let none: Option<String> = None;
            let row = self
                .session
                .client()
                .query_one(queries::COLUMN_FINGERPRINT, &[&key.0, &column.name, &none])
                .await
                .map_err(|e| Error::pg("fingerprinting column values", e))?;
            prints.insert(*key, row.get::<_, Option<Decimal>>(0));
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
            let row = self
                .session
                .client()
                .query_one(queries::COLUMN_FINGERPRINT, &[&key.0, &column.name, &change.from])
                .await
                .map_err(|e| Error::pg("fingerprinting column values", e))?;
            change.values_changed = row.get::<_, Option<Decimal>>(0).map(|now| &now != then);
        }
        Ok(())
    }

    /// Attributes the foreign keys the plan added that have no supporting index at its end to their statements.
    pub(super) async fn unbacked_foreign_keys(&self, reports: &mut [StatementReport]) -> Result<()> {
        let rows = self
            .session
            .client()
            .query(queries::UNINDEXED_FOREIGN_KEYS, &[])
            .await
            .map_err(|e| Error::pg("looking for foreign keys without an index", e))?;
        let mut existing = Vec::new();
        for oid in rows.iter().map(|r| r.get::<_, Oid>(0)) {
            let Some(constraint) = self.constraints.get(&oid) else { continue };
            match self.created_by.get(&oid) {
                Some(index) => {
                    if let Some(report) = reports.iter_mut().find(|r| r.index == *index) {
                        report.unbacked_foreign_keys.push(constraint.identity.clone());
                    }
                }
                None => existing.push(oid),
            }
        }
        self.unindexed_references(&existing, reports).await?;
        self.narrow_foreign_keys(reports).await
    }

    /// Foreign keys the plan added whose integer column is narrower than the key it references.
    async fn narrow_foreign_keys(&self, reports: &mut [StatementReport]) -> Result<()> {
        let added: Vec<Oid> = self.created_by.keys().copied().collect();
        if added.is_empty() {
            return Ok(());
        }
        let rows = self
            .session
            .client()
            .query(queries::FOREIGN_KEY_COLUMN_TYPES, &[&added])
            .await
            .map_err(|e| Error::pg("reading the foreign keys' column types", e))?;
        let width = |t: &str| match t {
            "smallint" => 2,
            "integer" => 4,
            _ => 8,
        };
        for row in &rows {
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
        Ok(())
    }

    /// For each existing unindexed foreign key, the statements that deleted rows from or updated the table it
    /// references.
    async fn unindexed_references(&self, keys: &[Oid], reports: &mut [StatementReport]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let rows = self
            .session
            .client()
            .query(queries::FOREIGN_KEY_ENDS, &[&keys])
            .await
            .map_err(|e| Error::pg("reading the unindexed foreign keys' tables", e))?;
        for row in &rows {
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
        Ok(())
    }

    /// Every user column and constraint now.
    pub(super) async fn catalog(&self) -> Result<(catalog::Columns, catalog::Constraints)> {
        let client = self.session.client();
        let reading = |e| Error::pg("reading the columns and constraints", e);
        let columns = client.query(queries::COLUMN_STATE, &[]).await.map_err(reading)?;
        let constraints = client.query(queries::CONSTRAINT_STATE, &[]).await.map_err(reading)?;
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
                let constraint =
                    catalog::Constraint { table: r.get(1), identity: r.get(2), kind: r.get(3), validated: r.get(4) };
                (r.get::<_, Oid>(0), constraint)
            })
            .collect();
        Ok((columns, constraints))
    }

    /// The user functions called since the last statement.
    pub(super) async fn functions_called(&mut self) -> Result<Vec<FunctionCalled>> {
        let rows = self
            .session
            .client()
            .query(queries::FUNCTION_CALLS, &[])
            .await
            .map_err(|e| Error::pg("reading the functions called", e))?;
        let mut called = Vec::new();
        for r in &rows {
            let (oid, calls): (Oid, i64) = (r.get(0), r.get(2));
            let before = self.calls.insert(oid, calls).unwrap_or(0);
            if calls > before {
                called.push(FunctionCalled { function: r.get(1), calls: (calls - before) as u64, triggers: r.get(3) });
            }
        }
        called.sort_by(|a, b| a.function.cmp(&b.function));
        Ok(called)
    }

    /// The schema changes since the last statement.
    /// The rules on `written` (relations, each with the events it saw: `2` update, `3` insert, `4` delete) that
    /// those events fire.
    pub(super) async fn rules_fired(&self, written: &[(Oid, Vec<char>)]) -> Result<Vec<RuleFired>> {
        if written.is_empty() {
            return Ok(Vec::new());
        }
        let oids: Vec<Oid> = written.iter().map(|(oid, _)| *oid).collect();
        let rows = self
            .session
            .client()
            .query(queries::RULES, &[&oids])
            .await
            .map_err(|e| Error::pg("reading the rules", e))?;
        let mut fired: Vec<RuleFired> = rows
            .iter()
            .filter_map(|r| {
                let (relation, event): (Oid, String) = (r.get(0), r.get(2));
                let event = event.chars().next()?;
                written.iter().any(|(oid, events)| *oid == relation && events.contains(&event)).then(|| RuleFired {
                    rule: r.get(1),
                    event: match event {
                        '2' => "update",
                        '3' => "insert",
                        _ => "delete",
                    }
                    .to_owned(),
                    instead: r.get(3),
                })
            })
            .collect();
        fired.sort_by(|a, b| a.rule.cmp(&b.rule));
        Ok(fired)
    }

    pub(super) async fn schema_changes(&mut self) -> Result<Vec<SchemaChange>> {
        let rows = self
            .session
            .client()
            .query(queries::CHANGED_SINCE, &[&self.changed_seq])
            .await
            .map_err(|e| Error::pg("reading the schema changes", e))?;
        Ok(rows
            .iter()
            .map(|r| {
                self.changed_seq = self.changed_seq.max(r.get(0));
                SchemaChange { command: r.get(1), object_type: r.get(2), identity: r.get(3) }
            })
            .collect())
    }

    pub(super) async fn snapshot(&self) -> Result<Snapshot> {
        let rows = self
            .session
            .client()
            .query(queries::TABLE_STATE, &[])
            .await
            .map_err(|e| Error::pg("reading the tables' state", e))?;
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
        let mut counts = HashMap::new();
        for oid in tables {
            let row = self
                .session
                .client()
                .query_one(queries::COUNT_ROWS, &[&oid])
                .await
                .map_err(|e| Error::pg("counting rows", e))?;
            counts.insert(oid, row.get(0));
        }
        Ok(counts)
    }

    pub(super) async fn dropped(&mut self) -> Result<Vec<DroppedRow>> {
        let rows = self
            .session
            .client()
            .query(queries::DROPPED_SINCE, &[&self.dropped_seq])
            .await
            .map_err(|e| Error::pg("reading the dropped objects", e))?;
        const PG_CLASS: Oid = 1259;
        Ok(rows
            .iter()
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
            .collect())
    }

    /// The tables the statement names, with their partitions and children, resolved as the plan would resolve them.
    pub(super) async fn resolve_targets(&self, statement: &PlanStatement) -> Result<HashSet<Oid>> {
        let names: Vec<String> = statement.classification.targets.iter().map(|t| quote_name(t)).collect();
        if names.is_empty() {
            return Ok(HashSet::new());
        }
        let rows = self
            .session
            .client()
            .query(queries::RESOLVE_TABLES, &[&names])
            .await
            .map_err(|e| Error::pg("resolving the statement's tables", e))?;
        Ok(rows.iter().map(|r| r.get::<_, Oid>(0)).collect())
    }

    /// True when the plan committed or rolled back the dry-run's transaction (the classifier may not have seen it).
    pub(super) async fn transaction_ended(&self) -> Result<bool> {
        let row = self
            .session
            .client()
            .query_one(queries::TRANSACTION_START, &[])
            .await
            .map_err(|e| Error::pg("checking the dry-run transaction", e))?;
        Ok(row.get::<_, String>(0) != self.transaction_start)
    }
}
