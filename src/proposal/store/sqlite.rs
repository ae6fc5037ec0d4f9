//! The SQLite store: one database file, opened anew for each transaction (so that any number of processes can share
//! it), in WAL mode, waiting up to 30 s for another writer. Write transactions are `BEGIN IMMEDIATE`: they take the
//! file's write lock before reading anything, which serializes them.

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::audit::Entry;
use super::migrations;
use super::{Decision, Outcome, Proposal, ProposalId, Record, Row, State, Tx};
use crate::error::{Error, Result};

/// An SQLite store.
#[derive(Debug, Clone)]
pub struct Sqlite {
    path: PathBuf,
}

impl Sqlite {
    /// Opens (making it and its directory if missing) the store at `path` and migrates it.
    pub(super) fn open(path: PathBuf) -> Result<Sqlite> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let store = Sqlite { path };
        let mut connection = store.connect()?;
        connection.pragma_update(None, "journal_mode", "WAL").map_err(|e| store.error("setting WAL mode", e))?;
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| store.error("migrating", e))?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            .map_err(|e| store.error("migrating", e))?;
        let version: Option<i64> = tx
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .optional()
            .map_err(|e| store.error("reading the schema version", e))?;
        let version = version.unwrap_or(0);
        if version > migrations::MIGRATIONS.len() as i64 {
            return Err(Error::Store { store: store.shown(), message: migrations::too_new(version) });
        }
        for number in (version as usize + 1)..=migrations::MIGRATIONS.len() {
            tx.execute_batch(&migrations::sql(number, "")).map_err(|e| store.error("migrating", e))?;
        }
        tx.execute("DELETE FROM schema_version", []).map_err(|e| store.error("migrating", e))?;
        tx.execute("INSERT INTO schema_version VALUES (?1)", [migrations::MIGRATIONS.len() as i64])
            .map_err(|e| store.error("migrating", e))?;
        tx.commit().map_err(|e| store.error("migrating", e))?;
        Ok(store)
    }

    pub(super) fn shown(&self) -> String {
        self.path.display().to_string()
    }

    fn error(&self, doing: &str, e: rusqlite::Error) -> Error {
        Error::Store { store: self.shown(), message: format!("{doing}: {e}") }
    }

    fn connect(&self) -> Result<Connection> {
        let connection = Connection::open(&self.path).map_err(|e| self.error("opening", e))?;
        connection.busy_timeout(Duration::from_secs(30)).map_err(|e| self.error("opening", e))?;
        connection.pragma_update(None, "foreign_keys", "ON").map_err(|e| self.error("opening", e))?;
        Ok(connection)
    }

    pub(super) fn transaction<T>(&self, write: bool, work: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        let mut connection = self.connect()?;
        let behavior = if write { TransactionBehavior::Immediate } else { TransactionBehavior::Deferred };
        let tx = connection.transaction_with_behavior(behavior).map_err(|e| self.error("starting a transaction", e))?;
        let mut handle = SqliteTx { tx, shown: self.shown() };
        let result = work(&mut handle)?;
        handle.tx.commit().map_err(|e| self.error("committing", e))?;
        Ok(result)
    }
}

struct SqliteTx<'c> {
    tx: rusqlite::Transaction<'c>,
    shown: String,
}

impl SqliteTx<'_> {
    fn error(&self, doing: &str, e: rusqlite::Error) -> Error {
        Error::Store { store: self.shown.clone(), message: format!("{doing}: {e}") }
    }

    fn decisions(&self, id: ProposalId) -> Result<Vec<Decision>> {
        let fail = |e| self.error("reading decisions", e);
        let mut statement = self
            .tx
            .prepare(
                "SELECT seq, reviewer, verdict, comment, at, plan_sha256, unguarded FROM decisions WHERE proposal_id = ?1 \
                 ORDER BY seq",
            )
            .map_err(fail)?;
        let rows = statement
            .query_map([id], |r| {
                Ok(Decision {
                    seq: r.get(0)?,
                    reviewer: r.get(1)?,
                    verdict: super::verdict_of(&r.get::<_, String>(2)?),
                    comment: r.get(3)?,
                    at: r.get(4)?,
                    plan_sha256: r.get(5)?,
                    unguarded: r.get::<_, i64>(6)? != 0,
                })
            })
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }

    fn rows(&self, filter: &str, param: &dyn rusqlite::ToSql) -> Result<Vec<(ProposalId, Row)>> {
        let fail = |e| self.error("reading proposals", e);
        let sql = format!(
            "SELECT id, body, state, approvals_required, expires_at, outcome FROM proposals WHERE {filter} \
             ORDER BY id DESC"
        );
        let mut statement = self.tx.prepare(&sql).map_err(fail)?;
        let rows = statement
            .query_map([param], |r| {
                Ok((
                    r.get(0)?,
                    Row {
                        body: r.get(1)?,
                        state: r.get(2)?,
                        approvals_required: r.get(3)?,
                        expires_at: r.get(4)?,
                        outcome: r.get(5)?,
                    },
                ))
            })
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }
}

