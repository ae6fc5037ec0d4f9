//! `drop-table`: a statement dropped a table — named, or taken by a CASCADE. Its rows are gone.

use super::rows;
use crate::report::StatementReport;

pub(super) const SUMMARY: &str = "a statement dropped a table (named or taken by CASCADE) and every row in it";

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let tables: Vec<String> = report
        .dropped_objects
        .iter()
        .filter(|o| o.object_type == "table")
        .map(|o| {
            let how = if o.cascaded { ", by CASCADE" } else { "" };
            format!("{} ({}{how})", o.identity, rows(o.rows.unwrap_or(0)))
        })
        .collect();
    (!tables.is_empty()).then(|| format!("drops table {}", tables.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::test_support::measured;
    use crate::report::DroppedObject;

    fn object(object_type: &str, identity: &str, cascaded: bool, rows: Option<u64>) -> DroppedObject {
        DroppedObject { object_type: object_type.into(), identity: identity.into(), cascaded, rows }
    }

    #[test]
    fn a_dropped_table_is_named_with_its_rows() {
        let (mut report, _) = measured("DROP SCHEMA app CASCADE");
        report.dropped_objects = vec![object("schema", "app", false, None), object("table", "app.t", true, Some(3))];
        assert_eq!(check(&report).as_deref(), Some("drops table app.t (3 rows, by CASCADE)"));
    }

    #[test]
    fn dropping_a_view_or_index_is_not_dropping_a_table() {
        let (mut report, _) = measured("DROP VIEW v");
        report.dropped_objects = vec![object("view", "public.v", false, None)];
        assert_eq!(check(&report), None);
    }
}
