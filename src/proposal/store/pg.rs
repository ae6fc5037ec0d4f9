//! The PostgreSQL store: a team's own database, its tables in a schema `pgshadow`, one connection per transaction
//! (TLS and `PG*` variables as for any URL pgshadow takes). Write transactions lock the audit table first (`SHARE ROW
//! EXCLUSIVE`, which only readers get past), which serializes writers across processes and machines; migrations run
//! under a transaction-level advisory lock.

use postgres::{Client, Transaction};

use super::audit::Entry;
use super::migrations;
use super::{Decision, Outcome, Proposal, ProposalId, Record, Row, State, Tx};
use crate::error::{Error, Result};

/// The advisory lock key migrations run under: "pgshadow" in ASCII.
const MIGRATION_LOCK: i64 = 0x7067_7368_6164_6f77;

/// A PostgreSQL store.
#[derive(Debug, Clone)]
pub struct Postgres {
    url: String,
}

impl Postgres {
    /// Connects to the store at `url` and migrates it.
    pub(super) fn open(url: &str) -> Result<Postgres> {
        let store = Postgres { url: url.to_owned() };
        let mut client = store.connect()?;
        let fail = |e| store.error("migrating", e);
        let mut tx = client.transaction().map_err(fail)?;
        tx.execute("SELECT pg_catalog.pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(fail)?;
        tx.batch_execute(
            "CREATE SCHEMA IF NOT EXISTS pgshadow; \
             CREATE TABLE IF NOT EXISTS pgshadow.schema_version (version integer NOT NULL)",
        )
        .map_err(fail)?;
        let version: i32 =
            tx.query_opt("SELECT version FROM pgshadow.schema_version", &[]).map_err(fail)?.map_or(0, |r| r.get(0));
        if version as usize > migrations::MIGRATIONS.len() {
            return Err(Error::Store { store: store.shown(), message: migrations::too_new(i64::from(version)) });
        }
        for number in (version as usize + 1)..=migrations::MIGRATIONS.len() {
            tx.batch_execute(&migrations::sql(number, "pgshadow.")).map_err(fail)?;
        }
        let latest = migrations::MIGRATIONS.len() as i32;
        tx.execute("DELETE FROM pgshadow.schema_version", &[]).map_err(fail)?;
        tx.execute("INSERT INTO pgshadow.schema_version VALUES ($1)", &[&latest]).map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(store)
    }

    pub(super) fn shown(&self) -> String {
        crate::text::redact_url(&self.url)
    }

    fn error(&self, doing: &str, e: postgres::Error) -> Error {
        Error::Store { store: self.shown(), message: format!("{doing}: {}", crate::error::with_causes(&e)) }
    }

    fn connect(&self) -> Result<Client> {
        let remote = crate::shadow::server::config_from_url(&self.url)?;
        let config = postgres::Config::from(remote.config);
        let client = match remote.tls {
            Some(tls) => config.connect(tls.0),
            None => config.connect(postgres::NoTls),
        };
        client.map_err(|e| self.error("connecting", e))
    }

    pub(super) fn transaction<T>(&self, write: bool, work: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        let mut client = self.connect()?;
        let mut tx = client.transaction().map_err(|e| self.error("starting a transaction", e))?;
        if write {
            tx.batch_execute("LOCK TABLE pgshadow.audit IN SHARE ROW EXCLUSIVE MODE")
                .map_err(|e| self.error("taking the store's write lock", e))?;
        }
        let mut handle = PgTx { tx, shown: self.shown() };
        let result = work(&mut handle)?;
        handle.tx.commit().map_err(|e| self.error("committing", e))?;
        Ok(result)
    }
}

struct PgTx<'c> {
    tx: Transaction<'c>,
    shown: String,
}

impl PgTx<'_> {
    fn error(&self, doing: &str, e: postgres::Error) -> Error {
        Error::Store { store: self.shown.clone(), message: format!("{doing}: {}", crate::error::with_causes(&e)) }
    }

    fn decisions(&mut self, id: ProposalId) -> Result<Vec<Decision>> {
        let rows = self
            .tx
            .query(
                "SELECT seq, reviewer, verdict, comment, at, plan_sha256, unguarded FROM pgshadow.decisions \
                 WHERE proposal_id = $1 ORDER BY seq",
                &[&id],
            )
            .map_err(|e| self.error("reading decisions", e))?;
        Ok(rows
            .iter()
            .map(|r| Decision {
                seq: i64::from(r.get::<_, i32>(0)),
                reviewer: r.get(1),
                verdict: super::verdict_of(r.get(2)),
                comment: r.get(3),
                at: r.get(4),
                plan_sha256: r.get(5),
                unguarded: r.get::<_, i32>(6) != 0,
            })
            .collect())
    }

    fn rows(&mut self, filter: &str, param: &(dyn postgres::types::ToSql + Sync)) -> Result<Vec<(ProposalId, Row)>> {
        let sql = format!(
            "SELECT id, body, state, approvals_required, expires_at, outcome FROM pgshadow.proposals WHERE {filter} \
             ORDER BY id DESC"
        );
        let rows = self.tx.query(sql.as_str(), &[param]).map_err(|e| self.error("reading proposals", e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let row = Row {
                    body: r.get(1),
                    state: r.get(2),
                    approvals_required: i64::from(r.get::<_, i32>(3)),
                    expires_at: r.get(4),
                    outcome: r.get(5),
                };
                (r.get(0), row)
            })
            .collect())
    }
}

