//! Executing a plan on a shadow database and measuring each statement.
//!
//! The plan runs on one connection that logs in as the plan role (or the superuser, when asked), inside one
//! transaction that is always rolled back. Around each statement the executor reads this transaction's row
//! counters and the `sql_drop` event trigger's log through the schema-qualified functions of [`queries`], so that
//! rows changed by foreign-key actions and triggers, and everything a CASCADE dropped, are measured, not guessed.
//! Measuring never prints and never renders; it returns the statements' reports.

mod catalog;
mod effects;
mod probe;
mod queries;
mod transaction;
mod unknown;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio_postgres::error::ErrorPosition;

use crate::error::{Error, Result};
use crate::plan::{script_position, Plan, PlanStatement, StatementKind};
use crate::report::{SchemaChange, StatementError, StatementReport, Status, TableEffect};
use crate::shadow::Database;
use crate::shadow::{Role, Session, Shadow};
use effects::{Oid, Snapshot};
pub use transaction::needs_own_transaction;

/// A numeric fingerprint, read as text: only ever compared for equality.
type Decimal = String;

/// How a plan is run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run the plan as the shadow's superuser instead of the non-superuser plan role.
    pub superuser: bool,
    /// Run the plan as this role of the source instead (`--role`): with only the privileges the source grants it,
    /// so that "permission denied" on the shadow predicts "permission denied" in production.
    pub role: Option<String>,
}

/// GRANT and REVOKE reach the event trigger without an object identity: name the change by the statement itself
/// (`SELECT ON TABLE public.t TO agent`), so the report says which privileges changed.
fn privileges_named(changes: &mut [SchemaChange], sql: &str) {
    for change in
        changes.iter_mut().filter(|c| c.identity.is_empty() && matches!(c.command.as_str(), "GRANT" | "REVOKE"))
    {
        let words: Vec<&str> = sql.split_whitespace().collect();
        let rest = words.get(1..).unwrap_or_default().join(" ");
        change.identity = rest.trim_end_matches(';').chars().take(200).collect();
    }
}

/// The role a plan's connection logs in as on `shadow` under `options`.
pub fn plan_role<'a>(shadow: &'a Shadow, options: &'a RunOptions) -> &'a str {
    match (&options.role, options.superuser) {
        (_, true) => shadow.role(Role::Admin),
        (Some(role), false) => role,
        (None, false) => shadow.role(Role::Plan),
    }
}

/// The role a plan's connection logs in as on `database`: the database's own login role (a service's clone) unless
/// `--superuser` or `--role` say otherwise, else [`plan_role`].
pub fn login_role<'a>(shadow: &'a Shadow, database: &'a Database, options: &'a RunOptions) -> &'a str {
    match (&database.login, options.superuser || options.role.is_some()) {
        (Some(login), false) => login,
        _ => plan_role(shadow, options),
    }
}

/// Every table's exact row count, as a dry-run's baseline (a cached template stores it).
pub(crate) const BASELINE_COUNTS_SQL: &str = queries::BASELINE_COUNTS;

/// The SQL that installs the measuring machinery (part of what a cached template is keyed by).
pub(crate) const INSTALL_SQL: &str = queries::INSTALL;

/// Installs the measuring machinery into a freshly loaded database (as the bootstrap superuser).
pub(crate) async fn install(admin: &Session) -> Result<()> {
    admin.client().batch_execute(queries::INSTALL).await.map_err(|e| Error::pg("installing the measuring machinery", e))
}

