//! `--format markdown`: a compact report for a pull-request comment. The verdict comes first, then a summary table
//! and the reasons; each statement's details sit in a collapsible section.

use std::fmt::Write;

use super::{Report, Severity, StatementReport, Status, Verdict};

/// The report as GitHub-flavoured Markdown.
pub fn render_markdown(report: &Report) -> String {
    let mut out = String::new();
    let (icon, word) = match report.verdict {
        Verdict::Pass => ("✅", "pass"),
        Verdict::Warn => ("⚠️", "warn"),
        Verdict::Fail => ("❌", "fail"),
    };
    let s = &report.summary;
    let _ = writeln!(out, "## {icon} pgshadow: **{word}** — `{}`\n", inline(&report.plan.source));
    out.push_str("| measured on the shadow | |\n|---|---|\n");
    let _ = writeln!(
        out,
        "| statements | {} ({} ok, {} failed, {} not run) |",
        s.statements, s.statements_ok, s.statements_failed, s.statements_not_run
    );
    if let Some(line) = super::commit_line(report) {
        let _ = writeln!(out, "| **COMMIT fails** | {} |", cell(&line));
    }
    let total = |n| super::total_label(n, s.rows_known);
    let _ = writeln!(
        out,
        "| rows inserted / updated / deleted | {} / {} / {} |",
        s.rows_inserted,
        total(s.rows_updated),
        total(s.rows_deleted)
    );
    let _ = writeln!(out, "| rows truncated | {} |", total(s.rows_truncated));
    let _ = writeln!(out, "| **rows destroyed** | **{}** |", total(s.rows_destroyed));
    for table in &s.unknown_tables {
        let _ = writeln!(out, "| **unknown** | {} |", cell(&super::unknown_table_line(table)));
    }
    if let Some(line) = super::estimate_line(report) {
        let _ = writeln!(out, "| **estimated** | {} |", cell(&line));
    }
    let _ = writeln!(out, "| objects dropped | {} ({} tables) |", s.objects_dropped, s.tables_dropped);
    let _ = writeln!(out, "| tables rewritten | {} |", s.tables_rewritten);
    if let Some(lock) = &s.longest_exclusive_lock {
        let _ = writeln!(
            out,
            "| longest ACCESS EXCLUSIVE lock | `{}` from statement {}, held for {} statements |",
            cell(&lock.table),
            lock.statement,
            lock.statements_held
        );
    }
    let sh = &report.shadow;
    let role = if sh.superuser { format!("{} (superuser)", sh.role) } else { sh.role.clone() };
    let why = if sh.version_reason.is_empty() { String::new() } else { format!(" — {}", cell(&sh.version_reason)) };
    let _ = writeln!(out, "| shadow | {} PostgreSQL {}{why}, as `{}` |", sh.provider, cell(&sh.server_version), role);
    if let Some(container) = &sh.container {
        let _ = writeln!(out, "| container | {} |", cell(&super::container_line(container)));
    }
    let _ = writeln!(out, "| policy | {} |", cell(&report.policy.source));
    if let Some(schema) = &sh.schema {
        let _ = writeln!(
            out,
            "| schema | `{}`: {} objects, {} failed to load |",
            cell(&schema.file),
            schema.statements,
            schema.failed
        );
    }

    if let Some(profile) = &report.profile {
        let mut lines = super::profile_lines(profile).into_iter();
        let first = lines.next().unwrap_or_default();
        let mark = if profile.matches { "" } else { "⚠️ " };
        let rest: Vec<String> = lines.map(|l| escape(&l)).collect();
        let rest = if rest.is_empty() { String::new() } else { format!("<br>{}", rest.join("<br>")) };
        let first = first.strip_prefix("profile ").unwrap_or(&first);
        let _ = writeln!(out, "| profile | {mark}{}{rest} |", escape(first));
    }

    if !s.rows_known {
        out.push_str(
            "\n> [!WARNING]\n> Some row counts are unknown, not 0: the source carried no rows for those tables. \
             Learn them with `--sample`, `--snapshot` or `--with-data`.\n",
        );
    }

    let fidelity = super::fidelity_lines(&sh.fidelity);
    if !fidelity.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>The shadow is not a faithful copy of the source ({} notes)</summary>\n",
            fidelity.len()
        );
        for line in fidelity {
            let _ = writeln!(out, "- {}", inline(&line));
        }
        out.push_str("\n</details>\n");
    }

    if !report.findings.is_empty() {
        out.push_str("\n### Why\n\n");
        for f in &report.findings {
            let mark = if f.severity == Severity::Error { "❌" } else { "⚠️" };
            let at = f
                .statement
                .and_then(|i| report.statements.get(i - 1))
                .map(|st| format!(" — statement {} (`{}:{}`)", st.index, inline(&st.file), st.line))
                .unwrap_or_default();
            let _ = writeln!(out, "- {mark} **{}** _{}_{at}: {}", f.rule, f.found_by.as_str(), escape(&f.message));
            if let Some(hint) = &f.hint {
                let _ = writeln!(out, "  <br>Safer: {}", escape(hint));
            }
        }
    }

    if !report.disagreements.is_empty() {
        out.push_str("\n### Static and measured disagree\n\n");
        for d in &report.disagreements {
            let (expected, measured) = (escape(&d.static_expected), escape(&d.measured));
            let _ = writeln!(
                out,
                "- **{}** at statement {}: static: {expected}; measured: {measured}",
                d.rule, d.statement
            );
        }
    }

    out.push_str("\n### Statements\n\n");
    for st in &report.statements {
        statement(&mut out, st);
    }
    out
}

