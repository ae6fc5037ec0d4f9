//! `drop-table`: a statement dropped a table — named, or taken by a CASCADE. Its rows are gone.

use super::text::{has, tokens};
use super::{count, unknown_note, RuleDoc, Seen};
use crate::report::{about, StatementReport};

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a statement dropped a table (named or taken by CASCADE) and every row in it",
    safer: "rename the table first and drop it in a later release, once nothing reads it",
    explanation: "Dropping a table destroys every row in it, and `CASCADE` silently widens the blast radius to every view, foreign key and function that depends on it. pgshadow measures both: the rows the table held and every object the CASCADE took.",
    schema: "CREATE TABLE users (id int PRIMARY KEY);\nINSERT INTO users VALUES (1), (2);",
    bad: "DROP TABLE users;",
    safe: "ALTER TABLE users RENAME TO users_retired;  -- drop it in a later release, once nothing reads it",
};

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let tables: Vec<String> = report
        .dropped_objects
        .iter()
        .filter(|o| o.object_type == "table")
        .map(|o| {
            let how = if o.cascaded { ", by CASCADE" } else { "" };
            let rows = match (&o.estimated, o.rows_known) {
                (Some(e), _) => about(e.rows, e.basis),
                // A partitioned table holds no rows itself: its partitions, dropped with it, are named too.
                (None, true) if o.rows.is_none() => "its rows are its partitions'".to_owned(),
                (None, true) => count(o.rows),
                (None, false) => count(None),
            };
            format!("{} ({rows}{how})", o.identity)
        })
        .collect();
    let unknown = report.dropped_objects.iter().any(|o| !o.rows_known && o.estimated.is_none());
    (!tables.is_empty()).then(|| format!("drops table {}{}", tables.join(", "), unknown_note(unknown)))
}

/// `DROP TABLE IF EXISTS` of a table the shadow does not have: nothing was dropped.
pub(super) fn disagreement(seen: &Seen<'_>) -> Option<(String, String)> {
    let dropped = seen.report.dropped_objects.iter().any(|o| o.object_type == "table");
    if dropped || !has(&tokens(&seen.report.sql), &["IF", "EXISTS"]) {
        return None;
    }
    let names = seen.classification.targets.join(", ");
    Some((
        "a table dropped with its rows".to_owned(),
        format!("nothing dropped: the shadow has no table {names}, and IF EXISTS skips it"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::test_support::{measured, seen};
    use crate::report::DroppedObject;

    fn object(object_type: &str, identity: &str, cascaded: bool, rows: Option<u64>) -> DroppedObject {
        DroppedObject {
            object_type: object_type.into(),
            identity: identity.into(),
            cascaded,
            rows,
            values: None,
            rows_known: true,
            estimated: None,
        }
    }

    #[test]
    fn a_dropped_table_is_named_with_its_rows() {
        let (mut report, _) = measured("DROP SCHEMA app CASCADE");
        report.dropped_objects = vec![object("schema", "app", false, None), object("table", "app.t", true, Some(3))];
        assert_eq!(check(&report).as_deref(), Some("drops table app.t (3 rows, by CASCADE)"));
    }

    #[test]
    fn a_dropped_partitioned_table_holds_no_rows_of_its_own() {
        let (mut report, _) = measured("DROP TABLE events");
        report.dropped_objects =
            vec![object("table", "public.events", false, None), object("table", "public.events_2026", false, Some(40))];
        let message = check(&report).expect("found");
        assert_eq!(message, "drops table public.events (its rows are its partitions'), public.events_2026 (40 rows)");
    }

    #[test]
    fn if_exists_on_a_missing_table_drops_nothing() {
        let (report, classification) = measured("DROP TABLE IF EXISTS old_t");
        let (_, said) = disagreement(&seen(&report, &classification, &[])).expect("a disagreement");
        assert_eq!(said, "nothing dropped: the shadow has no table old_t, and IF EXISTS skips it");
        let (report, classification) = measured("DROP TABLE old_t");
        assert_eq!(disagreement(&seen(&report, &classification, &[])), None);
    }

    #[test]
    fn dropping_a_view_or_index_is_not_dropping_a_table() {
        let (mut report, _) = measured("DROP VIEW v");
        report.dropped_objects = vec![object("view", "public.v", false, None)];
        assert_eq!(check(&report), None);
    }
}
