//! `column-type-narrowing`: a column's type change altered existing values (measured: the new values, cast back to
//! the old type, differ from the old ones), e.g. rounding numerics or truncating timestamps to dates.

use super::text::{has, tokens};
use super::{rows, RuleDoc, Seen};
use crate::report::StatementReport;

pub(super) const DOC: RuleDoc = RuleDoc {
    summary: "a column type change altered existing values (rounded, truncated or converted)",
    safer: "widen instead, or convert into a new column and compare the values before switching",
    explanation: "ALTER COLUMN ... TYPE converts every value, and a narrower type changes some silently: numeric(10,2) to numeric(10,0) rounds prices, timestamp to date drops the time, a USING expression rewrites values. pgshadow compares the values before with the new values cast back to the old type. Widen instead, or convert into a new column and compare before switching.",
    schema: "CREATE TABLE products (id int PRIMARY KEY, price numeric(10,2));\nINSERT INTO products VALUES (1, 9.99), (2, 20.00);",
    bad: "ALTER TABLE products ALTER COLUMN price TYPE numeric(10,0);",
    safe: "ALTER TABLE products ALTER COLUMN price TYPE numeric(12,2);",
};

pub(super) fn check(report: &StatementReport) -> Option<String> {
    let columns: Vec<String> = report
        .column_changes
        .iter()
        .filter(|c| c.values_changed == Some(true))
        .map(|c| {
            format!("{} from {} to {}", c.column, c.from.as_deref().unwrap_or("?"), c.to.as_deref().unwrap_or("?"))
        })
        .collect();
    (!columns.is_empty()).then(|| format!("converting {} changed existing values", columns.join(", ")))
}

/// A conversion that can alter values (or one with a USING expression), measured to have altered none.
pub(super) fn disagreement(seen: &Seen<'_>) -> Option<(String, String)> {
    let using = has(&tokens(&seen.report.sql), &["USING"]);
    let (expected, kept): (Vec<String>, Vec<String>) = seen
        .report
        .column_changes
        .iter()
        .filter(|c| c.change == "type changed" && c.values_changed == Some(false))
        .filter_map(|c| {
            let (from, to) = (c.from.as_deref()?, c.to.as_deref()?);
            (using || may_alter(from, to)).then(|| {
                let n = c.rows.map_or_else(|| "rows unknown".to_owned(), rows);
                (format!("{from} to {to}"), format!("{} ({n})", c.column))
            })
        })
        .unzip();
    (!kept.is_empty()).then(|| {
        (
            format!("values altered converting {}", expected.join(", ")),
            format!("no value changed in {}: each converts back to the value it was", kept.join(", ")),
        )
    })
}

/// Whether converting `from` to `to` (types as Postgres prints them) can round, cut or drop part of a value: a lower
/// numeric scale or precision, numbers to integers, double precision to real, timestamps to dates or times, or a
/// lower fractional-second precision.
fn may_alter(from: &str, to: &str) -> bool {
    let base = |t: &str| t.split('(').next().unwrap_or(t).trim().to_owned();
    let args = |t: &str| -> Vec<u32> {
        let inner = t.split_once('(').and_then(|(_, r)| r.split_once(')')).map_or("", |(a, _)| a);
        inner.split(',').filter_map(|a| a.trim().parse().ok()).collect()
    };
    let (b_from, b_to) = (base(from), base(to));
    let integer = |t: &str| matches!(t, "smallint" | "integer" | "bigint");
    let fractional = |t: &str| matches!(t, "numeric" | "real" | "double precision");
    let timestamp = |t: &str| t.starts_with("timestamp");
    match (b_from.as_str(), b_to.as_str()) {
        ("numeric", "numeric") => match (args(from).as_slice(), args(to).as_slice()) {
            ([], [_, ..]) => true,
            ([p, s], [p2]) => *s > 0 || p2 < p,
            ([p], [p2, ..]) => p2 < p,
            ([p, s], [p2, s2]) => s2 < s || p2 < p,
            _ => false,
        },
        ("double precision", "real") => true,
        (f, t) if fractional(f) && integer(t) => true,
        (f, "date") | (f, "time without time zone") | (f, "time with time zone") if timestamp(f) => true,
        (f, t) if timestamp(f) && timestamp(t) => {
            // timestamp(n) keeps n fractional digits; without one it keeps 6.
            let digits = |t: &str| args(t).first().copied().unwrap_or(6);
            digits(to) < digits(from)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::test_support::{measured, seen};
    use crate::report::ColumnChange;

    #[test]
    fn conversions_that_can_alter_values_are_told_apart() {
        for (from, to, alters) in [
            ("numeric(10,2)", "numeric(10,0)", true),
            ("numeric(10,2)", "numeric(12,2)", false),
            ("numeric", "numeric(10,2)", true),
            ("numeric(10,2)", "integer", true),
            ("double precision", "real", true),
            ("timestamp without time zone", "date", true),
            ("timestamp(6) with time zone", "timestamp(0) with time zone", true),
            ("timestamp without time zone", "timestamp with time zone", false),
            ("integer", "bigint", false),
            ("character varying(10)", "character varying(50)", false),
        ] {
            assert_eq!(may_alter(from, to), alters, "{from} -> {to}");
        }
    }

    #[test]
    fn a_rounding_conversion_that_changed_nothing_says_so() {
        let (mut report, classification) = measured("ALTER TABLE p ALTER COLUMN price TYPE numeric(10,0)");
        let change = |from: &str, to: &str| ColumnChange {
            column: "public.p.price".into(),
            change: "type changed".into(),
            from: Some(from.into()),
            to: Some(to.into()),
            rows: Some(2),
            values_changed: Some(false),
        };
        report.column_changes = vec![change("numeric(10,2)", "numeric(10,0)")];
        assert_eq!(
            disagreement(&seen(&report, &classification, &[])),
            Some((
                "values altered converting numeric(10,2) to numeric(10,0)".to_owned(),
                "no value changed in public.p.price (2 rows): each converts back to the value it was".to_owned()
            ))
        );
        report.column_changes = vec![change("integer", "bigint")];
        assert_eq!(disagreement(&seen(&report, &classification, &[])), None);
    }
}
