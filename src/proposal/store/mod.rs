//! Where proposals, decisions and the audit log are kept: an embedded SQLite database by default (in pgshadow's data
//! directory, [`default_location`]), or a team's PostgreSQL database (`--store postgres://...`, `store =` in
//! serve.toml), whose tables live in a schema `pgshadow`.
//!
//! Both are the same store: one set of numbered `migrations`, and every operation below is one transaction written
//! once against `Tx`, which each backend implements. Every write transaction first takes the store's write lock
//! (SQLite's `BEGIN IMMEDIATE`, a lock on the audit table in PostgreSQL), so writers from any number of processes are
//! serialized: two reviewers racing to approve a proposal that needs one approval leave one decision, and the other is
//! refused; a `UNIQUE (proposal_id, seq)` and `UNIQUE (proposal_id, reviewer)` back that up in the schema.
//!
//! The operations are blocking; the `async` methods of [`Store`] run them on tokio's blocking threads.

mod migrations;
mod pg;
mod sqlite;

use std::path::PathBuf;

use serde::Serialize;

use super::audit::{self, Entry, Event, Fact};
use super::rules::{self, Transition};
use super::tokens::{Action, Caller};
use super::{Decision, Draft, Outcome, Proposal, ProposalId, Record, State, Verdict};
use crate::error::{Error, Result};

/// One transaction of a store. Reads see the transaction's own writes.
pub(crate) trait Tx {
    /// The proposal numbered `id` and where it stands.
    fn record(&mut self, id: ProposalId) -> Result<Option<Record>>;
    /// Every proposal (in `state`, when given), newest first.
    fn records(&mut self, state: Option<State>) -> Result<Vec<Record>>;
    /// The number the next proposal gets.
    fn next_id(&mut self) -> Result<ProposalId>;
    /// Stores a new proposal.
    fn insert_proposal(&mut self, proposal: &Proposal, approvals_required: usize) -> Result<()>;
    /// Stores a decision.
    fn insert_decision(&mut self, id: ProposalId, decision: &Decision) -> Result<()>;
    /// Moves a proposal to `state`.
    fn set_state(
        &mut self,
        id: ProposalId,
        state: State,
        expires_at: Option<&str>,
        outcome: Option<&Outcome>,
    ) -> Result<()>;
    /// The number and SHA-256 of the last audit entry (0 and [`audit::GENESIS`] when there is none).
    fn audit_head(&mut self) -> Result<(i64, String)>;
    /// Appends an audit entry.
    fn insert_audit(&mut self, entry: &Entry) -> Result<()>;
    /// Every audit entry, in order.
    fn audit(&mut self) -> Result<Vec<Entry>>;
}

/// A proposals store.
#[derive(Debug, Clone)]
pub enum Store {
    /// An SQLite database file.
    Sqlite(sqlite::Sqlite),
    /// A PostgreSQL database.
    Postgres(pg::Postgres),
}

/// A line of a list of proposals.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[schemars(rename = "ProposalSummary")]
pub struct Summary {
    /// The proposal's number.
    pub id: ProposalId,
    /// Where it stands.
    pub state: State,
    /// When it was proposed.
    pub created_at: String,
    /// Who proposed it.
    pub proposer: String,
    /// Why.
    pub intent: Option<String>,
    /// The target it is meant for.
    pub target: Option<String>,
    /// The dry-run's verdict.
    pub verdict: String,
    /// The plan's SHA-256.
    pub plan_sha256: String,
    /// The proposal it replaces.
    pub replaces: Option<ProposalId>,
    /// Distinct approvals so far.
    pub approvals: usize,
    /// Approvals it needs.
    pub approvals_required: usize,
    /// When its approval expires.
    pub expires_at: Option<String>,
}

impl Summary {
    fn of(record: &Record, now: jiff::Timestamp) -> Summary {
        let p = &record.proposal;
        Summary {
            id: p.id,
            state: rules::state_at(record, now),
            created_at: p.created_at.clone(),
            proposer: p.proposer.clone(),
            intent: p.intent.clone(),
            target: p.target.clone(),
            verdict: p.verdict.clone(),
            plan_sha256: p.plan.sha256.clone(),
            replaces: p.replaces,
            approvals: record.approvals,
            approvals_required: record.approvals_required,
            expires_at: record.expires_at.clone(),
        }
    }
}

