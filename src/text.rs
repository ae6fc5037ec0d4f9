//! Small text helpers every layer uses: quoting for SQL, digests, hiding passwords, reading version strings.
//!
//! This is the bottom layer: it imports nothing of the crate, so any module may use it.

/// `"name"`, with inner quotes doubled: an identifier for SQL, whatever it holds.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Splits `schema.name` as Postgres writes it (`format('%I.%I')`: quoted where needed) into its two names, as stored
/// (unquoted, `""` read as `"`). `None` for anything else.
pub fn split_qualified(name: &str) -> Option<(String, String)> {
    match <[String; 2]>::try_from(split_name(name)?) {
        Ok([schema, name]) => Some((schema, name)),
        Err(_) => None,
    }
}

/// Splits a dotted name (`a.b`, `"a.b".c`: parts quoted where needed) into its parts, as stored (unquoted, `""`
/// read as `"`). `None` for an unclosed quote or text after a closing quote.
pub fn split_name(name: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut chars = name.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied().filter(|c| *c != '.') {
                part.push(c);
                chars.next();
            }
        }
        parts.push(part);
        match chars.next() {
            Some('.') => continue,
            None => return Some(parts),
            Some(_) => return None,
        }
    }
}

/// `'value'`, with inner quotes doubled: a string literal for SQL (with `standard_conforming_strings` on, the
/// default since PostgreSQL 9.1).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `bytes` in lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of `bytes`, in lower-case hex.
pub fn hex_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex(&sha2::Sha256::digest(bytes))
}

/// `n` with its thousands separated by commas, as people read counts: `41,872`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The URL (or `key=value` connection string) with its password replaced by `***`, for reports and messages.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, tail) = rest.split_once('/').map_or((rest, None), |(a, t)| (a, Some(t)));
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***@{host}"),
                None => format!("{userinfo}@{host}"),
            },
            None => authority.to_owned(),
        };
        let tail = tail.map(|t| format!("/{}", redact_params(t, '&'))).unwrap_or_default();
        return format!("{scheme}://{authority}{tail}");
    }
    redact_params(url, ' ')
}

