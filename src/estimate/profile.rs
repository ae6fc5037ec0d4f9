//! Estimates from a profile of production, for a shadow without production's rows: every count the shadow could
//! not know (a table effect with `rows_known` false, a dropped table of unknown size) gets an estimate where the
//! profile knows the table's size, and every lock and rewrite of a table the profile knows gets its size there.

use std::collections::{HashMap, HashSet};

use sqlparser::ast::{Expr, Statement};

use super::keys::ForeignKey;
use super::selectivity::EqualityKeys;
use super::{fanout, selectivity};
use crate::plan::StatementKind;
use crate::profile::{Profile, TableProfile};
use crate::report::{
    thousands, DurationEstimate, EffectEstimate, Estimate, EstimateBasis, KeyUsage, ProductionSize, RowsEstimate,
    StatementReport,
};

/// What the profile estimates rest on: the profile, the shadow's foreign keys, and the rate at which the shadow
/// rewrote a table (bytes per second), when it was measured.
pub struct Production<'p> {
    /// The profile of production.
    pub profile: &'p Profile,
    /// The foreign keys of the shadow's database ([`super::foreign_keys`]).
    pub keys: &'p [ForeignKey],
    /// Bytes per second a rewrite ran at on the shadow ([`super::rewrite_rate`]).
    pub rewrite_rate: Option<f64>,
}

/// On a shadow whose rows stand in for production's (synthesized from the profile): production's sizes of the tables
/// each statement locks, rewrites or scans, from the profile, as [`estimate`] gives them.
pub fn production_sizes(statements: &mut [StatementReport], production: &Production<'_>) {
    let size_of = |table: &str| table_size(production.profile, table);
    for s in statements.iter_mut().filter(|s| !s.rolled_back) {
        sizes(s, &size_of, production.rewrite_rate);
    }
}

/// Sets the estimates the profile gives on `statements`, and returns the totals (`None` when nothing was
/// estimated).
pub fn estimate(statements: &mut [StatementReport], production: &Production<'_>) -> Option<Estimate> {
    let mut seen: HashSet<String> = HashSet::new();
    for s in statements.iter_mut().filter(|s| !s.rolled_back) {
        statement(s, production);
        keys_past_half(s, production.profile, &mut seen);
    }
    Estimate::of(statements, EstimateBasis::Profile, Vec::new())
}

/// A table of the profile by its name as the report writes it, with its rows in production.
fn table<'p>(profile: &'p Profile, name: &str) -> Option<(&'p TableProfile, f64)> {
    let (schema, table) = crate::text::split_qualified(name)?;
    let found = profile.table(&schema, &table)?;
    Some((found, found.rows(profile)?))
}

/// A count for the report: rounded, and never 0 for a fraction of a row that may be there (as PostgreSQL's planner
/// never estimates fewer than one row).
fn rows(n: f64) -> u64 {
    if n > 0.0 {
        n.round().max(1.0) as u64
    } else {
        0
    }
}

fn whole(t: &TableProfile, n: f64) -> String {
    match t.reltuples {
        Some(r) if r >= 0.0 => format!("the table's rows (reltuples {} in the profile)", thousands(n.round() as u64)),
        _ => format!("the table's rows ({} in its partitions, in the profile)", thousands(n.round() as u64)),
    }
}