/// Where the store is by default: `proposals.sqlite` in pgshadow's data directory, `$XDG_DATA_HOME/pgshadow`, else
/// `~/.local/share/pgshadow` (as root: `/var/lib/pgshadow`) — the data-directory twin of the cache directory
/// ([`crate::CacheOptions::default_dir`]): proposals and their audit log are records, not a cache.
pub fn default_location() -> Option<PathBuf> {
    let dir = if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        PathBuf::from(dir).join("pgshadow")
    } else if nix::unistd::geteuid().is_root() {
        PathBuf::from("/var/lib/pgshadow")
    } else {
        PathBuf::from(std::env::var_os("HOME").filter(|d| !d.is_empty())?).join(".local/share/pgshadow")
    };
    Some(dir.join("proposals.sqlite"))
}

impl Store {
    /// Opens the store at `location` when one is named (`--store`, a configuration's `store`), else the default one
    /// ([`default_location`]).
    pub async fn open_or_default(location: Option<&str>) -> Result<Store> {
        let location = match location {
            Some(location) => location.to_owned(),
            None => default_location()
                .ok_or_else(|| Error::Store {
                    store: "<default>".into(),
                    message: "no data directory: set HOME or XDG_DATA_HOME, or name a store (--store, or `store` \
                              in the configuration)"
                        .into(),
                })?
                .display()
                .to_string(),
        };
        Store::open(&location).await
    }

    /// Opens the store at `location` (a `postgres://` or `postgresql://` URL, else an SQLite file, made if missing)
    /// and brings its schema up to date.
    pub async fn open(location: &str) -> Result<Store> {
        let location = location.to_owned();
        blocking(move || {
            let store = if location.starts_with("postgres://") || location.starts_with("postgresql://") {
                Store::Postgres(pg::Postgres::open(&location)?)
            } else {
                Store::Sqlite(sqlite::Sqlite::open(PathBuf::from(location))?)
            };
            Ok(store)
        })
        .await
    }

    /// The store's location for messages (a URL without its password).
    pub fn shown(&self) -> String {
        match self {
            Store::Sqlite(s) => s.shown(),
            Store::Postgres(s) => s.shown(),
        }
    }

    /// Runs `work` in one transaction; `write` takes the store's write lock first.
    fn transaction<T>(&self, write: bool, work: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        match self {
            Store::Sqlite(s) => s.transaction(write, work),
            Store::Postgres(s) => s.transaction(write, work),
        }
    }

