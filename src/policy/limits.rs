//! Limits: measured numbers the plan may not exceed, in total, per table, and per rewritten or locked table.

use serde::Deserialize;

use super::Glob;
use crate::report::{Finding, FoundBy, Severity, StatementReport, Status};

/// Limits on rows, in total or for the tables a glob matches.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Thresholds {
    pub(crate) max_rows_deleted: Option<u64>,
    pub(crate) max_rows_updated: Option<u64>,
    pub(crate) max_rows_destroyed: Option<u64>,
}

/// Every limit of a policy.
#[derive(Debug, Clone, Default)]
pub(crate) struct Limits {
    pub(crate) total: Thresholds,
    pub(crate) tables: Vec<(Glob, Thresholds)>,
    pub(crate) max_cascade_deleted: Option<u64>,
    pub(crate) max_objects_dropped: Option<u64>,
    pub(crate) max_rows_rewritten: Option<u64>,
    pub(crate) max_rows_locked_exclusive: Option<u64>,
}

/// A statement's number for a limit; `None` when the shadow cannot know it (rows of a table of unknown size).
type Measure<'a> = Box<dyn Fn(&StatementReport) -> Option<u64> + 'a>;

/// One finding per limit exceeded, pointing at the statement where the running total crossed it.
pub(super) fn check(limits: &Limits, statements: &[StatementReport], scale: f64) -> Vec<Finding> {
    let mut findings = Vec::new();
    let t = &limits.total;
    // Row counts measured on a sample are scaled to the whole source; object counts are not.
    let rows = Scale(scale);
    let objects = Scale(1.0);
    let totals: [(&str, &str, Option<u64>, Measure); 5] = [
        ("max-rows-deleted", "rows deleted", t.max_rows_deleted, Box::new(|s| sum(s, |e| e.deleted))),
        ("max-rows-updated", "rows updated", t.max_rows_updated, Box::new(|s| sum(s, |e| e.updated))),
        (
            "max-rows-destroyed",
            "rows destroyed",
            t.max_rows_destroyed,
            Box::new(|s| s.rows_known.then_some(s.rows_destroyed)),
        ),
        (
            "max-cascade-deleted",
            "rows deleted by cascades and triggers",
            limits.max_cascade_deleted,
            Box::new(|s| s.table_effects.iter().filter(|e| !e.direct).map(|e| e.deleted).sum()),
        ),
        (
            "max-objects-dropped",
            "objects dropped",
            limits.max_objects_dropped,
            Box::new(|s| Some(s.dropped_objects.len() as u64)),
        ),
    ];
    for (rule, what, limit, measure) in &totals {
        let scale = if *rule == "max-objects-dropped" { objects } else { rows };
        findings.extend(crossing(statements, rule, what, "", *limit, measure, scale));
    }
    for (glob, t) in &limits.tables {
        for table in tables_touched(statements).into_iter().filter(|name| glob.matches(name)) {
            let of = |field: fn(&crate::report::TableEffect) -> Option<u64>| -> Measure {
                let table = table.clone();
                Box::new(move |s| s.table_effects.iter().filter(|e| e.table == table).map(field).sum())
            };
            let destroyed: Measure = {
                let table = table.clone();
                Box::new(move |s| {
                    let effects: Option<u64> =
                        s.table_effects.iter().filter(|e| e.table == table).map(|e| e.destroyed()).sum();
                    let mut dropped = s.dropped_objects.iter().filter(|o| o.identity == table);
                    if dropped.clone().any(|o| !o.rows_known) {
                        return None;
                    }
                    Some(effects? + dropped.by_ref().filter_map(|o| o.rows).sum::<u64>())
                })
            };
            let per_table: [(&str, &str, Option<u64>, Measure); 3] = [
                ("max-rows-deleted", "rows deleted", t.max_rows_deleted, of(|e| e.deleted)),
                ("max-rows-updated", "rows updated", t.max_rows_updated, of(|e| e.updated)),
                ("max-rows-destroyed", "rows destroyed", t.max_rows_destroyed, destroyed),
            ];
            for (rule, what, limit, measure) in &per_table {
                findings.extend(crossing(statements, rule, what, &format!(" in {table}"), *limit, measure, rows));
            }
        }
    }
    for s in statements.iter().filter(|s| s.status == Status::Ok && !s.rolled_back) {
        let unknown = |table: &str| s.unknown_tables.iter().any(|t| t == table);
        if let Some(limit) = limits.max_rows_rewritten {
            for r in s.rewritten_tables.iter().filter(|r| unknown(&r.table) || r.rows.is_none()) {
                findings.push(unchecked(
                    "max-rows-rewritten",
                    s.index,
                    &format!("rows of {} rewritten", r.table),
                    limit,
                ));
            }
            let known = s.rewritten_tables.iter().filter_map(|r| Some((r, r.rows.filter(|_| !unknown(&r.table))?)));
            for (r, n) in known.filter(|(_, n)| rows.of(*n) > limit) {
                let message = format!("rewrites {} with {} rows, over the limit of {limit}", r.table, rows.describe(n));
                findings.push(finding("max-rows-rewritten", s.index, message, rows.of(n), limit));
            }
        }
        if let Some(limit) = limits.max_rows_locked_exclusive {
            let exclusive = s.locks.iter().filter(|l| l.kind == "table" && l.mode == "AccessExclusiveLock");
            for l in exclusive.clone().filter(|l| unknown(&l.table) || l.rows.is_none()) {
                let what = format!("rows of {} locked ACCESS EXCLUSIVE", l.table);
                findings.push(unchecked("max-rows-locked-exclusive", s.index, &what, limit));
            }
            let known = exclusive.filter_map(|l| Some((l, l.rows.filter(|_| !unknown(&l.table))?)));
            for (l, n) in known.filter(|(_, n)| rows.of(*n) > limit) {
                let message = format!(
                    "locks {} ({} rows) ACCESS EXCLUSIVE, over the limit of {limit}",
                    l.table,
                    rows.describe(n)
                );
                findings.push(finding("max-rows-locked-exclusive", s.index, message, rows.of(n), limit));
            }
        }
    }
    findings
}

