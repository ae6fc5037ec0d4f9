//! The plan's own transaction control, and statements that cannot run inside a transaction block.
//!
//! The dry-run runs the whole plan inside one transaction of its own, which it rolls back. Inside it:
//! - the plan's `BEGIN` ... `COMMIT` become a savepoint that is released, so what the block did stays (as it would be
//!   committed); `BEGIN` ... `ROLLBACK` roll back to that savepoint, so what the block did is gone — those
//!   statements are reported with `rolled_back: true` and count towards neither totals nor verdict;
//! - the plan's COMMIT of a block that ran `ALTER TYPE ... ADD VALUE` commits for real, as below, since the new value
//!   can be used only once committed;
//! - a statement that Postgres refuses inside a transaction block (`CREATE INDEX CONCURRENTLY`, `VACUUM`, ...) runs
//!   for real, outside it, on this run's own database: the plan's earlier statements are committed there first.
//!   That database is thrown away after the run and is never dry-run again.

use std::sync::atomic::Ordering;

use super::{queries, refusal, Run};
use crate::error::{Error, Result};
use crate::plan::{PlanStatement, StatementKind};
use crate::report::{FunctionCalled, StatementReport, Status};

const BLOCK: &str = "pgshadow_plan_block";

/// What the executor does with a statement.
pub(super) enum Handling {
    /// Sent as it is, inside the dry-run's transaction.
    Send,
    /// Handled here; nothing more to do.
    Done,
    /// Handled here; the plan rolled back the statements from this report index on.
    RolledBack { since: usize },
    /// Sent outside any transaction block.
    OwnTransaction,
}

