//! Estimates for production: counts the shadow did not measure on production's rows, each saying that it is an
//! estimate, what it rests on (its [`EstimateBasis`]) and how it was made (its `method`, a sentence).
//!
//! Three bases make them: a sample of the source's rows (`--sample`), whose measured counts are scaled per table; a
//! profile of production (`--profile`), whose sizes and statistics give the counts of a schema-only shadow; and rows
//! synthesized from a profile, whose measured counts are scaled per table like a sample's. The constructors here are
//! the one way each is made: [`EffectEstimate::scaled`] and [`scale_measured`] for the scaled bases,
//! [`EffectEstimate::profile`] for a profile's.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DroppedObject, StatementReport, Status, TableEffect};
use crate::plan::StatementKind;
pub use crate::text::thousands;

/// What an estimate rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EstimateBasis {
    /// Counts measured on a sample of the source's rows (`--sample`), scaled by each table's sampled fraction; and the
    /// source's table sizes, read when the sample was taken.
    Sample,
    /// The profile of production (`--profile`): its row counts, and selectivities and fan-outs from its statistics.
    Profile,
    /// Counts measured on rows synthesized from the profile, scaled by each table's synthesized fraction.
    Synthetic,
}

impl EstimateBasis {
    /// `sample`, `profile` or `synthetic`.
    pub fn as_str(self) -> &'static str {
        match self {
            EstimateBasis::Sample => "sample",
            EstimateBasis::Profile => "profile",
            EstimateBasis::Synthetic => "synthetic",
        }
    }

    /// `estimated from the profile`, as findings and renderers say it.
    pub fn label(self) -> &'static str {
        match self {
            EstimateBasis::Sample => "estimated from a sample",
            EstimateBasis::Profile => "estimated from the profile",
            EstimateBasis::Synthetic => "estimated from synthesized rows",
        }
    }
}

/// What a statement is estimated to do to one table in production. A count the estimate does not cover is `null`:
/// the table effect's measured count then stands (and when that is unknown too, the count is unknown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EffectEstimate {
    /// Rows estimated updated.
    pub updated: Option<u64>,
    /// Rows estimated deleted.
    pub deleted: Option<u64>,
    /// Rows estimated removed by TRUNCATE.
    pub truncated: Option<u64>,
    /// What the estimate rests on.
    pub basis: EstimateBasis,
    /// How it was made, in a sentence: `the table's rows (reltuples 48112 in the profile)`, `WHERE selectivity 0.8%
    /// from the profile's histogram of orders.created_at`, `measured 12 on the sample × 10.0 (...)`.
    pub method: String,
    /// For a scaled measurement (`sample`, `synthetic`): the factor the measured counts were multiplied by.
    pub scale: Option<f64>,
}

impl EffectEstimate {
    /// The measured counts of `effect` times `scale`, on `basis` (`sample` or `synthetic`); `why` says where the
    /// scale comes from (`48112 rows in production / 4811 in the shadow`). `None` when the effect has no count to
    /// scale (all of them unknown).
    pub fn scaled(effect: &TableEffect, scale: f64, basis: EstimateBasis, why: &str) -> Option<EffectEstimate> {
        let times = |n: Option<u64>| n.map(|n| (n as f64 * scale).round() as u64);
        let (updated, deleted, truncated) = (times(effect.updated), times(effect.deleted), times(effect.truncated));
        if updated.is_none() && deleted.is_none() && truncated.is_none() {
            return None;
        }
        let measured: Vec<String> =
            [(effect.updated, "updated"), (effect.deleted, "deleted"), (effect.truncated, "truncated")]
                .into_iter()
                .filter_map(|(n, what)| n.filter(|n| *n > 0).map(|n| format!("{n} {what}")))
                .collect();
        let measured = if measured.is_empty() { "0".to_owned() } else { measured.join(", ") };
        let on = match basis {
            EstimateBasis::Synthetic => "synthesized rows",
            _ => "the sample",
        };
        Some(EffectEstimate {
            updated,
            deleted,
            truncated,
            basis,
            method: format!("measured {measured} on {on} × {scale:.2} ({why})"),
            scale: Some(scale),
        })
    }

    /// An estimate from the profile: `counts` as (updated, deleted, truncated), and how they were made.
    pub fn profile(counts: (Option<u64>, Option<u64>, Option<u64>), method: impl Into<String>) -> EffectEstimate {
        let (updated, deleted, truncated) = counts;
        EffectEstimate {
            updated,
            deleted,
            truncated,
            basis: EstimateBasis::Profile,
            method: method.into(),
            scale: None,
        }
    }
}

/// The rows a dropped table held in production, estimated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RowsEstimate {
    /// The rows.
    pub rows: u64,
    /// What the estimate rests on.
    pub basis: EstimateBasis,
    /// How it was made, in a sentence.
    pub method: String,
}