impl Tx for PgTx<'_> {
    fn record(&mut self, id: ProposalId) -> Result<Option<Record>> {
        let Some((_, row)) = self.rows("id = $1", &id)?.into_iter().next() else {
            return Ok(None);
        };
        let decisions = self.decisions(id)?;
        Ok(Some(row.record(decisions, &self.shown)?))
    }

    fn records(&mut self, state: Option<State>) -> Result<Vec<Record>> {
        let rows = match state {
            Some(state) => self.rows("state = $1", &state.as_str())?,
            None => self.rows("$1", &true)?,
        };
        let mut records = Vec::with_capacity(rows.len());
        for (id, row) in rows {
            let decisions = self.decisions(id)?;
            records.push(row.record(decisions, &self.shown)?);
        }
        Ok(records)
    }

    fn next_id(&mut self) -> Result<ProposalId> {
        let row = self
            .tx
            .query_one("SELECT COALESCE(MAX(id), 0) + 1 FROM pgshadow.proposals", &[])
            .map_err(|e| self.error("numbering a proposal", e))?;
        Ok(row.get(0))
    }

    fn insert_proposal(&mut self, p: &Proposal, approvals_required: usize) -> Result<()> {
        let body = serde_json::to_string(p).expect("a proposal serializes");
        let required = i32::try_from(approvals_required).unwrap_or(i32::MAX);
        self.tx
            .execute(
                "INSERT INTO pgshadow.proposals (id, created_at, proposer, target, plan_sha256, replaces, body, state, \
                 approvals_required) VALUES ($1, $2, $3, $4, $5, $6, $7, 'proposed', $8)",
                &[&p.id, &p.created_at, &p.proposer, &p.target, &p.plan.sha256, &p.replaces, &body, &required],
            )
            .map_err(|e| self.error("storing a proposal", e))?;
        Ok(())
    }

    fn insert_decision(&mut self, id: ProposalId, d: &Decision) -> Result<()> {
        let seq = i32::try_from(d.seq).unwrap_or(i32::MAX);
        self.tx
            .execute(
                "INSERT INTO pgshadow.decisions (proposal_id, seq, reviewer, verdict, comment, at, plan_sha256, \
                 unguarded) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &id,
                    &seq,
                    &d.reviewer,
                    &d.verdict.as_str(),
                    &d.comment,
                    &d.at,
                    &d.plan_sha256,
                    &i32::from(d.unguarded),
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
                "UPDATE pgshadow.proposals SET state = $2, expires_at = $3, outcome = COALESCE($4, outcome) \
                 WHERE id = $1",
                &[&id, &state.as_str(), &expires_at, &outcome],
            )
            .map_err(|e| self.error("changing a proposal's state", e))?;
        Ok(())
    }

    fn audit_head(&mut self) -> Result<(i64, String)> {
        let row = self
            .tx
            .query_opt("SELECT seq, sha256 FROM pgshadow.audit ORDER BY seq DESC LIMIT 1", &[])
            .map_err(|e| self.error("reading the audit log", e))?;
        Ok(row.map_or((0, super::audit::GENESIS.to_owned()), |r| (r.get(0), r.get(1))))
    }

    fn insert_audit(&mut self, e: &Entry) -> Result<()> {
        let f = &e.fact;
        let fingerprints = serde_json::to_string(&f.fingerprints).expect("fingerprints serialize");
        let counts = f.counts.to_string();
        self.tx
            .execute(
                "INSERT INTO pgshadow.audit (seq, event, proposal_id, actor, at, plan_sha256, fingerprints, counts, \
                 detail, prev_sha256, sha256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &[
                    &e.seq,
                    &f.event.as_str(),
                    &f.proposal,
                    &f.actor,
                    &f.at,
                    &f.plan_sha256,
                    &fingerprints,
                    &counts,
                    &f.detail,
                    &e.prev_sha256,
                    &e.sha256,
                ],
            )
            .map_err(|err| self.error("appending to the audit log", err))?;
        Ok(())
    }

    fn audit(&mut self) -> Result<Vec<Entry>> {
        let rows = self
            .tx
            .query(
                "SELECT seq, event, proposal_id, actor, at, plan_sha256, fingerprints, counts, detail, prev_sha256, \
                 sha256 FROM pgshadow.audit ORDER BY seq",
                &[],
            )
            .map_err(|e| self.error("reading the audit log", e))?;
        Ok(rows
            .iter()
            .map(|r| {
                super::entry_of(
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                    r.get(7),
                    r.get(8),
                    r.get(9),
                    r.get(10),
                )
            })
            .collect())
    }
}
