//! Production's sizes on a report: the one setter both sources of them use, a profile ([`super::production_sizes`],
//! [`super::estimate`]) and a sample ([`super::sample_sizes`]), each with its own way to size a table.

use crate::report::{DurationEstimate, ProductionSize, StatementReport};

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

/// `3 s`, `4 min`, `2.5 h`.
fn duration_label(seconds: f64) -> String {
    match seconds {
        s if s >= 3600.0 => format!("{:.1} h", s / 3600.0),
        s if s >= 60.0 => format!("{:.0} min", s / 60.0),
        s if s >= 1.0 => format!("{s:.0} s"),
        s => format!("{:.0} ms", s * 1000.0),
    }
}
