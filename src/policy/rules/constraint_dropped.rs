//! `constraint-dropped`: a PRIMARY KEY, UNIQUE, FOREIGN KEY, CHECK, EXCLUDE or NOT NULL that an existing table had
//! before the statement is gone after it — dropped by name, with a column, or by a CASCADE (measured on the catalog).
//! Constraints of a table the statement dropped are the `drop-table` rule's.

use super::text::{find, starts_with, tokens};
use super::{count, RuleDoc};
use crate::report::StatementReport;

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a constraint production relies on (primary key, unique, foreign key, check, not null) was dropped",
    safer: "keep the constraint; to replace it, add the new one first (NOT VALID, then VALIDATE) and drop the old one after",
    explanation: "A dropped constraint is a guarantee production silently stops having: without its foreign key, orders may reference customers that do not exist; without a primary key or unique constraint, duplicates get in (and the index behind it is gone, so lookups scan); without a CHECK or NOT NULL, values the code never expected are written. Constraints also go without being named: with a dropped column, or by a CASCADE. pgshadow compares each existing table's constraints and NOT NULL columns before and after every statement. To replace a constraint, add the new one first (NOT VALID, then VALIDATE CONSTRAINT) and drop the old one after.",
    schema: "CREATE TABLE customers (id int PRIMARY KEY);\nCREATE TABLE orders (id int PRIMARY KEY, customer_id int CONSTRAINT orders_customer_fk REFERENCES customers, amount int CHECK (amount > 0));\nINSERT INTO customers VALUES (1);\nINSERT INTO orders VALUES (1, 1, 10);",
    bad: "ALTER TABLE orders DROP CONSTRAINT orders_customer_fk;",
    safe: "ALTER TABLE orders ADD CONSTRAINT orders_amount_positive CHECK (amount > 0) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT orders_amount_positive;",
};

/// What a table loses with a constraint of this type.
fn loss(constraint_type: &str, table: &str) -> String {
    match constraint_type {
        "foreign key" => format!("{table} may now reference rows that do not exist"),
        "primary key" | "unique" => format!("{table} may now take duplicates, and lookups lose its index"),
        "check" => format!("{table} may now take values the check refused"),
        "exclusion" => format!("{table} may now take rows the exclusion refused"),
        other => format!("{table} loses a {other} constraint"),
    }
}

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let table_dropped =
        |table: &str| report.dropped_objects.iter().any(|o| o.object_type == "table" && o.identity == table);
    // A constraint the statement made again, of the same name, type and table, and validated, is not lost: `ALTER
    // COLUMN ... TYPE` drops and rebuilds its table's constraints. One made again NOT VALID no longer holds for the
    // rows there.
    let made_again = |dropped: &crate::report::ConstraintChange| {
        report.constraint_changes.iter().any(|c| {
            c.change == "added" && c.constraint == dropped.constraint && c.constraint_type == dropped.constraint_type
        })
    };
    let mut lost = Vec::new();
    // PostgreSQL 18 keeps NOT NULL as a constraint too: it is reported below, from the column.
    for change in
        report.constraint_changes.iter().filter(|c| c.change == "dropped" && c.constraint_type != "n" && !made_again(c))
    {
        let table = change.constraint.rsplit_once(" on ").map_or(change.constraint.as_str(), |(_, t)| t);
        if table_dropped(table) {
            continue;
        }
        let how = report
            .dropped_objects
            .iter()
            .find(|o| o.identity == change.constraint && o.cascaded)
            .map_or("", |_| ", by CASCADE");
        lost.push(format!(
            "{} {} ({}{how}): {}",
            change.constraint_type,
            change.constraint,
            count(change.rows),
            loss(&change.constraint_type, table)
        ));
    }
    for change in report.column_changes.iter().filter(|c| c.change == "dropped not null") {
        lost.push(format!("not null on {} ({}): it may now take NULLs", change.column, count(change.rows)));
    }
    (!lost.is_empty()).then(|| format!("drops {}", lost.join("; ")))
}

/// Whether the text drops a constraint by name or a NOT NULL (a constraint lost with a column or by a CASCADE shows
/// only in the catalog).
pub(super) fn text_shows(sql: &str) -> bool {
    let t = tokens(sql);
    starts_with(&t, &["ALTER", "TABLE"])
        && find(&t, "DROP").is_some_and(|d| {
            t.get(d + 1).is_some_and(|w| w.is("CONSTRAINT"))
                || (t.get(d + 1).is_some_and(|w| w.is("NOT")) && t.get(d + 2).is_some_and(|w| w.is("NULL")))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::test_support::measured;
    use crate::report::{ColumnChange, ConstraintChange, DroppedObject};

    fn dropped(constraint: &str, constraint_type: &str) -> ConstraintChange {
        ConstraintChange {
            constraint: constraint.into(),
            constraint_type: constraint_type.into(),
            change: "dropped".into(),
            rows: Some(3),
        }
    }

    fn object(object_type: &str, identity: &str, cascaded: bool) -> DroppedObject {
        DroppedObject {
            object_type: object_type.into(),
            identity: identity.into(),
            cascaded,
            rows: None,
            rows_known: true,
            estimated: None,
            values: None,
        }
    }

    #[test]
    fn each_dropped_constraint_names_what_production_loses() {
        let (mut report, _) = measured("DROP TABLE customers CASCADE");
        report.constraint_changes = vec![
            dropped("orders_customer_fk on public.orders", "foreign key"),
            dropped("customers_pkey on public.customers", "primary key"),
        ];
        report.dropped_objects = vec![
            object("table", "public.customers", false),
            object("table constraint", "orders_customer_fk on public.orders", true),
        ];
        assert_eq!(
            check(&report).as_deref(),
            Some("drops foreign key orders_customer_fk on public.orders (3 rows, by CASCADE): public.orders may now reference rows that do not exist")
        );
    }

    #[test]
    fn a_constraint_the_statement_made_again_is_not_lost() {
        let (mut report, _) = measured("ALTER TABLE t ALTER COLUMN id TYPE bigint");
        let mut again = dropped("t_pkey on public.t", "primary key");
        again.change = "added".into();
        report.constraint_changes = vec![dropped("t_pkey on public.t", "primary key"), again];
        assert_eq!(check(&report), None);
        report.constraint_changes[1].constraint = "t_pkey2 on public.t".into();
        assert!(check(&report).is_some_and(|m| m.starts_with("drops primary key t_pkey on public.t")));
    }

    #[test]
    fn a_dropped_not_null_is_found_from_the_column() {
        let (mut report, _) = measured("ALTER TABLE users ALTER COLUMN email DROP NOT NULL");
        report.constraint_changes = vec![dropped("users_email_not_null on public.users", "n")];
        report.column_changes = vec![ColumnChange {
            column: "public.users.email".into(),
            change: "dropped not null".into(),
            from: None,
            to: None,
            rows: Some(1),
            values_changed: None,
        }];
        assert_eq!(
            check(&report).as_deref(),
            Some("drops not null on public.users.email (1 row): it may now take NULLs")
        );
        assert!(text_shows(&report.sql));
        assert!(!text_shows("ALTER TABLE users DROP COLUMN email"));
    }

    #[test]
    fn added_constraints_are_not() {
        let (mut report, _) = measured("ALTER TABLE t ADD CHECK (a > 0)");
        report.constraint_changes =
            vec![ConstraintChange { change: "added".into(), ..dropped("c on public.t", "check") }];
        assert_eq!(check(&report), None);
    }
}
