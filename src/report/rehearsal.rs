//! Upgrade rehearsal (`--pg-version 15,17`): the same plan dry-run on several PostgreSQL versions, and where the
//! outcomes differ — statement errors, rows, dropped objects, locks, rewrites, how much of the source loaded,
//! findings and verdict — side by side.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::Serialize;

use super::model::{Report, StatementReport, Status, Verdict};

/// The reports of one plan on several versions, and their differences.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Rehearsal {
    /// The report format version ([`super::FORMAT_VERSION`]): the reports inside are ordinary reports.
    pub format_version: u32,
    /// The pgshadow version that made it.
    pub tool_version: String,
    /// The worst verdict of the reports: the exit code follows it.
    pub verdict: Verdict,
    /// The PostgreSQL version of each report (`13.23`), in the order asked for.
    pub versions: Vec<String>,
    /// Where the outcomes differ; empty when the plan behaves the same on every version.
    pub differences: Vec<Difference>,
    /// One full report per version, in the same order.
    pub reports: Vec<Report>,
}

/// One aspect of the outcome that is not the same on every version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Difference {
    /// The statement (1-based), or `null` for the plan as a whole (schema load, findings, verdict).
    pub statement: Option<usize>,
    /// `outcome`, `rows affected`, `rows changed`, `objects dropped`, `locks`, `rewrites`, `schema load`,
    /// `findings` or `verdict`.
    pub aspect: String,
    /// The value on each version, in the order of `versions` (`-` for none).
    pub values: Vec<String>,
}

/// One aspect of a statement's outcome, as the items compared across versions.
type Aspect = fn(&StatementReport) -> Vec<String>;

/// Compares `reports` (one per version, the same plan).
pub fn rehearse(reports: Vec<Report>) -> Rehearsal {
    let versions = reports.iter().map(version_of).collect();
    let mut differences = Vec::new();
    let mut differ = |statement: Option<usize>, aspect: &str, items: Vec<Vec<String>>| {
        if items.windows(2).any(|pair| pair[0] != pair[1]) {
            differences.push(Difference { statement, aspect: aspect.to_owned(), values: without_common(items) });
        }
    };
    let loaded = |r: &Report| {
        let f = &r.shadow.fidelity;
        vec![match f.objects_in_source - f.objects_reproduced {
            0 => format!("{} of {} objects", f.objects_reproduced, f.objects_in_source),
            failed => format!("{} of {} objects ({failed} failed)", f.objects_reproduced, f.objects_in_source),
        }]
    };
    differ(None, "schema load", reports.iter().map(loaded).collect());
    let statements = reports.iter().map(|r| r.statements.len()).max().unwrap_or(0);
    let aspects: [(&str, Aspect); 6] = [
        ("outcome", |s| vec![outcome(s)]),
        ("rows affected", |s| s.rows_affected.iter().map(u64::to_string).collect()),
        ("rows changed", rows_changed),
        ("objects dropped", |s| sorted(s.dropped_objects.iter().map(|d| format!("{} {}", d.object_type, d.identity)))),
        ("locks", |s| sorted(s.locks.iter().map(|l| format!("{} {}", l.mode, l.table)))),
        ("rewrites", |s| sorted(s.rewritten_tables.iter().map(|t| t.table.clone()))),
    ];
    for index in 0..statements {
        for (aspect, items) in aspects {
            let values = reports
                .iter()
                .map(|r| r.statements.get(index).map_or_else(|| vec!["(no such statement)".to_owned()], items))
                .collect();
            differ(Some(index + 1), aspect, values);
        }
    }
    let findings = |r: &Report| {
        sorted(r.findings.iter().map(|f| match f.statement {
            Some(at) => format!("{} ({}, statement {at})", f.rule, word(&f.severity)),
            None => format!("{} ({})", f.rule, word(&f.severity)),
        }))
    };
    differ(None, "findings", reports.iter().map(findings).collect());
    differ(None, "verdict", reports.iter().map(|r| vec![r.verdict.as_str().to_owned()]).collect());
    let verdict = reports.iter().map(|r| r.verdict).max_by_key(|v| rank(*v)).unwrap_or(Verdict::Pass);
    Rehearsal {
        format_version: super::FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        verdict,
        versions,
        differences,
        reports,
    }
}

fn rank(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Pass => 0,
        Verdict::Warn => 1,
        Verdict::Fail => 2,
    }
}

fn version_of(report: &Report) -> String {
    if report.shadow.version.is_empty() {
        report.shadow.server_version.clone()
    } else {
        report.shadow.version.clone()
    }
}