    /// Runs `work` in a transaction on a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        write: bool,
        work: impl FnOnce(&mut dyn Tx) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.clone();
        blocking(move || store.transaction(write, work)).await
    }

    /// Stores `draft` as a new proposal, numbered after the last one, and logs `proposed`.
    pub async fn propose(&self, draft: Draft) -> Result<Record> {
        self.run(true, move |tx| {
            if let Some(old) = draft.replaces {
                tx.record(old)?.ok_or(Error::UnknownProposal(old))?;
            }
            let id = tx.next_id()?;
            let now = jiff::Timestamp::now();
            let proposal = draft.into_proposal(id, rules::timestamp(now));
            let required = proposal.rules.required(proposal.fail_findings);
            tx.insert_proposal(&proposal, required)?;
            let counts = serde_json::to_value(&proposal.envelope.tables).expect("counts serialize");
            let detail = proposal.intent.clone();
            append(tx, Event::Proposed, &proposal, &proposal.proposer.clone(), counts, detail, now)?;
            tx.record(id)?.ok_or(Error::UnknownProposal(id))
        })
        .await
    }

    /// The proposal numbered `id`, with its state as of now (an approval past its time shows as expired).
    pub async fn get(&self, id: ProposalId) -> Result<Record> {
        let mut record = self.run(false, move |tx| tx.record(id)?.ok_or(Error::UnknownProposal(id))).await?;
        record.state = rules::state_at(&record, jiff::Timestamp::now());
        Ok(record)
    }

    /// Every proposal (in `state`, when given, as of now), newest first.
    pub async fn list(&self, state: Option<State>) -> Result<Vec<Summary>> {
        let now = jiff::Timestamp::now();
        // Expiry is worked out here, so an approved proposal past its time is listed as expired.
        let stored = match state {
            Some(State::Expired | State::Approved) | None => None,
            Some(other) => Some(other),
        };
        let records = self.run(false, move |tx| tx.records(stored)).await?;
        let summaries = records.iter().map(|r| Summary::of(r, now));
        Ok(summaries.filter(|s| state.is_none_or(|wanted| s.state == wanted)).collect())
    }

    /// `reviewer`'s approval or rejection of proposal `id`. Refused ([`Error::Refused`], and logged as `refused`)
    /// when the rules say no: a proposal no longer waiting, the proposer approving, a second decision of one reviewer.
    pub async fn decide(
        &self,
        id: ProposalId,
        reviewer: &str,
        verdict: Verdict,
        comment: Option<String>,
    ) -> Result<Record> {
        self.decide_flagged(id, reviewer, verdict, comment, false).await
    }

    /// [`Store::decide`], with an approval that accepts the plan's unguarded statements when `unguarded` is set.
    pub async fn decide_flagged(
        &self,
        id: ProposalId,
        reviewer: &str,
        verdict: Verdict,
        comment: Option<String>,
        unguarded: bool,
    ) -> Result<Record> {
        let who = reviewer.to_owned();
        let attempt = self
            .run(true, move |tx| {
                let record = tx.record(id)?.ok_or(Error::UnknownProposal(id))?;
                let now = jiff::Timestamp::now();
                let Transition { decision, state, expires_at } =
                    rules::decide(&record, &who, verdict, unguarded, comment, now).map_err(Error::Refused)?;
                tx.insert_decision(id, &decision)?;
                tx.set_state(id, state, expires_at.as_deref(), None)?;
                let event = match verdict {
                    Verdict::Approve => Event::Approved,
                    Verdict::Reject => Event::Rejected,
                };
                let counts = serde_json::to_value(&record.proposal.envelope.tables).expect("counts serialize");
                append(tx, event, &record.proposal, &who, counts, decision.comment.clone(), now)?;
                tx.record(id)?.ok_or(Error::UnknownProposal(id))
            })
            .await;
        if let Err(Error::Refused(reason)) = &attempt {
            self.refused(id, reviewer, &format!("{} refused: {reason}", verdict.as_str()), serde_json::Value::Null)
                .await?;
        }
        attempt
    }

    /// `caller`'s approval or rejection of proposal `id`, whichever door it comes through (the CLI, the HTTP API, the
    /// review page): [`Error::Forbidden`] when the caller's role may not decide, that refusal logged as `refused`
    /// (when the proposal exists) with the same text from every door; else [`Store::decide_flagged`], whose rules
    /// may refuse it too.
    pub async fn decide_as(
        &self,
        id: ProposalId,
        caller: &Caller,
        verdict: Verdict,
        comment: Option<String>,
        unguarded: bool,
    ) -> Result<Record> {
        if let Err(forbidden) = caller.may(Action::Decide) {
            let reason = format!("{} refused: {forbidden}", verdict.as_str());
            match self.refused(id, &caller.name, &reason, serde_json::Value::Null).await {
                Ok(()) | Err(Error::UnknownProposal(_)) => {}
                Err(error) => return Err(error),
            }
            return Err(forbidden);
        }
        self.decide_flagged(id, &caller.name, verdict, comment, unguarded).await
    }

    /// Logs a refusal of something done to proposal `id` (by `actor`, for `reason`), without changing its state.
    pub async fn refused(&self, id: ProposalId, actor: &str, reason: &str, counts: serde_json::Value) -> Result<()> {
        self.note(id, Event::Refused, actor, reason, counts).await
    }

    /// Logs that the connection to the target broke at proposal `id`'s COMMIT and the target confirmed afterwards
    /// that it committed (`detail` says how); the proposal stays applied.
    pub async fn confirmed(&self, id: ProposalId, actor: &str, detail: &str) -> Result<()> {
        self.note(id, Event::Confirmed, actor, detail, serde_json::Value::Null).await
    }

    /// Logs that whether proposal `id`'s COMMIT happened could not be learned (`detail` names the transaction to
    /// check); the proposal stays applied, so that it is never applied twice.
    pub async fn in_doubt(&self, id: ProposalId, actor: &str, detail: &str) -> Result<()> {
        self.note(id, Event::InDoubt, actor, detail, serde_json::Value::Null).await
    }

    /// Logs `event` of proposal `id` without changing its state.
    async fn note(
        &self,
        id: ProposalId,
        event: Event,
        actor: &str,
        detail: &str,
        counts: serde_json::Value,
    ) -> Result<()> {
        let (actor, detail) = (actor.to_owned(), detail.to_owned());
        self.run(true, move |tx| {
            let record = tx.record(id)?.ok_or(Error::UnknownProposal(id))?;
            append(tx, event, &record.proposal, &actor, counts, Some(detail), jiff::Timestamp::now())
        })
        .await
    }

    /// Marks proposal `id`'s approval expired (when it is approved and past its time), logging `expired`.
    pub async fn expire(&self, id: ProposalId, actor: &str) -> Result<Record> {
        let actor = actor.to_owned();
        self.run(true, move |tx| {
            let record = tx.record(id)?.ok_or(Error::UnknownProposal(id))?;
            let now = jiff::Timestamp::now();
            if record.state == State::Approved && rules::state_at(&record, now) == State::Expired {
                tx.set_state(id, State::Expired, record.expires_at.as_deref(), None)?;
                let detail = record.expires_at.as_ref().map(|t| format!("approval expired at {t}"));
                append(tx, Event::Expired, &record.proposal, &actor, serde_json::Value::Null, detail, now)?;
            }
            tx.record(id)?.ok_or(Error::UnknownProposal(id))
        })
        .await
    }

    /// Records how proposal `id`'s apply ended: applied, or refused (`outcome.refused`), from approved only. Fails
    /// with [`Error::Refused`] when the proposal is no longer approved (another apply got there first), so the
    /// caller rolls its apply back.
    pub async fn finish(&self, id: ProposalId, outcome: Outcome) -> Result<Record> {
        self.run(true, move |tx| {
            let record = tx.record(id)?.ok_or(Error::UnknownProposal(id))?;
            let now = jiff::Timestamp::now();
            if record.state != State::Approved {
                return Err(Error::Refused(format!(
                    "proposal {id} is {} now: another apply finished first",
                    record.state
                )));
            }
            end(tx, &record, &outcome, now)
        })
        .await
    }

    /// Takes back [`Store::finish`]'s `applied` when the target's COMMIT did not happen after all (the server
    /// answered it with an error, or said afterwards that the transaction aborted): moves proposal `id` from applied
    /// to refused, for `reason`, as a refused apply ends, in one transaction. Only this apply's: the proposal must be
    /// applied with `applied` as its outcome, else [`Error::Refused`] and nothing changes.
    pub async fn rolled_back(&self, id: ProposalId, applied: Outcome, reason: String) -> Result<Record> {
        self.run(true, move |tx| {
            let record = tx.record(id)?.ok_or(Error::UnknownProposal(id))?;
            if record.state != State::Applied || record.outcome.as_ref() != Some(&applied) {
                return Err(Error::Refused(format!(
                    "proposal {id} is {} now, not applied by this apply: its state is left as it is",
                    record.state
                )));
            }
            let outcome = Outcome { refused: Some(reason), ..applied };
            end(tx, &record, &outcome, jiff::Timestamp::now())
        })
        .await
    }

    /// Every audit entry, in order.
    pub async fn audit(&self) -> Result<Vec<Entry>> {
        self.run(false, |tx| tx.audit()).await
    }

    /// Checks the audit log's chain.
    pub async fn verify(&self) -> Result<audit::Verification> {
        Ok(audit::verify(&self.audit().await?))
    }
}