impl Tx for SqliteTx<'_> {
    fn record(&mut self, id: ProposalId) -> Result<Option<Record>> {
        let Some((_, row)) = self.rows("id = ?1", &id)?.into_iter().next() else {
            return Ok(None);
        };
        Ok(Some(row.record(self.decisions(id)?, &self.shown)?))
    }

    fn records(&mut self, state: Option<State>) -> Result<Vec<Record>> {
        let rows = match state {
            Some(state) => self.rows("state = ?1", &state.as_str())?,
            None => self.rows("?1", &true)?,
        };
        rows.into_iter().map(|(id, row)| row.record(self.decisions(id)?, &self.shown)).collect()
    }

    fn next_id(&mut self) -> Result<ProposalId> {
        self.tx
            .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM proposals", [], |r| r.get(0))
            .map_err(|e| self.error("numbering a proposal", e))
    }

    fn insert_proposal(&mut self, p: &Proposal, approvals_required: usize) -> Result<()> {
        let body = serde_json::to_string(p).expect("a proposal serializes");
        self.tx
            .execute(
                "INSERT INTO proposals (id, created_at, proposer, target, plan_sha256, replaces, body, state, \
                 approvals_required) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'proposed', ?8)",
                params![
                    p.id,
                    p.created_at,
                    p.proposer,
                    p.target,
                    p.plan.sha256,
                    p.replaces,
                    body,
                    approvals_required as i64
                ],
            )
            .map_err(|e| self.error("storing a proposal", e))?;
        Ok(())
    }

    fn insert_decision(&mut self, id: ProposalId, d: &Decision) -> Result<()> {
        self.tx
            .execute(
                "INSERT INTO decisions (proposal_id, seq, reviewer, verdict, comment, at, plan_sha256, unguarded) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    d.seq,
                    d.reviewer,
                    d.verdict.as_str(),
                    d.comment,
                    d.at,
                    d.plan_sha256,
                    i64::from(d.unguarded)
                ],
            )
            .map_err(|e| self.error("storing a decision", e))?;
        Ok(())
    }

    fn set_state(
        &mut self,
        id: ProposalId,
        state: State,
        expires_at: Option<&str>,
        outcome: Option<&Outcome>,
    ) -> Result<()> {
        let outcome = outcome.map(|o| serde_json::to_string(o).expect("an outcome serializes"));
        self.tx
            .execute(
                "UPDATE proposals SET state = ?2, expires_at = ?3, outcome = COALESCE(?4, outcome) WHERE id = ?1",
                params![id, state.as_str(), expires_at, outcome],
            )
            .map_err(|e| self.error("changing a proposal's state", e))?;
        Ok(())
    }

    fn audit_head(&mut self) -> Result<(i64, String)> {
        let head = self
            .tx
            .query_row("SELECT seq, sha256 FROM audit ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(|e| self.error("reading the audit log", e))?;
        Ok(head.unwrap_or((0, super::audit::GENESIS.to_owned())))
    }

    fn insert_audit(&mut self, e: &Entry) -> Result<()> {
        let f = &e.fact;
        let fingerprints = serde_json::to_string(&f.fingerprints).expect("fingerprints serialize");
        self.tx
            .execute(
                "INSERT INTO audit (seq, event, proposal_id, actor, at, plan_sha256, fingerprints, counts, detail, \
                 prev_sha256, sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    e.seq,
                    f.event.as_str(),
                    f.proposal,
                    f.actor,
                    f.at,
                    f.plan_sha256,
                    fingerprints,
                    f.counts.to_string(),
                    f.detail,
                    e.prev_sha256,
                    e.sha256
                ],
            )
            .map_err(|err| self.error("appending to the audit log", err))?;
        Ok(())
    }

    fn audit(&mut self) -> Result<Vec<Entry>> {
        let fail = |e| self.error("reading the audit log", e);
        let mut statement = self
            .tx
            .prepare(
                "SELECT seq, event, proposal_id, actor, at, plan_sha256, fingerprints, counts, detail, prev_sha256, \
                 sha256 FROM audit ORDER BY seq",
            )
            .map_err(fail)?;
        let rows = statement
            .query_map([], |r| {
                Ok(super::entry_of(
                    r.get(0)?,
                    &r.get::<_, String>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    &r.get::<_, String>(6)?,
                    &r.get::<_, String>(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                ))
            })
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
    }
}
