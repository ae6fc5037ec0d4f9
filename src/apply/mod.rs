//! Apply: the one code path of pgshadow that writes to a database it did not create. It runs an approved proposal's
//! plan on a named target, and commits only what was approved. Nothing else calls it: a dry-run never does.
//!
//! The checks, in this order; the first that fails refuses the apply, with a clear reason, in the audit log:
//! 1. the proposal is approved, its approval has not expired, and it is not applied already;
//! 2. the plan's SHA-256 (of the text about to run: the stored one, or the one the pipeline hands over) is the one
//!    the reviewers approved;
//! 3. drift: the target's catalog ([`crate::profile::describe`]) matches the shadow's after its source loaded;
//!    objects the shadow could not load are left out and listed;
//! 4. the plan runs in one transaction on the target, with the policy's `lock_timeout` and `statement_timeout`,
//!    each statement measured there (`run`);
//! 5. it commits only inside the approved envelope ([`crate::proposal::Envelope::breach`]), else rolls back;
//! 6. the store records it applied, then the target commits (`commit`). A COMMIT the server answers with an error
//!    (a deferred constraint) rolled back: the proposal ends refused after all. When the answer is lost, the target is
//!    asked whether the transaction committed; if that cannot be learned the proposal stays applied (never applied
//!    twice), the audit log says `in_doubt` with the transaction's id, and the apply ends in
//!    [`Error::ApplyInDoubt`].
//!
//! A refusal at check 1 leaves the proposal as it is (or marks it expired); from check 2 on it is `refused`, and a new
//! proposal is needed. Statements that cannot run in a transaction (`CREATE INDEX CONCURRENTLY`, `VACUUM`) cannot be
//! guarded: a plan holding one runs only when every approval accepts it (`proposals approve --unguarded`) and it
//! holds nothing else; then its statements run one by one, outside any transaction.

mod commit;
mod run;
mod targets;

use std::collections::BTreeMap;

pub use targets::Targets;

use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::proposal::envelope::Counts;
use crate::proposal::{rules, Outcome, Record, State, Store, Verdict};
use commit::Committed;

/// An apply to do.
#[derive(Debug, Clone)]
pub struct Request {
    /// The proposal.
    pub id: crate::proposal::ProposalId,
    /// The target's name.
    pub target: String,
    /// Who applies (the applier's name).
    pub by: String,
    /// The plan text to run, when the pipeline hands it over; else the stored one. Either way its SHA-256 must be
    /// the approved one.
    pub plan_text: Option<String>,
}

