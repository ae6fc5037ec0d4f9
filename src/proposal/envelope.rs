//! The approved envelope: what an apply may do, read from the approved report, and the check of what the apply
//! measured on the target against it.
//!
//! Per table, the rows inserted, updated and deleted (truncated rows, and the rows of a dropped table, count as
//! deleted) by the statements that were not rolled back: the report's estimate for production where it has one (a
//! sample, a profile, synthesized rows; the envelope then says `estimated`), else what was measured. A count nobody
//! could know (no rows loaded for the table, no estimate) is `null`: such a table has no envelope, so an apply that
//! changes rows of that kind there is refused (unknown is never zero, and never unlimited either). The tolerance
//! (policy `apply.tolerance-factor`, `apply.tolerance-rows`; 1.5x plus 10 rows by default) is applied at apply time.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules::Rules;
use crate::plan::Plan;
use crate::report::Report;

/// What an apply may do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Envelope {
    /// Rows per table, by `schema.table`.
    pub tables: BTreeMap<String, TableEnvelope>,
    /// Every object the report listed as dropped (by the statement or a CASCADE), as `type identity`.
    pub dropped: Vec<String>,
    /// The statements (1-based) that cannot run inside a transaction (`CREATE INDEX CONCURRENTLY`, `VACUUM`, ...):
    /// an apply cannot guard them, so it refuses them unless the approval flagged them unguarded.
    pub unguarded: Vec<usize>,
    /// How the figures were had: `measured` on the shadow's rows, or `estimated` (some are the report's estimates
    /// for production: from a sample, a profile or synthesized rows).
    pub basis: String,
    /// True when the plan is nondeterministic (the report's `plan.nondeterministic`): the figures are a snapshot of
    /// one run, and production may differ when it is applied.
    #[serde(default)]
    pub snapshot: bool,
}

/// The approved rows of one table: `null` where the shadow could not know the count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TableEnvelope {
    /// Rows inserted.
    pub inserted: Option<u64>,
    /// Rows updated.
    pub updated: Option<u64>,
    /// Rows deleted or truncated, and the rows of the table if it was dropped.
    pub deleted: Option<u64>,
}

/// Rows an apply changed on the target, per table, and the objects it dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Counts {
    /// Rows per table, by `schema.table` (only tables whose rows changed).
    pub tables: BTreeMap<String, TableCount>,
    /// Objects the plan dropped, as `type identity`.
    pub dropped: Vec<String>,
}

/// Rows changed in one table of the target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TableCount {
    /// Rows inserted.
    pub inserted: u64,
    /// Rows updated.
    pub updated: u64,
    /// Rows deleted, truncated, or held by the table when it was dropped.
    pub deleted: u64,
}

impl Envelope {
    /// The envelope of `report`, the dry-run of `plan`.
    pub fn of(report: &Report, plan: &Plan) -> Envelope {
        let add = |sum: &mut Option<u64>, n: Option<u64>| *sum = sum.zip(n).map(|(a, b)| a + b);
        let blank = || TableEnvelope { inserted: Some(0), updated: Some(0), deleted: Some(0) };
        let mut tables: BTreeMap<String, TableEnvelope> = BTreeMap::new();
        let mut dropped = Vec::new();
        let mut estimated = false;
        for statement in report.statements.iter().filter(|s| !s.rolled_back) {
            for effect in &statement.table_effects {
                let entry = tables.entry(effect.table.clone()).or_insert_with(blank);
                add(&mut entry.inserted, Some(effect.inserted));
                // Production's estimate where the report has one (a sample, a profile, synthesized rows), else
                // what was measured; a count the estimate does not cover is the measured one.
                estimated |= effect.estimated.is_some();
                add(&mut entry.updated, effect.production_updated());
                add(&mut entry.deleted, effect.production_destroyed());
            }
            for object in &statement.dropped_objects {
                dropped.push(format!("{} {}", object.object_type, object.identity));
                if object.object_type == "table" {
                    // The rows a dropped table held are destroyed: they count as deleted.
                    estimated |= object.estimated.is_some();
                    let deleted = &mut tables.entry(object.identity.clone()).or_insert_with(blank).deleted;
                    add(deleted, object.production_rows());
                }
            }
        }
        dropped.sort();
        dropped.dedup();
        let unguarded = plan
            .statements
            .iter()
            .enumerate()
            .filter(|(_, s)| crate::measure::needs_own_transaction(&s.raw.text))
            .map(|(i, _)| i + 1)
            .collect();
        let basis = if estimated { "estimated" } else { "measured" }.to_owned();
        Envelope { tables, dropped, unguarded, basis, snapshot: report.plan.nondeterministic }
    }

