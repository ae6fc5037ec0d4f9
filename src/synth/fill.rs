//! Filling the planned tables: one `INSERT … SELECT` per table, generated in the shadow from `generate_series`, in
//! the loader's session with `session_replication_role = replica` (no trigger fires, foreign keys included, so
//! every key is made right by construction).
//!
//! - Rows a CHECK constraint (or a partition's bound) refuses are retried with other values ([`ATTEMPTS`]), then
//!   left out and counted: candidates are filtered by the constraints' own expressions, the first passing attempt of
//!   each row is kept.
//! - Rows a unique constraint or index refuses are left out (`ON CONFLICT DO NOTHING`) and counted.
//! - A statement that fails (a domain's check, a type with no generator) is split in halves until the failing rows
//!   are found, at most [`FAILURES`] times per table; the rest are left out, with the error.
//! - Foreign-key columns take their parents' keys (first the most common values the profile has of the column,
//!   which [`require_keys`] made exist in the parent, then any of as many parents as `n_distinct` says); keys that
//!   close a cycle are filled after every table ([`fill_deferred`]).

use std::collections::{BTreeMap, BTreeSet};

use super::catalog::{Catalog, Column, ForeignKey, Oid};
use super::plan::{FillPlan, Unit};
use super::values::{self, Shape};
use crate::error::{Error, Result};
use crate::report::{EmptyTable, LeftOut, SyntheticTable};
use crate::shadow::Session;
use crate::text::{quote_ident, quote_literal};

/// Candidates generated per row of a table with CHECK constraints (a partition's bound among them).
const ATTEMPTS: u64 = 4;

/// Failed statements per table before the rows not yet inserted are given up.
const FAILURES: usize = 24;

/// What the fill did.
#[derive(Debug, Default)]
pub(super) struct Filled {
    pub(super) tables: Vec<SyntheticTable>,
    pub(super) empty: Vec<EmptyTable>,
    pub(super) columns_without_values: Vec<String>,
}