/// A table's size in production, from the profile or, on a sample, from the source when it was sampled: what a lock
/// or a rewrite on the shadow's (empty, synthetic or sampled) table means there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProductionSize {
    /// Its rows (`reltuples`, or counted where the source never analyzed it); `null` when the profile does not know
    /// them.
    pub rows: Option<u64>,
    /// On a sample: whether `rows` were counted in the source (it never analyzed the table) rather than read from its
    /// statistics (`reltuples`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rows_counted: bool,
    /// Its heap and TOAST bytes: what a rewrite copies.
    pub bytes: u64,
    /// Its indexes' bytes: what a rewrite rebuilds.
    pub index_bytes: u64,
    /// What the size rests on: `profile`, or `sample` (the source's size, read when the sample was taken).
    pub basis: EstimateBasis,
}

/// How long a rewrite would take in production: its bytes at a rate measured on the shadow. An estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DurationEstimate {
    /// Seconds.
    pub seconds: f64,
    /// The rate it assumes, in bytes per second.
    pub bytes_per_second: f64,
    /// How it was made, in a sentence: the bytes, the rate, and where the rate was measured.
    pub method: String,
}

/// One table's scale, for the scaled bases (`sample`, `synthetic`): production's rows over the rows the shadow held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TableScale {
    /// `schema.table`, quoted where Postgres would quote it.
    pub table: String,
    /// The factor its measured counts are multiplied by.
    pub scale: f64,
    /// Its rows in production, as the factor's numerator took them.
    pub production_rows: u64,
    /// Its rows in the shadow, as the factor's denominator took them.
    pub shadow_rows: u64,
    /// Where the factor comes from, in a sentence.
    pub method: String,
}

/// The plan's row totals estimated for production. Each comes from the table effects' estimates where they have
/// one, and their measured counts where not (those the shadow measured on production's own rows, or on rows it
/// created); `null` when some count behind it is neither measured nor estimated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Estimate {
    /// What the run's estimates rest on: `sample` when the shadow holds a sample of the source's rows, `synthetic`
    /// when it holds rows synthesized from the profile, else `profile`. Each table effect names its own.
    pub basis: EstimateBasis,
    /// Estimated rows updated.
    pub rows_updated: Option<u64>,
    /// Estimated rows deleted.
    pub rows_deleted: Option<u64>,
    /// Estimated rows deleted, truncated or held by dropped tables.
    pub rows_destroyed: Option<u64>,
    /// For the scaled bases: each table's scale, by table.
    pub tables: Vec<TableScale>,
    /// Tables whose counts are neither measured nor estimated (no profile entry, or no size in it): the totals above
    /// are then `null`.
    pub unestimated: Vec<String>,
}

impl Estimate {
    /// The totals over `statements` (their effects' estimates, else measured counts), on `basis`, with `tables`'
    /// scales. `None` when nothing in the statements is an estimate.
    pub fn of(statements: &[StatementReport], basis: EstimateBasis, tables: Vec<TableScale>) -> Option<Estimate> {
        let counted = statements.iter().filter(|s| !s.rolled_back);
        let any = counted.clone().any(|s| {
            s.table_effects.iter().any(|e| e.estimated.is_some())
                || s.dropped_objects.iter().any(|o| o.estimated.is_some())
        });
        if !any {
            return None;
        }
        let mut unestimated: Vec<String> = Vec::new();
        let (mut updated, mut deleted, mut destroyed) = (Some(0u64), Some(0u64), Some(0u64));
        let add = |total: &mut Option<u64>, n: Option<u64>| *total = total.zip(n).map(|(a, b)| a + b);
        for s in counted {
            for e in &s.table_effects {
                add(&mut updated, e.production_updated());
                add(&mut deleted, e.production_deleted());
                add(&mut destroyed, e.production_destroyed());
                if e.production_destroyed().is_none() || e.production_updated().is_none() {
                    unestimated.push(e.table.clone());
                }
            }
            for o in s.dropped_objects.iter().filter(|o| o.object_type == "table") {
                add(&mut destroyed, o.production_rows());
                if o.production_rows().is_none() {
                    unestimated.push(o.identity.clone());
                }
            }
            if s.measure_error.is_some() {
                (updated, deleted, destroyed) = (None, None, None);
            }
        }
        unestimated.sort();
        unestimated.dedup();
        Some(Estimate {
            basis,
            rows_updated: updated,
            rows_deleted: deleted,
            rows_destroyed: destroyed,
            tables,
            unestimated,
        })
    }
}

impl TableEffect {
    /// Rows updated in production: the estimate when there is one, else the measured count (`None`: unknown).
    pub fn production_updated(&self) -> Option<u64> {
        self.estimated.as_ref().and_then(|e| e.updated).or(self.updated)
    }

