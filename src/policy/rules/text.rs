//! What a statement's text alone shows, for the rules' static checks: its tokens, with keywords told apart from
//! names. Pure logic over `sqlparser`'s tokenizer (comments and whitespace left out).

use sqlparser::ast::{AlterColumnOperation, AlterTableOperation, ColumnDef, ColumnOption, Statement, TableConstraint};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

/// One token of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tok {
    /// An unquoted word upper-cased (to match keywords), `"` for a quoted identifier, `'` for a string literal,
    /// else the token as written (`(`, `,`, `.`, `42`).
    pub(super) key: String,
    /// A word as Postgres folds it (lower-cased unless quoted), a string literal's content, else as written.
    pub(super) name: String,
}

impl Tok {
    /// Whether the token is this keyword (upper-case).
    pub(super) fn is(&self, keyword: &str) -> bool {
        self.key == keyword
    }
}

/// The statement's tokens; empty when it does not tokenize.
pub(super) fn tokens(sql: &str) -> Vec<Tok> {
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
        return Vec::new();
    };
    tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_) | Token::EOF | Token::SemiColon))
        .map(|t| match t {
            Token::Word(w) if w.quote_style.is_none() => {
                Tok { key: w.value.to_ascii_uppercase(), name: w.value.to_ascii_lowercase() }
            }
            Token::Word(w) => Tok { key: "\"".into(), name: w.value.clone() },
            Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s) => Tok { key: "'".into(), name: s.clone() },
            other => Tok { key: other.to_string(), name: other.to_string() },
        })
        .collect()
}

/// Whether the tokens start with these keywords.
pub(super) fn starts_with(tokens: &[Tok], keywords: &[&str]) -> bool {
    tokens.len() >= keywords.len() && tokens.iter().zip(keywords).all(|(t, k)| t.is(k))
}

/// The position of the first token that is this keyword.
pub(super) fn find(tokens: &[Tok], keyword: &str) -> Option<usize> {
    tokens.iter().position(|t| t.is(keyword))
}

/// Whether the tokens hold these keywords one after the other (`["NOT", "VALID"]`).
pub(super) fn has(tokens: &[Tok], phrase: &[&str]) -> bool {
    tokens.windows(phrase.len()).any(|w| w.iter().zip(phrase).all(|(t, k)| t.is(k)))
}

/// A dotted name starting at `at` (`app.users`), and the position after it.
pub(super) fn name_at(tokens: &[Tok], mut at: usize) -> Option<(String, usize)> {
    let mut parts = Vec::new();
    loop {
        let part =
            tokens.get(at).filter(|t| t.key == "\"" || t.key.chars().all(|c| c.is_alphanumeric() || c == '_'))?;
        parts.push(part.name.clone());
        at += 1;
        if tokens.get(at).is_some_and(|t| t.is(".")) {
            at += 1;
        } else {
            return Some((parts.join("."), at));
        }
    }
}

/// The object type an `ALTER`/`DROP` statement names after its verb (`TABLE`, `MATERIALIZED VIEW`, ...), and the
/// position of the object's name (past `IF EXISTS` and `ONLY`).
pub(super) fn object_after_verb(tokens: &[Tok]) -> Option<(String, usize)> {
    let two = ["MATERIALIZED VIEW", "FOREIGN TABLE"];
    let first = tokens.get(1)?.key.clone();
    let pair = tokens.get(2).map(|t| format!("{first} {}", t.key));
    let (object, mut at) = match pair {
        Some(pair) if two.contains(&pair.as_str()) => (pair, 3),
        _ => (first, 2),
    };
    if tokens.get(at).is_some_and(|t| t.is("IF")) && tokens.get(at + 1).is_some_and(|t| t.is("EXISTS")) {
        at += 2;
    }
    if tokens.get(at).is_some_and(|t| t.is("ONLY")) {
        at += 1;
    }
    Some((object, at))
}

