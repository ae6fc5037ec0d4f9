//! `unknown-row-count`: a statement whose effect depends on rows the shadow does not have. The source carried no
//! rows for the table (a schema-only dump, a `structure.sql`), so production's count is unknown — never 0. Found for
//! a DELETE or UPDATE with a WHERE clause on such a table, an UPDATE of a key whose `ON UPDATE` foreign keys reach
//! such a table, a DELETE or key UPDATE that a `NO ACTION` or `RESTRICT` foreign key refuses if a row is still
//! referenced, and for the steps whose outcome depends on the rows:
//! SET NOT NULL, adding a column NOT NULL without a default, adding a CHECK, FOREIGN KEY, UNIQUE, PRIMARY KEY or
//! EXCLUDE constraint, building a UNIQUE index, changing a column's type. (TRUNCATE, DROP TABLE, DROP COLUMN, a
//! DELETE or UPDATE without WHERE and a DELETE with
//! cascade paths on such a table are found by their own rules, which treat the unknown count as any number.)

use super::RuleDoc;
use crate::plan::{Classification, StatementKind};
use crate::report::StatementReport;

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a statement depends on rows of a table the shadow has no rows for: production's count is unknown",
    safer: "give the run a profile of production (--profile), or the shadow production's rows or a sample of them: --sample, --snapshot or --with-data",
    explanation: "Loaded from a schema without data (pg_dump --schema-only, a structure.sql), the shadow's tables are empty, and an empty table says nothing about production: a DELETE with a WHERE clause may remove 0 rows or millions, and a new NOT NULL, CHECK, FOREIGN KEY or UNIQUE constraint, or a narrower column type, may fail on rows the shadow cannot see. pgshadow reports such counts as unknown, never 0. Run the plan on data: --snapshot with a pg_dump archive, --from-url with --with-data, or --sample PERCENT for a consistent sample of a live database.",
    schema: "CREATE TABLE sessions (id int PRIMARY KEY, expires_at date);",
    bad: "DELETE FROM sessions WHERE expires_at < current_date;",
    safe: "CREATE TABLE archived_sessions (id int PRIMARY KEY, expires_at date);\nINSERT INTO archived_sessions VALUES (1, '2020-01-01');\nDELETE FROM archived_sessions WHERE expires_at < current_date;",
};

/// How to learn a count the shadow cannot know.
const LEARN: &str = "learn it with --profile, --sample, --snapshot or --with-data";