    /// Rows deleted in production: the estimate when there is one, else the measured count.
    pub fn production_deleted(&self) -> Option<u64> {
        self.estimated.as_ref().and_then(|e| e.deleted).or(self.deleted)
    }

    /// Rows truncated in production: the estimate when there is one, else the measured count.
    pub fn production_truncated(&self) -> Option<u64> {
        self.estimated.as_ref().and_then(|e| e.truncated).or(self.truncated)
    }

    /// Rows deleted and truncated in production; `None` when either is unknown.
    pub fn production_destroyed(&self) -> Option<u64> {
        Some(self.production_deleted()? + self.production_truncated()?)
    }
}

impl DroppedObject {
    /// For a table: the rows it held in production, the estimate when there is one, else the measured count.
    pub fn production_rows(&self) -> Option<u64> {
        self.estimated.as_ref().map(|e| e.rows).or(self.rows.filter(|_| self.rows_known))
    }
}

/// Scales the measured counts of `statements`' table effects and dropped tables by their table's scale in `scales`
/// (basis `sample` or `synthetic`), setting their `estimated`; tables without a scale keep their measured counts.
/// Returns the totals ([`Estimate::of`]).
pub fn scale_measured(
    statements: &mut [StatementReport],
    scales: Vec<TableScale>,
    basis: EstimateBasis,
) -> Option<Estimate> {
    let scale_of = |table: &str| scales.iter().find(|s| s.table == table);
    for s in statements.iter_mut() {
        unmatched_unknown(s, &scales);
        // An unknown count stays unknown: scaling what is known of it would read as an estimate of all of it.
        for e in s.table_effects.iter_mut().filter(|e| e.rows_known) {
            if let Some(scale) = scale_of(&e.table) {
                e.estimated = EffectEstimate::scaled(e, scale.scale, basis, &scale.method);
            }
        }
        for o in s.dropped_objects.iter_mut().filter(|o| o.object_type == "table" && o.rows_known) {
            if let (Some(scale), Some(rows)) = (scale_of(&o.identity), o.rows) {
                let n = (rows as f64 * scale.scale).round() as u64;
                let method = format!("{rows} rows in the shadow × {:.2} ({})", scale.scale, scale.method);
                o.estimated = Some(RowsEstimate { rows: n, basis, method });
            }
        }
    }
    Estimate::of(statements, basis, scales)
}

/// A DELETE or UPDATE that matched no row of a table the shadow holds only part of (a sample, synthetic rows) says
/// nothing of production: 0 of a sample's rows is not 0 of production's (`DELETE ... WHERE id = 4242` misses a 1%
/// sample that lacks that row). Its count there is unknown, never 0 — `unknown-row-count` says so. The statement's
/// targets are matched to the scaled tables by name, qualified or not; an ambiguous name is left alone.
fn unmatched_unknown(s: &mut StatementReport, scales: &[TableScale]) {
    let count_of = |e: &TableEffect| if s.kind == StatementKind::Delete { e.deleted } else { e.updated };
    if !matches!(s.kind, StatementKind::Delete | StatementKind::Update) || s.status != Status::Ok || s.rolled_back {
        return;
    }
    let mut unknown = Vec::new();
    for target in &s.targets {
        let Some(target) = crate::text::split_name(target) else { continue };
        let named = |t: &&TableScale| {
            let table = crate::text::split_name(&t.table).unwrap_or_default();
            table == target || (target.len() == 1 && table.last() == target.first())
        };
        let mut matching = scales.iter().filter(named);
        let (Some(scale), None) = (matching.next(), matching.next()) else { continue };
        let partial = scale.shadow_rows < scale.production_rows;
        let effect = s.table_effects.iter().find(|e| e.table == scale.table);
        if partial && effect.is_none_or(|e| count_of(e) == Some(0)) {
            unknown.push(scale.table.clone());
        }
    }
    for table in unknown {
        let at = match s.table_effects.iter().position(|e| e.table == table) {
            Some(at) => at,
            None => {
                s.table_effects.push(TableEffect::measured(table.clone(), (0, 0, 0, 0)));
                s.table_effects.len() - 1
            }
        };
        let effect = &mut s.table_effects[at];
        effect.direct = true;
        effect.rows_known = false;
        match s.kind {
            StatementKind::Delete => effect.deleted = None,
            _ => effect.updated = None,
        }
        s.rows_known = false;
        s.unknown_tables.push(table);
    }
    s.table_effects.sort_by(|a, b| a.table.cmp(&b.table));
    s.unknown_tables.sort();
    s.unknown_tables.dedup();
}

/// `about 2,700 rows (estimated from the profile)`: an estimate as findings quote it.
pub fn about(n: u64, basis: EstimateBasis) -> String {
    format!("about {} {} ({})", thousands(n), if n == 1 { "row" } else { "rows" }, basis.label())
}