impl Run<'_> {
    /// Handles the plan's transaction control; says how to treat any other statement.
    pub(super) async fn transaction_control(
        &mut self,
        statement: &PlanStatement,
        report: &mut StatementReport,
    ) -> Result<Handling> {
        let kind = statement.classification.kind;
        let in_block = self.block_start.is_some();
        if in_block && crate::plan::adds_enum_value(&statement.raw.text) {
            self.adds_enum_value = true;
        }
        let (sql, note, handling) = match (kind, in_block) {
            (StatementKind::Begin, false) => {
                self.block_start = Some(report.index);
                self.adds_enum_value = false;
                (Some(format!("SAVEPOINT {BLOCK}")), "the plan's transaction starts here", Handling::Done)
            }
            (StatementKind::Commit, true) => {
                self.block_start = None;
                self.unchecked = false;
                let (failed, called) = self.check_deferred(&format!("RELEASE SAVEPOINT {BLOCK}")).await?;
                report.functions_called = called;
                // Only the deferred checks of the plan's COMMIT fail with an error of the server: the plan's COMMIT
                // fails there, and the run stops.
                if let Some(db) = failed.as_ref().and_then(|e| e.as_db_error()) {
                    report.status = Status::Error;
                    report.error = Some(super::statement_error(statement, db));
                    report.note = Some("the plan commits its transaction here, and a deferred constraint fails".into());
                    return Ok(Handling::Done);
                }
                if std::mem::take(&mut self.adds_enum_value) {
                    self.commit_for_real().await?;
                    let note = "the plan commits its transaction here; so does the dry-run, in this run's own \
                                database (thrown away afterwards), since a value ALTER TYPE ... ADD VALUE adds can be \
                                used only once committed";
                    (None, note, Handling::Done)
                } else {
                    (None, "the plan commits its transaction here", Handling::Done)
                }
            }
            (StatementKind::Rollback, true) => {
                let since = self.block_start.take().unwrap_or(report.index);
                let sql = format!("ROLLBACK TO SAVEPOINT {BLOCK}; RELEASE SAVEPOINT {BLOCK}");
                (Some(sql), "the plan rolls back its transaction here", Handling::RolledBack { since })
            }
            (StatementKind::Begin, true) => (None, "ignored: a transaction is already in progress", Handling::Done),
            (StatementKind::Commit | StatementKind::Rollback, false) => {
                (None, "ignored: no transaction of the plan is in progress", Handling::Done)
            }
            (StatementKind::PrepareTransaction, _) => {
                report.status = Status::Error;
                report.error = Some(refusal(statement, "pgshadow cannot dry-run two-phase commit"));
                return Ok(Handling::Done);
            }
            _ if needs_own_transaction(&statement.raw.text) => {
                if in_block {
                    // Postgres refuses it there too: send it and let Postgres say so.
                    return Ok(Handling::Send);
                }
                return Ok(Handling::OwnTransaction);
            }
            _ => return Ok(Handling::Send),
        };
        if let Some(sql) = sql {
            self.session
                .client()
                .batch_execute(&sql)
                .await
                .map_err(|e| Error::pg("emulating the plan's transaction", e))?;
        }
        if matches!(handling, Handling::RolledBack { .. }) {
            // Counters keep rolled-back changes: count every table again.
            self.known_rows = self.recount(self.tables.keys().copied()).await?;
        }
        report.status = Status::Ok;
        report.note = Some(note.to_owned());
        Ok(handling)
    }

    /// Commits the dry-run's transaction for real and begins the next: at the plan's COMMIT of a block that ran
    /// `ALTER TYPE ... ADD VALUE`, since a statement may use the new value only once it is committed (55P04). What the
    /// plan did so far stays in this run's own database, which is thrown away afterwards, never dry-run again.
    async fn commit_for_real(&mut self) -> Result<()> {
        self.database.spoiled.store(true, Ordering::SeqCst);
        let client = self.session.client();
        client.batch_execute("COMMIT").await.map_err(|e| Error::pg("committing the plan's transaction", e))?;
        self.begin_again().await.map(|_| ())
    }

    /// Begins the dry-run's transaction again after it was committed, and reads the state the next statement starts
    /// from: the counters start again, and no lock is held any more.
    async fn begin_again(&mut self) -> Result<super::probe::After> {
        let client = self.session.client();
        client.batch_execute("BEGIN").await.map_err(|e| Error::pg("starting the dry-run transaction again", e))?;
        let start = self.rows(queries::TRANSACTION_START, &[], "reading the transaction").await?;
        self.transaction_start = super::probe::one(&start, "reading the transaction")?.get(0);
        let mut after = self.read_after(true).await?;
        self.tables = std::mem::take(&mut after.tables);
        self.locks = self.locks_of(&after.locks);
        self.lock_since.clear();
        self.functions_called(&after.calls);
        if let Some(catalog) = &after.catalog {
            (self.columns, self.constraints) = self.catalog(catalog);
        }
        Ok(after)
    }

    /// Commits what the plan did so far into this run's database, runs the statement outside a transaction block,
    /// and opens a new transaction for the rest of the plan.
    pub(super) async fn run_outside_transaction(
        &mut self,
        statement: &PlanStatement,
        report: &mut StatementReport,
    ) -> Result<()> {
        let client = self.session.client();
        self.database.spoiled.store(true, Ordering::SeqCst);
        client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| Error::pg("committing before a statement that needs its own transaction", e))?;
        let started = std::time::Instant::now();
        let result = self.session.run(&statement.raw).await;
        report.duration_ms = Some((started.elapsed().as_secs_f64() * 1e6).round() / 1e3);
        let after = self.begin_again().await?;
        match result {
            Ok(rows) => {
                report.status = Status::Ok;
                report.rows_affected = Some(rows);
                report.note = Some(
                    "run outside a transaction block, as Postgres requires: the statements before it were committed in \
                     this run's own database, which is thrown away afterwards"
                        .to_owned(),
                );
            }
            Err(e) => match e.as_db_error() {
                Some(db) => {
                    report.status = Status::Error;
                    report.error = Some(super::statement_error(statement, db));
                }
                None => return Err(Error::pg(format!("running statement {}", report.index), e)),
            },
        }
        let dropped = self.dropped(&after.dropped);
        report.dropped_objects =
            super::effects::dropped_objects(&dropped, &Default::default(), &Default::default(), &self.unknown);
        report.rows_known = report.dropped_objects.iter().all(|o| o.rows_known);
        report.schema_changes = self.schema_changes(&after.changed);
        Ok(())
    }
}

/// A savepoint the deferred checks of a COMMIT run in.
const CHECK: &str = "pgshadow_commit_check";