/// Fills every unit of `plan`, in order.
pub(super) async fn fill(session: &Session, catalog: &Catalog, plan: &FillPlan<'_>, seed: u64) -> Result<Filled> {
    let mut filled = Filled::default();
    let mut rows_of: BTreeMap<Oid, u64> = BTreeMap::new();
    let required = required_keys(plan);
    for unit in &plan.units {
        tracing::info!(target: "pgshadow::progress", "synthesizing {} ({} rows)", unit.table.qualified, unit.rows);
        let table = Table::new(unit, catalog, &rows_of, seed);
        if let Some(reason) = &table.blocked {
            filled.empty.push(EmptyTable {
                table: unit.table.qualified.clone(),
                reason: reason.clone(),
                empty_in_production: false,
            });
            continue;
        }
        filled.columns_without_values.extend(table.without_values.iter().cloned());
        let started = std::time::Instant::now();
        let (rows, left_out) = insert(session, &table).await?;
        tracing::debug!(table = %unit.table.qualified, rows, ms = started.elapsed().as_millis() as u64, "synthesized");
        if let Some(keys) = required.get(&unit.table.oid) {
            require_keys(session, unit, keys).await?;
        }
        rows_of.insert(unit.table.oid, rows);
        if rows == 0 {
            filled.empty.push(EmptyTable {
                table: unit.table.qualified.clone(),
                reason: format!(
                    "every generated row was refused: {}",
                    left_out
                        .iter()
                        .map(|l| match &l.message {
                            Some(message) => format!("{} ({message})", l.constraint),
                            None => l.constraint.clone(),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                empty_in_production: false,
            });
        }
        filled.tables.push(SyntheticTable {
            table: unit.table.qualified.clone(),
            production_rows: unit.production_rows,
            rows,
            scale: if rows == 0 { 0.0 } else { unit.production_rows.max(rows as f64) / rows as f64 },
            left_out,
        });
    }
    filled.tables.retain(|t| t.rows > 0);
    for unit in &plan.units {
        for &k in &unit.deferred {
            fill_deferred(session, catalog, unit, &unit.table.foreign_keys[k], &rows_of, seed).await?;
        }
    }
    set_sequences(session, catalog).await;
    Ok(filled)
}

/// A salt for `parts`, from the seed: where the Weyl sequences of a column start.
fn salt(seed: u64, parts: &[&str]) -> u64 {
    let digest = crate::text::hex_digest(format!("{seed}\0{}", parts.join("\0")).as_bytes());
    u64::from_str_radix(&digest[..16], 16).expect("a digest is hex")
}

/// The statement parts of one table's fill.
struct Table<'a> {
    unit: &'a Unit<'a>,
    /// (quoted column, expression).
    columns: Vec<(String, String)>,
    /// Uniform numbers, one per column position.
    uniforms: Vec<String>,
    /// Parent key lists joined in: (alias, subquery, join condition).
    joins: Vec<String>,
    checks: Vec<(String, String)>,
    without_values: Vec<String>,
    /// Why the table cannot get rows (a NOT NULL foreign key to a table with none).
    blocked: Option<String>,
}

/// The row's position, attempts included (`x.x`, 1-based).
const X: &str = "x.x";

impl<'a> Table<'a> {
    fn new(unit: &'a Unit<'a>, catalog: &Catalog, rows_of: &BTreeMap<Oid, u64>, seed: u64) -> Table<'a> {
        let table = unit.table;
        let mut out = Table {
            unit,
            columns: Vec::new(),
            uniforms: Vec::new(),
            joins: Vec::new(),
            checks: Vec::new(),
            without_values: Vec::new(),
            blocked: None,
        };
        let by_column: BTreeMap<&str, (usize, &ForeignKey)> = table
            .foreign_keys
            .iter()
            .enumerate()
            .flat_map(|(k, key)| key.columns.iter().map(move |c| (c.as_str(), (k, key))))
            .collect();
        for (position, column) in table.columns.iter().enumerate() {
            let stats = unit.profile.column(&column.name);
            if column.generated || (stats.is_none() && column.has_default) {
                continue;
            }
            let stats = stats.and_then(|c| c.stats.as_ref());
            let shape = values::shape(column, stats, unit.rows, unit.production_rows);
            let salt = salt(seed, &[&table.qualified, &column.name]);
            let u = format!("u.u{position}");
            out.uniforms.push(format!("{} AS u{position}", values::uniform(X, position, salt)));
            let expression = match by_column.get(column.name.as_str()) {
                Some(&(k, key)) if !unit.deferred.contains(&k) => {
                    match out.foreign_key(catalog, rows_of, k, key, column, &shape, &u) {
                        Some(expression) => expression,
                        None => return out,
                    }
                }
                Some(_) if !column.not_null => format!("NULL::{}", column.r#type),
                _ => {
                    if !shape.has_values {
                        out.without_values.push(format!("{}.{}", table.qualified, column.name));
                    }
                    let index = column.unique.then(|| format!("({X} - 1)"));
                    values::expression(column, &shape, &u, index.as_deref(), salt)
                }
            };
            out.columns.push((quote_ident(&column.name), expression));
        }
        let inserted: BTreeSet<&str> = table
            .columns
            .iter()
            .filter(|c| out.columns.iter().any(|(q, _)| *q == quote_ident(&c.name)))
            .map(|c| c.name.as_str())
            .collect();
        out.checks = table
            .checks
            .iter()
            .filter(|c| c.columns.iter().all(|col| inserted.contains(col.as_str())))
            .map(|c| (c.name.clone(), c.expression.clone()))
            .collect();
        out
    }

    /// The expression of `column`, part of the foreign key `key` (the `k`-th), joining its parent's keys in; `None`
    /// (and `blocked` set) when the parent has no rows and the column may not be null.
    #[allow(clippy::too_many_arguments)] // The parts of one column of one key, all needed together.
    fn foreign_key(
        &mut self,
        catalog: &Catalog,
        rows_of: &BTreeMap<Oid, u64>,
        k: usize,
        key: &ForeignKey,
        column: &Column,
        shape: &Shape,
        u: &str,
    ) -> Option<String> {
        let parents = catalog.rows_under(key.parent, rows_of);
        let alias = format!("f{k}");
        let at = key.columns.iter().position(|c| *c == column.name).unwrap_or(0);
        let parent_column = format!("{alias}.{}", quote_ident(&key.parent_columns[at]));
        if parents == 0 {
            if column.not_null {
                self.blocked = Some(format!("references {}, which has no synthetic rows", key.parent_qualified));
                return None;
            }
            return Some(format!("NULL::{}", column.r#type));
        }
        // The first column of the key decides for all: its nulls, its most common values, its parent.
        let single = key.columns.len() == 1;
        let lead = &key.columns[0];
        let lead_u = match self.unit.table.columns.iter().position(|c| c.name == *lead) {
            Some(position) => format!("u.u{position}"),
            None => u.to_owned(),
        };
        let shape = if single { shape.clone() } else { Shape { common: Vec::new(), ..shape.clone() } };
        if !self.joins.iter().any(|j| j.contains(&format!(") {alias} ON"))) {
            let pick = (parents as f64).min(shape.distinct.max(1.0));
            let index = match column.unique && single {
                true => format!("(({X} - 1) % {parents} + 1)"),
                false => format!("({} + 1)", values::rest_index(&shape, &lead_u, pick)),
            };
            let columns: Vec<String> = key.parent_columns.iter().map(|c| quote_ident(c)).collect();
            let only = if key.parent_partitioned { "" } else { "ONLY " };
            self.joins.push(format!(
                "LEFT JOIN (SELECT pg_catalog.row_number() OVER (ORDER BY pg_catalog.md5(ROW({cols})::pg_catalog.text)) \
                 AS pgshadow_n, {cols} FROM {only}{parent} WHERE {not_null}) {alias} ON {alias}.pgshadow_n = {index}",
                cols = columns.join(", "),
                parent = key.parent_qualified,
                not_null = columns.iter().map(|c| format!("{c} IS NOT NULL")).collect::<Vec<_>>().join(" AND "),
            ));
        }
        let shape = Shape { null_frac: if column.not_null { 0.0 } else { shape.null_frac }, ..shape };
        Some(values::choice(column, &shape, &lead_u, Some(parent_column)))
    }

    /// The statement that fills the rows `rows` gives (a set-returning SQL expression of row numbers), with the
    /// attempts `attempts`, keeping each row's first attempt that every CHECK passes. It returns the rows inserted,
    /// the rows chosen (unique conflicts are the difference), how many candidates each CHECK refused, and the rows
    /// no attempt passed.
    fn statement(&self, rows: &str, attempts: (u64, u64)) -> String {
        let total = self.unit.rows;
        let names: Vec<&str> = self.columns.iter().map(|(n, _)| n.as_str()).collect();
        let expressions: Vec<String> = self.columns.iter().map(|(n, e)| format!("{e} AS {n}")).collect();
        let uniforms = if self.uniforms.is_empty() { "1 AS u".to_owned() } else { self.uniforms.join(", ") };
        let candidates = format!(
            "SELECT x.i AS pgshadow_i, x.a AS pgshadow_a, {} \
             FROM (SELECT g.i, a.a, g.i + a.a * {total} AS x FROM {rows} g(i), \
                   pg_catalog.generate_series({}::pg_catalog.int8, {}) a(a)) x \
             CROSS JOIN LATERAL (SELECT {uniforms}) u {}",
            expressions.join(", "),
            attempts.0,
            attempts.1,
            self.joins.join(" ")
        );
        let oks: Vec<String> =
            self.checks.iter().enumerate().map(|(i, (_, e))| format!("({e}) IS NOT FALSE AS pgshadow_ok{i}")).collect();
        let all_ok: Vec<String> = (0..self.checks.len()).map(|i| format!("pgshadow_ok{i}")).collect();
        let (judged, chosen, refused) = match (oks.is_empty(), attempts.0 == attempts.1) {
            (true, _) => (
                "SELECT * FROM candidates".to_owned(),
                "SELECT * FROM judged".to_owned(),
                ", '{}'::pg_catalog.int8[]".to_owned(),
            ),
            (false, single) => {
                let all = all_ok.join(" AND ");
                let chosen = match single {
                    true => format!("SELECT * FROM judged WHERE {all}"),
                    false => format!(
                        "SELECT DISTINCT ON (pgshadow_i) * FROM judged WHERE {all} ORDER BY pgshadow_i, pgshadow_a"
                    ),
                };
                let counts: String = all_ok
                    .iter()
                    .map(|ok| format!(", (SELECT pg_catalog.count(*) FROM judged WHERE NOT {ok})"))
                    .collect();
                let left = ", ARRAY(SELECT pgshadow_i FROM judged EXCEPT SELECT pgshadow_i FROM chosen)";
                (format!("SELECT candidates.*, {} FROM candidates", oks.join(", ")), chosen, format!("{left}{counts}"))
            }
        };
        format!(
            "WITH candidates AS ({candidates}), judged AS ({judged}), chosen AS ({chosen}), \
             inserted AS (INSERT INTO {table} ({columns}) OVERRIDING SYSTEM VALUE SELECT {columns} FROM chosen \
                          ON CONFLICT DO NOTHING RETURNING 1) \
             SELECT (SELECT pg_catalog.count(*) FROM inserted), (SELECT pg_catalog.count(*) FROM chosen){refused}",
            table = self.unit.table.qualified,
            columns = names.join(", "),
        )
    }
}

/// What one statement of a table's fill did.
#[derive(Default)]
struct Pass {
    inserted: u64,
    chosen: u64,
    /// Rows no attempt passed.
    refused: Vec<i64>,
    /// Candidates each CHECK refused.
    by_check: Vec<u64>,
}

/// Runs [`Table::statement`] for `rows` (a range, or a list of row numbers) and `attempts`.
async fn pass(
    session: &Session,
    table: &Table<'_>,
    rows: Rows<'_>,
    attempts: (u64, u64),
) -> Result<Pass, tokio_postgres::Error> {
    let row = match rows {
        Rows::Range(from, to) => {
            let series = format!("pg_catalog.generate_series({from}::pg_catalog.int8, {to})");
            session.client().query_one(table.statement(&series, attempts).as_str(), &[]).await?
        }
        Rows::List(list) => {
            let sql = table.statement("pg_catalog.unnest($1::pg_catalog.int8[])", attempts);
            session.client().query_one(sql.as_str(), &[&list]).await?
        }
    };
    let (inserted, chosen): (i64, i64) = (row.get(0), row.get(1));
    let refused: Vec<i64> = row.get(2);
    let by_check = (0..table.checks.len()).map(|i| row.get::<_, i64>(3 + i) as u64).collect();
    Ok(Pass { inserted: inserted as u64, chosen: chosen as u64, refused, by_check })
}

/// Which rows a pass generates.
#[derive(Clone, Copy)]
enum Rows<'a> {
    Range(u64, u64),
    List(&'a [i64]),
}

/// Fills one table; returns the rows inserted and what was left out.
async fn insert(session: &Session, table: &Table<'_>) -> Result<(u64, Vec<LeftOut>)> {
    if table.columns.is_empty() {
        return Ok((
            0,
            vec![LeftOut { constraint: "no column to generate".into(), rows: table.unit.rows, message: None }],
        ));
    }
    let mut inserted = 0u64;
    let mut left: BTreeMap<String, (u64, Option<String>)> = BTreeMap::new();
    let mut refused_by_check = vec![0u64; table.checks.len()];
    let mut ranges = vec![(1u64, table.unit.rows)];
    let mut failures = 0;
    while let Some((from, to)) = ranges.pop() {
        let count = to - from + 1;
        // The first attempt of every row, then the others of the rows a CHECK refused.
        let mut done = pass(session, table, Rows::Range(from, to), (0, 0)).await;
        if let Ok(first) = &done {
            if !first.refused.is_empty() && ATTEMPTS > 1 {
                let retried = pass(session, table, Rows::List(&first.refused), (1, ATTEMPTS - 1)).await;
                done = retried.map(|second| Pass {
                    inserted: first.inserted + second.inserted,
                    chosen: first.chosen + second.chosen,
                    by_check: first.by_check.iter().zip(&second.by_check).map(|(a, b)| a + b).collect(),
                    refused: second.refused,
                });
            }
        }
        match done {
            Ok(done) => {
                inserted += done.inserted;
                if done.chosen > done.inserted {
                    left.entry("unique".into()).or_default().0 += done.chosen - done.inserted;
                }
                refused_by_check.iter_mut().zip(&done.by_check).for_each(|(total, n)| *total += n);
                if count > done.chosen {
                    // Rows no attempt passed: put on the CHECK that refused the most candidates.
                    let worst = refused_by_check.iter().enumerate().max_by_key(|(_, r)| **r).map(|(i, _)| i);
                    let name = worst.map_or_else(|| "check".to_owned(), |i| table.checks[i].0.clone());
                    left.entry(name).or_default().0 += count - done.chosen;
                }
            }
            Err(e) => {
                let Some(db) = e.as_db_error() else {
                    return Err(Error::pg(format!("synthesizing rows for {}", table.unit.table.qualified), e));
                };
                failures += 1;
                tracing::debug!(table = %table.unit.table.qualified, error = %db.message(), from, to, "synthetic rows refused");
                // An error of the statement itself (class 42: a type without the function it needs) is no row's.
                if db.code().code().starts_with("42") {
                    failures = FAILURES;
                }
                if count == 1 || failures >= FAILURES {
                    let name = db.constraint().map_or_else(|| db.code().code().to_owned(), str::to_owned);
                    let entry = left.entry(name).or_default();
                    entry.0 += count;
                    entry.1 = Some(db.message().to_owned());
                    if failures >= FAILURES {
                        let rest: u64 = ranges.drain(..).map(|(f, t)| t - f + 1).sum();
                        entry.0 += rest;
                    }
                } else {
                    let middle = from + count / 2;
                    ranges.push((middle, to));
                    ranges.push((from, middle - 1));
                }
            }
        }
    }
    let left_out = left
        .into_iter()
        .filter(|(_, (rows, _))| *rows > 0)
        .map(|(constraint, (rows, message))| LeftOut { constraint, rows, message })
        .collect();
    Ok((inserted, left_out))
}

/// For each table, the values of its key columns that children's most common foreign-key values name: (column,
/// values).
fn required_keys(plan: &FillPlan<'_>) -> BTreeMap<Oid, Vec<(String, String, Vec<String>)>> {
    let mut required: BTreeMap<Oid, BTreeMap<String, (String, BTreeSet<String>)>> = BTreeMap::new();
    for unit in &plan.units {
        for (k, key) in unit.table.foreign_keys.iter().enumerate() {
            if key.columns.len() != 1 || key.parent_partitioned || unit.deferred.contains(&k) {
                continue;
            }
            let stats = unit.profile.column(&key.columns[0]).and_then(|c| c.stats.as_ref());
            let Some(values) = stats.and_then(|s| s.most_common_vals.as_ref()) else { continue };
            let Some(parent) = plan.units.iter().find(|p| p.table.oid == key.parent) else { continue };
            let Some(column) = parent.table.columns.iter().find(|c| c.name == key.parent_columns[0]) else {
                continue;
            };
            let entry = required
                .entry(key.parent)
                .or_default()
                .entry(column.name.clone())
                .or_insert_with(|| (column.r#type.clone(), BTreeSet::new()));
            entry.1.extend(values.iter().filter(|v| *v != "NULL").cloned());
        }
    }
    required
        .into_iter()
        .map(|(oid, columns)| {
            (oid, columns.into_iter().map(|(c, (ty, values))| (c, ty, values.into_iter().collect())).collect())
        })
        .collect()
}

/// Makes the key values of `keys` exist in `unit`'s table, giving them to rows that hold none of them.
async fn require_keys(session: &Session, unit: &Unit<'_>, keys: &[(String, String, Vec<String>)]) -> Result<()> {
    let table = &unit.table.qualified;
    for (column, ty, values) in keys {
        let column = quote_ident(column);
        let sql = format!(
            "WITH need AS (SELECT v, pg_catalog.row_number() OVER (ORDER BY v) AS n \
                           FROM pg_catalog.unnest($1::pg_catalog.text[]) v \
                           WHERE NOT EXISTS (SELECT 1 FROM ONLY {table} p WHERE p.{column}::pg_catalog.text = v)), \
                  spare AS (SELECT ctid AS tid, pg_catalog.row_number() OVER (ORDER BY ctid) AS n FROM ONLY {table} p \
                            WHERE NOT (p.{column}::pg_catalog.text = ANY ($1::pg_catalog.text[])) \
                            LIMIT (SELECT pg_catalog.count(*) FROM need)) \
             UPDATE ONLY {table} p SET {column} = need.v::{ty} FROM need JOIN spare USING (n) WHERE p.ctid = spare.tid"
        );
        if let Err(e) = session.client().execute(sql.as_str(), &[values]).await {
            // The keys stay as generated: children then spread over them without the profile's skew.
            tracing::warn!(table = %table, error = %e, "could not give the most common foreign-key values to parents");
        }
    }
    Ok(())
}

/// Fills the columns of the deferred foreign key `key` of `unit` with keys of its parent, now that every table has
/// rows.
async fn fill_deferred(
    session: &Session,
    catalog: &Catalog,
    unit: &Unit<'_>,
    key: &ForeignKey,
    rows_of: &BTreeMap<Oid, u64>,
    seed: u64,
) -> Result<()> {
    let parents = catalog.rows_under(key.parent, rows_of);
    if parents == 0 || rows_of.get(&unit.table.oid).is_none_or(|r| *r == 0) {
        return Ok(());
    }
    let lead = unit.table.columns.iter().position(|c| c.name == key.columns[0]).unwrap_or(0);
    let column = &unit.table.columns[lead];
    let stats = unit.profile.column(&column.name).and_then(|c| c.stats.as_ref());
    let shape = Shape { common: Vec::new(), ..values::shape(column, stats, unit.rows, unit.production_rows) };
    let u = values::uniform("x.pgshadow_x", lead, salt(seed, &[&unit.table.qualified, &column.name, "deferred"]));
    let pick = (parents as f64).min(shape.distinct);
    let index = values::rest_index(&shape, &u, pick);
    let null_frac = if column.not_null { 0.0 } else { shape.null_frac };
    let parent_columns: Vec<String> = key.parent_columns.iter().map(|c| quote_ident(c)).collect();
    let assign: Vec<String> =
        key.columns.iter().zip(&parent_columns).map(|(c, p)| format!("{} = f.{p}", quote_ident(c))).collect();
    let only = if key.parent_partitioned { "" } else { "ONLY " };
    let sql = format!(
        "UPDATE ONLY {child} t SET {assign} \
         FROM (SELECT ctid AS tid, pg_catalog.row_number() OVER (ORDER BY ctid) AS pgshadow_x FROM ONLY {child}) x \
         JOIN (SELECT pg_catalog.row_number() OVER (ORDER BY pg_catalog.md5(ROW({cols})::pg_catalog.text)) \
               AS pgshadow_n, {cols} FROM {only}{parent} WHERE {not_null}) f ON f.pgshadow_n = {index} + 1 \
         WHERE t.ctid = x.tid AND {u} >= {null_frac:.17}",
        child = unit.table.qualified,
        assign = assign.join(", "),
        cols = parent_columns.join(", "),
        parent = key.parent_qualified,
        not_null = parent_columns.iter().map(|c| format!("{c} IS NOT NULL")).collect::<Vec<_>>().join(" AND "),
    );
    session
        .client()
        .execute(sql.as_str(), &[])
        .await
        .map_err(|e| Error::pg(format!("filling the foreign key {} of {}", key.name, unit.table.qualified), e))?;
    Ok(())
}

/// Sets every sequence a column owns past the largest value generated in it.
async fn set_sequences(session: &Session, catalog: &Catalog) {
    for (sequence, table, column) in &catalog.sequences {
        let sql = format!(
            "SELECT pg_catalog.setval({}::pg_catalog.regclass, m) \
             FROM (SELECT pg_catalog.max({column})::pg_catalog.int8 AS m FROM {table}) s WHERE m IS NOT NULL",
            quote_literal(sequence)
        );
        if let Err(e) = session.client().batch_execute(&sql).await {
            tracing::warn!(sequence = %sequence, error = %e, "could not set a sequence past the synthetic keys");
        }
    }
}
