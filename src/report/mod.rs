//! The report model and its renderers. Renderers are functions from the model to text: they never query.

mod estimate;
mod github;
pub mod html;
mod json;
mod markdown;
mod model;
mod profile;
pub mod rehearsal;
mod synthetic;
mod table;

pub use estimate::{about, bytes_label, scale_measured, size_basis, size_label, thousands, SizePart, TableScale};
pub use github::render_github;
pub use html::render_html;
pub use json::render_json;
pub use markdown::render_markdown;
pub use model::*;
pub(crate) use profile::profile_lines;
pub use profile::{ProfileInfo, ProfileValues};
pub use rehearsal::{rehearse, Rehearsal};
pub use synthetic::{EmptyTable, LeftOut, SyntheticFidelity, SyntheticTable};
pub use table::render_table;

/// Each disagreement in a line: `table-rewrite at statement 2: static: a table rewrite; measured: no rewrite on
/// PostgreSQL 18.1: ...`.
pub(crate) fn disagreement_lines(report: &Report) -> Vec<String> {
    report
        .disagreements
        .iter()
        .map(|d| {
            format!("{} at statement {}: static: {}; measured: {}", d.rule, d.statement, d.static_expected, d.measured)
        })
        .collect()
}

/// What a lock makes wait, in words.
pub(crate) fn blocks_label(lock: &LockTaken) -> &'static str {
    match (lock.blocks_reads, lock.blocks_writes) {
        (true, _) => "reads and writes",
        (false, true) => "writes",
        (false, false) => "neither reads nor writes",
    }
}

/// An effect's counts for people, the unknown ones included: `3 inserted`, `unknown deleted`; zeros left out.
pub(crate) fn effect_counts(e: &TableEffect) -> Vec<String> {
    let counts =
        [(Some(e.inserted), "inserted"), (e.updated, "updated"), (e.deleted, "deleted"), (e.truncated, "truncated")];
    counts
        .into_iter()
        .filter(|(n, _)| *n != Some(0))
        .map(|(n, what)| match n {
            Some(n) => format!("{n} {what}"),
            None => format!("unknown {what}"),
        })
        .collect()
}

/// An effect's counts in production for people: [`effect_counts`], with each count the effect's estimate covers as
/// `about 904 deleted (estimated)`.
pub(crate) fn production_counts(e: &TableEffect) -> Vec<String> {
    let Some(est) = &e.estimated else { return effect_counts(e) };
    let counts = [
        (Some(e.inserted), None, "inserted"),
        (e.updated, est.updated, "updated"),
        (e.deleted, est.deleted, "deleted"),
        (e.truncated, est.truncated, "truncated"),
    ];
    counts
        .into_iter()
        .filter(|(n, estimate, _)| estimate.is_some() || *n != Some(0))
        .filter(|(_, estimate, _)| *estimate != Some(0))
        .map(|(n, estimate, what)| match (estimate, n) {
            (Some(about), _) => format!("about {} {what} (estimated)", thousands(about)),
            (None, Some(n)) => format!("{n} {what}"),
            (None, None) => format!("unknown {what}"),
        })
        .collect()
}

/// What the reports say about a table of unknown size, in words.
pub fn unknown_table_line(table: &str) -> String {
    format!("the shadow has no rows for {table}: production's count is unknown")
}

/// A count for people: the number, or `unknown`.
pub(crate) fn count_label(n: Option<u64>) -> String {
    n.map_or_else(|| "unknown".to_owned(), |n| n.to_string())
}

/// A dropped object's rows (a table's) or values (a column's) for people: `unknown` for a table of unknown size,
/// empty for other objects.
pub(crate) fn dropped_label(o: &DroppedObject) -> String {
    match (o.rows_known, o.rows.or(o.values)) {
        (false, _) => "unknown".to_owned(),
        (true, n) => n.map(|n| n.to_string()).unwrap_or_default(),
    }
}

/// What a statement could not measure, in lines for people: [`unmeasured_lines`], then its estimates for production
/// ([`statement_estimate_lines`]). For renderers that show no estimate elsewhere.
pub(crate) fn unknown_lines(s: &StatementReport) -> Vec<String> {
    let mut lines = unmeasured_lines(s);
    lines.extend(statement_estimate_lines(s));
    lines
}

