//! `not-null-validation-scan`: `SET NOT NULL` on a column of a table with rows scans every row under an ACCESS
//! EXCLUSIVE lock (measured: the column's nullability changed on an existing table).

use super::{rows, RuleDoc, Seen};
use crate::report::StatementReport;

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "SET NOT NULL scanned a table with rows under a lock that blocks reads and writes",
    safer: "ADD CONSTRAINT ... CHECK (column IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, then SET NOT NULL",
    explanation: "ALTER COLUMN ... SET NOT NULL checks every row while holding an ACCESS EXCLUSIVE lock: reads and writes wait for the whole scan. Since PostgreSQL 12 a validated CHECK (column IS NOT NULL) constraint lets SET NOT NULL skip the scan: add the constraint NOT VALID, VALIDATE it in a later transaction (that takes a lock that lets reads and writes go on), then SET NOT NULL and drop the CHECK.",
    schema: "CREATE TABLE users (id int PRIMARY KEY, email text);\nINSERT INTO users VALUES (1, 'a@example.com'), (2, 'b@example.com');",
    bad: "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
    safe: "ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;",
};

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let columns: Vec<String> = report
        .column_changes
        .iter()
        .filter(|c| c.change == "set not null" && c.rows.unwrap_or(0) > 0)
        .map(|c| format!("{} ({} to check)", c.column, rows(c.rows.unwrap_or(0))))
        .collect();
    (!columns.is_empty()).then(|| format!("SET NOT NULL scans {} under an ACCESS EXCLUSIVE lock", columns.join(", ")))
}

/// SET NOT NULL on a table with no rows here, or on a table new in this plan.
pub(super) fn disagreement(seen: &Seen<'_>) -> Option<(String, String)> {
    let expected = "a scan of every row under an ACCESS EXCLUSIVE lock".to_owned();
    let set = seen.report.column_changes.iter().filter(|c| c.change == "set not null");
    let reasons: Vec<String> = set
        .filter_map(|c| {
            let table = c.column.rsplit_once('.').map_or(c.column.as_str(), |(table, _)| table);
            Some(format!("{}: {}", c.column, seen.empty_here(table, c.rows)?))
        })
        .collect();
    if !reasons.is_empty() {
        return Some((expected, format!("nothing to scan for SET NOT NULL on {}", reasons.join("; "))));
    }
    Some((expected, seen.new_table_reason("no scan that matters")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::test_support::{measured, seen};
    use crate::report::{ColumnChange, SchemaChange};

    #[test]
    fn an_empty_or_new_table_is_why_nothing_was_scanned() {
        let (mut report, classification) = measured("ALTER TABLE t ALTER COLUMN c SET NOT NULL");
        report.column_changes = vec![ColumnChange {
            column: "public.t.c".into(),
            change: "set not null".into(),
            from: None,
            to: None,
            rows: Some(0),
            values_changed: None,
        }];
        let (_, said) = disagreement(&seen(&report, &classification, &[])).expect("a disagreement");
        assert_eq!(said, "nothing to scan for SET NOT NULL on public.t.c: public.t has no rows on the shadow");
        report.column_changes.clear();
        assert_eq!(disagreement(&seen(&report, &classification, &[])), None);
        let (mut create, _) = measured("CREATE TABLE t (c int)");
        create.schema_changes = vec![SchemaChange {
            command: "CREATE TABLE".into(),
            object_type: "table".into(),
            identity: "public.t".into(),
        }];
        let earlier = [create];
        let (_, said) = disagreement(&seen(&report, &classification, &earlier)).expect("a disagreement");
        assert!(said.contains("public.t is new in this plan"), "{said}");
    }
}
