//! `integer-key-exhaustion`: a new primary key of type `integer` or `smallint` (`serial`, `smallserial`, an integer
//! identity). From the text for a table the plan creates; measured (the key constraint and the column added to an
//! existing table) when an `ALTER TABLE` adds one. A key column that references another table is bounded by the key it
//! references and is left out; a foreign key column narrower than the key it references (`integer` referencing
//! `bigint`) is measured on the catalog when the plan ends.

use super::text::column_types;
use super::RuleDoc;
use crate::report::{thousands, KeyUsage, StatementReport, Status};

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a new primary key is integer or smallint, or a foreign key column is narrower than the key it references",
    safer: "bigint (bigserial, or bigint GENERATED ALWAYS AS IDENTITY)",
    explanation: "An integer key stops at 2,147,483,647 (a smallint at 32,767): the sequence behind it runs out and every insert fails, usually years later and at the worst time, and widening the key then rewrites the table and every table that references it under ACCESS EXCLUSIVE locks. A foreign key column narrower than the key it references (integer referencing bigint) fails the same way once the key grows. bigint costs four more bytes a row. Use bigint (bigserial, or bigint GENERATED ALWAYS AS IDENTITY) for new keys.",
    schema: "CREATE TABLE customers (id bigint PRIMARY KEY);",
    bad: "CREATE TABLE orders (id serial PRIMARY KEY, customer_id bigint REFERENCES customers);",
    safe: "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer_id bigint REFERENCES customers);",
};

/// The largest value of a narrow integer type as sqlparser or Postgres prints it, `None` for any other type.
fn limit(data_type: &str) -> Option<&'static str> {
    match data_type.split('(').next().unwrap_or(data_type).trim() {
        "INT" | "INTEGER" | "INT4" | "SERIAL" | "SERIAL4" | "integer" => Some("2,147,483,647"),
        "SMALLINT" | "INT2" | "SMALLSERIAL" | "SERIAL2" | "smallint" => Some("32,767"),
        _ => None,
    }
}

/// New narrow integer keys in the text: `table.column` and the type's limit.
fn in_text(sql: &str) -> Vec<(String, &'static str)> {
    column_types(sql)
        .into_iter()
        .filter(|c| c.primary_key && !c.references)
        .filter_map(|c| limit(&c.data_type).map(|l| (c.column, l)))
        .collect()
}

pub(super) fn text_shows(sql: &str) -> bool {
    !in_text(sql).is_empty()
}

fn message(keys: &[String]) -> String {
    format!("makes {} the primary key: inserts fail once its sequence passes that, and widening it later rewrites the table", keys.join(", "))
}

/// An existing table given a new narrow integer column and a primary key in the same statement, or a foreign key
/// added with a column narrower than the key it references.
pub(super) fn check(report: &StatementReport) -> Option<String> {
    let narrow: Vec<String> = report
        .narrow_foreign_keys
        .iter()
        .map(|k| {
            format!(
                "foreign key {}: {} is {} but references {} ({}), so it fails once the key passes the narrower type",
                k.foreign_key, k.column, k.column_type, k.referenced_column, k.referenced_type
            )
        })
        .collect();
    let keys = new_keys(report);
    let mut found: Vec<String> = match (keys, narrow.is_empty()) {
        (Some(keys), true) => vec![keys],
        (Some(keys), false) => vec![format!("{keys}; adds {}", narrow.join("; "))],
        (None, false) => vec![format!("adds {}", narrow.join("; "))],
        (None, true) => Vec::new(),
    };
    found.extend(report.keys_past_half.iter().map(past_half));
    (!found.is_empty()).then(|| found.join("; "))
}

/// An existing key past half its range in production, in words.
fn past_half(k: &KeyUsage) -> String {
    let from = k.sequence.as_ref().map_or_else(|| "its largest value".to_owned(), |s| format!("sequence {s}"));
    format!(
        "{} ({}) has used {:.0}% of its range in production ({from} at {} of {}, from the profile): inserts fail once it \
         passes the end, and widening it then rewrites the table",
        k.column,
        k.r#type,
        k.last_value as f64 * 100.0 / k.max_value as f64,
        thousands(k.last_value.max(0) as u64),
        thousands(k.max_value.max(0) as u64)
    )
}

/// A key past half its range is a failure waiting in production: the finding is an error even where the policy
/// only warns of the rule (unless it allows it).
pub(super) fn certain(report: &StatementReport) -> bool {
    !report.keys_past_half.is_empty()
}

fn new_keys(report: &StatementReport) -> Option<String> {
    let key_added = report.constraint_changes.iter().any(|c| c.constraint_type == "primary key" && c.change == "added");
    let keys: Vec<String> = report
        .column_changes
        .iter()
        .filter(|c| key_added && c.change == "added")
        .filter_map(|c| {
            c.to.as_deref()
                .and_then(limit)
                .map(|l| format!("{} ({}, at most {l})", c.column, c.to.as_deref().unwrap_or("?")))
        })
        .collect();
    (!keys.is_empty()).then(|| message(&keys))
}

/// A table the plan creates, whose columns the catalog comparison leaves out.
pub(super) fn check_static(report: &StatementReport) -> Option<String> {
    let keys: Vec<String> =
        in_text(&report.sql).into_iter().map(|(column, l)| format!("{column} (at most {l}, from the text)")).collect();
    (report.status == Status::Ok && !keys.is_empty()).then(|| message(&keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::test_support::measured;
    use crate::report::{ColumnChange, ConstraintChange};

    #[test]
    fn narrow_keys_of_new_tables_are_read_from_the_text() {
        let (report, _) = measured("CREATE TABLE t (id serial PRIMARY KEY, n smallint)");
        assert!(
            check_static(&report).is_some_and(|m| m.starts_with("makes t.id (at most 2,147,483,647, from the text)"))
        );
        for sql in [
            "CREATE TABLE t (id bigserial PRIMARY KEY)",
            "CREATE TABLE t (id int PRIMARY KEY REFERENCES users)",
            "CREATE TABLE t (id int, n int)",
        ] {
            assert!(!text_shows(sql), "{sql}");
        }
        assert!(text_shows("CREATE TABLE t (id smallint, PRIMARY KEY (id))"));
    }

    #[test]
    fn a_key_added_to_an_existing_table_is_measured() {
        let (mut report, _) = measured("ALTER TABLE events ADD COLUMN id serial PRIMARY KEY");
        report.column_changes = vec![ColumnChange {
            column: "public.events.id".into(),
            change: "added".into(),
            from: None,
            to: Some("integer".into()),
            rows: Some(3),
            values_changed: None,
        }];
        assert_eq!(check(&report), None, "no key was added");
        report.constraint_changes = vec![ConstraintChange {
            constraint: "events_pkey on public.events".into(),
            constraint_type: "primary key".into(),
            change: "added".into(),
            rows: Some(3),
        }];
        assert!(
            check(&report).is_some_and(|m| m.starts_with("makes public.events.id (integer, at most 2,147,483,647)"))
        );
    }
}
