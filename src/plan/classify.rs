//! Classifying a statement with `sqlparser` (PostgreSQL dialect): its kind, the objects it targets, whether a
//! DELETE/UPDATE has a WHERE clause, whether it cascades. Advisory only: a statement `sqlparser` cannot parse is
//! `Unknown` and still runs, because Postgres decides what is valid.

use serde::Serialize;
use sqlparser::ast::{
    CascadeOption, CopySource, DropBehavior, FromTable, Ident, ObjectName, ObjectNamePart, ObjectType,
    ReferentialAction, SchemaName, Statement, TableFactor, TableObject, TableWithJoins,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

macro_rules! kinds {
    ($($variant:ident => $id:literal, $label:literal;)*) => {
        /// What kind of statement this is, as far as the SQL text shows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
        #[serde(rename_all = "snake_case")]
        #[allow(missing_docs)] // each variant is the statement its label names
        pub enum StatementKind { $($variant,)* }

        impl StatementKind {
            /// Every kind.
            pub const ALL: &'static [StatementKind] = &[$(StatementKind::$variant,)*];

            /// The snake_case id used in reports (`drop_table`), identical to the serde name.
            pub fn as_str(self) -> &'static str {
                match self { $(StatementKind::$variant => $id,)* }
            }

            /// A label in Postgres command-tag style (`DROP TABLE`).
            pub fn label(self) -> &'static str {
                match self { $(StatementKind::$variant => $label,)* }
            }
        }
    };
}

kinds! {
    Select => "select", "SELECT";
    Insert => "insert", "INSERT";
    Update => "update", "UPDATE";
    Delete => "delete", "DELETE";
    Merge => "merge", "MERGE";
    Truncate => "truncate", "TRUNCATE";
    Copy => "copy", "COPY";
    CreateTable => "create_table", "CREATE TABLE";
    CreateTableAs => "create_table_as", "CREATE TABLE AS";
    CreateView => "create_view", "CREATE VIEW";
    CreateMaterializedView => "create_materialized_view", "CREATE MATERIALIZED VIEW";
    CreateIndex => "create_index", "CREATE INDEX";
    CreateSequence => "create_sequence", "CREATE SEQUENCE";
    CreateSchema => "create_schema", "CREATE SCHEMA";
    CreateFunction => "create_function", "CREATE FUNCTION";
    CreateProcedure => "create_procedure", "CREATE PROCEDURE";
    CreateTrigger => "create_trigger", "CREATE TRIGGER";
    CreateType => "create_type", "CREATE TYPE";
    CreateExtension => "create_extension", "CREATE EXTENSION";
    CreateRole => "create_role", "CREATE ROLE";
    CreatePolicy => "create_policy", "CREATE POLICY";
    CreateDatabase => "create_database", "CREATE DATABASE";
    AlterTable => "alter_table", "ALTER TABLE";
    AlterIndex => "alter_index", "ALTER INDEX";
    AlterView => "alter_view", "ALTER VIEW";
    AlterRole => "alter_role", "ALTER ROLE";
    AlterType => "alter_type", "ALTER TYPE";
    AlterSchema => "alter_schema", "ALTER SCHEMA";
    DropTable => "drop_table", "DROP TABLE";
    DropView => "drop_view", "DROP VIEW";
    DropMaterializedView => "drop_materialized_view", "DROP MATERIALIZED VIEW";
    DropIndex => "drop_index", "DROP INDEX";
    DropSequence => "drop_sequence", "DROP SEQUENCE";
    DropSchema => "drop_schema", "DROP SCHEMA";
    DropFunction => "drop_function", "DROP FUNCTION";
    DropProcedure => "drop_procedure", "DROP PROCEDURE";
    DropTrigger => "drop_trigger", "DROP TRIGGER";
    DropType => "drop_type", "DROP TYPE";
    DropExtension => "drop_extension", "DROP EXTENSION";
    DropRole => "drop_role", "DROP ROLE";
    DropPolicy => "drop_policy", "DROP POLICY";
    DropDatabase => "drop_database", "DROP DATABASE";
    DropOther => "drop_other", "DROP";
    Grant => "grant", "GRANT";
    Revoke => "revoke", "REVOKE";
    Comment => "comment", "COMMENT";
    Set => "set", "SET";
    Reset => "reset", "RESET";
    Show => "show", "SHOW";
    Call => "call", "CALL";
    Vacuum => "vacuum", "VACUUM";
    Analyze => "analyze", "ANALYZE";
    Refresh => "refresh", "REFRESH MATERIALIZED VIEW";
    Lock => "lock", "LOCK";
    Discard => "discard", "DISCARD";
    Begin => "begin", "BEGIN";
    Commit => "commit", "COMMIT";
    Rollback => "rollback", "ROLLBACK";
    Savepoint => "savepoint", "SAVEPOINT";
    ReleaseSavepoint => "release_savepoint", "RELEASE";
    RollbackToSavepoint => "rollback_to_savepoint", "ROLLBACK TO";
    PrepareTransaction => "prepare_transaction", "PREPARE TRANSACTION";
    Explain => "explain", "EXPLAIN";
    Listen => "listen", "LISTEN";
    Notify => "notify", "NOTIFY";
    Other => "other", "OTHER";
    Unknown => "unknown", "UNKNOWN";
}

