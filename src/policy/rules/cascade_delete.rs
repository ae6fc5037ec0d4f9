//! `cascade-delete`: a statement deleted rows in tables it does not name — through `ON DELETE CASCADE` foreign
//! keys or triggers. The blast radius is larger than the statement reads.

use super::{effect_count, unknown_note, RuleDoc};
use crate::report::StatementReport;

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a statement deleted rows in other tables through foreign-key cascades or triggers",
    safer: "delete or archive the dependent rows explicitly first, so the plan says what it destroys",
    explanation: "`ON DELETE CASCADE` foreign keys (and triggers) delete rows in tables the statement never names, so the statement reads smaller than what it destroys. pgshadow counts the rows deleted in every other table.",
    schema: "CREATE TABLE customers (id int PRIMARY KEY);\nCREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers ON DELETE CASCADE);\nINSERT INTO customers VALUES (7), (8);\nINSERT INTO orders VALUES (1, 7), (2, 7), (3, 8);",
    bad: "DELETE FROM customers WHERE id = 7;",
    safe: "DELETE FROM customers WHERE id = 8 AND NOT EXISTS (SELECT 1 FROM orders WHERE customer_id = 8);  -- archive or delete the orders explicitly first",
};

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let mut tables: Vec<String> = report
        .table_effects
        .iter()
        .filter(|e| !e.direct && e.production_deleted() != Some(0))
        .map(|e| format!("{} ({})", e.table, effect_count(e, |x| x.deleted, e.deleted)))
        .collect();
    // From a table of unknown size, a SET NULL or SET DEFAULT path changes an unknown number of rows too, unless
    // the profile estimates them.
    // An UPDATE's paths (ON UPDATE) delete nothing: `unknown-row-count` names them.
    let paths: &[crate::report::CascadePath] = match report.kind {
        crate::plan::StatementKind::Delete => &report.cascade_paths,
        _ => &[],
    };
    for p in paths.iter().filter(|p| p.action != "delete") {
        let effect = report.table_effects.iter().find(|e| e.table == p.table);
        let rows = effect.map_or_else(|| "rows unknown".to_owned(), |e| effect_count(e, |x| x.updated, None));
        tables.push(format!("{} ({}, {rows})", p.table, p.action));
    }
    let unknown = report.table_effects.iter().any(|e| !e.direct && e.production_deleted().is_none())
        || paths.iter().any(|p| {
            p.action != "delete"
                && !report.table_effects.iter().any(|e| e.table == p.table && e.production_updated().is_some())
        });
    (!tables.is_empty()).then(|| format!("cascade deleted rows in {}{}", tables.join(", "), unknown_note(unknown)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::test_support::measured;
    use crate::report::TableEffect;

    fn deleted(table: &str, n: u64, direct: bool) -> TableEffect {
        TableEffect { direct, ..TableEffect::measured(table, (0, 0, n, 0)) }
    }

    #[test]
    fn indirect_deletes_are_found() {
        let (mut report, _) = measured("DELETE FROM users WHERE id = 1");
        report.table_effects = vec![deleted("public.orders", 3, false), deleted("public.users", 1, true)];
        assert_eq!(check(&report).as_deref(), Some("cascade deleted rows in public.orders (3 rows)"));
    }

    #[test]
    fn direct_deletes_and_indirect_updates_are_not() {
        let (mut report, _) = measured("DELETE FROM users WHERE id = 1");
        let mut set_null = deleted("public.notes", 0, false);
        set_null.updated = Some(2);
        report.table_effects = vec![deleted("public.users", 1, true), set_null];
        assert_eq!(check(&report), None);
    }
}