/// A finding when the plan's total of `measure` exceeds `limit`, at the statement where the running total crossed it.
fn crossing(
    statements: &[StatementReport],
    rule: &str,
    what: &str,
    scope: &str,
    limit: Option<u64>,
    measure: &Measure,
    scale: Scale,
) -> Option<Finding> {
    let limit = limit?;
    let mut total = 0;
    let mut crossed_at = None;
    for s in statements.iter().filter(|s| s.status == Status::Ok && !s.rolled_back) {
        let Some(measured) = measure(s) else {
            return Some(unchecked(rule, s.index, &format!("{what}{scope}"), limit));
        };
        total += measured;
        if scale.of(total) > limit && crossed_at.is_none() {
            crossed_at = Some(s.index);
        }
    }
    let at = crossed_at?;
    let message = format!("{} {what}{scope} over the plan, over the limit of {limit}", scale.describe(total));
    Some(finding(rule, at, message, scale.of(total), limit))
}

/// How measured row counts relate to the source: 1 for a whole source, 100 / percent for a sample.
#[derive(Clone, Copy)]
struct Scale(f64);

impl Scale {
    fn of(self, measured: u64) -> u64 {
        (measured as f64 * self.0).round() as u64
    }

    /// `1200` for a whole source; `about 24000 (estimated from 1200 measured on a sample)` for a sample.
    fn describe(self, measured: u64) -> String {
        if self.0 == 1.0 {
            return measured.to_string();
        }
        format!("about {} (estimated from {measured} measured on a sample)", self.of(measured))
    }
}

fn finding(rule: &str, statement: usize, message: String, measured: u64, limit: u64) -> Finding {
    Finding {
        rule: rule.to_owned(),
        severity: Severity::Error,
        statement: Some(statement),
        message,
        measured: Some(measured),
        limit: Some(limit),
        hint: None,
        found_by: FoundBy::Measured,
    }
}

/// The sum of a count over a statement's effects; `None` when one of them is unknown.
fn sum(s: &StatementReport, field: fn(&crate::report::TableEffect) -> Option<u64>) -> Option<u64> {
    s.table_effects.iter().map(field).sum()
}

/// A limit that cannot be checked because the number is unknown: an error, as the number could be anything.
fn unchecked(rule: &str, statement: usize, what: &str, limit: u64) -> Finding {
    Finding {
        rule: rule.to_owned(),
        severity: Severity::Error,
        statement: Some(statement),
        message: format!(
            "{what}: unknown, as the shadow has no rows for the table, so the limit of {limit} cannot be checked; \
             learn production's count with --sample, --snapshot or --with-data"
        ),
        measured: None,
        limit: Some(limit),
        hint: None,
        found_by: FoundBy::Measured,
    }
}

/// Every table a statement changed or dropped, in order of first appearance.
fn tables_touched(statements: &[StatementReport]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for s in statements {
        let effects = s.table_effects.iter().map(|e| &e.table);
        let dropped = s.dropped_objects.iter().filter(|o| o.object_type == "table").map(|o| &o.identity);
        for name in effects.chain(dropped) {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}