impl StatementKind {
    /// Statements that control the transaction: BEGIN, COMMIT, ROLLBACK, savepoints, PREPARE TRANSACTION (and
    /// COMMIT/ROLLBACK PREPARED, classified as PrepareTransaction).
    pub fn is_transaction_control(self) -> bool {
        use StatementKind::*;
        matches!(
            self,
            Begin | Commit | Rollback | Savepoint | ReleaseSavepoint | RollbackToSavepoint | PrepareTransaction
        )
    }

    /// The kind with this id (`drop_table`), if any.
    pub fn from_id(id: &str) -> Option<StatementKind> {
        StatementKind::ALL.iter().copied().find(|k| k.as_str() == id)
    }

    /// Any DROP.
    pub fn is_drop(self) -> bool {
        self.as_str().starts_with("drop_")
    }
}

impl std::fmt::Display for StatementKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the classifier could tell about one statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    /// The kind of statement.
    pub kind: StatementKind,
    /// The objects the statement names as its targets, normalised as Postgres folds identifiers (unquoted ones
    /// lower-cased) and joined with `.`: the table of a DELETE/UPDATE/INSERT/MERGE/COPY, every table of a TRUNCATE,
    /// every object of a DROP, the object of an ALTER or CREATE (for CREATE INDEX, the table it indexes). Empty when
    /// unknown.
    pub targets: Vec<String>,
    /// For DELETE and UPDATE: whether there is a WHERE clause (`Some(false)`: every row). `None` otherwise.
    pub has_where: Option<bool>,
    /// `DROP ... CASCADE` or `TRUNCATE ... CASCADE`.
    pub cascade: bool,
}

impl Classification {
    fn of(kind: StatementKind) -> Classification {
        Classification { kind, targets: Vec::new(), has_where: None, cascade: false }
    }

    fn targets(mut self, names: impl IntoIterator<Item = String>) -> Classification {
        self.targets = names.into_iter().collect();
        self
    }
}

/// Classifies one statement's text. Never panics: text sqlparser cannot parse, or that holds anything but exactly
/// one statement, is `Unknown` (transaction-control keywords excepted, which matter for safety).
pub fn classify(sql: &str) -> Classification {
    match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
        Ok(statements) if statements.len() == 1 => from_ast(&statements[0]),
        _ => Classification::of(keyword_fallback(sql)),
    }
}

/// The transaction-control statements, recognised by their first words when sqlparser cannot parse them.
fn keyword_fallback(sql: &str) -> StatementKind {
    let words: Vec<String> =
        sql.split_whitespace().take(3).map(|w| w.trim_end_matches(';').to_ascii_lowercase()).collect();
    let word = |i: usize| words.get(i).map_or("", String::as_str);
    match (word(0), word(1)) {
        ("begin", "atomic") => StatementKind::Unknown,
        ("begin", _) | ("start", "transaction") => StatementKind::Begin,
        ("commit" | "rollback", "prepared") | ("prepare", "transaction") => StatementKind::PrepareTransaction,
        ("commit" | "end", _) => StatementKind::Commit,
        ("rollback" | "abort", "to") => StatementKind::RollbackToSavepoint,
        ("rollback" | "abort", _) => StatementKind::Rollback,
        ("savepoint", _) => StatementKind::Savepoint,
        ("release", _) => StatementKind::ReleaseSavepoint,
        _ => StatementKind::Unknown,
    }
}

