//! Value generators: for each column, a SQL expression of the row's position that gives its value, shaped like the
//! profile says production's are — `null_frac` nulls, the most common values at their frequencies, the rest spread
//! over `n_distinct` (scaled) distinct values laid out like the histogram, or, where the profile holds no values,
//! like the type's default distribution and `avg_width`.
//!
//! Every row draws one uniform number per column from a Weyl sequence (`frac(i·α + β)`, α the fractional part of
//! the square root of a prime, one per column; β from the seed): deterministic, cheap in SQL, and evenly spread, so
//! that a column with `null_frac` 0.2 gets a fifth of nulls even in a small table.

use super::catalog::Column;
use crate::profile::ColumnStats;
use crate::text::quote_literal;

/// How a column's values are to be spread.
#[derive(Debug, Clone, Default)]
pub(super) struct Shape {
    /// The share of nulls.
    pub(super) null_frac: f64,
    /// The most common values, in the server's text form, with their frequencies (over all rows).
    pub(super) common: Vec<(String, f64)>,
    /// Histogram bounds of the other values.
    pub(super) histogram: Vec<String>,
    /// Distinct values among the other values (at least 1).
    pub(super) distinct: f64,
    /// Whether the profile held values for it (most common values or a histogram).
    pub(super) has_values: bool,
    /// The average width of its values, in bytes (text without values is generated this wide).
    pub(super) width: usize,
}

impl Shape {
    /// The share of rows that take one of the other values.
    pub(super) fn rest(&self) -> f64 {
        (1.0 - self.null_frac - self.common.iter().map(|c| c.1).sum::<f64>()).max(0.0)
    }
}

/// The shape of `column` in a table of `rows` synthetic rows standing for `production_rows`.
pub(super) fn shape(column: &Column, stats: Option<&ColumnStats>, rows: u64, production_rows: f64) -> Shape {
    let rows_f = rows as f64;
    let Some(stats) = stats else {
        let null_frac = 0.0;
        return Shape { null_frac, distinct: rows_f.max(1.0), width: 8, ..Shape::default() };
    };
    let null_frac = match column.not_null || !stats.null_frac.is_finite() {
        true => 0.0,
        false => stats.null_frac.clamp(0.0, 1.0),
    };
    // Arrays' values are array literals, which the generators below do not read back.
    let values_usable = column.category != "A";
    let mut common: Vec<(String, f64)> = match (&stats.most_common_vals, &stats.most_common_freqs) {
        (Some(values), Some(freqs)) if values_usable && !column.unique => {
            // A frequency that is not a share (a profile edited by hand) would unsort the thresholds: left out.
            let share = |f: &f64| f.is_finite() && *f > 0.0 && *f <= 1.0;
            values.iter().cloned().zip(freqs.iter().copied()).filter(|(v, f)| v != "NULL" && share(f)).collect()
        }
        _ => Vec::new(),
    };
    let total: f64 = common.iter().map(|c| c.1).sum();
    if total + null_frac > 1.0 && total > 0.0 {
        let keep = (1.0 - null_frac) / total;
        common.iter_mut().for_each(|c| c.1 *= keep);
    }
    let histogram = stats.histogram_bounds.clone().filter(|h| values_usable && h.len() >= 2).unwrap_or_default();
    let non_null = (rows_f * (1.0 - null_frac)).max(1.0);
    let distinct = match stats.n_distinct {
        _ if column.unique => rows_f.max(1.0),
        d if d < 0.0 => -d * non_null,
        d if d > 0.0 && d <= non_null => d,
        d if d > 0.0 => d * rows_f / production_rows.max(1.0),
        _ => non_null,
    };
    let distinct = (distinct.round() - common.len() as f64).clamp(1.0, non_null);
    let has_values = !common.is_empty() || !histogram.is_empty();
    let width = usize::try_from(stats.avg_width).unwrap_or(8).max(1);
    Shape { null_frac, common, histogram, distinct, has_values, width }
}

