//! `rename`: a table, column, schema, view, sequence or type was renamed (an enum value's rename is
//! `enum-value-change`'s). Code still running against the
//! old name breaks the moment the plan commits. Measured for tables and columns of existing tables (their columns'
//! identities change in the catalog); from the text alone for the other objects, which the shadow does not follow.

use super::text::{find, name_at, object_after_verb, starts_with, tokens};
use super::RuleDoc;
use crate::report::{StatementReport, Status};

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a table, column, schema, view, sequence or type was renamed",
    safer: "expand/contract: add the new name beside the old (a view, a column kept in sync by a trigger), deploy code that uses it, then drop the old",
    explanation: "A rename is instant and takes a short ACCESS EXCLUSIVE lock, but every query of the application still running uses the old name, and fails from the moment the plan commits until the new code is deployed everywhere. Rename in steps instead (expand/contract): add the new name beside the old one (a view over the renamed table, a new column kept in sync by a trigger), deploy code that uses the new name, then drop the old one. pgshadow sees table and column renames in the catalog; schemas, views, sequences and types are read from the text.",
    schema: "CREATE TABLE users (id int PRIMARY KEY, email text);\nINSERT INTO users VALUES (1, 'a@example.com');",
    bad: "ALTER TABLE users RENAME COLUMN email TO email_address;",
    safe: "ALTER TABLE users ADD COLUMN email_address text;  -- kept in sync, then backfilled; email dropped in a later release",
};

/// Renames measured on the catalog: columns whose identity changed.
pub(super) fn check(report: &StatementReport) -> Option<String> {
    let mut renames: Vec<String> = Vec::new();
    for change in report.column_changes.iter().filter(|c| c.change == "renamed") {
        let (Some(from), Some(to)) = (change.from.as_deref(), change.to.as_deref()) else { continue };
        let (Some((from_table, from_column)), Some((to_table, to_column))) =
            (from.rsplit_once('.'), to.rsplit_once('.'))
        else {
            continue;
        };
        let rename = if from_table == to_table {
            format!("column {from} to {to_column}")
        } else if from_column == to_column {
            format!("table {from_table} to {to_table}")
        } else {
            format!("column {from} to {to}")
        };
        if !renames.contains(&rename) {
            renames.push(rename);
        }
    }
    (!renames.is_empty()).then(|| format!("renames {}: {}", renames.join(", "), CONSEQUENCE))
}

const CONSEQUENCE: &str = "code still running uses the old name and fails until it is deployed again";

/// The objects whose names application code uses (an index's or a constraint's name it seldom does).
const RENAMED_OBJECTS: [&str; 7] =
    ["table", "foreign table", "view", "materialized view", "sequence", "schema", "type"];

/// A rename the text shows (`ALTER ... RENAME ...`), as `what old to new`.
pub(super) fn text_shows(sql: &str) -> Option<String> {
    let t = tokens(sql);
    if !starts_with(&t, &["ALTER"]) {
        return None;
    }
    let (object, at) = object_after_verb(&t)?;
    let object = object.to_ascii_lowercase();
    if !RENAMED_OBJECTS.contains(&object.as_str()) {
        return None;
    }
    let (name, after_name) = name_at(&t, at)?;
    let rename = find(&t, "RENAME").filter(|r| *r >= after_name)?;
    let next = t.get(rename + 1)?;
    let renamed = if next.is("TO") {
        format!("{object} {name} to {}", t.get(rename + 2)?.name)
    } else if next.is("CONSTRAINT") || next.is("ATTRIBUTE") || next.is("VALUE") {
        // An enum value's rename is `enum-value-change`'s.
        return None;
    } else {
        let column = if next.is("COLUMN") { rename + 2 } else { rename + 1 };
        format!("column {name}.{} to {}", t.get(column)?.name, t.get(column + 2)?.name)
    };
    Some(renamed)
}

/// A rename the shadow cannot measure: of a schema, view, sequence or type. Renames of tables and
/// columns are measured on the catalog, so when the statement ran and the catalog shows none, the table was new.
pub(super) fn check_static(report: &StatementReport) -> Option<String> {
    let renamed = text_shows(&report.sql)?;
    let measured_kind = renamed.starts_with("table ") || renamed.starts_with("column ");
    if measured_kind && report.status == Status::Ok {
        return None;
    }
    Some(format!("renames {renamed} (from the text: the shadow does not follow this object): {CONSEQUENCE}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::test_support::measured;
    use crate::report::ColumnChange;

    fn renamed(from: &str, to: &str) -> ColumnChange {
        ColumnChange {
            column: to.into(),
            change: "renamed".into(),
            from: Some(from.into()),
            to: Some(to.into()),
            rows: Some(3),
            values_changed: None,
        }
    }

    #[test]
    fn renamed_columns_and_tables_are_measured() {
        let (mut report, _) = measured("ALTER TABLE users RENAME TO members");
        report.column_changes = vec![
            renamed("public.users.id", "public.members.id"),
            renamed("public.users.email", "public.members.email"),
        ];
        assert_eq!(
            check(&report).as_deref(),
            Some(format!("renames table public.users to public.members: {CONSEQUENCE}")).as_deref()
        );
        report.column_changes = vec![renamed("public.users.email", "public.users.mail")];
        assert!(check(&report).is_some_and(|m| m.starts_with("renames column public.users.email to mail:")));
    }

    #[test]
    fn the_text_shows_every_kind_of_rename() {
        for (sql, expected) in [
            ("ALTER TABLE users RENAME TO members", Some("table users to members")),
            ("alter table only app.users rename column email to mail", Some("column app.users.email to mail")),
            ("ALTER TABLE IF EXISTS users RENAME email TO mail", Some("column users.email to mail")),
            ("ALTER SCHEMA app RENAME TO shop", Some("schema app to shop")),
            ("ALTER MATERIALIZED VIEW totals RENAME TO sums", Some("materialized view totals to sums")),
            ("ALTER SEQUENCE ids RENAME TO seq", Some("sequence ids to seq")),
            ("ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'", None),
            ("ALTER TYPE mood RENAME TO feeling", Some("type mood to feeling")),
            ("ALTER TABLE users RENAME CONSTRAINT a TO b", None),
            ("ALTER INDEX users_pkey RENAME TO users_pk", None),
            ("ALTER TABLE users ADD COLUMN rename text", None),
        ] {
            assert_eq!(text_shows(sql).as_deref(), expected, "{sql}");
        }
    }

    #[test]
    fn a_table_rename_the_shadow_ran_is_left_to_the_measurement() {
        let (report, _) = measured("ALTER TABLE users RENAME TO members");
        assert_eq!(check_static(&report), None);
        let (report, _) = measured("ALTER VIEW totals RENAME TO sums");
        assert!(check_static(&report).is_some_and(|m| m.starts_with("renames view totals to sums (from the text")));
    }
}
