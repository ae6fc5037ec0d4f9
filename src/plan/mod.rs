//! Reading plans: a SQL script or a JSON plan, split into statements that keep their position, each classified.
//!
//! Classification (by `sqlparser`) is advisory: a statement it cannot parse is still run, with kind `unknown`.
//! Postgres decides what is valid.

mod classify;
mod nondeterminism;
mod parse;
mod split;

use std::io::Read;
use std::path::Path;

pub(crate) use classify::ident as stored_name;
pub(crate) use classify::ident;
pub use classify::{adds_enum_value, classify, length_limits, updated_columns, Classification, StatementKind};
pub use nondeterminism::nondeterministic;
pub(crate) use parse::{parse_sql, Unreadable};
pub use split::{script_position, split, RawStatement};

use crate::error::{Error, Result};

/// How the plan was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanFormat {
    /// A SQL script.
    Sql,
    /// `{"statements": ["...", ...], ...metadata}`.
    Json,
}

/// A plan: the statements to dry-run, in order. It may come from several files (a migrations folder), which run
/// one after the other, as they would be applied.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// The file name as given (`-` for standard input); for several files, their names joined with `, `.
    pub source: String,
    /// The files the plan came from, in order.
    pub files: Vec<String>,
    /// SQL script or JSON plan.
    pub format: PlanFormat,
    /// The statements, in order.
    pub statements: Vec<PlanStatement>,
    /// For JSON plans, every top-level member but `statements` (`agent`, `intent`, ...), unchanged.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The SHA-256 of the exact plan text (hex), as `sha256sum` prints it; for several files, the SHA-256 of their
    /// digests, each followed by a newline, in order. An approval binds to it.
    pub sha256: String,
}

/// One statement of a plan.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PlanStatement {
    /// The file it came from.
    pub file: String,
    /// The text and its position (in the file, or inside the JSON array element).
    pub raw: RawStatement,
    /// For JSON plans: the 0-based index of the array element the statement came from.
    pub element: Option<usize>,
    /// What the statement looks like.
    pub classification: Classification,
}

#[derive(serde::Deserialize)]
struct JsonPlan {
    statements: Vec<String>,
    #[serde(flatten)]
    metadata: serde_json::Map<String, serde_json::Value>,
}

impl Plan {
    /// Reads a plan from several files, in order; a directory stands for its `*.sql` and `*.json` files, sorted by
    /// name (a migrations folder).
    pub fn read_all(paths: &[String]) -> Result<Plan> {
        let mut files = Vec::new();
        for path in paths {
            if Path::new(path).is_dir() {
                files.extend(plan_files_in(path)?);
            } else {
                files.push(path.clone());
            }
        }
        let mut plans = files.iter().map(|f| Plan::read(f)).collect::<Result<Vec<_>>>()?.into_iter();
        let mut plan = plans.next().ok_or_else(|| Error::Input {
            file: paths.join(", "),
            line: 1,
            column: 1,
            message: "no plan files (*.sql, *.json) found".to_owned(),
        })?;
        let mut digests = format!("{}\n", plan.sha256);
        for next in plans {
            digests.push_str(&next.sha256);
            digests.push('\n');
            plan.sha256 = crate::text::hex_digest(digests.as_bytes());
            plan.source = format!("{}, {}", plan.source, next.source);
            plan.files.extend(next.files);
            plan.statements.extend(next.statements);
            plan.metadata.extend(next.metadata);
        }
        Ok(plan)
    }

    /// Reads a plan from a file, or from standard input when `path` is `-`.
    pub fn read(path: &str) -> Result<Plan> {
        let text = if path == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| Error::io("<stdin>", e))?;
            text
        } else {
            std::fs::read_to_string(Path::new(path)).map_err(|e| Error::io(path, e))?
        };
        Plan::parse(path, &text)
    }

    /// Parses plan text. A text whose first non-blank character is `{` is a JSON plan
    /// (`{"statements": ["...", ...], ...metadata}`); anything else is a SQL script.
    pub fn parse(source: &str, text: &str) -> Result<Plan> {
        let (format, statements, metadata) = if text.trim_start().starts_with('{') {
            let plan: JsonPlan = serde_json::from_str(text).map_err(|e| json_error(source, text, &e))?;
            let mut statements = Vec::new();
            for (element, sql) in plan.statements.iter().enumerate() {
                statements.extend(statements_of(source, sql, Some(element))?);
            }
            (PlanFormat::Json, statements, plan.metadata)
        } else {
            (PlanFormat::Sql, statements_of(source, text, None)?, serde_json::Map::new())
        };
        if statements.is_empty() {
            return Err(Error::Input {
                file: source.to_owned(),
                line: 1,
                column: 1,
                message: "the plan holds no SQL statement".to_owned(),
            });
        }
        let sha256 = crate::text::hex_digest(text.as_bytes());
        Ok(Plan { source: source.to_owned(), files: vec![source.to_owned()], format, statements, metadata, sha256 })
    }
}

/// Splits and classifies one script (a whole file, or one JSON array element).
fn statements_of(source: &str, script: &str, element: Option<usize>) -> Result<Vec<PlanStatement>> {
    let mut out = Vec::new();
    for raw in split(script) {
        if raw.meta {
            check_meta_command(source, &raw, element)?;
            continue;
        }
        let classification = classify(&raw.text);
        out.push(PlanStatement { file: source.to_owned(), raw, element, classification });
    }
    Ok(out)
}

/// The `*.sql` and `*.json` files of a directory, sorted by name.
fn plan_files_in(dir: &str) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "sql" || x == "json"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    Ok(files)
}