/// Runs `plan` on `database` in a transaction that is rolled back, and measures every statement.
pub async fn run_plan(
    shadow: &Shadow,
    database: &Database,
    plan: &Plan,
    options: &RunOptions,
) -> Result<Vec<StatementReport>> {
    if database.spoiled.load(Ordering::SeqCst) {
        return Err(Error::DatabaseSpoiled(database.name().to_owned()));
    }
    if let Some(role) = &options.role {
        crate::shadow::prepare_plan_role(shadow, role).await?;
    }
    let session = shadow.connect(login_role(shadow, database, options), database.name()).await?;
    session.client().batch_execute("BEGIN").await.map_err(|e| Error::pg("starting the dry-run transaction", e))?;
    let mut run = Run::start(&session, database).await?;
    let mut reports = Vec::with_capacity(plan.statements.len());
    let mut stopped = false;
    for (i, statement) in plan.statements.iter().enumerate() {
        let mut report = blank_report(i + 1, statement);
        tracing::info!(target: "pgshadow::progress", "running statement {} of {}", i + 1, plan.statements.len());
        if stopped {
            report.status = Status::NotRun;
        } else {
            match run.statement(statement, &mut report).await {
                Ok(Some(since)) => {
                    for earlier in reports.iter_mut().filter(|r: &&mut StatementReport| r.index >= since) {
                        earlier.rolled_back = true;
                    }
                    report.rolled_back = true;
                }
                Ok(None) => {}
                Err(e) => measure_failed(&session, &mut report, e)?,
            }
            stopped = report.status == Status::Error || report.measure_error.is_some();
            tracing::info!(
                statement_index = report.index,
                status = ?report.status,
                rows_affected = report.rows_affected,
                rows_destroyed = report.rows_destroyed,
                "statement measured"
            );
        }
        reports.push(report);
    }
    if !stopped {
        run.unbacked_foreign_keys(&mut reports).await?;
    }
    if let Some(since) = run.block_start.filter(|_| !stopped) {
        // psql rolls back a transaction left open at the end of the script.
        for r in reports.iter_mut().filter(|r| r.index >= since) {
            r.rolled_back = true;
        }
        if let Some(begin) = reports.iter_mut().find(|r| r.index == since) {
            begin.note = Some("the plan's transaction starts here and is never committed: it is rolled back".into());
        }
    }
    // Whatever happened, nothing the plan did survives. (After an error the transaction is aborted, and ROLLBACK
    // is still the way out of it.)
    // A connection a refused COPY put out of step is closed instead: the server rolls back a closed session.
    if !session.is_broken() {
        session.client().batch_execute("ROLLBACK").await.map_err(|e| Error::pg("rolling the dry-run back", e))?;
    }
    Ok(reports)
}

/// The measuring state of one plan run.
struct Run<'a> {
    session: &'a Session,
    database: &'a Database,
    transaction_start: String,
    /// Row count of every table, kept current statement by statement.
    known_rows: HashMap<Oid, i64>,
    /// Tables whose production size the shadow cannot know ([`unknown`]).
    unknown: HashSet<Oid>,
    /// The tables as of the end of the last statement.
    tables: Snapshot,
    /// Position in the event trigger's log up to which drops have been reported.
    dropped_seq: i64,
    /// Position in the ddl_command_end log up to which schema changes have been reported.
    changed_seq: i64,
    /// Tables that existed before the plan: locks are reported on these.
    existing: HashSet<Oid>,
    /// Relations the plan locked, and at the start every index of an existing table: kind, name, table.
    relations: HashMap<Oid, (String, String, Oid)>,
    /// The locks held as of the end of the last statement (ACCESS SHARE left out: measuring takes it too).
    locks: HashSet<(Oid, String)>,
    /// The statement that took each held lock.
    lock_since: HashMap<(Oid, String), usize>,
    /// Calls per user function as of the end of the last statement.
    calls: HashMap<Oid, i64>,
    /// The index of the plan's own BEGIN, while the plan is inside a transaction block of its own.
    block_start: Option<usize>,
    /// Columns and constraints as of the end of the last statement.
    columns: catalog::Columns,
    constraints: catalog::Constraints,
    /// The statement that created each constraint the plan added.
    created_by: HashMap<Oid, usize>,
}

