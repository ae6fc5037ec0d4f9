//! The report model and its renderers. Renderers are functions from the model to text: they never query.

mod github;
mod json;
mod markdown;
mod model;
mod profile;
pub mod rehearsal;
mod table;

pub use github::render_github;
pub use json::render_json;
pub use markdown::render_markdown;
pub use model::*;
pub(crate) use profile::profile_lines;
pub use profile::{ProfileInfo, ProfileValues};
pub use rehearsal::{rehearse, Rehearsal};
pub use table::render_table;

/// What a lock makes wait, in words.
pub(crate) fn blocks_label(lock: &LockTaken) -> &'static str {
    match (lock.blocks_reads, lock.blocks_writes) {
        (true, _) => "reads and writes",
        (false, true) => "writes",
        (false, false) => "neither reads nor writes",
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
    let mut summary = Summary { longest_exclusive_lock: longest_exclusive_lock(&statements), ..Summary::default() };
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
            summary.rows_updated += e.updated;
            summary.rows_deleted += e.deleted;
            summary.rows_truncated += e.truncated;
        }
        summary.rows_destroyed += s.rows_destroyed;
        summary.objects_dropped += s.dropped_objects.len();
        summary.tables_dropped += s.dropped_objects.iter().filter(|o| o.object_type == "table").count();
        summary.duration_ms += s.duration_ms.unwrap_or(0.0);
    }
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