/// What a statement could not measure, in lines for people: the tables of unknown size, the foreign-key paths a
/// DELETE follows from them, and a failed measurement.
pub(crate) fn unmeasured_lines(s: &StatementReport) -> Vec<String> {
    let mut lines: Vec<String> = s.unknown_tables.iter().map(|t| unknown_table_line(t)).collect();
    for p in &s.cascade_paths {
        lines.push(format!(
            "cascade path: {} ({} via {}): rows there unknown",
            p.path.join(" -> "),
            p.action,
            p.foreign_key
        ));
    }
    if let Some(error) = &s.measure_error {
        lines.push(format!("measuring failed, so this statement's counts are unknown: {error}"));
    }
    lines
}

/// A statement's estimates for production, in lines for people, each with its basis: the tables' effects, the
/// dropped objects' rows, and the production sizes of the tables it locks or rewrites.
pub(crate) fn statement_estimate_lines(s: &StatementReport) -> Vec<String> {
    let mut lines = Vec::new();
    for e in &s.table_effects {
        lines.extend(effect_estimate_label(e).map(|label| format!("estimated for {}: {label}", e.table)));
    }
    for o in &s.dropped_objects {
        lines.extend(dropped_estimate_label(o).map(|label| format!("estimated for {}: {label}", o.identity)));
    }
    for l in s.locks.iter().filter(|l| l.blocks_reads || l.blocks_writes) {
        if let Some(size) = &l.production {
            lines.push(format!("{} on {}: {}", l.mode, l.table, size_label(size)));
        }
    }
    for r in &s.rewritten_tables {
        if let Some(size) = &r.production {
            let took = r.estimated_duration.as_ref().map(|d| format!("; {}", d.method)).unwrap_or_default();
            lines.push(format!("rewrite of {}: {}{took}", r.table, size_label(size)));
        }
    }
    lines
}

/// The error the plan's final COMMIT meets ([`Report::commit_error`]) as one line, for every renderer.
pub(crate) fn commit_line(report: &Report) -> Option<String> {
    let error = report.commit_error.as_ref()?;
    Some(format!(
        "the COMMIT that ends the plan fails on a deferred constraint{}; applied, the plan commits nothing{}",
        error.describe(),
        error.prediction()
    ))
}

/// The report's estimate for people, in one line: `Estimated for production (from the profile): about 2,700
/// deleted, about 0 updated, about 2,700 rows destroyed`, with `unknown` for a total some count behind which is
/// neither measured nor estimated.
pub(crate) fn estimate_line(report: &Report) -> Option<String> {
    let e = report.estimate.as_ref()?;
    let about = |n: Option<u64>| n.map_or_else(|| "unknown".to_owned(), |n| format!("about {}", thousands(n)));
    let from = match (&report.shadow.sample, e.basis) {
        (Some(sample), EstimateBasis::Sample) => format!("from a {}% sample, scaled per table", sample.percent),
        (_, EstimateBasis::Sample) => "from a sample, scaled per table".to_owned(),
        (_, EstimateBasis::Profile) => "from the profile".to_owned(),
        (_, EstimateBasis::Synthetic) => match &report.shadow.fidelity.synthetic {
            Some(s) if !s.empty_tables.is_empty() => format!(
                "from {} rows synthesized from the profile, scaled per table; {} tables left empty",
                thousands(s.rows_generated),
                s.empty_tables.len()
            ),
            Some(s) => {
                format!("from {} rows synthesized from the profile, scaled per table", thousands(s.rows_generated))
            }
            None => "from synthesized rows, scaled per table".to_owned(),
        },
    };
    let mut line = format!(
        "Estimated for production ({from}): {} deleted, {} updated, {} rows destroyed",
        about(e.rows_deleted),
        about(e.rows_updated),
        about(e.rows_destroyed)
    );
    if !e.unestimated.is_empty() {
        line.push_str(&format!("; no estimate for {}", e.unestimated.join(", ")));
    }
    Some(line)
}