/// Applies proposal `request.id` on its target, as the module says. `Ok` with the applied record; a refusal is
/// [`Error::Refused`] with its reason, logged in the store first.
pub async fn apply(store: &Store, targets: &Targets, request: &Request) -> Result<Record> {
    let record = store.get(request.id).await?;
    let now = jiff::Timestamp::now();
    if let Err(reason) = rules::applicable(&record, now) {
        if record.state == State::Expired {
            store.expire(request.id, &request.by).await?;
        }
        return refuse_only(store, request, reason).await;
    }
    let proposal = &record.proposal;
    if let Some(meant) = proposal.target.as_deref().filter(|t| *t != request.target) {
        let reason = format!("proposal {} is for target {meant}, not {}", proposal.id, request.target);
        return refuse_only(store, request, reason).await;
    }
    // From here on a refusal ends the proposal.
    let text = request.plan_text.clone().unwrap_or_else(|| proposal.plan.text.clone());
    let sha256 = crate::text::hex_digest(text.as_bytes());
    let approved: Vec<&str> =
        record.decisions.iter().filter(|d| d.verdict == Verdict::Approve).map(|d| d.plan_sha256.as_str()).collect();
    if let Some(other) = approved.iter().find(|a| **a != sha256) {
        let reason = format!(
            "the plan to run has SHA-256 {sha256}, the approved plan {other}: the plan changed after it was approved"
        );
        return refuse(store, request, reason, Counts::default()).await;
    }
    let plan = Plan::parse(&proposal.plan.source, &text)?;
    if let Some(reason) = unguarded_refusal(&record, &plan) {
        return refuse(store, request, reason, Counts::default()).await;
    }
    let Some(measured) = &proposal.catalog else {
        let reason = "the proposal was measured without a source, so there is no catalog to check the target's \
                      against: propose it with --schema, --snapshot or --from-url"
            .to_owned();
        return refuse(store, request, reason, Counts::default()).await;
    };
    if let Some(s) = plan.statements.iter().position(|s| {
        use crate::plan::StatementKind::*;
        matches!(
            s.classification.kind,
            Rollback | Savepoint | ReleaseSavepoint | RollbackToSavepoint | PrepareTransaction
        )
    }) {
        let reason =
            format!("statement {} controls the transaction: apply runs the plan in one transaction of its own", s + 1);
        return refuse(store, request, reason, Counts::default()).await;
    }

    let url = targets.url(&request.target)?;
    let client = connect(&url).await?;
    let rules = &proposal.rules;
    let begin = format!(
        "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {}",
        rules.lock_timeout_ms, rules.statement_timeout_ms
    );
    client.batch_execute(&begin).await.map_err(|e| Error::pg("starting the apply's transaction", e))?;
    // Whatever happens below, a transaction that is not committed is rolled back: explicitly, or by the server when
    // this connection closes.
    let before = run::catalog(&client).await?;
    let drift = crate::profile::drift(measured, &before, &proposal.fidelity_losses);
    if !drift.differences.is_empty() {
        rollback(&client).await;
        let mut reason = format!(
            "the target's catalog differs from the one the plan was measured on: {}",
            drift.differences.join("; ")
        );
        if !drift.left_out.is_empty() {
            reason.push_str(&format!(" (left out, as the shadow could not load them: {})", drift.left_out.join(", ")));
        }
        return refuse(store, request, reason, Counts::default()).await;
    }
    if !proposal.envelope.unguarded.is_empty() {
        rollback(&client).await;
        return unguarded(store, request, proposal, &client, &plan, &before).await;
    }
    let emptied = emptied_tables(&proposal.report);
    let ran = run::run(&client, &plan, &emptied, &before).await;
    let counts = match ran {
        Err(e) => {
            rollback(&client).await;
            return Err(e);
        }
        Ok(run::Ran::Failed(index, message)) => {
            rollback(&client).await;
            let reason = format!("statement {index} failed on the target: {message}; rolled back");
            return refuse(store, request, reason, Counts::default()).await;
        }
        Ok(run::Ran::Done(counts)) => counts,
    };
    if let Some(breach) = proposal.envelope.breach(&counts, rules) {
        rollback(&client).await;
        return refuse(store, request, format!("{breach}; rolled back"), counts).await;
    }
    // The transaction's id, to ask the target about it should the answer to COMMIT be lost.
    let xid = match commit::TransactionId::current(&client).await {
        Ok(xid) => xid,
        Err(e) => {
            rollback(&client).await;
            return Err(e);
        }
    };
    // The store says applied first (which fails if another apply got there), then the target commits.
    let applied = outcome(request, None, counts);
    let record = match store.finish(request.id, applied.clone()).await {
        Ok(record) => record,
        Err(e) => {
            rollback(&client).await;
            return Err(e);
        }
    };
    // What the target did stands whatever the store says next: a store that fails here is logged, and the answer is
    // still the target's (an in-doubt apply keeps its transaction id).
    let recorded = |what: &str, written: Result<()>| {
        if let Err(e) = written {
            tracing::error!(proposal = request.id, "could not record in the store that {what}: {e}");
        }
    };
    match commit::commit(&client, &xid, &url).await {
        Committed::Yes => {}
        Committed::No(why) => {
            let reason = format!("{why}: nothing was applied");
            recorded("the apply rolled back", store.rolled_back(request.id, applied, reason.clone()).await.map(drop));
            return Err(Error::Refused(reason));
        }
        Committed::Confirmed(how) => {
            recorded("the commit was confirmed", store.confirmed(request.id, &request.by, &how).await);
        }
        Committed::InDoubt(why) => {
            let detail = format!("apply on target {} in doubt: {why}", request.target);
            recorded("the apply is in doubt", store.in_doubt(request.id, &request.by, &detail).await);
            return Err(Error::ApplyInDoubt {
                proposal: request.id,
                target: request.target.clone(),
                xid: xid.id,
                message: why,
            });
        }
    }
    if !drift.left_out.is_empty() {
        tracing::warn!("not compared, as the shadow could not load them: {}", drift.left_out.join(", "));
    }
    // The record the store wrote as applied: a confirmed commit adds to the audit log only.
    Ok(record)
}

/// Why a plan with statements that cannot run in a transaction is refused, if it is: every approval must accept them
/// (`--unguarded`), and the plan must hold nothing else, since nothing else could be rolled back after them.
fn unguarded_refusal(record: &Record, plan: &Plan) -> Option<String> {
    let unguarded = &record.proposal.envelope.unguarded;
    let first = unguarded.first()?;
    let accepted = record.decisions.iter().filter(|d| d.verdict == Verdict::Approve).all(|d| d.unguarded);
    if !accepted {
        return Some(format!(
            "statement {first} cannot run inside a transaction (CONCURRENTLY, VACUUM, ...), so apply cannot roll it \
             back: it runs only when every approval accepts it (`pgshadow proposals approve ID --unguarded`)"
        ));
    }
    let guarded = run::statements(plan).map(|(index, _)| index).find(|index| !unguarded.contains(index));
    guarded.map(|index| {
        format!(
            "the plan mixes statements that cannot run in a transaction (statement {first}) with ones that can \
             (statement {index}): propose them apart"
        )
    })
}