/// psql meta-commands that change nothing about what the plan does are skipped; any other is refused, since
/// pgshadow cannot dry-run it faithfully (and `\!` would run a shell command).
fn check_meta_command(source: &str, raw: &RawStatement, element: Option<usize>) -> Result<()> {
    let command = raw.text.split_whitespace().next().unwrap_or("\\");
    let harmless = match command {
        "\\echo" | "\\qecho" | "\\warn" | "\\timing" | "\\pset" => true,
        // pgshadow always stops at the first error, which is what ON_ERROR_STOP asks for.
        "\\set" => raw.text.split_whitespace().nth(1).is_some_and(|v| v.eq_ignore_ascii_case("ON_ERROR_STOP")),
        _ => false,
    };
    if harmless {
        return Ok(());
    }
    let place = element.map_or(String::new(), |e| format!(" (statements[{e}])"));
    Err(Error::Input {
        file: source.to_owned(),
        line: raw.line,
        column: raw.column,
        message: format!(
            "psql meta-command {command} is not supported in plans{place}; only \\set ON_ERROR_STOP, \\echo and \
             other output-only commands are accepted"
        ),
    })
}

/// A JSON plan error at its line and column.
fn json_error(source: &str, text: &str, e: &serde_json::Error) -> Error {
    // serde_json puts " at line L column C" at the end of its message; the position goes in our own fields.
    let message = e.to_string();
    let message = match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message,
    };
    let (line, column) = if e.line() == 0 { (1, 1) } else { (e.line(), e.column().max(1)) };
    let message = if message.contains("missing field `statements`") {
        "a JSON plan needs a \"statements\" array of SQL strings".to_owned()
    } else if text.trim().is_empty() {
        "empty plan".to_owned()
    } else {
        format!("invalid JSON plan: {message}")
    };
    Error::Input { file: source.to_owned(), line, column, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input_error(text: &str) -> (usize, usize, String) {
        match Plan::parse("plan.json", text) {
            Err(Error::Input { line, column, message, .. }) => (line, column, message),
            other => panic!("expected an input error, got {other:?}"),
        }
    }

    #[test]
    fn a_sql_script_keeps_positions_and_kinds() {
        let plan = Plan::parse("plan.sql", "-- clean up\nDELETE FROM users;\n\n  DROP TABLE t CASCADE;").expect("plan");
        assert_eq!(plan.format, PlanFormat::Sql);
        let got: Vec<_> = plan.statements.iter().map(|s| (s.raw.line, s.raw.column, s.classification.kind)).collect();
        assert_eq!(got, [(2, 1, StatementKind::Delete), (4, 3, StatementKind::DropTable)]);
        assert_eq!(plan.statements[0].classification.has_where, Some(false));
    }

    #[test]
    fn a_json_plan_carries_its_metadata_and_element_indexes() {
        let text = r#"{"agent": "a1", "intent": "tidy", "statements": ["SELECT 1", "SELECT 2; SELECT 3"]}"#;
        let plan = Plan::parse("p.json", text).expect("plan");
        assert_eq!(plan.format, PlanFormat::Json);
        assert_eq!(plan.metadata.get("agent"), Some(&serde_json::json!("a1")));
        assert!(!plan.metadata.contains_key("statements"));
        let elements: Vec<_> = plan.statements.iter().map(|s| s.element).collect();
        assert_eq!(elements, [Some(0), Some(1), Some(1)]);
        assert_eq!((plan.statements[2].raw.line, plan.statements[2].raw.column), (1, 11));
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let (line, column, message) = input_error("{\n  \"statements\": [\"SELECT 1\",]\n}");
        assert_eq!((line, column), (2, 29));
        assert!(message.starts_with("invalid JSON plan: "), "{message}");
    }

    #[test]
    fn a_json_plan_without_statements_is_refused() {
        let (_, _, message) = input_error("{\"agent\": \"x\"}");
        assert!(message.contains("\"statements\" array"), "{message}");
        let (line, column, message) = input_error("{\"statements\": [1]}");
        assert_eq!((line, column), (1, 17));
        assert!(message.contains("expected a string"), "{message}");
    }

    #[test]
    fn a_folder_is_its_plan_files_in_name_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in [
            ("002_b.sql", "SELECT 2;"),
            ("001_a.sql", "SELECT 1;"),
            ("notes.txt", "x"),
            ("003_c.json", r#"{"statements": ["SELECT 3"]}"#),
        ] {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        let plan = Plan::read_all(&[dir.path().display().to_string()]).expect("plan");
        let files: Vec<_> = plan.statements.iter().map(|s| s.file.rsplit('/').next().unwrap_or("")).collect();
        assert_eq!(files, ["001_a.sql", "002_b.sql", "003_c.json"]);
        assert_eq!(plan.files.len(), 3);
        let empty = tempfile::tempdir().expect("temp dir");
        assert!(matches!(Plan::read_all(&[empty.path().display().to_string()]), Err(Error::Input { .. })));
    }

    #[test]
    fn an_empty_plan_is_refused() {
        assert!(matches!(Plan::parse("p.sql", "  -- nothing\n"), Err(Error::Input { .. })));
        assert!(matches!(Plan::parse("p.json", r#"{"statements": []}"#), Err(Error::Input { .. })));
    }

    #[test]
    fn harmless_meta_commands_are_skipped_and_others_refused_at_their_line() {
        let plan = Plan::parse("p.sql", "\\set ON_ERROR_STOP on\n\\echo hi\nSELECT 1;").expect("plan");
        assert_eq!(plan.statements.len(), 1);
        match Plan::parse("p.sql", "SELECT 1;\n  \\! rm -rf /\n") {
            Err(Error::Input { line, column, message, .. }) => {
                assert_eq!((line, column), (2, 3));
                assert!(message.contains("\\!"), "{message}");
            }
            other => panic!("expected an input error, got {other:?}"),
        }
    }
}
