//! Executing a plan on a shadow database and measuring each statement.
//!
//! The plan runs on one connection that logs in as the plan role (or the superuser, when asked), inside one
//! transaction that is always rolled back. Around each statement the executor reads this transaction's row
//! counters and the `sql_drop` event trigger's log through the schema-qualified functions of `queries`, so that
//! rows changed by foreign-key actions and triggers, and everything a CASCADE dropped, are measured, not guessed.
//! Measuring never prints and never renders; it returns the statements' reports.

mod catalog;
mod effects;
mod probe;
mod queries;
mod start;
mod transaction;
mod unknown;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::error::ErrorPosition;

use crate::error::{Error, Result};
use crate::plan::{script_position, Plan, PlanStatement, StatementKind};
use crate::report::{CommitError, SchemaChange, StatementError, StatementReport, Status, TableEffect};
use crate::shadow::session::Ready;
use crate::shadow::Database;
use crate::shadow::{Role, Session, Shadow};
use effects::{Oid, Snapshot};
use start::keeps_session_state;
pub(crate) use start::{read_baseline, reuse_session, Carried};

/// The state before a plan a cached template keeps, for a run on it or a clone of it ([`Carried::baseline`]).
pub(crate) fn stored_baseline(database: &Database) -> Option<Arc<start::Baseline>> {
    start::Baseline::stored(database).map(Arc::new)
}
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

/// A session for one later run of a plan on `database` with the default login role (`options` asks for no other),
/// opened ahead of time, its backend's catalog caches warmed by reading once, outside any transaction, what measuring
/// reads: a service that pools clones opens it off the request path. A fresh session no plan has used; after its run
/// it serves later runs on the same database only when [`reuse_session`] allows.
pub(crate) async fn open_session(shadow: &Shadow, database: &Database) -> Result<Session> {
    let session = shadow.connect(login_role(shadow, database, &RunOptions::default()), database.name()).await?;
    let warm_up = [
        queries::TRANSACTION_START,
        queries::TABLE_STATE,
        queries::RELATION_LOCKS,
        queries::FUNCTION_CALLS,
        queries::COLUMN_STATE,
        queries::CONSTRAINT_STATE,
        queries::UNINDEXED_FOREIGN_KEYS,
        queries::RULES,
        queries::INDEXES,
        queries::SETTINGS,
        queries::WARM_UP,
    ]
    .join(";\n");
    session.client().batch_execute(&warm_up).await.map_err(|e| Error::pg("warming up a session for a run", e))?;
    // Only a faster first DDL statement rests on this: a role that may not make a temporary table goes without.
    if let Err(e) = session.client().batch_execute(queries::WARM_UP_DDL).await {
        tracing::debug!(error = %e, "a session's DDL warm-up failed");
        session.client().batch_execute("ROLLBACK").await.map_err(|e| Error::pg("ending a DDL warm-up", e))?;
    }
    Ok(session)
}

/// What a run measured: every statement of the plan, and how its final COMMIT would go.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// One report per statement of the plan, in order.
    pub statements: Vec<StatementReport>,
    /// The error of a deferred constraint the plan left violated where it ends ([`crate::report::Report::commit_error`]).
    pub commit_error: Option<CommitError>,
}

/// Runs `plan` on `database` in a transaction that is rolled back, and measures every statement.
pub async fn run_plan(shadow: &Shadow, database: &Database, plan: &Plan, options: &RunOptions) -> Result<Measured> {
    let carried = Carried { session: None, baseline: stored_baseline(database) };
    Ok(run_plan_in(shadow, database, plan, options, carried).await?.0)
}

