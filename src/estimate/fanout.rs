//! Foreign-key fan-out: how many child rows a DELETE of parent rows reaches through one foreign key, from the
//! profile's statistics of the child's referencing column.
//!
//! On average a parent row has the child's non-null referencing rows over the parent's rows; that is the fan-out
//! for parents picked by any condition the child's statistics cannot tell apart. When the DELETE fixes the
//! referenced key to constants (`WHERE id = 42`, `WHERE id IN (...)`), the child column's own frequency of those
//! values is used instead (its most-common values show a skewed parent). The result is capped at the child's rows.

use super::keys::ForeignKey;
use super::selectivity;
use crate::profile::TableProfile;

/// The child rows `parents` deleted parent rows reach through `key`, and how that was worked out. `keys` are the
/// referenced columns the DELETE fixed to constants (only for the first step of a path).
pub(super) fn reached(
    key: &ForeignKey,
    parent_rows: f64,
    child: (&TableProfile, f64),
    parents: f64,
    keys: &[(String, Vec<String>)],
) -> (f64, String) {
    let (child_table, child_rows) = child;
    let column = key.child_columns.first().map(String::as_str).unwrap_or_default();
    let stats = child_table.column(column).and_then(|c| c.stats.as_ref());
    // The DELETE fixed the referenced column to values: the child column's frequency of them.
    if let ([parent_column], Some(stats)) = (key.parent_columns.as_slice(), stats) {
        if let Some((_, values)) = keys.iter().find(|(c, _)| c == parent_column) {
            let mut parts = Vec::new();
            let f: f64 = values.iter().map(|v| selectivity::equality(column, v, stats, child_rows, &mut parts)).sum();
            let rows = (f.min(1.0) * child_rows).min(child_rows);
            let method = format!(
                "{} of {} per referenced value, through {} ({})",
                selectivity::percent(f),
                key.child,
                key.identity,
                parts.join(", ")
            );
            return (rows, method);
        }
    }
    let null_frac = stats.map_or(0.0, |s| s.null_frac);
    let referencing = child_rows * (1.0 - null_frac);
    let fanout = if parent_rows > 0.0 { referencing / parent_rows } else { 0.0 };
    let rows = (parents * fanout).min(child_rows);
    let mut method = format!(
        "fan-out {fanout:.2} per parent through {} ({} referencing rows of {} over {} rows of {}), × {} parents",
        key.identity,
        crate::report::thousands(referencing.round() as u64),
        key.child,
        crate::report::thousands(parent_rows.round() as u64),
        key.parent,
        crate::report::thousands(parents.round() as u64),
    );
    if stats.is_none() {
        method.push_str(&format!("; no statistics of {column}: every row of {} counted as referencing", key.child));
    }
    (rows, method)
}
