//! `varchar-length-shrink`: a column's type was changed to a `varchar(n)` shorter than it allowed before (from a
//! longer varchar, or from unbounded text or varchar). Measured on the catalog; values longer than the new limit are
//! counted just before the statement, and when there are any, the statement fails there (SQLSTATE 22001) and the
//! finding says how many.

use super::text::column_types;
use super::{count, RuleDoc, Seen};
use crate::report::{StatementReport, Status};

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a column's varchar length limit was lowered",
    safer: "keep the length, or add a CHECK (length(col) <= n) NOT VALID and VALIDATE it, then shrink",
    explanation: "Lowering a varchar(n) limit (or giving an unbounded text or varchar column one) scans every row under an ACCESS EXCLUSIVE lock, fails the whole statement if any value is longer, and from then on every write of a longer value from the running code fails. A CHECK (length(col) <= n) added NOT VALID and validated separately enforces the same limit without the long lock, and says which rows do not fit before anything fails.",
    schema: "CREATE TABLE users (id int PRIMARY KEY, name varchar(100));\nINSERT INTO users VALUES (1, 'Ada'), (2, 'Grace');",
    bad: "ALTER TABLE users ALTER COLUMN name TYPE varchar(20);",
    safe: "ALTER TABLE users ALTER COLUMN name TYPE varchar(200);",
};

/// The length limit of a type as Postgres prints it: `Some(None)` for unbounded text or varchar, `Some(Some(n))`
/// for `character varying(n)`, `None` for any other type.
fn limit(data_type: &str) -> Option<Option<u64>> {
    match data_type {
        "text" | "character varying" => Some(None),
        _ => data_type.strip_prefix("character varying(")?.strip_suffix(')')?.parse().ok().map(Some),
    }
}

pub(super) fn check(report: &StatementReport) -> Option<String> {
    if report.status == Status::Error {
        return too_long_here(report);
    }
    let shrunk: Vec<String> = report
        .column_changes
        .iter()
        .filter(|c| c.change == "type changed")
        .filter_map(|c| {
            let (from, to) = (c.from.as_deref()?, c.to.as_deref()?);
            let (Some(before), Some(Some(after))) = (limit(from), limit(to)) else { return None };
            before
                .is_none_or(|b| after < b)
                .then(|| format!("{} from {from} to {to} ({} fit here)", c.column, count(c.rows)))
        })
        .collect();
    (!shrunk.is_empty()).then(|| {
        format!(
            "shrinks {}: a longer value in production fails the statement, and afterwards every longer write fails",
            shrunk.join(", ")
        )
    })
}

/// The statement failed on the shadow because values did not fit the new length: they were counted before it.
fn too_long_here(report: &StatementReport) -> Option<String> {
    let error = report.error.as_ref().filter(|e| e.sqlstate.as_deref() == Some("22001"))?;
    let counted: Vec<String> = report
        .values_too_long
        .iter()
        .filter(|v| v.values > 0)
        .map(|v| format!("{} to {} characters: {} values on the shadow are longer", v.column, v.limit, v.values))
        .collect();
    if !counted.is_empty() {
        return Some(format!("shrinks {}, and the statement fails on them ({})", counted.join("; "), error.message));
    }
    let columns = limits_set(&report.sql);
    (!columns.is_empty())
        .then(|| format!("shrinks {}: values on the shadow do not fit ({})", columns.join(", "), error.message))
}

pub(super) fn text_shows(sql: &str) -> bool {
    !limits_set(sql).is_empty()
}

/// The existing columns whose type the statement changes to one with a varchar length limit (`ALTER COLUMN ...
/// TYPE`; a column it adds has no limit to lower), as `t.v to varchar(50)`. The text names only the new limit:
/// whether it is lower than the old one, only the catalog can tell.
fn limits_set(sql: &str) -> Vec<String> {
    column_types(sql)
        .into_iter()
        .filter(|c| c.retyped && (c.data_type.starts_with("VARCHAR(") || c.data_type.starts_with("CHARACTER VARYING(")))
        .map(|c| format!("{} to {}", c.column, c.data_type.to_ascii_lowercase()))
        .collect()
}

