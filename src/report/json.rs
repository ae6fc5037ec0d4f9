//! `--format json`: the report as pretty-printed JSON, documented in `docs/report.md`.

use super::Report;

/// The report as JSON, ending with a newline.
pub fn render_json(report: &Report) -> String {
    let mut out = serde_json::to_string_pretty(report).expect("the report model always serializes");
    out.push('\n');
    out
}
