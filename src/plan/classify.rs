//! Classifying a statement with `sqlparser` (PostgreSQL dialect): its kind, the objects it targets, whether a
//! DELETE/UPDATE has a WHERE clause, whether it cascades. Advisory only: a statement `sqlparser` cannot parse is
//! `Unknown` and still runs, because Postgres decides what is valid.

use serde::Serialize;
use sqlparser::ast::{
    BeginTransactionKind, CascadeOption, CopySource, DropBehavior, Expr, FromTable, Ident, ObjectName, ObjectNamePart,
    ObjectType, Query, ReferentialAction, SchemaName, SelectInto, SetExpr, Statement, TableFactor, TableObject,
    TransactionIsolationLevel, TransactionMode,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

macro_rules! kinds {
    ($($variant:ident => $id:literal, $label:literal;)*) => {
        /// What kind of statement this is, as far as the SQL text shows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, schemars::JsonSchema)]
        #[serde(rename_all = "snake_case")]
        #[allow(missing_docs)] // each variant is the statement its label names
        pub enum StatementKind { $($variant,)* }

        impl StatementKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [StatementKind] = &[$(StatementKind::$variant,)*];

            /// The snake_case id used in reports (`drop_table`), identical to the serde name.
            pub fn as_str(self) -> &'static str {
                match self { $(StatementKind::$variant => $id,)* }
            }

            /// A human label in Postgres command-tag style (`DROP TABLE`, `DELETE`, `UNKNOWN`).
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
    AlterSequence => "alter_sequence", "ALTER SEQUENCE";
    AlterSystem => "alter_system", "ALTER SYSTEM";
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
    Do => "do", "DO";
    Call => "call", "CALL";
    Vacuum => "vacuum", "VACUUM";
    Analyze => "analyze", "ANALYZE";
    Reindex => "reindex", "REINDEX";
    Cluster => "cluster", "CLUSTER";
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
    /// BEGIN / START TRANSACTION, COMMIT / END, ROLLBACK / ABORT, SAVEPOINT, RELEASE, ROLLBACK TO and PREPARE
    /// TRANSACTION. COMMIT PREPARED and ROLLBACK PREPARED are classified as `PrepareTransaction` (two-phase commit).
    pub fn is_transaction_control(self) -> bool {
        use StatementKind::*;
        matches!(
            self,
            Begin | Commit | Rollback | Savepoint | ReleaseSavepoint | RollbackToSavepoint | PrepareTransaction
        )
    }

    /// Any `Drop*` kind.
    pub fn is_drop(self) -> bool {
        self.as_str().starts_with("drop_")
    }

    /// The kind with this id (`drop_table`), if any.
    pub fn from_id(id: &str) -> Option<StatementKind> {
        StatementKind::ALL.iter().copied().find(|k| k.as_str() == id)
    }
}

impl std::fmt::Display for StatementKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the classifier could tell about one statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Classification {
    /// The kind of statement.
    pub kind: StatementKind,
    /// Objects the statement names as its targets, as written but normalised: identifiers unquoted and lower-cased
    /// unless they were double-quoted (Postgres folding: ASCII letters only), joined with `.`, e.g. `public.users`,
    /// `orders`, `My Table`; a name holding a dot or a double quote is written quoted (`"weird.name"`), so the joined
    /// name splits back into its parts ([`crate::text::split_name`]).
    /// DELETE/UPDATE/INSERT/MERGE/TRUNCATE/COPY: the target table(s) (not tables in FROM/USING/subqueries).
    /// DROP x: every object named. ALTER TABLE/INDEX/...: the object altered. CREATE x: the created object's name,
    /// except CREATE INDEX: the table it indexes (the `index-not-concurrent` rule matches it against locked tables).
    /// LOCK, VACUUM, ANALYZE, REFRESH: the tables named. Empty when unknown.
    pub targets: Vec<String>,
    /// For DELETE and UPDATE: whether a WHERE clause is present (`Some(false)` = touches every row; a DELETE ...
    /// USING without WHERE is `Some(false)`). `None` for other kinds. `WHERE CURRENT OF` would count as `Some(true)`,
    /// but sqlparser 0.64 does not parse it: such a statement is `Unknown`, with `None`.
    pub has_where: Option<bool>,
    /// DROP ... CASCADE or TRUNCATE ... CASCADE.
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

    fn has_where(mut self, has_where: bool) -> Classification {
        self.has_where = Some(has_where);
        self
    }

    fn cascade(mut self, cascade: bool) -> Classification {
        self.cascade = cascade;
        self
    }
}

/// Whether the text is one `ALTER TYPE ... ADD VALUE`, whose new value can be used only once it is committed.
pub fn adds_enum_value(sql: &str) -> bool {
    use sqlparser::ast::AlterTypeOperation;
    let Ok(statements) = super::parse_sql(sql) else { return false };
    matches!(statements.as_slice(), [Statement::AlterType(alter)] if matches!(alter.operation, AlterTypeOperation::AddValue(_)))
}

/// The columns an UPDATE sets, as Postgres names them (an unquoted name folded to lower case; `SET address.city` sets
/// `address`); `None` for any other statement, or text sqlparser cannot parse.
pub fn updated_columns(sql: &str) -> Option<Vec<String>> {
    use sqlparser::ast::AssignmentTarget;
    let statements = super::parse_sql(sql).ok()?;
    let [Statement::Update(update)] = statements.as_slice() else { return None };
    let column = |name: &ObjectName| match name.0.first() {
        Some(ObjectNamePart::Identifier(id)) => ident(id),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let mut columns = Vec::new();
    for assignment in &update.assignments {
        match &assignment.target {
            AssignmentTarget::ColumnName(name) => columns.push(column(name)),
            AssignmentTarget::Tuple(names) => columns.extend(names.iter().map(column)),
        }
    }
    Some(columns)
}

/// The columns an `ALTER TABLE` retypes to a character type with a length limit (`varchar(20)`, `char(2)`), with
/// that limit: `(column, limit)`, the column as written. Empty for any other statement, or text sqlparser cannot
/// parse.
pub fn length_limits(sql: &str) -> Vec<(String, u64)> {
    use sqlparser::ast::{AlterColumnOperation, AlterTableOperation, CharacterLength, DataType};
    let Ok(statements) = super::parse_sql(sql) else {
        return Vec::new();
    };
    let mut limits = Vec::new();
    for statement in &statements {
        let Statement::AlterTable(alter) = statement else { continue };
        for operation in &alter.operations {
            let AlterTableOperation::AlterColumn {
                column_name,
                op: AlterColumnOperation::SetDataType { data_type, .. },
            } = operation
            else {
                continue;
            };
            let length = match data_type {
                DataType::Varchar(Some(length))
                | DataType::CharacterVarying(Some(length))
                | DataType::CharVarying(Some(length))
                | DataType::Char(Some(length))
                | DataType::Character(Some(length)) => length,
                _ => continue,
            };
            if let CharacterLength::IntegerLength { length, .. } = length {
                limits.push((ident(column_name), *length));
            }
        }
    }
    limits
}

/// Classifies one statement's text (no trailing `;` needed; a trailing one is fine). Never panics; a statement that
/// sqlparser cannot parse, or text that parses to anything but exactly one statement, is `Unknown` with no targets
/// (except a few transaction-control statements sqlparser does not know, recognised by their words).
pub fn classify(sql: &str) -> Classification {
    match super::parse_sql(sql) {
        Ok(statements) => match statements.as_slice() {
            [statement] => from_statement(statement),
            _ => Classification::of(StatementKind::Unknown),
        },
        Err(super::Unreadable::Rejected) => Classification::of(transaction_fallback(sql)),
        Err(super::Unreadable::Panicked) => Classification::of(StatementKind::Unknown),
    }
}

fn from_statement(statement: &Statement) -> Classification {
    use StatementKind as K;
    let of = Classification::of;
    match statement {
        Statement::Query(query) => from_query(query),
        Statement::Insert(insert) => of(K::Insert).targets(match &insert.table {
            TableObject::TableName(name) => Some(object_name(name)),
            _ => None,
        }),
        Statement::Update(update) => {
            of(K::Update).targets(table_name(&update.table.relation)).has_where(update.selection.is_some())
        }
        Statement::Delete(delete) => {
            let targets: Vec<String> = if delete.tables.is_empty() {
                let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &delete.from;
                from.iter().filter_map(|t| table_name(&t.relation)).collect()
            } else {
                delete.tables.iter().map(object_name).collect()
            };
            of(K::Delete).targets(targets).has_where(delete.selection.is_some())
        }
        Statement::Merge(merge) => of(K::Merge).targets(table_name(&merge.table)),
        Statement::Truncate(truncate) => of(K::Truncate)
            .targets(truncate.table_names.iter().map(|t| object_name(&t.name)))
            .cascade(matches!(truncate.cascade, Some(CascadeOption::Cascade))),
        Statement::Copy { source, .. } => of(K::Copy).targets(match source {
            CopySource::Table { table_name, .. } => Some(object_name(table_name)),
            CopySource::Query(_) => None,
        }),
        Statement::Drop { object_type, names, cascade, .. } => {
            of(drop_kind(*object_type)).targets(names.iter().map(object_name)).cascade(*cascade)
        }
        Statement::DropFunction(drop) => of(K::DropFunction)
            .targets(drop.func_desc.iter().map(|f| object_name(&f.name)))
            .cascade(cascades(drop.drop_behavior)),
        Statement::DropProcedure { proc_desc, drop_behavior, .. } => of(K::DropProcedure)
            .targets(proc_desc.iter().map(|f| object_name(&f.name)))
            .cascade(cascades(*drop_behavior)),
        Statement::DropTrigger(drop) => of(K::DropTrigger)
            .targets([object_name(&drop.trigger_name)])
            .cascade(matches!(drop.option, Some(ReferentialAction::Cascade))),
        Statement::DropExtension(drop) => of(K::DropExtension)
            .targets(drop.names.iter().map(ident))
            .cascade(matches!(drop.cascade_or_restrict, Some(ReferentialAction::Cascade))),
        Statement::DropPolicy(drop) => {
            of(K::DropPolicy).targets([ident(&drop.name)]).cascade(cascades(drop.drop_behavior))
        }
        Statement::DropDomain(drop) => {
            of(K::DropOther).targets([object_name(&drop.name)]).cascade(cascades(drop.drop_behavior))
        }
        Statement::DropRule(drop) => {
            of(K::DropOther).targets([ident(&drop.name)]).cascade(cascades(drop.drop_behavior))
        }
        Statement::DropOperator(drop) => of(K::DropOther)
            .targets(drop.operators.iter().map(|o| object_name(&o.name)))
            .cascade(cascades(drop.drop_behavior)),
        Statement::DropOperatorFamily(drop) => {
            of(K::DropOther).targets(drop.names.iter().map(object_name)).cascade(cascades(drop.drop_behavior))
        }
        Statement::DropOperatorClass(drop) => {
            of(K::DropOther).targets(drop.names.iter().map(object_name)).cascade(cascades(drop.drop_behavior))
        }
        Statement::DropSecret { name, .. } | Statement::DropConnector { name, .. } => {
            of(K::DropOther).targets([ident(name)])
        }
        Statement::CreateTable(create) => {
            let kind = if create.query.is_some() { K::CreateTableAs } else { K::CreateTable };
            of(kind).targets([object_name(&create.name)])
        }
        Statement::CreateView(view) => {
            let kind = if view.materialized { K::CreateMaterializedView } else { K::CreateView };
            of(kind).targets([object_name(&view.name)])
        }
        Statement::CreateIndex(index) => of(K::CreateIndex).targets([object_name(&index.table_name)]),
        Statement::CreateSequence { name, .. } => of(K::CreateSequence).targets([object_name(name)]),
        Statement::CreateSchema { schema_name, .. } => of(K::CreateSchema).targets([match schema_name {
            SchemaName::Simple(name) | SchemaName::NamedAuthorization(name, _) => object_name(name),
            // `CREATE SCHEMA AUTHORIZATION bob` creates a schema named after the role.
            SchemaName::UnnamedAuthorization(role) => ident(role),
        }]),
        Statement::CreateFunction(function) => of(K::CreateFunction).targets([object_name(&function.name)]),
        Statement::CreateProcedure { name, .. } => of(K::CreateProcedure).targets([object_name(name)]),
        Statement::CreateTrigger(trigger) => of(K::CreateTrigger).targets([object_name(&trigger.name)]),
        Statement::CreateType { name, .. } => of(K::CreateType).targets([object_name(name)]),
        Statement::CreateExtension(extension) => of(K::CreateExtension).targets([ident(&extension.name)]),
        Statement::CreateRole(role) => of(K::CreateRole).targets(role.names.iter().map(object_name)),
        Statement::CreateUser(user) => of(K::CreateRole).targets([ident(&user.name)]),
        Statement::CreatePolicy(policy) => of(K::CreatePolicy).targets([ident(&policy.name)]),
        Statement::CreateDatabase { db_name, .. } => of(K::CreateDatabase).targets([object_name(db_name)]),
        Statement::AlterTable(alter) => of(K::AlterTable).targets([object_name(&alter.name)]),
        Statement::AlterIndex { name, .. } => of(K::AlterIndex).targets([object_name(name)]),
        Statement::AlterView(view) => of(K::AlterView).targets([object_name(&view.name)]),
        Statement::AlterType(alter) => of(K::AlterType).targets([object_name(&alter.name)]),
        Statement::AlterSchema(alter) => of(K::AlterSchema).targets([object_name(&alter.name)]),
        Statement::AlterRole { name, .. } => of(K::AlterRole).targets([ident(name)]),
        Statement::AlterUser(alter) => of(K::AlterRole).targets([ident(&alter.name)]),
        Statement::Lock(lock) => of(K::Lock).targets(lock.tables.iter().map(|t| object_name(&t.name))),
        Statement::RefreshMaterializedView(refresh) => of(K::Refresh).targets([object_name(&refresh.name)]),
        Statement::Vacuum(vacuum) => of(K::Vacuum).targets(vacuum.table_name.as_ref().map(object_name)),
        Statement::Analyze(analyze) => of(K::Analyze).targets(analyze.table_name.as_ref().map(object_name)),
        Statement::Grant(_) | Statement::GrantRole(_) => of(K::Grant),
        Statement::Revoke(_) | Statement::RevokeRole(_) => of(K::Revoke),
        Statement::Comment { .. } => of(K::Comment),
        Statement::Set(_) => of(K::Set),
        Statement::Reset(_) => of(K::Reset),
        Statement::ShowVariable { .. } | Statement::ShowVariables { .. } => of(K::Show),
        Statement::Call(_) => of(K::Call),
        Statement::Discard { .. } => of(K::Discard),
        Statement::StartTransaction { .. } => of(begin_kind(statement)),
        Statement::Commit { .. } => of(K::Commit),
        Statement::Rollback { savepoint: Some(_), .. } => of(K::RollbackToSavepoint),
        Statement::Rollback { savepoint: None, .. } => of(K::Rollback),
        Statement::Savepoint { .. } => of(K::Savepoint),
        Statement::ReleaseSavepoint { .. } => of(K::ReleaseSavepoint),
        Statement::Explain { .. } | Statement::ExplainTable { .. } => of(K::Explain),
        Statement::LISTEN { .. } => of(K::Listen),
        Statement::NOTIFY { .. } => of(K::Notify),
        _ => of(K::Other),
    }
}

/// A query: a SELECT, unless it is `WITH ... INSERT/UPDATE/DELETE/MERGE` (classified as that statement) or
/// `SELECT ... INTO t` (which Postgres runs as CREATE TABLE AS).
fn from_query(query: &Query) -> Classification {
    match query.body.as_ref() {
        SetExpr::Insert(dml) | SetExpr::Update(dml) | SetExpr::Delete(dml) | SetExpr::Merge(dml) => from_statement(dml),
        SetExpr::Select(select) => match &select.into {
            Some(into) => Classification::of(StatementKind::CreateTableAs).targets(select_into_names(into)),
            None => Classification::of(StatementKind::Select),
        },
        _ => Classification::of(StatementKind::Select),
    }
}

/// The table a `SELECT ... INTO` creates.
fn select_into_names(into: &SelectInto) -> Vec<String> {
    into.targets
        .iter()
        .filter_map(|target| match target {
            Expr::Identifier(id) => Some(ident(id)),
            Expr::CompoundIdentifier(ids) => Some(ids.iter().map(ident).collect::<Vec<_>>().join(".")),
            _ => None,
        })
        .collect()
}

/// Begin, for the BEGIN / START TRANSACTION forms Postgres accepts; `Other` for forms of other dialects that
/// sqlparser also accepts (`BEGIN TRAN`, `ISOLATION LEVEL SNAPSHOT`, ...), so that they are sent to Postgres, which
/// rejects them, rather than handled as the plan's transaction.
fn begin_kind(statement: &Statement) -> StatementKind {
    let Statement::StartTransaction { modes, transaction, modifier, statements, exception, .. } = statement else {
        return StatementKind::Other;
    };
    let snapshot =
        modes.iter().any(|m| matches!(m, TransactionMode::IsolationLevel(TransactionIsolationLevel::Snapshot)));
    let foreign = matches!(transaction, Some(BeginTransactionKind::Tran))
        || modifier.is_some()
        || !statements.is_empty()
        || exception.is_some()
        || snapshot;
    if foreign {
        StatementKind::Other
    } else {
        StatementKind::Begin
    }
}

fn drop_kind(object_type: ObjectType) -> StatementKind {
    use StatementKind as K;
    match object_type {
        ObjectType::Table => K::DropTable,
        ObjectType::View => K::DropView,
        ObjectType::MaterializedView => K::DropMaterializedView,
        ObjectType::Index => K::DropIndex,
        ObjectType::Sequence => K::DropSequence,
        ObjectType::Schema => K::DropSchema,
        ObjectType::Type => K::DropType,
        // DROP USER and DROP GROUP are Postgres aliases of DROP ROLE.
        ObjectType::Role | ObjectType::User | ObjectType::Group => K::DropRole,
        ObjectType::Database => K::DropDatabase,
        _ => K::DropOther,
    }
}

fn cascades(behavior: Option<DropBehavior>) -> bool {
    matches!(behavior, Some(DropBehavior::Cascade))
}

/// The name of a plain table reference (`t`, `ONLY s.t`, `t AS a`); `None` for subqueries, functions and the like.
fn table_name(factor: &TableFactor) -> Option<String> {
    match factor {
        TableFactor::Table { name, .. } => Some(object_name(name)),
        _ => None,
    }
}

/// `schema.table`, each part folded as Postgres folds identifiers.
fn object_name(name: &ObjectName) -> String {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|part| match part {
            // A name holding a dot or a quote is written quoted, so the joined name splits back into its parts.
            ObjectNamePart::Identifier(id) => match ident(id) {
                name if name.contains(['.', '"']) => crate::text::quote_ident(&name),
                name => name,
            },
            other => other.to_string(),
        })
        .collect();
    parts.join(".")
}

/// An identifier as Postgres stores it: as written when quoted, else with ASCII letters lower-cased (Postgres leaves
/// other letters alone in multi-byte encodings such as UTF8).
pub(crate) fn ident(id: &Ident) -> String {
    match id.quote_style {
        Some(_) => id.value.clone(),
        None => id.value.to_ascii_lowercase(),
    }
}

/// The kind of a text sqlparser cannot parse: the transaction-control statements Postgres accepts and sqlparser 0.64
/// does not (`PREPARE TRANSACTION 'x'`, `COMMIT PREPARED 'x'`, `ROLLBACK PREPARED 'x'`, BEGIN / START TRANSACTION
/// with `[NOT] DEFERRABLE`) and a DO block, recognised by their exact words; `Unknown` for anything else. Only the first words of
/// the statement count, so `CREATE FUNCTION ... BEGIN ATOMIC` is never a BEGIN, and neither is `BEGIN ATOMIC`.
fn transaction_fallback(sql: &str) -> StatementKind {
    let Some(words) = words_of_one_statement(sql) else {
        return StatementKind::Unknown;
    };
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["PREPARE", "TRANSACTION", STRING] | ["COMMIT" | "ROLLBACK", "PREPARED", STRING] => {
            StatementKind::PrepareTransaction
        }
        ["BEGIN", "WORK" | "TRANSACTION", modes @ ..]
        | ["BEGIN", modes @ ..]
        | ["START", "TRANSACTION", modes @ ..]
            if transaction_modes(modes) =>
        {
            StatementKind::Begin
        }
        // A DO block, which sqlparser 0.64 does not parse: its code and, before or after it, its language.
        ["DO", STRING] | ["DO", STRING, "LANGUAGE", _] | ["DO", "LANGUAGE", _, STRING] => StatementKind::Do,
        _ => StatementKind::Unknown,
    }
}