/// A varchar limit the statement raised (or kept) rather than lowered. The static side says what the text shows,
/// a new limit, not a lower one: the text alone cannot tell a shrink from a widening.
pub(super) fn disagreement(seen: &Seen<'_>) -> Option<(String, String)> {
    let raised: Vec<String> = seen
        .report
        .column_changes
        .iter()
        .filter(|c| c.change == "type changed")
        .filter_map(|c| {
            let (from, to) = (c.from.as_deref()?, c.to.as_deref()?);
            let (Some(Some(before)), Some(Some(after))) = (limit(from), limit(to)) else { return None };
            (after >= before).then(|| format!("{} from {from} to {to}", c.column))
        })
        .collect();
    if raised.is_empty() {
        return None;
    }
    let expected = format!(
        "a varchar length limit change ({}), which the text alone cannot tell a shrink from a widening",
        limits_set(&seen.report.sql).join(", ")
    );
    Some((expected, format!("no limit lowered: {}", raised.join(", "))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::test_support::{measured, seen};
    use crate::report::ColumnChange;

    fn retyped(from: &str, to: &str) -> ColumnChange {
        ColumnChange {
            column: "public.users.name".into(),
            change: "type changed".into(),
            from: Some(from.into()),
            to: Some(to.into()),
            rows: Some(2),
            values_changed: Some(false),
        }
    }

    #[test]
    fn a_lower_limit_is_a_shrink_and_a_higher_one_is_not() {
        let (mut report, classification) = measured("ALTER TABLE users ALTER COLUMN name TYPE varchar(20)");
        for (from, to, shrinks) in [
            ("character varying(100)", "character varying(20)", true),
            ("text", "character varying(20)", true),
            ("character varying", "character varying(20)", true),
            ("character varying(10)", "character varying(20)", false),
            ("character varying(20)", "text", false),
            ("integer", "character varying(20)", false),
        ] {
            report.column_changes = vec![retyped(from, to)];
            assert_eq!(check(&report).is_some(), shrinks, "{from} -> {to}");
            let raised = from == "character varying(10)";
            assert_eq!(disagreement(&seen(&report, &classification, &[])).is_some(), raised, "{from} -> {to}");
        }
        assert!(text_shows(&report.sql));
    }

    #[test]
    fn the_static_side_says_a_limit_change_not_a_shrink() {
        let (mut report, classification) = measured("ALTER TABLE users ALTER COLUMN name TYPE varchar(200)");
        report.column_changes = vec![retyped("character varying(100)", "character varying(200)")];
        let (expected, measured) = disagreement(&seen(&report, &classification, &[])).expect("a disagreement");
        assert_eq!(
            expected,
            "a varchar length limit change (users.name to varchar(200)), which the text alone cannot tell a shrink \
             from a widening"
        );
        assert!(!expected.contains("lower"), "{expected}");
        assert_eq!(
            measured,
            "no limit lowered: public.users.name from character varying(100) to character varying(200)"
        );
    }

    #[test]
    fn a_column_added_with_a_limit_sets_no_limit_on_an_existing_one() {
        assert!(limits_set("ALTER TABLE users ADD COLUMN nick varchar(20)").is_empty());
        assert!(!text_shows("ALTER TABLE users ADD COLUMN nick varchar(20)"));
        assert!(limits_set("CREATE TABLE t (v varchar(20))").is_empty());
        assert_eq!(
            limits_set(
                "ALTER TABLE users ADD COLUMN nick varchar(20), ALTER COLUMN name SET DATA TYPE varchar(30), \
                 ALTER COLUMN bio TYPE text"
            ),
            ["users.name to varchar(30)"]
        );
    }

    #[test]
    fn values_that_do_not_fit_are_counted() {
        let (mut report, _) = measured("ALTER TABLE users ALTER COLUMN name TYPE varchar(3)");
        report.status = Status::Error;
        report.error = Some(crate::report::StatementError {
            sqlstate: Some("22001".into()),
            message: "value too long for type character varying(3)".into(),
            detail: None,
            hint: None,
            line: 1,
            column: 1,
            ..Default::default()
        });
        report.values_too_long =
            vec![crate::report::ValuesTooLong { column: "public.users.name".into(), limit: 3, values: 1 }];
        assert_eq!(
            check(&report).as_deref(),
            Some("shrinks public.users.name to 3 characters: 1 values on the shadow are longer, and the statement fails on them (value too long for type character varying(3))")
        );
    }
}