/// `password=...` in a query string or connection string.
fn redact_params(text: &str, separator: char) -> String {
    text.split(separator)
        .map(|part| match part.split_once('=') {
            Some((key, _)) if key.trim_start_matches('?').eq_ignore_ascii_case("password") => {
                format!("{key}=***")
            }
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(&separator.to_string())
}

/// Postgres's DETAIL of an error without the row values it quotes: `Key (email)=(ann@example.com) already exists.`
/// becomes `Key (email)=(...) already exists.`, `Failing row contains (7, ann, ...).` becomes `Failing row contains
/// (...).`. The column names stay. A shadow may hold production's rows (`--with-data`, a snapshot, a sample), and a
/// report keeps no row value of theirs; the plan's own values are in the plan.
pub fn without_row_values(detail: &str) -> String {
    const FAILING_ROW: &str = "Failing row contains (";
    if let Some(start) = detail.find(FAILING_ROW) {
        let values = start + FAILING_ROW.len();
        let end = detail.rfind(')').filter(|&end| end >= values).unwrap_or(detail.len());
        return format!("{}...{}", &detail[..values], &detail[end..]);
    }
    // `Key (columns)=(values)`, once or twice (an exclusion conflict names the other key too): each value list ends
    // at the `)` that comes before the next ` conflicts with`, or before the sentence's end (` already exists`, ...).
    let mut out = String::with_capacity(detail.len());
    let mut rest = detail;
    while let Some(at) = rest.find(")=(") {
        let values = at + 3;
        out.push_str(&rest[..values]);
        let tail = &rest[values..];
        let end = match tail.find(") conflicts with existing key (") {
            Some(end) => end,
            None => tail.rfind(')').unwrap_or(tail.len()),
        };
        out.push_str("...");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The major version in `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`: `15` (or `9.6` before 10).
pub fn major_of(version_output: &str) -> Option<String> {
    let version = version_output.split_whitespace().find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let first = parts.next()?;
    match first.parse::<u32>().ok()? {
        0..=9 => Some(format!("{first}.{}", parts.next()?)),
        _ => Some(first.to_owned()),
    }
}

/// The primary message of a data exception (SQLSTATE class 22) without the values it quotes: `invalid input syntax
/// for type integer: "ann@example.com"` becomes `invalid input syntax for type integer: "..."`, `value "99999999999"
/// is out of range for type integer` becomes `value "..." is out of range for type integer`. A statement that casts a
/// column (`ALTER COLUMN ... TYPE ... USING`) meets these on the shadow's rows, which may be production's; other
/// classes' messages quote names, not values, and stay as they are.
pub fn message_without_row_values(sqlstate: &str, message: &str) -> String {
    if !sqlstate.starts_with("22") {
        return message.to_owned();
    }
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for part in message.split('"') {
        out.push_str(if quoted { "..." } else { part });
        out.push('"');
        quoted = !quoted;
    }
    out.pop();
    out
}

#[cfg(test)]
mod tests {
    use super::without_row_values;

    #[test]
    fn a_data_exceptions_message_loses_the_values_it_quotes() {
        use super::message_without_row_values as redacted;
        let cast = "invalid input syntax for type integer: \"ann@example.com\"";
        assert_eq!(redacted("22P02", cast), "invalid input syntax for type integer: \"...\"");
        let range = "value \"99999999999\" is out of range for type integer";
        assert_eq!(redacted("22003", range), "value \"...\" is out of range for type integer");
        assert_eq!(redacted("22012", "division by zero"), "division by zero");
        let named = "relation \"orders\" does not exist";
        assert_eq!(redacted("42P01", named), named, "names stay");
    }

    #[test]
    fn error_details_keep_the_columns_and_lose_the_values() {
        let cases = [
            ("Key (email)=(ann@example.com) already exists.", "Key (email)=(...) already exists."),
            (
                "Key (a, b)=(1, it's (quoted)) is not present in table \"t\".",
                "Key (a, b)=(...) is not present in table \"t\".",
            ),
            (
                "Key (r)=([1,3)) conflicts with existing key (r)=([2,4)).",
                "Key (r)=(...) conflicts with existing key (r)=(...).",
            ),
            ("Failing row contains (7, ann, null).", "Failing row contains (...)."),
            (
                "Key (id)=(42) is still referenced from table \"orders\".",
                "Key (id)=(...) is still referenced from table \"orders\".",
            ),
            ("No value here.", "No value here."),
        ];
        for (detail, kept) in cases {
            assert_eq!(without_row_values(detail), kept, "{detail}");
        }
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(41872), "41,872");
        assert_eq!(super::thousands(1234567), "1,234,567");
    }

    use super::*;

    #[test]
    fn qualified_names_split_as_postgres_quotes_them() {
        assert_eq!(split_qualified("public.orders"), Some(("public".into(), "orders".into())));
        assert_eq!(split_qualified("\"A b\".\"c.d\""), Some(("A b".into(), "c.d".into())));
        assert_eq!(split_qualified("orders"), None);
        assert_eq!(split_name("\"weird.name\""), Some(vec!["weird.name".to_owned()]));
        assert_eq!(split_name("s.\"a\"\"b.c\""), Some(vec!["s".to_owned(), "a\"b.c".to_owned()]));
        assert_eq!(split_name("\"open"), None);
    }

    #[test]
    fn identifiers_are_quoted_safely() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn literals_are_quoted_safely() {
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn digests_are_lower_case_hex_sha256() {
        assert_eq!(hex_digest(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn passwords_never_reach_a_report() {
        assert_eq!(
            redact_url("postgresql://app:s3cret@db.example.com:5432/shop"),
            "postgresql://app:***@db.example.com:5432/shop"
        );
        assert_eq!(
            redact_url("postgres://app@db/shop?sslmode=require&password=x"),
            "postgres://app@db/shop?sslmode=require&password=***"
        );
        assert_eq!(redact_url("postgresql:///shop?host=/tmp"), "postgresql:///shop?host=/tmp");
        assert_eq!(redact_url("host=db dbname=shop password=x user=app"), "host=db dbname=shop password=*** user=app");
    }

    #[test]
    fn major_versions_are_read_from_version_output() {
        assert_eq!(major_of("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)").as_deref(), Some("15"));
        assert_eq!(major_of("postgres (PostgreSQL) 18beta1").as_deref(), Some("18"));
        assert_eq!(major_of("postgres (PostgreSQL) 9.6.24").as_deref(), Some("9.6"));
        assert_eq!(major_of("postgres (PostgreSQL)"), None);
        assert_eq!(major_of("9.5.4").as_deref(), Some("9.5"));
        assert_eq!(major_of("16.4 (Ubuntu 16.4-1)").as_deref(), Some("16"));
    }
}
