//! A sample's per-table scales.
//!
//! `--sample P` draws P% of each table's rows, then adds the rows those rows reference (the foreign-key closure).
//! A table's rows in the shadow are thus its sampled rows plus its closure rows, and both take part in what a
//! statement does there: a DELETE matches closure rows as readily as sampled ones. Each table's counts are scaled
//! by production's rows over the rows the shadow holds of it (sampled + closure), not by 100 / P, which overcounts
//! the tables the closure fills (a parent table referenced by a 10% sample of its children may be mostly in the
//! shadow). `tests/estimates.rs` measures this choice against the truth on generated data.

use crate::report::{SampleInfo, TableScale};

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