/// An effect's estimate for people: `about 2,700 deleted (profile: WHERE selectivity 0.8% from ...)`.
pub(crate) fn effect_estimate_label(e: &TableEffect) -> Option<String> {
    let est = e.estimated.as_ref()?;
    let counts: Vec<String> = [(est.updated, "updated"), (est.deleted, "deleted"), (est.truncated, "truncated")]
        .into_iter()
        .filter_map(|(n, what)| n.map(|n| format!("about {} {what}", thousands(n))))
        .collect();
    Some(format!("{} ({}: {})", counts.join(", "), est.basis.as_str(), est.method))
}

/// A dropped object's estimate for people: `about 48,112 rows (profile: the table's rows ...)`.
pub(crate) fn dropped_estimate_label(o: &DroppedObject) -> Option<String> {
    let est = o.estimated.as_ref()?;
    Some(format!("about {} rows ({}: {})", thousands(est.rows), est.basis.as_str(), est.method))
}

/// A statement's rows affected (its command tag's count) for people: a DELETE's, UPDATE's, MERGE's or TRUNCATE's on a
/// table of unknown size is a lower bound (`unknown` when 0, as [`total_label`] says it); empty when the statement did
/// not run.
pub(crate) fn affected_label(s: &StatementReport) -> String {
    use crate::plan::StatementKind::{Delete, Merge, Truncate, Update};
    let known = s.rows_known || !matches!(s.kind, Delete | Update | Merge | Truncate);
    s.rows_affected.map(|n| total_label(n, known)).unwrap_or_default()
}

/// A row total for people: the number, or `at least N` (`unknown` for 0) when some counts behind it are unknown.
pub(crate) fn total_label(n: u64, known: bool) -> String {
    match (known, n) {
        (true, n) => n.to_string(),
        (false, 0) => "unknown".to_owned(),
        (false, n) => format!("at least {n}"),
    }
}

/// `public.audit ×2 (trigger orders_audit on public.orders), public.f ×1`.
pub(crate) fn functions_label(called: &[FunctionCalled]) -> String {
    let each = called.iter().map(|f| {
        let via = if f.triggers.is_empty() { String::new() } else { format!(" (trigger {})", f.triggers.join(", ")) };
        format!("{} ×{}{via}", f.function, f.calls)
    });
    each.collect::<Vec<_>>().join(", ")
}

/// What the shadow lost of its source, in lines for people: the version mismatch, the missing extensions, then every
/// warning (`file:line:column: message`, or `file: entry: message` for an archive).
pub(crate) fn fidelity_lines(fidelity: &Fidelity) -> Vec<String> {
    let mut lines = Vec::new();
    if fidelity.source_trust == SourceTrust::Trusted {
        lines.push(
            "the source was loaded as a superuser (--trust-source): it could run anything the server's OS user can"
                .to_owned(),
        );
    }
    lines.extend(fidelity.version_warning.clone());
    lines.extend(fidelity.newer_version.clone());
    if let Some(synthetic) = &fidelity.synthetic {
        lines.extend(synthetic_lines(synthetic));
    }
    for missing in &fidelity.missing_extensions {
        let get = match (&missing.package, &missing.note) {
            (Some(package), Some(note)) => format!("; {note} ({package})"),
            (Some(package), None) => format!("; install {package}"),
            (None, Some(note)) => format!("; {note}"),
            (None, None) => String::new(),
        };
        lines.push(format!(
            "extension {} is not available on the shadow: {} objects lost{get}",
            missing.name, missing.objects_lost
        ));
    }
    for w in &fidelity.warnings {
        let place = match &w.entry {
            Some(entry) => format!("{}: {entry}", w.file),
            None => format!("{}:{}:{}", w.file, w.line, w.column),
        };
        let why = match (&w.extension, &w.needs_superuser) {
            (Some(e), _) => format!(" (needs {e})"),
            (None, Some(reason)) => format!(" ({reason})"),
            (None, None) => String::new(),
        };
        lines.push(format!("{place}: {}{why}", w.message));
    }
    lines
}

