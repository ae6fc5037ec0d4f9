//! `--format html`: the report as one self-contained HTML page, and the same sections for the review page of
//! `pgshadow serve` (`/ui`).
//!
//! Built with `maud`, whose templates escape every interpolated string: plan text, table names and error messages
//! are hostile input and never reach the page as markup. No external assets and no script: the page's style is
//! inline, and a Content-Security-Policy in the document forbids scripts and loads from anywhere.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::{Disagreement, Finding, Report, Severity, StatementReport, Status, TableEffect};

/// The report as a standalone HTML document.
pub fn render_html(report: &Report) -> String {
    let title = format!("pgshadow: {} — {}", report.verdict.as_str(), report.plan.source);
    document(&title, report_sections(report)).into_string()
}

/// A complete HTML document: `title`, the inline style sheet, and `body`. Its Content-Security-Policy allows no
/// script, no external load, and forms posting only to the page's own origin.
pub fn document(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta http-equiv="Content-Security-Policy" content=(CONTENT_SECURITY_POLICY);
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
}

/// What a page of pgshadow may load and run: its own inline style, forms to itself, nothing else.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

/// The report's sections, in the order a reviewer reads them: verdict and findings, rows per table, dropped
/// objects, locks and rewrites, what the shadow could not know or reproduce, then the plan with line numbers.
pub fn report_sections(report: &Report) -> Markup {
    html! {
        (verdict_header(report))
        @if report.plan.nondeterministic {
            p.alert #nondeterministic {
                strong { "Nondeterministic: " }
                "what this plan does depends on when or where it runs ("
                (nondeterministic_reasons(&report.statements))
                "): the figures below are a snapshot of one run, and production may differ when it is applied."
            }
        }
        @if let Some(truncated) = &report.truncated {
            p.warning { "This report was cut: " (truncated) }
        }
        (findings(&report.findings, &report.statements))
        (disagreements(&report.disagreements, &report.statements))
        (totals(report))
        (rows_per_table(&report.statements))
        (dropped_objects(&report.statements))
        (locks_and_rewrites(&report.statements))
        (fidelity(report))
        (plan(&report.statements))
    }
}

fn verdict_header(report: &Report) -> Markup {
    let verdict = report.verdict.as_str();
    let shadow = &report.shadow;
    html! {
        header.verdict {
            span class={ "badge " (verdict) } id="verdict" { (verdict.to_uppercase()) }
            " "
            code { (report.plan.source) }
            dl.meta {
                dt { "plan SHA-256" } dd { code { (report.plan.sha256) } }
                dt { "policy" } dd { (report.policy.source) }
                dt { "shadow" } dd {
                    (shadow.provider) ", PostgreSQL " (shadow.server_version) ", as " (shadow.role)
                    @if shadow.superuser { " (superuser)" }
                }
                @if let Some(line) = super::commit_line(report) {
                    dt { "COMMIT fails" } dd #commit-error { (line) }
                }
                @if let Some(schema) = &shadow.schema {
                    dt { "schema" } dd {
                        code { (schema.file) } ": " (schema.statements) " objects, " (schema.failed) " failed to load"
                    }
                }
                @for (key, value) in &report.plan.metadata {
                    @if matches!(key.as_str(), "agent" | "intent") {
                        dt { (key) } dd { (metadata_text(value)) }
                    }
                }
            }
        }
    }
}

/// `statement 2: now() in a WHERE; statement 3: random()`.
fn nondeterministic_reasons(statements: &[StatementReport]) -> String {
    let each =
        statements.iter().filter_map(|s| Some(format!("statement {}: {}", s.index, s.nondeterministic.as_ref()?)));
    each.collect::<Vec<_>>().join("; ")
}

