//! Splitting a SQL script into statements the way psql does (`src/fe_utils/psqlscan.l` in PostgreSQL is the
//! reference).
//!
//! A `;` ends a statement only outside strings (`'...'`, `E'...'`, `U&'...'`, `$tag$...$tag$`), quoted identifiers
//! (`"..."`), comments (`--`, and `/* */`, which nest), parentheses, and the `BEGIN ... END` body of a
//! `CREATE [OR REPLACE] FUNCTION|PROCEDURE`. A `COPY ... FROM STDIN` statement takes the data lines that follow it,
//! up to the line `\.`, as pg_dump writes them. A line whose first non-blank character is `\` where a statement would
//! start is a psql meta-command. The splitter never fails: text Postgres would reject is still returned, so that
//! Postgres reports the error.
//!
//! The scanner works on bytes: every character that matters to it is ASCII, and every byte of a multibyte UTF-8
//! character is >= 0x80, so a slice cut next to an ASCII byte is always on a character boundary.

/// One statement (or psql meta-command) of a SQL script, with its position in the script.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RawStatement {
    /// The statement text: leading whitespace and leading comments removed, the terminating `;` and the
    /// whitespace before it removed. Comments inside or after the first token are kept as written.
    /// For a meta-command: the whole line from the backslash, without the line break.
    /// The text is always a prefix of the script from `offset`, and never empty.
    pub text: String,
    /// Byte offset of the first character of `text` in the script.
    pub offset: usize,
    /// 1-based line of the first character of `text`.
    pub line: usize,
    /// 1-based column (counted in characters, not bytes) of the first character of `text`.
    pub column: usize,
    /// For `COPY ... FROM STDIN` statements (and `\copy ... from stdin` meta-commands): the data that followed,
    /// i.e. every line after the line on which the statement ended, up to but not including the terminating line
    /// `\.` (each data line keeps its `\n`, and its `\r` if it had one). `None` for every other statement. A missing
    /// `\.` means the data runs to the end of the script.
    pub copy_data: Option<String>,
    /// True for a psql meta-command (a line whose first non-blank character, at the start of a statement, is `\`).
    pub meta: bool,
}

/// Splits a SQL script into statements the way psql does. Never fails: text that Postgres would reject
/// (an unterminated quote, say) is still returned as a statement so that Postgres reports the error.
///
/// Statements come back in script order; empty statements (`;;`, only comments) produce nothing.
pub fn split(script: &str) -> Vec<RawStatement> {
    let bytes = script.as_bytes();
    let mut out = Vec::new();
    let mut lines = LineCounter::default();
    let mut pos = 0;
    loop {
        let start = skip_blanks_and_comments(bytes, pos);
        if start >= bytes.len() {
            break;
        }
        let (line, column) = lines.at(script, start);
        let (text, end, meta, copies) = if bytes[start] == b'\\' {
            let end = line_end(bytes, start);
            let text = &script[start..end];
            let text = text.strip_suffix('\r').unwrap_or(text);
            pos = next_line(bytes, end);
            (text, end, true, meta_copies_from_stdin(text))
        } else {
            let scanned = Statement::scan(bytes, start);
            pos = scanned.next;
            (trim_space_end(&script[start..scanned.end]), scanned.end, false, scanned.copy_from_stdin)
        };
        let copy_data = if copies {
            let (data, resume) = copy_data(script, next_line(bytes, line_end(bytes, end)));
            pos = resume;
            Some(data)
        } else {
            None
        };
        if !text.is_empty() {
            out.push(RawStatement { text: text.to_owned(), offset: start, line, column, copy_data, meta });
        }
    }
    out
}

/// Maps a 1-based character position inside `statement.text` (as Postgres reports in an error's `position`
/// field) to the 1-based (line, column) in the script. Positions past the end clamp to the last character;
/// position 0 is taken as 1.
pub fn script_position(statement: &RawStatement, char_position: usize) -> (usize, usize) {
    let last = statement.text.chars().count().max(1);
    let steps = char_position.clamp(1, last) - 1;
    statement.text.chars().take(steps).fold((statement.line, statement.column), advance)
}

/// The (line, column) after `c`, starting from `(line, column)`. Only `\n` breaks a line, so `\r\n` counts once.
fn advance((line, column): (usize, usize), c: char) -> (usize, usize) {
    if c == '\n' {
        (line + 1, 1)
    } else {
        (line, column + 1)
    }
}

/// Lines and columns of byte offsets, computed incrementally: offsets are asked for in increasing order.
struct LineCounter {
    offset: usize,
    position: (usize, usize),
}

impl Default for LineCounter {
    fn default() -> Self {
        LineCounter { offset: 0, position: (1, 1) }
    }
}

impl LineCounter {
    fn at(&mut self, script: &str, offset: usize) -> (usize, usize) {
        if offset < self.offset {
            *self = LineCounter::default();
        }
        self.position = script[self.offset..offset].chars().fold(self.position, advance);
        self.offset = offset;
        self.position
    }
}

