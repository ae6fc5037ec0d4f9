//! Splitting a SQL script into statements the way psql does (`src/fe_utils/psqlscan.l` is the reference).
//!
//! A `;` ends a statement only outside quotes (`'...'`, `E'...'`, `"..."`, `$tag$...$tag$`), comments (`--`, and
//! `/* */`, which nest), parentheses, and `BEGIN ... END` bodies of `CREATE FUNCTION/PROCEDURE`. `COPY ... FROM
//! STDIN` statements take the data lines that follow, up to `\.`, as pg_dump writes them. A line starting with `\`
//! where a statement would start is a psql meta-command. The splitter never fails: text Postgres would reject is
//! still returned, so that Postgres reports the error.

/// One statement (or psql meta-command) of a SQL script, with its position in the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawStatement {
    /// The statement text: leading whitespace and comments removed, the terminating `;` and the whitespace before
    /// it removed. For a meta-command: the whole line from the backslash, without the line break.
    pub text: String,
    /// Byte offset of the first character of `text` in the script.
    pub offset: usize,
    /// 1-based line of the first character of `text`.
    pub line: usize,
    /// 1-based column (in characters) of the first character of `text`.
    pub column: usize,
    /// For `COPY ... FROM STDIN`: the data lines that followed, up to but not including the line `\.` (each line
    /// keeps its line break). `None` for every other statement. Without `\.` the data runs to the end of the script.
    pub copy_data: Option<String>,
    /// True for a psql meta-command.
    pub meta: bool,
}

/// Splits a SQL script into statements the way psql does. Never fails.
pub fn split(script: &str) -> Vec<RawStatement> {
    let mut out = Vec::new();
    let mut scanner = Scanner { src: script, bytes: script.as_bytes(), pos: 0 };
    let mut positions = Positions::default();
    loop {
        scanner.skip_blanks_and_comments();
        if scanner.pos >= script.len() {
            break;
        }
        let start = scanner.pos;
        let (line, column) = positions.at(script, start);
        if scanner.bytes[start] == b'\\' {
            let end = scanner.line_end(start);
            scanner.pos = next_line(script, end);
            let text = script[start..end].trim_end_matches('\r').to_owned();
            out.push(RawStatement { text, offset: start, line, column, copy_data: None, meta: true });
            continue;
        }
        let body = scanner.statement();
        let text = script[start..body.end].trim_end().to_owned();
        let copy_data = if body.copy_from_stdin {
            let data_start = next_line(script, scanner.line_end(body.end));
            let (data, resume) = copy_data(script, data_start);
            scanner.pos = resume;
            Some(data)
        } else {
            None
        };
        if !text.is_empty() {
            out.push(RawStatement { text, offset: start, line, column, copy_data, meta: false });
        }
    }
    out
}