/// A column's type as a statement's text gives it: a column of `CREATE TABLE`, or one `ALTER TABLE` adds or
/// retypes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ColumnType {
    /// `table.column`, as written.
    pub(super) column: String,
    /// The type as sqlparser prints it, upper-cased (`TIMESTAMP`, `CHAR(2)`, `VARCHAR(20)`).
    pub(super) data_type: String,
    /// Whether the statement creates the table.
    pub(super) new_table: bool,
    /// Whether the statement changes an existing column's type (`ALTER COLUMN ... TYPE`, `SET DATA TYPE`), rather
    /// than creating the column (`CREATE TABLE`, `ADD COLUMN`).
    pub(super) retyped: bool,
    /// Whether the statement makes it the (single-column) primary key.
    pub(super) primary_key: bool,
    /// Whether the statement makes it reference another table (a foreign key).
    pub(super) references: bool,
}

/// The column types the statement sets; empty when sqlparser cannot parse it.
pub(super) fn column_types(sql: &str) -> Vec<ColumnType> {
    let Ok(statements) = crate::plan::parse_sql(sql) else {
        return Vec::new();
    };
    let typed = |table: &dyn std::fmt::Display, column: &ColumnDef, data_type: String, new_table, retyped| {
        let has = |pk: bool| {
            column.options.iter().any(|o| match o.option {
                ColumnOption::PrimaryKey(_) => pk,
                ColumnOption::ForeignKey(_) => !pk,
                _ => false,
            })
        };
        ColumnType {
            column: format!("{table}.{}", column.name.value),
            data_type: data_type.to_ascii_uppercase(),
            new_table,
            retyped,
            primary_key: has(true),
            references: has(false),
        }
    };
    let mut types = Vec::new();
    for statement in &statements {
        match statement {
            Statement::CreateTable(create) => {
                let named = |name: &str| create.columns.iter().any(|c| c.name.value == name);
                let mut columns: Vec<ColumnType> = create
                    .columns
                    .iter()
                    .map(|c| typed(&create.name, c, c.data_type.to_string(), true, false))
                    .collect();
                for constraint in &create.constraints {
                    match constraint {
                        TableConstraint::PrimaryKey(pk) if pk.columns.len() == 1 => {
                            let name = pk.columns[0].column.expr.to_string();
                            let suffix = format!(".{name}");
                            columns.iter_mut().filter(|c| named(&name) && c.column.ends_with(&suffix)).for_each(|c| {
                                c.primary_key = true;
                            });
                        }
                        TableConstraint::ForeignKey(fk) => {
                            for name in &fk.columns {
                                let suffix = format!(".{}", name.value);
                                columns.iter_mut().filter(|c| c.column.ends_with(&suffix)).for_each(|c| {
                                    c.references = true;
                                });
                            }
                        }
                        _ => {}
                    }
                }
                types.extend(columns);
            }
            Statement::AlterTable(alter) => {
                for operation in &alter.operations {
                    match operation {
                        AlterTableOperation::AddColumn { column_def, .. } => {
                            types.push(typed(&alter.name, column_def, column_def.data_type.to_string(), false, false))
                        }
                        AlterTableOperation::AlterColumn {
                            column_name,
                            op: AlterColumnOperation::SetDataType { data_type, .. },
                        } => {
                            let column = ColumnDef {
                                name: column_name.clone(),
                                data_type: data_type.clone(),
                                options: Vec::new(),
                            };
                            types.push(typed(&alter.name, &column, data_type.to_string(), false, true))
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    types
}

/// The columns the statement adds NOT NULL (or as the primary key) with nothing to fill the rows already there: no
/// DEFAULT, and not an identity or generated column. On a table with rows, the statement fails (23502). `table.column`,
/// as written; empty when sqlparser cannot parse the statement.
pub(super) fn added_unfilled_not_null(sql: &str) -> Vec<String> {
    let Ok(statements) = crate::plan::parse_sql(sql) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for statement in &statements {
        let Statement::AlterTable(alter) = statement else { continue };
        for operation in &alter.operations {
            let AlterTableOperation::AddColumn { column_def, .. } = operation else { continue };
            let options = || column_def.options.iter().map(|o| &o.option);
            // A serial column fills the rows from its sequence.
            let serial = ["SERIAL", "BIGSERIAL", "SMALLSERIAL", "SERIAL2", "SERIAL4", "SERIAL8"]
                .contains(&column_def.data_type.to_string().to_ascii_uppercase().as_str());
            let not_null = options().any(|o| matches!(o, ColumnOption::NotNull | ColumnOption::PrimaryKey(_)));
            let filled = options().any(|o| {
                matches!(
                    o,
                    ColumnOption::Default(_)
                        | ColumnOption::Generated { .. }
                        | ColumnOption::Identity(_)
                        | ColumnOption::Materialized(_)
                )
            });
            if not_null && !filled && !serial {
                found.push(format!("{}.{}", alter.name, crate::plan::ident(&column_def.name)));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_added_not_null_with_nothing_to_fill_the_rows_with() {
        let found = |sql: &str| added_unfilled_not_null(sql);
        assert_eq!(found("ALTER TABLE t ADD COLUMN c int NOT NULL"), ["t.c"]);
        assert_eq!(found("ALTER TABLE s.t ADD COLUMN a int NOT NULL, ADD COLUMN b int NOT NULL DEFAULT 0"), ["s.t.a"]);
        assert_eq!(found("ALTER TABLE t ADD id int PRIMARY KEY"), ["t.id"]);
        assert!(found("ALTER TABLE t ADD COLUMN c int").is_empty());
        assert!(found("ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 1").is_empty());
        assert!(found("ALTER TABLE t ADD COLUMN id bigint NOT NULL GENERATED ALWAYS AS IDENTITY").is_empty());
        assert!(found("ALTER TABLE t ADD COLUMN d int NOT NULL GENERATED ALWAYS AS (a * 2) STORED").is_empty());
        assert!(found("CREATE TABLE t (c int NOT NULL)").is_empty());
        assert!(found("ALTER TABLE t ADD COLUMN id serial PRIMARY KEY").is_empty());
        assert!(found("ALTER TABLE t ADD COLUMN n bigserial NOT NULL").is_empty());
        assert_eq!(
            found("ALTER TABLE t ADD COLUMN Born date NOT NULL, ADD \"Due\" date NOT NULL"),
            ["t.born", "t.Due"]
        );
    }

    #[test]
    fn keywords_names_and_strings_are_told_apart() {
        let t = tokens("ALTER TABLE IF EXISTS ONLY app.\"Users\" -- a comment\n RENAME TO members;");
        let keys: Vec<&str> = t.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["ALTER", "TABLE", "IF", "EXISTS", "ONLY", "APP", ".", "\"", "RENAME", "TO", "MEMBERS"]);
        assert_eq!(object_after_verb(&t), Some(("TABLE".to_owned(), 5)));
        assert_eq!(name_at(&t, 5), Some(("app.Users".to_owned(), 8)));
        let t = tokens("ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'");
        assert_eq!((t[5].key.as_str(), t[5].name.as_str()), ("'", "sad"));
        assert!(starts_with(&t, &["ALTER", "TYPE"]) && find(&t, "VALUE") == Some(4));
        assert!(tokens("SELECT 'unterminated").is_empty());
    }

    #[test]
    fn column_types_of_created_and_altered_tables() {
        let types = column_types("CREATE TABLE t (a timestamp, b char(2))");
        let got: Vec<_> = types.iter().map(|c| (c.column.as_str(), c.data_type.as_str(), c.new_table)).collect();
        assert_eq!(got, [("t.a", "TIMESTAMP", true), ("t.b", "CHAR(2)", true)]);
        let types = column_types("ALTER TABLE t ADD COLUMN c varchar(5), ALTER COLUMN a TYPE timestamptz USING a");
        let got: Vec<_> =
            types.iter().map(|c| (c.column.as_str(), c.data_type.as_str(), c.new_table, c.retyped)).collect();
        assert_eq!(got, [("t.c", "VARCHAR(5)", false, false), ("t.a", "TIMESTAMPTZ", false, true)]);
        assert!(column_types("ALTER TABLE t ADD COLUMN").is_empty());
        let keys = |sql| -> Vec<(String, bool, bool)> {
            column_types(sql).into_iter().map(|c| (c.column, c.primary_key, c.references)).collect()
        };
        assert_eq!(
            keys("CREATE TABLE t (id serial PRIMARY KEY, u int REFERENCES users)"),
            [("t.id".to_owned(), true, false), ("t.u".to_owned(), false, true)]
        );
        assert_eq!(
            keys("CREATE TABLE t (a int, b int, PRIMARY KEY (a), FOREIGN KEY (a) REFERENCES u)"),
            [("t.a".to_owned(), true, true), ("t.b".to_owned(), false, false)]
        );
    }
}
