//! `truncate`: a statement removed rows with TRUNCATE (including tables a `TRUNCATE ... CASCADE` reached).

use super::{effect_count, unknown_note, RuleDoc, Seen};
use crate::report::StatementReport;

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a statement truncated tables, removing their rows",
    safer: "DELETE the rows you mean to remove, with a WHERE clause, in bounded batches",
    explanation: "TRUNCATE removes every row at once, takes an ACCESS EXCLUSIVE lock, and with `CASCADE` empties every table that references it too. It cannot be undone once committed.",
    schema: "CREATE TABLE sessions (id int PRIMARY KEY, expires_at date);\nINSERT INTO sessions VALUES (1, '2020-01-01'), (2, '2999-01-01');",
    bad: "TRUNCATE sessions;",
    safe: "DELETE FROM sessions WHERE expires_at < current_date;",
};

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let tables: Vec<String> = report
        .table_effects
        .iter()
        .filter(|e| e.production_truncated() != Some(0))
        .map(|e| format!("{} ({})", e.table, effect_count(e, |x| x.truncated, e.truncated)))
        .collect();
    let unknown = report.table_effects.iter().any(|e| e.production_truncated().is_none());
    (!tables.is_empty()).then(|| format!("truncates {}{}", tables.join(", "), unknown_note(unknown)))
}

/// A TRUNCATE of tables with no rows on the shadow (the rule's check saw every count, and all were 0).
pub(super) fn disagreement(seen: &Seen<'_>) -> Option<(String, String)> {
    let why = match seen.new_table() {
        Some(table) => format!("{table} is new in this plan and has no rows"),
        None => format!("{} had no rows on the shadow", seen.classification.targets.join(", ")),
    };
    Some(("rows truncated".to_owned(), format!("nothing truncated: {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::test_support::{measured, seen};
    use crate::report::TableEffect;

    fn truncated(table: &str, n: u64) -> TableEffect {
        TableEffect::measured(table, (0, 0, 0, n))
    }

    #[test]
    fn truncated_rows_are_reported_per_table() {
        let (mut report, _) = measured("TRUNCATE a CASCADE");
        report.table_effects = vec![truncated("public.a", 2), truncated("public.b", 1)];
        assert_eq!(check(&report).as_deref(), Some("truncates public.a (2 rows), public.b (1 row)"));
    }

    #[test]
    fn truncating_a_table_of_unknown_size_is_reported() {
        let (mut report, _) = measured("TRUNCATE a");
        report.table_effects = vec![TableEffect { truncated: None, rows_known: false, ..truncated("public.a", 0) }];
        assert!(check(&report).is_some_and(|m| m.starts_with("truncates public.a (rows unknown")));
    }

    #[test]
    fn truncating_empty_tables_is_not_reported() {
        let (report, classification) = measured("TRUNCATE a");
        assert_eq!(check(&report), None);
        let (_, said) = disagreement(&seen(&report, &classification, &[])).expect("a disagreement");
        assert_eq!(said, "nothing truncated: a had no rows on the shadow");
    }
}