/// [`run_plan`], with what the run before on the same pooled clone handed on: its session (or one opened ahead,
/// [`open_session`]), used when the run logs in as the default role, and the state before the plan it read. Hands on
/// the session when a later run on the same database may use it ([`reuse_session`]), and the state it started from.
pub(crate) async fn run_plan_in(
    shadow: &Shadow,
    database: &Database,
    plan: &Plan,
    options: &RunOptions,
    carried: Carried,
) -> Result<(Measured, Carried)> {
    if database.spoiled.load(Ordering::SeqCst) {
        return Err(Error::DatabaseSpoiled(database.name().to_owned()));
    }
    if let Some(role) = &options.role {
        crate::shadow::prepare_plan_role(shadow, role).await?;
    }
    let started = Instant::now();
    let default_role = !options.superuser && options.role.is_none();
    let session = match carried.session.filter(|s| default_role && !s.is_broken()) {
        Some(session) => session,
        None => shadow.connect(login_role(shadow, database, options), database.name()).await?,
    };
    tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, "connected as the plan's role");
    // Only the event triggers of a plan that is not a superuser are sure to see every change to the catalog.
    let event_log_complete = !options.superuser && options.role.is_none();
    let mut run = Run::start(&session, database, event_log_complete, carried.baseline.as_deref()).await?;
    let baseline = match carried.baseline {
        Some(baseline) => Some(baseline),
        None => run.baseline().map(Arc::new),
    };
    tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, "state before the plan read");
    let mut reports = Vec::with_capacity(plan.statements.len());
    let mut stopped = false;
    for (i, statement) in plan.statements.iter().enumerate() {
        let mut report = StatementReport::not_run(i + 1, statement);
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
                elapsed_us = started.elapsed().as_micros() as u64,
                "statement measured"
            );
        }
        reports.push(report);
    }
    // The plan as a whole is one transaction, as `pgshadow apply` runs it: where it ends outside an open block of its
    // own, it commits, and its deferred constraints are checked then — unless its own COMMIT checked them last.
    let commits = !stopped && run.block_start.is_none() && run.unchecked;
    if let Some(since) = run.block_start.filter(|_| !stopped) {
        // psql rolls back a transaction left open at the end of the script.
        for r in reports.iter_mut().filter(|r| r.index >= since) {
            r.rolled_back = true;
        }
        if let Some(begin) = reports.iter_mut().find(|r| r.index == since) {
            begin.note = Some("the plan's transaction starts here and is never committed: it is rolled back".into());
        }
    }
    // The foreign keys as the plan leaves them, read ahead of what ends the dry-run, in its round trip.
    let keys = async {
        match stopped {
            true => Ok(None),
            false => run.keys_at_end().await.map(Some),
        }
    };
    // Whatever happened, nothing the plan did survives. (After an error the transaction is aborted, and ROLLBACK
    // is still the way out of it.)
    // A connection a refused COPY put out of step is closed instead: the server rolls back a closed session.
    let end = async {
        match (session.is_broken(), commits) {
            (true, _) => Ok(None),
            // The plan commits where it ends: its deferred constraints are checked in the round trip that rolls the
            // dry-run back, and a constraint trigger's function that fires only there is read as called.
            (false, true) => Ok(Some(run.send_deferred_check("ROLLBACK").await)),
            (false, false) => session.client().batch_execute("ROLLBACK").await.map(|()| None),
        }
    };
    let (keys, end) = tokio::join!(keys, end);
    if let Some(keys) = keys? {
        run.unbacked_foreign_keys(&keys, &mut reports);
    }
    // A deferred trigger may end its own session where the plan commits (pg_terminate_backend): the server rolled the
    // transaction back with it.
    let commit_failed = reports.iter().any(|r| r.kind == StatementKind::Commit && r.status == Status::Error);
    let commit_error = match end {
        Ok(Some(checked)) => {
            let (failed, _) = run.deferred_checked(checked)?;
            let error = failed.as_ref().and_then(|e| e.as_db_error()).map(commit_error_of);
            if error.is_some() {
                tracing::info!(error = ?error, "the plan's deferred constraints fail where it commits");
            }
            error
        }
        Err(e) if !(commit_failed && (e.is_closed() || session.client().is_closed())) => {
            return Err(Error::pg("rolling the dry-run back", e));
        }
        Ok(None) | Err(_) => None,
    };
    let reusable = default_role
        && !run.session_keeps_state
        && !session.is_broken()
        && !session.client().is_closed()
        && !database.spoiled.load(Ordering::SeqCst)
        && !plan.statements.iter().any(keeps_session_state);
    drop(run);
    let measured = Measured { statements: reports, commit_error };
    Ok((measured, Carried { session: reusable.then_some(session), baseline }))
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
    /// Relations the plan locked, and at the start every index of an existing table and every table of
    /// [`Run::other_tables`]: kind, name, table.
    relations: HashMap<Oid, (String, String, Oid)>,
    /// The partitioned tables and materialized views that existed before the plan: tables a statement can lock that
    /// hold no rows of their own. A partitioned table's rows are those of the partitions below it (listed); a
    /// materialized view's (`None`) are not counted.
    other_tables: HashMap<Oid, Option<Vec<Oid>>>,
    /// The locks held as of the end of the last statement (ACCESS SHARE left out: measuring takes it too).
    locks: HashSet<(Oid, String)>,
    /// The statement that took each held lock.
    lock_since: HashMap<(Oid, String), usize>,
    /// Calls per user function as of the end of the last statement.
    calls: HashMap<Oid, i64>,
    /// The index of the plan's own BEGIN, while the plan is inside a transaction block of its own.
    block_start: Option<usize>,
    /// Whether the plan's open transaction block ran `ALTER TYPE ... ADD VALUE`: its COMMIT then commits for real
    /// ([`Run::commit_for_real`]).
    adds_enum_value: bool,
    /// Whether a statement ran since the plan's own COMMIT last checked its deferred constraints (or since the start).
    unchecked: bool,
    /// Columns and constraints as of the end of the last statement.
    columns: catalog::Columns,
    constraints: catalog::Constraints,
    /// The statement that created each constraint the plan added.
    created_by: HashMap<Oid, usize>,
    /// Every rewrite rule, as of the last read of the catalog.
    rules: Vec<probe::Rule>,
    /// Whether the event triggers' logs show every change to columns and constraints a statement could make
    /// through a function it calls: then the catalog is read again after a statement that cannot change it
    /// by itself ([`may_change_catalog`]) only when the logs show a change.
    event_log_complete: bool,
    /// Set when the plan called a function of a language that may keep state in the session ([`reuse_session`]).
    session_keeps_state: bool,
}