/// The uniform number of row `x` (a SQL expression) for the column at `position` of a table, with `salt` (from the
/// seed, the table and the column).
pub(super) fn uniform(x: &str, position: usize, salt: u64) -> String {
    let alpha = (prime(position) as f64).sqrt().fract();
    let beta = (salt >> 11) as f64 / (1u64 << 53) as f64;
    let t = format!("({x}::pg_catalog.float8 * {alpha:.17} + {beta:.17})");
    format!("({t} - pg_catalog.floor({t}))")
}

/// The `n`-th prime (0-based).
fn prime(n: usize) -> u64 {
    let mut found = 0;
    let mut candidate = 1u64;
    loop {
        candidate += 1;
        if (2..candidate).take_while(|d| d * d <= candidate).all(|d| !candidate.is_multiple_of(d)) {
            if found == n {
                return candidate;
            }
            found += 1;
        }
    }
}

/// The value of `column` for a row with uniform number `u`: null, one of the most common values, or one of the
/// others — the `k`-th of them, `k` computed here from `u`, or with `index` (a 0-based row index) every row its
/// own (unique columns).
pub(super) fn expression(column: &Column, shape: &Shape, u: &str, index: Option<&str>, salt: u64) -> String {
    let k = index.map_or_else(|| rest_index(shape, u, shape.distinct), str::to_owned);
    choice(column, shape, u, other_value(column, shape, &k, index.is_some(), salt))
}

/// The 0-based index, among `count` values, of the other value a row with uniform number `u` takes.
pub(super) fn rest_index(shape: &Shape, u: &str, count: f64) -> String {
    let start = shape.null_frac + shape.common.iter().map(|c| c.1).sum::<f64>();
    let count = count.max(1.0);
    format!(
        "GREATEST(0, LEAST(pg_catalog.floor(({u} - {start:.17}) / {:.17} * {count:.1}), {:.1}))\
         ::pg_catalog.int8",
        shape.rest().max(1e-12),
        count - 1.0
    )
}