fn statement(s: &mut StatementReport, production: &Production<'_>) {
    let profile = production.profile;
    let clause = match s.kind {
        StatementKind::Delete | StatementKind::Update => Some(where_of(&s.sql)),
        _ => None,
    };
    // The rows each direct table loses or changes, and the key values its WHERE fixed, for the cascades.
    let mut roots: HashMap<String, (f64, EqualityKeys)> = HashMap::new();
    for e in s.table_effects.iter_mut().filter(|e| !e.rows_known && e.estimated.is_none()) {
        let Some((t, n)) = table(profile, &e.table) else { continue };
        if e.truncated.is_none() {
            e.estimated = Some(EffectEstimate::profile((None, None, Some(rows(n))), whole(t, n)));
            continue;
        }
        if !e.direct {
            continue;
        }
        let (count, method, keys) = match &clause {
            Some(Where::None) => (n, whole(t, n), Vec::new()),
            Some(Where::Clause(expr)) => {
                let expr = expr.as_ref();
                let sel = selectivity::of(expr, t, n);
                let method = format!("{} of {} rows in the profile", sel.method(), thousands(n.round() as u64));
                (sel.fraction * n, method, sel.keys)
            }
            Some(Where::Unreadable) => {
                let f = selectivity::DEFAULT_INEQ_SEL;
                let method = format!(
                    "default selectivity {} (a WHERE clause pgshadow cannot read) of {} rows in the profile",
                    selectivity::percent(f),
                    thousands(n.round() as u64)
                );
                (f * n, method, Vec::new())
            }
            None => continue,
        };
        let counts = match s.kind {
            StatementKind::Delete => (None, Some(rows(count)), None),
            _ => (Some(rows(count)), None, None),
        };
        e.estimated = Some(EffectEstimate::profile(counts, method));
        roots.insert(e.table.clone(), (count, keys));
    }
    cascades(s, production, &roots);
    for o in s.dropped_objects.iter_mut().filter(|o| o.object_type == "table" && !o.rows_known) {
        if let Some((t, n)) = table(profile, &o.identity) {
            o.estimated = Some(RowsEstimate { rows: rows(n), basis: EstimateBasis::Profile, method: whole(t, n) });
        }
    }
    // A dropped column's values: its table's rows that are not null in it.
    for o in s.dropped_objects.iter_mut().filter(|o| o.object_type == "table column" && !o.rows_known) {
        let parts = crate::text::split_name(&o.identity).unwrap_or_default();
        let Ok([schema, table_name, column]) = <[String; 3]>::try_from(parts) else { continue };
        let Some(t) = profile.table(&schema, &table_name) else { continue };
        let Some(n) = t.rows(profile) else { continue };
        let Some(stats) = t.column(&column).and_then(|c| c.stats.as_ref()) else { continue };
        let values = n * (1.0 - stats.null_frac);
        let method = format!(
            "the table's {} rows in the profile less the null fraction of {column} ({})",
            thousands(n.round() as u64),
            selectivity::percent(stats.null_frac)
        );
        o.estimated = Some(RowsEstimate { rows: rows(values), basis: EstimateBasis::Profile, method });
    }
    sizes(s, &|table| table_size(profile, table), production.rewrite_rate);
}

/// Production's size (`size_of` a table, by its name as the report writes it) of every table `s` locks, rewrites, or
/// scans through an unindexed foreign key, and how long each rewrite would take there at `rewrite_rate`.
pub(super) fn sizes(
    s: &mut StatementReport,
    size_of: &dyn Fn(&str) -> Option<ProductionSize>,
    rewrite_rate: Option<f64>,
) {
    for l in s.locks.iter_mut().filter(|l| l.kind == "table") {
        l.production = size_of(&l.table);
    }
    for r in &mut s.unindexed_references {
        let child = r.foreign_key.rsplit_once(" on ").map(|(_, t)| t.to_owned());
        r.referencing_production = child.and_then(|child| size_of(&child));
    }
    for r in &mut s.rewritten_tables {
        r.production = size_of(&r.table);
        if let (Some(size), Some(rate)) = (&r.production, rewrite_rate) {
            let bytes = (size.bytes + size.index_bytes) as f64;
            let seconds = bytes / rate;
            r.estimated_duration = Some(DurationEstimate {
                seconds,
                bytes_per_second: rate,
                method: format!(
                    "an estimate: about {} to rewrite {} at {}/s, the rate a rewrite ran at on the shadow \
                     (production's disks and load differ)",
                    duration_label(seconds),
                    crate::report::bytes_label(bytes as u64),
                    crate::report::bytes_label(rate as u64)
                ),
            });
        }
    }
}