/// Ends `record`'s apply as `outcome` says (applied, or refused with its reason), logging it.
fn end(tx: &mut dyn Tx, record: &Record, outcome: &Outcome, now: jiff::Timestamp) -> Result<Record> {
    let (state, event, detail) = match &outcome.refused {
        None => (State::Applied, Event::Applied, format!("applied on target {}", outcome.target)),
        Some(why) => (State::Refused, Event::Refused, format!("apply on target {} refused: {why}", outcome.target)),
    };
    let id = record.proposal.id;
    tx.set_state(id, state, record.expires_at.as_deref(), Some(outcome))?;
    let counts = serde_json::to_value(&outcome.counts).expect("counts serialize");
    append(tx, event, &record.proposal, &outcome.by, counts, Some(detail), now)?;
    tx.record(id)?.ok_or(Error::UnknownProposal(id))
}

/// Appends `event` of `proposal` to the audit chain.
fn append(
    tx: &mut dyn Tx,
    event: Event,
    proposal: &Proposal,
    actor: &str,
    counts: serde_json::Value,
    detail: Option<String>,
    now: jiff::Timestamp,
) -> Result<()> {
    let (seq, prev) = tx.audit_head()?;
    let fact = Fact {
        event,
        proposal: proposal.id,
        actor: actor.to_owned(),
        at: rules::timestamp(now),
        plan_sha256: proposal.plan.sha256.clone(),
        fingerprints: proposal.fingerprints.clone(),
        counts,
        detail,
    };
    tx.insert_audit(&Entry::chain(seq + 1, fact, &prev))
}