pub(super) fn check(report: &StatementReport, classification: &Classification) -> Option<String> {
    let mut found = Vec::new();
    let filtered = matches!(classification.kind, StatementKind::Delete | StatementKind::Update)
        && classification.has_where == Some(true);
    if filtered {
        let verb = if classification.kind == StatementKind::Delete { "DELETE" } else { "UPDATE" };
        // An estimate (from a profile) is judged by the other rules and the limits instead.
        let unknown = report.table_effects.iter().filter(|e| e.direct && !e.rows_known && e.estimated.is_none());
        found.extend(unknown.map(|e| format!("{verb} on {}: how many rows its WHERE matches is unknown", e.table)));
    }
    // What an UPDATE changes through ON UPDATE foreign keys, in tables of unknown size.
    if classification.kind == StatementKind::Update {
        for p in &report.cascade_paths {
            let effect = report.table_effects.iter().find(|e| e.table == p.table);
            if effect.is_none_or(|e| !e.rows_known && e.estimated.is_none()) {
                found.push(format!(
                    "UPDATE reaches {} through {} ({}): how many of its rows change is unknown",
                    p.table, p.foreign_key, p.action
                ));
            }
        }
    }
    // A key that refuses the statement where a row it deletes or changes is still referenced: the shadow has no rows
    // to show whether one is.
    if matches!(classification.kind, StatementKind::Delete | StatementKind::Update) {
        let verb = if classification.kind == StatementKind::Delete { "deletes" } else { "changes the key of" };
        for k in &report.restricting_keys {
            let referenced = k.path.iter().rev().nth(1).map_or("", String::as_str);
            found.push(format!(
                "{} references {referenced} ({}, {}): production refuses the statement if it {verb} a row still \
                 referenced there",
                k.table,
                k.foreign_key,
                k.action.to_uppercase()
            ));
        }
    }
    let unknown = |table: &str| report.unknown_tables.iter().any(|t| t == table);
    for c in &report.column_changes {
        let table = c.column.rsplit_once('.').map_or(c.column.as_str(), |(table, _)| table);
        if matches!(c.change.as_str(), "set not null" | "type changed") && unknown(table) {
            found.push(format!("{} on {}", c.change.to_uppercase(), c.column));
        }
    }
    // A column added NOT NULL with nothing to fill the rows with fails on the first row production has.
    let unfilled = super::text::added_unfilled_not_null(&report.sql);
    for c in report.column_changes.iter().filter(|c| c.change == "added") {
        let (table, name) = c.column.rsplit_once('.').unwrap_or(("", c.column.as_str()));
        let name = name.trim_matches('"');
        if unknown(table) && unfilled.iter().any(|u| u.rsplit_once('.').is_some_and(|(_, n)| n == name)) {
            found.push(format!("adding {} NOT NULL without a default (it fails on any row)", c.column));
        }
    }
    for c in &report.constraint_changes {
        let table = c.constraint.rsplit_once(" on ").map_or(c.constraint.as_str(), |(_, table)| table);
        if c.change == "added" && unknown(table) {
            found.push(format!("adding {} constraint {}", c.constraint_type, c.constraint));
        }
    }
    let words: Vec<String> = report.sql.split_whitespace().take(2).map(str::to_ascii_lowercase).collect();
    if classification.kind == StatementKind::CreateIndex && words == ["create", "unique"] {
        found.extend(report.unknown_tables.iter().map(|t| format!("building a UNIQUE index on {t}")));
    }
    (!found.is_empty()).then(|| {
        format!(
            "{}: the shadow has no rows for the table, or none of the sampled or synthetic rows it holds matched, so \
             it cannot show what production's rows do (count unknown, not 0); {LEARN}",
            found.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::test_support::measured;
    use crate::report::{ColumnChange, TableEffect};

    fn unknown_delete(table: &str) -> TableEffect {
        TableEffect { deleted: None, rows_known: false, ..TableEffect::measured(table, (0, 0, 0, 0)) }
    }

    #[test]
    fn a_filtered_delete_on_a_table_of_unknown_size_is_found() {
        let (mut report, c) = measured("DELETE FROM sessions WHERE id = 1");
        report.table_effects = vec![unknown_delete("public.sessions")];
        report.unknown_tables = vec!["public.sessions".into()];
        let message = check(&report, &c).expect("found");
        assert!(message.starts_with("DELETE on public.sessions: how many rows"), "{message}");
        assert!(message.contains("--sample, --snapshot or --with-data"), "{message}");
    }

    #[test]
    fn data_dependent_steps_on_a_table_of_unknown_size_are_found_and_known_tables_are_not() {
        let (mut report, c) = measured("ALTER TABLE t ALTER COLUMN c SET NOT NULL");
        report.column_changes = vec![ColumnChange {
            column: "public.t.c".into(),
            change: "set not null".into(),
            from: None,
            to: None,
            rows: None,
            values_changed: None,
        }];
        assert_eq!(check(&report, &c), None, "the table's rows are known");
        report.unknown_tables = vec!["public.t".into()];
        assert!(check(&report, &c).is_some_and(|m| m.starts_with("SET NOT NULL on public.t.c")));

        let (mut report, c) = measured("CREATE UNIQUE INDEX i ON t (c)");
        report.unknown_tables = vec!["public.t".into()];
        assert!(check(&report, &c).is_some_and(|m| m.starts_with("building a UNIQUE index on public.t")));
    }

    #[test]
    fn a_where_that_matched_no_sampled_row_is_unknown_not_zero() {
        use crate::report::{scale_measured, EstimateBasis, TableScale};
        let scale = |shadow_rows| TableScale {
            table: "public.customers".into(),
            scale: 200_000.0 / shadow_rows as f64,
            production_rows: 200_000,
            shadow_rows,
            method: "production / shadow".into(),
        };
        // A 1% sample without customer 4242: 0 matched there says nothing of production.
        let (report, classification) = measured("DELETE FROM customers WHERE id = 4242;");
        let mut statements = vec![report];
        scale_measured(&mut statements, vec![scale(2_000)], EstimateBasis::Sample);
        let s = &statements[0];
        assert!(!s.rows_known);
        assert_eq!(s.unknown_tables, ["public.customers"]);
        assert_eq!(s.table_effects[0].deleted, None);
        assert!(check(s, &classification).is_some_and(|m| m.contains("count unknown, not 0")));
        // The shadow holds all of the table's rows: 0 matched is 0.
        let (mut report, classification) = measured("UPDATE customers SET name = 'x' WHERE id = 4242;");
        report.rows_known = true;
        let mut statements = vec![report];
        scale_measured(&mut statements, vec![scale(200_000)], EstimateBasis::Sample);
        assert!(statements[0].rows_known && statements[0].unknown_tables.is_empty());
        assert_eq!(check(&statements[0], &classification), None);
    }
}