/// `log_delete on public.orders (delete, also), big_delete on public.big (delete, instead)`.
/// A container shadow in one line: its image and whether it was sealed off from the network.
pub(crate) fn container_line(container: &ContainerInfo) -> String {
    let sealed = if container.sealed { "sealed off from the network" } else { "NOT sealed off from the network" };
    format!("{}, {sealed}; reached through {}", container.image, container.reached_through)
}

pub(crate) fn rules_label(fired: &[RuleFired]) -> String {
    let each =
        fired.iter().map(|r| format!("{} ({}, {})", r.rule, r.event, if r.instead { "instead" } else { "also" }));
    each.collect::<Vec<_>>().join(", ")
}

/// Totals over the statements' reports.
pub fn summarize<'a>(statements: impl IntoIterator<Item = &'a StatementReport>) -> Summary {
    let statements: Vec<&StatementReport> = statements.into_iter().collect();
    let mut summary =
        Summary { longest_exclusive_lock: longest_exclusive_lock(&statements), rows_known: true, ..Summary::default() };
    for s in statements {
        summary.statements += 1;
        if s.rolled_back {
            summary.statements_ok += usize::from(s.status == Status::Ok);
            continue;
        }
        summary.tables_rewritten += s.rewritten_tables.len();
        match s.status {
            Status::Ok => summary.statements_ok += 1,
            Status::Error => summary.statements_failed += 1,
            Status::NotRun => summary.statements_not_run += 1,
        }
        for e in &s.table_effects {
            summary.rows_inserted += e.inserted;
            summary.rows_updated += e.updated.unwrap_or(0);
            summary.rows_deleted += e.deleted.unwrap_or(0);
            summary.rows_truncated += e.truncated.unwrap_or(0);
        }
        summary.rows_destroyed += s.rows_destroyed;
        summary.rows_known &= s.rows_known;
        for table in &s.unknown_tables {
            if !summary.unknown_tables.contains(table) {
                summary.unknown_tables.push(table.clone());
            }
        }
        summary.objects_dropped += s.dropped_objects.len();
        summary.tables_dropped += s.dropped_objects.iter().filter(|o| o.object_type == "table").count();
        summary.duration_ms += s.duration_ms.unwrap_or(0.0);
    }
    summary.unknown_tables.sort();
    summary
}

/// The ACCESS EXCLUSIVE lock taken earliest: it is held from its statement to the end of the plan.
fn longest_exclusive_lock(statements: &[&StatementReport]) -> Option<HeldLock> {
    statements.iter().enumerate().find_map(|(i, s)| {
        let lock = s.locks.iter().find(|l| l.kind == "table" && l.mode == "AccessExclusiveLock" && !s.rolled_back)?;
        let held = &statements[i..];
        Some(HeldLock {
            table: lock.table.clone(),
            statement: s.index,
            statements_held: held.iter().filter(|s| s.status != Status::NotRun).count(),
            held_ms: (held.iter().filter_map(|s| s.duration_ms).sum::<f64>() * 1e3).round() / 1e3,
        })
    })
}

/// What a synthetic shadow holds, for people: the rows generated, and what was left out or left empty.
fn synthetic_lines(synthetic: &SyntheticFidelity) -> Vec<String> {
    let mut lines = vec![format!(
        "{} synthetic rows in {} tables, generated from {} (budget {}, seed {}); no row of production",
        thousands(synthetic.rows_generated),
        synthetic.tables.len(),
        synthetic.profile,
        thousands(synthetic.budget),
        synthetic.seed
    )];
    for table in &synthetic.tables {
        for left in &table.left_out {
            lines.push(format!("{}: {} rows left out ({})", table.table, thousands(left.rows), left.constraint));
        }
    }
    for empty in &synthetic.empty_tables {
        lines.push(format!("{} left empty: {}", empty.table, empty.reason));
    }
    if !synthetic.columns_without_values.is_empty() {
        lines.push(format!(
            "{} columns generated without values from the profile (from their type, null_frac, n_distinct and avg_width)",
            synthetic.columns_without_values.len()
        ));
    }
    if !synthetic.profile_tables_not_in_schema.is_empty() {
        lines.push(format!(
            "tables of the profile the schema lacks: {}",
            synthetic.profile_tables_not_in_schema.join(", ")
        ));
    }
    lines
}
