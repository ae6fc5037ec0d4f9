//! The selectivity of a WHERE clause, from a profile's statistics of the table's columns: the arithmetic of
//! PostgreSQL's planner (`eqsel`, `scalarineqsel`, `clauselist_selectivity`) done on the `pg_stats` values the
//! profile holds, since a shadow's empty table gives its own planner nothing to work with.
//!
//! A comparison of a column with a constant takes its fraction from the column's most-common values and histogram
//! bounds where the profile has them, from `n_distinct` and `null_frac` where it has no values (`--values none`,
//! free text), and from PostgreSQL's own defaults where it has no statistics or the clause is not a comparison the
//! statistics answer (a function call, a subquery, a join); the method then says `default selectivity`. AND
//! multiplies, OR adds less the overlap, NOT complements.

use sqlparser::ast::{BinaryOperator, Expr, InTarget, UnaryOperator, Value};

use crate::profile::{ColumnStats, TableProfile};

/// PostgreSQL's `DEFAULT_EQ_SEL`: an equality the statistics cannot answer.
pub const DEFAULT_EQ_SEL: f64 = 0.005;
/// PostgreSQL's `DEFAULT_INEQ_SEL`: a range the statistics cannot answer.
pub const DEFAULT_INEQ_SEL: f64 = 1.0 / 3.0;
/// PostgreSQL's `DEFAULT_MATCH_SEL`: a pattern match.
pub const DEFAULT_MATCH_SEL: f64 = 0.005;
/// PostgreSQL's `DEFAULT_RANGE_INEQ_SEL`: a range with both ends (BETWEEN) the statistics cannot answer.
pub const DEFAULT_RANGE_INEQ_SEL: f64 = 0.005;

/// Columns fixed by equality (or IN) to constants, each with its values.
pub type EqualityKeys = Vec<(String, Vec<String>)>;

/// A WHERE clause's selectivity, and how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Selectivity {
    /// The fraction of the table's rows it matches, 0 to 1.
    pub fraction: f64,
    /// What each part rests on, in words.
    pub parts: Vec<String>,
    /// For a clause that is equality (or IN) on columns with constants, ANDed: each column and its values.
    pub keys: EqualityKeys,
}

impl Selectivity {
    /// `WHERE selectivity 0.8%: created_at < '2024-01-01' from the profile's histogram (0.8%)`.
    pub fn method(&self) -> String {
        format!("WHERE selectivity {}: {}", percent(self.fraction), self.parts.join("; "))
    }
}

/// `0.8%`, `12.5%`, `0.0031%`.
pub fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    match p {
        p if p >= 10.0 => format!("{p:.0}%"),
        p if p >= 0.1 => format!("{p:.1}%"),
        p => format!("{:.2}%", p).replace("0.00%", "<0.01%"),
    }
}

/// The selectivity of `clause` on `table`, whose production rows are `rows`.
pub fn of(clause: &Expr, table: &TableProfile, rows: f64) -> Selectivity {
    let mut parts = Vec::new();
    let fraction = clamp(estimate(clause, table, rows, &mut parts));
    let keys = equality_keys(clause).unwrap_or_default();
    Selectivity { fraction, parts, keys }
}

fn clamp(f: f64) -> f64 {
    if f.is_nan() {
        DEFAULT_INEQ_SEL
    } else {
        f.clamp(0.0, 1.0)
    }
}