impl<'a> Run<'a> {
    async fn start(session: &'a Session, database: &'a Database) -> Result<Run<'a>> {
        let client = session.client();
        let measuring = |e| Error::pg("measuring the shadow before the plan", e);
        let transaction_start: String =
            client.query_one(queries::TRANSACTION_START, &[]).await.map_err(measuring)?.get(0);
        // A cached template's counts are known; anything else is counted now.
        let known_rows = match &database.row_counts {
            Some(counts) => counts.iter().map(|(oid, rows)| (Oid::from(*oid), *rows)).collect(),
            None => client
                .query(queries::BASELINE_COUNTS, &[])
                .await
                .map_err(measuring)?
                .iter()
                .map(|r| (r.get::<_, Oid>(0), r.get::<_, i64>(1)))
                .collect(),
        };
        let unknown = unknown::of(database.data_loaded, &known_rows);
        let mut run = Run {
            session,
            database,
            transaction_start,
            known_rows,
            unknown,
            tables: Snapshot::new(),
            dropped_seq: 0,
            changed_seq: 0,
            existing: HashSet::new(),
            relations: HashMap::new(),
            locks: HashSet::new(),
            lock_since: HashMap::new(),
            calls: HashMap::new(),
            block_start: None,
            columns: catalog::Columns::new(),
            constraints: catalog::Constraints::new(),
            created_by: HashMap::new(),
        };
        run.tables = run.snapshot().await?;
        run.existing = run.tables.keys().copied().collect();
        run.relations = run.existing_indexes().await?;
        run.locks = run.held_locks().await?;
        run.functions_called().await?;
        (run.columns, run.constraints) = run.catalog().await?;
        Ok(run)
    }

    /// Runs and measures one statement. Returns the index of the first statement the plan rolled back, when this
    /// statement is the plan's ROLLBACK.
    async fn statement(&mut self, statement: &PlanStatement, report: &mut StatementReport) -> Result<Option<usize>> {
        let kind = statement.classification.kind;
        match self.transaction_control(statement, report).await? {
            transaction::Handling::Send => {}
            transaction::Handling::Done => return Ok(None),
            transaction::Handling::RolledBack { since } => return Ok(Some(since)),
            transaction::Handling::OwnTransaction => {
                self.run_outside_transaction(statement, report).await?;
                return Ok(None);
            }
        }
        let direct = self.resolve_targets(statement).await?;
        report.settings = Some(self.settings().await?);
        // An ALTER TABLE may drop or retype columns: count and fingerprint their values while they are as they were.
        let (column_values, fingerprints) = if kind == StatementKind::AlterTable {
            report.values_too_long =
                self.values_too_long(&direct, &crate::plan::length_limits(&statement.raw.text)).await?;
            (self.column_values(&direct).await?, self.fingerprints(&direct).await?)
        } else {
            Default::default()
        };
        let started = Instant::now();
        let result = self.session.run(&statement.raw).await;
        report.duration_ms = Some((started.elapsed().as_secs_f64() * 1e6).round() / 1e3);
        match result {
            Ok(rows) => {
                report.status = Status::Ok;
                report.rows_affected = Some(rows);
            }
            Err(e) => match e.as_db_error() {
                Some(db) => {
                    report.status = Status::Error;
                    report.error = Some(statement_error(statement, db));
                    return Ok(None);
                }
                None => return Err(Error::pg(format!("running statement {}", report.index), e)),
            },
        }
        if self.transaction_ended().await? {
            self.database.spoiled.store(true, Ordering::SeqCst);
            report.status = Status::Error;
            report.error = Some(refusal(
                statement,
                "this statement ended the dry-run's transaction; pgshadow stopped measuring here",
            ));
            return Ok(None);
        }
        if kind == StatementKind::RollbackToSavepoint {
            // Rolled-back rows still count in the transaction's counters: count every table again.
            self.known_rows = self.recount(self.tables.keys().copied()).await?;
        }
        self.measure(report, kind, &direct, &column_values).await?;
        self.values_changed(report, &fingerprints).await?;
        Ok(None)
    }

    /// Compares the tables with their state before the statement and reads what was dropped.
    async fn measure(
        &mut self,
        report: &mut StatementReport,
        statement_kind: StatementKind,
        direct: &HashSet<Oid>,
        column_values: &HashMap<String, u64>,
    ) -> Result<()> {
        let after = self.snapshot().await?;
        let truncated: Vec<Oid> = match statement_kind {
            StatementKind::Truncate => self
                .tables
                .iter()
                .filter(|(oid, then)| after.get(oid).is_some_and(|now| now.relfilenode != then.relfilenode))
                .map(|(oid, _)| *oid)
                .collect(),
            _ => Vec::new(),
        };
        let names: HashMap<Oid, String> =
            self.unknown.iter().filter_map(|oid| Some((*oid, self.tables.get(oid)?.name.clone()))).collect();
        let recounted = self.recount(effects::needs_recount(&self.tables, &after)).await?;
        report.locks = self.new_locks().await?;
        report.locks_held = self.locks_held(report.index);
        let (columns, constraints) = self.catalog().await?;
        report.column_changes =
            catalog::column_changes(&self.columns, &columns, &self.existing, &self.known_rows, &self.unknown);
        report.constraint_changes = catalog::constraint_changes(
            &self.constraints,
            &constraints,
            &self.existing,
            &self.known_rows,
            &self.unknown,
        );
        for oid in constraints.keys().filter(|oid| !self.constraints.contains_key(oid)) {
            self.created_by.entry(*oid).or_insert(report.index);
        }
        (self.columns, self.constraints) = (columns, constraints);
        let changes = effects::compare(&self.tables, &after, &mut self.known_rows, &recounted, direct);
        self.tables = after;
        report.rewritten_tables = changes.rewritten;
        let dropped = self.dropped().await?;
        report.dropped_objects =
            effects::dropped_objects(&dropped, &changes.dropped_rows, column_values, &self.unknown);
        report.schema_changes = self.schema_changes().await?;
        privileges_named(&mut report.schema_changes, &report.sql);
        report.functions_called = self.functions_called().await?;
        // What was written to: the statement's own targets (views too) by its kind, and every table by its counts.
        let by_kind = match statement_kind {
            StatementKind::Insert => Some('3'),
            StatementKind::Update => Some('2'),
            StatementKind::Delete => Some('4'),
            _ => None,
        };
        let mut written: Vec<(Oid, Vec<char>)> =
            by_kind.map(|e| direct.iter().map(|oid| (*oid, vec![e])).collect()).unwrap_or_default();
        for effect in &changes.effects {
            let events: Vec<char> = [(Some(effect.inserted), '3'), (effect.updated, '2'), (effect.deleted, '4')]
                .into_iter()
                .filter(|(n, _)| n.unwrap_or(0) > 0)
                .map(|(_, e)| e)
                .collect();
            if let Some(oid) = self.tables.iter().find(|(_, t)| t.name == effect.table).map(|(oid, _)| *oid) {
                written.push((oid, events));
            }
        }
        report.rules_fired = self.rules_fired(&written).await?;
        report.rows_destroyed = changes.effects.iter().filter_map(TableEffect::destroyed).sum::<u64>()
            + report.dropped_objects.iter().filter_map(|o| o.rows).sum::<u64>();
        report.table_effects = changes.effects;
        let touched = unknown::Touched { kind: statement_kind, direct, truncated: &truncated, names: &names };
        self.unknown_counts(report, touched).await?;
        Ok(())
    }
}