/// How [`words_of_one_statement`] shows a string literal (no unquoted word contains a quote).
const STRING: &str = "'";

/// The tokens of a text holding one statement, comments and a trailing `;` left out: unquoted words upper-cased,
/// string literals as [`STRING`], `,` as itself, anything else as `?`. `None` when the text does not tokenize or
/// holds more than one statement.
fn words_of_one_statement(sql: &str) -> Option<Vec<String>> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let mut words: Vec<String> =
        tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_) | Token::EOF)).map(word).collect();
    while words.last().is_some_and(|w| w == ";") {
        words.pop();
    }
    if words.iter().any(|w| w == ";") {
        return None;
    }
    Some(words)
}

fn word(token: &Token) -> String {
    match token {
        Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
        Token::SingleQuotedString(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::DollarQuotedString(_) => STRING.to_owned(),
        Token::Comma => ",".to_owned(),
        Token::SemiColon => ";".to_owned(),
        _ => "?".to_owned(),
    }
}

/// Whether the words are a Postgres transaction mode list (possibly empty): `ISOLATION LEVEL ...`, `READ WRITE`,
/// `READ ONLY`, `[NOT] DEFERRABLE`, separated by commas or spaces.
fn transaction_modes(mut words: &[&str]) -> bool {
    while !words.is_empty() {
        words = match words {
            ["ISOLATION", "LEVEL", "SERIALIZABLE", rest @ ..]
            | ["ISOLATION", "LEVEL", "REPEATABLE", "READ", rest @ ..]
            | ["ISOLATION", "LEVEL", "READ", "COMMITTED" | "UNCOMMITTED", rest @ ..]
            | ["READ", "WRITE" | "ONLY", rest @ ..]
            | ["DEFERRABLE", rest @ ..]
            | ["NOT", "DEFERRABLE", rest @ ..] => rest,
            _ => return false,
        };
        if let [",", rest @ ..] = words {
            if rest.is_empty() {
                return false;
            }
            words = rest;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use StatementKind as K;

    fn check(sql: &str, kind: StatementKind, targets: &[&str], has_where: Option<bool>, cascade: bool) {
        let want =
            Classification { kind, targets: targets.iter().map(|t| t.to_string()).collect(), has_where, cascade };
        assert_eq!(classify(sql), want, "{sql}");
    }

    #[test]
    fn length_limits_of_retyped_columns_are_read() {
        assert_eq!(
            length_limits(
                "ALTER TABLE t ALTER COLUMN \"Name\" TYPE varchar(20), ALTER COLUMN code SET DATA TYPE char(2)"
            ),
            [("Name".to_owned(), 20), ("code".to_owned(), 2)]
        );
        assert!(length_limits("ALTER TABLE t ALTER COLUMN a TYPE text").is_empty());
        assert!(length_limits("SELECT 1").is_empty());
    }

    #[test]
    fn delete_without_where() {
        check("DELETE FROM users", K::Delete, &["users"], Some(false), false);
    }

    #[test]
    fn delete_with_where() {
        check("DELETE FROM public.users WHERE id = 1;", K::Delete, &["public.users"], Some(true), false);
    }

    #[test]
    fn delete_using_without_where_touches_every_row() {
        check("DELETE FROM orders o USING users u", K::Delete, &["orders"], Some(false), false);
    }

    #[test]
    fn delete_using_with_where_names_only_the_target() {
        check(
            "DELETE FROM ONLY orders AS o USING users u WHERE o.user_id = u.id",
            K::Delete,
            &["orders"],
            Some(true),
            false,
        );
    }

    #[test]
    fn delete_under_a_with_clause_is_a_delete() {
        check("WITH x AS (SELECT 1) DELETE FROM t", K::Delete, &["t"], Some(false), false);
    }

    #[test]
    fn update_without_where() {
        check("UPDATE accounts SET balance = 0", K::Update, &["accounts"], Some(false), false);
    }

    #[test]
    fn update_with_from_and_where() {
        check(
            "UPDATE ONLY accounts a SET balance = 0 FROM x WHERE a.id = x.id",
            K::Update,
            &["accounts"],
            Some(true),
            false,
        );
    }

    #[test]
    fn insert_select_names_only_the_target() {
        check("INSERT INTO audit SELECT * FROM users", K::Insert, &["audit"], None, false);
    }

    #[test]
    fn insert_on_conflict() {
        check("INSERT INTO s.t AS a (id) VALUES (1) ON CONFLICT (id) DO NOTHING", K::Insert, &["s.t"], None, false);
    }

    #[test]
    fn merge_names_its_target() {
        check("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", K::Merge, &["t"], None, false);
    }

    #[test]
    fn copy_names_its_table() {
        check("COPY users (id) FROM stdin", K::Copy, &["users"], None, false);
        check("COPY (SELECT 1) TO stdout", K::Copy, &[], None, false);
    }

    #[test]
    fn select_has_no_targets() {
        check("SELECT * FROM users", K::Select, &[], None, false);
        check("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", K::Select, &[], None, false);
    }

    #[test]
    fn select_into_creates_a_table() {
        check("SELECT * INTO TEMP Archive.\"Old\" FROM users", K::CreateTableAs, &["archive.Old"], None, false);
    }

    #[test]
    fn truncate_lists_every_table_and_cascade() {
        check("TRUNCATE a, b CASCADE", K::Truncate, &["a", "b"], None, true);
        check("TRUNCATE TABLE ONLY a RESTART IDENTITY RESTRICT", K::Truncate, &["a"], None, false);
    }

    #[test]
    fn drop_table_cascade() {
        check("DROP TABLE users CASCADE", K::DropTable, &["users"], None, true);
    }

    #[test]
    fn drop_table_if_exists_quoted() {
        check("DROP TABLE IF EXISTS \"My Table\"", K::DropTable, &["My Table"], None, false);
        check("DROP TABLE \"My Table\", t2 RESTRICT", K::DropTable, &["My Table", "t2"], None, false);
        // A dot or a quote inside a name keeps it quoted: the name splits back into its parts.
        check("DELETE FROM s.\"weird.name\"", K::Delete, &["s.\"weird.name\""], Some(false), false);
        check("TRUNCATE \"a\"\"b\"", K::Truncate, &["\"a\"\"b\""], None, false);
    }

    #[test]
    fn drop_schema_cascade() {
        check("DROP SCHEMA s CASCADE", K::DropSchema, &["s"], None, true);
    }

    #[test]
    fn drops_of_other_objects() {
        check("DROP VIEW v", K::DropView, &["v"], None, false);
        check("DROP MATERIALIZED VIEW mv", K::DropMaterializedView, &["mv"], None, false);
        check("DROP INDEX s.idx", K::DropIndex, &["s.idx"], None, false);
        check("DROP SEQUENCE seq", K::DropSequence, &["seq"], None, false);
        check("DROP FUNCTION f(int), s.g CASCADE", K::DropFunction, &["f", "s.g"], None, true);
        check("DROP PROCEDURE p(int)", K::DropProcedure, &["p"], None, false);
        check("DROP TRIGGER trg ON t CASCADE", K::DropTrigger, &["trg"], None, true);
        check("DROP TYPE mood", K::DropType, &["mood"], None, false);
        check("DROP EXTENSION IF EXISTS pgcrypto, \"B\" CASCADE", K::DropExtension, &["pgcrypto", "B"], None, true);
        check("DROP ROLE a, b", K::DropRole, &["a", "b"], None, false);
        check("DROP USER bob", K::DropRole, &["bob"], None, false);
        check("DROP POLICY p ON t", K::DropPolicy, &["p"], None, false);
        check("DROP DATABASE d", K::DropDatabase, &["d"], None, false);
        check("DROP DOMAIN d CASCADE", K::DropOther, &["d"], None, true);
        check("DROP FOREIGN TABLE ft", K::DropOther, &["ft"], None, false);
    }

    #[test]
    fn unquoted_identifiers_fold_to_lower_case() {
        check("DELETE FROM Public.Users WHERE true", K::Delete, &["public.users"], Some(true), false);
    }

    #[test]
    fn quoted_identifiers_keep_their_case() {
        check("DELETE FROM \"Users\" WHERE true", K::Delete, &["Users"], Some(true), false);
        check("UPDATE \"Sales\".orders SET a = 1", K::Update, &["Sales.orders"], Some(false), false);
    }

    #[test]
    fn folding_lowers_ascii_letters_only_as_postgres_does_in_utf8() {
        check("DROP TABLE ÉTÉ", K::DropTable, &["ÉtÉ"], None, false);
    }

    #[test]
    fn alter_table_add_column() {
        check("ALTER TABLE Users ADD COLUMN age int", K::AlterTable, &["users"], None, false);
    }

    #[test]
    fn alter_table_column_type_using() {
        check("ALTER TABLE t ALTER COLUMN c TYPE bigint USING c::bigint", K::AlterTable, &["t"], None, false);
    }

    #[test]
    fn alters_of_other_objects() {
        check("ALTER INDEX i RENAME TO j", K::AlterIndex, &["i"], None, false);
        check("ALTER MATERIALIZED VIEW mv RENAME TO w", K::AlterView, &["mv"], None, false);
        check("ALTER ROLE Bob LOGIN", K::AlterRole, &["bob"], None, false);
        check("ALTER TYPE mood ADD VALUE 'c'", K::AlterType, &["mood"], None, false);
        check("ALTER SCHEMA s RENAME TO t", K::AlterSchema, &["s"], None, false);
    }

    #[test]
    fn create_table() {
        check("CREATE TABLE s.t (id int)", K::CreateTable, &["s.t"], None, false);
    }

    #[test]
    fn create_table_as() {
        check("CREATE TABLE t AS SELECT 1", K::CreateTableAs, &["t"], None, false);
    }

    #[test]
    fn create_index_names_the_indexed_table() {
        check("CREATE INDEX idx ON t (id)", K::CreateIndex, &["t"], None, false);
        check(
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx ON s.t USING btree (id)",
            K::CreateIndex,
            &["s.t"],
            None,
            false,
        );
        check("CREATE INDEX ON t (id)", K::CreateIndex, &["t"], None, false);
    }

    #[test]
    fn creates_name_the_created_object() {
        check("CREATE VIEW v AS SELECT 1", K::CreateView, &["v"], None, false);
        check("CREATE MATERIALIZED VIEW mv AS SELECT 1", K::CreateMaterializedView, &["mv"], None, false);
        check("CREATE SEQUENCE seq", K::CreateSequence, &["seq"], None, false);
        check("CREATE SCHEMA IF NOT EXISTS s AUTHORIZATION bob", K::CreateSchema, &["s"], None, false);
        check("CREATE SCHEMA AUTHORIZATION bob", K::CreateSchema, &["bob"], None, false);
        check(
            "CREATE OR REPLACE FUNCTION s.F() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$",
            K::CreateFunction,
            &["s.f"],
            None,
            false,
        );
        check("CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC SELECT 1; END", K::CreateProcedure, &["p"], None, false);
        check(
            "CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()",
            K::CreateTrigger,
            &["trg"],
            None,
            false,
        );
        check("CREATE TYPE mood AS ENUM ('a', 'b')", K::CreateType, &["mood"], None, false);
        check("CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\"", K::CreateExtension, &["uuid-ossp"], None, false);
        check("CREATE ROLE bob LOGIN", K::CreateRole, &["bob"], None, false);
        check("CREATE USER bob", K::CreateRole, &["bob"], None, false);
        check("CREATE POLICY p ON t USING (true)", K::CreatePolicy, &["p"], None, false);
        check("CREATE DATABASE d", K::CreateDatabase, &["d"], None, false);
    }

    #[test]
    fn begin_atomic_bodies_are_not_transactions() {
        check(
            "CREATE FUNCTION f() RETURNS void LANGUAGE sql BEGIN ATOMIC DELETE FROM t; END",
            K::CreateFunction,
            &["f"],
            None,
            false,
        );
        check("BEGIN ATOMIC SELECT 1; END", K::Unknown, &[], None, false);
    }

    #[test]
    fn other_statements() {
        for (sql, kind) in [
            ("GRANT SELECT ON t TO bob", K::Grant),
            ("GRANT bob TO alice", K::Grant),
            ("REVOKE SELECT ON t FROM bob", K::Revoke),
            ("COMMENT ON TABLE t IS 'x'", K::Comment),
            ("SET search_path = s", K::Set),
            ("SET LOCAL lock_timeout = '1s'", K::Set),
            ("RESET ALL", K::Reset),
            ("SHOW search_path", K::Show),
            ("CALL p(1)", K::Call),
            ("VACUUM", K::Vacuum),
            ("ANALYZE", K::Analyze),
            ("DISCARD ALL", K::Discard),
            ("EXPLAIN ANALYZE DELETE FROM t", K::Explain),
            ("LISTEN ch", K::Listen),
            ("NOTIFY ch, 'x'", K::Notify),
            ("UNLISTEN *", K::Other),
            ("PREPARE q AS SELECT 1", K::Other),
            ("CREATE DOMAIN d AS int", K::Other),
            ("ALTER FUNCTION f() OWNER TO bob", K::Other),
        ] {
            assert_eq!(classify(sql).kind, kind, "{sql}");
        }
    }

    #[test]
    fn maintenance_statements_name_their_tables() {
        check("LOCK TABLE t, s.u IN ACCESS EXCLUSIVE MODE", K::Lock, &["t", "s.u"], None, false);
        check("REFRESH MATERIALIZED VIEW CONCURRENTLY mv", K::Refresh, &["mv"], None, false);
        check("VACUUM FULL t", K::Vacuum, &["t"], None, false);
        check("ANALYZE t", K::Analyze, &["t"], None, false);
    }

    #[test]
    fn transaction_control() {
        for (sql, kind) in [
            ("BEGIN", K::Begin),
            ("BEGIN WORK;", K::Begin),
            ("BEGIN ISOLATION LEVEL SERIALIZABLE", K::Begin),
            ("START TRANSACTION", K::Begin),
            ("START TRANSACTION READ ONLY", K::Begin),
            ("COMMIT", K::Commit),
            ("COMMIT AND CHAIN", K::Commit),
            ("END", K::Commit),
            ("END TRANSACTION", K::Commit),
            ("ROLLBACK", K::Rollback),
            ("ABORT", K::Rollback),
            ("SAVEPOINT s", K::Savepoint),
            ("ROLLBACK TO SAVEPOINT s", K::RollbackToSavepoint),
            ("ROLLBACK TO s", K::RollbackToSavepoint),
            ("RELEASE SAVEPOINT s", K::ReleaseSavepoint),
            ("RELEASE s", K::ReleaseSavepoint),
        ] {
            check(sql, kind, &[], None, false);
            assert!(kind.is_transaction_control(), "{sql}");
        }
    }

    /// Transaction control Postgres accepts but sqlparser 0.64 does not parse: recognised by their words.
    #[test]
    fn unparsed_transaction_control_falls_back_to_its_words() {
        for (sql, kind) in [
            ("PREPARE TRANSACTION 'x'", K::PrepareTransaction),
            ("COMMIT PREPARED 'x';", K::PrepareTransaction),
            ("-- two-phase\nrollback prepared 'x'", K::PrepareTransaction),
            ("BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY DEFERRABLE", K::Begin),
            ("BEGIN TRANSACTION NOT DEFERRABLE", K::Begin),
            ("START TRANSACTION READ WRITE NOT DEFERRABLE", K::Begin),
        ] {
            check(sql, kind, &[], None, false);
        }
    }

    #[test]
    fn an_enum_value_added() {
        assert!(adds_enum_value("ALTER TYPE s.mood ADD VALUE IF NOT EXISTS 'ok' BEFORE 'sad'"));
        assert!(adds_enum_value("alter type mood -- a new one\n add value 'ok'"));
        assert!(!adds_enum_value("ALTER TYPE mood RENAME VALUE 'a' TO 'b'"));
        assert!(!adds_enum_value("SELECT 'alter type t add value'"));
    }

    #[test]
    fn the_columns_an_update_sets() {
        let set = |sql: &str| updated_columns(sql);
        assert_eq!(
            set("UPDATE t SET a = 1, \"B\" = 2, Address.city = 3"),
            Some(vec!["a".into(), "B".into(), "address".into()])
        );
        assert_eq!(set("UPDATE t SET (x, y) = (1, 2) WHERE id = 3"), Some(vec!["x".into(), "y".into()]));
        assert_eq!(set("DELETE FROM t"), None);
        assert_eq!(set("UPDATE t SET"), None);
    }

    /// A DO block, which sqlparser 0.64 does not parse, is known by its words: its code and its language.
    #[test]
    fn an_unparsed_do_block_falls_back_to_its_words() {
        for sql in [
            "DO $$ BEGIN PERFORM 1; END $$",
            "do $body$ BEGIN DELETE FROM t; END $body$;",
            "DO 'BEGIN NULL; END'",
            "DO LANGUAGE plpgsql $$ BEGIN NULL; END $$",
            "DO $$ BEGIN NULL; END $$ LANGUAGE plpgsql",
        ] {
            check(sql, K::Do, &[], None, false);
        }
        for sql in ["DO", "DO $$ x $$ $$ y $$", "DO $$ x $$; SELECT 1", "DO something"] {
            check(sql, K::Unknown, &[], None, false);
        }
    }

    /// Text starting with a transaction keyword that Postgres would reject too is not taken for transaction control
    /// (it is sent, and Postgres says what is wrong).
    #[test]
    fn invalid_transaction_control_is_unknown() {
        for sql in [
            "BEGIN foo",
            "BEGIN DEFERRABLE,",
            "ABORT TO SAVEPOINT s",
            "PREPARE TRANSACTION",
            "COMMIT PREPARED 'x'; SELECT 1",
            "BEGIN TRY",
        ] {
            check(sql, K::Unknown, &[], None, false);
        }
        assert_eq!(classify("BEGIN TRAN").kind, K::Other);
    }

    #[test]
    fn syntax_error_is_unknown() {
        check("DELET FROM users", K::Unknown, &[], None, false);
    }

    #[test]
    fn two_statements_are_unknown() {
        check("DELETE FROM a; DELETE FROM b", K::Unknown, &[], None, false);
        check("BEGIN; SELECT 1", K::Unknown, &[], None, false);
    }

    #[test]
    fn empty_text_is_unknown() {
        check("", K::Unknown, &[], None, false);
        check(" ; -- nothing", K::Unknown, &[], None, false);
    }

    /// Statements sqlparser 0.64 does not parse with the PostgreSQL dialect. They still run; a sqlparser upgrade
    /// that starts parsing them shows up here.
    #[test]
    fn known_gaps_of_sqlparser_0_64() {
        for sql in [
            "REINDEX TABLE t",
            "CLUSTER t USING i",
            "ALTER SYSTEM SET work_mem = '1MB'",
            "ALTER SEQUENCE s RESTART",
            "DELETE FROM t WHERE CURRENT OF c",
            "UPDATE t SET a = 1 WHERE CURRENT OF c",
            "VACUUM (FULL) t",
            "VACUUM ANALYZE t",
            "ANALYZE VERBOSE t",
            "CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN END $$",
            "COMMENT ON FUNCTION f(int) IS 'x'",
            "COMMENT ON TRIGGER trg ON t IS 'x'",
            "CREATE UNIQUE INDEX i ON ONLY t (id)",
            "CREATE MATERIALIZED VIEW mv AS SELECT 1 WITH NO DATA",
            "CREATE TABLE t (LIKE u INCLUDING ALL)",
            "ALTER TABLE t SET SCHEMA s",
            "ALTER INDEX i SET TABLESPACE ts",
            "ALTER INDEX IF EXISTS i RENAME TO j",
            "DROP INDEX CONCURRENTLY i",
            "CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC SELECT 1; END",
            "DROP DATABASE d WITH (FORCE)",
            "DROP OWNED BY app",
            "DROP AGGREGATE a(int)",
            "DROP SERVER srv",
            "SET CONSTRAINTS ALL DEFERRED",
            "TABLE t",
            "CHECKPOINT",
        ] {
            check(sql, K::Unknown, &[], None, false);
        }
    }

    #[test]
    fn never_panics_on_truncated_or_odd_text() {
        let samples = [
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 'é;'; END",
            "DELETE FROM \"Ünï\".t USING u WHERE $$x$$ = E'\\'' -- c",
            "BEGIN ISOLATION LEVEL READ COMMITTED, NOT DEFERRABLE /* c */ ;",
            "COPY t FROM stdin;\n1\t2\n\\.\n",
        ];
        for sample in samples {
            for (i, _) in sample.char_indices() {
                // sqlparser itself, outside `classify`'s catch_unwind, so that a panic fails the test.
                let _ = sqlparser::parser::Parser::parse_sql(&PostgreSqlDialect {}, &sample[..i]);
                let _ = classify(&sample[..i]);
            }
        }
        for odd in ["$$", "\"", "'", "/*", "U&\"", "\0", ";;;", "(((((((((("] {
            assert_eq!(classify(odd).kind, K::Unknown, "{odd}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowing() {
        let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
        assert_eq!(classify(&deep).kind, K::Unknown);
        let subqueries = format!("SELECT * FROM {}t{}", "(SELECT * FROM ".repeat(500), ")".repeat(500));
        assert_eq!(classify(&subqueries).kind, K::Unknown);
    }

    #[test]
    fn ids_match_serde_names() {
        for kind in StatementKind::ALL {
            let json = serde_json::to_string(kind).expect("a kind serializes");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(StatementKind::from_id(kind.as_str()), Some(*kind));
        }
    }

    #[test]
    fn drops_are_the_drop_kinds() {
        for kind in StatementKind::ALL {
            assert_eq!(kind.is_drop(), kind.label().starts_with("DROP"), "{kind}");
        }
        assert!(K::DropOther.is_drop() && !K::Delete.is_drop() && !K::Truncate.is_drop());
    }

    #[test]
    fn transaction_control_kinds() {
        let control: Vec<_> = StatementKind::ALL.iter().filter(|k| k.is_transaction_control()).collect();
        assert_eq!(
            control,
            [
                &K::Begin,
                &K::Commit,
                &K::Rollback,
                &K::Savepoint,
                &K::ReleaseSavepoint,
                &K::RollbackToSavepoint,
                &K::PrepareTransaction
            ]
        );
    }

    #[test]
    fn labels_are_command_tags() {
        assert_eq!(K::DropTable.label(), "DROP TABLE");
        assert_eq!(K::Delete.label(), "DELETE");
        assert_eq!(K::Unknown.label(), "UNKNOWN");
        assert_eq!(K::DropTable.as_str(), "drop_table");
    }
}
