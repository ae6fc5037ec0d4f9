//! Which tables get how many rows, and in which order: the budget shared out by production size with a floor per
//! table (never more rows than production has: every scale is at least 1), then the tables ordered parents first.
//! A foreign key that closes a cycle (a self-reference among them) is deferred: its columns are filled once every
//! table has rows.

use std::collections::{BTreeMap, BTreeSet};

use super::catalog::{Catalog, Oid, Table};
use crate::profile::{Profile, TableProfile};
use crate::report::EmptyTable;

/// Rows every table with rows in production gets at least (fewer when production has fewer).
pub(super) const FLOOR: u64 = 10;

/// A table to fill.
#[derive(Debug)]
pub(super) struct Unit<'a> {
    pub(super) table: &'a Table,
    pub(super) profile: &'a TableProfile,
    pub(super) production_rows: f64,
    pub(super) rows: u64,
    /// Indexes into `table.foreign_keys` of the keys filled after every table.
    pub(super) deferred: BTreeSet<usize>,
}

/// What to fill, in order, and what is left empty.
#[derive(Debug)]
pub(super) struct FillPlan<'a> {
    pub(super) units: Vec<Unit<'a>>,
    pub(super) empty: Vec<EmptyTable>,
    pub(super) not_in_schema: Vec<String>,
}

/// Plans the fill of `catalog`'s tables from `profile` with `budget` rows.
pub(super) fn plan<'a>(catalog: &'a Catalog, profile: &'a Profile, budget: u64) -> FillPlan<'a> {
    let mut empty = Vec::new();
    let mut candidates = Vec::new();
    for table in &catalog.tables {
        let Some(found) = profile.table(&table.schema, &table.name) else {
            empty.push(left_empty(table, "not in the profile", false));
            continue;
        };
        match found.rows(profile) {
            None => empty.push(left_empty(table, "never analyzed: the profile has no row estimate for it", false)),
            Some(rows) if rows < 0.5 => empty.push(left_empty(table, "empty in production", true)),
            Some(rows) => candidates.push((table, found, rows)),
        }
    }
    let weights: Vec<f64> = candidates.iter().map(|c| c.2).collect();
    let shares = shares(&weights, budget);
    let units: Vec<Unit> = candidates
        .into_iter()
        .zip(shares)
        .map(|((table, profile, production_rows), rows)| Unit {
            table,
            profile,
            production_rows,
            rows,
            deferred: BTreeSet::new(),
        })
        .collect();
    let known: BTreeSet<(&str, &str)> = catalog
        .tables
        .iter()
        .map(|t| (t.schema.as_str(), t.name.as_str()))
        .chain(catalog.leaves.values().map(|(s, n, _)| (s.as_str(), n.as_str())))
        .collect();
    let not_in_schema = profile
        .tables
        .iter()
        .filter(|t| !known.contains(&(t.schema.as_str(), t.name.as_str())))
        .map(|t| format!("{}.{}", t.schema, t.name))
        .collect();
    FillPlan { units: order(units, catalog), empty, not_in_schema }
}

fn left_empty(table: &Table, reason: &str, empty_in_production: bool) -> EmptyTable {
    EmptyTable { table: table.qualified.clone(), reason: reason.to_owned(), empty_in_production }
}

/// Shares `budget` out by `weights` (production rows): each at least [`FLOOR`], at most its weight (rounded up),
/// what a capped table leaves going to the others.
pub(super) fn shares(weights: &[f64], budget: u64) -> Vec<u64> {
    let caps: Vec<u64> = weights.iter().map(|w| w.ceil().max(1.0) as u64).collect();
    let mut shares: Vec<u64> = caps.iter().map(|c| FLOOR.min(*c)).collect();
    let mut open: Vec<usize> = (0..weights.len()).filter(|&i| shares[i] < caps[i]).collect();
    loop {
        let given: u64 = shares.iter().sum();
        let left = budget.saturating_sub(given);
        let weight: f64 = open.iter().map(|&i| weights[i]).sum();
        if left == 0 || open.is_empty() || weight <= 0.0 {
            return shares;
        }
        let mut moved = 0;
        for &i in &open {
            let more = ((left as f64) * weights[i] / weight).floor() as u64;
            let next = (shares[i] + more).min(caps[i]);
            moved += next - shares[i];
            shares[i] = next;
        }
        open.retain(|&i| shares[i] < caps[i]);
        if moved == 0 {
            return shares;
        }
    }
}

/// Orders `units` parents first (by name among equals, so the order is the same every time), deferring the
/// foreign keys that close a cycle.
fn order<'a>(mut units: Vec<Unit<'a>>, catalog: &Catalog) -> Vec<Unit<'a>> {
    let present: BTreeSet<Oid> = units.iter().map(|u| u.table.oid).collect();
    // waits[i]: the tables unit i waits for, with the foreign keys that make it wait.
    let mut waits: Vec<BTreeMap<Oid, Vec<usize>>> = units
        .iter_mut()
        .map(|u| {
            let mut by_parent: BTreeMap<Oid, Vec<usize>> = BTreeMap::new();
            for (k, key) in u.table.foreign_keys.iter().enumerate() {
                for parent in catalog.leaves_of(key.parent).into_iter().filter(|p| present.contains(p)) {
                    if parent == u.table.oid {
                        // A self-reference: the table's own rows are its parents.
                        u.deferred.insert(k);
                    } else {
                        by_parent.entry(parent).or_default().push(k);
                    }
                }
            }
            by_parent
        })
        .collect();
    let mut done: BTreeSet<Oid> = BTreeSet::new();
    let mut ordered = Vec::with_capacity(units.len());
    let mut remaining: Vec<usize> = (0..units.len()).collect();
    while !remaining.is_empty() {
        let ready = remaining.iter().position(|&i| waits[i].keys().all(|p| done.contains(p)));
        let at = match ready {
            Some(at) => at,
            None => {
                // A cycle: the first remaining table goes next, its keys to unfilled tables deferred.
                let i = remaining[0];
                for (parent, keys) in std::mem::take(&mut waits[i]) {
                    if done.contains(&parent) {
                        waits[i].insert(parent, keys);
                    } else {
                        units[i].deferred.extend(keys);
                    }
                }
                0
            }
        };
        let i = remaining.remove(at);
        done.insert(units[i].table.oid);
        ordered.push(i);
    }
    let mut slots: Vec<Option<Unit>> = units.into_iter().map(Some).collect();
    ordered.into_iter().map(|i| slots[i].take().expect("each unit is placed once")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_follows_production_size_with_a_floor_and_a_cap() {
        let shares = shares(&[1_000_000.0, 10_000.0, 3.0, 500.0], 10_000);
        assert_eq!(shares[2], 3, "never more rows than production: {shares:?}");
        assert!(shares[1] >= FLOOR && shares[3] >= FLOOR, "{shares:?}");
        assert!(shares[0] > 50 * shares[1], "{shares:?}");
        let total: u64 = shares.iter().sum();
        assert!(total <= 10_000 && total > 9_900, "{total}");
        assert_eq!(super::shares(&[40.0, 60.0], 1_000), [40, 60], "a small database is generated whole");
    }
}