/// Where the scan of one statement stopped.
struct Scanned {
    /// Byte offset of the terminating `;`, or the end of the script.
    end: usize,
    /// Where the next statement may start.
    next: usize,
    /// The statement is `COPY ... FROM STDIN`.
    copy_from_stdin: bool,
}

/// What psql's lexer tracks while it reads one statement.
#[derive(Default)]
struct Statement {
    paren_depth: usize,
    /// Open `BEGIN` (and `CASE` inside a `BEGIN`) of a `CREATE FUNCTION|PROCEDURE` body.
    begin_depth: usize,
    /// How many words (identifiers and keywords) were seen.
    words: usize,
    /// First letters of the first four words, when they are `create`, `or`, `replace`, `function` or `procedure`.
    leading: [u8; 4],
    first_is_copy: bool,
    from_stdin: bool,
}

impl Statement {
    /// Scans the statement starting at `start`, up to its terminating `;` or the end of the script.
    fn scan(bytes: &[u8], start: usize) -> Scanned {
        let mut st = Statement::default();
        let mut after_from = false;
        let mut pos = start;
        while let Some(&b) = bytes.get(pos) {
            let next = bytes.get(pos + 1).copied();
            if is_space(b) {
                pos += 1;
                continue;
            }
            if b == b'-' && next == Some(b'-') {
                pos = skip_line_comment(bytes, pos);
                continue;
            }
            if b == b'/' && next == Some(b'*') {
                pos = skip_block_comment(bytes, pos).unwrap_or(bytes.len());
                continue;
            }
            // Any other token ends a `FROM` that `STDIN` may follow.
            let was_from = std::mem::take(&mut after_from);
            pos = match b {
                b';' if st.paren_depth == 0 && st.begin_depth == 0 => {
                    let copy_from_stdin = st.first_is_copy && st.from_stdin;
                    return Scanned { end: pos, next: pos + 1, copy_from_stdin };
                }
                b'(' => {
                    st.paren_depth += 1;
                    pos + 1
                }
                b')' => {
                    st.paren_depth = st.paren_depth.saturating_sub(1);
                    pos + 1
                }
                b'\'' => skip_string(bytes, pos, false),
                b'"' => skip_quoted_identifier(bytes, pos),
                b'$' => skip_dollar(bytes, pos),
                // A number, with any letters glued to it (`1e5`, `0x1F`, `1_000`): never a keyword.
                b'0'..=b'9' => skip_while(bytes, pos, |c| is_ident_cont(c) && c != b'$'),
                _ if is_ident_start(b) => {
                    let end = skip_while(bytes, pos, is_ident_cont);
                    let word = &bytes[pos..end];
                    match (word, bytes.get(end), bytes.get(end + 1)) {
                        ([b'e' | b'E'], Some(b'\''), _) => skip_string(bytes, end, true),
                        ([b'b' | b'B' | b'x' | b'X' | b'n' | b'N'], Some(b'\''), _) => skip_string(bytes, end, false),
                        ([b'u' | b'U'], Some(b'&'), Some(b'\'')) => skip_string(bytes, end + 1, false),
                        ([b'u' | b'U'], Some(b'&'), Some(b'"')) => skip_quoted_identifier(bytes, end + 1),
                        _ => {
                            after_from = st.word(word, was_from);
                            end
                        }
                    }
                }
                _ => pos + 1,
            };
        }
        Scanned { end: bytes.len(), next: bytes.len(), copy_from_stdin: st.first_is_copy && st.from_stdin }
    }

    /// Records a word (identifier or keyword) outside quotes; returns whether it is `FROM`.
    fn word(&mut self, word: &[u8], after_from: bool) -> bool {
        let is = |keyword: &str| word.eq_ignore_ascii_case(keyword.as_bytes());
        if self.words < self.leading.len() && ["create", "or", "replace", "function", "procedure"].into_iter().any(is) {
            self.leading[self.words] = word[0].to_ascii_lowercase();
        }
        if self.words == 0 {
            self.first_is_copy = is("copy");
        }
        self.words += 1;
        if self.creates_routine() && self.paren_depth == 0 {
            if is("begin") {
                self.begin_depth += 1;
            } else if is("case") {
                // CASE also ends with END; it only matters inside a BEGIN.
                if self.begin_depth > 0 {
                    self.begin_depth += 1;
                }
            } else if is("end") {
                self.begin_depth = self.begin_depth.saturating_sub(1);
            }
        }
        if after_from && self.paren_depth == 0 && is("stdin") {
            self.from_stdin = true;
        }
        is("from")
    }

    /// The statement starts with `CREATE [OR REPLACE] FUNCTION|PROCEDURE` (psql's test, letter for letter).
    fn creates_routine(&self) -> bool {
        matches!(self.leading, [b'c', b'f' | b'p', ..] | [b'c', b'o', b'r', b'f' | b'p'])
    }
}

