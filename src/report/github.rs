//! `--format github`: GitHub Actions workflow commands, so that findings show as annotations on the plan's lines.

use std::fmt::Write;

use super::{Report, Severity, Verdict};

/// One `::error` / `::warning` command per finding, at the statement (or the error's position), a `::warning` when
/// the profile given does not match the shadow's schema, and a `::notice` with the verdict and totals.
pub fn render_github(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let level = if f.severity == Severity::Error { "error" } else { "warning" };
        let mut properties = vec![format!("title={}", property(&format!("pgshadow {}", f.rule)))];
        if let Some(st) = f.statement.and_then(|i| report.statements.get(i - 1)) {
            let (line, column) = st
                .error
                .as_ref()
                .filter(|_| f.rule == "statement-error")
                .map_or((st.line, st.column), |e| (e.line, e.column));
            if st.element.is_none() {
                properties.insert(0, format!("file={},line={line},col={column}", property(&st.file)));
            }
        }
        let _ = writeln!(out, "::{level} {}::{}", properties.join(","), data(&f.message));
    }
    if let Some(profile) = report.profile.as_ref().filter(|p| !p.matches) {
        let lines = super::profile_lines(profile).join("\n");
        let _ = writeln!(out, "::warning title={}::{}", property("pgshadow profile"), data(&lines));
    }
    let s = &report.summary;
    let verdict = match report.verdict {
        Verdict::Pass => "pass",
        Verdict::Warn => "warn",
        Verdict::Fail => "fail",
    };
    let _ = writeln!(
        out,
        "::notice title=pgshadow {verdict}::{}",
        data(&format!(
            "{}: {} rows destroyed ({} deleted, {} truncated), {} objects dropped, findings: {}",
            report.plan.source,
            super::total_label(s.rows_destroyed, s.rows_known),
            super::total_label(s.rows_deleted, s.rows_known),
            super::total_label(s.rows_truncated, s.rows_known),
            s.objects_dropped,
            report.findings.len()
        ))
    );
    // Only when a count is unknown: a schema-only run that merely adds a column needs no warning.
    if !s.rows_known {
        let lines: Vec<String> = s.unknown_tables.iter().map(|t| super::unknown_table_line(t)).collect();
        let _ = writeln!(
            out,
            "::warning title=pgshadow row counts unknown::{}",
            data(&format!("{}; learn them with --profile, --sample, --snapshot or --with-data", lines.join("; ")))
        );
    }
    // The `fails-at-commit` finding annotates it already, unless the policy allows that rule.
    if let Some(line) =
        super::commit_line(report).filter(|_| !report.findings.iter().any(|f| f.rule == "fails-at-commit"))
    {
        let _ = writeln!(out, "::warning title=pgshadow COMMIT fails::{}", data(&line));
    }
    if let Some(line) = super::estimate_line(report) {
        let _ = writeln!(out, "::notice title=pgshadow estimate::{}", data(&line));
    }
    out
}

/// A command's message: `%`, CR and LF escaped.
fn data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// A command's property value: also `:` and `,` escaped.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::{data, property};

    #[test]
    fn workflow_command_values_are_escaped() {
        assert_eq!(data("50% done\nnext"), "50%25 done%0Anext");
        assert_eq!(property("a:b,c"), "a%3Ab%2Cc");
    }
}
