//! `--format table`: the report for a terminal or a CI log.

use std::fmt::Write;

use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};

use super::{Report, Severity, StatementReport, Status, Verdict};

/// The report as text tables: a line per statement, then each statement's effects, then the findings and verdict.
pub fn render_table(report: &Report) -> String {
    let mut out = String::new();
    let s = &report.summary;
    let shadow = &report.shadow;
    let role = if shadow.superuser { format!("{} (superuser)", shadow.role) } else { shadow.role.clone() };
    let _ = writeln!(
        out,
        "pgshadow dry-run of {} on a {} shadow (PostgreSQL {}, as {role})",
        report.plan.source, shadow.provider, shadow.server_version
    );
    if !shadow.provider_reason.is_empty() {
        let _ = writeln!(out, "shadow chosen: {}", shadow.provider_reason);
    }
    if let Some(installed) = &shadow.installed {
        let _ = writeln!(out, "installed on first use: {} from {}", installed.package, installed.registry);
    }
    if let Some(container) = &shadow.container {
        let _ = writeln!(out, "container: {}", super::container_line(container));
    }
    if !shadow.version_reason.is_empty() {
        let _ = writeln!(out, "version chosen: {}", shadow.version_reason);
    }
    if let Some(schema) = &shadow.schema {
        let _ =
            writeln!(out, "schema {}: {} objects, {} failed to load", schema.file, schema.statements, schema.failed);
    }
    for line in super::fidelity_lines(&shadow.fidelity) {
        let _ = writeln!(out, "  fidelity: {line}");
    }
    if let Some(profile) = &report.profile {
        for (i, line) in super::profile_lines(profile).into_iter().enumerate() {
            let _ = writeln!(out, "{}{line}", if i == 0 { "" } else { "  profile: " });
        }
    }
    out.push('\n');
    out.push_str(&statements_table(&report.statements).to_string());
    out.push('\n');
    for statement in &report.statements {
        details(&mut out, statement);
    }
    let total = |n| super::total_label(n, s.rows_known);
    let _ = writeln!(
        out,
        "\nTotal: {} inserted, {} updated, {} deleted, {} truncated; {} rows destroyed; {} objects dropped ({} tables)",
        s.rows_inserted,
        total(s.rows_updated),
        total(s.rows_deleted),
        total(s.rows_truncated),
        total(s.rows_destroyed),
        s.objects_dropped,
        s.tables_dropped
    );
    for table in &s.unknown_tables {
        let _ = writeln!(out, "Unknown: {}", super::unknown_table_line(table));
    }
    if !s.rows_known {
        let _ = writeln!(
            out,
            "Row counts the shadow could not know are not 0: estimate them with --profile, or learn them with --sample, --snapshot or --with-data"
        );
    }
    if let Some(line) = super::commit_line(report) {
        let _ = writeln!(out, "COMMIT fails: {line}");
    }
    if let Some(line) = super::estimate_line(report) {
        let _ = writeln!(out, "{line}");
    }
    if let Some(lock) = &s.longest_exclusive_lock {
        let _ = writeln!(
            out,
            "Longest ACCESS EXCLUSIVE lock: {} from statement {}, held for {} statements ({:.1} ms on the shadow)",
            lock.table, lock.statement, lock.statements_held, lock.held_ms
        );
    }
    if !report.findings.is_empty() {
        out.push_str("\nFindings:\n");
        for f in &report.findings {
            let at = f.statement.map(|i| format!(" (statement {i})")).unwrap_or_default();
            let severity = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let _ = writeln!(out, "  {severity}: {}{at} [{}]: {}", f.rule, f.found_by.as_str(), f.message);
            if let Some(hint) = &f.hint {
                let _ = writeln!(out, "    safer: {hint}");
            }
        }
    }
    if !report.disagreements.is_empty() {
        out.push_str("\nStatic and measured disagree:\n");
        for line in super::disagreement_lines(report) {
            let _ = writeln!(out, "  {line}");
        }
    }
    let verdict = match report.verdict {
        Verdict::Pass => "PASS",
        Verdict::Warn => "WARN",
        Verdict::Fail => "FAIL",
    };
    let _ = writeln!(out, "\nVerdict: {verdict}");
    out
}

fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(header.to_vec());
    table
}

fn statements_table(statements: &[StatementReport]) -> Table {
    let mut table = new_table(&["#", "line", "statement", "kind", "status", "rows", "destroyed", "ms"]);
    for s in statements {
        let status = match s.status {
            Status::Ok => "ok",
            Status::Error => "ERROR",
            Status::NotRun => "not run",
        };
        table.add_row(vec![
            Cell::new(s.index),
            Cell::new(format!("{}:{}", s.line, s.column)),
            Cell::new(shorten(&s.sql, 60)),
            Cell::new(s.kind.label()),
            Cell::new(status),
            Cell::new(super::affected_label(s)).set_alignment(CellAlignment::Right),
            Cell::new(super::total_label(s.rows_destroyed, s.rows_known)).set_alignment(CellAlignment::Right),
            Cell::new(s.duration_ms.map(|d| format!("{d:.1}")).unwrap_or_default()).set_alignment(CellAlignment::Right),
        ]);
    }
    table
}