/// Records that a query measuring the statement failed — an error of the server (such as the plan's own
/// `statement_timeout` cancelling a count), not of the connection, which stays a tool error. The statement's counts
/// are unknown, not 0, and the plan stops: the failed query aborted the dry-run's transaction.
fn measure_failed(session: &Session, report: &mut StatementReport, error: Error) -> Result<()> {
    let message = match &error {
        Error::Postgres { context, source } if !session.is_broken() => match source.as_db_error() {
            Some(db) => format!("{context}: {} (SQLSTATE {})", db.message(), db.code().code()),
            None => return Err(error),
        },
        _ => return Err(error),
    };
    tracing::warn!(statement_index = report.index, error = %message, "measuring a statement failed");
    report.measure_error = Some(message);
    report.rows_known = false;
    for effect in &mut report.table_effects {
        (effect.updated, effect.deleted, effect.truncated, effect.rows_known) = (None, None, None, false);
    }
    for object in report.dropped_objects.iter_mut().filter(|o| o.object_type == "table") {
        (object.rows, object.rows_known) = (None, false);
    }
    Ok(())
}

/// A statement's report before it runs: `not_run`, nothing measured.
pub(crate) fn blank_report(index: usize, statement: &PlanStatement) -> StatementReport {
    StatementReport {
        index,
        file: statement.file.clone(),
        element: statement.element,
        line: statement.raw.line,
        column: statement.raw.column,
        sql: statement.raw.text.clone(),
        kind: statement.classification.kind,
        targets: statement.classification.targets.clone(),
        status: Status::NotRun,
        note: None,
        rows_affected: None,
        duration_ms: None,
        table_effects: Vec::new(),
        dropped_objects: Vec::new(),
        rewritten_tables: Vec::new(),
        locks: Vec::new(),
        locks_held: Vec::new(),
        schema_changes: Vec::new(),
        settings: None,
        functions_called: Vec::new(),
        rules_fired: Vec::new(),
        column_changes: Vec::new(),
        constraint_changes: Vec::new(),
        unbacked_foreign_keys: Vec::new(),
        unindexed_references: Vec::new(),
        values_too_long: Vec::new(),
        narrow_foreign_keys: Vec::new(),
        keys_past_half: Vec::new(),
        rolled_back: false,
        rows_destroyed: 0,
        rows_known: true,
        unknown_tables: Vec::new(),
        cascade_paths: Vec::new(),
        measure_error: None,
        nondeterministic: crate::plan::nondeterministic(&statement.raw.text),
        error: None,
    }
}

/// Postgres's error, positioned in the plan.
fn statement_error(statement: &PlanStatement, db: &tokio_postgres::error::DbError) -> StatementError {
    let (line, column) = match db.position() {
        Some(ErrorPosition::Original(p)) => script_position(&statement.raw, *p as usize),
        _ => (statement.raw.line, statement.raw.column),
    };
    StatementError {
        sqlstate: Some(db.code().code().to_owned()),
        message: db.message().to_owned(),
        detail: db.detail().map(str::to_owned),
        hint: db.hint().map(str::to_owned),
        line,
        column,
        constraint_name: db.constraint().map(str::to_owned),
        table_name: db.table().map(|t| db.schema().map_or_else(|| t.to_owned(), |s| format!("{s}.{t}"))),
        column_name: db.column().map(str::to_owned),
        predicted: None,
    }
}

/// pgshadow's own refusal of a statement, at the statement's start.
fn refusal(statement: &PlanStatement, message: &str) -> StatementError {
    StatementError {
        sqlstate: None,
        message: message.to_owned(),
        detail: None,
        hint: None,
        line: statement.raw.line,
        column: statement.raw.column,
        ..StatementError::default()
    }
}

/// `schema.table` as the classifier normalised it, quoted part by part for `to_regclass`.
fn quote_name(name: &str) -> String {
    name.split('.').map(crate::text::quote_ident).collect::<Vec<_>>().join(".")
}