/// psql's whitespace: space, tab, line feed, carriage return, form feed, vertical tab.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'\x0b')
}

/// May start an identifier or a dollar-quote tag (any byte of a multibyte character may).
fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// May continue an identifier: `$` may, so `a$b$` is one identifier, not a dollar quote.
fn is_ident_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

fn skip_while(bytes: &[u8], mut pos: usize, keep: impl Fn(u8) -> bool) -> usize {
    while bytes.get(pos).is_some_and(|&b| keep(b)) {
        pos += 1;
    }
    pos
}

/// Skips whitespace and complete comments. An unterminated `/*` is not skipped: it starts a statement, so that
/// Postgres reports it.
fn skip_blanks_and_comments(bytes: &[u8], mut pos: usize) -> usize {
    loop {
        match (bytes.get(pos), bytes.get(pos + 1)) {
            (Some(&b), _) if is_space(b) => pos += 1,
            (Some(b'-'), Some(b'-')) => pos = skip_line_comment(bytes, pos),
            (Some(b'/'), Some(b'*')) => match skip_block_comment(bytes, pos) {
                Some(end) => pos = end,
                None => return pos,
            },
            _ => return pos,
        }
    }
}

/// From `--` to the line break (not included), or the end of the script.
fn skip_line_comment(bytes: &[u8], pos: usize) -> usize {
    skip_while(bytes, pos, |b| b != b'\n' && b != b'\r')
}

/// From `/*` to just after its matching `*/`, counting nested `/* */` pairs; `None` when it never closes.
fn skip_block_comment(bytes: &[u8], mut pos: usize) -> Option<usize> {
    let mut depth = 0usize;
    while pos + 1 < bytes.len() {
        match (bytes[pos], bytes[pos + 1]) {
            (b'/', b'*') => {
                depth += 1;
                pos += 2;
            }
            (b'*', b'/') => {
                depth = depth.saturating_sub(1);
                pos += 2;
                if depth == 0 {
                    return Some(pos);
                }
            }
            _ => pos += 1,
        }
    }
    None
}

/// From the opening `'` at `quote` to just after the closing one (or the end of the script). `''` is a quote
/// inside the string; with `escapes` (an `E'...'` string) a backslash escapes the next character. A string
/// continued on a later line (`'a'` newline `'b'`) is one string, in the same mode.
fn skip_string(bytes: &[u8], quote: usize, escapes: bool) -> usize {
    let mut pos = quote + 1;
    while let Some(&b) = bytes.get(pos) {
        match (b, bytes.get(pos + 1)) {
            (b'\\', _) if escapes => pos += 2,
            (b'\'', Some(b'\'')) => pos += 2,
            (b'\'', _) => match continuation(bytes, pos + 1) {
                Some(next_quote) => pos = next_quote + 1,
                None => return pos + 1,
            },
            _ => pos += 1,
        }
    }
    bytes.len()
}

/// psql's quote continuation: whitespace holding a line break (and maybe `--` comments), then `'`. Returns where
/// that `'` is.
fn continuation(bytes: &[u8], mut pos: usize) -> Option<usize> {
    let mut line_break = false;
    loop {
        match (bytes.get(pos), bytes.get(pos + 1)) {
            (Some(b'\n' | b'\r'), _) => {
                line_break = true;
                pos += 1;
            }
            (Some(&b), _) if is_space(b) => pos += 1,
            (Some(b'-'), Some(b'-')) => pos = skip_line_comment(bytes, pos),
            (Some(b'\''), _) if line_break => return Some(pos),
            _ => return None,
        }
    }
}

/// From the opening `"` at `quote` to just after the closing one (or the end of the script); `""` is a quote
/// inside the identifier.
fn skip_quoted_identifier(bytes: &[u8], quote: usize) -> usize {
    let mut pos = quote + 1;
    while let Some(&b) = bytes.get(pos) {
        match (b, bytes.get(pos + 1)) {
            (b'"', Some(b'"')) => pos += 2,
            (b'"', _) => return pos + 1,
            _ => pos += 1,
        }
    }
    bytes.len()
}

/// At a `$` outside any quote: a dollar-quoted string (`$$...$$`, `$tag$...$tag$`, skipped whole, or to the end
/// of the script if it never closes), a parameter (`$1`), or a lone `$`.
fn skip_dollar(bytes: &[u8], pos: usize) -> usize {
    let tag_end = skip_while(bytes, pos + 1, |b| is_ident_cont(b) && b != b'$');
    let starts_tag = bytes.get(pos + 1).is_some_and(|&b| b == b'$' || is_ident_start(b));
    if starts_tag && bytes.get(tag_end) == Some(&b'$') {
        let delimiter = &bytes[pos..=tag_end];
        let body = tag_end + 1;
        return match bytes[body..].windows(delimiter.len()).position(|w| w == delimiter) {
            Some(at) => body + at + delimiter.len(),
            None => bytes.len(),
        };
    }
    // `$1`, or a `$` that opens nothing. Letters glued to a parameter are skipped with it: never a keyword.
    if bytes.get(pos + 1).is_some_and(u8::is_ascii_digit) {
        tag_end
    } else {
        pos + 1
    }
}

