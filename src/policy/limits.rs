//! Limits: numbers the plan may not exceed in production, in total and per table (the rewritten and locked tables'
//! sizes are in `size.rs`).

use serde::Deserialize;

use super::Glob;
use crate::report::{about, EstimateBasis, Finding, FoundBy, Severity, StatementReport, Status, TableEffect};

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
    pub(crate) max_bytes_rewritten: Option<u64>,
    pub(crate) max_bytes_locked_exclusive: Option<u64>,
}

/// A number for a limit: how many, and when it is an estimate, what it rests on.
#[derive(Clone, Copy, Default)]
struct Count {
    n: u64,
    estimated: Option<EstimateBasis>,
}

impl Count {
    fn add(self, other: Count) -> Count {
        Count { n: self.n + other.n, estimated: self.estimated.or(other.estimated) }
    }

    /// `1200`, or `about 2,700 rows (estimated from the profile)`.
    fn describe(self) -> String {
        match self.estimated {
            None => self.n.to_string(),
            Some(basis) => about(self.n, basis),
        }
    }
}

/// A statement's number for a limit; `None` when the shadow cannot know it and nothing estimates it.
type Measure<'a> = Box<dyn Fn(&StatementReport) -> Option<Count> + 'a>;

/// One finding per limit exceeded, pointing at the statement where the running total crossed it. Row counts are
/// production's: a table effect's estimate where it has one ([`TableEffect::production_deleted`]), its measured
/// count where not.
pub(super) fn check(limits: &Limits, statements: &[StatementReport]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let t = &limits.total;
    let totals: [(&str, &str, Option<u64>, Measure); 5] = [
        ("max-rows-deleted", "rows deleted", t.max_rows_deleted, Box::new(|s| sum(s, |_| true, deleted))),
        ("max-rows-updated", "rows updated", t.max_rows_updated, Box::new(|s| sum(s, |_| true, updated))),
        ("max-rows-destroyed", "rows destroyed", t.max_rows_destroyed, Box::new(|s| destroyed(s, None))),
        (
            "max-cascade-deleted",
            "rows deleted by cascades and triggers",
            limits.max_cascade_deleted,
            Box::new(|s| sum(s, |e| !e.direct, deleted)),
        ),
        (
            "max-objects-dropped",
            "objects dropped",
            limits.max_objects_dropped,
            Box::new(|s| Some(Count { n: s.dropped_objects.len() as u64, estimated: None })),
        ),
    ];
    for (rule, what, limit, measure) in &totals {
        findings.extend(crossing(statements, rule, what, "", *limit, measure));
    }
    for (glob, t) in &limits.tables {
        for table in tables_touched(statements).into_iter().filter(|name| glob.matches(name)) {
            let of = |field: fn(&TableEffect) -> Option<Count>| -> Measure {
                let table = table.clone();
                Box::new(move |s| sum(s, |e| e.table == table, field))
            };
            let in_table: Measure = {
                let table = table.clone();
                Box::new(move |s| destroyed(s, Some(&table)))
            };
            let per_table: [(&str, &str, Option<u64>, Measure); 3] = [
                ("max-rows-deleted", "rows deleted", t.max_rows_deleted, of(deleted)),
                ("max-rows-updated", "rows updated", t.max_rows_updated, of(updated)),
                ("max-rows-destroyed", "rows destroyed", t.max_rows_destroyed, in_table),
            ];
            for (rule, what, limit, measure) in &per_table {
                findings.extend(crossing(statements, rule, what, &format!(" in {table}"), *limit, measure));
            }
        }
    }
    findings.extend(super::size::check(limits, statements));
    findings
}

/// Rows deleted, as a count for limits.
fn deleted(e: &TableEffect) -> Option<Count> {
    production(e, e.production_deleted(), e.estimated.as_ref().and_then(|x| x.deleted))
}

/// Rows updated, as a count for limits.
fn updated(e: &TableEffect) -> Option<Count> {
    production(e, e.production_updated(), e.estimated.as_ref().and_then(|x| x.updated))
}

fn production(e: &TableEffect, n: Option<u64>, estimate: Option<u64>) -> Option<Count> {
    let estimated = estimate.and(e.estimated.as_ref().map(|x| x.basis));
    Some(Count { n: n?, estimated })
}

/// The sum of a count over a statement's effects that `which` selects; `None` when one of them is unknown.
fn sum(
    s: &StatementReport,
    which: impl Fn(&TableEffect) -> bool,
    field: fn(&TableEffect) -> Option<Count>,
) -> Option<Count> {
    s.table_effects.iter().filter(|e| which(e)).map(field).try_fold(Count::default(), |a, b| Some(a.add(b?)))
}

/// Rows deleted, truncated and held by dropped tables in production (in `table` only, when given); `None` when
/// one of them is unknown.
fn destroyed(s: &StatementReport, table: Option<&str>) -> Option<Count> {
    if s.measure_error.is_some() {
        return None;
    }
    let mut total = Count::default();
    for e in s.table_effects.iter().filter(|e| table.is_none_or(|t| e.table == t)) {
        let estimated = e.estimated.as_ref().filter(|x| x.deleted.is_some() || x.truncated.is_some());
        total = total.add(Count { n: e.production_destroyed()?, estimated: estimated.map(|x| x.basis) });
    }
    let dropped = s.dropped_objects.iter().filter(|o| o.object_type == "table");
    for o in dropped.filter(|o| table.is_none_or(|t| o.identity == t)) {
        total = total.add(Count { n: o.production_rows()?, estimated: o.estimated.as_ref().map(|x| x.basis) });
    }
    Some(total)
}

/// A finding when the plan's total of `measure` exceeds `limit`, at the statement where the running total crossed it.
fn crossing(
    statements: &[StatementReport],
    rule: &str,
    what: &str,
    scope: &str,
    limit: Option<u64>,
    measure: &Measure,
) -> Option<Finding> {
    let limit = limit?;
    let mut total = Count::default();
    let mut crossed_at = None;
    for s in statements.iter().filter(|s| s.status == Status::Ok && !s.rolled_back) {
        let Some(measured) = measure(s) else {
            return Some(unchecked(rule, s.index, &format!("{what}{scope}"), limit));
        };
        total = total.add(measured);
        if total.n > limit && crossed_at.is_none() {
            crossed_at = Some(s.index);
        }
    }
    let at = crossed_at?;
    let message = format!("{} {what}{scope} over the plan, over the limit of {limit}", total.describe());
    Some(finding(rule, at, message, total.n, limit))
}

pub(super) fn finding(rule: &str, statement: usize, message: String, measured: u64, limit: u64) -> Finding {
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

/// A limit that cannot be checked because the number is unknown: an error, as the number could be anything.
pub(super) fn unchecked(rule: &str, statement: usize, what: &str, limit: u64) -> Finding {
    Finding {
        rule: rule.to_owned(),
        severity: Severity::Error,
        statement: Some(statement),
        message: format!(
            "{what}: unknown, as the shadow has no rows for the table, so the limit of {limit} cannot be checked; \
             learn production's count with --profile, --sample, --snapshot or --with-data"
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
