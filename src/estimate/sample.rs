//! A sample's per-table scales.
//!
//! `--sample P` draws P% of each table's rows, then adds the rows those rows reference (the foreign-key closure).
//! A table's rows in the shadow are thus its sampled rows plus its closure rows, and both take part in what a
//! statement does there: a DELETE matches closure rows as readily as sampled ones. Each table's counts are scaled
//! by production's rows over the rows the shadow holds of it (sampled + closure), not by 100 / P, which overcounts
//! the tables the closure fills (a parent table referenced by a 10% sample of its children may be mostly in the
//! shadow). `tests/estimates.rs` measures this choice against the truth on generated data.

use crate::report::{EstimateBasis, ProductionSize, SampleInfo, StatementReport, TableScale};

/// Each sampled table's scale: production's rows over the rows the shadow holds of it. A table of which the shadow
/// holds no rows gets 100 / percent, for lack of anything better (its measured counts are 0 either way).
pub fn sample_scales(sample: &SampleInfo) -> Vec<TableScale> {
    sample
        .tables
        .iter()
        .map(|t| {
            let shadow_rows = t.sampled + t.closure;
            if shadow_rows == 0 {
                let scale = 100.0 / sample.percent;
                return TableScale {
                    table: t.table.clone(),
                    scale,
                    production_rows: t.source_rows,
                    shadow_rows,
                    method: format!("no rows of it in the sample: 100 / {}%", sample.percent),
                };
            }
            let scale = t.source_rows as f64 / shadow_rows as f64;
            TableScale {
                table: t.table.clone(),
                scale,
                production_rows: t.source_rows,
                shadow_rows,
                method: format!(
                    "{} rows in production / {shadow_rows} in the shadow ({} sampled, {} referenced)",
                    t.source_rows, t.sampled, t.closure
                ),
            }
        })
        .collect()
}

/// Production's size of the tables each statement locks, rewrites or scans: the source's, read when the sample was
/// taken. The limits then judge the source's rows and bytes, not the sample's.
pub fn sample_sizes(statements: &mut [StatementReport], sample: &SampleInfo) {
    let size_of = |name: &str| {
        let t = sample.tables.iter().find(|t| t.table == name)?;
        Some(ProductionSize {
            rows: Some(t.source_rows),
            rows_counted: t.rows_counted,
            bytes: t.bytes?,
            index_bytes: t.index_bytes?,
            basis: EstimateBasis::Sample,
        })
    };
    for s in statements.iter_mut().filter(|s| !s.rolled_back) {
        super::profile::sizes(s, &size_of, None);
        // A table the sample did not size (a partitioned parent, say): its rows in the shadow are a sample's, not
        // production's, so the limits cannot know them.
        for l in s.locks.iter_mut().filter(|l| l.kind == "table" && l.production.is_none()) {
            l.rows = None;
        }
        for r in s.rewritten_tables.iter_mut().filter(|r| r.production.is_none()) {
            r.rows = None;
        }
    }
}