/// A statement run by [`Run::run_timed`]: its row count or error, how long it took, and what was read after it
/// in its round trip (none after a COPY, or one that could not be prepared).
struct Ran {
    result: std::result::Result<u64, tokio_postgres::Error>,
    took: Duration,
    /// Read after the statement; an error here matters only where the statement succeeded (after a failed one, the
    /// reads met its aborted transaction).
    after: Option<Result<probe::After>>,
}

/// Whether a statement of this kind can change columns, constraints or rules by itself (not through a function it
/// calls, which the event triggers' logs show).
fn may_change_catalog(kind: StatementKind) -> bool {
    use StatementKind::*;
    !matches!(kind, Select | Insert | Update | Delete | Merge | Copy | Truncate)
}

impl Run<'_> {
    /// Runs and measures one statement. Returns the index of the first statement the plan rolled back, when this
    /// statement is the plan's ROLLBACK.
    async fn statement(&mut self, statement: &PlanStatement, report: &mut StatementReport) -> Result<Option<usize>> {
        let kind = statement.classification.kind;
        match self.transaction_control(statement, report).await? {
            transaction::Handling::Send => self.unchecked = true,
            transaction::Handling::Done => return Ok(None),
            transaction::Handling::RolledBack { since } => return Ok(Some(since)),
            transaction::Handling::OwnTransaction => {
                self.unchecked = true;
                self.run_outside_transaction(statement, report).await?;
                return Ok(None);
            }
        }
        let with_catalog = !self.event_log_complete || may_change_catalog(kind);
        let (direct, column_values, fingerprints, ran) = if kind == StatementKind::AlterTable {
            let (direct, settings) = tokio::try_join!(self.resolve_targets(statement), self.settings())?;
            report.settings = Some(settings);
            // An ALTER TABLE may drop or retype columns: count and fingerprint their values while they are as they
            // were.
            report.values_too_long =
                self.values_too_long(&direct, &crate::plan::length_limits(&statement.raw.text)).await?;
            let (column_values, fingerprints) = (self.column_values(&direct).await?, self.fingerprints(&direct).await?);
            let (_, ran) = self.run_timed(statement, async { Ok(()) }, with_catalog).await?;
            (direct, column_values, fingerprints, ran)
        } else {
            // The reads before the statement go out in the round trip that prepares it.
            let before = async { tokio::try_join!(self.resolve_targets(statement), self.settings()) };
            let ((direct, settings), ran) = self.run_timed(statement, before, with_catalog).await?;
            report.settings = Some(settings);
            (direct, HashMap::new(), Default::default(), ran)
        };
        report.duration_ms = Some((ran.took.as_secs_f64() * 1e6).round() / 1e3);
        match ran.result {
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
        let after = match ran.after {
            Some(after) => after?,
            None => self.read_after(with_catalog).await?,
        };
        if after.transaction_start != self.transaction_start {
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
        self.measure(report, kind, &direct, &column_values, after).await?;
        self.values_changed(report, &fingerprints).await?;
        Ok(None)
    }

    /// Runs a statement: prepares it in one round trip with `before` (reads the server runs first; their failure is
    /// measuring's, and the statement is not run), then runs it, timed from sending it to its answer, with what is
    /// read after it ([`Run::read_after`], `with_catalog`) in the same round trip: the server reads it once the
    /// statement is done. Not after a COPY, whose data or rows follow its request: that is read by the caller.
    async fn run_timed<T>(
        &self,
        statement: &PlanStatement,
        before: impl std::future::Future<Output = Result<T>>,
        with_catalog: bool,
    ) -> Result<(T, Ran)> {
        let (before, ready) = tokio::join!(before, self.session.ready(&statement.raw));
        let before = before?;
        let started = Instant::now();
        let ran = match ready {
            Ok(Ready::Copy) => {
                let result = self.session.run_ready(&statement.raw, Ready::Copy).await;
                Ran { result, took: started.elapsed(), after: None }
            }
            Ok(ready) => {
                let run = async {
                    let result = self.session.run_ready(&statement.raw, ready).await;
                    (result, started.elapsed())
                };
                let ((result, took), after) = tokio::join!(run, self.read_after(with_catalog));
                Ran { result, took, after: Some(after) }
            }
            Err(e) => Ran { result: Err(e), took: started.elapsed(), after: None },
        };
        Ok((before, ran))
    }

    /// Compares the tables with their state before the statement and reads what was dropped.
    async fn measure(
        &mut self,
        report: &mut StatementReport,
        statement_kind: StatementKind,
        direct: &HashSet<Oid>,
        column_values: &HashMap<String, u64>,
        read: probe::After,
    ) -> Result<()> {
        let after = read.tables;
        let dropped = self.dropped(&read.dropped);
        report.schema_changes = self.schema_changes(&read.changed);
        // A statement that cannot change the catalog by itself left it as it was, unless a function it called changed
        // it, which the event triggers logged.
        let catalog = match read.catalog {
            Some(catalog) => Some(catalog),
            None if !dropped.is_empty() || !report.schema_changes.is_empty() => Some(self.read_catalog().await?),
            None => None,
        };
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
        report.locks = self.new_locks(&read.locks);
        report.locks_held = self.locks_held(report.index);
        if let Some(catalog) = &catalog {
            let (columns, constraints) = self.catalog(catalog);
            report.column_changes =
                catalog::column_changes(&self.columns, &columns, &self.existing, &self.known_rows, &self.unknown);
            // A partitioned table's own constraints too, with its partitions' rows.
            let tables: HashSet<Oid> = self.existing.iter().chain(self.other_tables.keys()).copied().collect();
            let rows = |table: Oid| self.rows_of(table);
            report.constraint_changes = catalog::constraint_changes(&self.constraints, &constraints, &tables, &rows);
            for oid in constraints.keys().filter(|oid| !self.constraints.contains_key(oid)) {
                self.created_by.entry(*oid).or_insert(report.index);
            }
            (self.columns, self.constraints) = (columns, constraints);
        }
        let mut changes = effects::compare(&self.tables, &after, &mut self.known_rows, &recounted, direct);
        if statement_kind == StatementKind::Update {
            // The partitions of the partitioned tables it names, as they were before it.
            let partitions: HashSet<String> = direct
                .iter()
                .filter_map(|oid| self.other_tables.get(oid).and_then(Option::as_ref))
                .flatten()
                .filter_map(|leaf| self.tables.get(leaf).map(|t| t.name.clone()))
                .collect();
            let updated = report.rows_affected.unwrap_or(0);
            let moved = effects::moves_as_updates(&mut changes.effects, &partitions, updated);
            if moved > 0 && report.note.is_none() {
                report.note = Some(format!(
                    "{moved} row(s) moved to another partition, counted as updated: Postgres deletes each from its \
                     partition and inserts it into the new one"
                ));
            }
        }
        self.tables = after;
        if matches!(statement_kind, StatementKind::Do | StatementKind::Call) {
            self.code_deletes_direct(&mut changes.effects).await?;
        }
        report.rewritten_tables = changes.rewritten;
        report.dropped_objects =
            effects::dropped_objects(&dropped, &changes.dropped_rows, column_values, &self.unknown);
        privileges_named(&mut report.schema_changes, &report.sql);
        report.functions_called = self.functions_called(&read.calls);
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
        report.rules_fired = self.rules_fired(&written);
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

/// Postgres's error, positioned in the plan.
fn statement_error(statement: &PlanStatement, db: &tokio_postgres::error::DbError) -> StatementError {
    let (line, column) = match db.position() {
        Some(ErrorPosition::Original(p)) => script_position(&statement.raw, *p as usize),
        _ => (statement.raw.line, statement.raw.column),
    };
    // Postgres's fields as for the COMMIT's error, mapped once there.
    let CommitError { sqlstate, message, detail, hint, constraint_name, table_name, predicted } = commit_error_of(db);
    StatementError {
        sqlstate,
        message,
        detail,
        hint,
        line,
        column,
        constraint_name,
        table_name,
        column_name: db.column().map(str::to_owned),
        predicted,
    }
}

/// The error of the plan's final COMMIT, with Postgres's fields (a statement's error has these too, and its place).
fn commit_error_of(db: &tokio_postgres::error::DbError) -> CommitError {
    CommitError {
        sqlstate: Some(db.code().code().to_owned()),
        message: crate::text::message_without_row_values(db.code().code(), db.message()),
        detail: db.detail().map(crate::text::without_row_values),
        hint: db.hint().map(str::to_owned),
        constraint_name: db.constraint().map(str::to_owned),
        table_name: db.table().map(|t| db.schema().map_or_else(|| t.to_owned(), |s| format!("{s}.{t}"))),
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
    let parts = crate::text::split_name(name).unwrap_or_else(|| vec![name.to_owned()]);
    parts.iter().map(|part| crate::text::quote_ident(part)).collect::<Vec<_>>().join(".")
}