fn estimate(clause: &Expr, table: &TableProfile, rows: f64, parts: &mut Vec<String>) -> f64 {
    use BinaryOperator as Op;
    match clause {
        Expr::Nested(inner) => estimate(inner, table, rows, parts),
        Expr::BinaryOp { left, op: Op::And, right } => {
            estimate(left, table, rows, parts) * estimate(right, table, rows, parts)
        }
        Expr::BinaryOp { left, op: Op::Or, right } => {
            let (a, b) = (clamp(estimate(left, table, rows, parts)), clamp(estimate(right, table, rows, parts)));
            a + b - a * b
        }
        Expr::UnaryOp { op: UnaryOperator::Not, expr } => 1.0 - clamp(estimate(expr, table, rows, parts)),
        Expr::BinaryOp { left, op, right } => {
            let (column, value, op) = match (column_of(left), constant(right), column_of(right), constant(left)) {
                (Some(c), Some(v), _, _) => (c, v, op.clone()),
                (_, _, Some(c), Some(v)) => (c, v, flipped(op)),
                _ => return default(clause, default_for(op), "the statistics cannot answer it", parts),
            };
            let Some(stats) = stats_of(table, &column) else {
                return default(clause, default_for(&op), &format!("no statistics for {column}"), parts);
            };
            match op {
                Op::Eq => equality(&column, &value, stats, rows, parts),
                Op::NotEq => {
                    let eq = equality(&column, &value, stats, rows, &mut Vec::new());
                    let f = (1.0 - eq - stats.null_frac).max(0.0);
                    parts.push(format!("{column} <> {value}: 1 - its equality - null_frac ({})", percent(f)));
                    f
                }
                Op::Lt | Op::LtEq | Op::Gt | Op::GtEq => {
                    let below = below(stats, &value, matches!(op, Op::LtEq | Op::Gt));
                    let f = match (below, op) {
                        (None, _) => {
                            return default(clause, DEFAULT_INEQ_SEL, &format!("no values of {column}"), parts);
                        }
                        (Some(b), Op::Lt | Op::LtEq) => b,
                        (Some(b), _) => 1.0 - stats.null_frac - b,
                    };
                    parts.push(format!("{} from the profile's histogram of {column} ({})", show(clause), percent(f)));
                    f
                }
                _ => default(clause, DEFAULT_INEQ_SEL, "the statistics cannot answer it", parts),
            }
        }
        Expr::Between { expr, negated, low, high } => {
            let (Some(column), Some(low), Some(high)) = (column_of(expr), constant(low), constant(high)) else {
                return default(clause, DEFAULT_RANGE_INEQ_SEL, "the statistics cannot answer it", parts);
            };
            let bounds =
                stats_of(table, &column).and_then(|s| Some((s, below(s, &low, false)?, below(s, &high, true)?)));
            let Some((stats, low, high)) = bounds else {
                return default(clause, DEFAULT_RANGE_INEQ_SEL, &format!("no values of {column}"), parts);
            };
            let inside = (high - low).max(0.0);
            let f = if *negated { (1.0 - stats.null_frac - inside).max(0.0) } else { inside };
            parts.push(format!("{} from the profile's histogram of {column} ({})", show(clause), percent(f)));
            f
        }
        Expr::In { expr, target: InTarget::List(list), negated, .. } => {
            let (Some(column), Some(values)) = (column_of(expr), list.iter().map(constant).collect::<Option<Vec<_>>>())
            else {
                return default(
                    clause,
                    DEFAULT_EQ_SEL * list.len().max(1) as f64,
                    "the statistics cannot answer it",
                    parts,
                );
            };
            let Some(stats) = stats_of(table, &column) else {
                let f = (DEFAULT_EQ_SEL * values.len() as f64).min(1.0);
                return default(clause, f, &format!("no statistics for {column}"), parts);
            };
            let mut scratch = Vec::new();
            let eq: f64 = values.iter().map(|v| equality(&column, v, stats, rows, &mut scratch)).sum();
            let eq = eq.min(1.0 - stats.null_frac);
            let f = if *negated { (1.0 - stats.null_frac - eq).max(0.0) } else { eq };
            parts.push(format!("{}: {} ({})", show(clause), scratch.join(", "), percent(f)));
            f
        }
        Expr::IsNull(inner) | Expr::IsNotNull(inner) => {
            let Some(column) = column_of(inner) else {
                return default(clause, DEFAULT_EQ_SEL, "the statistics cannot answer it", parts);
            };
            let Some(stats) = stats_of(table, &column) else {
                return default(clause, DEFAULT_EQ_SEL, &format!("no statistics for {column}"), parts);
            };
            let f = if matches!(clause, Expr::IsNull(_)) { stats.null_frac } else { 1.0 - stats.null_frac };
            parts.push(format!("{} from null_frac of {column} ({})", show(clause), percent(f)));
            f
        }
        Expr::IsTrue(inner) | Expr::IsFalse(inner) => {
            let value = if matches!(clause, Expr::IsTrue(_)) { "t" } else { "f" };
            boolean(clause, inner, value, table, rows, parts)
        }
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => boolean(clause, clause, "t", table, rows, parts),
        Expr::Like { expr, pattern, negated, .. } | Expr::ILike { expr, pattern, negated, .. } => {
            let Some(prefix) = like(expr, pattern, table) else {
                let f = if *negated { 1.0 - DEFAULT_MATCH_SEL } else { DEFAULT_MATCH_SEL };
                return default(clause, f, "a pattern match", parts);
            };
            let f = if *negated { 1.0 - prefix } else { prefix };
            parts.push(format!("{}: its prefix's range in the profile's histogram ({})", show(clause), percent(f)));
            f
        }
        Expr::Value(v) if matches!(v.value, Value::Boolean(true)) => 1.0,
        Expr::Value(v) if matches!(v.value, Value::Boolean(false)) => 0.0,
        _ => default(clause, DEFAULT_INEQ_SEL, "the statistics cannot answer it", parts),
    }
}

