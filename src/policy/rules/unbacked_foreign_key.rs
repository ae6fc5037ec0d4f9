//! `unbacked-foreign-key`: the plan adds a foreign key and, by its end, no index covers the referencing columns
//! (measured on the catalog after the last statement).

use super::RuleDoc;
use crate::report::StatementReport;

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a foreign key was added without an index on its referencing columns",
    safer: "CREATE INDEX on the referencing columns in the same plan",
    explanation: "Postgres indexes the referenced side of a foreign key, not the referencing one. Without an index there, every DELETE or key UPDATE on the referenced table scans the whole referencing table (under lock) to check or cascade, and joins along the key scan too. Add an index on the referencing columns in the same plan.",
    schema: "CREATE TABLE customers (id int PRIMARY KEY);",
    bad: "CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers);",
    safe: "CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers);\nCREATE INDEX orders_customer_id_idx ON orders (customer_id);",
};

pub(super) fn check(report: &StatementReport) -> Option<String> {
    (!report.unbacked_foreign_keys.is_empty()).then(|| {
        format!(
            "adds foreign key {} with no index on the referencing columns: deletes and key updates on the referenced table scan the referencing one",
            report.unbacked_foreign_keys.join(", ")
        )
    })
}