/// The offset of the line break ending the line that holds `pos` (or the end of the script).
fn line_end(bytes: &[u8], pos: usize) -> usize {
    skip_while(bytes, pos, |b| b != b'\n')
}

/// The start of the line after the line break at `line_end` (or the end of the script).
fn next_line(bytes: &[u8], line_end: usize) -> usize {
    (line_end + 1).min(bytes.len())
}

/// The text without psql's trailing whitespace (Unicode spaces such as U+00A0 are not whitespace to Postgres).
fn trim_space_end(text: &str) -> &str {
    text.trim_end_matches(|c: char| c.is_ascii() && is_space(c as u8))
}

/// The COPY data starting at `start`: the lines up to (not including) the line `\.`, and where the script resumes
/// after that line. Without `\.` the data runs to the end of the script.
fn copy_data(script: &str, start: usize) -> (String, usize) {
    let bytes = script.as_bytes();
    let mut line_start = start;
    while line_start < bytes.len() {
        let end = line_end(bytes, line_start);
        let line = &script[line_start..end];
        if line.strip_suffix('\r').unwrap_or(line) == "\\." {
            return (script[start..line_start].to_owned(), next_line(bytes, end));
        }
        line_start = next_line(bytes, end);
    }
    (script[start.min(bytes.len())..].to_owned(), bytes.len())
}