/// A statement's error, table effects and dropped objects, when it has any.
fn details(out: &mut String, s: &StatementReport) {
    if let Some(e) = &s.error {
        let code = e.sqlstate.as_deref().unwrap_or("pgshadow");
        let _ = writeln!(out, "\nStatement {} failed at {}:{} [{code}]: {}", s.index, e.line, e.column, e.message);
        for (label, text) in [("detail", &e.detail), ("hint", &e.hint), ("predicted", &e.predicted)] {
            if let Some(text) = text {
                let _ = writeln!(out, "  {label}: {text}");
            }
        }
    }
    if let Some(note) = &s.note {
        let _ = writeln!(out, "\nStatement {}: {note}", s.index);
    }
    if !s.table_effects.is_empty() {
        let mut table = new_table(&["table", "inserted", "updated", "deleted", "truncated", "how"]);
        for e in &s.table_effects {
            table.add_row(vec![
                Cell::new(&e.table),
                Cell::new(e.inserted).set_alignment(CellAlignment::Right),
                Cell::new(super::count_label(e.updated)).set_alignment(CellAlignment::Right),
                Cell::new(super::count_label(e.deleted)).set_alignment(CellAlignment::Right),
                Cell::new(super::count_label(e.truncated)).set_alignment(CellAlignment::Right),
                Cell::new(if e.direct { "direct" } else { "cascade/trigger" }),
            ]);
        }
        let _ = writeln!(out, "\nStatement {} changed rows:\n{table}", s.index);
    }
    if !s.dropped_objects.is_empty() {
        let mut table = new_table(&["dropped", "type", "how", "rows / values"]);
        for o in &s.dropped_objects {
            table.add_row(vec![
                Cell::new(&o.identity),
                Cell::new(&o.object_type),
                Cell::new(if o.cascaded { "CASCADE" } else { "" }),
                Cell::new(super::dropped_label(o)).set_alignment(CellAlignment::Right),
            ]);
        }
        let _ = writeln!(out, "\nStatement {} dropped {} objects:\n{table}", s.index, s.dropped_objects.len());
    }
    for line in super::unknown_lines(s) {
        let _ = writeln!(out, "\nStatement {}: {line}", s.index);
    }
    if !s.locks.is_empty() {
        let mut table = new_table(&["locked", "kind", "mode", "blocks", "rows"]);
        for l in &s.locks {
            table.add_row(vec![
                Cell::new(&l.table),
                Cell::new(&l.kind),
                Cell::new(&l.mode),
                Cell::new(super::blocks_label(l)),
                Cell::new(super::count_label(l.rows)).set_alignment(CellAlignment::Right),
            ]);
        }
        let _ = writeln!(out, "\nStatement {} took locks (held to the end of the transaction):\n{table}", s.index);
    }
    for r in &s.rewritten_tables {
        let _ = writeln!(
            out,
            "\nStatement {} rewrote {} ({} rows, {} bytes)",
            s.index,
            r.table,
            super::count_label(r.rows),
            super::count_label(r.size_bytes)
        );
    }
    for c in &s.column_changes {
        let detail = match (&c.from, &c.to) {
            (Some(from), Some(to)) => format!(": {from} -> {to}"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "\nStatement {}: column {} {}{detail} ({} rows)",
            s.index,
            c.column,
            c.change,
            super::count_label(c.rows)
        );
    }
    for c in &s.constraint_changes {
        let _ = writeln!(
            out,
            "\nStatement {}: {} constraint {} {} ({} rows)",
            s.index,
            c.constraint_type,
            c.constraint,
            c.change,
            super::count_label(c.rows)
        );
    }
    if !s.rules_fired.is_empty() {
        let _ = writeln!(out, "\nStatement {} fired rules: {}", s.index, super::rules_label(&s.rules_fired));
    }
    if !s.functions_called.is_empty() {
        let _ = writeln!(out, "\nStatement {} called: {}", s.index, super::functions_label(&s.functions_called));
    }
    if !s.schema_changes.is_empty() {
        let changes: Vec<String> = s.schema_changes.iter().map(|c| format!("{} {}", c.command, c.identity)).collect();
        let _ = writeln!(out, "\nStatement {} changed the schema: {}", s.index, changes.join("; "));
    }
}

/// The first line of `text`, at most `max` characters, with `...` when cut.
fn shorten(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max - 3).collect();
    cut.push_str("...");
    cut
}