/// A part of a production size: its rows, or its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizePart {
    Rows,
    Bytes,
}

/// What a part of a production size rests on, as findings and renderers say it after the number: production's from the
/// profile, or the source's when the sample was taken — its rows from its statistics (`reltuples`), or counted.
pub fn size_basis(size: &ProductionSize, part: SizePart) -> &'static str {
    match (size.basis, part, size.rows_counted) {
        (EstimateBasis::Sample, SizePart::Rows, false) => {
            "in the source, estimated from its statistics (reltuples) when the sample was taken"
        }
        (EstimateBasis::Sample, SizePart::Rows, true) => "in the source, counted when the sample was taken",
        (EstimateBasis::Sample, SizePart::Bytes, _) => "in the source, read when the sample was taken",
        (_, SizePart::Rows, _) => "in production, estimated from the profile",
        (_, SizePart::Bytes, _) => "in production, from the profile",
    }
}

/// A production size for people, each part with what it rests on ([`size_basis`]): `48M rows in production, estimated
/// from the profile; 12.0 GB in production, from the profile` (rounded; `unknown rows` when the profile lacks them).
pub fn size_label(size: &ProductionSize) -> String {
    let rows = match size.rows {
        Some(r) => format!("{} rows {}", short(r as f64), size_basis(size, SizePart::Rows)),
        None => "unknown rows".to_owned(),
    };
    format!("{rows}; {} {}", bytes_label(size.bytes + size.index_bytes), size_basis(size, SizePart::Bytes))
}

/// `48M`, `2.7K`, `950`.
fn short(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.1}G", n / 1e9).replace(".0G", "G"),
        n if n >= 1e6 => format!("{:.1}M", n / 1e6).replace(".0M", "M"),
        n if n >= 1e4 => format!("{:.0}K", n / 1e3),
        n => thousands(n.round() as u64),
    }
}

/// `12 GB`, `340 MB`, `8 kB`, in PostgreSQL's units (`pg_size_pretty`'s powers of 1024).
pub fn bytes_label(bytes: u64) -> String {
    let b = bytes as f64;
    match b {
        b if b >= 1024f64.powi(4) => format!("{:.1} TB", b / 1024f64.powi(4)),
        b if b >= 1024f64.powi(3) => format!("{:.1} GB", b / 1024f64.powi(3)),
        b if b >= 1024f64.powi(2) => format!("{:.0} MB", b / 1024f64.powi(2)),
        b if b >= 1024.0 => format!("{:.0} kB", b / 1024.0),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaled_estimate_says_what_it_measured_and_by_how_much() {
        let effect = TableEffect::measured("public.orders", (0, 0, 12, 0));
        let e =
            EffectEstimate::scaled(&effect, 10.0, EstimateBasis::Sample, "480 rows in production / 48 in the shadow")
                .expect("scaled");
        assert_eq!((e.updated, e.deleted, e.truncated), (Some(0), Some(120), Some(0)));
        assert_eq!(e.method, "measured 12 deleted on the sample × 10.00 (480 rows in production / 48 in the shadow)");
        let unknown = TableEffect { updated: None, deleted: None, truncated: None, ..effect };
        assert_eq!(EffectEstimate::scaled(&unknown, 10.0, EstimateBasis::Sample, ""), None);
    }

    #[test]
    fn an_estimated_effect_reads_about_n_and_an_unknown_one_unknown() {
        let mut effect =
            TableEffect { deleted: None, rows_known: false, ..TableEffect::measured("public.t", (0, 0, 0, 0)) };
        assert_eq!(super::super::production_counts(&effect), ["unknown deleted"]);
        effect.estimated = Some(EffectEstimate::profile((None, Some(2700), None), "the table's rows"));
        assert_eq!(super::super::production_counts(&effect), ["about 2,700 deleted (estimated)"]);
    }

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(about(2700, EstimateBasis::Profile), "about 2,700 rows (estimated from the profile)");
        assert_eq!(thousands(48_112_000), "48,112,000");
        let size = ProductionSize {
            rows: Some(48_000_000),
            bytes: 12 * 1024u64.pow(3),
            index_bytes: 0,
            rows_counted: false,
            basis: EstimateBasis::Profile,
        };
        let profile = "48M rows in production, estimated from the profile; 12.0 GB in production, from the profile";
        assert_eq!(size_label(&size), profile);
        let sampled = ProductionSize { basis: EstimateBasis::Sample, ..size.clone() };
        assert_eq!(
            size_label(&sampled),
            "48M rows in the source, estimated from its statistics (reltuples) when the sample was taken; 12.0 GB in \
             the source, read when the sample was taken"
        );
        let counted = ProductionSize { rows_counted: true, ..sampled };
        assert!(size_label(&counted).starts_with("48M rows in the source, counted when the sample was taken; "));
    }
}