fn from_ast(statement: &Statement) -> Classification {
    use StatementKind as K;
    match statement {
        Statement::Query(_) => Classification::of(K::Select),
        Statement::Insert(insert) => Classification::of(K::Insert).targets(match &insert.table {
            TableObject::TableName(name) => Some(object_name(name)),
            _ => None,
        }),
        Statement::Update(update) => Classification {
            has_where: Some(update.selection.is_some()),
            ..Classification::of(K::Update).targets(table_of(&update.table))
        },
        Statement::Delete(delete) => {
            let tables = match &delete.from {
                FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
            };
            Classification {
                has_where: Some(delete.selection.is_some()),
                ..Classification::of(K::Delete).targets(tables.iter().filter_map(table_of))
            }
        }
        Statement::Merge(merge) => Classification::of(K::Merge).targets(factor_name(&merge.table)),
        Statement::Truncate(truncate) => Classification {
            cascade: matches!(truncate.cascade, Some(CascadeOption::Cascade)),
            ..Classification::of(K::Truncate).targets(truncate.table_names.iter().map(|t| object_name(&t.name)))
        },
        Statement::Copy { source, .. } => Classification::of(K::Copy).targets(match source {
            CopySource::Table { table_name, .. } => Some(object_name(table_name)),
            CopySource::Query(_) => None,
        }),
        Statement::Drop { object_type, names, cascade, .. } => Classification {
            cascade: *cascade,
            ..Classification::of(drop_kind(*object_type)).targets(names.iter().map(object_name))
        },
        Statement::DropFunction(drop) => Classification {
            cascade: matches!(drop.drop_behavior, Some(DropBehavior::Cascade)),
            ..Classification::of(K::DropFunction).targets(drop.func_desc.iter().map(|f| object_name(&f.name)))
        },
        Statement::DropProcedure { proc_desc, drop_behavior, .. } => Classification {
            cascade: matches!(drop_behavior, Some(DropBehavior::Cascade)),
            ..Classification::of(K::DropProcedure).targets(proc_desc.iter().map(|f| object_name(&f.name)))
        },
        Statement::DropTrigger(drop) => Classification::of(K::DropTrigger).targets([object_name(&drop.trigger_name)]),
        Statement::DropExtension(drop) => Classification {
            cascade: matches!(drop.cascade_or_restrict, Some(ReferentialAction::Cascade)),
            ..Classification::of(K::DropExtension).targets(drop.names.iter().map(ident))
        },
        Statement::DropPolicy(drop) => Classification {
            cascade: matches!(drop.drop_behavior, Some(DropBehavior::Cascade)),
            ..Classification::of(K::DropPolicy).targets([object_name(&drop.table_name)])
        },
        Statement::CreateTable(create) => {
            let kind = if create.query.is_some() { K::CreateTableAs } else { K::CreateTable };
            Classification::of(kind).targets([object_name(&create.name)])
        }
        Statement::CreateView(view) => {
            let kind = if view.materialized { K::CreateMaterializedView } else { K::CreateView };
            Classification::of(kind).targets([object_name(&view.name)])
        }
        Statement::CreateIndex(index) => Classification::of(K::CreateIndex).targets([object_name(&index.table_name)]),
        Statement::CreateSequence { name, .. } => Classification::of(K::CreateSequence).targets([object_name(name)]),
        Statement::CreateSchema { schema_name, .. } => {
            Classification::of(K::CreateSchema).targets([match schema_name {
                SchemaName::Simple(name) | SchemaName::NamedAuthorization(name, _) => object_name(name),
                SchemaName::UnnamedAuthorization(role) => ident(role),
            }])
        }
        Statement::CreateFunction(f) => Classification::of(K::CreateFunction).targets([object_name(&f.name)]),
        Statement::CreateProcedure { name, .. } => Classification::of(K::CreateProcedure).targets([object_name(name)]),
        Statement::CreateTrigger(t) => Classification::of(K::CreateTrigger).targets([object_name(&t.table_name)]),
        Statement::CreateType { name, .. } => Classification::of(K::CreateType).targets([object_name(name)]),
        Statement::CreateExtension(e) => Classification::of(K::CreateExtension).targets([ident(&e.name)]),
        Statement::CreateRole(role) => Classification::of(K::CreateRole).targets(role.names.iter().map(object_name)),
        Statement::CreatePolicy(p) => Classification::of(K::CreatePolicy).targets([object_name(&p.table_name)]),
        Statement::CreateDatabase { db_name, .. } => {
            Classification::of(K::CreateDatabase).targets([object_name(db_name)])
        }
        Statement::AlterTable(alter) => Classification::of(K::AlterTable).targets([object_name(&alter.name)]),
        Statement::AlterIndex { name, .. } => Classification::of(K::AlterIndex).targets([object_name(name)]),
        Statement::AlterView(view) => Classification::of(K::AlterView).targets([object_name(&view.name)]),
        Statement::AlterType(t) => Classification::of(K::AlterType).targets([object_name(&t.name)]),
        Statement::AlterSchema(s) => Classification::of(K::AlterSchema).targets([object_name(&s.name)]),
        Statement::AlterRole { .. } => Classification::of(K::AlterRole),
        Statement::Lock(lock) => Classification::of(K::Lock).targets(lock.tables.iter().map(|t| object_name(&t.name))),
        Statement::RefreshMaterializedView(r) => Classification::of(K::Refresh).targets([object_name(&r.name)]),
        Statement::Grant(_) | Statement::GrantRole { .. } => Classification::of(K::Grant),
        Statement::Revoke(_) | Statement::RevokeRole { .. } => Classification::of(K::Revoke),
        Statement::Comment { .. } => Classification::of(K::Comment),
        Statement::Set(_) => Classification::of(K::Set),
        Statement::Reset(_) => Classification::of(K::Reset),
        Statement::ShowVariable { .. } | Statement::ShowVariables { .. } => Classification::of(K::Show),
        Statement::Call(_) => Classification::of(K::Call),
        Statement::Vacuum(_) => Classification::of(K::Vacuum),
        Statement::Analyze(_) => Classification::of(K::Analyze),
        Statement::Discard { .. } => Classification::of(K::Discard),
        Statement::StartTransaction { .. } => Classification::of(K::Begin),
        Statement::Commit { .. } => Classification::of(K::Commit),
        Statement::Rollback { savepoint: Some(_), .. } => Classification::of(K::RollbackToSavepoint),
        Statement::Rollback { .. } => Classification::of(K::Rollback),
        Statement::Savepoint { .. } => Classification::of(K::Savepoint),
        Statement::ReleaseSavepoint { .. } => Classification::of(K::ReleaseSavepoint),
        Statement::Explain { .. } | Statement::ExplainTable { .. } => Classification::of(K::Explain),
        Statement::LISTEN { .. } => Classification::of(K::Listen),
        Statement::NOTIFY { .. } => Classification::of(K::Notify),
        _ => Classification::of(K::Other),
    }
}

