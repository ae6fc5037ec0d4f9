//! The report model and its renderers. Renderers are functions from the model to text: they never query.

mod github;
mod json;
mod markdown;
mod model;
mod table;

pub use github::render_github;
pub use json::render_json;
pub use markdown::render_markdown;
pub use model::*;
pub use table::render_table;

/// Totals over the statements' reports.
pub fn summarize<'a>(statements: impl IntoIterator<Item = &'a StatementReport>) -> Summary {
    let mut summary = Summary::default();
    for s in statements {
        summary.statements += 1;
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