/// The estimates of the tables a DELETE reaches along its cascade paths: the root's estimate times each step's
/// fan-out, level by level, capped at each table's rows.
fn cascades(s: &mut StatementReport, production: &Production<'_>, roots: &HashMap<String, (f64, EqualityKeys)>) {
    let profile = production.profile;
    let mut found: Vec<(String, bool, u64, String)> = Vec::new();
    for p in &s.cascade_paths {
        let Some((mut count, keys)) = p.path.first().and_then(|root| roots.get(root)).cloned() else { continue };
        let mut methods = Vec::new();
        let mut complete = true;
        for (i, pair) in p.path.windows(2).enumerate() {
            let last = i + 2 == p.path.len();
            let key = production.keys.iter().find(|k| {
                k.parent == pair[0]
                    && k.child == pair[1]
                    && if last { k.identity == p.foreign_key } else { k.on_delete == 'c' }
            });
            let (Some(key), Some((_, parent_rows)), Some((child, child_rows))) =
                (key, table(profile, &pair[0]), table(profile, &pair[1]))
            else {
                complete = false;
                break;
            };
            let fixed: &[(String, Vec<String>)] = if i == 0 { &keys } else { &[] };
            let (reached, method) = fanout::reached(key, parent_rows, (child, child_rows), count, fixed);
            count = reached;
            methods.push(method);
        }
        if complete {
            found.push((p.table.clone(), p.action == "delete", rows(count), methods.join("; then ")));
        }
    }
    for (table, delete, n, method) in found {
        let Some(e) = s.table_effects.iter_mut().find(|e| e.table == table && e.estimated.is_none()) else { continue };
        let counts = if delete { (None, Some(n), None) } else { (Some(n), None, None) };
        e.estimated = Some(EffectEstimate::profile(counts, method));
    }
}

/// The integer keys past half their range in production of the tables `s` is the first statement to touch (write
/// to, lock, or alter); `seen` holds the tables earlier statements touched.
fn keys_past_half(s: &mut StatementReport, profile: &Profile, seen: &mut HashSet<String>) {
    let touched =
        s.table_effects.iter().map(|e| &e.table).chain(s.locks.iter().filter(|l| l.kind == "table").map(|l| &l.table));
    let fresh: Vec<String> = touched.filter(|t| !seen.contains(*t)).cloned().collect();
    for table in fresh {
        seen.insert(table.clone());
        let Some((schema, name)) = crate::text::split_qualified(&table) else { continue };
        let Some(t) = profile.table(&schema, &name) else { continue };
        for key in t.integer_keys.iter().filter(|k| k.r#type == "integer" || k.r#type == "smallint") {
            let Some(last) = key.last_value.filter(|last| *last as f64 > key.max_value as f64 / 2.0) else { continue };
            s.keys_past_half.push(KeyUsage {
                column: format!("{table}.{}", key.column),
                r#type: key.r#type.clone(),
                sequence: key.sequence.clone(),
                last_value: last,
                max_value: key.max_value,
            });
        }
    }
}

/// A table's size in production, when the profile has it.
fn table_size(profile: &Profile, name: &str) -> Option<ProductionSize> {
    let (schema, table) = crate::text::split_qualified(name)?;
    let t = profile.table(&schema, &table)?;
    Some(ProductionSize {
        rows: t.rows(profile).map(|r| r.round() as u64),
        rows_counted: false,
        bytes: (t.heap_bytes + t.toast_bytes).max(0) as u64,
        index_bytes: t.index_bytes.max(0) as u64,
        basis: EstimateBasis::Profile,
    })
}

/// `3 s`, `4 min`, `2.5 h`.
fn duration_label(seconds: f64) -> String {
    match seconds {
        s if s >= 3600.0 => format!("{:.1} h", s / 3600.0),
        s if s >= 60.0 => format!("{:.0} min", s / 60.0),
        s if s >= 1.0 => format!("{s:.0} s"),
        s => format!("{:.0} ms", s * 1000.0),
    }
}

/// A DELETE's or UPDATE's WHERE clause.
enum Where {
    /// It has none: every row.
    None,
    /// Its condition.
    Clause(Box<Expr>),
    /// sqlparser cannot read the statement.
    Unreadable,
}

fn where_of(sql: &str) -> Where {
    let Ok(statements) = crate::plan::parse_sql(sql) else { return Where::Unreadable };
    let selection = match statements.as_slice() {
        [Statement::Delete(d)] => d.selection.clone(),
        [Statement::Update(u)] => u.selection.clone(),
        _ => return Where::Unreadable,
    };
    selection.map_or(Where::None, |e| Where::Clause(Box::new(e)))
}