/// Null, one of the most common values, or `other` (null when `None`), as `u` falls.
pub(super) fn choice(column: &Column, shape: &Shape, u: &str, other: Option<String>) -> String {
    let Some(other) = other else {
        return format!("NULL::{}", column.r#type);
    };
    let nf = shape.null_frac;
    let mut branches = Vec::new();
    if nf > 0.0 {
        branches.push(format!("WHEN {u} < {nf:.17} THEN NULL"));
    }
    if !shape.common.is_empty() {
        let mut at = nf;
        let thresholds: Vec<String> = shape
            .common
            .iter()
            .map(|(_, f)| {
                let t = format!("{at:.17}");
                at += f;
                t
            })
            .collect();
        let values: Vec<String> = shape.common.iter().map(|(v, _)| quote_literal(v)).collect();
        branches.push(format!(
            "WHEN {u} < {at:.17} THEN (ARRAY[{}]::{}[])[pg_catalog.width_bucket({u}, ARRAY[{}]::pg_catalog.float8[])]",
            values.join(", "),
            column.r#type,
            thresholds.join(", ")
        ));
    }
    if branches.is_empty() {
        return format!("({other})::{}", column.r#type);
    }
    format!("(CASE {} ELSE ({other})::{} END)::{}", branches.join(" "), column.r#type, column.r#type)
}

/// How a histogram's bounds are read between them.
enum Between {
    /// Numbers: interpolated (integers rounded).
    Number {
        integer: bool,
    },
    Date,
    Timestamp(&'static str),
    /// Anything else: the nearest bound.
    Bound,
}

fn between(column: &Column) -> Between {
    match column.base.as_str() {
        "int2" | "int4" | "int8" => Between::Number { integer: true },
        "numeric" | "float4" | "float8" => Between::Number { integer: false },
        "date" => Between::Date,
        "timestamp" => Between::Timestamp("pg_catalog.timestamp"),
        "timestamptz" => Between::Timestamp("pg_catalog.timestamptz"),
        _ => Between::Bound,
    }
}

/// One of the values other than the most common ones: from the histogram when the profile has one, else from
/// the type's default distribution. `None` when pgshadow has no generator for the type.
fn other_value(column: &Column, shape: &Shape, k: &str, unique: bool, salt: u64) -> Option<String> {
    let bounds = &shape.histogram;
    if bounds.len() < 2 {
        return default_value(column, k, shape.width, salt);
    }
    let n = bounds.len();
    let literals: Vec<String> = bounds.iter().map(|b| quote_literal(b)).collect();
    let distinct = if unique { shape.distinct.max(1.0) } else { shape.distinct };
    // The position in the histogram, 0 to n-1, of the k-th of `distinct` values.
    let pos = format!("(({k}::pg_catalog.float8 + 0.5) / {distinct:.1} * {})", n - 1);
    let bucket = format!("LEAST(pg_catalog.floor({pos})::pg_catalog.int4, {})", n - 2);
    let lo = |array: &str| format!("(ARRAY[{}]::{array}[])[{bucket} + 1]", literals.join(", "));
    let hi = |array: &str| format!("(ARRAY[{}]::{array}[])[{bucket} + 2]", literals.join(", "));
    let frac = format!("({pos} - {bucket})");
    Some(match between(column) {
        Between::Number { integer: true } if unique => {
            // Every row its own integer, spread over the histogram's range when it is wide enough.
            let first = format!("(ARRAY[{}]::pg_catalog.numeric[])[1]", literals.join(", "));
            let last = format!("(ARRAY[{}]::pg_catalog.numeric[])[{n}]", literals.join(", "));
            format!("({first} + {k} * GREATEST(1, pg_catalog.floor(({last} - {first}) / {distinct:.1})))")
        }
        Between::Number { integer } => {
            let (lo, hi) = (lo("pg_catalog.numeric"), hi("pg_catalog.numeric"));
            let value = format!("({lo} + ({hi} - {lo}) * {frac}::pg_catalog.numeric)");
            if integer {
                format!("pg_catalog.round({value})")
            } else {
                value
            }
        }
        Between::Date => {
            let (lo, hi) = (lo("pg_catalog.date"), hi("pg_catalog.date"));
            format!("({lo} + pg_catalog.round(({hi} - {lo}) * {frac})::pg_catalog.int4)")
        }
        Between::Timestamp(ty) => {
            let (lo, hi) = (lo(ty), hi(ty));
            format!("({lo} + ({hi} - {lo}) * {frac})")
        }
        Between::Bound => {
            let nearest = format!(
                "(ARRAY[{}]::{}[])[pg_catalog.round({pos})::pg_catalog.int4 + 1]",
                literals.join(", "),
                column.r#type
            );
            if unique && column.category == "S" {
                format!("({nearest}::pg_catalog.text || '-' || {k}::pg_catalog.text)")
            } else {
                nearest
            }
        }
    })
}

/// The `k`-th value (0-based) of the type's default distribution; `None` for a type without a generator.
pub(super) fn default_value(column: &Column, k: &str, width: usize, salt: u64) -> Option<String> {
    if let Some(enum_type) = &column.enum_type {
        if column.enum_labels > 0 && column.category != "A" {
            return Some(format!(
                "(pg_catalog.enum_range(NULL::{enum_type}))[1 + ({k} % {})::pg_catalog.int4]",
                column.enum_labels
            ));
        }
    }
    if column.category == "A" {
        let (name, category) = column.element.as_ref()?;
        let element = Column {
            base: name.clone(),
            category: category.clone(),
            typmod: -1,
            r#type: String::new(),
            element: None,
            ..column.clone()
        };
        let value = default_value(&element, k, width, salt)?;
        return Some(format!("ARRAY[{value}]"));
    }
    Some(match column.base.as_str() {
        "int2" => format!("({k} % 32767 + 1)"),
        "int4" => format!("({k} % 2147483647 + 1)"),
        "int8" => format!("({k} + 1)"),
        "oid" => format!("({k} % 4294967295 + 1)::pg_catalog.oid"),
        "numeric" => numeric(column.typmod, k),
        "float4" | "float8" => format!("({k}::pg_catalog.float8 * 1.5)"),
        "money" => format!("({k}::pg_catalog.numeric)::pg_catalog.money"),
        "bool" => format!("({k} % 2 = 1)"),
        "uuid" => format!("pg_catalog.md5('{salt}-' || {k}::pg_catalog.text)::pg_catalog.uuid"),
        "date" => format!("(DATE '2020-01-01' + ({k} % 2000000)::pg_catalog.int4)"),
        "timestamp" => format!("(TIMESTAMP '2020-01-01' + {k} * INTERVAL '1 minute')"),
        "timestamptz" => format!("(TIMESTAMPTZ '2020-01-01 00:00:00+00' + {k} * INTERVAL '1 minute')"),
        "time" => format!("(TIME '00:00' + ({k} % 86400) * INTERVAL '1 second')"),
        "timetz" => format!("(TIME '00:00' + ({k} % 86400) * INTERVAL '1 second')::pg_catalog.timetz"),
        "interval" => format!("({k} * INTERVAL '1 second')"),
        "json" => format!("pg_catalog.json_build_object('k', {k})"),
        "jsonb" => format!("pg_catalog.jsonb_build_object('k', {k})"),
        "bytea" => format!("pg_catalog.decode(pg_catalog.md5({k}::pg_catalog.text), 'hex')"),
        "inet" => format!("(INET '10.0.0.0' + {k})"),
        "cidr" => format!("pg_catalog.set_masklen(INET '10.0.0.0' + {k}, 32)::pg_catalog.cidr"),
        "macaddr" => {
            format!("pg_catalog.lpad(pg_catalog.to_hex({k} % 281474976710656), 12, '0')::pg_catalog.macaddr")
        }
        "tsvector" => format!("pg_catalog.to_tsvector('simple', 'w' || {k}::pg_catalog.text)"),
        "xml" => format!("('<k>' || {k}::pg_catalog.text || '</k>')::pg_catalog.xml"),
        _ if column.category == "S" => text(column, k, width),
        _ => return None,
    })
}

/// A string of the column's average width (less the length header) that starts with `k`, so that distinct indexes
/// give distinct strings.
fn text(column: &Column, k: &str, width: usize) -> String {
    let limit = if column.typmod > 4 { (column.typmod - 4) as usize } else { usize::MAX };
    // Room for the index, so that distinct indexes stay distinct strings.
    let width = width.saturating_sub(1).clamp(12, 2000).min(limit);
    format!("pg_catalog.rpad({k}::pg_catalog.text || '-', {width}, pg_catalog.md5({k}::pg_catalog.text))")
}

/// A number that fits `numeric(precision, scale)` (its typmod), or any numeric without one.
fn numeric(typmod: i32, k: &str) -> String {
    if typmod < 4 {
        return format!("({k}::pg_catalog.numeric + 0.25)");
    }
    let precision = ((typmod - 4) >> 16) & 0xffff;
    let scale = (typmod - 4) & 0xffff;
    let digits = (precision - scale).clamp(0, 18);
    let whole = 10i64.pow(digits as u32);
    if digits == 0 {
        return format!("(({k} % 100)::pg_catalog.numeric / 1000)");
    }
    if scale == 0 {
        return format!("({k} % {whole})::pg_catalog.numeric");
    }
    format!("(({k} % {})::pg_catalog.numeric + ({k} % 97)::pg_catalog.numeric / 100)", (whole - 1).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes_give_each_column_its_own_step() {
        assert_eq!([prime(0), prime(1), prime(2), prime(3), prime(10)], [2, 3, 5, 7, 31]);
    }

    #[test]
    fn numeric_values_fit_their_precision() {
        assert_eq!(numeric(-1, "k"), "(k::pg_catalog.numeric + 0.25)");
        // numeric(5,2): typmod (5 << 16 | 2) + 4
        assert!(numeric((5 << 16 | 2) + 4, "k").contains("% 999"));
        assert!(numeric((4 << 16) + 4, "k").contains("% 10000"));
    }
}
