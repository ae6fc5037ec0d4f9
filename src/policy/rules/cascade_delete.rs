//! `cascade-delete`: a statement deleted rows in tables it does not name — through `ON DELETE CASCADE` foreign
//! keys or triggers. The blast radius is larger than the statement reads.

use super::rows;
use crate::report::StatementReport;

pub(super) const SUMMARY: &str = "a statement deleted rows in other tables through foreign-key cascades or triggers";

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let tables: Vec<String> = report
        .table_effects
        .iter()
        .filter(|e| !e.direct && e.deleted > 0)
        .map(|e| format!("{} ({})", e.table, rows(e.deleted)))
        .collect();
    (!tables.is_empty()).then(|| format!("cascade deleted rows in {}", tables.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::test_support::measured;
    use crate::report::TableEffect;

    fn deleted(table: &str, n: u64, direct: bool) -> TableEffect {
        TableEffect { table: table.into(), inserted: 0, updated: 0, deleted: n, truncated: 0, direct }
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
        set_null.updated = 2;
        report.table_effects = vec![deleted("public.users", 1, true), set_null];
        assert_eq!(check(&report), None);
    }
}
