//! sqlparser's reading of a statement's text, in one place: PostgreSQL's dialect, and a panic caught.

use sqlparser::ast::Statement;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// Why sqlparser gave no statements for a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// sqlparser rejected the text (a syntax it does not know, or an error).
    Rejected,
    /// sqlparser panicked on it.
    Panicked,
}

/// The statements sqlparser reads in `sql`, with PostgreSQL's dialect. Never panics: sqlparser bounds its
/// recursion, and catching a panic guards against its bugs, since what pgshadow reads from the text is advisory.
pub(crate) fn parse_sql(sql: &str) -> Result<Vec<Statement>, Unreadable> {
    match std::panic::catch_unwind(|| Parser::parse_sql(&PostgreSqlDialect {}, sql)) {
        Ok(Ok(statements)) => Ok(statements),
        Ok(Err(_)) => Err(Unreadable::Rejected),
        Err(_) => Err(Unreadable::Panicked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_sqlparser_rejects_is_told_apart_from_statements() {
        assert_eq!(parse_sql("DELETE FROM t WHERE id = 1; SELECT 1").map(|s| s.len()), Ok(2));
        assert_eq!(parse_sql("DELET FROM t").map(|s| s.len()), Err(Unreadable::Rejected));
    }
}