fn drop_kind(object_type: ObjectType) -> StatementKind {
    use StatementKind as K;
    match object_type {
        ObjectType::Table | ObjectType::ForeignTable => K::DropTable,
        ObjectType::View => K::DropView,
        ObjectType::MaterializedView => K::DropMaterializedView,
        ObjectType::Index => K::DropIndex,
        ObjectType::Sequence => K::DropSequence,
        ObjectType::Schema => K::DropSchema,
        ObjectType::Type => K::DropType,
        ObjectType::Role | ObjectType::User | ObjectType::Group => K::DropRole,
        ObjectType::Database => K::DropDatabase,
        _ => K::DropOther,
    }
}

/// The table a DML statement writes to (its first relation, not joined ones).
fn table_of(table: &TableWithJoins) -> Option<String> {
    factor_name(&table.relation)
}

fn factor_name(factor: &TableFactor) -> Option<String> {
    match factor {
        TableFactor::Table { name, .. } => Some(object_name(name)),
        _ => None,
    }
}

/// `schema.table`, each part folded as Postgres folds identifiers.
fn object_name(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(id) => ident(id),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// An identifier as Postgres sees it: lower-cased unless double-quoted.
fn ident(id: &Ident) -> String {
    match id.quote_style {
        Some('"') => id.value.clone(),
        _ => id.value.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StatementKind as K;

    fn check(sql: &str, kind: StatementKind, targets: &[&str], has_where: Option<bool>, cascade: bool) {
        let c = classify(sql);
        let want =
            Classification { kind, targets: targets.iter().map(|t| t.to_string()).collect(), has_where, cascade };
        assert_eq!(c, want, "{sql}");
    }

    #[test]
    fn deletes_and_updates_say_whether_they_have_a_where_clause() {
        check("DELETE FROM users", K::Delete, &["users"], Some(false), false);
        check("DELETE FROM public.users WHERE id = 1", K::Delete, &["public.users"], Some(true), false);
        check("DELETE FROM orders o USING users u", K::Delete, &["orders"], Some(false), false);
        check("UPDATE accounts SET balance = 0", K::Update, &["accounts"], Some(false), false);
        check(
            "UPDATE accounts a SET balance = 0 FROM x WHERE a.id = x.id",
            K::Update,
            &["accounts"],
            Some(true),
            false,
        );
    }

    #[test]
    fn dml_targets_are_the_written_tables_only() {
        check("INSERT INTO audit SELECT * FROM users", K::Insert, &["audit"], None, false);
        check("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", K::Merge, &["t"], None, false);
        check("COPY users (id) FROM stdin", K::Copy, &["users"], None, false);
        check("SELECT * FROM users", K::Select, &[], None, false);
    }

    #[test]
    fn truncate_and_drops_list_every_object_and_cascade() {
        check("TRUNCATE a, b CASCADE", K::Truncate, &["a", "b"], None, true);
        check("TRUNCATE TABLE a", K::Truncate, &["a"], None, false);
        check("DROP TABLE users CASCADE", K::DropTable, &["users"], None, true);
        check("DROP TABLE IF EXISTS \"My Table\", t2", K::DropTable, &["My Table", "t2"], None, false);
        check("DROP SCHEMA s CASCADE", K::DropSchema, &["s"], None, true);
        check("DROP VIEW v", K::DropView, &["v"], None, false);
        check("DROP MATERIALIZED VIEW mv", K::DropMaterializedView, &["mv"], None, false);
        check("DROP INDEX idx", K::DropIndex, &["idx"], None, false);
        check("DROP FUNCTION f(int) CASCADE", K::DropFunction, &["f"], None, true);
    }

    #[test]
    fn identifiers_fold_like_postgres() {
        check("DELETE FROM Public.Users WHERE true", K::Delete, &["public.users"], Some(true), false);
        check("DELETE FROM \"Users\" WHERE true", K::Delete, &["Users"], Some(true), false);
    }

    #[test]
    fn ddl_names_its_object() {
        check("ALTER TABLE users ADD COLUMN age int", K::AlterTable, &["users"], None, false);
        check("CREATE TABLE t (id int)", K::CreateTable, &["t"], None, false);
        check("CREATE TABLE t AS SELECT 1", K::CreateTableAs, &["t"], None, false);
        check("CREATE INDEX idx ON t (id)", K::CreateIndex, &["t"], None, false);
        check("CREATE INDEX CONCURRENTLY ON s.t (id)", K::CreateIndex, &["s.t"], None, false);
        check("CREATE VIEW v AS SELECT 1", K::CreateView, &["v"], None, false);
        check(
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END",
            K::CreateFunction,
            &["f"],
            None,
            false,
        );
    }

    #[test]
    fn transaction_control_is_recognised() {
        for (sql, kind) in [
            ("BEGIN", K::Begin),
            ("START TRANSACTION", K::Begin),
            ("BEGIN ISOLATION LEVEL SERIALIZABLE", K::Begin),
            ("COMMIT", K::Commit),
            ("END", K::Commit),
            ("ROLLBACK", K::Rollback),
            ("ABORT", K::Rollback),
            ("SAVEPOINT s", K::Savepoint),
            ("ROLLBACK TO SAVEPOINT s", K::RollbackToSavepoint),
            ("RELEASE SAVEPOINT s", K::ReleaseSavepoint),
            ("PREPARE TRANSACTION 'x'", K::PrepareTransaction),
            ("COMMIT PREPARED 'x'", K::PrepareTransaction),
        ] {
            let c = classify(sql);
            assert_eq!(c.kind, kind, "{sql}");
            assert!(c.kind.is_transaction_control(), "{sql}");
        }
        assert!(!K::Select.is_transaction_control());
    }

    #[test]
    fn unparseable_text_is_unknown() {
        for sql in ["DELET FROM users", "SELECT 1; SELECT 2", "", "BEGIN ATOMIC SELECT 1; END", "$$"] {
            assert_eq!(classify(sql).kind, K::Unknown, "{sql}");
        }
    }

    /// Statements sqlparser 0.64 does not parse for PostgreSQL. They still run; a sqlparser upgrade that starts
    /// parsing them shows up here.
    #[test]
    fn known_gaps_of_sqlparser() {
        for sql in [
            "DO $$ BEGIN PERFORM 1; END $$",
            "REINDEX TABLE t",
            "CLUSTER t USING i",
            "DROP OWNED BY app",
            "ALTER SYSTEM SET work_mem = '1MB'",
            "DELETE FROM t WHERE CURRENT OF c",
        ] {
            assert_eq!(classify(sql).kind, K::Unknown, "{sql} now parses: classify it");
        }
    }

    #[test]
    fn ids_match_serde_names_and_drops_are_drops() {
        for kind in StatementKind::ALL {
            let json = serde_json::to_string(kind).expect("serialize");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(kind.is_drop(), kind.label().starts_with("DROP"), "{kind}");
        }
    }
}