/// A JSON plan's metadata value as text: strings as they are, anything else as JSON.
fn metadata_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn findings(findings: &[Finding], statements: &[StatementReport]) -> Markup {
    html! {
        section #findings {
            h2 { "Findings" }
            @if findings.is_empty() {
                p { "None: the policy found nothing to warn about." }
            } @else {
                table {
                    thead { tr { th { "severity" } th { "rule" } th { "found by" } th { "statement" } th { "what" } } }
                    tbody {
                        @for f in findings {
                            tr class=(severity_class(f.severity)) data-rule=(f.rule) {
                                td { (severity_label(f.severity)) }
                                td { code { (f.rule) } }
                                td { (f.found_by.as_str()) }
                                td { (statement_place(f.statement, statements)) }
                                td {
                                    (f.message)
                                    @if let Some(hint) = &f.hint { div.hint { "Safer: " (hint) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Where the text showed a risk the shadow did not measure; nothing when there is no such place.
fn disagreements(disagreements: &[Disagreement], statements: &[StatementReport]) -> Markup {
    html! {
        @if !disagreements.is_empty() {
            section #disagreements {
                h2 { "Static and measured disagree" }
                table {
                    thead { tr { th { "rule" } th { "statement" } th { "static" } th { "measured" } } }
                    tbody {
                        @for d in disagreements {
                            tr data-rule=(d.rule) {
                                td { code { (d.rule) } }
                                td { (statement_place(Some(d.statement), statements)) }
                                td { (d.static_expected) }
                                td { (d.measured) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn severity_label(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn severity_class(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "fail",
        Severity::Warning => "warn",
    }
}

/// `3 (plan.sql:7)`, linking to the statement in the plan section.
fn statement_place(index: Option<usize>, statements: &[StatementReport]) -> Markup {
    let Some(index) = index else { return html! {} };
    html! {
        a href={ "#statement-" (index) } { (index) }
        @if let Some(st) = statements.get(index.wrapping_sub(1)) { " (" (st.file) ":" (st.line) ")" }
    }
}

fn totals(report: &Report) -> Markup {
    let s = &report.summary;
    let total = |n| super::total_label(n, s.rows_known);
    html! {
        section #totals {
            h2 { "Totals" }
            dl.meta {
                dt { "statements" }
                dd { (s.statements) " (" (s.statements_ok) " ok, " (s.statements_failed) " failed, "
                     (s.statements_not_run) " not run)" }
                dt { "rows inserted / updated / deleted / truncated" }
                dd { (s.rows_inserted) " / " (total(s.rows_updated)) " / " (total(s.rows_deleted)) " / "
                     (total(s.rows_truncated)) }
                dt { "rows destroyed" } dd { strong #rows-destroyed { (total(s.rows_destroyed)) } }
                dt { "objects dropped" } dd { (s.objects_dropped) " (" (s.tables_dropped) " tables)" }
                dt { "tables rewritten" } dd { (s.tables_rewritten) }
                @if let Some(lock) = &s.longest_exclusive_lock {
                    dt { "longest ACCESS EXCLUSIVE lock" }
                    dd { code { (lock.table) } " from statement " (lock.statement) ", held for "
                         (lock.statements_held) " statements" }
                }
                (estimate(report))
            }
            @if !s.rows_known {
                p.warning {
                    "Some row counts are unknown, not 0: the source carried no rows for "
                    (s.unknown_tables.join(", "))
                    ". Learn them with --sample, --snapshot or --with-data."
                }
            }
        }
    }
}

/// The totals estimated for production, each said to be an estimate and what it rests on: the line every renderer
/// shows ([`super::estimate_line`]).
fn estimate(report: &Report) -> Markup {
    let Some(line) = super::estimate_line(report) else { return html! {} };
    html! {
        dt { "estimate" }
        dd.estimate #estimate { (line) }
    }
}

/// Where a table effect's counts come from: `measured` on the shadow, `estimated` for production, or `unknown`
/// (no rows for the table on the shadow, and no estimate).
fn effect_basis(e: &TableEffect) -> &'static str {
    match (&e.estimated, e.rows_known) {
        (Some(_), _) => "estimated",
        (None, true) => "measured",
        (None, false) => "unknown",
    }
}

/// A table effect's estimate for production, as every renderer says it ([`super::effect_estimate_label`]):
/// `about 480 deleted (profile: method)`.
fn effect_estimate(e: &TableEffect) -> Markup {
    html! { @if let Some(label) = super::effect_estimate_label(e) { (label) } }
}

/// A table's size in production, as every renderer says it ([`super::size_label`]): `production: 48K rows in
/// production, estimated from the profile; 5 MB in production, from the profile`.
fn production_size(size: Option<&super::ProductionSize>) -> Markup {
    let Some(size) = size else { return html! {} };
    html! { br; span.estimate { "production: " (super::size_label(size)) } }
}

fn rows_per_table(statements: &[StatementReport]) -> Markup {
    let rows: Vec<(&StatementReport, &TableEffect)> =
        statements.iter().flat_map(|s| s.table_effects.iter().map(move |e| (s, e))).collect();
    html! {
        section #rows {
            h2 { "Rows per table" }
            @if rows.is_empty() {
                p { "No rows changed." }
            } @else {
                table {
                    thead { tr {
                        th { "statement" } th { "table" } th { "how" } th.n { "inserted" } th.n { "updated" }
                        th.n { "deleted" } th.n { "truncated" } th { "basis" } th { "estimate for production" }
                    } }
                    tbody {
                        @for (st, e) in rows {
                            @let how = if e.direct { "direct" } else { "cascade" };
                            @let basis = effect_basis(e);
                            tr class={ (how) @if st.rolled_back { " rolled-back" } }
                                data-table=(e.table) data-how=(how) data-basis=(basis) {
                                td { a href={ "#statement-" (st.index) } { (st.index) } }
                                td { code { (e.table) } }
                                td { @if e.direct { "direct" } @else { "cascade or trigger" } }
                                td.n data-count="inserted" { (e.inserted) }
                                td.n data-count="updated" { (count(e.updated)) }
                                td.n data-count="deleted" { (count(e.deleted)) }
                                td.n data-count="truncated" { (count(e.truncated)) }
                                td { (basis) @if st.rolled_back { " (undone by the plan's ROLLBACK)" } }
                                td.estimate { (effect_estimate(e)) }
                            }
                        }
                    }
                }
            }
            @for st in statements {
                @for line in super::unmeasured_lines(st) {
                    p.warning { "Statement " (st.index) ": " (line) }
                }
            }
        }
    }
}

/// A count cell: the number, or `unknown` in its own style (never 0).
fn count(n: Option<u64>) -> Markup {
    match n {
        Some(n) => html! { (n) },
        None => html! { span.unknown { "unknown" } },
    }
}

fn dropped_objects(statements: &[StatementReport]) -> Markup {
    let dropped: Vec<_> = statements.iter().flat_map(|s| s.dropped_objects.iter().map(move |o| (s, o))).collect();
    html! {
        section #dropped {
            h2 { "Dropped objects" }
            @if dropped.is_empty() {
                p { "Nothing dropped." }
            } @else {
                table {
                    thead { tr {
                        th { "statement" } th { "type" } th { "object" } th { "how" } th.n { "rows / values" }
                    } }
                    tbody {
                        @for (st, o) in dropped {
                            tr class=[o.cascaded.then_some("cascade")] data-object=(o.identity) {
                                td { a href={ "#statement-" (st.index) } { (st.index) } }
                                td { (o.object_type) }
                                td { code { (o.identity) } }
                                td { @if o.cascaded { strong { "taken by CASCADE" } } @else { "named" } }
                                td.n {
                                    @if o.rows_known { (super::dropped_label(o)) }
                                    @else { span.unknown { "unknown" } }
                                    @if let Some(label) = super::dropped_estimate_label(o) {
                                        br; span.estimate { (label) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn locks_and_rewrites(statements: &[StatementReport]) -> Markup {
    let locks: Vec<_> = statements
        .iter()
        .flat_map(|s| s.locks.iter().filter(|l| l.blocks_reads || l.blocks_writes).map(move |l| (s, l)))
        .collect();
    let rewrites: Vec<_> = statements.iter().flat_map(|s| s.rewritten_tables.iter().map(move |r| (s, r))).collect();
    html! {
        section #locks {
            h2 { "Locks and rewrites" }
            @if locks.is_empty() && rewrites.is_empty() {
                p { "No lock that blocks reads or writes, no rewrite." }
            }
            @if !locks.is_empty() {
                table {
                    thead { tr {
                        th { "statement" } th { "relation" } th { "mode" } th { "blocks" } th.n { "rows" }
                    } }
                    tbody {
                        @for (st, l) in locks {
                            tr {
                                td { a href={ "#statement-" (st.index) } { (st.index) } }
                                td { (l.kind) " " code { (l.table) } }
                                td { (l.mode) }
                                td { (super::blocks_label(l)) }
                                td.n { (count(l.rows)) (production_size(l.production.as_ref())) }
                            }
                        }
                    }
                }
            }
            @if !rewrites.is_empty() {
                table {
                    thead { tr { th { "statement" } th { "rewrites" } th.n { "rows" } th.n { "size" } } }
                    tbody {
                        @for (st, r) in rewrites {
                            tr {
                                td { a href={ "#statement-" (st.index) } { (st.index) } }
                                td { code { (r.table) } }
                                td.n { (count(r.rows)) (production_size(r.production.as_ref())) }
                                td.n {
                                    (count(r.size_bytes)) " bytes"
                                    @if let Some(d) = &r.estimated_duration {
                                        br; span.estimate { "about " (format!("{:.0}", d.seconds)) " s in production (estimated: " (d.method) ")" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn fidelity(report: &Report) -> Markup {
    let lines = super::fidelity_lines(&report.shadow.fidelity);
    let profile = report.profile.as_ref().map(super::profile_lines).unwrap_or_default();
    html! {
        section #fidelity {
            h2 { "Fidelity" }
            @if lines.is_empty() {
                p { "The shadow reproduced every object of the source." }
            } @else {
                p.warning { "The shadow is not a faithful copy of the source:" }
                ul { @for line in &lines { li { (line) } } }
            }
            @if !profile.is_empty() {
                ul.profile { @for line in &profile { li { (line) } } }
            }
        }
    }
}

fn plan(statements: &[StatementReport]) -> Markup {
    html! {
        section #plan {
            h2 { "Plan" }
            @for st in statements {
                div.statement id={ "statement-" (st.index) } {
                    div.where {
                        strong { (st.index) "." } " " code { (st.file) ":" (st.line) } " — " (status_label(st))
                        @if let Some(note) = &st.note { " — " em { (note) } }
                        @if let Some(why) = &st.nondeterministic { " — " strong.unknown { "nondeterministic: " (why) } }
                    }
                    table.source {
                        @for (i, line) in st.sql.lines().enumerate() {
                            @let number = st.line + i;
                            @let marked = st.error.as_ref().is_some_and(|e| e.line == number);
                            tr class=[marked.then_some("error-line")] {
                                td.line { (number) }
                                td { pre { (line) } }
                            }
                        }
                    }
                    @if let Some(e) = &st.error {
                        p.error {
                            "Error " code { (e.sqlstate.as_deref().unwrap_or("pgshadow")) }
                            " at line " (e.line) ", column " (e.column) ": " (e.message)
                            @if let Some(detail) = &e.detail { br; "Detail: " (detail) }
                            @if let Some(hint) = &e.hint { br; "Hint: " (hint) }
                            @if let Some(predicted) = &e.predicted { br; "Predicted for production: " (predicted) }
                        }
                    }
                }
            }
        }
    }
}

fn status_label(st: &StatementReport) -> String {
    match st.status {
        Status::Ok => format!("ok, {} rows destroyed", super::total_label(st.rows_destroyed, st.rows_known)),
        Status::Error => "error".to_owned(),
        Status::NotRun => "not run".to_owned(),
    }
}

const STYLE: &str = "
body{font:15px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:72em;padding:0 1em;color:#1b1b1b}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.4em 0;width:100%}th,td{border:1px solid #ddd;padding:.2em .5em;
text-align:left;vertical-align:top}th{background:#f4f4f4}.n{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font-family:ui-monospace,monospace;font-size:.92em}pre{margin:0;white-space:pre-wrap}
.badge{display:inline-block;padding:.15em .6em;border-radius:.3em;color:#fff;font-weight:bold}
.badge.pass{background:#1a7f37}.badge.warn{background:#9a6700}.badge.fail{background:#cf222e}
tr.fail td:first-child{color:#cf222e;font-weight:bold}tr.warn td:first-child{color:#9a6700}
tr.cascade{background:#fff4e5}.unknown{color:#cf222e;font-weight:bold}.rolled-back{color:#777}
.warning,.error,.alert{background:#fff8c5;border-left:4px solid #9a6700;padding:.4em .7em}
.estimate{color:#6e4b00}.error,.alert{background:#ffebe9;border-color:#cf222e}.hint{color:#555;font-size:.92em}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.1em 1em}dl.meta dt{color:#555}dl.meta dd{margin:0}
table.source{width:auto;min-width:50%}table.source td{border:none;padding:0 .6em}
td.line{color:#888;text-align:right;user-select:none}tr.error-line{background:#ffebe9}
.statement{margin:.8em 0}.where{margin-bottom:.2em}
nav.bar{display:flex;gap:1.2em;align-items:center;border-bottom:1px solid #ddd;padding-bottom:.4em}
form.inline{display:inline;margin:0}tr.added{background:#e6ffec}tr.removed{background:#ffebe9}
.state{font-size:.7em;padding:.1em .5em;border:1px solid #888;border-radius:.3em;vertical-align:middle}
#unguarded{font-size:1.1em}form.decide{display:flex;gap:.6em;align-items:center;margin:.8em 0}
form.decide button{padding:.3em 1em;font-weight:bold}#approve{background:#1a7f37;color:#fff;border:1px solid #1a7f37}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_estimate_says_it_is_one_and_what_it_rests_on() {
        let mut effect = TableEffect::measured("public.orders", (0, 0, 3, 0));
        assert_eq!(effect_basis(&effect), "measured");
        effect.rows_known = false;
        effect.deleted = None;
        assert_eq!(effect_basis(&effect), "unknown");
        let profile = super::super::EffectEstimate::profile((None, Some(480), None), "3 rows per customer <b>");
        effect.estimated = Some(profile);
        assert_eq!(effect_basis(&effect), "estimated");
        let cell = effect_estimate(&effect).into_string();
        assert_eq!(cell, "about 480 deleted (profile: 3 rows per customer &lt;b&gt;)");
    }

    /// A statement of unknown size whose effect and dropped table are estimated from the profile.
    fn estimated_statement() -> StatementReport {
        let plan = crate::plan::Plan::parse("plan.sql", "DROP TABLE orders CASCADE").expect("a plan");
        let mut statement = StatementReport::not_run(1, &plan.statements[0]);
        (statement.status, statement.rows_known) = (Status::Ok, false);
        statement.unknown_tables.push("public.orders".into());
        let mut effect = TableEffect::measured("public.orders", (0, 0, 0, 0));
        (effect.deleted, effect.rows_known) = (None, false);
        effect.estimated = Some(super::super::EffectEstimate::profile((None, Some(480), None), "3 rows per customer"));
        statement.table_effects.push(effect);
        statement.dropped_objects.push(super::super::DroppedObject {
            object_type: "table".into(),
            identity: "public.orders".into(),
            cascaded: false,
            rows: None,
            values: None,
            rows_known: false,
            estimated: Some(super::super::RowsEstimate {
                rows: 48112,
                basis: super::super::EstimateBasis::Profile,
                method: "reltuples of public.orders".into(),
            }),
        });
        statement
    }

    #[test]
    fn each_estimate_shows_once_and_the_unknown_table_too() {
        let statements = [estimated_statement()];
        let page = html! { (rows_per_table(&statements)) (dropped_objects(&statements)) }.into_string();
        assert_eq!(page.matches("about 480 deleted (profile: 3 rows per customer)").count(), 1, "{page}");
        assert_eq!(page.matches("about 48,112 rows (profile: reltuples of public.orders)").count(), 1, "{page}");
        assert_eq!(page.matches("the shadow has no rows for public.orders").count(), 1, "{page}");
        // Said once in any words: the methods appear nowhere else.
        assert_eq!(page.matches("3 rows per customer").count(), 1, "{page}");
        assert_eq!(page.matches("reltuples of public.orders").count(), 1, "{page}");
    }

    #[test]
    fn a_production_size_names_what_each_part_rests_on() {
        let size = super::super::ProductionSize {
            rows: Some(30_000),
            rows_counted: false,
            bytes: 2 * 1024 * 1024,
            index_bytes: 0,
            basis: super::super::EstimateBasis::Sample,
        };
        let line = production_size(Some(&size)).into_string();
        assert!(line.contains("30K rows in the source, estimated from its statistics (reltuples)"), "{line}");
        assert!(line.contains("2 MB in the source, read when the sample was taken"), "{line}");
        assert_eq!(production_size(None).into_string(), "");
    }

    #[test]
    fn document_forbids_scripts() {
        let page = document("t", html! { p { "x" } }).into_string();
        assert!(page.contains("default-src 'none'"), "{page}");
        assert!(!page.contains("<script"), "{page}");
    }
}