/// A boolean column tested as itself (`WHERE active`, `active IS TRUE`).
fn boolean(clause: &Expr, column: &Expr, value: &str, table: &TableProfile, rows: f64, parts: &mut Vec<String>) -> f64 {
    let Some(name) = column_of(column) else {
        return default(clause, DEFAULT_INEQ_SEL, "the statistics cannot answer it", parts);
    };
    match stats_of(table, &name) {
        Some(stats) => equality(&name, value, stats, rows, parts),
        None => default(clause, 0.5, &format!("no statistics for {name}"), parts),
    }
}

/// `LIKE 'prefix%'` as the range `[prefix, prefix + 1)`, when the column has a histogram.
fn like(expr: &Expr, pattern: &Expr, table: &TableProfile) -> Option<f64> {
    let stats = stats_of(table, &column_of(expr)?)?;
    let pattern = constant(pattern)?;
    let prefix: String = pattern.chars().take_while(|c| *c != '%' && *c != '_').collect();
    if prefix.is_empty() || prefix.len() == pattern.len() {
        return None;
    }
    let mut upper = prefix.clone();
    let last = upper.pop()?;
    upper.push(char::from_u32(last as u32 + 1)?);
    Some((below(stats, &upper, false)? - below(stats, &prefix, false)?).max(0.0))
}

/// The fraction of rows where `column = value`: its frequency when it is a most-common value; else the rows the
/// most-common values leave, spread over the other distinct values.
pub(super) fn equality(column: &str, value: &str, stats: &ColumnStats, rows: f64, parts: &mut Vec<String>) -> f64 {
    let mcv = stats.most_common_vals.as_deref().unwrap_or_default();
    let freqs = stats.most_common_freqs.as_deref().unwrap_or_default();
    if let Some(at) = mcv.iter().position(|v| same(v, value)) {
        let f = freqs.get(at).copied().unwrap_or(0.0);
        parts.push(format!("{column} = {value} from the profile's most-common values ({})", percent(f)));
        return f;
    }
    let distinct = distinct(stats, rows);
    let rest_distinct = (distinct - mcv.len() as f64).max(1.0);
    let rest = (1.0 - stats.null_frac - freqs.iter().sum::<f64>()).max(0.0);
    let mut f = rest / rest_distinct;
    // Like PostgreSQL: a value not among the most common is no more common than the least of them.
    if let Some(least) = freqs.iter().copied().reduce(f64::min) {
        f = f.min(least);
    }
    let from =
        if mcv.is_empty() { "1/n_distinct" } else { "the values the most-common ones leave, per distinct value" };
    parts.push(format!("{column} = {value} from {from} of {column} ({})", percent(f)));
    f
}

/// The column's distinct values in production: `n_distinct`, or minus it times the rows when it is a fraction.
fn distinct(stats: &ColumnStats, rows: f64) -> f64 {
    match stats.n_distinct {
        n if n > 0.0 => n,
        n if n < 0.0 => (-n * rows).max(1.0),
        _ => 200.0, // PostgreSQL's DEFAULT_NUM_DISTINCT
    }
}