/// psql's `\copy ... from stdin` reads its data from the script, as `COPY ... FROM STDIN` does.
fn meta_copies_from_stdin(line: &str) -> bool {
    let mut words = line.split_ascii_whitespace().map(|w| w.trim_end_matches(';'));
    if words.next() != Some("\\copy") {
        return false;
    }
    let words: Vec<&str> = words.collect();
    words.windows(2).any(|w| w[0].eq_ignore_ascii_case("from") && w[1].eq_ignore_ascii_case("stdin"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(script: &str) -> Vec<String> {
        split(script).into_iter().map(|s| s.text).collect()
    }

    /// (text, line, column, offset) of every statement.
    fn placed(script: &str) -> Vec<(String, usize, usize, usize)> {
        split(script).into_iter().map(|s| (s.text, s.line, s.column, s.offset)).collect()
    }

    fn sql(text: &str, offset: usize, line: usize, column: usize) -> RawStatement {
        RawStatement { text: text.to_owned(), offset, line, column, copy_data: None, meta: false }
    }

    #[test]
    fn splits_on_semicolons_and_keeps_positions() {
        let got = split("SELECT 1;\n  SELECT 2 ;\n\nSELECT\n  3;");
        assert_eq!(got, [sql("SELECT 1", 0, 1, 1), sql("SELECT 2", 12, 2, 3), sql("SELECT\n  3", 24, 4, 1)]);
    }

    #[test]
    fn the_last_statement_may_lack_its_semicolon() {
        assert_eq!(split("SELECT 1;\nSELECT 2  \n\n"), [sql("SELECT 1", 0, 1, 1), sql("SELECT 2", 10, 2, 1)]);
        assert_eq!(texts("DROP TABLE t"), ["DROP TABLE t"]);
    }

    #[test]
    fn empty_statements_and_bare_comments_produce_nothing() {
        assert!(split("").is_empty());
        assert!(split(" \n\t\r\n").is_empty());
        assert!(split(";;  ;\n;").is_empty());
        assert!(split("-- only a comment\n/* and /* a nested */ block */\n").is_empty());
        assert_eq!(texts(";;SELECT 1;;; SELECT 2;;"), ["SELECT 1", "SELECT 2"]);
        assert_eq!(texts("SELECT 1; -- trailing note\n/* and a block */\n"), ["SELECT 1"]);
    }

    #[test]
    fn leading_comments_are_dropped_and_inner_ones_kept() {
        let script = "-- lead\n/* block */ SELECT /* in; */ 1 -- tail;\n;";
        assert_eq!(placed(script), [("SELECT /* in; */ 1 -- tail;".to_owned(), 2, 13, 20)]);
    }

    #[test]
    fn block_comments_nest() {
        let script = "SELECT 1 /* a /* b */ still; comment */ + 1; SELECT 2;";
        assert_eq!(texts(script), ["SELECT 1 /* a /* b */ still; comment */ + 1", "SELECT 2"]);
        // As leading comments too.
        assert_eq!(placed("/* a /* b */ c; */ SELECT 1;"), [("SELECT 1".to_owned(), 1, 20, 19)]);
        // `*/*` closes, then `*` is an operator.
        assert_eq!(texts("SELECT 2 /* x */*/* y; */3; SELECT 4"), ["SELECT 2 /* x */*/* y; */3", "SELECT 4"]);
    }

    #[test]
    fn line_comments_hide_semicolons() {
        assert_eq!(texts("SELECT 1 -- not; the end\n+ 1; SELECT 2"), ["SELECT 1 -- not; the end\n+ 1", "SELECT 2"]);
        assert_eq!(texts("SELECT 1 --x\r\n; SELECT 2"), ["SELECT 1 --x", "SELECT 2"]);
    }

    #[test]
    fn single_quoted_strings_hide_semicolons() {
        assert_eq!(texts("SELECT 'it''s; fine'; SELECT ''';'"), ["SELECT 'it''s; fine'", "SELECT ''';'"]);
    }

    #[test]
    fn a_backslash_in_a_standard_string_is_an_ordinary_character() {
        assert_eq!(texts(r"SELECT 'a\'; SELECT 2;"), [r"SELECT 'a\'", "SELECT 2"]);
        assert_eq!(texts(r"SELECT N'x\', B'1', X'f'; SELECT 2"), [r"SELECT N'x\', B'1', X'f'", "SELECT 2"]);
    }

    #[test]
    fn e_strings_take_backslash_escapes() {
        // `E'\''` is the string `'`: the escaped quote does not end it. (As a standard string, the rest would be one.)
        assert_eq!(texts(r"SELECT E'\''; SELECT 2"), [r"SELECT E'\''", "SELECT 2"]);
        assert_eq!(texts(r"SELECT E'\'; still'; SELECT 2;"), [r"SELECT E'\'; still'", "SELECT 2"]);
        assert_eq!(texts(r"SELECT e'\\'; SELECT e'\';'"), [r"SELECT e'\\'", r"SELECT e'\';'"]);
    }

    #[test]
    fn e_is_a_prefix_only_as_a_whole_word() {
        // `abce'x\'` is the identifier `abce` and the standard string `'x\'`.
        assert_eq!(texts(r"SELECT abce'x\'; SELECT 1;"), [r"SELECT abce'x\'", "SELECT 1"]);
    }

    #[test]
    fn a_continued_e_string_keeps_its_escapes() {
        // psql: `'...'` newline `'...'` continues the same string, so `\'` is still an escape.
        let script = "SELECT E'a' -- note\n  'b\\'; c'; SELECT 2";
        assert_eq!(texts(script), ["SELECT E'a' -- note\n  'b\\'; c'", "SELECT 2"]);
        // On the same line it is two strings (a syntax error Postgres will report), not one.
        assert_eq!(texts(r"SELECT E'a' 'b\'; c'"), [r"SELECT E'a' 'b\'", "c'"]);
    }

    #[test]
    fn unicode_escape_strings_and_identifiers() {
        let script = r#"SELECT U&'d;\0061t', u&"a;b"; SELECT 2"#;
        assert_eq!(texts(script), [r#"SELECT U&'d;\0061t', u&"a;b""#, "SELECT 2"]);
    }

    #[test]
    fn quoted_identifiers_hide_semicolons() {
        let script = r#"SELECT "a;b", "x"";y" FROM t; SELECT 2"#;
        assert_eq!(texts(script), [r#"SELECT "a;b", "x"";y" FROM t"#, "SELECT 2"]);
    }

    #[test]
    fn dollar_quotes_hide_semicolons() {
        let script = "DO $$ BEGIN PERFORM 1; END $$; SELECT 2;";
        assert_eq!(texts(script), ["DO $$ BEGIN PERFORM 1; END $$", "SELECT 2"]);
        // Inside `$fn$`, `$$` and `$a$` are just text.
        let script = "CREATE FUNCTION f() RETURNS text AS $fn$ SELECT $$;$$ || $a$;$a$; $fn$ LANGUAGE sql;\nSELECT 2";
        assert_eq!(
            texts(script),
            ["CREATE FUNCTION f() RETURNS text AS $fn$ SELECT $$;$$ || $a$;$a$; $fn$ LANGUAGE sql", "SELECT 2"]
        );
        // Tags are case-sensitive and may hold underscores, digits after the first character, and non-ASCII.
        assert_eq!(texts("SELECT $_b1$ $_B1$; $_b1$; SELECT $é$;$é$"), ["SELECT $_b1$ $_B1$; $_b1$", "SELECT $é$;$é$"]);
    }

    #[test]
    fn dollar_digits_are_parameters_not_quotes() {
        assert_eq!(texts("PREPARE p AS SELECT $1; EXECUTE p(1);"), ["PREPARE p AS SELECT $1", "EXECUTE p(1)"]);
        assert_eq!(texts("SELECT $1;$$;$$"), ["SELECT $1", "$$;$$"]);
        assert_eq!(texts("SELECT $2$; SELECT 3"), ["SELECT $2$", "SELECT 3"]);
    }

    #[test]
    fn a_dollar_inside_an_identifier_opens_nothing() {
        assert_eq!(texts("SELECT a$b$; SELECT 2; $b$"), ["SELECT a$b$", "SELECT 2", "$b$"]);
        assert_eq!(texts("SELECT $x; SELECT 2"), ["SELECT $x", "SELECT 2"]);
    }

    #[test]
    fn parentheses_hide_semicolons() {
        let script =
            "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));\nSELECT 1";
        assert_eq!(
            texts(script),
            [
                "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))",
                "SELECT 1"
            ]
        );
        // A stray `)` does not make the depth negative.
        assert_eq!(texts("SELECT 1); SELECT (2;"), ["SELECT 1)", "SELECT (2;"]);
    }

    #[test]
    fn begin_atomic_bodies_hide_semicolons() {
        let function = "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  \
                        SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\nEND";
        let script = format!("{function};\nSELECT f(1);");
        assert_eq!(split(&script), [sql(function, 0, 1, 1), sql("SELECT f(1)", function.len() + 2, 6, 1)]);
    }

    #[test]
    fn begin_atomic_in_create_or_replace_procedure() {
        let script = "create or replace procedure p() language sql begin atomic insert into t values (1); \
                      update t set a = case a when 1 then 2 end; end; call p();";
        assert_eq!(
            texts(script),
            [
                "create or replace procedure p() language sql begin atomic insert into t values (1); \
                 update t set a = case a when 1 then 2 end; end",
                "call p()"
            ]
        );
    }

    #[test]
    fn keywords_in_identifiers_strings_and_comments_do_not_count() {
        // Inside the body: `begin_date`, `"END"`, `xend`, `'end'`, `end_` must not close the BEGIN.
        let body = "CREATE FUNCTION g() RETURNS SETOF t LANGUAGE sql BEGIN ATOMIC SELECT begin_date, \"END\", xend, \
                    'end', end_, $$end$$ /* end */ -- end\n FROM t; END";
        assert_eq!(texts(&format!("{body}; SELECT 2;")), [body, "SELECT 2"]);
        // And none of them opens a BEGIN either.
        let script = "CREATE FUNCTION h() RETURNS int LANGUAGE sql AS $$ begin $$ /* begin */ -- begin\n; \
                      SELECT \"BEGIN\", begin_date; SELECT 3";
        assert_eq!(
            texts(script),
            [
                "CREATE FUNCTION h() RETURNS int LANGUAGE sql AS $$ begin $$ /* begin */ -- begin",
                "SELECT \"BEGIN\", begin_date",
                "SELECT 3"
            ]
        );
    }

    #[test]
    fn begin_counts_only_outside_parentheses() {
        // psql's heuristic: a bare `begin` at depth 0 counts, holding the rest of the script together ...
        let script = "CREATE FUNCTION k(begin int) RETURNS int LANGUAGE sql RETURN begin; SELECT 2";
        assert_eq!(texts(script), ["CREATE FUNCTION k(begin int) RETURNS int LANGUAGE sql RETURN begin; SELECT 2"]);
        // ... while `begin` inside parentheses (a parameter name here) does not.
        let script = "CREATE FUNCTION k(begin int) RETURNS int LANGUAGE sql RETURN (begin); SELECT 2";
        assert_eq!(texts(script), ["CREATE FUNCTION k(begin int) RETURNS int LANGUAGE sql RETURN (begin)", "SELECT 2"]);
    }

    #[test]
    fn a_plain_transaction_is_split() {
        let script = "BEGIN;\nUPDATE t SET a = CASE WHEN b THEN 1 END;\nEND;\nBEGIN TRANSACTION; COMMIT;";
        assert_eq!(
            placed(script),
            [
                ("BEGIN".to_owned(), 1, 1, 0),
                ("UPDATE t SET a = CASE WHEN b THEN 1 END".to_owned(), 2, 1, 7),
                ("END".to_owned(), 3, 1, 48),
                ("BEGIN TRANSACTION".to_owned(), 4, 1, 53),
                ("COMMIT".to_owned(), 4, 20, 72),
            ]
        );
        // Only CREATE FUNCTION|PROCEDURE counts BEGIN: after CREATE TABLE, a BEGIN is its own statement.
        assert_eq!(texts("CREATE TABLE b (x int); BEGIN; SELECT 1"), ["CREATE TABLE b (x int)", "BEGIN", "SELECT 1"]);
    }

    #[test]
    fn copy_from_stdin_takes_the_data_up_to_backslash_dot() {
        let script = "COPY t (a, b) FROM stdin;\n1\tx;y\n2\t'\\N\n\\.\nSELECT 1;\n";
        let got = split(script);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].text, "COPY t (a, b) FROM stdin");
        assert_eq!(got[0].copy_data.as_deref(), Some("1\tx;y\n2\t'\\N\n"));
        assert_eq!(got[1], sql("SELECT 1", 41, 5, 1));
    }

    #[test]
    fn copy_data_with_crlf_line_endings() {
        let script = "copy t from STDIN ;\r\n1\r\n\\.\r\nSELECT 1;\r\n";
        let got = split(script);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].text.as_str(), got[0].copy_data.as_deref()), ("copy t from STDIN", Some("1\r\n")));
        assert_eq!(got[1], sql("SELECT 1", 28, 4, 1));
    }

    #[test]
    fn copy_data_without_backslash_dot_runs_to_the_end() {
        let got = split("COPY t FROM STDIN;\n1\n2");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].copy_data.as_deref(), Some("1\n2"));
        // A COPY at the very end of the script has empty data.
        let got = split("SELECT 1;\nCOPY t FROM STDIN");
        assert_eq!(got[1].copy_data.as_deref(), Some(""));
        // An empty data section.
        let got = split("COPY t FROM STDIN;\n\\.\nSELECT 1");
        assert_eq!(got.iter().map(|s| s.copy_data.as_deref()).collect::<Vec<_>>(), [Some(""), None]);
    }

    #[test]
    fn copy_data_starts_on_the_line_after_the_semicolon() {
        // The rest of the COPY line (a comment here) is not data; `\.` must be alone on its line.
        let script = "COPY t FROM STDIN\n  WITH (FORMAT csv); -- data follows\na,\"b;\"\n\\. \n\\.\nSELECT 1";
        let got = split(script);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].text, "COPY t FROM STDIN\n  WITH (FORMAT csv)");
        assert_eq!(got[0].copy_data.as_deref(), Some("a,\"b;\"\n\\. \n"));
        assert_eq!((got[1].text.as_str(), got[1].line), ("SELECT 1", 6));
    }

    #[test]
    fn only_copy_from_stdin_has_data() {
        let script = "COPY t FROM '/tmp/f'; COPY t TO STDOUT; SELECT 'COPY t FROM STDIN'; COPY t FROM 'stdin';\n\
                      SELECT 1 FROM stdin; COPY (SELECT 1 FROM stdin) TO STDOUT; COPY t FROM \"stdin\"";
        let got = split(script);
        assert_eq!(got.len(), 7);
        assert!(got.iter().all(|s| s.copy_data.is_none()), "{got:#?}");
        // Comments between FROM and STDIN do not matter; other tokens do.
        assert_eq!(split("COPY t FROM /* x */ STDIN;\n1\n")[0].copy_data.as_deref(), Some("1\n"));
        assert_eq!(split("COPY t FROM (STDIN);\n")[0].copy_data, None);
    }

    #[test]
    fn meta_commands_run_to_the_end_of_their_line() {
        let script = "\\connect db\nSELECT 1; \\i other.sql\n  \\set ON_ERROR_STOP on\r\n-- c\n\\restrict abc123\n";
        let meta = |text: &str, offset, line, column| RawStatement { meta: true, ..sql(text, offset, line, column) };
        assert_eq!(
            split(script),
            [
                meta("\\connect db", 0, 1, 1),
                sql("SELECT 1", 12, 2, 1),
                meta("\\i other.sql", 22, 2, 11),
                meta("\\set ON_ERROR_STOP on", 37, 3, 3),
                meta("\\restrict abc123", 65, 5, 1),
            ]
        );
    }

    #[test]
    fn a_meta_command_ends_nothing_but_its_line() {
        // The line after a meta-command is SQL, and a `;` on the meta-command's line is part of it.
        let got = split("\\set x 'a;b'\nSELECT 1");
        assert_eq!(
            got.iter().map(|s| (s.text.as_str(), s.meta)).collect::<Vec<_>>(),
            [("\\set x 'a;b'", true), ("SELECT 1", false)]
        );
    }

    #[test]
    fn backslashes_inside_a_statement_are_text() {
        let got = split("SELECT 2\n\\ 3;\nSELECT '\\x'");
        assert_eq!(
            got.iter().map(|s| (s.text.as_str(), s.meta)).collect::<Vec<_>>(),
            [("SELECT 2\n\\ 3", false), ("SELECT '\\x'", false)]
        );
    }

    #[test]
    fn backslash_copy_from_stdin_takes_its_data() {
        let got = split("\\copy t from stdin\n1;2\n\\.\nSELECT 1");
        assert_eq!(got.len(), 2);
        assert!(got[0].meta);
        assert_eq!(got[0].copy_data.as_deref(), Some("1;2\n"));
        assert_eq!(got[1].text, "SELECT 1");
        assert_eq!(split("\\copy t from 'f.csv'\nSELECT 1").len(), 2);
    }

    #[test]
    fn an_unterminated_quote_takes_the_rest_of_the_script() {
        assert_eq!(texts("SELECT 1; SELECT 'abc; SELECT 2;\n"), ["SELECT 1", "SELECT 'abc; SELECT 2;"]);
        assert_eq!(texts("SELECT 1; SELECT \"abc; SELECT 2;"), ["SELECT 1", "SELECT \"abc; SELECT 2;"]);
        assert_eq!(texts("SELECT 1; SELECT $q$ abc; SELECT 2;"), ["SELECT 1", "SELECT $q$ abc; SELECT 2;"]);
        assert_eq!(texts("SELECT 1; SELECT E'\\'; x"), ["SELECT 1", "SELECT E'\\'; x"]);
        assert_eq!(texts("SELECT 1 /* a; /* b */ ; SELECT 2"), ["SELECT 1 /* a; /* b */ ; SELECT 2"]);
        // Even as a leading comment, an unterminated `/*` is returned for Postgres to reject.
        assert_eq!(
            placed("SELECT 1;\n /* never closed; "),
            [("SELECT 1".to_owned(), 1, 1, 0), ("/* never closed;".to_owned(), 2, 2, 11)]
        );
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        // `é`, `ü` and `ö` are two bytes each; `\t` is one column.
        let script = "SELECT 'é'; /* ü */ SELECT 'ö';\n\tSELECT 3;\r\nSELECT 4";
        assert_eq!(
            placed(script),
            [
                ("SELECT 'é'".to_owned(), 1, 1, 0),
                ("SELECT 'ö'".to_owned(), 1, 21, 22),
                ("SELECT 3".to_owned(), 2, 2, 36),
                ("SELECT 4".to_owned(), 3, 1, 47),
            ]
        );
        // Non-ASCII spaces are not whitespace to Postgres: they stay in the text.
        assert_eq!(texts("SELECT 1\u{a0};"), ["SELECT 1\u{a0}"]);
    }

    #[test]
    fn script_position_follows_line_breaks_inside_statements() {
        let script = "SELECT 0;\n  SELECT\r\n    é, ü,\n    nope FROM t;";
        let s = &split(script)[1];
        assert_eq!((s.line, s.column), (2, 3));
        assert_eq!(script_position(s, 1), (2, 3)); // S
        assert_eq!(script_position(s, 6), (2, 8)); // T
        assert_eq!(script_position(s, 7), (2, 9)); // \r
        assert_eq!(script_position(s, 9), (3, 1));
        assert_eq!(script_position(s, 13), (3, 5)); // é
        assert_eq!(script_position(s, 16), (3, 8)); // ü: é counted as one character
        assert_eq!(script_position(s, 23), (4, 5)); // nope
        assert_eq!(script_position(s, 10_000), (4, 15)); // clamps to the last `t`
        assert_eq!(script_position(s, 0), (2, 3));
        let empty = RawStatement { text: String::new(), ..sql("", 0, 7, 4) };
        assert_eq!(script_position(&empty, 3), (7, 4));
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let cases = [
            ("", vec![]),
            ("$", vec!["$"]),
            ("'", vec!["'"]),
            ("\"", vec!["\""]),
            ("/*", vec!["/*"]),
            ("/*/", vec!["/*/"]),
            ("\\", vec!["\\"]),
            ("\\\r\n", vec!["\\"]),
            ("$$", vec!["$$"]),
            ("$a", vec!["$a"]),
            ("$1", vec!["$1"]),
            ("E'", vec!["E'"]),
            ("e'\\", vec!["e'\\"]),
            ("U&", vec!["U&"]),
            ("U&'", vec!["U&'"]),
            ("'a'\n", vec!["'a'"]),
            ("-", vec!["-"]),
            ("--", vec![]),
            ("(", vec!["("]),
            (")", vec![")"]),
            ("é", vec!["é"]),
            ("COPY", vec!["COPY"]),
        ];
        for (script, want) in cases {
            assert_eq!(texts(script), want, "script {script:?}");
        }
    }

    /// A tiny deterministic generator, so that the property test needs no dependency.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) as usize % n
        }
    }

    #[test]
    fn any_input_splits_into_faithful_statements() {
        let pieces = [
            ";", "'", "''", "\"", "$", "$$", "$a$", "$1", "E'", "\\", "\\.", "\n", "\r\n", " ", "--", "/*", "*/", "(",
            ")", "é", "ü€", "x", "begin", "BEGIN", "end", "case", "CREATE", "FUNCTION", "or", "replace", "COPY",
            "from", "stdin", "U&", "\t", "1",
        ];
        let mut rng = Lcg(42);
        for _ in 0..3000 {
            let script: String = (0..rng.below(40)).map(|_| pieces[rng.below(pieces.len())]).collect();
            let mut last_end = 0;
            for s in split(&script) {
                assert!(!s.text.is_empty(), "{script:?}");
                assert!(s.offset >= last_end, "{script:?}");
                assert!(script[s.offset..].starts_with(&s.text), "{script:?}: {s:?}");
                let before = &script[..s.offset];
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
                assert_eq!((s.line, s.column), (line, column), "{script:?}: {s:?}");
                let end = script_position(&s, usize::MAX);
                assert!(end.0 >= s.line, "{script:?}");
                last_end = s.offset + s.text.len();
            }
        }
    }
}