/// Runs `work` on a blocking thread.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| Error::io("<store task>", std::io::Error::other(e)))?
}

/// A record read from a store's columns.
pub(crate) struct Row {
    pub(crate) body: String,
    pub(crate) state: String,
    pub(crate) approvals_required: i64,
    pub(crate) expires_at: Option<String>,
    pub(crate) outcome: Option<String>,
}

impl Row {
    /// The record this row and its `decisions` make; `store` names the store in errors.
    pub(crate) fn record(self, decisions: Vec<Decision>, store: &str) -> Result<Record> {
        let bad = |what: &str, e: String| Error::Store { store: store.to_owned(), message: format!("{what}: {e}") };
        let proposal: Proposal =
            serde_json::from_str(&self.body).map_err(|e| bad("a proposal's body", e.to_string()))?;
        let state = State::parse(&self.state).ok_or_else(|| bad("a proposal's state", self.state.clone()))?;
        let outcome = match self.outcome {
            Some(text) => Some(serde_json::from_str(&text).map_err(|e| bad("an outcome", e.to_string()))?),
            None => None,
        };
        let mut approvers: Vec<&str> =
            decisions.iter().filter(|d| d.verdict == Verdict::Approve).map(|d| d.reviewer.as_str()).collect();
        approvers.sort_unstable();
        approvers.dedup();
        Ok(Record {
            approvals: approvers.len(),
            proposal,
            state,
            decisions,
            approvals_required: usize::try_from(self.approvals_required).unwrap_or(1),
            expires_at: self.expires_at,
            outcome,
        })
    }
}

/// A decision's verdict from its column.
pub(crate) fn verdict_of(text: &str) -> Verdict {
    if text == "approve" {
        Verdict::Approve
    } else {
        Verdict::Reject
    }
}

/// An audit entry from its columns (`fingerprints` and `counts` as JSON text).
#[allow(clippy::too_many_arguments)]
pub(crate) fn entry_of(
    seq: i64,
    event: &str,
    proposal: ProposalId,
    actor: String,
    at: String,
    plan_sha256: String,
    fingerprints: &str,
    counts: &str,
    detail: Option<String>,
    prev_sha256: String,
    sha256: String,
) -> Entry {
    // A row whose event or JSON was edited into something unreadable still reads, marked so that it cannot match its
    // SHA-256: `verify` then names it.
    let mut unreadable = Vec::new();
    let event = Event::parse(event).unwrap_or_else(|| {
        unreadable.push(format!("event {event:?}"));
        Event::Refused
    });
    let fingerprints = serde_json::from_str(fingerprints).unwrap_or_else(|_| {
        unreadable.push("fingerprints".to_owned());
        Default::default()
    });
    let counts = serde_json::from_str(counts).unwrap_or_else(|_| {
        unreadable.push("counts".to_owned());
        serde_json::Value::Null
    });
    let detail = match unreadable.is_empty() {
        true => detail,
        false => Some(format!("unreadable: {}", unreadable.join(", "))),
    };
    let fact = Fact { event, proposal, actor, at, plan_sha256, fingerprints, counts, detail };
    Entry { seq, fact, prev_sha256, sha256 }
}