    /// Checks `counts`, measured on the target, against this envelope with `rules`' tolerance. The first breach,
    /// in words ("public.orders: 41,872 rows deleted, approved about 90"), or `None` when everything is inside.
    pub fn breach(&self, counts: &Counts, rules: &Rules) -> Option<String> {
        let approx = if self.basis == "estimated" { "about " } else { "" };
        for (table, count) in &counts.tables {
            let approved = self.tables.get(table).cloned().unwrap_or(TableEnvelope {
                inserted: Some(0),
                updated: Some(0),
                deleted: Some(0),
            });
            for (what, done, allowed) in [
                ("inserted", count.inserted, approved.inserted),
                ("updated", count.updated, approved.updated),
                ("deleted", count.deleted, approved.deleted),
            ] {
                if done == 0 {
                    continue;
                }
                let Some(allowed) = allowed else {
                    return Some(format!(
                        "{table}: {} rows {what}, approved: unknown (the shadow had no rows of this table, so \
                         nothing bounds it)",
                        crate::text::thousands(done)
                    ));
                };
                if done > rules.limit(allowed) {
                    let snapshot = match self.snapshot {
                        true => "; the approved figure was a snapshot: the plan depends on when it runs",
                        false => "",
                    };
                    return Some(format!(
                        "{table}: {} rows {what}, approved {approx}{} (at most {} with the tolerance{snapshot})",
                        crate::text::thousands(done),
                        crate::text::thousands(allowed),
                        crate::text::thousands(rules.limit(allowed))
                    ));
                }
            }
        }
        let unlisted: Vec<&String> = counts.dropped.iter().filter(|d| !self.dropped.contains(d)).collect();
        if let Some(first) = unlisted.first() {
            let more = if unlisted.len() > 1 { format!(" (and {} more)", unlisted.len() - 1) } else { String::new() };
            return Some(format!("dropped {first}{more}, which the approved report did not list"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(deleted: Option<u64>, basis: &str) -> Envelope {
        let mut tables = BTreeMap::new();
        tables.insert("public.orders".to_owned(), TableEnvelope { inserted: Some(0), updated: Some(0), deleted });
        let dropped = vec!["table public.old".into()];
        Envelope { tables, dropped, unguarded: Vec::new(), basis: basis.into(), snapshot: false }
    }

    fn counts(table: &str, deleted: u64) -> Counts {
        let mut tables = BTreeMap::new();
        tables.insert(table.to_owned(), TableCount { inserted: 0, updated: 0, deleted });
        Counts { tables, dropped: Vec::new() }
    }

    #[test]
    fn the_tolerance_bounds_each_table() {
        let rules = Rules::default();
        let approved = envelope(Some(90), "estimated");
        assert_eq!(approved.breach(&counts("public.orders", 145), &rules), None);
        let breach = approved.breach(&counts("public.orders", 41872), &rules).expect("a breach");
        assert_eq!(breach, "public.orders: 41,872 rows deleted, approved about 90 (at most 145 with the tolerance)");
        // A table the dry-run did not touch gets the tolerance's rows only.
        assert_eq!(approved.breach(&counts("public.items", 10), &rules), None);
        assert!(approved.breach(&counts("public.items", 11), &rules).is_some());
    }

    #[test]
    fn an_unknown_approved_count_bounds_nothing_so_it_refuses() {
        let approved = envelope(None, "measured");
        let breach = approved.breach(&counts("public.orders", 1), &Rules::default()).expect("a breach");
        assert!(breach.contains("approved: unknown"), "{breach}");
        assert_eq!(approved.breach(&counts("public.orders", 0), &Rules::default()), None);
    }

    #[test]
    fn a_drop_the_report_did_not_list_is_a_breach() {
        let approved = envelope(Some(1), "measured");
        let mut done = Counts { dropped: vec!["table public.old".into()], ..Counts::default() };
        assert_eq!(approved.breach(&done, &Rules::default()), None);
        done.dropped.push("table public.customers".into());
        let breach = approved.breach(&done, &Rules::default()).expect("a breach");
        assert!(breach.contains("table public.customers"), "{breach}");
    }
}