/// The fraction of rows whose value is below `value` (`or_equal`: at most `value`), from the most-common values and
/// the histogram; `None` when the profile holds no values of the column.
fn below(stats: &ColumnStats, value: &str, or_equal: bool) -> Option<f64> {
    let mcv = stats.most_common_vals.as_deref().unwrap_or_default();
    let freqs = stats.most_common_freqs.as_deref().unwrap_or_default();
    let bounds = stats.histogram_bounds.as_deref().unwrap_or_default();
    if mcv.is_empty() && bounds.len() < 2 {
        return None;
    }
    let goes = |v: &str| match compare(v, value) {
        Some(std::cmp::Ordering::Less) => true,
        Some(std::cmp::Ordering::Equal) => or_equal,
        _ => false,
    };
    let mcv_part: f64 = mcv.iter().zip(freqs).filter(|(v, _)| goes(v)).map(|(_, f)| f).sum();
    let rest = (1.0 - stats.null_frac - freqs.iter().sum::<f64>()).max(0.0);
    let hist = if bounds.len() >= 2 { histogram_fraction(bounds, value) } else { 0.0 };
    Some(mcv_part + rest * hist)
}

/// Where `value` falls in the equal-population buckets of `bounds`, 0 to 1, interpolating inside a bucket when the
/// values are numbers or times.
fn histogram_fraction(bounds: &[String], value: &str) -> f64 {
    let buckets = (bounds.len() - 1) as f64;
    let Some(last_below) = bounds.iter().rposition(|b| compare(b, value) != Some(std::cmp::Ordering::Greater)) else {
        return 0.0;
    };
    if last_below + 1 >= bounds.len() {
        return 1.0;
    }
    let (lo, hi) = (&bounds[last_below], &bounds[last_below + 1]);
    let inside = match (ordinal(lo), ordinal(hi), ordinal(value)) {
        (Some(lo), Some(hi), Some(v)) if hi > lo => ((v - lo) / (hi - lo)).clamp(0.0, 1.0),
        _ => 0.5,
    };
    (last_below as f64 + inside) / buckets
}

/// Two values in the server's text form, compared as numbers or times where both read as one, else as text.
fn compare(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    match (ordinal(a), ordinal(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y),
        _ => Some(a.cmp(b)),
    }
}

fn same(a: &str, b: &str) -> bool {
    a == b || compare(a, b) == Some(std::cmp::Ordering::Equal) && ordinal(a).is_some()
}