/// A unit enum as its JSON word (`not_run`, `warning`).
fn word(value: &impl Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// Each version's items without those every version has, one per line, with how many were left out: a long list
/// that differs in one item shows that item.
fn without_common(items: Vec<Vec<String>>) -> Vec<String> {
    let common: Vec<String> = items
        .first()
        .map(|first| first.iter().filter(|i| items.iter().all(|o| o.contains(i))).cloned().collect())
        .unwrap_or_default();
    items
        .into_iter()
        .map(|list| {
            let mut own: Vec<String> = list.into_iter().filter(|i| !common.contains(i)).collect();
            if own.is_empty() {
                own.push("-".to_owned());
            }
            if !common.is_empty() {
                own.push(format!("(and {} on every version)", common.len()));
            }
            own.join("\n")
        })
        .collect()
}

fn outcome(s: &StatementReport) -> String {
    match (&s.status, &s.error) {
        (Status::Error, Some(e)) => format!("error {}: {}", e.sqlstate.as_deref().unwrap_or("-"), e.message),
        (status, _) => word(status),
    }
}

fn rows_changed(s: &StatementReport) -> Vec<String> {
    sorted(s.table_effects.iter().map(|e| format!("{} {}", e.table, super::effect_counts(e).join(" "))))
}

fn sorted(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut items: Vec<String> = items.collect();
    items.sort();
    items
}

/// The rehearsal for a terminal: the differences side by side, then each version's verdict.
pub fn render_table(rehearsal: &Rehearsal) -> String {
    let mut out = String::new();
    let plan = rehearsal.reports.first().map_or("", |r| r.plan.source.as_str());
    let _ = writeln!(out, "pgshadow upgrade rehearsal of {plan} on PostgreSQL {}", rehearsal.versions.join(", "));
    for report in &rehearsal.reports {
        let _ = writeln!(out, "  {}: {} ({})", version_of(report), report.verdict.as_str(), report.shadow.binaries);
    }
    out.push('\n');
    if rehearsal.differences.is_empty() {
        let _ = writeln!(out, "The plan behaves the same on every version.");
    } else {
        let mut table = comfy_table::Table::new();
        table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
        table.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
        if !table.is_tty() {
            table.set_width(160);
        }
        let mut header = vec!["statement".to_owned(), "aspect".to_owned()];
        header.extend(rehearsal.versions.iter().map(|v| format!("PostgreSQL {v}")));
        table.set_header(header);
        for d in &rehearsal.differences {
            let mut row = vec![d.statement.map_or_else(|| "plan".to_owned(), |s| format!("#{s}")), d.aspect.clone()];
            row.extend(d.values.iter().cloned());
            table.add_row(row);
        }
        let _ = writeln!(out, "Where the outcomes differ:\n{table}");
    }
    let _ = writeln!(out, "\nverdict: {} (the worst of the versions)", rehearsal.verdict.as_str().to_uppercase());
    out
}

/// The rehearsal as a pull-request comment.
pub fn render_markdown(rehearsal: &Rehearsal) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### pgshadow upgrade rehearsal: **{}** on PostgreSQL {}\n",
        rehearsal.verdict.as_str(),
        rehearsal.versions.join(", ")
    );
    if rehearsal.differences.is_empty() {
        let _ = writeln!(out, "The plan behaves the same on every version.\n");
    } else {
        let versions: Vec<String> = rehearsal.versions.iter().map(|v| format!("PostgreSQL {v}")).collect();
        let _ = writeln!(out, "| statement | aspect | {} |", versions.join(" | "));
        let _ = writeln!(out, "|---|---|{}", "---|".repeat(versions.len()));
        for d in &rehearsal.differences {
            let at = d.statement.map_or_else(|| "plan".to_owned(), |s| format!("#{s}"));
            let values: Vec<String> = d.values.iter().map(|v| v.replace('|', "\\|").replace('\n', "<br>")).collect();
            let _ = writeln!(out, "| {at} | {} | {} |", d.aspect, values.join(" | "));
        }
        out.push('\n');
    }
    for report in &rehearsal.reports {
        let _ = writeln!(
            out,
            "<details><summary>PostgreSQL {}: {}</summary>\n\n{}\n</details>\n",
            version_of(report),
            report.verdict.as_str(),
            super::render_markdown(report)
        );
    }
    out
}

/// The rehearsal as one HTML page: where the versions differ, then each version's report.
pub fn render_html(rehearsal: &Rehearsal) -> String {
    use maud::html;
    let verdict = rehearsal.verdict.as_str();
    let title = format!("pgshadow upgrade rehearsal: {verdict} on PostgreSQL {}", rehearsal.versions.join(", "));
    let body = html! {
        h1 { (title) }
        @if rehearsal.differences.is_empty() {
            p { "The plan behaves the same on every version." }
        } @else {
            table #differences {
                thead { tr { th { "statement" } th { "aspect" } @for v in &rehearsal.versions { th { "PostgreSQL " (v) } } } }
                tbody {
                    @for d in &rehearsal.differences {
                        tr {
                            td { (d.statement.map_or_else(|| "plan".to_owned(), |s| format!("#{s}"))) }
                            td { (d.aspect) }
                            @for value in &d.values { td { pre { (value) } } }
                        }
                    }
                }
            }
        }
        @for report in &rehearsal.reports {
            section.version {
                h1 { "PostgreSQL " (version_of(report)) ": " (report.verdict.as_str()) }
                (super::html::report_sections(report))
            }
        }
    };
    super::html::document(&title, body).into_string()
}

/// The rehearsal as JSON (its schema: `pgshadow schema --rehearsal`).
pub fn render_json(rehearsal: &Rehearsal) -> String {
    let mut out = serde_json::to_string_pretty(rehearsal).expect("a rehearsal serializes");
    out.push('\n');
    out
}

/// The JSON Schema of the rehearsal document.
pub fn json_schema() -> String {
    let mut out = serde_json::to_string_pretty(&schemars::schema_for!(Rehearsal)).expect("a schema serializes");
    out.push('\n');
    out
}