fn statement(out: &mut String, st: &StatementReport) {
    let status = match st.status {
        Status::Ok => format!("ok, {} rows destroyed", super::total_label(st.rows_destroyed, st.rows_known)),
        Status::Error => "**error**".to_owned(),
        Status::NotRun => "not run".to_owned(),
    };
    let first_line = st.sql.lines().next().unwrap_or("");
    let _ = writeln!(
        out,
        "<details><summary>{}. <code>{}</code> — {status}</summary>\n",
        st.index,
        html(&shorten(first_line, 80))
    );
    let _ = writeln!(
        out,
        "`{}:{}:{}`\n\n```sql\n{}\n```\n",
        inline(&st.file),
        st.line,
        st.column,
        st.sql.replace("```", "` ` `")
    );
    if let Some(e) = &st.error {
        let code = e.sqlstate.as_deref().unwrap_or("pgshadow");
        let _ = writeln!(out, "**Error** `{code}` at line {}, column {}: {}\n", e.line, e.column, escape(&e.message));
        if let Some(hint) = &e.hint {
            let _ = writeln!(out, "Hint: {}\n", escape(hint));
        }
        if let Some(predicted) = &e.predicted {
            let _ = writeln!(out, "Predicted for production: {}\n", escape(predicted));
        }
    }
    if let Some(note) = &st.note {
        let _ = writeln!(out, "_{}_\n", escape(note));
    }
    if !st.table_effects.is_empty() {
        out.push_str("| table | inserted | updated | deleted | truncated | how |\n|---|--:|--:|--:|--:|---|\n");
        for e in &st.table_effects {
            let how = if e.direct { "direct" } else { "cascade/trigger" };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {how} |",
                cell(&e.table),
                e.inserted,
                super::count_label(e.updated),
                super::count_label(e.deleted),
                super::count_label(e.truncated)
            );
        }
        out.push('\n');
    }
    if !st.dropped_objects.is_empty() {
        out.push_str("| dropped | type | how | rows / values |\n|---|---|---|--:|\n");
        for o in &st.dropped_objects {
            let how = if o.cascaded { "**CASCADE**" } else { "" };
            let rows = super::dropped_label(o);
            let _ = writeln!(out, "| `{}` | {} | {how} | {rows} |", cell(&o.identity), o.object_type);
        }
        out.push('\n');
    }
    for line in super::unknown_lines(st) {
        let _ = writeln!(out, "- {}", escape(&line));
    }
    for r in &st.rewritten_tables {
        let _ = writeln!(out, "- rewrites `{}` ({} rows)", cell(&r.table), super::count_label(r.rows));
    }
    for l in st.locks.iter().filter(|l| l.blocks_reads || l.blocks_writes) {
        let blocks = super::blocks_label(l);
        let (what, table) = (&l.kind, cell(&l.table));
        let _ = writeln!(
            out,
            "- locks {what} `{table}` {} ({} rows), blocking {blocks}",
            l.mode,
            super::count_label(l.rows)
        );
    }
    for c in &st.column_changes {
        let detail = match (&c.from, &c.to) {
            (Some(from), Some(to)) => format!(": `{}` → `{}`", inline(from), inline(to)),
            _ => String::new(),
        };
        let _ =
            writeln!(out, "- column `{}` {}{detail} ({} rows)", cell(&c.column), c.change, super::count_label(c.rows));
    }
    for c in &st.constraint_changes {
        let _ = writeln!(
            out,
            "- {} constraint `{}` {} ({} rows)",
            c.constraint_type,
            cell(&c.constraint),
            c.change,
            super::count_label(c.rows)
        );
    }
    if !st.rules_fired.is_empty() {
        let _ = writeln!(out, "- fired rules {}", escape(&super::rules_label(&st.rules_fired)));
    }
    if !st.functions_called.is_empty() {
        let _ = writeln!(out, "- called {}", escape(&super::functions_label(&st.functions_called)));
    }
    for c in &st.schema_changes {
        let _ = writeln!(out, "- {} `{}`", c.command, cell(&c.identity));
    }
    out.push_str("\n</details>\n\n");
}

/// Text in a table cell: pipes escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Text inside backticks: backticks cannot be escaped there, so they become quotes.
fn inline(text: &str) -> String {
    cell(&text.replace('`', "'"))
}

/// Markdown text: the characters that would start markup escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text inside HTML.
fn html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}