/// Maps a 1-based character position inside `statement.text` (Postgres's error `position`) to the 1-based
/// (line, column) in the script. Positions past the end clamp to the last character.
pub fn script_position(statement: &RawStatement, char_position: usize) -> (usize, usize) {
    let steps = char_position.max(1).min(statement.text.chars().count().max(1)) - 1;
    let (mut line, mut column) = (statement.line, statement.column);
    for c in statement.text.chars().take(steps) {
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

/// Line and column of byte offsets, computed incrementally (offsets are asked for in increasing order).
#[derive(Default)]
struct Positions {
    offset: usize,
    line: usize,
    column: usize,
}

impl Positions {
    fn at(&mut self, script: &str, offset: usize) -> (usize, usize) {
        if self.line == 0 || offset < self.offset {
            *self = Positions { offset: 0, line: 1, column: 1 };
        }
        for c in script[self.offset..offset].chars() {
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        self.offset = offset;
        (self.line, self.column)
    }
}

/// Where the statement body ended, and whether it was `COPY ... FROM STDIN`.
struct Body {
    /// Byte offset of the terminating `;`, or the end of the script.
    end: usize,
    copy_from_stdin: bool,
}

/// psql's heuristic for `BEGIN ... END` bodies: only in a statement that starts with
/// `CREATE [OR REPLACE] FUNCTION|PROCEDURE`, at parenthesis depth 0.
#[derive(Default)]
struct Words {
    count: usize,
    /// First letters of the first four words when they are create/function/procedure/or/replace.
    leading: [u8; 4],
    first_is_copy: bool,
    previous_is_from: bool,
    copy_from_stdin: bool,
}

impl Words {
    fn push(&mut self, word: &str) -> &mut Self {
        let lower = word.to_ascii_lowercase();
        if self.count < 4 && matches!(lower.as_str(), "create" | "function" | "procedure" | "or" | "replace") {
            self.leading[self.count] = lower.as_bytes()[0];
        }
        if self.count == 0 {
            self.first_is_copy = lower == "copy";
        }
        if self.first_is_copy && self.previous_is_from && lower == "stdin" {
            self.copy_from_stdin = true;
        }
        self.previous_is_from = lower == "from";
        self.count += 1;
        self
    }

    fn in_routine_definition(&self) -> bool {
        let l = &self.leading;
        l[0] == b'c'
            && (l[1] == b'f' || l[1] == b'p' || (l[1] == b'o' && l[2] == b'r' && (l[3] == b'f' || l[3] == b'p')))
    }
}

struct Scanner<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self, at: usize) -> Option<u8> {
        self.bytes.get(at).copied()
    }

    /// Skips white space and comments between statements (and stray `;`).
    fn skip_blanks_and_comments(&mut self) {
        loop {
            match self.peek(self.pos) {
                Some(b) if b.is_ascii_whitespace() || b == b';' => self.pos += 1,
                Some(b'-') if self.peek(self.pos + 1) == Some(b'-') => self.pos = self.line_end(self.pos),
                Some(b'/') if self.peek(self.pos + 1) == Some(b'*') => self.pos = self.block_comment_end(self.pos),
                _ => return,
            }
        }
    }

    /// Scans one statement from `self.pos`; leaves `pos` after its `;`.
    fn statement(&mut self) -> Body {
        let mut paren_depth = 0usize;
        let mut begin_depth = 0usize;
        let mut words = Words::default();
        let mut i = self.pos;
        while i < self.bytes.len() {
            let b = self.bytes[i];
            i = match b {
                b';' if paren_depth == 0 && begin_depth == 0 => {
                    self.pos = i + 1;
                    return Body { end: i, copy_from_stdin: words.copy_from_stdin };
                }
                b'\'' => self.string_end(i),
                b'"' => self.quoted_end(i, b'"'),
                b'-' if self.peek(i + 1) == Some(b'-') => self.line_end(i),
                b'/' if self.peek(i + 1) == Some(b'*') => self.block_comment_end(i),
                b'$' => self.dollar_end(i).unwrap_or(i + 1),
                b'(' => {
                    paren_depth += 1;
                    i + 1
                }
                b')' => {
                    paren_depth = paren_depth.saturating_sub(1);
                    i + 1
                }
                _ if is_ident_start(b) => {
                    let end = self.word_end(i);
                    let word = &self.src[i..end];
                    if words.push(word).in_routine_definition() && paren_depth == 0 {
                        let opens = word.eq_ignore_ascii_case("begin")
                            || (word.eq_ignore_ascii_case("case") && begin_depth >= 1);
                        if opens {
                            begin_depth += 1;
                        } else if word.eq_ignore_ascii_case("end") {
                            begin_depth = begin_depth.saturating_sub(1);
                        }
                    }
                    end
                }
                b if b.is_ascii_digit() => self.word_end(i),
                _ => i + 1,
            };
        }
        self.pos = self.bytes.len();
        Body { end: self.bytes.len(), copy_from_stdin: words.copy_from_stdin }
    }

    /// End of an identifier or keyword (or number) starting at `i`.
    fn word_end(&self, mut i: usize) -> usize {
        while i < self.bytes.len() && (is_ident_cont(self.bytes[i])) {
            i += 1;
        }
        i
    }

    /// Offset of the line break ending the line that holds `i` (or the end of the script).
    fn line_end(&self, i: usize) -> usize {
        self.src[i..].find('\n').map_or(self.bytes.len(), |n| i + n)
    }

    /// End of a `/* */` comment starting at `i`; comments nest.
    fn block_comment_end(&self, mut i: usize) -> usize {
        let mut depth = 0usize;
        while i < self.bytes.len() {
            if self.bytes[i] == b'/' && self.peek(i + 1) == Some(b'*') {
                depth += 1;
                i += 2;
            } else if self.bytes[i] == b'*' && self.peek(i + 1) == Some(b'/') {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            } else {
                i += 1;
            }
        }
        self.bytes.len()
    }

    /// End of a string literal whose opening quote is at `i`: `E'...'` (an `E` right before the quote, not part of a
    /// longer word) takes backslash escapes; other strings only the doubled quote.
    fn string_end(&self, i: usize) -> usize {
        let escapes =
            i >= 1 && matches!(self.bytes[i - 1], b'e' | b'E') && (i < 2 || !is_ident_cont(self.bytes[i - 2]));
        if !escapes {
            return self.quoted_end(i, b'\'');
        }
        let mut j = i + 1;
        while j < self.bytes.len() {
            match self.bytes[j] {
                b'\\' => j += 2,
                b'\'' if self.peek(j + 1) == Some(b'\'') => j += 2,
                b'\'' => return j + 1,
                _ => j += 1,
            }
        }
        self.bytes.len()
    }

    /// End of a quoted run (`'...'` or `"..."`) opened at `i`, where a doubled quote stands for itself.
    fn quoted_end(&self, i: usize, quote: u8) -> usize {
        let mut j = i + 1;
        while j < self.bytes.len() {
            if self.bytes[j] == quote {
                if self.peek(j + 1) == Some(quote) {
                    j += 2;
                    continue;
                }
                return j + 1;
            }
            j += 1;
        }
        self.bytes.len()
    }

    /// End of a dollar-quoted string opened at `i`, or `None` when the `$` opens none (`$1`, or a `$` inside a word).
    fn dollar_end(&self, i: usize) -> Option<usize> {
        if i > 0 && is_ident_cont(self.bytes[i - 1]) {
            return None;
        }
        let mut j = i + 1;
        if self.peek(j).is_some_and(is_ident_start) {
            while self.peek(j).is_some_and(|b| is_ident_cont(b) && b != b'$') {
                j += 1;
            }
        }
        if self.peek(j) != Some(b'$') {
            return None;
        }
        let delimiter = &self.src[i..=j];
        let body = j + 1;
        Some(self.src[body..].find(delimiter).map_or(self.bytes.len(), |n| body + n + delimiter.len()))
    }
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

/// Offset just after the line break at `line_end` (or the end of the script).
fn next_line(script: &str, line_end: usize) -> usize {
    (line_end + 1).min(script.len())
}

/// The COPY data starting at `start`, up to the line `\.`; and where the script goes on after it.
fn copy_data(script: &str, start: usize) -> (String, usize) {
    let mut line_start = start;
    while line_start < script.len() {
        let line_end = script[line_start..].find('\n').map_or(script.len(), |n| line_start + n);
        if script[line_start..line_end].trim_end_matches('\r') == "\\." {
            return (script[start..line_start].to_owned(), next_line(script, line_end));
        }
        line_start = line_end + 1;
    }
    (script[start..].to_owned(), script.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(script: &str) -> Vec<String> {
        split(script).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn statements_end_at_semicolons_and_the_last_needs_none() {
        assert_eq!(texts("SELECT 1; SELECT 2;\nSELECT 3"), ["SELECT 1", "SELECT 2", "SELECT 3"]);
    }

    #[test]
    fn empty_statements_and_comment_only_scripts_give_nothing() {
        assert!(split("").is_empty());
        assert!(split(";;  ;\n").is_empty());
        assert!(split("-- only a comment\n/* and /* nested */ another */").is_empty());
        assert_eq!(texts("SELECT 1; -- trailing comment"), ["SELECT 1"]);
    }

    #[test]
    fn leading_comments_are_dropped_and_inner_ones_kept() {
        let s = split("-- why\n/* what */ DELETE FROM t -- keep; not the end\n WHERE id = 1;");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].text, "DELETE FROM t -- keep; not the end\n WHERE id = 1");
        assert_eq!((s[0].line, s[0].column), (2, 12));
    }

    #[test]
    fn nested_block_comments_hide_semicolons() {
        assert_eq!(
            texts("SELECT /* a /* b; */ still; */ 1; SELECT 2"),
            ["SELECT /* a /* b; */ still; */ 1", "SELECT 2"]
        );
    }

    #[test]
    fn quotes_hide_semicolons() {
        assert_eq!(texts("SELECT 'a;b', 'it''s;'; SELECT 2"), ["SELECT 'a;b', 'it''s;'", "SELECT 2"]);
        assert_eq!(texts(r#"SELECT "a;b" FROM "x""y;"; SELECT 2"#), [r#"SELECT "a;b" FROM "x""y;""#, "SELECT 2"]);
    }

    #[test]
    fn escape_strings_take_backslashes_and_standard_strings_do_not() {
        assert_eq!(texts(r"SELECT E'\';'; SELECT 2"), [r"SELECT E'\';'", "SELECT 2"]);
        assert_eq!(texts(r"SELECT e'a\\'; SELECT 2"), [r"SELECT e'a\\'", "SELECT 2"]);
        assert_eq!(texts(r"SELECT 'a\'; SELECT 2"), [r"SELECT 'a\'", "SELECT 2"]);
        // The E of a longer word is not an escape-string prefix.
        assert_eq!(texts(r"SELECT type'a\'; SELECT 2"), [r"SELECT type'a\'", "SELECT 2"]);
    }

    #[test]
    fn dollar_quotes_hide_semicolons_and_parameters_are_not_quotes() {
        let script = "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n\
                      DO $body$ BEGIN PERFORM 1; RAISE NOTICE '$$'; END $body$;\n\
                      SELECT $1, a$b$c FROM t; SELECT 4";
        assert_eq!(
            texts(script),
            [
                "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql",
                "DO $body$ BEGIN PERFORM 1; RAISE NOTICE '$$'; END $body$",
                "SELECT $1, a$b$c FROM t",
                "SELECT 4",
            ]
        );
        assert_eq!(texts("SELECT $a$ x $b$ ; $b$ y; $a$; SELECT 2"), ["SELECT $a$ x $b$ ; $b$ y; $a$", "SELECT 2"]);
    }

    #[test]
    fn parentheses_hide_semicolons() {
        assert_eq!(texts("SELECT (1;2); SELECT 3"), ["SELECT (1;2)", "SELECT 3"]);
    }

    #[test]
    fn begin_atomic_bodies_stay_whole_with_case_inside() {
        let script = "CREATE OR REPLACE FUNCTION f(x int) RETURNS int LANGUAGE sql\n\
                      BEGIN ATOMIC\n  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\n  SELECT 2;\nEND;\nSELECT 3;";
        let s = texts(script);
        assert_eq!(s.len(), 2, "{s:?}");
        assert!(s[0].ends_with("SELECT 2;\nEND"), "{s:?}");
        assert_eq!(s[1], "SELECT 3");
        assert_eq!(
            texts("CREATE PROCEDURE p() BEGIN ATOMIC SELECT 1; END; SELECT 2"),
            ["CREATE PROCEDURE p() BEGIN ATOMIC SELECT 1; END", "SELECT 2"]
        );
    }

    #[test]
    fn a_transaction_begin_is_its_own_statement() {
        assert_eq!(
            texts("BEGIN;\nUPDATE t SET begin_date = now(), xend = 1;\nCOMMIT;"),
            ["BEGIN", "UPDATE t SET begin_date = now(), xend = 1", "COMMIT"]
        );
        // A column called "begin" in CREATE FUNCTION's argument list is inside parentheses.
        assert_eq!(
            texts("CREATE FUNCTION f(\"begin\" int, begin_at int) RETURNS int AS 'select 1' LANGUAGE sql; SELECT 2")
                .len(),
            2
        );
    }

    #[test]
    fn copy_from_stdin_takes_its_data_up_to_the_terminator() {
        let script = "COPY public.users (id, name) FROM stdin;\n1\tAlice\n2\tBob; not SQL\n\\.\nSELECT 1;";
        let s = split(script);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].text, "COPY public.users (id, name) FROM stdin");
        assert_eq!(s[0].copy_data.as_deref(), Some("1\tAlice\n2\tBob; not SQL\n"));
        assert_eq!((s[1].text.as_str(), s[1].line, s[1].copy_data.as_deref()), ("SELECT 1", 5, None));
    }

    #[test]
    fn copy_data_with_crlf_and_without_terminator() {
        let s = split("copy t from STDIN;\r\na\r\n\\.\r\nSELECT 1;");
        assert_eq!(s[0].copy_data.as_deref(), Some("a\r\n"));
        assert_eq!(s[1].text, "SELECT 1");
        let s = split("COPY t FROM stdin;\nrow 1\nrow 2\n");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].copy_data.as_deref(), Some("row 1\nrow 2\n"));
        assert_eq!(split("COPY t FROM '/data.csv'; COPY t TO STDOUT")[0].copy_data, None);
    }

    #[test]
    fn meta_commands_are_whole_lines() {
        let s = split("\\restrict abc\nSELECT 1;\n  \\connect db\r\n\\unrestrict abc");
        let got: Vec<_> = s.iter().map(|s| (s.text.as_str(), s.meta, s.line, s.column)).collect();
        assert_eq!(
            got,
            [
                ("\\restrict abc", true, 1, 1),
                ("SELECT 1", false, 2, 1),
                ("\\connect db", true, 3, 3),
                ("\\unrestrict abc", true, 4, 1)
            ]
        );
    }

    #[test]
    fn an_unterminated_quote_returns_the_rest_as_one_statement() {
        assert_eq!(texts("SELECT 1; SELECT 'oops; SELECT 3;"), ["SELECT 1", "SELECT 'oops; SELECT 3;"]);
        assert_eq!(texts("SELECT $$ never closed; x"), ["SELECT $$ never closed; x"]);
    }

    #[test]
    fn positions_count_characters_and_lines() {
        let s = split("SELECT 'é';  SELECT 2;\n\n\tDROP TABLE ünï;");
        let got: Vec<_> = s.iter().map(|s| (s.line, s.column, s.offset)).collect();
        assert_eq!(got, [(1, 1, 0), (1, 14, 14), (3, 2, 26)]);
    }

    #[test]
    fn script_positions_follow_line_breaks_inside_statements() {
        let s = &split("-- c\n  UPDATE t\n     SET x = y\n  WHERE id = 1;")[0];
        assert_eq!((s.line, s.column), (2, 3));
        assert_eq!(script_position(s, 1), (2, 3));
        assert_eq!(script_position(s, 18), (3, 9));
        assert_eq!(script_position(s, 10_000), (4, 14));
        assert_eq!(script_position(s, 0), (2, 3));
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        for input in
            ["$", "'", "\"", "/*", "\\", "E'", "$a", "$$", "-", "--", "é", "(", ")", "e'\\", "COPY x FROM stdin"]
        {
            let _ = split(input);
        }
        assert_eq!(texts("$"), ["$"]);
    }
}
