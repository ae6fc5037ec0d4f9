//! Statements whose effects depend on when or where they run: what the dry-run measured is then a snapshot, and an
//! apply later may touch other rows. Read from the statement's tokens (sqlparser's tokenizer, so strings, quoted
//! names and comments are never mistaken for calls):
//! - the time (`now()`, `current_date`, `current_timestamp`, `clock_timestamp()`, ...) after a `WHERE`: which rows
//!   match moves with the clock;
//! - `random()` and the like, `gen_random_uuid()`: a different value on every run;
//! - `nextval(...)`: a sequence's next value, which production has moved on;
//! - `LIMIT` (or `FETCH FIRST`) without `ORDER BY`: which rows it takes is up to the server.

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

/// Time functions and keywords: their value depends on when the statement runs.
const TIME: &[&str] = &[
    "now",
    "current_date",
    "current_timestamp",
    "current_time",
    "localtimestamp",
    "localtime",
    "clock_timestamp",
    "statement_timestamp",
    "transaction_timestamp",
    "timeofday",
];

/// Functions whose value differs on every call.
const RANDOM: &[&str] = &["random", "random_normal", "gen_random_uuid", "uuid_generate_v4", "setseed"];

/// Why `sql`'s effects may differ when it runs again elsewhere or later; `None` when nothing says so (or it does not
/// tokenize).
pub fn nondeterministic(sql: &str) -> Option<String> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let words: Vec<(String, bool)> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .map(|t| match t {
            // A quoted name is never a function or keyword of ours.
            Token::Word(w) if w.quote_style.is_none() => (w.value.to_ascii_lowercase(), false),
            Token::LParen => ("(".to_owned(), false),
            _ => (String::new(), true),
        })
        .collect();
    let word = |i: usize| words.get(i).map_or("", |(w, _)| w.as_str());
    let called = |i: usize| word(i + 1) == "(";
    let mut reasons = Vec::new();
    let mut after_where = false;
    let mut ordered = false;
    for i in 0..words.len() {
        let w = word(i);
        match w {
            "where" => after_where = true,
            "order" if word(i + 1) == "by" => ordered = true,
            _ if after_where && TIME.contains(&w) && (called(i) || !matches!(w, "now" | "timeofday")) => {
                reasons.push(format!("{w} in a WHERE: the rows it matches depend on when it runs"));
            }
            _ if RANDOM.contains(&w) && called(i) => {
                reasons.push(format!("{w}(): a different value on every run"));
            }
            "nextval" if called(i) => {
                reasons.push("nextval(): the sequence has moved on in production".to_owned());
            }
            "limit" | "fetch" if !ordered => {
                reasons.push(format!(
                    "{} without ORDER BY: which rows it takes is up to the server",
                    w.to_ascii_uppercase()
                ));
            }
            _ => {}
        }
    }
    reasons.dedup();
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::nondeterministic;

    #[test]
    fn what_depends_on_when_or_where_it_runs_is_named() {
        let flagged = |sql: &str| nondeterministic(sql).unwrap_or_else(|| panic!("not flagged: {sql}"));
        assert!(flagged("DELETE FROM sessions WHERE expires_at < now()").starts_with("now in a WHERE"));
        assert!(flagged("UPDATE t SET a = 1 WHERE d = CURRENT_DATE").starts_with("current_date in a WHERE"));
        assert!(flagged("DELETE FROM t WHERE random() < 0.1").contains("random(): a different value"));
        assert!(flagged("INSERT INTO t (id) VALUES (nextval('s'))").starts_with("nextval()"));
        assert!(flagged("DELETE FROM t WHERE id IN (SELECT id FROM t LIMIT 10)").starts_with("LIMIT without ORDER BY"));
        for sql in [
            "DELETE FROM t WHERE id IN (SELECT id FROM t ORDER BY id LIMIT 10)",
            "UPDATE t SET updated_at = now() WHERE id = 3",
            "DELETE FROM t WHERE note = 'now() and random()'",
            "DELETE FROM t WHERE \"now\" < 3 -- random()",
            "SELECT 1",
        ] {
            assert_eq!(nondeterministic(sql), None, "{sql}");
        }
    }
}