impl Run<'_> {
    /// Checks the plan's deferred constraints as a COMMIT does, reads the functions called by then, and sends `then`
    /// (`RELEASE SAVEPOINT` of the plan's block at its own COMMIT, `ROLLBACK` at its end), all in one round trip.
    /// Returns the check's error of the server, if it failed, and the functions called since the last read.
    ///
    /// `SET CONSTRAINTS ALL IMMEDIATE` fires every pending deferred check, and fails as the COMMIT would. It also
    /// leaves every deferrable constraint immediate for the rest of the dry-run's transaction, while in production the
    /// plan's next transaction starts with each as it was declared. `SET CONSTRAINTS ALL DEFERRED` afterwards would
    /// defer the `DEFERRABLE INITIALLY IMMEDIATE` ones too, and SQL has no way back to the declared modes but one:
    /// rolling back a subtransaction restores the modes as they were when it started (PostgreSQL saves them in it).
    /// So the check runs in a savepoint that is rolled back, whether it passed or failed: the modes are the block's
    /// again (the declared ones, unless the plan set some itself), and the transaction is not left aborted. Rolling
    /// back also marks the checks it fired pending again: they run once more where the plan commits next, or at its
    /// end, where a row the plan deleted or changed since is skipped, as PostgreSQL skips a check of a row no longer
    /// there; and what a constraint trigger wrote when it fired here is undone.
    ///
    /// A constraint trigger's function fires only here: the calls read after the check (a transaction's function
    /// counts outlive a rolled-back savepoint) feed whether the session may serve another run
    /// ([`Run::functions_called`]). When a deferred trigger ended its own session (`pg_terminate_backend`), the server
    /// rolled the transaction back with it, and nothing more is read.
    pub(super) async fn check_deferred(
        &mut self,
        then: &str,
    ) -> Result<(Option<tokio_postgres::Error>, Vec<FunctionCalled>)> {
        let checked = self.send_deferred_check(then).await;
        self.deferred_checked(checked)
    }

    /// The round trip of [`Run::check_deferred`], awaited with other reads where the dry-run ends
    /// ([`super::run_plan_in`]).
    pub(super) async fn send_deferred_check(&self, then: &str) -> DeferredCheck {
        let client = self.session.client();
        let check = format!("SAVEPOINT {CHECK}; SET CONSTRAINTS ALL IMMEDIATE");
        let undo = format!("ROLLBACK TO SAVEPOINT {CHECK}; RELEASE SAVEPOINT {CHECK}");
        let (checked, undone, calls, then) = tokio::join!(
            client.batch_execute(&check),
            client.batch_execute(&undo),
            self.rows(queries::FUNCTION_CALLS, &[], "reading the functions called"),
            client.batch_execute(then),
        );
        DeferredCheck { checked, undone, calls, then }
    }

    /// What [`Run::send_deferred_check`] read: the check's error of the server, if it failed, and the functions
    /// called since the last read.
    pub(super) fn deferred_checked(
        &mut self,
        read: DeferredCheck,
    ) -> Result<(Option<tokio_postgres::Error>, Vec<FunctionCalled>)> {
        let context = "checking the plan's deferred constraints";
        let failed = match read.checked {
            Ok(()) => None,
            Err(e) if e.as_db_error().is_some() => Some(e),
            Err(e) => return Err(Error::pg(context, e)),
        };
        if failed.is_some() && self.session.client().is_closed() {
            return Ok((failed, Vec::new()));
        }
        read.undone.and(read.then).map_err(|e| Error::pg(context, e))?;
        Ok((failed, self.functions_called(&read.calls?)))
    }
}

/// The answers of the round trip that checks the plan's deferred constraints ([`Run::send_deferred_check`]).
pub(super) struct DeferredCheck {
    checked: std::result::Result<(), tokio_postgres::Error>,
    undone: std::result::Result<(), tokio_postgres::Error>,
    calls: Result<Vec<tokio_postgres::Row>>,
    then: std::result::Result<(), tokio_postgres::Error>,
}

/// Statements Postgres refuses inside a transaction block: `... CONCURRENTLY` index builds and drops, `REINDEX`
/// of a schema, database or the system catalogs, `VACUUM`, and database, tablespace and system-wide commands.
pub fn needs_own_transaction(text: &str) -> bool {
    let words: Vec<String> = text.split_whitespace().take(6).map(|w| w.to_ascii_lowercase()).collect();
    let word = |i: usize| words.get(i).map_or("", String::as_str);
    match word(0) {
        "vacuum" => true,
        "create" | "drop" => {
            words.iter().any(|w| w == "concurrently") || matches!(word(1), "database" | "tablespace" | "subscription")
        }
        "reindex" => {
            words.iter().any(|w| w == "concurrently" || w == "(concurrently)")
                || matches!(word(1), "schema" | "database" | "system")
        }
        "alter" => word(1) == "system",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::needs_own_transaction;

    #[test]
    fn statements_that_need_their_own_transaction_are_recognised() {
        for sql in [
            "CREATE INDEX CONCURRENTLY i ON t (a)",
            "create unique index concurrently if not exists i on t (a)",
            "DROP INDEX CONCURRENTLY i",
            "REINDEX INDEX CONCURRENTLY i",
            "REINDEX DATABASE app",
            "VACUUM (ANALYZE) t",
            "CREATE DATABASE d",
            "ALTER SYSTEM SET work_mem = '8MB'",
        ] {
            assert!(needs_own_transaction(sql), "{sql}");
        }
        for sql in
            ["CREATE INDEX i ON t (a)", "REINDEX TABLE t", "ALTER TABLE t ADD COLUMN concurrently int", "SELECT 1"]
        {
            assert!(!needs_own_transaction(sql), "{sql}");
        }
    }
}
