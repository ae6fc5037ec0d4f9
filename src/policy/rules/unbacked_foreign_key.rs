//! `unbacked-foreign-key`: the plan adds a foreign key and, by its end, no index covers the referencing columns
//! (measured on the catalog after the last statement); or a statement deletes rows from, or updates the key of, a
//! table that an existing foreign key without such an index references (eugene's E15): each such row scans the
//! referencing table.

use super::text::{tokens, Tok};
use super::{count, RuleDoc};
use crate::report::{size_label, StatementReport, UnindexedReference};

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a foreign key without an index on its referencing columns was added, or its referenced table was written to",
    safer: "CREATE INDEX on the referencing columns in the same plan",
    explanation: "Postgres indexes the referenced side of a foreign key, not the referencing one. Without an index there, every DELETE or key UPDATE on the referenced table scans the whole referencing table (under lock) to check or cascade, and joins along the key scan too. Add an index on the referencing columns in the same plan. The same holds for a foreign key that already exists: a plan that deletes from (or changes the keys of) the table it references makes every such row scan the referencing table, which pgshadow names with its rows.",
    schema: "CREATE TABLE customers (id int PRIMARY KEY);",
    bad: "CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers);",
    safe: "CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers);\nCREATE INDEX orders_customer_id_idx ON orders (customer_id);",
};

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let mut found = Vec::new();
    if !report.unbacked_foreign_keys.is_empty() {
        found.push(format!(
            "adds foreign key {} with no index on the referencing columns: deletes and key updates on the referenced table scan the referencing one",
            report.unbacked_foreign_keys.join(", ")
        ));
    }
    let set = set_columns(&tokens(&report.sql));
    for reference in report.unindexed_references.iter().filter(|r| checks(report, r, &set)) {
        let child = reference.foreign_key.rsplit_once(" on ").map_or(reference.foreign_key.as_str(), |(_, t)| t);
        let rows = match &reference.referencing_production {
            Some(size) => size_label(size),
            None => count(reference.referencing_rows),
        };
        found.push(format!(
            "writes to {}, referenced by {} with no index on its referencing columns: each deleted row or changed key scans {child} ({rows}) under lock",
            reference.referenced_table,
            reference.foreign_key,
        ));
    }
    (!found.is_empty()).then(|| found.join("; "))
}

/// Whether the statement makes Postgres check the foreign key: it deleted rows from the referenced table, or its
/// `SET` names a referenced column (an UPDATE of other columns checks nothing).
fn checks(report: &StatementReport, reference: &UnindexedReference, set: &[String]) -> bool {
    let effect = report.table_effects.iter().find(|e| e.table == reference.referenced_table);
    // An unknown count could be any number: the check may run for every row.
    let deleted = effect.is_some_and(|e| e.deleted != Some(0));
    let key_updated =
        effect.is_some_and(|e| e.updated != Some(0)) && reference.referenced_columns.iter().any(|c| set.contains(c));
    deleted || key_updated
}

/// The columns an UPDATE's `SET` assigns (`SET a = 1, b = 2`, `SET (a, b) = (1, 2)`), by their names.
fn set_columns(t: &[Tok]) -> Vec<String> {
    let Some(start) = t.iter().position(|w| w.is("SET")) else { return Vec::new() };
    let is_name = |w: &Tok| w.key == "\"" || w.key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    let (mut depth, mut target_list) = (0i32, false);
    let mut columns = Vec::new();
    for (i, w) in t.iter().enumerate().skip(start + 1) {
        let next = t.get(i + 1);
        match w.key.as_str() {
            "(" => {
                // A parenthesised list of targets starts right after SET or after a comma between assignments.
                target_list = depth == 0 && (t[i - 1].is("SET") || t[i - 1].is(","));
                depth += 1;
            }
            ")" => {
                depth -= 1;
                target_list = false;
            }
            "WHERE" | "FROM" | "RETURNING" if depth == 0 => break,
            _ if depth == 0 && is_name(w) && next.is_some_and(|n| n.is("=")) => columns.push(w.name.clone()),
            _ if target_list && is_name(w) && next.is_some_and(|n| n.is(",") || n.is(")")) => {
                columns.push(w.name.clone())
            }
            _ => {}
        }
    }
    columns
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::test_support::measured;
    use crate::report::TableEffect;

    fn reference() -> UnindexedReference {
        UnindexedReference {
            foreign_key: "orders_customer_id_fkey on public.orders".into(),
            referenced_table: "public.customers".into(),
            referenced_columns: vec!["id".into()],
            referencing_rows: Some(50),
            referencing_production: None,
        }
    }

    fn effect(deleted: u64, updated: u64) -> TableEffect {
        TableEffect::measured("public.customers", (0, updated, deleted, 0))
    }

    #[test]
    fn deleting_from_a_table_an_unindexed_key_references_is_found() {
        let (mut report, _) = measured("DELETE FROM customers WHERE id = 7");
        report.unindexed_references = vec![reference()];
        report.table_effects = vec![effect(1, 0)];
        assert_eq!(
            check(&report).as_deref(),
            Some("writes to public.customers, referenced by orders_customer_id_fkey on public.orders with no index on its referencing columns: each deleted row or changed key scans public.orders (50 rows) under lock")
        );
    }

    #[test]
    fn only_an_update_of_the_key_checks_it() {
        let (mut report, _) = measured("UPDATE customers SET name = 'x' WHERE id = 7");
        report.unindexed_references = vec![reference()];
        report.table_effects = vec![effect(0, 1)];
        assert_eq!(check(&report), None);
        report.sql = "UPDATE customers SET id = id + 1000, name = 'x' WHERE id = 7".into();
        assert!(check(&report).is_some());
        assert_eq!(set_columns(&tokens("UPDATE t SET (a, b) = (1, 2) WHERE c = 3")), ["a", "b"]);
    }
}