/// Runs an approved plan of unguarded statements only, one after the other outside any transaction (with the
/// policy's timeouts), and records what it dropped. What ran cannot be rolled back: a failure is recorded as a
/// refusal that says so.
async fn unguarded(
    store: &Store,
    request: &Request,
    proposal: &crate::proposal::Proposal,
    client: &tokio_postgres::Client,
    plan: &Plan,
    before: &crate::profile::Description,
) -> Result<Record> {
    let rules = &proposal.rules;
    let timeouts =
        format!("SET lock_timeout = {}; SET statement_timeout = {}", rules.lock_timeout_ms, rules.statement_timeout_ms);
    client.batch_execute(&timeouts).await.map_err(|e| Error::pg("setting the apply's timeouts", e))?;
    for (index, statement) in run::statements(plan) {
        if let Err(e) = client.batch_execute(&statement.raw.text).await {
            let message = server_message(&e);
            let reason = format!(
                "unguarded statement {index} failed on the target: {message}; the statements before it ran and \
                 cannot be rolled back"
            );
            return refuse(store, request, reason, Counts::default()).await;
        }
    }
    // What ran cannot be undone: a failure from here on ends the proposal too, so it is never applied twice.
    let after = match client.batch_execute("BEGIN READ ONLY").await {
        Ok(()) => run::catalog(client).await,
        Err(e) => Err(Error::pg("reading the target's catalog", e)),
    };
    rollback(client).await;
    let after = match after {
        Ok(after) => after,
        Err(e) => {
            let reason =
                format!("the unguarded statements ran, but the target's catalog could not be read after them: {e}");
            return refuse(store, request, reason, Counts::default()).await;
        }
    };
    let counts = Counts { dropped: run::dropped(before, &after), ..Counts::default() };
    if let Some(breach) = proposal.envelope.breach(&counts, rules) {
        let reason = format!("{breach}; it ran unguarded and cannot be rolled back");
        return refuse(store, request, reason, counts).await;
    }
    store.finish(request.id, outcome(request, None, counts)).await
}

/// The tables each statement (1-based) truncated or dropped on the shadow, as the report says: their rows are counted
/// on the target just before it.
fn emptied_tables(report: &serde_json::Value) -> BTreeMap<usize, Vec<String>> {
    let mut out = BTreeMap::new();
    for statement in report["statements"].as_array().into_iter().flatten() {
        let index = statement["index"].as_u64().unwrap_or(0) as usize;
        let list = |key: &str| statement[key].as_array().cloned().unwrap_or_default();
        let truncated = list("table_effects")
            .into_iter()
            .filter(|_| statement["kind"] == "truncate")
            .filter(|e| !matches!(e["truncated"].as_u64(), Some(0)))
            .filter_map(|e| e["table"].as_str().map(str::to_owned));
        let dropped = list("dropped_objects")
            .into_iter()
            .filter(|o| o["type"] == "table")
            .filter_map(|o| o["identity"].as_str().map(str::to_owned));
        let tables: Vec<String> = truncated.chain(dropped).collect();
        if !tables.is_empty() {
            out.insert(index, tables);
        }
    }
    out
}

fn outcome(request: &Request, refused: Option<String>, counts: Counts) -> Outcome {
    Outcome {
        at: rules::timestamp(jiff::Timestamp::now()),
        by: request.by.clone(),
        target: request.target.clone(),
        refused,
        counts,
    }
}

/// Refuses without changing the proposal's state (it is not approved, or not for this target).
async fn refuse_only(store: &Store, request: &Request, reason: String) -> Result<Record> {
    let detail = format!("apply on target {} refused: {reason}", request.target);
    store.refused(request.id, &request.by, &detail, serde_json::Value::Null).await?;
    Err(Error::Refused(reason))
}

/// Refuses and ends the proposal (`refused`), with what was measured.
async fn refuse(store: &Store, request: &Request, reason: String, counts: Counts) -> Result<Record> {
    store.finish(request.id, outcome(request, Some(reason.clone()), counts)).await?;
    Err(Error::Refused(reason))
}

async fn rollback(client: &tokio_postgres::Client) {
    if let Err(e) = client.batch_execute("ROLLBACK").await {
        tracing::warn!("rolling the apply back: {e} (the server rolls it back as the connection closes)");
    }
}

/// Connects to a target (TLS and `PG*` variables as for `--from-url`).
async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    let remote = crate::shadow::server::config_from_url(url)?;
    let (client, _driver) =
        crate::tls::connect(&remote.config, remote.tls.as_ref(), "target").await.map_err(|e| Error::Source {
            path: crate::text::redact_url(url).into(),
            message: format!("could not connect to the target: {}", crate::error::with_causes(&e)),
            detail: String::new(),
        })?;
    Ok(client)
}

/// A driver error for the audit log and the terminal: the server's primary message, without the values a data
/// exception quotes ([`crate::text::message_without_row_values`]; never a DETAIL, which may quote rows), else the
/// error with its causes.
pub(super) fn server_message(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => crate::text::message_without_row_values(db.code().code(), db.message()),
        None => crate::error::with_causes(error),
    }
}