/// A value as a number on a line: a number as itself, a date or timestamp (`2024-03-01`, `2024-03-01 10:00:00+00`)
/// as days since 1970-01-01. `None` for anything else.
pub(super) fn ordinal(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Ok(n) = text.parse::<f64>() {
        return Some(n);
    }
    let (date, time) = match text.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut ymd = date.splitn(3, '-');
    let (y, m, d): (i64, u32, u32) = (ymd.next()?.parse().ok()?, ymd.next()?.parse().ok()?, ymd.next()?.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut days = days_from_civil(y, m, d) as f64;
    if let Some(time) = time {
        let clock: String = time.chars().take_while(|c| c.is_ascii_digit() || *c == ':' || *c == '.').collect();
        let mut hms = clock.split(':').map(|p| p.parse::<f64>().unwrap_or(0.0));
        let seconds = hms.next().unwrap_or(0.0) * 3600.0 + hms.next().unwrap_or(0.0) * 60.0 + hms.next().unwrap_or(0.0);
        days += seconds / 86400.0;
    }
    Some(days)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count from 1970-01-01 (`civil_from_days`), as `YYYY-MM-DD`.
pub(super) fn civil(days: i64) -> String {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A default selectivity, labelled as one.
fn default(clause: &Expr, fraction: f64, why: &str, parts: &mut Vec<String>) -> f64 {
    parts.push(format!("{}: default selectivity {} ({why})", show(clause), percent(fraction)));
    fraction
}

fn default_for(op: &BinaryOperator) -> f64 {
    match op {
        BinaryOperator::Eq => DEFAULT_EQ_SEL,
        BinaryOperator::NotEq => 1.0 - DEFAULT_EQ_SEL,
        _ => DEFAULT_INEQ_SEL,
    }
}

fn flipped(op: &BinaryOperator) -> BinaryOperator {
    match op {
        BinaryOperator::Lt => BinaryOperator::Gt,
        BinaryOperator::LtEq => BinaryOperator::GtEq,
        BinaryOperator::Gt => BinaryOperator::Lt,
        BinaryOperator::GtEq => BinaryOperator::LtEq,
        other => other.clone(),
    }
}

/// The column a comparison names (its last name part, as stored), through casts and parentheses.
fn column_of(expr: &Expr) -> Option<String> {
    let ident = match expr {
        Expr::Identifier(ident) => ident,
        Expr::CompoundIdentifier(parts) => parts.last()?,
        Expr::Nested(inner) | Expr::Cast { expr: inner, .. } => return column_of(inner),
        _ => return None,
    };
    Some(crate::plan::stored_name(ident))
}

/// A constant in the server's text form: a literal, a typed literal, a cast of one, a negative number, or the
/// current time or date give or take an interval (as of now: production's rows are compared with today).
fn constant(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => Some(n.to_string()),
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(s.clone()),
            Value::Boolean(b) => Some(if *b { "t" } else { "f" }.to_owned()),
            _ => None,
        },
        Expr::TypedString(t) => constant(&Expr::Value(t.value.clone())),
        Expr::Nested(inner) | Expr::Cast { expr: inner, .. } => constant(inner),
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => constant(expr).map(|n| format!("-{n}")),
        _ => super::now::moment(expr),
    }
}

/// The columns a clause fixes by equality or IN to constants, ANDed; `None` when it is any other clause.
fn equality_keys(clause: &Expr) -> Option<EqualityKeys> {
    match clause {
        Expr::Nested(inner) => equality_keys(inner),
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            let mut keys = equality_keys(left)?;
            keys.extend(equality_keys(right)?);
            Some(keys)
        }
        Expr::BinaryOp { left, op: BinaryOperator::Eq, right } => match (column_of(left), constant(right)) {
            (Some(c), Some(v)) => Some(vec![(c, vec![v])]),
            _ => Some(vec![(column_of(right)?, vec![constant(left)?])]),
        },
        Expr::In { expr, target: InTarget::List(list), negated: false, .. } => {
            Some(vec![(column_of(expr)?, list.iter().map(constant).collect::<Option<Vec<_>>>()?)])
        }
        _ => None,
    }
}

fn stats_of<'p>(table: &'p TableProfile, column: &str) -> Option<&'p ColumnStats> {
    table.column(column)?.stats.as_ref()
}

