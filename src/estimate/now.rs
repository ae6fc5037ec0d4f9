//! The current time in a WHERE clause (`created_at < now() - interval '90 days'`), as a constant: production's rows
//! are compared with the moment the estimate is made.

use sqlparser::ast::{BinaryOperator, Expr};

/// `now()`, `current_date`, `current_timestamp`, `localtimestamp` (give or take a constant interval) as a timestamp
/// in the server's text form (UTC); `None` for any other expression.
pub(super) fn moment(expr: &Expr) -> Option<String> {
    days(expr).map(|d| {
        let day = d.floor();
        let seconds = ((d - day) * 86400.0).round() as i64;
        format!(
            "{} {:02}:{:02}:{:02}",
            super::selectivity::civil(day as i64),
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        )
    })
}

fn days(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::Nested(inner) | Expr::Cast { expr: inner, .. } => days(inner),
        Expr::Function(f) => {
            let name = f.name.to_string().to_lowercase();
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64() / 86400.0;
            match name.as_str() {
                "now"
                | "current_timestamp"
                | "localtimestamp"
                | "transaction_timestamp"
                | "statement_timestamp"
                | "clock_timestamp" => Some(now),
                "current_date" => Some(now.floor()),
                _ => None,
            }
        }
        Expr::BinaryOp { left, op: op @ (BinaryOperator::Plus | BinaryOperator::Minus), right } => {
            let (base, span) = (days(left)?, interval(right)?);
            Some(if *op == BinaryOperator::Plus { base + span } else { base - span })
        }
        _ => None,
    }
}

/// An interval literal (`interval '90 days'`, `'1 year 2 months'::interval`) in days.
fn interval(expr: &Expr) -> Option<f64> {
    let text = match expr {
        Expr::Interval(i) => {
            let value = match i.value.as_ref() {
                Expr::Value(v) => v.value.clone().into_string()?,
                _ => return None,
            };
            match &i.leading_field {
                Some(field) => format!("{value} {field}"),
                None => value,
            }
        }
        Expr::Cast { expr, .. } | Expr::Nested(expr) => return interval(expr),
        Expr::Value(v) => v.value.clone().into_string()?,
        _ => return None,
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut total = 0.0;
    for pair in words.chunks(2) {
        let [n, unit] = pair else { return None };
        let n: f64 = n.parse().ok()?;
        let unit = unit.to_lowercase();
        let per = match unit.trim_end_matches('s') {
            "year" => 365.25,
            "month" | "mon" => 30.44,
            "week" => 7.0,
            "day" => 1.0,
            "hour" => 1.0 / 24.0,
            "minute" | "min" => 1.0 / 1440.0,
            "second" | "sec" => 1.0 / 86400.0,
            _ => return None,
        };
        total += n * per;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(sql: &str) -> Expr {
        let dialect = sqlparser::dialect::PostgreSqlDialect {};
        sqlparser::parser::Parser::new(&dialect).try_with_sql(sql).and_then(|mut p| p.parse_expr()).expect("parses")
    }

    #[test]
    fn the_current_time_give_or_take_an_interval_is_a_constant() {
        let now = days(&expr("now()")).expect("now");
        let ago = days(&expr("now() - interval '30 days'")).expect("30 days ago");
        assert!((now - ago - 30.0).abs() < 1e-6);
        let year = days(&expr("current_date - INTERVAL '1 year'")).expect("a year ago");
        assert!((now.floor() - year - 365.25).abs() < 1e-6);
        assert!(moment(&expr("now()")).is_some_and(|m| m.len() == 19), "{:?}", moment(&expr("now()")));
        assert_eq!(days(&expr("lower('x')")), None);
    }
}