/// A clause as written, shortened for a method sentence.
fn show(clause: &Expr) -> String {
    let text = clause.to_string();
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::fixtures::table;

    fn clause(sql: &str) -> Expr {
        let dialect = sqlparser::dialect::PostgreSqlDialect {};
        sqlparser::parser::Parser::new(&dialect).try_with_sql(sql).and_then(|mut p| p.parse_expr()).expect("parses")
    }

    fn strings(values: &[&str]) -> Option<Vec<String>> {
        Some(values.iter().map(|v| (*v).to_owned()).collect())
    }

    fn shop() -> TableProfile {
        let status = ColumnStats {
            n_distinct: 3.0,
            most_common_vals: strings(&["paid", "shipped", "cancelled"]),
            most_common_freqs: Some(vec![0.7, 0.25, 0.05]),
            ..ColumnStats::default()
        };
        let day = ColumnStats {
            null_frac: 0.1,
            n_distinct: -0.5,
            histogram_bounds: strings(&["2020-01-01", "2021-01-01", "2022-01-01", "2023-01-01", "2024-01-01"]),
            ..ColumnStats::default()
        };
        let id = ColumnStats {
            n_distinct: -1.0,
            histogram_bounds: strings(&["1", "2500", "5000", "7500", "10000"]),
            ..ColumnStats::default()
        };
        let note = ColumnStats { null_frac: 0.5, n_distinct: 50.0, ..ColumnStats::default() };
        let columns = [("status", status), ("day", day), ("id", id), ("note", note)];
        columns.into_iter().fold(table("t", 10_000.0), |t, (name, stats)| t.with_column(name, "integer", Some(stats)))
    }

    fn fraction(sql: &str) -> f64 {
        of(&clause(sql), &shop(), 10_000.0).fraction
    }

    #[test]
    fn equality_reads_most_common_values_and_n_distinct() {
        assert!((fraction("status = 'shipped'") - 0.25).abs() < 1e-9);
        assert!((fraction("status IN ('paid', 'cancelled')") - 0.75).abs() < 1e-9);
        assert!((fraction("note = 'x'") - 0.01).abs() < 1e-9, "{}", fraction("note = 'x'"));
        assert!((fraction("id = 42") - 1e-4).abs() < 1e-9);
        assert!((fraction("status <> 'paid'") - 0.3).abs() < 1e-9);
    }

    #[test]
    fn ranges_read_the_histogram_with_interpolation() {
        assert!((fraction("id < 2500") - 0.25).abs() < 0.01, "{}", fraction("id < 2500"));
        assert!((fraction("id >= 8750") - 0.125).abs() < 0.01);
        assert!((fraction("id BETWEEN 2500 AND 5000") - 0.25).abs() < 0.01);
        // Half the non-null rows are before mid-2022; 10% are null.
        let f = fraction("day < DATE '2022-01-01'");
        assert!((f - 0.45).abs() < 0.01, "{f}");
        assert!((fraction("day IS NULL") - 0.1).abs() < 1e-9);
    }

    #[test]
    fn and_or_not_combine_and_unknowns_take_postgres_defaults() {
        let f = fraction("status = 'shipped' AND id < 2500");
        assert!((f - 0.0625).abs() < 0.01, "{f}");
        let f = fraction("status = 'cancelled' OR status = 'shipped'");
        assert!((f - (0.3 - 0.0125)).abs() < 1e-9, "{f}");
        assert!((fraction("NOT status = 'paid'") - 0.3).abs() < 1e-9);
        let s = of(&clause("lower(status) = 'x'"), &shop(), 10_000.0);
        assert!((s.fraction - DEFAULT_EQ_SEL).abs() < 1e-9);
        assert!(s.method().contains("default selectivity 0.5%"), "{}", s.method());
        let s = of(&clause("missing > 3"), &shop(), 10_000.0);
        assert!(s.method().contains("no statistics for missing"), "{}", s.method());
    }

    #[test]
    fn equality_keys_are_kept_for_fan_outs() {
        let s = of(&clause("id IN (1, 2) AND status = 'paid'"), &shop(), 10_000.0);
        assert_eq!(s.keys, vec![("id".into(), vec!["1".into(), "2".into()]), ("status".into(), vec!["paid".into()])]);
        assert!(of(&clause("id = 1 OR id = 2"), &shop(), 10_000.0).keys.is_empty());
    }

    #[test]
    fn a_like_prefix_reads_the_histogram_and_other_patterns_take_the_default() {
        let sku = ColumnStats {
            n_distinct: -1.0,
            histogram_bounds: strings(&["a1", "b1", "c1", "d1", "e1"]),
            ..ColumnStats::default()
        };
        let t = table("t", 10_000.0).with_column("sku", "integer", Some(sku));
        let s = of(&clause("sku LIKE 'b%'"), &t, 10_000.0);
        assert!((s.fraction - 0.25).abs() < 1e-9, "{}", s.method());
        assert!(s.method().contains("histogram"), "{}", s.method());
        let s = of(&clause("sku LIKE '%1'"), &t, 10_000.0);
        assert!(s.method().contains("default selectivity 0.5%"), "{}", s.method());
    }

    #[test]
    fn dates_count_days() {
        assert_eq!(ordinal("1970-01-02"), Some(1.0));
        assert_eq!(ordinal("2024-03-01 12:00:00+00"), Some(19783.5));
        assert_eq!(civil(19783), "2024-03-01");
        assert_eq!(ordinal("paid"), None);
    }
}
